package retry

import "context"

type stateKey struct{}

// WithState returns a context carrying s. The listener uses it to tell a
// handler which delivery it is running and why; it does so only for
// deliveries that have a retry state (from a retry tier or a DLT), so a
// record's first delivery costs no context.
func WithState(ctx context.Context, s State) context.Context {
	return context.WithValue(ctx, stateKey{}, s)
}

// FromContext returns the retry state the listener attached to a handler's
// context, and ok true. On a record's first delivery, from the main topic,
// there is no retry state: ok is false and s is State{Attempt: 1} — the
// delivery number is right, and the record itself is the original (its
// topic, partition, offset and timestamp). The same holds for a context
// that did not come from a listener. FromContext does not allocate.
func FromContext(ctx context.Context) (s State, ok bool) {
	if s, ok = ctx.Value(stateKey{}).(State); ok {
		return s, true
	}
	return State{Attempt: 1}, false
}
