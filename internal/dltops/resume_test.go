package dltops

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kretry/kretry/internal/kafkatest"
)

// endSum is the sum of topic's end offsets.
func endSum(t *testing.T, c *kafkatest.Cluster, topic string) int64 {
	t.Helper()
	ends, err := c.Admin.ListEndOffsets(context.Background(), topic)
	if err != nil {
		t.Fatal(err)
	}
	var n int64
	ends.Each(func(o kadm.ListedOffset) { n += o.Offset })
	return n
}

// holdProduce makes the kfake cluster of c hold every produce request
// while hold is set, until release is closed; it returns the number of
// records in the requests held so far.
func holdProduce(c *kafkatest.Cluster, hold *atomic.Bool, release <-chan struct{}) *atomic.Int64 {
	var held atomic.Int64
	c.Fake.ControlKey(int16(kmsg.Produce), func(req kmsg.Request) (kmsg.Response, error, bool) {
		c.Fake.KeepControl()
		if !hold.Load() {
			return nil, nil, false
		}
		for _, tp := range req.(*kmsg.ProduceRequest).Topics {
			for _, p := range tp.Partitions {
				var b kmsg.RecordBatch
				if b.ReadFrom(p.Records) == nil {
					held.Add(int64(b.NumRecords))
				}
			}
		}
		c.Fake.SleepControl(func() { <-release })
		return nil, nil, false // then handled as usual: the records are appended
	})
	return &held
}

// The records a crashed attempt had in flight are appended after it died.
// The resume waits for them before it lists the targets' end offsets, so
// that it finds them and does not send them again; without the wait they
// would land after its search (here: they are released during the wait,
// and the target holds none of them before it). kfake only: it holds the
// produce requests.
func TestReplayResumeWaitsForRecordsInFlight(t *testing.T) {
	f := newReplayFixture(t, 10)
	if f.c.Fake == nil {
		t.Skip("needs kfake to hold produce requests")
	}
	var hold atomic.Bool
	hold.Store(true)
	release := make(chan struct{})
	held := holdProduce(f.c, &hold, release)
	first := f.cfg
	first.hooks.crashNoFlush = func(_, sends int64) bool {
		if sends < 10 {
			return false
		}
		kafkatest.Eventually(t, 10*time.Second, func() bool { return held.Load() > 0 }, "no produce request reached the broker")
		return true
	}
	if _, err := Replay(testCtx(t), first); !errors.Is(err, errCrash) {
		t.Fatalf("first attempt: %v, want the simulated crash", err)
	}
	if n := endSum(t, f.c, f.orders); n != 0 {
		t.Fatalf("%d records landed before the resume; want them all still held", n)
	}
	st, err := LoadState(StatePath(f.cfg.StateDir, "run-1"))
	if err != nil || st.Last.Ended || st.Last.Clean || st.Last.HandOverBy.IsZero() || st.Last.DeliveryBound <= 0 {
		t.Fatalf("state after the crash: %+v %v; want an attempt not ended, with its lease and delivery bound", st.Last, err)
	}

	hold.Store(false)
	clock := newFakeClock()
	var waits []time.Duration
	var once sync.Once
	clock.onAfter = func(d time.Duration) {
		waits = append(waits, d)
		once.Do(func() {
			close(release) // the held requests are appended while the resume waits
			want := held.Load()
			kafkatest.Eventually(t, 10*time.Second, func() bool { return endSum(t, f.c, f.orders) == want },
				"the %d held records were not appended", want)
		})
	}
	second := f.cfg
	second.Clock = clock
	var why string
	var until time.Time
	second.OnWait = func(u time.Time, w string) { until, why = u, w }
	start := clock.Now()
	res, err := Replay(testCtx(t), second)
	if err != nil {
		t.Fatal(err)
	}
	margin, bound := DefaultReplicationMargin, st.Last.DeliveryBound
	wantUntil := st.Last.HandOverBy.Add(bound + margin)
	if len(waits) != 1 || !until.Equal(wantUntil) || waits[0] != wantUntil.Sub(start) || res.Waited != waits[0] ||
		!strings.Contains(why, "did not end") {
		t.Errorf("waits %v until %v (%q), want one until %v", waits, until, why, wantUntil)
	}
	if res.Status != ResultDone || res.Totals.AlreadySent != held.Load() || res.Totals.Sent+res.Totals.AlreadySent != 10 {
		t.Errorf("resume %+v: want the %d held records already sent, 10 in all", res.Totals, held.Load())
	}
	exactlyOnce(t, f.c, f.orders, "run-1", f.sources(t, all))
}

