package listener_test

import (
	"context"
	"testing"
	"testing/synctest"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/kretry/kretry/listener"
	"github.com/kretry/kretry/strategy"
)

// TestLongTiersOnVirtualTime runs the listener against kfake on kfake's
// in-memory network inside a synctest bubble, so tiers of 30 s and 5 min
// pass on the bubble's clock in milliseconds of real time. It checks that
// each retry waits at least its tier's delay, is never handled before the
// due time in its headers, and is handled promptly once due.
func TestLongTiersOnVirtualTime(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const (
			topic    = "orders"
			short    = 30 * time.Second
			long     = 5 * time.Minute
			maxLate  = time.Second // allowed lateness on the virtual clock
			deadline = time.Hour   // virtual time to wait for the outcomes
		)
		// Cleanups run last in, first out: the listener (started below)
		// stops first, then the producer, then the cluster.
		var stack kfake.VirtualNetwork
		c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.Ports(19092),
			kfake.ListenFn(stack.Listen), kfake.SeedTopics(1, topic))
		if err != nil {
			t.Fatalf("kfake: %v", err)
		}
		t.Cleanup(c.Close)
		producer, err := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...),
			kgo.Dialer(stack.DialContext), kgo.ProducerLinger(0))
		if err != nil {
			t.Fatalf("producer: %v", err)
		}
		t.Cleanup(producer.Close)

		s := newScript(failTimes(map[string]int{"flaky": 2, "bad": 100}))
		l, err := listener.New(c.ListenAddrs(), topic, s,
			listener.Group("virtual"), listener.Logger(quiet(t)),
			listener.DLTHandler(s), listener.Hooks(s),
			listener.Attempts(3), listener.Backoff(strategy.ListBackoff(short, long)),
			listener.ClientOpts(kgo.Dialer(stack.DialContext)))
		if err != nil {
			t.Fatalf("New: %v", err)
		}
		start := time.Now()
		if err := producer.ProduceSync(context.Background(), rec(topic, "flaky"), rec(topic, "bad")).FirstErr(); err != nil {
			t.Fatalf("produce: %v", err)
		}
		stop := started(t, l)
		awaitVirtual(t, deadline, func() bool { return s.count("flaky") == 3 && len(s.dltOf("bad")) == 1 },
			"flaky handled 3 times and bad dead-lettered")
		elapsed := time.Since(start)
		// Let anything still in flight settle before stopping, so a stray
		// extra delivery would show in the counts below.
		time.Sleep(time.Second)
		if err := stop(); err != nil {
			t.Fatalf("Run: %v", err)
		}

		plan := l.Plan()
		if len(plan.Tiers) != 2 || plan.Tiers[0].Delay != short || plan.Tiers[1].Delay != long {
			t.Fatalf("plan tiers %v, want delays %v and %v", plan.Tiers, short, long)
		}
		var worst time.Duration
		for _, key := range []string{"flaky", "bad"} {
			ds := s.of(key)
			if len(ds) != 3 {
				t.Fatalf("%s delivered %d times, want 3", key, len(ds))
			}
			wantTopics := []string{topic, plan.Tiers[0].Topic, plan.Tiers[1].Topic}
			for i, d := range ds {
				if d.topic != wantTopics[i] {
					t.Errorf("%s delivery %d from %s, want %s", key, i+1, d.topic, wantTopics[i])
				}
				if i == 0 {
					continue
				}
				st := d.state
				if !d.retried || int(st.Attempt) != i+1 {
					t.Errorf("%s delivery %d: attempt %d (state present %v), want %d", key, i+1, st.Attempt, d.retried, i+1)
				}
				if d.at.Before(st.Due) {
					t.Errorf("%s delivery %d handled at %v, %v before its due time %v", key, i+1, d.at, st.Due.Sub(d.at), st.Due)
				}
				// The headers carry milliseconds, so the previous
				// delivery's time is compared at that precision.
				prev := ds[i-1].at.Truncate(time.Millisecond)
				if i == 1 && d.at.Before(st.FirstFailure.Add(short)) {
					t.Errorf("%s delivery 2 at +%v, less than %v after the first failure at +%v",
						key, d.at.Sub(start), short, st.FirstFailure.Sub(start))
				}
				if gap, tier := d.at.Sub(prev), plan.Tiers[i-1].Delay; gap < tier {
					t.Errorf("%s delivery %d came %v after delivery %d, less than its tier delay %v", key, i+1, gap, i, tier)
				}
				late := d.at.Sub(st.Due)
				t.Logf("%s delivery %d at +%v, due +%v, late %v", key, i+1, d.at.Sub(start), st.Due.Sub(start), late)
				worst = max(worst, late)
			}
		}
		if worst >= maxLate {
			t.Errorf("worst lateness on the virtual clock %v, want < %v", worst, maxLate)
		}

		dl := s.dltOf("bad")
		if len(dl) != 1 {
			t.Fatalf("bad reached the DLT handler %d times, want 1", len(dl))
		}
		if d := dl[0]; d.topic != plan.DLT || d.state.Reason != listener.ReasonExhausted || d.state.Attempt != 3 {
			t.Errorf("DLT delivery from %s with reason %q attempt %d, want %s, %q, 3",
				d.topic, d.state.Reason, d.state.Attempt, plan.DLT, listener.ReasonExhausted)
		}
		if n := len(s.dltOf("flaky")); n != 0 {
			t.Errorf("flaky reached the DLT handler %d times, want 0", n)
		}
		t.Logf("outcomes after %v of virtual time; worst lateness %v", elapsed, worst)
	})
}

// awaitVirtual advances the bubble's clock a second at a time until cond
// holds, and fails t if it does not within limit of virtual time. The
// step does not limit precision: the listener's own timers fire at their
// exact virtual times while the test sleeps.
func awaitVirtual(t *testing.T, limit time.Duration, cond func() bool, what string) {
	t.Helper()
	end := time.Now().Add(limit)
	for !cond() {
		if time.Now().After(end) {
			t.Fatalf("after %v of virtual time: still waiting for %s", limit, what)
		}
		time.Sleep(time.Second)
	}
}
