package listener_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/kretry/kretry/internal/kafkatest"
	"github.com/kretry/kretry/listener"
	"github.com/kretry/kretry/retry"
	"github.com/kretry/kretry/strategy"
)

// batchCall is one call of a batch handler under test.
type batchCall struct {
	at      time.Time
	topic   string
	recs    []delivery // each record, its retry state read from its headers
	partLen map[int32]int
}

// batchScript is a batch handler whose outcome per record is a function of
// the record's delivery number (1-based), as script's is, and which
// records every call. whole, when set, decides the call's error from the
// call's number and its records instead (nil: fall back to plan).
type batchScript struct {
	*script
	callsMu sync.Mutex
	calls   []batchCall
	whole   func(call int, recs []*kgo.Record) error
	block   func(ctx context.Context, call int) // runs before the outcome, if set
}

func newBatchScript(plan func(key string, n int) error) *batchScript {
	return &batchScript{script: newScript(plan)}
}

func (b *batchScript) HandleBatch(ctx context.Context, recs []*kgo.Record) error {
	if _, ok := retry.FromContext(ctx); ok {
		return errors.New("test: a batch context carries retry state")
	}
	b.callsMu.Lock()
	call := len(b.calls) + 1
	c := batchCall{at: time.Now(), partLen: map[int32]int{}}
	for _, r := range recs {
		st, ok, err := retry.Decode(r.Headers)
		if err != nil {
			b.callsMu.Unlock()
			return fmt.Errorf("test: %s@%d: %w", r.Topic, r.Offset, err)
		}
		c.topic = r.Topic
		c.partLen[r.Partition]++
		c.recs = append(c.recs, delivery{key: string(r.Key), topic: r.Topic, offset: r.Offset, at: c.at, state: st, retried: ok,
			headers: append([]kgo.RecordHeader(nil), r.Headers...)})
	}
	b.calls = append(b.calls, c)
	b.callsMu.Unlock()
	if b.block != nil {
		b.block(ctx, call)
	}
	if b.whole != nil {
		if err := b.whole(call, recs); err != nil {
			b.countAll(recs)
			return err
		}
	}
	var errs listener.BatchErrors
	for _, r := range recs {
		errs.Add(r, b.one(r))
	}
	return errs.Err()
}

// one is the script's outcome for r, counted as a delivery of its key.
func (b *batchScript) one(r *kgo.Record) error {
	b.mu.Lock()
	key := string(r.Key)
	b.counts[key]++
	n := b.counts[key]
	b.deliveries = append(b.deliveries, delivery{key: key, topic: r.Topic, offset: r.Offset, at: time.Now()})
	b.mu.Unlock()
	return b.plan(key, n)
}

// countAll counts a delivery of each record without deciding its outcome.
func (b *batchScript) countAll(recs []*kgo.Record) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, r := range recs {
		b.counts[string(r.Key)]++
		b.deliveries = append(b.deliveries, delivery{key: string(r.Key), topic: r.Topic, offset: r.Offset, at: time.Now()})
	}
}

func (b *batchScript) callList() []batchCall {
	b.callsMu.Lock()
	defer b.callsMu.Unlock()
	return slices.Clone(b.calls)
}

// batchListener is fixture.listener for a batch handler.
func (f fixture) batchListener(t *testing.T, h listener.BatchHandler, opts ...listener.Opt) *listener.Listener {
	t.Helper()
	base := []listener.Opt{listener.Group(f.group), listener.Logger(quiet(t)),
		listener.FetchMaxWait(20 * time.Millisecond), listener.ShutdownTimeout(10 * time.Second),
		listener.ClientOpts(kgo.AutoCommitInterval(200 * time.Millisecond))}
	if s, ok := h.(*batchScript); ok {
		base = append(base, listener.DLTHandler(s.script), listener.Hooks(s.script))
	}
	l, err := listener.NewBatch(f.c.Seeds, f.topic, h, append(base, opts...)...)
	if err != nil {
		t.Fatalf("NewBatch: %v", err)
	}
	return l
}

