package kretrytest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/kretry/kretry/dlt"
	"github.com/kretry/kretry/listener"
	"github.com/kretry/kretry/retry"
)

// Delivery is one call of a handler wrapped by a Recorder.
type Delivery struct {
	// Key is the record's key.
	Key string
	// Topic, Partition and Offset locate the record delivered: in the
	// main topic, a retry tier or a DLT.
	Topic     string
	Partition int32
	Offset    int64
	// Attempt is the delivery's number: 1 for the first delivery from the
	// main topic, 2 for the first retry, and so on. For a DLT handler
	// call it is the number of deliveries the record had.
	Attempt int32
	// DeadLetter is true for a call of the DLT handler (Recorder.WrapDLT).
	DeadLetter bool
	// Batch is, for a call of a batch handler (Recorder.WrapBatch), the
	// number of records the call was given; 0 for a handler of one
	// record.
	Batch int
	// State is the retry state the call received: zero on a first
	// delivery; on a DLT handler call, State.Reason says why the record
	// was dead-lettered. For a batch handler it is the state read from
	// the record's headers.
	State retry.State
	// Err is what the handler returned: nil when it handled the record.
	// For a batch handler it is the record's own error (see
	// Recorder.WrapBatch). A panic is recorded as an error and panics on.
	Err error
}

// String describes the delivery on one line, as failure messages list
// them: "attempt 1 from orders[0]@3: failed: stock service down",
// "attempt 2 from orders-retry[0]@0: handled", "attempt 1 from
// orders[1]@4 in a batch of 10: handled", "DLT handler from
// orders-dlt[0]@0: reason \"exhausted\" after 3 deliveries, last error:
// stock service down".
func (d Delivery) String() string {
	where := fmt.Sprintf("%s[%d]@%d", d.Topic, d.Partition, d.Offset)
	if d.Batch > 0 {
		where += fmt.Sprintf(" in a batch of %d", d.Batch)
	}
	if d.DeadLetter {
		s := fmt.Sprintf("DLT handler from %s: reason %q after %d deliveries", where, d.State.Reason, d.Attempt)
		if d.Attempt == 1 {
			s = strings.TrimSuffix(s, "deliveries") + "delivery"
		}
		if d.State.Error != "" {
			s += ", last error: " + d.State.Error
		}
		if d.Err != nil {
			s += "; the DLT handler failed: " + d.Err.Error()
		}
		return s
	}
	if d.Err != nil {
		return fmt.Sprintf("attempt %d from %s: failed: %v", d.Attempt, where, d.Err)
	}
	return fmt.Sprintf("attempt %d from %s: handled", d.Attempt, where)
}

// Recorder records, by key, every call of the handlers it wraps, and
// waits for a key to reach an Outcome. Wrap the listener's handler with
// Wrap (a batch handler with WrapBatch) and its DLT handler with WrapDLT. A Recorder is safe for
// concurrent use; its zero value is ready to use.
type Recorder struct {
	mu      sync.Mutex
	byKey   map[string][]Delivery
	changed chan struct{} // closed, and replaced, when a delivery is added
}

// NewRecorder returns an empty Recorder, the same as new(Recorder).
func NewRecorder() *Recorder { return new(Recorder) }

// Wrap returns a handler that calls h (a nil h handles every record) and
// records the call: key, topic, partition, offset, attempt, retry state
// and result. The result is a HandlerFunc, so it can also replace a
// handler field declared for listener.Register.
func (r *Recorder) Wrap(h listener.Handler) listener.HandlerFunc {
	return func(ctx context.Context, rec *kgo.Record) (err error) {
		ds := []Delivery{delivery(rec)}
		st, ok := retry.FromContext(ctx)
		if ok {
			ds[0].State = st
		}
		ds[0].Attempt = max(st.Attempt, 1)
		defer r.finish(ds, oneOutcome, &err)
		if h == nil {
			return nil
		}
		return h.Handle(ctx, rec)
	}
}

// WrapBatch returns a batch handler that calls h (a nil h handles every
// record) and records, for each call, one delivery of each record, as
// Wrap records one: key, topic, partition, offset, attempt and retry
// state — read from the record's headers, as a batch's context carries
// none (listener.BatchHandler) — the batch's size, and the record's own
// outcome, decided as the listener decides it: a nil error handles every
// record; a *listener.BatchErrors, returned as it is or wrapped, fails
// the records it names (matched by topic, partition and offset; the
// first error of a record named twice), each with its error, and handles
// the others; any other error fails every record with it. A panic fails
// every record and panics on. So Handled, Retried and DeadLettered are
// reached per key, whether the key was handled alone or in a batch. The
// result is a BatchHandlerFunc, so it can also replace a batch handler
// field declared for listener.Register.
func (r *Recorder) WrapBatch(h listener.BatchHandler) listener.BatchHandlerFunc {
	return func(ctx context.Context, recs []*kgo.Record) (err error) {
		ds := make([]Delivery, len(recs))
		for i, rec := range recs {
			ds[i] = delivery(rec)
			ds[i].Batch, ds[i].Attempt = len(recs), 1
			if st, ok, derr := retry.Decode(rec.Headers); ok && derr == nil && !st.IsDeadLetter() {
				ds[i].State, ds[i].Attempt = st, st.Attempt
			}
		}
		defer r.finish(ds, batchOutcomes, &err)
		if h == nil {
			return nil
		}
		return h.HandleBatch(ctx, recs)
	}
}

