package listener_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

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