// produceKeys produces n records k000… spread over partitions, in key
// order within each partition.
func produceKeys(f fixture, prefix string, n int, partitions int32) []string {
	var recs []*kgo.Record
	var keys []string
	for i := range n {
		k := fmt.Sprintf("%s%03d", prefix, i)
		r := rec(f.topic, k)
		r.Partition = int32(i) % partitions
		recs = append(recs, r)
		keys = append(keys, k)
	}
	f.c.ProduceToPartitions(recs...)
	return keys
}

// checkBatchShape fails unless every call held records of one topic and
// one partition, in ascending offsets, at most max of them.
func checkBatchShape(t *testing.T, calls []batchCall, maxSize int) {
	t.Helper()
	for i, c := range calls {
		if len(c.partLen) != 1 {
			t.Errorf("call %d mixes partitions: %v", i+1, c.partLen)
		}
		if len(c.recs) > maxSize || len(c.recs) == 0 {
			t.Errorf("call %d has %d records, want 1..%d", i+1, len(c.recs), maxSize)
		}
		for j, r := range c.recs {
			if r.topic != c.recs[0].topic {
				t.Errorf("call %d mixes topics %s and %s", i+1, c.recs[0].topic, r.topic)
			}
			if j > 0 && r.offset <= c.recs[j-1].offset {
				t.Errorf("call %d: offsets out of order: %d after %d", i+1, r.offset, c.recs[j-1].offset)
			}
		}
	}
}

func committedSum(f fixture, topic string) int64 {
	var total int64
	for _, off := range f.c.Committed(f.group, topic) {
		total += off
	}
	return total
}

func TestBatchAllSucceedInPartitionBatches(t *testing.T) {
	f := newFixture(t, 3)
	s := newBatchScript(failTimes(nil))
	l := f.batchListener(t, s, listener.BatchSize(40))
	keys := produceKeys(f, "k", 300, 3)
	stop := started(t, l)
	kafkatest.Eventually(t, waitFor, func() bool {
		return committedSum(f, f.topic) == 300
	}, "300 records committed (got %d)", committedSum(f, f.topic))
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	for _, k := range keys {
		if n := s.count(k); n != 1 {
			t.Errorf("%s handled %d times, want 1", k, n)
		}
	}
	calls := s.callList()
	checkBatchShape(t, calls, 40)
	if len(calls) < 300/40 {
		t.Errorf("%d calls for 300 records in batches of at most 40", len(calls))
	}
	sizes := 0
	for _, e := range s.eventsOf(listener.EventBatch) {
		if e.Err != nil || e.Batch < 1 || e.Role != strategy.RoleMain {
			t.Errorf("batch event %+v, want a main-topic batch without error", e)
		}
		sizes += e.Batch
	}
	if sizes != 300 {
		t.Errorf("batch events count %d records, want 300", sizes)
	}
	for _, e := range s.eventsOf(listener.EventHandled) {
		if e.Batch < 1 {
			t.Errorf("handled event without its batch size: %+v", e)
		}
	}
	for _, tier := range l.Plan().Tiers {
		if n := len(f.c.ReadAll(tier.Topic)); n != 0 {
			t.Errorf("tier %s holds %d records, want 0", tier.Topic, n)
		}
	}
}

