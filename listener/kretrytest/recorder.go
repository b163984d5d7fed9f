package kretrytest

import (
	"context"
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
	// State is the retry state the call received: zero on a first
	// delivery; on a DLT handler call, State.Reason says why the record
	// was dead-lettered.
	State retry.State
	// Err is what the handler returned: nil when it handled the record.
	// A panic is recorded as an error and panics on.
	Err error
}

// String describes the delivery on one line, as failure messages list
// them: "attempt 1 from orders[0]@3: failed: stock service down",
// "attempt 2 from orders-retry[0]@0: handled", "DLT handler from
// orders-dlt[0]@0: reason \"exhausted\" after 3 deliveries, last error:
// stock service down".
func (d Delivery) String() string {
	where := fmt.Sprintf("%s[%d]@%d", d.Topic, d.Partition, d.Offset)
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
// Wrap and its DLT handler with WrapDLT. A Recorder is safe for
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
		d := delivery(rec)
		st, ok := retry.FromContext(ctx)
		if ok {
			d.State = st
		}
		d.Attempt = max(st.Attempt, 1)
		defer r.finish(&d, &err)
		if h == nil {
			return nil
		}
		return h.Handle(ctx, rec)
	}
}

// finish, deferred by the wrappers, records d with the call's result err,
// or with the panic it recovers, which then goes on.
func (r *Recorder) finish(d *Delivery, err *error) {
	if p := recover(); p != nil {
		d.Err = fmt.Errorf("panic: %v", p)
		r.add(*d)
		panic(p)
	}
	d.Err = *err
	r.add(*d)
}

// WrapDLT returns a DLT handler that calls h (a nil h acknowledges every
// record) and records the call, with the record's dead-letter state. A
// key reaches DeadLettered only through a DLT handler wrapped here, so a
// listener whose dead-lettering is waited for needs
// listener.DLTHandler(rec.WrapDLT(h)).
func (r *Recorder) WrapDLT(h dlt.Handler) dlt.HandlerFunc {
	return func(ctx context.Context, rec *kgo.Record, st retry.State) (err error) {
		d := delivery(rec)
		d.DeadLetter, d.State, d.Attempt = true, st, st.Attempt
		defer r.finish(&d, &err)
		if h == nil {
			return nil
		}
		return h.HandleDLT(ctx, rec, st)
	}
}

func delivery(rec *kgo.Record) Delivery {
	return Delivery{Key: string(rec.Key), Topic: rec.Topic, Partition: rec.Partition, Offset: rec.Offset}
}

func (r *Recorder) add(d Delivery) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.byKey == nil {
		r.byKey = make(map[string][]Delivery)
	}
	r.byKey[d.Key] = append(r.byKey[d.Key], d)
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
		b.WriteString("\n\tno delivery of this key was recorded: was it produced, and is the handler wrapped by the Recorder (Wrap)?")
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
