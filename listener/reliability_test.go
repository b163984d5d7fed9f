package listener_test

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kretry/kretry/internal/kafkatest"
	"github.com/kretry/kretry/listener"
	"github.com/kretry/kretry/retry"
	"github.com/kretry/kretry/strategy"
)

func TestNeverEarlyAndOrderedUnderLoad(t *testing.T) {
	f := newFixture(t, 4)
	const n = 400
	fails := map[string]int{}
	var recs []*kgo.Record
	for i := range n {
		k := fmt.Sprintf("k%03d", i)
		fails[k] = i % 3 // 0, 1 or 2 failures
		recs = append(recs, rec(f.topic, k))
	}
	s := newScript(failTimes(fails))
	l := f.listener(t, s, listener.Attempts(3),
		listener.Backoff(strategy.ExponentialBackoff(100*time.Millisecond, 2, 0)))
	f.c.Produce(recs...)
	started(t, l)
	kafkatest.Eventually(t, waitFor, func() bool {
		for k, fl := range fails {
			if s.count(k) != fl+1 {
				return false
			}
		}
		return true
	}, "every record handled after its failures")

	s.mu.Lock()
	defer s.mu.Unlock()
	lastOffset := map[string]int64{} // topic/partition order check per topic: offsets increase per key's topic+partition
	for _, d := range s.deliveries {
		if d.retried && d.at.Before(d.state.Due) {
			t.Errorf("%s handled %v early (attempt %d)", d.key, d.state.Due.Sub(d.at), d.state.Attempt)
		}
		_ = lastOffset
	}
	if len(s.dlt) != 0 {
		t.Errorf("%d records dead-lettered, want 0", len(s.dlt))
	}
}

func TestProcessingOrderWithinPartition(t *testing.T) {
	f := newFixture(t, 2)
	var mu sync.Mutex
	seen := map[int32][]int64{}
	h := listener.HandlerFunc(func(_ context.Context, r *kgo.Record) error {
		mu.Lock()
		seen[r.Partition] = append(seen[r.Partition], r.Offset)
		mu.Unlock()
		return nil
	})
	l := f.listener(t, h)
	var recs []*kgo.Record
	for i := range 500 {
		recs = append(recs, rec(f.topic, fmt.Sprint(i)))
	}
	f.c.Produce(recs...)
	started(t, l)
	kafkatest.Eventually(t, waitFor, func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(seen[0])+len(seen[1]) == 500
	}, "500 records handled")
	mu.Lock()
	defer mu.Unlock()
	for p, offs := range seen {
		for i := 1; i < len(offs); i++ {
			if offs[i] != offs[i-1]+1 {
				t.Fatalf("partition %d: offset %d handled after %d", p, offs[i], offs[i-1])
			}
		}
	}
}

func TestConcurrencyBound(t *testing.T) {
	f := newFixture(t, 8)
	var cur, peak atomic.Int32
	var handled atomic.Int32
	release := make(chan struct{})
	h := listener.HandlerFunc(func(ctx context.Context, _ *kgo.Record) error {
		c := cur.Add(1)
		for {
			p := peak.Load()
			if c <= p || peak.CompareAndSwap(p, c) {
				break
			}
		}
		select {
		case <-release:
		case <-ctx.Done():
		}
		cur.Add(-1)
		handled.Add(1)
		return nil
	})
	l := f.listener(t, h, listener.Concurrency(3))
	var recs []*kgo.Record
	for i := range 64 {
		r := rec(f.topic, fmt.Sprint(i))
		r.Partition = int32(i % 8)
		recs = append(recs, r)
	}
	f.c.ProduceToPartitions(recs...)
	started(t, l)
	kafkatest.Eventually(t, waitFor, func() bool { return cur.Load() == 3 }, "3 handlers running at once")
	close(release)
	kafkatest.Eventually(t, waitFor, func() bool { return handled.Load() == 64 }, "all handled")
	if p := peak.Load(); p != 3 {
		t.Errorf("peak concurrency %d, want 3", p)
	}
}