// Only the records a BatchErrors names are forwarded, each routed on its
// own: a transient failure retried from the tier, an always-failing one
// dead-lettered after its attempts, a permanent one dead-lettered at
// once. The others are never handed to the handler again.
func TestBatchOnlyNamedRecordsAreRouted(t *testing.T) {
	f := newFixture(t, 2)
	plan := func(key string, n int) error {
		switch key {
		case "k003", "k010":
			if n == 1 {
				return fmt.Errorf("transient %s: %w", key, errBoom)
			}
		case "k005":
			return fmt.Errorf("always %s: %w", key, errBoom)
		case "k007":
			return strategy.Permanent(fmt.Errorf("bad row %s", key))
		}
		return nil
	}
	s := newBatchScript(plan)
	l := f.batchListener(t, s, listener.BatchSize(8), listener.Attempts(3),
		listener.Backoff(strategy.FixedBackoff(300*time.Millisecond)))
	keys := produceKeys(f, "k", 20, 2)
	stop := started(t, l)
	kafkatest.Eventually(t, waitFor, func() bool {
		return len(s.dltOf("k005")) == 1 && len(s.dltOf("k007")) == 1 && s.count("k003") == 2 && s.count("k010") == 2
	}, "transient records retried once, the others dead-lettered")
	kafkatest.Eventually(t, waitFor, func() bool { return committedSum(f, f.topic) == 20 }, "every main record committed")
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	want := map[string]int{"k003": 2, "k010": 2, "k005": 3, "k007": 1}
	for _, k := range keys {
		w := want[k]
		if w == 0 {
			w = 1
		}
		if n := s.count(k); n != w {
			t.Errorf("%s handed to the handler %d times, want %d", k, n, w)
		}
	}
	// The tier holds exactly the records that failed transiently (k003,
	// k010 once; k005 on attempts 1 and 2), with their own error.
	var tiered []string
	for _, tier := range l.Plan().Tiers {
		for _, r := range f.c.ReadAll(tier.Topic) {
			st, ok, err := retry.Decode(r.Headers)
			if !ok || err != nil {
				t.Fatalf("tier record %s: %v (headers present %v)", r.Key, err, ok)
			}
			if want := "transient " + string(r.Key); string(r.Key) != "k005" && !strings.Contains(st.Error, want) {
				t.Errorf("tier record %s carries error %q, want its own (%q)", r.Key, st.Error, want)
			}
			tiered = append(tiered, fmt.Sprintf("%s@%d", r.Key, st.Attempt))
		}
	}
	slices.Sort(tiered)
	if wantTiered := []string{"k003@2", "k005@2", "k005@3", "k010@2"}; !slices.Equal(tiered, wantTiered) {
		t.Errorf("tier records %v, want %v", tiered, wantTiered)
	}
	dl := s.dltOf("k007")[0].state
	if dl.Reason != retry.ReasonPermanent || dl.Attempt != 1 {
		t.Errorf("k007 dead-lettered with reason %q attempt %d, want %q after 1", dl.Reason, dl.Attempt, retry.ReasonPermanent)
	}
	if dl := s.dltOf("k005")[0].state; dl.Reason != retry.ReasonExhausted || dl.Attempt != 3 {
		t.Errorf("k005 dead-lettered with reason %q attempt %d, want %q after 3", dl.Reason, dl.Attempt, retry.ReasonExhausted)
	}
	// Retry batches: tier records only, each handed no earlier than due.
	for _, c := range s.callList() {
		for _, r := range c.recs {
			if r.retried && c.at.Before(r.state.Due) {
				t.Errorf("%s handed %v before it was due", r.key, r.state.Due.Sub(c.at))
			}
			if r.retried != (r.topic != f.topic) {
				t.Errorf("%s from %s: retry state present %v", r.key, r.topic, r.retried)
			}
		}
	}
	checkBatchShape(t, s.callList(), 8)
	for _, e := range s.eventsOf(listener.EventRetried) {
		if e.Batch < 1 {
			t.Errorf("retried event without its batch size: %+v", e)
		}
	}
}

