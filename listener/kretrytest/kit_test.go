package kretrytest_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/kretry/kretry/listener"
	"github.com/kretry/kretry/listener/kretrytest"
	"github.com/kretry/kretry/retry"
	"github.com/kretry/kretry/strategy"
)

// brokers selects the cluster the kit's own tests run on, like the rest
// of kretry's suite: KRETRY_BROKERS=host:port for a real one, else an
// in-process cluster.
func brokers() kretrytest.Opt { return kretrytest.Brokers(os.Getenv("KRETRY_BROKERS")) }

var quiet = listener.Logger(slog.New(slog.DiscardHandler))

// A handler that fails twice is handled on its third delivery, one that
// always fails is exhausted into the DLT, a permanent error goes straight
// there; Require sees each outcome and Read decodes what the DLT and the
// retry tier hold.
func TestKitOutcomes(t *testing.T) {
	k := kretrytest.New(t, brokers())
	topic := k.Name("orders")
	k.CreateTopics(topic)
	var mu sync.Mutex
	calls := map[string]int{}
	h := listener.HandlerFunc(func(ctx context.Context, rec *kgo.Record) error {
		mu.Lock()
		calls[string(rec.Key)]++
		n := calls[string(rec.Key)]
		mu.Unlock()
		switch string(rec.Key) {
		case "flaky":
			if n <= 2 {
				return errors.New("stock service down")
			}
		case "doomed":
			return errors.New("stock service down")
		case "empty":
			return strategy.Permanent(errors.New("order has no items"))
		}
		return nil
	})
	l, err := listener.New(k.Seeds(), topic, k.Wrap(h), listener.Group(k.Name("billing")),
		listener.Backoff(strategy.FixedBackoff(10*time.Millisecond)),
		listener.DLTHandler(k.WrapDLT(nil)), quiet)
	if err != nil {
		t.Fatal(err)
	}
	k.CreateTopics(l.Plan().Topics()...)
	k.Run(l)
	k.Produce(
		&kgo.Record{Topic: topic, Key: []byte("fine")},
		&kgo.Record{Topic: topic, Key: []byte("flaky")},
		&kgo.Record{Topic: topic, Key: []byte("doomed")},
		&kgo.Record{Topic: topic, Key: []byte("empty")},
	)

	tier, dltTopic := l.Plan().Tiers[0].Topic, l.Plan().DLT
	if ds := k.Require("fine", kretrytest.Handled(1)); len(ds) != 1 {
		t.Errorf("fine: deliveries %v, want one", ds)
	}
	k.Require("flaky", kretrytest.Retried(tier))
	if ds := k.Require("flaky", kretrytest.Handled(3)); len(ds) != 3 || ds[2].Topic != tier || ds[2].State.Attempt != 3 {
		t.Errorf("flaky: deliveries %v, want 3, the last from %s with retry state attempt 3", ds, tier)
	}
	ds := k.Require("doomed", kretrytest.DeadLettered(retry.ReasonExhausted))
	if last := ds[len(ds)-1]; len(ds) != 4 || !last.DeadLetter || last.Attempt != 3 || last.Topic != dltTopic {
		t.Errorf("doomed: deliveries %v, want 3 attempts then the DLT handler from %s after 3", ds, dltTopic)
	}
	k.Require("empty", kretrytest.DeadLettered(retry.ReasonPermanent))

	dead := k.Read(dltTopic)
	reasons := map[string]string{}
	for _, r := range dead {
		if !r.HasState || r.StateErr != nil || r.State.OriginalTopic != topic || r.State.Error == "" {
			t.Errorf("DLT record %s: state %+v (has %v, error %v), want a dead-letter state from %s with an error",
				r.Key, r.State, r.HasState, r.StateErr, topic)
		}
		reasons[string(r.Key)] = r.State.Reason
	}
	if len(dead) != 2 || reasons["doomed"] != retry.ReasonExhausted || reasons["empty"] != retry.ReasonPermanent {
		t.Errorf("DLT holds %d records with reasons %v, want doomed: exhausted, empty: permanent", len(dead), reasons)
	}
	// flaky went through the tier twice (attempts 2, 3), doomed too.
	waiting := k.Read(tier)
	for _, r := range waiting {
		if !r.HasState || r.State.IsDeadLetter() || r.State.Attempt < 2 || r.State.Due.IsZero() {
			t.Errorf("tier record %s@%d: state %+v, want a retry state due at attempt >= 2", r.Key, r.Offset, r.State)
		}
	}
	if len(waiting) != 4 {
		t.Errorf("%s holds %d records, want 4 (two hops of flaky and of doomed)", tier, len(waiting))
	}
	if main := k.Read(topic); len(main) != 4 || main[0].HasState {
		t.Errorf("%s: %d records (first has state: %v), want the 4 produced without retry state", topic, len(main), len(main) > 0 && main[0].HasState)
	}
}

