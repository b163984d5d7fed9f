package listener_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
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

// outputHandler is a handler that produces one output record per call with
// listener.Produce, then fails or panics as plan says for the key's call n.
type outputHandler struct {
	out string
	// onMain fails these keys whenever they come from the main topic,
	// however often that is
	onMain map[string]bool
	plan   func(key string, n int) error
	panic  func(key string, n int) bool
	mu     sync.Mutex
	calls  map[string]int
	tierOK map[string]bool // keys a call from a retry tier handled
}

func (h *outputHandler) Handle(ctx context.Context, rec *kgo.Record) error {
	h.mu.Lock()
	h.calls[string(rec.Key)]++
	n := h.calls[string(rec.Key)]
	h.mu.Unlock()
	if err := listener.Produce(ctx, &kgo.Record{Topic: h.out, Key: rec.Key, Value: fmt.Appendf(nil, "call %d", n)}); err != nil {
		return fmt.Errorf("test: Produce: %w", err)
	}
	if h.panic != nil && h.panic(string(rec.Key), n) {
		panic("after producing its output")
	}
	_, retried := retry.FromContext(ctx)
	if !retried && h.onMain[string(rec.Key)] {
		return fmt.Errorf("%s from the main topic: %w", rec.Key, errBoom)
	}
	err := h.plan(string(rec.Key), n)
	if retried && err == nil {
		h.mu.Lock()
		if h.tierOK == nil {
			h.tierOK = map[string]bool{}
		}
		h.tierOK[string(rec.Key)] = true
		h.mu.Unlock()
	}
	return err
}

func (h *outputHandler) handledFromTier(key string) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.tierOK[key]
}

func (h *outputHandler) count(key string) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.calls[key]
}

// keyCounts counts records by key.
func keyCounts(recs []*kgo.Record) map[string]int {
	m := map[string]int{}
	for _, r := range recs {
		m[string(r.Key)]++
	}
	return m
}

// Exactly once, a handler's outputs are visible (read_committed) once per
// success, never for a failed or panicked call; forwards are in the tier
// once per failure; offsets are committed.
func TestExactlyOnceOutputsOncePerSuccess(t *testing.T) {
	f := newFixture(t, 2)
	out := f.c.Name("out")
	f.c.CreateTopic(out, 1)
	h := &outputHandler{out: out, calls: map[string]int{},
		plan: func(key string, n int) error {
			if key == "e001" && n == 1 || key == "e003" {
				return fmt.Errorf("%s call %d: %w", key, n, errBoom)
			}
			return nil
		},
		panic: func(key string, n int) bool { return key == "e002" && n == 1 },
	}
	s := newScript(nil)
	l := f.listener(t, h, listener.ExactlyOnce(f.c.Name("txn")), listener.Attempts(2),
		listener.Backoff(strategy.FixedBackoff(100*time.Millisecond)), listener.DLTHandler(s), listener.Hooks(s))
	keys := produceKeys(f, "e", 6, 2)
	stop := started(t, l)
	kafkatest.Eventually(t, waitFor, func() bool {
		return committedSum(f, f.topic) == 6 && len(s.dltOf("e003")) == 1 && h.count("e001") == 2 && h.count("e002") == 2
	}, "every record settled")
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	got := keyCounts(f.c.ReadCommitted(out))
	for _, k := range keys {
		want := 1
		if k == "e003" {
			want = 0 // failed on both calls: no output
		}
		if got[k] != want {
			t.Errorf("output of %s visible %d times, want %d", k, got[k], want)
		}
	}
	tier := keyCounts(f.c.ReadCommitted(l.Plan().Tiers[0].Topic))
	for _, k := range []string{"e001", "e002", "e003"} {
		if tier[k] != 1 {
			t.Errorf("%s in the tier %d times, want 1", k, tier[k])
		}
	}
	if n := len(f.c.ReadCommitted(l.Plan().DLT)); n != 1 {
		t.Errorf("DLT holds %d records, want 1", n)
	}
	if got := committedSum(f, l.Plan().Tiers[0].Topic); got != 3 {
		t.Errorf("tier committed to %d, want 3", got)
	}
}

// Produce outside a handler's context, or after the handler returned, is
// an error.
func TestProduceOutsideAHandler(t *testing.T) {
	err := listener.Produce(context.Background(), &kgo.Record{Topic: "x"})
	if err == nil {
		t.Fatal("Produce with a background context succeeded")
	}
	if want := "not the context of a handler call"; !strings.Contains(err.Error(), want) {
		t.Errorf("error %q, want it to say %q", err, want)
	}
}

