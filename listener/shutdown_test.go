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
)

// misbehaveStuck is the shutdown scenario with a handler that ignores its
// context: partition 0 holds a0, a1, stuck, after; partition 1 holds b0–b4.
// The first delivery of "stuck" blocks until release is closed, whatever
// its context says; every other delivery returns nil at once.
type misbehaveStuck struct {
	t        *testing.T
	f        fixture
	shutdown time.Duration
	release  chan struct{}
	once     sync.Once // closes release
	stuckIn  chan struct{}
	returned atomic.Bool

	mu         sync.Mutex
	counts     map[string]int
	canceledAt time.Time // the stuck call's context was canceled

	stopAt time.Time     // the listener's Run was canceled
	took   time.Duration // until Run returned
}

func newMisbehaveStuck(t *testing.T, shutdown time.Duration) *misbehaveStuck {
	m := &misbehaveStuck{t: t, f: newFixture(t, 2), shutdown: shutdown, release: make(chan struct{}),
		stuckIn: make(chan struct{}), counts: map[string]int{}}
	t.Cleanup(m.unblock)
	var recs []*kgo.Record
	for _, k := range []string{"a0", "a1", "stuck", "after"} {
		r := rec(m.f.topic, k)
		r.Partition = 0
		recs = append(recs, r)
	}
	for i := range 5 {
		r := rec(m.f.topic, fmt.Sprint("b", i))
		r.Partition = 1
		recs = append(recs, r)
	}
	// One produce: partition 0's four records reach the listener in one
	// fetch, so a0 and a1 are handled in the same worker turn as stuck.
	misbehaveProduce(t, m.f.c.Seeds, recs...)
	return m
}

// unblock lets the stuck handler return.
func (m *misbehaveStuck) unblock() { m.once.Do(func() { close(m.release) }) }

func (m *misbehaveStuck) Handle(ctx context.Context, r *kgo.Record) error {
	key := string(r.Key)
	m.mu.Lock()
	m.counts[key]++
	first := m.counts[key] == 1
	m.mu.Unlock()
	if key == "stuck" && first {
		context.AfterFunc(ctx, func() {
			m.mu.Lock()
			m.canceledAt = time.Now()
			m.mu.Unlock()
		})
		close(m.stuckIn)
		<-m.release // ignores ctx entirely
		m.returned.Store(true)
	}
	return nil
}

func (m *misbehaveStuck) count(key string) int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.counts[key]
}

// run starts a listener, waits until the stuck call runs and the records
// around it are handled, stops the listener and returns the committed
// offsets of the main topic. Then it lets the stuck call return and starts
// a second listener of the group, which runs until partition 0 is
// committed to its end.
func (m *misbehaveStuck) run() (committed map[int32]int64) {
	t := m.t
	t.Helper()
	stop := started(t, m.f.listener(t, m, listener.ShutdownTimeout(m.shutdown)))
	select {
	case <-m.stuckIn:
	case <-time.After(waitFor):
		t.Fatal("the stuck record was never delivered")
	}
	kafkatest.Eventually(t, waitFor, func() bool { return m.count("a1") == 1 && m.count("b4") == 1 },
		"the records around the stuck one handled")
	m.stopAt = time.Now()
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	m.took = time.Since(m.stopAt)
	if m.returned.Load() {
		t.Fatal("the stuck handler returned before Run did: the test proves nothing")
	}
	committed = m.f.c.Committed(m.f.group, m.f.topic)

	// The stuck handler returns nil after Run has returned: its late
	// success must not be committed (the client is closed).
	m.unblock()
	kafkatest.Eventually(t, waitFor, m.returned.Load, "the stuck handler returns")
	started(t, m.f.listener(t, m))
	kafkatest.Eventually(t, waitFor, func() bool { return m.f.c.Committed(m.f.group, m.f.topic)[0] == 4 },
		"partition 0 committed to its end by the next listener")
	return committed
}

// A handler that ignores its context does not hold up the shutdown: Run
// returns within ShutdownTimeout although the handler is still running,
// having canceled the handler's context first. Nothing is committed at or
// past the stuck record, the other partition is committed to its end, and
// the next listener of the group gets the stuck record again (and the one
// behind it) and nothing of the other partition.
//
// Records finished before the stuck one in the same worker turn (a0, a1)
// may be redelivered too: see
// TestMisbehavingShutdownCommitsRecordsFinishedBeforeStuckHandler.
func TestMisbehavingHandlerIgnoresContextAtShutdown(t *testing.T) {
	const shutdown = 1500 * time.Millisecond
	m := newMisbehaveStuck(t, shutdown)
	got := m.run()
	if m.took > shutdown+time.Second {
		t.Errorf("Run returned %v after cancel, with a %v ShutdownTimeout", m.took.Round(time.Millisecond), shutdown)
	}
	m.mu.Lock()
	canceled := m.canceledAt
	m.mu.Unlock()
	if canceled.IsZero() || canceled.After(m.stopAt.Add(m.took)) {
		t.Errorf("the stuck handler's context was not canceled before Run returned (canceled at %v)", canceled)
	}
	if got[0] > 2 || got[1] != 5 {
		t.Errorf("committed %v at shutdown: want partition 0 at most at 2 (the stuck record's offset) and 1 at 5", got)
	}
	if n := m.count("stuck"); n != 2 {
		t.Errorf("stuck delivered %d times, want 2 (redelivered to the next listener)", n)
	}
	if n := m.count("after"); n != 1 {
		t.Errorf("after delivered %d times, want 1", n)
	}
	for i := range 5 {
		if n := m.count(fmt.Sprint("b", i)); n != 1 {
			t.Errorf("b%d delivered %d times, want 1: partition 1 was committed", i, n)
		}
	}
	t.Logf("FIGURES ignored context at shutdown: ShutdownTimeout %v; Run returned %v after cancel with the handler still running (its context canceled %v after cancel); "+
		"committed at shutdown %v; redelivered: stuck %d, a0 %d, a1 %d extra deliveries",
		shutdown, m.took.Round(time.Millisecond), canceled.Sub(m.stopAt).Round(time.Millisecond), got,
		m.count("stuck")-1, m.count("a0")-1, m.count("a1")-1)
}

// Records a worker finished before it got stuck in a handler call are done
// and must be committed at shutdown: only the stuck record and what follows
// are redelivered. (A worker marks its turn's records once, when the turn
// ends; shutdown and revoke mark what a turn still in a handler call has
// finished.)
func TestMisbehavingShutdownCommitsRecordsFinishedBeforeStuckHandler(t *testing.T) {
	m := newMisbehaveStuck(t, time.Second)
	got := m.run()
	if got[0] != 2 {
		t.Errorf("committed %v at shutdown: partition 0 at %d, want 2 (a0 and a1 were handled before the stuck record)", got, got[0])
	}
	if a0, a1 := m.count("a0"), m.count("a1"); a0 != 1 || a1 != 1 {
		t.Errorf("a0 delivered %d times, a1 %d: finished records were redelivered", a0, a1)
	}
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