// A batch listener's records reach their outcomes per key through
// WrapBatch: the records a BatchErrors names fail on their own, the
// others are handled.
func TestKitBatch(t *testing.T) {
	k := kretrytest.New(t, brokers())
	topic := k.Name("orders")
	k.CreateTopics(topic)
	h := listener.BatchHandlerFunc(func(ctx context.Context, recs []*kgo.Record) error {
		var errs listener.BatchErrors
		for _, rec := range recs {
			_, retried, _ := retry.Decode(rec.Headers)
			switch {
			case string(rec.Key) == "empty":
				errs.Add(rec, strategy.Permanent(errors.New("order has no items")))
			case string(rec.Key) == "flaky" && !retried:
				errs.Add(rec, errors.New("stock service down"))
			}
		}
		return errs.Err()
	})
	l, err := listener.NewBatch(k.Seeds(), topic, k.WrapBatch(h), listener.Group(k.Name("billing")),
		listener.BatchSize(10), listener.Backoff(strategy.FixedBackoff(10*time.Millisecond)),
		listener.DLTHandler(k.WrapDLT(nil)), quiet)
	if err != nil {
		t.Fatal(err)
	}
	k.CreateTopics(l.Plan().Topics()...)
	k.Run(l)
	k.Produce(
		&kgo.Record{Topic: topic, Key: []byte("fine")},
		&kgo.Record{Topic: topic, Key: []byte("flaky")},
		&kgo.Record{Topic: topic, Key: []byte("empty")},
	)
	if ds := k.Require("fine", kretrytest.Handled(1)); len(ds) != 1 || ds[0].Batch < 1 {
		t.Errorf("fine: deliveries %v, want one, in a batch", ds)
	}
	tier := l.Plan().Tiers[0].Topic
	if ds := k.Require("flaky", kretrytest.Handled(2)); len(ds) != 2 || ds[0].Err == nil || ds[1].Topic != tier || ds[1].State.Attempt != 2 {
		t.Errorf("flaky: deliveries %v, want a failure, then handled from %s with retry state attempt 2", ds, tier)
	}
	ds := k.Require("empty", kretrytest.DeadLettered(retry.ReasonPermanent))
	if len(ds) != 2 || ds[0].Err == nil || !strings.Contains(ds[1].State.Error, "order has no items") {
		t.Errorf("empty: deliveries %v, want its own failure, then the DLT handler", ds)
	}
}

// fakeT stands in for a test whose failure is the point: it records
// Fatalf and Errorf instead of failing the real test, and hands
// everything else (Context, Cleanup, Name) to it.
type fakeT struct {
	testing.TB
	mu     sync.Mutex
	errors []string
}

func (f *fakeT) Helper() {}

func (f *fakeT) Errorf(format string, args ...any) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.errors = append(f.errors, fmt.Sprintf(format, args...))
}

func (f *fakeT) Fatalf(format string, args ...any) {
	f.Errorf(format, args...)
	runtime.Goexit()
}

func (f *fakeT) Fatal(args ...any) { f.Fatalf("%s", fmt.Sprint(args...)) }
func (f *fakeT) Error(args ...any) { f.Errorf("%s", fmt.Sprint(args...)) }

func (f *fakeT) recorded() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.errors...)
}

// call runs fn in a goroutine of its own, as Fatalf ends the goroutine,
// and returns the messages it recorded and whether fn returned normally.
func (f *fakeT) call(fn func()) (msgs []string, returned bool) {
	before := len(f.recorded())
	done := make(chan bool)
	go func() {
		ok := false
		defer func() { done <- ok }()
		fn()
		ok = true
	}()
	returned = <-done
	return f.recorded()[before:], returned
}

// A Require that times out fails the test, naming the key, the outcome
// wanted and the Timeout, and says no delivery was seen.
func TestRequireTimeout(t *testing.T) {
	ft := &fakeT{TB: t}
	k := kretrytest.New(ft, brokers(), kretrytest.Timeout(200*time.Millisecond))
	msgs, returned := ft.call(func() { k.Require("ghost", kretrytest.Handled(2)) })
	if returned || len(msgs) != 1 {
		t.Fatalf("Require of a key never produced: returned %v, messages %q; want one fatal message", returned, msgs)
	}
	for _, want := range []string{`key "ghost": wanted handled on attempt 2, gave up after`,
		"Timeout (200ms) passed", "no delivery of this key was recorded"} {
		if !strings.Contains(msgs[0], want) {
			t.Errorf("Require's message lacks %q:\n%s", want, msgs[0])
		}
	}
}

// A listener that cannot start makes Require fail at once with its
// error, not at the Timeout, and the test fail at its end.
func TestRequireListenerStopped(t *testing.T) {
	ft := &fakeT{TB: t}
	// Registered first, so it runs after the kit's cleanups.
	t.Cleanup(func() {
		msgs := ft.recorded()
		if len(msgs) != 2 || !strings.Contains(msgs[1], "a listener failed") || !strings.Contains(msgs[1], "main topic") {
			t.Errorf("messages at the test's end: %q; want Require's, then the listener's error", msgs)
		}
	})
	k := kretrytest.New(ft, brokers(), kretrytest.Timeout(time.Hour))
	l, err := listener.New(k.Seeds(), k.Name("missing"), k.Wrap(nil), quiet)
	if err != nil {
		t.Fatal(err)
	}
	k.Run(l)
	msgs, returned := ft.call(func() { k.Require("order-1", kretrytest.Handled(1)) })
	if returned || len(msgs) != 1 {
		t.Fatalf("Require with a failed listener: returned %v, messages %q; want one fatal message", returned, msgs)
	}
	for _, want := range []string{`key "order-1": wanted handled on attempt 1`, "a listener stopped", "main topic"} {
		if !strings.Contains(msgs[0], want) {
			t.Errorf("Require's message lacks %q:\n%s", want, msgs[0])
		}
	}
}

// Bad options fail New with every problem named.
func TestNewBadOptions(t *testing.T) {
	ft := &fakeT{TB: t}
	msgs, returned := ft.call(func() { kretrytest.New(ft, kretrytest.Partitions(0), kretrytest.Timeout(0)) })
	if returned || len(msgs) != 1 || !strings.Contains(msgs[0], "Partitions must be >= 1, got 0") ||
		!strings.Contains(msgs[0], "Timeout must be > 0, got 0s") {
		t.Errorf("New with bad options: returned %v, messages %q", returned, msgs)
	}
}
