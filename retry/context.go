package retry

import (
	"context"
	"fmt"
)

type stateKey struct{}

// WithState returns a context carrying s. The listener uses it to tell a
// handler which delivery it is running and why; it does so only for
// deliveries that have a retry state (from a retry tier or a DLT), so a
// record's first delivery costs no context.
func WithState(ctx context.Context, s State) context.Context {
	return &stateCtx{Context: ctx, s: s}
}

// stateCtx is context.WithValue(ctx, stateKey{}, s) in one allocation
// instead of two (the context and the boxed State): WithState runs for
// every retry delivery.
type stateCtx struct {
	context.Context
	s State
}

// Value returns a pointer to the State for stateKey, and asks the parent
// for any other key.
func (c *stateCtx) Value(key any) any {
	if _, ok := key.(stateKey); ok {
		return &c.s
	}
	return c.Context.Value(key)
}

// String names the context as context.WithValue's does, for debugging.
func (c *stateCtx) String() string {
	return fmt.Sprintf("%v.WithState(attempt %d)", c.Context, c.s.Attempt)
}

// FromContext returns the retry state the listener attached to a handler's
// context, and ok true. On a record's first delivery, from the main topic,
// there is no retry state: ok is false and s is State{Attempt: 1} — the
// delivery number is right, and the record itself is the original (its
// topic, partition, offset and timestamp). The same holds for a context
// that did not come from a listener. FromContext does not allocate.
func FromContext(ctx context.Context) (s State, ok bool) {
	if p, ok := ctx.Value(stateKey{}).(*State); ok {
		return *p, true
	}
	return State{Attempt: 1}, false
}