// An error that is not a BatchErrors fails every record of the batch; a
// panic does too. Each record is then retried on its own attempt.
func TestBatchWholeBatchFailsOnErrorAndPanic(t *testing.T) {
	for _, mode := range []string{"error", "panic"} {
		t.Run(mode, func(t *testing.T) {
			f := newFixture(t, 1)
			s := newBatchScript(failTimes(nil))
			s.whole = func(call int, recs []*kgo.Record) error {
				if recs[0].Topic != f.topic {
					return nil // retries succeed
				}
				if mode == "panic" {
					s.countAll(recs)
					panic("bulk insert blew up")
				}
				return errors.New("database unavailable")
			}
			l := f.batchListener(t, s, listener.BatchSize(10), listener.Attempts(2),
				listener.Backoff(strategy.FixedBackoff(200*time.Millisecond)))
			keys := produceKeys(f, "w", 25, 1)
			stop := started(t, l)
			kafkatest.Eventually(t, waitFor, func() bool {
				for _, k := range keys {
					if s.count(k) != 2 {
						return false
					}
				}
				return committedSum(f, f.topic) == 25
			}, "every record failed once with its batch and handled from the tier")
			if err := stop(); err != nil {
				t.Fatal(err)
			}
			tier := l.Plan().Tiers[0].Topic
			got := f.c.ReadAll(tier)
			if len(got) != 25 {
				t.Fatalf("tier holds %d records, want 25", len(got))
			}
			for _, r := range got {
				st, _, _ := retry.Decode(r.Headers)
				want := "database unavailable"
				if mode == "panic" {
					want = "bulk insert blew up"
				}
				if st.Attempt != 2 || !strings.Contains(st.Error, want) {
					t.Errorf("tier record %s: attempt %d error %q, want 2 and %q", r.Key, st.Attempt, st.Error, want)
				}
			}
			var failed int
			for _, e := range s.eventsOf(listener.EventBatch) {
				if e.Err != nil {
					failed++
					var pe *listener.PanicError
					if mode == "panic" && !errors.As(e.Err, &pe) {
						t.Errorf("batch event error %v, want a *PanicError", e.Err)
					}
				}
			}
			if failed < 3 {
				t.Errorf("%d failed batch events, want at least 3 (25 records in batches of 10)", failed)
			}
		})
	}
}

// A HandlerTimeout bounds the whole call: a batch whose handler returns
// its context's error fails as a whole.
func TestBatchHandlerTimeoutFailsTheBatch(t *testing.T) {
	f := newFixture(t, 1)
	s := newBatchScript(failTimes(nil))
	s.block = func(ctx context.Context, call int) {
		if call == 1 {
			<-ctx.Done()
		}
	}
	s.whole = func(call int, recs []*kgo.Record) error {
		if call == 1 {
			return fmt.Errorf("bulk write: %w", context.DeadlineExceeded)
		}
		return nil
	}
	l := f.batchListener(t, s, listener.BatchSize(50), listener.HandlerTimeout(200*time.Millisecond),
		listener.Attempts(2), listener.Backoff(strategy.FixedBackoff(100*time.Millisecond)))
	keys := produceKeys(f, "t", 5, 1)
	// One produce call, one partition: the first batch holds all five.
	stop := started(t, l)
	kafkatest.Eventually(t, waitFor, func() bool { return committedSum(f, f.topic) == 5 && s.count(keys[4]) >= 1 },
		"records committed")
	kafkatest.Eventually(t, waitFor, func() bool {
		n := 0
		for _, e := range s.eventsOf(listener.EventRetried) {
			if errors.Is(e.Err, context.DeadlineExceeded) {
				n++
			}
		}
		return n == len(s.callList()[0].recs)
	}, "every record of the timed-out batch retried with the deadline error")
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	first := s.callList()[0]
	if d := s.eventsOf(listener.EventBatch)[0].Latency; d < 200*time.Millisecond {
		t.Errorf("the first call returned after %v, before its 200ms timeout", d)
	}
	_ = first
}

