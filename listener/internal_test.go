package listener

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/kretry/kretry/dlt"
	"github.com/kretry/kretry/internal/due"
	"github.com/kretry/kretry/retry"
)

// A worker of a partition that was lost (or revoked past RevokeTimeout)
// and then assigned back must not pause the partition under the new
// owner's feet: nothing would resume it.
func TestStaleWorkerDoesNotPauseReassignedPartition(t *testing.T) {
	entered, release := make(chan struct{}), make(chan struct{})
	l, err := New([]string{"127.0.0.1:1"}, "orders",
		HandlerFunc(func(context.Context, *kgo.Record) error { return nil }),
		DLTHandler(dlt.HandlerFunc(func(context.Context, *kgo.Record, retry.State) error {
			close(entered)
			<-release
			return errors.New("downstream down")
		})))
	if err != nil {
		t.Fatal(err)
	}
	c, cl := wireForTest(t, l)

	tps := map[string][]int32{l.plan.DLT: {0}}
	c.assigned(context.Background(), cl, tps)
	c.parts[topicPartition{l.plan.DLT, 0}].add([]*kgo.Record{{Topic: l.plan.DLT, Partition: 0, Offset: 7}})
	done := make(chan struct{})
	go func() { defer close(done); c.runq.pop().run() }()
	<-entered
	c.lost(context.Background(), cl, tps)
	c.assigned(context.Background(), cl, tps)
	close(release) // the old worker's DLT handler fails: it would wait and pause
	<-done

	c.pauser.apply() // whatever the parts asked of the client, applied now
	cur := c.parts[topicPartition{l.plan.DLT, 0}]
	cur.mu.Lock()
	pauses, waiting := cur.pause.reasons, cur.waiting
	cur.mu.Unlock()
	if paused := cl.PauseFetchPartitions(nil)[l.plan.DLT]; len(paused) > 0 && pauses == 0 && !waiting {
		t.Fatalf("partition paused in the client but its live part has no pause reason: nothing would resume it")
	}
	if h := c.held.Load(); h != 0 {
		t.Fatalf("held = %d, want 0: the old part's record was dropped and the new part has none", h)
	}
}

// After a partition is lost and assigned back while its old handler call
// still runs, the new part waits for that call: the same partition is never
// handled by two workers at once.
func TestReassignedPartitionWaitsForOldHandler(t *testing.T) {
	entered, release := make(chan struct{}), make(chan struct{})
	var calls []int64
	var mu sync.Mutex
	l, err := New([]string{"127.0.0.1:1"}, "orders",
		HandlerFunc(func(_ context.Context, r *kgo.Record) error {
			mu.Lock()
			calls = append(calls, r.Offset)
			mu.Unlock()
			if r.Offset == 1 {
				close(entered)
				<-release
			}
			return nil
		}))
	if err != nil {
		t.Fatal(err)
	}
	c, cl := wireForTest(t, l)

	tps := map[string][]int32{"orders": {0}}
	c.assigned(context.Background(), cl, tps)
	c.parts[topicPartition{"orders", 0}].add([]*kgo.Record{{Topic: "orders", Offset: 1}})
	oldDone := make(chan struct{})
	go func() { defer close(oldDone); c.runq.pop().run() }()
	<-entered
	c.lost(context.Background(), cl, tps)
	c.assigned(context.Background(), cl, tps)
	np := c.parts[topicPartition{"orders", 0}]
	np.add([]*kgo.Record{{Topic: "orders", Offset: 1}, {Topic: "orders", Offset: 2}})
	np.mu.Lock()
	queued := np.queued
	np.mu.Unlock()
	if queued {
		t.Fatal("new part queued while the old part's handler still runs")
	}
	close(release)
	<-oldDone
	// Now the new part is runnable.
	c.runq.pop().run()
	mu.Lock()
	defer mu.Unlock()
	if want := []int64{1, 1, 2}; !slices.Equal(calls, want) {
		t.Fatalf("handler calls %v, want %v (old call, then the new part in order)", calls, want)
	}
}

// wireForTest gives l a consumer as Run would, with a client that never
// connects, so tests can drive its callbacks and workers by hand.
func wireForTest(t *testing.T, l *Listener) (*consumer, *kgo.Client) {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers("127.0.0.1:1"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	c := newConsumer(l)
	c.client, c.runq, c.timers = cl, newRunq(), due.New((*part).wake)
	c.fwd = &asyncForwarder{c: c}
	c.pauser = newPauser()
	c.pauser.start(cl)
	produceCtx, cancel := context.WithCancel(context.Background())
	c.handlerCtx, c.produceCtx = context.Background(), produceCtx
	t.Cleanup(func() { cancel(); c.fwd.stop() }) // no publish retries outlive the test
	t.Cleanup(c.timers.Stop)
	t.Cleanup(c.pauser.close)
	return c, cl
}
