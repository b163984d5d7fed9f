package retry

import "context"

type stateKey struct{}

// WithState returns a context carrying s. The listener uses it to tell a
// handler which delivery it is running and why.
func WithState(ctx context.Context, s State) context.Context {
	return context.WithValue(ctx, stateKey{}, s)
}

// FromContext returns the retry state the listener attached to a handler's
// context. ok is false on a record's first delivery from the main topic,
// which has no retry state yet.
func FromContext(ctx context.Context) (s State, ok bool) {
	s, ok = ctx.Value(stateKey{}).(State)
	return s, ok
}
