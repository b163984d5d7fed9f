package listener

import (
	"context"
	"fmt"
	"iter"
	"strings"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/kretry/kretry/config"
)

// BatchHandler processes a batch of records at once — a bulk insert, an
// index update — where a Handler takes one. The listener forms each batch
// from one partition's records, in offset order: up to BatchSize of them,
// all from the main topic or all from one retry tier, tier records only
// once they are due.
//
// Returning nil acknowledges every record of the batch. Returning a
// *BatchErrors (directly or wrapped) fails only the records it names, each
// with its own error; the others are acknowledged and never handed to the
// handler again. Any other error fails every record of the batch with that
// error. Each failed record goes on to its next retry tier or to the
// dead-letter topic on its own, as the policy decides for its error and its
// attempt, exactly as a Handler's failed record does (strategy.Permanent,
// strategy.RetryAfter, excluded errors, routes and the timeout budget
// included). A panic is recovered and fails the whole batch with a
// *PanicError.
//
// The context is canceled when the listener gives up on shutdown or the
// HandlerTimeout passes; the timeout bounds the whole call. It carries no
// retry state (the records of one batch may be on different attempts):
// read a record's with retry.Decode(rec.Headers); a record of the main
// topic has none and is on attempt 1.
//
// Batches of one partition are handled one at a time, in offset order;
// batches of different partitions concurrently, up to the Concurrency
// option. The handler must not keep recs or its records after returning.
type BatchHandler interface {
	HandleBatch(ctx context.Context, recs []*kgo.Record) error
}

// BatchHandlerFunc adapts a function to BatchHandler.
type BatchHandlerFunc func(ctx context.Context, recs []*kgo.Record) error

// HandleBatch calls f(ctx, recs).
func (f BatchHandlerFunc) HandleBatch(ctx context.Context, recs []*kgo.Record) error {
	return f(ctx, recs)
}

// DefaultBatchSize is the most records a batch holds unless BatchSize
// says otherwise.
const DefaultBatchSize = config.DefaultBatchSize

// NewBatch returns a Listener for topic whose records are handled in
// batches by h. Everything else is as for New: the same options, the same
// policy, topics, guarantees and DLT handling (DLT records are handed to
// the DLT handler one at a time; a handler that also has HandleDLT is it,
// as with New). BatchSize and BatchWait size the batches.
func NewBatch(seeds []string, topic string, h BatchHandler, opts ...Opt) (*Listener, error) {
	return newListener(seeds, topic, true, nil, h, opts)
}

// BatchErrors is the error a BatchHandler returns when some records of its
// batch failed: each failed record with its own error. Build it with Add,
// which takes the record itself, so no index can go wrong, and return Err:
//
//	var errs listener.BatchErrors
//	for _, rec := range recs {
//		errs.Add(rec, insert(ctx, rec))
//	}
//	return errs.Err()
//
// The listener matches each named record to the batch by topic,
// partition and offset. A record that is not in the batch, or a record
// named twice, is logged as an error and reported as an
// EventBatchErrorsInvalid; a record named twice is routed once, for its
// first error, and a record not in the batch is not routed (it is not
// this batch's to decide).
type BatchErrors struct {
	failed []RecordError
}

// RecordError is one failed record of a batch, and its error.
type RecordError struct {
	Record *kgo.Record
	Err    error
}

// Add records that rec failed with err. A nil err records nothing, so the
// result of a call can be passed as it is.
func (b *BatchErrors) Add(rec *kgo.Record, err error) {
	if err != nil {
		b.failed = append(b.failed, RecordError{Record: rec, Err: err})
	}
}

// Len returns the number of failures added.
func (b *BatchErrors) Len() int { return len(b.failed) }

// Err returns b if a failure was added, and nil otherwise; return it from
// HandleBatch. (Returning a *BatchErrors with no failure also acknowledges
// every record, but Err avoids returning a non-nil error for that.)
func (b *BatchErrors) Err() error {
	if len(b.failed) == 0 {
		return nil
	}
	return b
}

// All yields each failure in the order it was added.
func (b *BatchErrors) All() iter.Seq2[*kgo.Record, error] {
	return func(yield func(*kgo.Record, error) bool) {
		for _, f := range b.failed {
			if !yield(f.Record, f.Err) {
				return
			}
		}
	}
}

// Error names how many records failed and the first few failures.
func (b *BatchErrors) Error() string {
	var sb strings.Builder
	fmt.Fprintf(&sb, "listener: %d record(s) of the batch failed", len(b.failed))
	for i, f := range b.failed {
		if i == 3 {
			fmt.Fprintf(&sb, "; and %d more", len(b.failed)-i)
			break
		}
		sb.WriteString("; ")
		if f.Record != nil {
			fmt.Fprintf(&sb, "%s[%d]@%d: ", f.Record.Topic, f.Record.Partition, f.Record.Offset)
		}
		sb.WriteString(f.Err.Error())
	}
	return sb.String()
}

// Unwrap returns every record's error, so errors.Is and errors.As look
// into them.
func (b *BatchErrors) Unwrap() []error {
	errs := make([]error, len(b.failed))
	for i, f := range b.failed {
		errs[i] = f.Err
	}
	return errs
}

// BatchTracer is a Tracer that traces batch deliveries too: one span for
// each call of a BatchHandler. Without it, a batch listener's deliveries
// are not traced (DLT deliveries, one record at a time, still are).
type BatchTracer interface {
	Tracer
	// StartBatch is called before a batch handler runs, on the worker's
	// goroutine; ds[i] describes the delivery of recs[i]. The context it
	// returns is passed to the handler. record(i) is the Context of the
	// record kretry publishes for recs[i] if it fails (its retry-tier or
	// DLT record), so a producer hook parents its publish span there;
	// it is called only for failed records, and may return nil for the
	// batch context without cancellation. finish is called exactly once,
	// with each record's outcome in the order of recs, once kretry has
	// decided them (a zero Kind: abandoned at shutdown, to be delivered
	// again); it must not block. Neither recs, ds nor the outcomes may be
	// kept after the call that received them returns.
	StartBatch(ctx context.Context, recs []*kgo.Record, ds []Delivery) (_ context.Context, record func(i int) context.Context, finish func([]Outcome))
}
