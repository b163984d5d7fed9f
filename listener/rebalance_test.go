package listener_test

import (
	"context"
	"fmt"
	"strings"
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
	"github.com/kretry/kretry/strategy"
)

// A partition revoked while its handler runs must not crash the worker
// that comes back from the handler, and every record is still handled.
func TestRevokeWhileHandlerRuns(t *testing.T) {
	f := newFixture(t, 2)
	revoked := make(chan struct{})
	var once sync.Once
	inFlight := make(chan struct{}, 64)
	var handled sync.Map
	h := listener.HandlerFunc(func(ctx context.Context, r *kgo.Record) error {
		inFlight <- struct{}{}
		select {
		case <-revoked:
		case <-ctx.Done():
		}
		handled.Store(string(r.Key), true)
		return nil
	})
	hook := listener.HookFunc(func(e listener.Event) {
		if e.Kind == listener.EventRevoked {
			once.Do(func() { close(revoked) })
		}
	})
	opts := []listener.Opt{listener.Hooks(hook), listener.RevokeTimeout(5 * time.Second)}
	var recs []*kgo.Record
	for i := range 10 {
		r := rec(f.topic, fmt.Sprint("k", i))
		r.Partition = int32(i % 2)
		recs = append(recs, r)
	}
	f.c.ProduceToPartitions(recs...)
	started(t, f.listener(t, h, opts...))
	<-inFlight
	<-inFlight // both partitions have a handler running on the first member
	started(t, f.listener(t, h, opts...))
	kafkatest.Eventually(t, waitFor, func() bool {
		n := 0
		handled.Range(func(any, any) bool { n++; return true })
		return n == 10
	}, "all 10 records handled across the rebalance")
}

// Run returns within its ShutdownTimeout even when commits fail, and does
// not add the RevokeTimeout on top.
func TestShutdownHonoursTimeout(t *testing.T) {
	f := newFixture(t, 1)
	if f.c.Fake == nil {
		t.Skip("needs kfake fault injection")
	}
	s := newScript(failTimes(nil))
	f.c.Fake.Fault(kfake.Fault{Keys: []kmsg.Key{kmsg.OffsetCommit}, Group: f.group,
		Err: kerr.CoordinatorNotAvailable, Count: -1})
	l := f.listener(t, s, listener.ShutdownTimeout(time.Second), listener.RevokeTimeout(5*time.Second))
	f.c.Produce(rec(f.topic, "a"))
	stop := started(t, l)
	kafkatest.Eventually(t, waitFor, func() bool { return s.count("a") == 1 }, "handled")
	start := time.Now()
	_ = stop()
	if took := time.Since(start); took > 3*time.Second {
		t.Errorf("Run returned %v after cancel with ShutdownTimeout 1s", took)
	}
}

// A retry tier that refuses a record for good (here: too large) does not
// stall its partition: the record is dead-lettered with reason "rejected".
func TestTierRejectsRecordGoesToDLT(t *testing.T) {
	f := newFixture(t, 1)
	if f.c.Fake == nil {
		t.Skip("needs kfake fault injection")
	}
	s := newScript(failTimes(map[string]int{"big": 1}))
	l := f.listener(t, s, listener.Backoff(strategy.FixedBackoff(50*time.Millisecond)))
	f.c.Fake.Fault(kfake.Fault{Keys: []kmsg.Key{kmsg.Produce}, Topic: l.Plan().Tiers[0].Topic,
		Err: kerr.MessageTooLarge, Count: -1})
	f.c.Produce(rec(f.topic, "big"), rec(f.topic, "next"))
	started(t, l)
	kafkatest.Eventually(t, waitFor, func() bool { return len(s.dltOf("big")) == 1 }, "big dead-lettered")
	st := s.dltOf("big")[0].state
	if st.Reason != listener.ReasonRejected || st.Attempt != 1 {
		t.Errorf("reason %q attempt %d, want rejected after 1 delivery", st.Reason, st.Attempt)
	}
	kafkatest.Eventually(t, waitFor, func() bool { return f.c.Committed(f.group, f.topic)[0] == 2 }, "main committed past it")
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

// Consumer and group options given through ClientOpts do not break the
// admin client Run uses, and options that would break the commit guarantee
// are refused with their name.
func TestClientOptsAreFilteredAndChecked(t *testing.T) {
	f := newFixture(t, 1)
	s := newScript(failTimes(nil))
	l := f.listener(t, s, listener.ClientOpts(
		kgo.AutoCommitCallback(func(*kgo.Client, *kmsg.OffsetCommitRequest, *kmsg.OffsetCommitResponse, error) {}),
		kgo.FetchMaxBytes(1<<20)))
	f.c.Produce(rec(f.topic, "a"))
	started(t, l)
	kafkatest.Eventually(t, waitFor, func() bool { return s.count("a") == 1 }, "handled with group options in ClientOpts")

	bad := f.listener(t, s, listener.ClientOpts(kgo.GreedyAutoCommit()))
	err := bad.Run(context.Background())
	if err == nil || !strings.Contains(err.Error(), "greedy") {
		t.Fatalf("Run with GreedyAutoCommit: %v, want an error naming greedy autocommitting", err)
	}
	bad = f.listener(t, s, listener.ClientOpts(kgo.ManualFlushing()))
	if err := bad.Run(context.Background()); err == nil || !strings.Contains(err.Error(), "kgo.ManualFlushing") {
		t.Fatalf("Run with ManualFlushing: %v, want an error naming it", err)
	}
}
