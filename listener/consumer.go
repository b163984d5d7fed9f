package listener

import (
	"context"
	"sync"
	"sync/atomic"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/kretry/kretry/internal/due"
)

// consumer is the state of one run of a Listener: the client, the poll
// loop's bookkeeping, the workers' run queue, the due timers, the pauser,
// the parts of the partitions it owns and the publish retries in flight.
// Listener.Run builds it and it lives until Run returns; the Listener it
// embeds holds the settings New fixed, which nothing here changes.
//
// Locks, in the order they may be taken (never the other way round):
// consumer.partsMu, then part.mu, then the pauser's, the run queue's and
// the due timers' own (the timers fire outside theirs). The client's rebalance callbacks run with the client's locks held
// and take partsMu, so nothing may call into the client while holding
// partsMu or a part's mu, except to mark offsets (markCommit, which takes
// none of the locks the callbacks hold). Hooks, tracers and
// handlers are never called with any of these locks held.
type consumer struct {
	*Listener

	// batchMax, when set (by setup), caps the producer's batch size per
	// topic at the max.message.bytes of the tier or DLT, so a batch is
	// never refused for its combined size.
	batchMax func(topic string) int32

	client     *kgo.Client
	pauser     *pauser
	runq       *runq
	timers     *due.Timers[*part]
	stopping   atomic.Bool
	stopBy     atomic.Int64    // UnixNano deadline of the shutdown, once stopping
	handlerCtx context.Context // canceled when the shutdown timeout runs out
	produceCtx context.Context // likewise, for publishes

	partsMu sync.Mutex
	parts   map[topicPartition]*part
	removed map[topicPartition]*part // the last removed part of each partition, until reassigned

	// held counts polled records of unpaused partitions not yet taken by a
	// worker; the poll loop stops polling while it is at maxHeld, leaving
	// further records in the client's buffers (nothing is refetched).
	held    atomic.Int64
	drained chan struct{} // signaled when held drops

	// fwd makes the outcomes of failed records durable (see forwarder).
	fwd forwarder
}

func newConsumer(l *Listener) *consumer {
	return &consumer{Listener: l,
		parts: make(map[topicPartition]*part), removed: make(map[topicPartition]*part),
		drained: make(chan struct{}, 1),
	}
}

// markCommit marks rec for the next commit. It reads the client when it
// marks, not when a part is made: the client may assign partitions (and so
// make parts) before Run has stored it. Only a part's commit ledger calls
// it (commits.mark).
func (c *consumer) markCommit(rec *kgo.Record) { c.client.MarkCommitRecords(rec) }