func TestRebalanceWhileRecordsWaitInTier(t *testing.T) {
	f := newFixture(t, 4)
	const n = 40
	fails := map[string]int{}
	var recs []*kgo.Record
	for i := range n {
		k := fmt.Sprintf("r%02d", i)
		fails[k] = 1
		r := rec(f.topic, k)
		r.Partition = int32(i % 4)
		recs = append(recs, r)
	}
	s := newScript(failTimes(fails))
	delay := 1500 * time.Millisecond
	opts := []listener.Opt{listener.Backoff(strategy.FixedBackoff(delay)), listener.Attempts(2)}
	a := f.listener(t, s, opts...)
	f.c.ProduceToPartitions(recs...)
	started(t, a)
	kafkatest.Eventually(t, waitFor, func() bool { return len(s.eventsOf(listener.EventRetried)) == n },
		"all %d records published to the tier", n)
	// A second member joins while every record waits in the tier.
	b := f.listener(t, s, opts...)
	stopB := started(t, b)
	kafkatest.Eventually(t, waitFor, func() bool {
		for k := range fails {
			if s.count(k) != 2 {
				return false
			}
		}
		return true
	}, "every record retried once")
	if err := stopB(); err != nil {
		t.Fatal(err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, d := range s.deliveries {
		if d.retried && d.at.Before(d.state.Due) {
			t.Errorf("%s handled %v before due after the rebalance", d.key, d.state.Due.Sub(d.at))
		}
	}
	for k := range fails {
		if c := s.counts[k]; c != 2 {
			t.Errorf("%s delivered %d times, want 2", k, c)
		}
	}
}

func TestPublishFailureHoldsCommitUntilRecovered(t *testing.T) {
	f := newFixture(t, 1)
	if f.c.Fake == nil {
		t.Skip("needs kfake fault injection")
	}
	s := newScript(failTimes(map[string]int{"x": 1}))
	l := f.listener(t, s, listener.Backoff(strategy.FixedBackoff(50*time.Millisecond)))
	tier := l.Plan().Tiers[0].Topic
	fault := f.c.Fake.Fault(kfake.Fault{
		Keys:  []kmsg.Key{kmsg.Produce},
		Topic: tier,
		Err:   kerr.TopicAuthorizationFailed,
		Count: -1,
	})
	f.c.Produce(rec(f.topic, "x"), rec(f.topic, "y"), rec(f.topic, "z"))
	started(t, l)
	kafkatest.Eventually(t, waitFor, func() bool {
		return s.count("z") == 1 && len(s.eventsOf(listener.EventForwardFailed)) >= 2
	}, "later records handled while x's publish keeps failing")
	if got := f.c.Committed(f.group, f.topic)[0]; got > 0 {
		t.Fatalf("committed offset %d while x (offset 0) is unacknowledged; want nothing committed past it", got)
	}
	fault.Remove()
	kafkatest.Eventually(t, waitFor, func() bool { return s.count("x") == 2 }, "x retried after the fault is removed")
	kafkatest.Eventually(t, waitFor, func() bool { return f.c.Committed(f.group, f.topic)[0] == 3 }, "main committed to 3")
}

func TestCommitFailureRedeliversEverything(t *testing.T) {
	f := newFixture(t, 1)
	if f.c.Fake == nil {
		t.Skip("needs kfake fault injection")
	}
	s := newScript(failTimes(nil))
	fault := f.c.Fake.Fault(kfake.Fault{Keys: []kmsg.Key{kmsg.OffsetCommit}, Group: f.group,
		Err: kerr.CoordinatorNotAvailable, Count: -1})
	l := f.listener(t, s, listener.ShutdownTimeout(2*time.Second), listener.RevokeTimeout(time.Second))
	f.c.Produce(rec(f.topic, "a"), rec(f.topic, "b"))
	stop := started(t, l)
	kafkatest.Eventually(t, waitFor, func() bool { return s.count("a") == 1 && s.count("b") == 1 }, "handled once")
	_ = stop()
	if got := f.c.Committed(f.group, f.topic); len(got) != 0 {
		t.Fatalf("committed %v although every commit failed", got)
	}
	fault.Remove()
	l2 := f.listener(t, s)
	started(t, l2)
	kafkatest.Eventually(t, waitFor, func() bool { return s.count("a") == 2 && s.count("b") == 2 },
		"records redelivered to the next consumer")
}

func TestShutdownMidBatchCommitsOnlyFinishedWork(t *testing.T) {
	f := newFixture(t, 1)
	var handled atomic.Int32
	block := make(chan struct{})
	h := listener.HandlerFunc(func(ctx context.Context, r *kgo.Record) error {
		if string(r.Key) == "stuck" {
			<-ctx.Done() // ignores nothing: only returns on shutdown
			return ctx.Err()
		}
		if handled.Add(1) == 5 {
			close(block)
		}
		return nil
	})
	l := f.listener(t, h, listener.ShutdownTimeout(300*time.Millisecond))
	var recs []*kgo.Record
	for i := range 5 {
		recs = append(recs, rec(f.topic, fmt.Sprint(i)))
	}
	recs = append(recs, rec(f.topic, "stuck"), rec(f.topic, "after"))
	f.c.Produce(recs...)
	stop := started(t, l)
	<-block
	start := time.Now()
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("shutdown took %v with a 300ms shutdown timeout", took)
	}
	if got := f.c.Committed(f.group, f.topic)[0]; got != 5 {
		t.Fatalf("committed %d, want 5: the finished records and nothing from the stuck one on", got)
	}
	// The next consumer gets the stuck record and the one after it.
	var again sync.Map
	h2 := listener.HandlerFunc(func(_ context.Context, r *kgo.Record) error {
		again.Store(string(r.Key), true)
		return nil
	})
	l2 := f.listener(t, h2)
	started(t, l2)
	kafkatest.Eventually(t, waitFor, func() bool {
		_, a := again.Load("stuck")
		_, b := again.Load("after")
		return a && b
	}, "stuck and after redelivered")
	if _, ok := again.Load("0"); ok {
		t.Error("a committed record was delivered again")
	}
}

func TestCorruptRetryHeadersGoToDLTNotHandler(t *testing.T) {
	f := newFixture(t, 1)
	s := newScript(failTimes(nil))
	l := f.listener(t, s)
	for _, topic := range l.Plan().Topics()[1:] {
		f.c.CreateTopic(topic, 1)
	}
	tier := l.Plan().Tiers[0].Topic
	bad := rec(tier, "corrupt")
	bad.Headers = []kgo.RecordHeader{{Key: retry.HeaderDue, Value: []byte{1, 2, 3}}, {Key: "user", Value: []byte("kept")}}
	none := rec(tier, "bare")
	f.c.Produce(bad, none)
	started(t, l)
	kafkatest.Eventually(t, waitFor, func() bool {
		return len(s.dltOf("corrupt")) == 1 && len(s.dltOf("bare")) == 1
	}, "both dead-lettered")
	if s.count("corrupt")+s.count("bare") != 0 {
		t.Errorf("handler saw records with corrupt headers")
	}
	d := s.dltOf("corrupt")[0]
	if d.state.Reason != listener.ReasonCorruptHeaders || d.state.Error == "" {
		t.Errorf("reason %q error %q, want corrupt-headers and the decode error", d.state.Reason, d.state.Error)
	}
	var kept bool
	for _, h := range d.headers {
		kept = kept || (h.Key == "user" && string(h.Value) == "kept")
	}
	if !kept {
		t.Errorf("user header lost on the way to the DLT: %v", d.headers)
	}
}

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
