package listener_test

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/kretry/kretry/internal/kafkatest"
	"github.com/kretry/kretry/listener"
	"github.com/kretry/kretry/retry"
	"github.com/kretry/kretry/strategy"
)

func TestDLTHandlerFailureIsBounded(t *testing.T) {
	f := newFixture(t, 1)
	var calls atomic.Int32
	dh := dltFunc(func() error { calls.Add(1); return errBoom })
	h := listener.HandlerFunc(func(context.Context, *kgo.Record) error { return strategy.Permanent(errBoom) })
	s := newScript(nil)
	l := f.listener(t, h, listener.DLTHandler(dh), listener.Hooks(s),
		listener.Policy(retry.Policy{DLTHandlerAttempts: 3, DLTHandlerBackoff: 50 * time.Millisecond}))
	f.c.Produce(rec(f.topic, "d"))
	started(t, l)
	kafkatest.Eventually(t, waitFor, func() bool { return len(s.eventsOf(listener.EventDropped)) == 1 },
		"DLT handler given up on")
	if c := calls.Load(); c != 3 {
		t.Errorf("DLT handler called %d times, want 3", c)
	}
	kafkatest.Eventually(t, waitFor, func() bool { return f.c.Committed(f.group, l.Plan().DLT)[0] == 1 },
		"DLT record committed")
	if n := len(f.c.ReadAll(l.Plan().DLT)); n != 1 {
		t.Errorf("DLT topic holds %d records, want 1 (it stays there)", n)
	}
}

func TestNoDLTDropsAndCreatesNoDLT(t *testing.T) {
	f := newFixture(t, 1)
	s := newScript(func(string, int) error { return strategy.Permanent(errBoom) })
	l := f.listener(t, s, listener.DLTStrategy(retry.NoDLT))
	f.c.Produce(rec(f.topic, "n"))
	started(t, l)
	kafkatest.Eventually(t, waitFor, func() bool { return len(s.eventsOf(listener.EventDropped)) == 1 }, "dropped")
	kafkatest.Eventually(t, waitFor, func() bool { return f.c.Committed(f.group, f.topic)[0] == 1 }, "committed")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	td, err := f.c.Admin.ListTopics(ctx, l.Plan().DLT)
	if err != nil {
		t.Fatal(err)
	}
	if d, ok := td[l.Plan().DLT]; ok && d.Err == nil {
		t.Errorf("DLT topic %s was created under NoDLT", l.Plan().DLT)
	}
}

func TestTimeoutBudgetDeadLetters(t *testing.T) {
	f := newFixture(t, 1)
	s := newScript(failTimes(map[string]int{"t": 100}))
	const budget, delay = 2 * time.Second, 300 * time.Millisecond
	l := f.listener(t, s, listener.Attempts(100), listener.Backoff(strategy.FixedBackoff(delay)),
		listener.Timeout(budget))
	f.c.Produce(rec(f.topic, "t"))
	started(t, l)
	kafkatest.Eventually(t, waitFor, func() bool { return len(s.dltOf("t")) == 1 }, "t dead-lettered")
	if st := s.dltOf("t")[0].state; st.Reason != listener.ReasonTimeout {
		t.Errorf("reason %q, want timeout", st.Reason)
	}
	// No retry was scheduled past the budget, and the budget, not the 100
	// attempts, ended the retries.
	ds := s.of("t")
	for _, d := range ds[1:] {
		if over := d.state.Due.Sub(d.state.OriginalTimestamp); over > budget {
			t.Errorf("attempt %d due %v after the original timestamp, past the %v budget", d.state.Attempt, over, budget)
		}
	}
	if n := len(ds); n < 2 || n > int(budget/delay)+1 {
		t.Errorf("t delivered %d times; a %v budget with %v delays allows 2 to %d", n, budget, delay, int(budget/delay)+1)
	}
}

type dltFunc func() error

func (f dltFunc) HandleDLT(context.Context, *kgo.Record, retry.State) error { return f() }