// A BatchErrors that names a record outside the batch, or one record
// twice, is reported; the named records of the batch are routed once and
// nothing is lost or handled twice.
func TestBatchErrorsNamingMistakes(t *testing.T) {
	f := newFixture(t, 1)
	sink := &logSink{}
	stranger := &kgo.Record{Topic: f.topic, Partition: 0, Offset: 999999}
	s := newBatchScript(failTimes(nil))
	var once sync.Once
	s.whole = func(call int, recs []*kgo.Record) error {
		if recs[0].Topic != f.topic {
			return nil
		}
		var errs listener.BatchErrors
		once.Do(func() {
			errs.Add(stranger, errors.New("not mine"))
			errs.Add(recs[0], errors.New("first error"))
			// A copy of the record names it by topic, partition and offset.
			again := *recs[0]
			errs.Add(&again, errors.New("second error"))
		})
		return errs.Err() // HandleBatch counts the deliveries
	}
	l := f.batchListener(t, s, listener.BatchSize(10), listener.Attempts(2),
		listener.Backoff(strategy.FixedBackoff(100*time.Millisecond)), listener.Logger(sink.logger()))
	keys := produceKeys(f, "n", 4, 1)
	stop := started(t, l)
	kafkatest.Eventually(t, waitFor, func() bool {
		return committedSum(f, f.topic) == 4 && s.count(keys[0]) == 2
	}, "the named record retried once, the batch committed")
	if t.Failed() {
		for _, e := range s.events {
			t.Logf("event %+v", e)
		}
	}
	kafkatest.Eventually(t, waitFor, func() bool { return len(s.eventsOf(listener.EventBatchErrorsInvalid)) == 2 },
		"both mistakes reported")
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	tier := f.c.ReadAll(l.Plan().Tiers[0].Topic)
	if len(tier) != 1 || string(tier[0].Key) != keys[0] {
		t.Fatalf("tier holds %d records, want only %s", len(tier), keys[0])
	}
	if st, _, _ := retry.Decode(tier[0].Headers); !strings.Contains(st.Error, "first error") {
		t.Errorf("the record named twice was routed with %q, want its first error", st.Error)
	}
	for _, k := range keys[1:] {
		if n := s.count(k); n != 1 {
			t.Errorf("%s handled %d times, want 1", k, n)
		}
	}
	evs := s.eventsOf(listener.EventBatchErrorsInvalid)
	if evs[0].Offset != 999999 || !strings.Contains(evs[0].Err.Error(), "not in the batch") {
		t.Errorf("first mistake event %+v, want the stranger at offset 999999, not in the batch", evs[0])
	}
	if !strings.Contains(evs[1].Err.Error(), "twice") {
		t.Errorf("second mistake event %v, want the record named twice", evs[1].Err)
	}
	if _, ok := sink.find("not in the batch"); !ok {
		t.Error("no log line for the record not in the batch")
	}
}

// BatchWait holds a partial batch until it fills or the wait passes.
func TestBatchWaitFillsOrTimesOut(t *testing.T) {
	f := newFixture(t, 1)
	s := newBatchScript(failTimes(nil))
	const wait = 700 * time.Millisecond
	l := f.batchListener(t, s, listener.BatchSize(10), listener.BatchWait(wait))
	stop := started(t, l)
	produced := time.Now()
	produceKeys(f, "a", 3, 1)
	kafkatest.Eventually(t, waitFor, func() bool { return committedSum(f, f.topic) == 3 }, "the partial batch handled")
	calls := s.callList()
	if len(calls) != 1 || len(calls[0].recs) != 3 {
		t.Fatalf("calls %d (first of %d records), want one call of 3", len(calls), len(calls[0].recs))
	}
	if gap := calls[0].at.Sub(produced); gap < wait {
		t.Errorf("the partial batch was handed %v after it was produced, before BatchWait %v", gap, wait)
	}
	// Ten records in one produce fill a batch: no wait.
	produced = time.Now()
	produceKeys(f, "b", 10, 1)
	kafkatest.Eventually(t, waitFor, func() bool { return committedSum(f, f.topic) == 13 }, "the full batch handled")
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	calls = s.callList()
	if len(calls) != 2 || len(calls[1].recs) != 10 {
		t.Fatalf("%d calls, want 2, the second of 10 records", len(calls))
	}
	if gap := calls[1].at.Sub(produced); gap >= wait {
		t.Errorf("a full batch waited %v, BatchWait %v", gap, wait)
	}
}

