package listener_test

import (
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kretry/kretry/internal/kafkatest"
	"github.com/kretry/kretry/listener"
	"github.com/kretry/kretry/strategy"
)

// Hooks are never called with a lock held: a hook that calls back into
// the listener on every event — pauses and resumes included — neither
// deadlocks nor sees events out of order (each partition's EventPaused
// precedes its EventResumed).
func TestHookMayCallBackIntoTheListener(t *testing.T) {
	t.Parallel()
	f := newFixture(t, 2)
	s := newScript(failTimes(map[string]int{"a": 2, "b": 2, "c": 1}))
	var (
		l       *listener.Listener
		calls   atomic.Int64
		mu      sync.Mutex
		paused  = map[string]int{} // per partition: pauses minus resumes
		badTurn []listener.Event
	)
	hook := listener.HookFunc(func(e listener.Event) {
		if l != nil {
			_ = l.Partitions() // takes the listener's locks: deadlocks if one is held
			calls.Add(1)
		}
		if e.Kind != listener.EventPaused && e.Kind != listener.EventResumed {
			return
		}
		mu.Lock()
		defer mu.Unlock()
		k := e.Topic + "/" + string(rune('0'+e.Partition))
		if e.Kind == listener.EventPaused {
			paused[k]++
		} else {
			paused[k]--
		}
		if paused[k] < 0 || paused[k] > 1 {
			badTurn = append(badTurn, e)
		}
	})
	l = f.listener(t, s, listener.Attempts(4), listener.Hooks(hook),
		listener.Backoff(strategy.FixedBackoff(150*time.Millisecond)))
	for _, k := range []string{"a", "b", "c", "d"} {
		f.c.Produce(rec(f.topic, k))
	}
	started(t, l)
	kafkatest.Eventually(t, 30*time.Second, func() bool {
		return s.count("a") == 3 && s.count("b") == 3 && s.count("c") == 2 && s.count("d") == 1 &&
			len(s.eventsOf(listener.EventResumed)) > 0
	}, "%v", lazy(func() string {
		return "deliveries " + string(rune('0'+s.count("a"))) + string(rune('0'+s.count("b"))) +
			string(rune('0'+s.count("c"))) + string(rune('0'+s.count("d")))
	}))
	if calls.Load() == 0 {
		t.Fatal("the hook never called back into the listener")
	}
	mu.Lock()
	defer mu.Unlock()
	if len(badTurn) > 0 {
		t.Fatalf("pause and resume events out of order: %+v", badTurn)
	}
}

// Hooks see every outcome exactly once per record.
func TestEventsCountOutcomes(t *testing.T) {
	f := newFixture(t, 1)
	var retried, dead, handled atomic.Int32
	hook := listener.HookFunc(func(e listener.Event) {
		switch e.Kind {
		case listener.EventRetried:
			retried.Add(1)
		case listener.EventDeadLettered:
			dead.Add(1)
		case listener.EventHandled:
			handled.Add(1)
		}
	})
	s := newScript(failTimes(map[string]int{"once": 1, "never": 9}))
	l := f.listener(t, s, listener.Hooks(hook), listener.Attempts(2),
		listener.Backoff(strategy.FixedBackoff(50*time.Millisecond)))
	f.c.Produce(rec(f.topic, "ok"), rec(f.topic, "once"), rec(f.topic, "never"))
	started(t, l)
	// handled: ok, once (retry), never's DLT record by the DLT handler.
	kafkatest.Eventually(t, waitFor, func() bool { return handled.Load() == 3 && dead.Load() == 1 },
		"3 handled and 1 dead-lettered (got %d, %d)", handled.Load(), dead.Load())
	if r := retried.Load(); r != 2 {
		t.Errorf("%d retried events, want 2 (once and never each retried once)", r)
	}
}