// A forward that fails aborts the transaction: every partition is read
// again from its last commit, and read_committed still sees each output
// and each tier copy once.
func TestExactlyOnceAbortsOnAFailedPublish(t *testing.T) {
	faultKfakeOnly(t)
	f := newFixture(t, 2)
	out := f.c.Name("out")
	f.c.CreateTopic(out, 1)
	fails := map[string]bool{}
	for i := range 20 {
		if i%4 == 0 {
			fails[fmt.Sprintf("a%03d", i)] = true
		}
	}
	h := &outputHandler{out: out, calls: map[string]int{}, plan: failTimes(nil), onMain: fails}
	logs := &logSink{}
	l := f.listener(t, h, listener.ExactlyOnce(f.c.Name("txn")), listener.Attempts(2),
		listener.Backoff(strategy.FixedBackoff(100*time.Millisecond)), listener.Logger(logs.logger()))
	tier := l.Plan().Tiers[0].Topic
	fault := f.c.Fake.Fault(kfake.Fault{Keys: []kmsg.Key{kmsg.Produce}, Topic: tier, Err: kerr.TopicAuthorizationFailed, Count: 1})
	keys := produceKeys(f, "a", 20, 2)
	stop := started(t, l)
	kafkatest.Eventually(t, waitFor, func() bool {
		for k := range fails {
			if !h.handledFromTier(k) {
				return false
			}
		}
		return committedSum(f, f.topic) == 20
	}, "every record settled (the failed ones handled from the tier)")
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	if fault.Hits() != 1 {
		t.Fatalf("the fault hit %d times, want 1", fault.Hits())
	}
	if _, ok := logs.find("aborting the exactly-once transaction"); !ok {
		t.Error("no log line for the aborted transaction")
	}
	got := keyCounts(f.c.ReadCommitted(out))
	for _, k := range keys {
		if got[k] != 1 {
			t.Errorf("output of %s visible %d times, want 1", k, got[k])
		}
	}
	inTier := keyCounts(f.c.ReadCommitted(tier))
	for k := range fails {
		if inTier[k] != 1 {
			t.Errorf("%s in the tier %d times (read_committed), want 1", k, inTier[k])
		}
	}
	redelivered := 0
	for _, k := range keys {
		want := 1
		if fails[k] {
			want = 2
		}
		if h.count(k) > want {
			redelivered++
		}
	}
	t.Logf("the abort redelivered %d of 20 records to the handler", redelivered)
}

