package retry_test

import (
	"context"
	"testing"
	"time"

	"github.com/kretry/kretry/retry"
)

// A first delivery has no retry state, but its attempt number is 1, not 0.
func TestFromContextFirstDelivery(t *testing.T) {
	st, ok := retry.FromContext(context.Background())
	if ok {
		t.Error("ok is true without a retry state")
	}
	if st != (retry.State{Attempt: 1}) {
		t.Errorf("FromContext without a state = %+v, want State{Attempt: 1}", st)
	}
	want := retry.State{Attempt: 3, OriginalTopic: "orders", Due: time.UnixMilli(1700000000000)}
	st, ok = retry.FromContext(retry.WithState(context.Background(), want))
	if !ok || st != want {
		t.Errorf("FromContext(WithState(s)) = %+v, %v; want %+v, true", st, ok, want)
	}
}

// FromContext costs no allocation, with a state or without one: the
// listener attaches none on a first delivery, so the hot path stays free.
func TestFromContextDoesNotAllocate(t *testing.T) {
	bare := context.Background()
	withState := retry.WithState(bare, retry.State{Attempt: 2, OriginalTopic: "orders"})
	var sink int32
	for name, ctx := range map[string]context.Context{"first delivery": bare, "retry": withState} {
		if n := testing.AllocsPerRun(100, func() {
			st, _ := retry.FromContext(ctx)
			sink += st.Attempt
		}); n != 0 {
			t.Errorf("%s: FromContext allocates %v times per call", name, n)
		}
	}
	_ = sink
}

type otherKey struct{}

// The state survives contexts derived from the handler's, the handler's
// own values stay reachable through it, and attaching it costs one
// allocation, not two: the listener does it on every retry delivery.
func TestWithStateDerivedAndOneAllocation(t *testing.T) {
	parent := context.WithValue(context.Background(), otherKey{}, "trace")
	want := retry.State{Attempt: 4, OriginalTopic: "orders"}
	ctx, cancel := context.WithTimeout(retry.WithState(parent, want), time.Minute)
	defer cancel()
	if st, ok := retry.FromContext(ctx); !ok || st != want {
		t.Errorf("FromContext through WithTimeout = %+v, %v; want %+v, true", st, ok, want)
	}
	if v := ctx.Value(otherKey{}); v != "trace" {
		t.Errorf("a parent's value through WithState = %v, want trace", v)
	}
	var kept []context.Context // so the context escapes, as the listener's does
	if n := testing.AllocsPerRun(100, func() { kept = append(kept[:0], retry.WithState(parent, want)) }); n != 1 {
		t.Errorf("WithState allocates %v times, want 1", n)
	}
}