// When the attempt ended with records unacknowledged, the resume waits
// from its last hand-over; after a clean end, not at all.
func TestQuietAt(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	r := &replayer{cfg: ReplayConfig{ReplicationMargin: 30 * time.Second}, bound: time.Minute}
	for _, tt := range []struct {
		name string
		last AttemptEnd
		want time.Time
	}{
		{"clean", AttemptEnd{Ended: true, Clean: true, LastHandOver: t0}, time.Time{}},
		{"ended unclean", AttemptEnd{Ended: true, LastHandOver: t0, HandOverBy: t0.Add(time.Hour), DeliveryBound: 70 * time.Second, Unacked: 3},
			t0.Add(100 * time.Second)},
		{"ended without hand-over", AttemptEnd{Ended: true}, time.Time{}},
		{"crashed", AttemptEnd{HandOverBy: t0, LastHandOver: t0.Add(-time.Hour), DeliveryBound: 70 * time.Second}, t0.Add(100 * time.Second)},
		{"version 1", AttemptEnd{}, t0.Add(time.Hour + 90*time.Second)},
	} {
		r.st = &State{Last: tt.last}
		got, why := r.quietAt(t0.Add(time.Hour))
		if !got.Equal(tt.want) || (got.IsZero() != (why == "")) {
			t.Errorf("%s: quiet at %v (%q), want %v", tt.name, got, why, tt.want)
		}
	}
}

// Ctrl-C while the cluster refuses every produce request and the
// replay's buffer of records in flight is full: the replay does not hang.
// It waits FlushTimeout for the records, writes that the attempt ended
// with them unacknowledged, and returns interrupted; the resume, once the
// cluster answers again, waits for them and sends every record once.
// kfake only: it fails the produce requests.
func TestReplayInterruptDuringOutage(t *testing.T) {
	f := newReplayFixture(t, 10)
	if f.c.Fake == nil {
		t.Skip("needs kfake to fail produce requests")
	}
	fault := f.c.Fake.Fault(kfake.Fault{Keys: []kmsg.Key{kmsg.Produce}, Err: kerr.NotEnoughReplicas, Count: -1})
	cfg := f.cfg
	cfg.hooks.maxInFlight = 2
	cfg.FlushTimeout = 300 * time.Millisecond
	cfg.DeliveryTimeout = 10 * time.Minute
	ctx, cancel := context.WithCancel(testCtx(t))
	type outcome struct {
		res *Result
		err error
	}
	done := make(chan outcome, 1)
	go func() {
		res, err := Replay(ctx, cfg)
		done <- outcome{res, err}
	}()
	wctx, wcancel := context.WithTimeout(testCtx(t), 30*time.Second)
	defer wcancel()
	if err := fault.Wait(wctx, 3); err != nil {
		t.Fatalf("the replay never tried to send: %v", err)
	}
	cancel()
	var o outcome
	select {
	case o = <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("the replay did not return within 30s of the interrupt")
	}
	if !errors.Is(o.err, ErrInterrupted) || o.res == nil || o.res.Status != ResultInterrupted || o.res.Clean || o.res.Unacked != 2 {
		t.Fatalf("interrupted during the outage: %+v %v; want interrupted with 2 records unacknowledged", o.res, o.err)
	}
	st, err := LoadState(StatePath(f.cfg.StateDir, "run-1"))
	if err != nil || !st.Last.Ended || st.Last.Clean || st.Last.Unacked != 2 || st.Last.LastHandOver.IsZero() || st.Totals.Sent != 0 {
		t.Fatalf("state %+v %v; want the attempt ended unclean with 2 unacknowledged", st.Last, err)
	}
	fault.Remove()
	res, err := Replay(testCtx(t), f.cfg)
	if err != nil || res.Status != ResultDone || res.Waited <= 0 || res.Totals.Sent != 10 {
		t.Fatalf("resume: %+v %v", res, err)
	}
	exactlyOnce(t, f.c, f.orders, "run-1", f.sources(t, all))
}