// finish, deferred by the wrappers, gives ds their errors with outcomes
// from the call's result err — or every one the panic it recovers, which
// then goes on — and records them.
func (r *Recorder) finish(ds []Delivery, outcomes func([]Delivery, error), err *error) {
	if p := recover(); p != nil {
		perr := fmt.Errorf("panic: %v", p)
		for i := range ds {
			ds[i].Err = perr
		}
		r.add(ds...)
		panic(p)
	}
	outcomes(ds, *err)
	r.add(ds...)
}

// oneOutcome gives the single delivery of a handler call its result.
func oneOutcome(ds []Delivery, err error) { ds[0].Err = err }

// batchOutcomes gives each delivery of a batch handler call its own
// error, as the listener reads the call's result (listener.BatchErrors).
func batchOutcomes(ds []Delivery, err error) {
	var be *listener.BatchErrors
	if !errors.As(err, &be) {
		for i := range ds {
			ds[i].Err = err
		}
		return
	}
	for rec, rerr := range be.All() {
		if rec == nil {
			continue
		}
		i := slices.IndexFunc(ds, func(d Delivery) bool {
			return d.Topic == rec.Topic && d.Partition == rec.Partition && d.Offset == rec.Offset
		})
		if i >= 0 && ds[i].Err == nil {
			ds[i].Err = rerr
		}
	}
}

// WrapDLT returns a DLT handler that calls h (a nil h acknowledges every
// record) and records the call, with the record's dead-letter state. A
// key reaches DeadLettered only through a DLT handler wrapped here, so a
// listener whose dead-lettering is waited for needs
// listener.DLTHandler(rec.WrapDLT(h)).
func (r *Recorder) WrapDLT(h dlt.Handler) dlt.HandlerFunc {
	return func(ctx context.Context, rec *kgo.Record, st retry.State) (err error) {
		ds := []Delivery{delivery(rec)}
		ds[0].DeadLetter, ds[0].State, ds[0].Attempt = true, st, st.Attempt
		defer r.finish(ds, oneOutcome, &err)
		if h == nil {
			return nil
		}
		return h.HandleDLT(ctx, rec, st)
	}
}

func delivery(rec *kgo.Record) Delivery {
	return Delivery{Key: string(rec.Key), Topic: rec.Topic, Partition: rec.Partition, Offset: rec.Offset}
}

// add records ds at once, so that a Wait sees every record of a batch
// call or none.
func (r *Recorder) add(ds ...Delivery) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.byKey == nil {
		r.byKey = make(map[string][]Delivery)
	}
	for _, d := range ds {
		r.byKey[d.Key] = append(r.byKey[d.Key], d)
	}
	if r.changed != nil {
		close(r.changed)
		r.changed = nil
	}
}

// Wait waits until key reaches want and returns the key's deliveries so
// far, in the order the calls returned. When ctx ends first it returns
// them with an error naming the key, the outcome wanted, how long it
// waited, why it stopped (context.Cause of ctx) and every delivery of the
// key it saw. It never sleeps: it wakes on each recorded call.
func (r *Recorder) Wait(ctx context.Context, key string, want Outcome) ([]Delivery, error) {
	start := time.Now()
	for {
		r.mu.Lock()
		seen := slices.Clone(r.byKey[key])
		if r.changed == nil {
			r.changed = make(chan struct{})
		}
		changed := r.changed
		r.mu.Unlock()
		if slices.ContainsFunc(seen, want.reachedBy) {
			return seen, nil
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return seen, &waitError{key: key, want: want, waited: time.Since(start), cause: context.Cause(ctx), seen: seen}
		}
	}
}

// waitError is Wait's error: the key, what was wanted and what was seen.
type waitError struct {
	key    string
	want   Outcome
	waited time.Duration
	cause  error
	seen   []Delivery
}

func (e *waitError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "kretrytest: key %q: wanted %v, gave up after %v: %v", e.key, e.want, e.waited.Round(time.Millisecond), e.cause)
	if len(e.seen) == 0 {
		b.WriteString("\n\tno delivery of this key was recorded: was it produced, and is the handler wrapped by the Recorder (Wrap, WrapBatch)?")
		return b.String()
	}
	fmt.Fprintf(&b, "\n\tobserved %d deliveries of this key:", len(e.seen))
	dead := false
	for i, d := range e.seen {
		fmt.Fprintf(&b, "\n\t%d. %v", i+1, d)
		dead = dead || d.DeadLetter
	}
	if e.want.kind == kindDeadLettered && !dead {
		b.WriteString("\n\tno DLT handler call was recorded: is the DLT handler wrapped (listener.DLTHandler(rec.WrapDLT(h)))?")
	}
	return b.String()
}

// Unwrap returns the cause, so that errors.Is(err,
// context.DeadlineExceeded) holds after a deadline.
func (e *waitError) Unwrap() error { return e.cause }
