package listener

import (
	"time"

	"github.com/kretry/kretry/strategy"
)

// EventKind names what happened in an Event.
type EventKind int

const (
	// EventHandled: the handler (or DLT handler) returned nil.
	EventHandled EventKind = iota + 1
	// EventRetried: Kafka acknowledged the record's publish to a retry tier.
	EventRetried
	// EventDeadLettered: Kafka acknowledged the record's publish to a DLT.
	EventDeadLettered
	// EventDropped: the record ended without a DLT (retry.NoDLT), or its
	// DLT handler gave up; it was committed without further publishing.
	EventDropped
	// EventForwardFailed: a publish to a tier or DLT failed; it will be
	// tried again after a backoff and nothing is committed past it.
	EventForwardFailed
	// EventDLTHandlerFailed: the DLT handler returned an error.
	EventDLTHandlerFailed
	// EventPaused: a partition was paused to wait for its head record's
	// due time (Due is set).
	EventPaused
	// EventResumed: a paused partition was resumed.
	EventResumed
	// EventAssigned: the group gave this member a partition.
	EventAssigned
	// EventRevoked: a partition was taken away (revoked or lost); its
	// unfinished records will be redelivered to its next owner.
	EventRevoked
	// EventSkipped: a retry-tier or DLT record that another consumer group
	// forwarded (Group names it) was passed over and committed without a
	// handler call: several groups share the topic, and the record is that
	// group's to handle. Reason is ReasonOtherGroup; Attempt is 0 (no
	// delivery happened). Under KeyOrder, Reason ReasonStaleCopy: a copy of
	// a record that a crash left behind was passed over, another copy of
	// it being the live one.
	EventSkipped
	// EventBatch: a BatchHandler call returned. Batch is the number of
	// records it was given, Offset the first one's, Latency the call's run
	// time, Err the error it returned (nil when every record was handled).
	// Each record's own outcome follows as its own event (EventHandled,
	// EventRetried, …) with the same Batch.
	EventBatch
	// EventBatchErrorsInvalid: a BatchHandler returned a *BatchErrors that
	// names a record not in the batch, or the same record twice; Topic,
	// Partition and Offset are the named record's, Err says which mistake.
	// A record named twice is routed once (for its first error); one not
	// in the batch is not routed.
	EventBatchErrorsInvalid
	// EventTransactionCommitted: exactly once (ExactlyOnce), a transaction
	// was committed. Offset is -1 and Topic empty; Latency is how long
	// ending it took, Batch how many records it settled.
	EventTransactionCommitted
	// EventTransactionAborted: exactly once, a transaction was aborted —
	// a publish of it failed, or a partition was revoked or lost during
	// it (Err says which) — and every partition is read again from its
	// last commit: the records it had settled are delivered again.
	// Offset is -1 and Topic empty; Batch is how many records it had
	// settled.
	EventTransactionAborted
	// EventFollowed: key order (KeyOrder), Kafka acknowledged the publish
	// of a record to a retry tier behind an earlier record of its key,
	// without a handler call (a follower; Target names the tier, Due its
	// due time). A main-topic record follows its key when the key has a
	// record in retry; a tier record moves behind its key's last record
	// when an earlier one is still waiting. Reason is "dead-letter-marker"
	// for a dead-letter marker moving behind its key's last record
	// (FollowersOnDeadLetter, docs/key-order.md); empty otherwise.
	EventFollowed
)

var eventKindNames = [...]string{"", "handled", "retried", "dead-lettered", "dropped",
	"forward-failed", "dlt-handler-failed", "paused", "resumed", "assigned", "revoked", "skipped",
	"batch", "batch-errors-invalid", "transaction-committed", "transaction-aborted", "followed"}

// String returns the event kind's name, e.g. "dead-lettered".
func (k EventKind) String() string {
	if k <= 0 || int(k) >= len(eventKindNames) {
		return "unknown"
	}
	return eventKindNames[k]
}

// Event describes one thing that happened to a record or partition.
// Fields that do not apply to a kind are zero.
type Event struct {
	Kind      EventKind
	Topic     string // the topic the record was read from
	Partition int32
	Offset    int64 // -1 for partition events
	// Attempt is the delivery that just happened (1 = first); for a DLT
	// record, the deliveries it had before it was dead-lettered; for
	// EventDLTHandlerFailed, the number of the DLT handler call that
	// failed (1 = first); 0 for partition events and EventSkipped.
	Attempt int32
	Target  string        // the tier or DLT topic published to
	Due     time.Time     // when the next delivery is due
	Reason  string        // why a record was dead-lettered or dropped
	Err     error         // the handler's or the publish's error
	Latency time.Duration // handler run time, for EventHandled and failures
	// Role is the part Topic plays in the listener's plan: main topic,
	// retry tier or DLT.
	Role strategy.TopicRole
	// Late is, for a delivery from a retry tier (EventHandled, and
	// EventRetried or EventDeadLettered after a failed retry), how long
	// after the record's due time the handler started: the scheduler's
	// lateness. Never negative; zero for main-topic and DLT deliveries.
	Late time.Duration
	// Group is, for EventSkipped, the consumer group the record belongs
	// to (its retry.HeaderGroup).
	Group string
	// Batch is, for EventBatch, the number of records the BatchHandler was
	// given, and for the outcome events of a record handled in a batch,
	// the size of its batch; 0 for records handled one at a time.
	Batch int
}

// Hook observes listener events. OnEvent is called synchronously on the
// listener's goroutines (including franz-go's produce callbacks) and must
// return quickly; a metrics exporter should only count. Hooks must not keep
// references to the event's error beyond the call if it wraps records.
type Hook interface {
	OnEvent(Event)
}

// HookFunc adapts a function to Hook.
type HookFunc func(Event)

// OnEvent calls f(e).
func (f HookFunc) OnEvent(e Event) { f(e) }