// Two original topics. The first attempt crashes right after the
// checkpoint that adds the second topic; the second closes its producer
// without flushing, so that the records it held never land; the third
// finishes. Every source lands exactly once in its topic.
func TestReplayCrashesWithTwoTargets(t *testing.T) {
	c := kafkatest.New(t)
	dlt, orders, payments := c.Name("dlt"), c.Name("orders"), c.Name("payments")
	c.CreateTopic(dlt, 2)
	c.CreateTopic(orders, 2)
	c.CreateTopic(payments, 3)
	now := time.Now()
	var recs []*kgo.Record
	for i := range 24 {
		topic := orders
		if i >= 3 && i%3 == 0 {
			topic = payments
		}
		recs = append(recs, deadLetter(dlt, dead{key: fmt.Sprintf("k%02d", i), origTopic: topic, origPart: int32(i % 2),
			errType: "e", dltPart: int32(i % 2)}, now))
	}
	c.ProduceToPartitions(recs...)
	cfg := ReplayConfig{Run: "two", DLTs: []string{dlt}, StateDir: t.TempDir(), ClientOpts: opts(c), Clock: newFakeClock()}

	first := cfg
	var added []string
	first.hooks.afterCheckpoint = func(target string) bool {
		if target != "" {
			added = append(added, target)
		}
		return target == payments
	}
	if _, err := Replay(testCtx(t), first); !errors.Is(err, errCrash) {
		t.Fatalf("first attempt: %v", err)
	}
	if len(added) != 2 || added[1] != payments {
		t.Fatalf("targets added %v, want orders then payments", added)
	}
	if n := endSum(t, c, payments); n != 0 {
		t.Fatalf("%d records in %s right after its checkpoint, want 0", n, payments)
	}

	second := cfg
	second.hooks.prodOpts = []kgo.Opt{kgo.ProducerLinger(time.Minute)} // the records wait in the producer
	second.hooks.crashNoFlush = func(read, _ int64) bool { return read == 6 }
	before := endSum(t, c, orders) + endSum(t, c, payments)
	if _, err := Replay(testCtx(t), second); !errors.Is(err, errCrash) {
		t.Fatalf("second attempt: %v", err)
	}
	if after := endSum(t, c, orders) + endSum(t, c, payments); after != before {
		t.Fatalf("%d records landed from the producer closed without flushing, want none", after-before)
	}

	res, err := Replay(testCtx(t), cfg)
	if err != nil || res.Status != ResultDone || res.Attempts != 3 {
		t.Fatalf("third attempt: %+v %v", res, err)
	}
	var wantOrders, wantPayments []string
	for _, r := range c.ReadAll(dlt) {
		info := Decoder{}.Decode(r)
		if info.target() == orders {
			wantOrders = append(wantOrders, SourceOf(r))
		} else {
			wantPayments = append(wantPayments, SourceOf(r))
		}
	}
	exactlyOnce(t, c, orders, "two", wantOrders)
	exactlyOnce(t, c, payments, "two", wantPayments)
	if got := res.Totals.SentTo[orders] + res.Totals.SentTo[payments]; got != 24 {
		t.Errorf("sent to %v, want 24 in all", res.Totals.SentTo)
	}
}