// Shutdown waits for the running batch, and commits it; a batch still
// running at the shutdown timeout is left uncommitted, and its failures
// (the cancellation's) are not routed.
func TestBatchShutdownMidBatch(t *testing.T) {
	for _, stuck := range []bool{false, true} {
		t.Run(fmt.Sprintf("stuck=%v", stuck), func(t *testing.T) {
			f := newFixture(t, 1)
			s := newBatchScript(failTimes(nil))
			running := make(chan struct{})
			release := make(chan struct{})
			s.block = func(ctx context.Context, call int) {
				if call == 1 {
					close(running)
					if stuck {
						<-ctx.Done()
					} else {
						<-release
					}
				}
			}
			s.whole = func(call int, recs []*kgo.Record) error {
				if stuck && call == 1 {
					return fmt.Errorf("insert: %w", context.Canceled)
				}
				return nil
			}
			l := f.batchListener(t, s, listener.BatchSize(100), listener.ShutdownTimeout(1500*time.Millisecond))
			produceKeys(f, "s", 5, 1)
			stop := started(t, l)
			<-running
			done := make(chan error, 1)
			go func() { done <- stop() }()
			if !stuck {
				close(release)
			}
			if err := <-done; err != nil {
				t.Fatal(err)
			}
			n := len(s.callList()[0].recs)
			want := int64(n)
			if stuck {
				want = 0
			}
			if got := committedSum(f, f.topic); got != want {
				t.Errorf("committed %d, want %d (the first batch held %d)", got, want, n)
			}
			if got := len(f.c.ReadAll(l.Plan().Tiers[0].Topic)); got != 0 {
				t.Errorf("tier holds %d records, want 0: a shutdown's failures are not routed", got)
			}
		})
	}
}

// A rebalance that revokes a partition while its batch runs waits for the
// batch and commits it; every record is handled, none twice.
func TestBatchRevokeWhileBatchRuns(t *testing.T) {
	f := newFixture(t, 2)
	s := newBatchScript(failTimes(nil))
	revoked := make(chan struct{})
	var once sync.Once
	inFlight := make(chan struct{}, 64)
	s.block = func(ctx context.Context, call int) {
		inFlight <- struct{}{}
		if call <= 2 {
			select {
			case <-revoked:
			case <-ctx.Done():
			}
		}
	}
	hook := listener.HookFunc(func(e listener.Event) {
		if e.Kind == listener.EventRevoked {
			once.Do(func() { close(revoked) })
		}
	})
	opts := []listener.Opt{listener.Hooks(hook), listener.RevokeTimeout(5 * time.Second), listener.BatchSize(50)}
	keys := produceKeys(f, "r", 40, 2)
	started(t, f.batchListener(t, s, opts...))
	<-inFlight
	<-inFlight // both partitions have a batch running on the first member
	started(t, f.batchListener(t, s, opts...))
	kafkatest.Eventually(t, waitFor, func() bool {
		for _, k := range keys {
			if s.count(k) == 0 {
				return false
			}
		}
		return committedSum(f, f.topic) == 40
	}, "all 40 records handled and committed across the rebalance")
	for _, k := range keys {
		if n := s.count(k); n != 1 {
			t.Errorf("%s handled %d times, want 1: a revoke waits for the running batch", k, n)
		}
	}
}

func TestNewBatchRefusals(t *testing.T) {
	seeds := []string{"localhost:9092"}
	if _, err := listener.NewBatch(seeds, "orders", nil); err == nil || !strings.Contains(err.Error(), "NewBatch: handler must not be nil") {
		t.Errorf("nil batch handler: %v", err)
	}
	h := listener.HandlerFunc(func(context.Context, *kgo.Record) error { return nil })
	if _, err := listener.New(seeds, "orders", h, listener.BatchSize(10)); err == nil || !strings.Contains(err.Error(), "use NewBatch") {
		t.Errorf("BatchSize on New: %v", err)
	}
	bh := listener.BatchHandlerFunc(func(context.Context, []*kgo.Record) error { return nil })
	_, err := listener.NewBatch(seeds, "orders", bh, listener.BatchSize(-1), listener.BatchWait(-time.Second))
	if err == nil || !strings.Contains(err.Error(), "BatchSize must be >= 1") || !strings.Contains(err.Error(), "BatchWait must be >= 0") {
		t.Errorf("negative batch settings: %v", err)
	}
	l, err := listener.NewBatch(seeds, "orders", bh, listener.BatchSize(0))
	if err != nil {
		t.Fatal(err)
	}
	if got := l.Spec().Batch.Size; got != listener.DefaultBatchSize {
		t.Errorf("BatchSize(0) gives %d, want the default %d", got, listener.DefaultBatchSize)
	}
}