// Two instances with one transactional ID: the newer fences the older,
// whose Run returns ErrFenced; the newer carries on alone.
func TestExactlyOnceFencedByANewerInstance(t *testing.T) {
	f := newFixture(t, 1)
	out := f.c.Name("out")
	f.c.CreateTopic(out, 1)
	h := &outputHandler{out: out, calls: map[string]int{}, plan: failTimes(nil)}
	id := f.c.Name("txn")
	a := f.listener(t, h, listener.ExactlyOnce(id))
	ctxA, cancelA := context.WithCancel(context.Background())
	defer cancelA()
	doneA := make(chan error, 1)
	go func() { doneA <- a.Run(ctxA) }()
	produceKeys(f, "f", 5, 1)
	kafkatest.Eventually(t, waitFor, func() bool { return committedSum(f, f.topic) == 5 }, "the first instance commits")
	// The newer instance, same transactional ID, another group (so both
	// keep their partitions): its start fences the older's producer.
	b, err := listener.New(f.c.Seeds, f.topic, h, listener.Group(f.c.Name("other")), listener.ExactlyOnce(id),
		listener.Logger(quiet(t)), listener.FetchMaxWait(20*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	started(t, b)
	produceKeys(f, "g", 5, 1)
	select {
	case err := <-doneA:
		if !errors.Is(err, listener.ErrFenced) {
			t.Fatalf("the fenced instance's Run returned %v, want ErrFenced", err)
		}
	case <-time.After(waitFor):
		t.Fatal("the older instance was not fenced")
	}
}

// A transaction timeout the broker refuses (above its
// transaction.max.timeout.ms, 15 minutes by default) fails Run with the
// broker's error, instead of leaving the listener unable to commit.
func TestExactlyOnceTransactionTimeoutAboveTheBrokersMaximum(t *testing.T) {
	f := newFixture(t, 1)
	h := &outputHandler{out: f.c.Name("out"), calls: map[string]int{}, plan: failTimes(nil)}
	l := f.listener(t, h, listener.ExactlyOnce(f.c.Name("txn")),
		listener.ClientOpts(kgo.TransactionTimeout(20*time.Minute)))
	produceKeys(f, "t", 1, 1)
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	err := l.Run(ctx)
	if err == nil || ctx.Err() != nil {
		t.Fatalf("Run returned %v (context %v), want the broker's refusal", err, ctx.Err())
	}
	if !errors.Is(err, kerr.InvalidTransactionTimeout) {
		t.Errorf("Run: %v, want INVALID_TRANSACTION_TIMEOUT", err)
	}
	t.Logf("Run: %v", err)
}

// A transaction interval the client's transaction timeout does not leave
// room for is refused at the start.
func TestExactlyOnceIntervalAgainstTheTransactionTimeout(t *testing.T) {
	f := newFixture(t, 1)
	h := &outputHandler{out: f.c.Name("out"), calls: map[string]int{}, plan: failTimes(nil)}
	l := f.listener(t, h, listener.ExactlyOnce(f.c.Name("txn")), listener.TransactionInterval(5*time.Second),
		listener.ClientOpts(kgo.TransactionTimeout(10*time.Second)))
	err := l.Run(context.Background())
	if err == nil || !strings.Contains(err.Error(), "TransactionInterval 5s must be at most a third of the client's kgo.TransactionTimeout 10s") {
		t.Fatalf("Run: %v", err)
	}
}

// A member whose membership is lost while its transaction is open (the
// group moved on without it) cannot commit that transaction: it aborts,
// and every record is still output exactly once.
func TestExactlyOnceLostMemberCannotCommit(t *testing.T) {
	faultKfakeOnly(t)
	f := newFixture(t, 2)
	out := f.c.Name("out")
	f.c.CreateTopic(out, 1)
	var lost sync.Once
	lostCh := make(chan struct{})
	h := &outputHandler{out: out, calls: map[string]int{}, plan: func(key string, n int) error {
		if key == "m010" && n == 1 {
			// Handled while the member is being fenced: its transaction
			// holds this record when the loss is noticed.
			<-lostCh
		}
		return nil
	}}
	hook := listener.HookFunc(func(e listener.Event) {
		if e.Kind == listener.EventRevoked {
			lost.Do(func() { close(lostCh) })
		}
	})
	s := newScript(nil)
	l := f.listener(t, h, listener.ExactlyOnce(f.c.Name("txn")), listener.Hooks(hook, s),
		listener.ClientOpts(kgo.HeartbeatInterval(50*time.Millisecond)))
	produceKeys(f, "m", 10, 2)
	stop := started(t, l)
	kafkatest.Eventually(t, waitFor, func() bool { return committedSum(f, f.topic) == 10 }, "the first records committed")
	fault := f.c.Fake.Fault(kfake.Fault{Keys: []kmsg.Key{kmsg.Heartbeat}, Err: kerr.UnknownMemberID, Count: 1})
	var recs []*kgo.Record
	for i := 10; i < 20; i++ {
		r := rec(f.topic, fmt.Sprintf("m%03d", i))
		r.Partition = 0
		recs = append(recs, r)
	}
	f.c.ProduceToPartitions(recs...)
	kafkatest.Eventually(t, waitFor, func() bool { return committedSum(f, f.topic) == 20 }, "every record committed after the member rejoined")
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	if fault.Hits() == 0 {
		t.Fatal("the heartbeat fault never hit")
	}
	if n := len(s.eventsOf(listener.EventTransactionAborted)); n == 0 {
		t.Error("no transaction aborted: the lost member's transaction was committed")
	}
	got := keyCounts(f.c.ReadCommitted(out))
	for i := range 20 {
		k := fmt.Sprintf("m%03d", i)
		if got[k] != 1 {
			t.Errorf("output of %s visible %d times, want 1", k, got[k])
		}
	}
	t.Logf("m010 handled %d times", h.count("m010"))
}

// A handler still running at the shutdown timeout: the final transaction
// commits what was settled before it, and nothing of the stuck call (its
// output included) is visible; the next instance handles it once.
func TestExactlyOnceShutdownTimeoutLeavesTheStuckRecord(t *testing.T) {
	f := newFixture(t, 1)
	out := f.c.Name("out")
	f.c.CreateTopic(out, 1)
	stuck := make(chan struct{})
	release := make(chan struct{}) // closed once the first instance has stopped
	var once sync.Once
	h := &outputHandler{out: out, calls: map[string]int{}, plan: func(key string, n int) error {
		if key == "s003" && n == 1 {
			once.Do(func() { close(stuck) })
			<-release // ignores its context: a misbehaving handler
		}
		return nil
	}}
	id := f.c.Name("txn")
	l := f.listener(t, h, listener.ExactlyOnce(id), listener.ShutdownTimeout(1500*time.Millisecond))
	produceKeys(f, "s", 6, 1)
	stop := started(t, l)
	<-stuck
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	close(release) // the stuck call returns to a stopped listener: nothing of it is published
	if got := committedSum(f, f.topic); got != 3 {
		t.Errorf("committed %d after the shutdown, want 3 (the records before the stuck one)", got)
	}
	l2 := f.listener(t, h, listener.ExactlyOnce(id))
	stop2 := started(t, l2)
	kafkatest.Eventually(t, waitFor, func() bool { return committedSum(f, f.topic) == 6 }, "the next instance handles the rest")
	if err := stop2(); err != nil {
		t.Fatal(err)
	}
	got := keyCounts(f.c.ReadCommitted(out))
	for i := range 6 {
		if k := fmt.Sprintf("s%03d", i); got[k] != 1 {
			t.Errorf("output of %s visible %d times, want 1", k, got[k])
		}
	}
	if n := h.count("s003"); n != 2 {
		t.Errorf("s003 handled %d times, want 2 (stuck, then by the next instance)", n)
	}
}

// Exactly once with a batch handler: the outputs of a call that returns a
// BatchErrors are published, with the outcomes of its records; those of a
// call that fails as a whole are dropped.
func TestExactlyOnceBatchOutputs(t *testing.T) {
	f := newFixture(t, 1)
	out := f.c.Name("out")
	f.c.CreateTopic(out, 1)
	var mu sync.Mutex
	calls := 0
	h := listener.BatchHandlerFunc(func(ctx context.Context, recs []*kgo.Record) error {
		mu.Lock()
		calls++
		n := calls
		mu.Unlock()
		_, retried := retry.FromContext(ctx) // never set for a batch: read headers instead
		if retried {
			return errors.New("test: a batch context carries retry state")
		}
		var errs listener.BatchErrors
		for _, r := range recs {
			if _, ok, _ := retry.Decode(r.Headers); !ok && string(r.Key) == "b001" {
				errs.Add(r, errBoom) // fails on the main topic: no output for it
				continue
			}
			if err := listener.Produce(ctx, &kgo.Record{Topic: out, Key: r.Key}); err != nil {
				return err
			}
		}
		if n == 2 {
			return errors.New("the second call fails as a whole") // its outputs are dropped
		}
		return errs.Err()
	})
	l, err := listener.NewBatch(f.c.Seeds, f.topic, h, listener.Group(f.group), listener.Logger(quiet(t)),
		listener.ExactlyOnce(f.c.Name("txn")), listener.BatchSize(10), listener.Attempts(3),
		listener.Backoff(strategy.FixedBackoff(100*time.Millisecond)), listener.FetchMaxWait(20*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	produceKeys(f, "b", 4, 1)
	stop := started(t, l)
	kafkatest.Eventually(t, waitFor, func() bool {
		mu.Lock()
		defer mu.Unlock()
		return committedSum(f, f.topic) == 4 && calls == 3
	}, "b001 failed alone in the first batch, as a whole in the second, and succeeded in the third")
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	got := keyCounts(f.c.ReadCommitted(out))
	for _, k := range []string{"b000", "b001", "b002", "b003"} {
		if got[k] != 1 {
			t.Errorf("output of %s visible %d times, want 1", k, got[k])
		}
	}
}

// Produce partitions outputs by key, in both modes: the listener's own
// partitioner, which keeps a forwarded record's partition number, must not
// send every output to partition 0.
func TestProducePartitionsOutputsByKey(t *testing.T) {
	for _, eos := range []bool{false, true} {
		t.Run(fmt.Sprintf("exactly-once=%v", eos), func(t *testing.T) {
			f := newFixture(t, 1)
			out := f.c.Name("out")
			f.c.CreateTopic(out, 3)
			h := &outputHandler{out: out, calls: map[string]int{}, plan: failTimes(nil)}
			var opts []listener.Opt
			if eos {
				opts = append(opts, listener.ExactlyOnce(f.c.Name("txn")))
			}
			l := f.listener(t, h, opts...)
			produceKeys(f, "p", 60, 1)
			stop := started(t, l)
			kafkatest.Eventually(t, waitFor, func() bool { return committedSum(f, f.topic) == 60 }, "every record handled")
			if err := stop(); err != nil {
				t.Fatal(err)
			}
			byKey := map[string]int32{}
			parts := map[int32]int{}
			for _, r := range f.c.ReadCommitted(out) {
				byKey[string(r.Key)] = r.Partition
				parts[r.Partition]++
			}
			if len(byKey) != 60 || len(parts) != 3 {
				t.Fatalf("%d outputs over partitions %v, want 60 over all 3", len(byKey), parts)
			}
			p := kgo.StickyKeyPartitioner(nil).ForTopic(out)
			for k, got := range byKey {
				if want := p.Partition(&kgo.Record{Key: []byte(k)}, 3); int32(want) != got {
					t.Errorf("output %s on partition %d, want %d (by key)", k, got, want)
				}
			}
		})
	}
}