// A resume whose target records after the last checkpoint were deleted
// cannot tell what was sent: it stops with ErrUnverifiable naming the
// partition, and leaves the state file as it was.
func TestReplayResumeRefusesWhenTargetRecordsAreGone(t *testing.T) {
	f := newReplayFixture(t, 20)
	f.cfg.CheckpointEvery = 5
	crashed := f.cfg
	crashed.hooks.crash = func(_, sends int64) bool { return sends == 8 }
	if _, err := Replay(testCtx(t), crashed); !errors.Is(err, errCrash) {
		t.Fatal(err)
	}
	path := StatePath(f.cfg.StateDir, "run-1")
	st, err := LoadState(path)
	if err != nil {
		t.Fatal(err)
	}
	// Delete every record of the partitions written after the checkpoint.
	ends, err := f.c.Admin.ListEndOffsets(context.Background(), f.orders)
	if err != nil {
		t.Fatal(err)
	}
	var del kadm.Offsets
	var gone []string
	ends.Each(func(o kadm.ListedOffset) {
		if o.Offset > st.Targets[f.orders][o.Partition] {
			del.AddOffset(f.orders, o.Partition, o.Offset, -1)
			gone = append(gone, fmt.Sprintf("%s[%d]", f.orders, o.Partition))
		}
	})
	if len(gone) == 0 {
		t.Fatal("no target partition got records after the checkpoint")
	}
	if resp, err := f.c.Admin.DeleteRecords(context.Background(), del); err != nil || resp.Error() != nil {
		t.Fatalf("delete records: %v %v", err, resp.Error())
	}
	before, _ := os.ReadFile(path)
	res, err := Replay(testCtx(t), f.cfg)
	if !errors.Is(err, ErrUnverifiable) || res == nil || res.Status != ResultFailed {
		t.Fatalf("resume: %+v %v, want ErrUnverifiable", res, err)
	}
	named := false
	for _, g := range gone {
		named = named || strings.Contains(err.Error(), "target "+g+": its log start")
	}
	if !named || !strings.Contains(err.Error(), "new --run ID") {
		t.Errorf("error %q names none of %v, or not what to do", err, gone)
	}
	if after, _ := os.ReadFile(path); string(after) != string(before) {
		t.Errorf("the state file changed:\n%s\nwas\n%s", after, before)
	}
}

// Totals are copied for the Result under the lock the produce callbacks
// take, so that a late acknowledgement cannot race with the copy (run with
// -race).
func TestResultTotalsWithLateAcks(t *testing.T) {
	r := &replayer{cfg: ReplayConfig{Progress: NoProgress{}, Clock: newFakeClock()},
		st: &State{Sources: map[string]map[int32]SourcePos{}}, space: make(chan struct{}, 1)}
	r.st.Totals.init()
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := range 2000 {
			rt := route{topic: fmt.Sprint("t", i%7)}
			if i%2 == 0 {
				rt.kind, rt.group = kindTier, fmt.Sprint("g", i%5)
			}
			r.answer(sendItem{route: rt}, nil)
		}
	}()
	for range 200 {
		res, _ := r.result(nil, false)
		res.Totals.SentTo["mine"]++ // the copy is the caller's
		res.Totals.TierGroups["mine"] = nil
		for _, gs := range res.Totals.TierGroups {
			_ = slices.Clone(gs) // read while the callbacks add groups
		}
	}
	<-done
	res, _ := r.result(nil, false)
	if res.Totals.Sent != 2000 || res.Totals.SentTo["mine"] != 0 || res.Totals.TierGroups["mine"] != nil ||
		len(res.Totals.TierGroups) != 7 || len(res.Totals.TierGroups["t0"]) != 5 {
		t.Errorf("totals %+v, want 2000 sent, 7 tiers of 5 groups, and no change from the copies", res.Totals)
	}
}
