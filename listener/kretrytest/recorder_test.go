package kretrytest_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/kretry/kretry/dlt"
	"github.com/kretry/kretry/listener"
	"github.com/kretry/kretry/listener/kretrytest"
	"github.com/kretry/kretry/retry"
)

// tierState is the retry state of a record's second delivery.
func tierState() retry.State {
	now := time.Now()
	return retry.State{Attempt: 2, Due: now, OriginalTopic: "orders", FirstFailure: now, Error: "down"}
}

func TestOutcomes(t *testing.T) {
	first := kretrytest.Delivery{Key: "k", Topic: "orders", Attempt: 1}
	failed := first
	failed.Err = errors.New("down")
	retried := kretrytest.Delivery{Key: "k", Topic: "orders-retry", Attempt: 2, State: tierState()}
	dead := kretrytest.Delivery{Key: "k", Topic: "orders-dlt", Attempt: 3, DeadLetter: true,
		State: retry.State{Attempt: 3, Reason: retry.ReasonExhausted}}
	for _, c := range []struct {
		want    kretrytest.Outcome
		name    string
		reached []kretrytest.Delivery
		not     []kretrytest.Delivery
	}{
		{kretrytest.Handled(1), "handled on attempt 1", []kretrytest.Delivery{first}, []kretrytest.Delivery{failed, retried, dead}},
		{kretrytest.Handled(2), "handled on attempt 2", []kretrytest.Delivery{retried}, []kretrytest.Delivery{first, dead}},
		{kretrytest.Handled(0), "handled", []kretrytest.Delivery{first, retried}, []kretrytest.Delivery{failed, dead}},
		{kretrytest.DeadLettered("exhausted"), `dead-lettered with reason "exhausted"`, []kretrytest.Delivery{dead}, []kretrytest.Delivery{first, failed}},
		{kretrytest.DeadLettered("permanent"), `dead-lettered with reason "permanent"`, nil, []kretrytest.Delivery{dead}},
		{kretrytest.DeadLettered(""), "dead-lettered", []kretrytest.Delivery{dead}, []kretrytest.Delivery{retried}},
		{kretrytest.Retried("orders-retry"), "retried from orders-retry", []kretrytest.Delivery{retried}, []kretrytest.Delivery{first, dead}},
		{kretrytest.Retried("orders-retry-2000"), "retried from orders-retry-2000", nil, []kretrytest.Delivery{retried}},
		{kretrytest.Retried(""), "retried", []kretrytest.Delivery{retried}, []kretrytest.Delivery{first, failed, dead}},
		{kretrytest.Outcome{}, "no outcome (the zero Outcome)", nil, []kretrytest.Delivery{first, retried, dead}},
	} {
		if got := c.want.String(); got != c.name {
			t.Errorf("String() = %q, want %q", got, c.name)
		}
		for _, d := range c.reached {
			if !reaches(t, d, c.want) {
				t.Errorf("%v does not reach %v", d, c.want)
			}
		}
		for _, d := range c.not {
			if reaches(t, d, c.want) {
				t.Errorf("%v reaches %v", d, c.want)
			}
		}
	}
}

// reaches records d in a new Recorder and reports whether a Wait for
// want returns at once.
func reaches(t *testing.T, d kretrytest.Delivery, want kretrytest.Outcome) bool {
	t.Helper()
	r := kretrytest.NewRecorder()
	rec := &kgo.Record{Key: []byte(d.Key), Topic: d.Topic}
	if d.DeadLetter {
		_ = r.WrapDLT(nil)(context.Background(), rec, d.State)
	} else {
		ctx := context.Background()
		if d.Attempt > 1 {
			ctx = retry.WithState(ctx, d.State)
		}
		_ = r.Wrap(listener.HandlerFunc(func(context.Context, *kgo.Record) error { return d.Err }))(ctx, rec)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := r.Wait(ctx, d.Key, want)
	return err == nil
}

// A first delivery counts as attempt 1 whether or not the context
// carries a state; a retry's attempt is its state's.
func TestWrapRecords(t *testing.T) {
	r := kretrytest.NewRecorder()
	h := r.Wrap(listener.HandlerFunc(func(ctx context.Context, rec *kgo.Record) error {
		if _, ok := retry.FromContext(ctx); !ok {
			return errors.New("down")
		}
		return nil
	}))
	rec := &kgo.Record{Key: []byte("k"), Topic: "orders", Partition: 2, Offset: 7}
	if err := h(context.Background(), rec); err == nil || err.Error() != "down" {
		t.Fatalf("wrapped handler returned %v, want the handler's error", err)
	}
	st := tierState()
	if err := h(retry.WithState(context.Background(), st), &kgo.Record{Key: []byte("k"), Topic: "orders-retry"}); err != nil {
		t.Fatal(err)
	}
	ds, err := r.Wait(context.Background(), "k", kretrytest.Handled(2))
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"attempt 1 from orders[2]@7: failed: down", "attempt 2 from orders-retry[0]@0: handled"}
	if len(ds) != 2 || ds[0].String() != want[0] || ds[1].String() != want[1] || ds[1].State != st || ds[0].State != (retry.State{}) {
		t.Errorf("deliveries %q, want %q with the retry state on the second only", ds, want)
	}
}

// A panic is recorded as the delivery's error and goes on to the
// listener, which recovers it.
func TestWrapPanic(t *testing.T) {
	r := kretrytest.NewRecorder()
	h := r.Wrap(listener.HandlerFunc(func(context.Context, *kgo.Record) error { panic("boom") }))
	func() {
		defer func() {
			if p := recover(); p != "boom" {
				t.Errorf("recovered %v, want the handler's panic", p)
			}
		}()
		_ = h(context.Background(), &kgo.Record{Key: []byte("k")})
	}()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	ds, _ := r.Wait(ctx, "k", kretrytest.Handled(0))
	if len(ds) != 1 || ds[0].Err == nil || ds[0].Err.Error() != "panic: boom" {
		t.Errorf("deliveries %v, want one failed with panic: boom", ds)
	}
}

// A Wait that ends lists what it saw and why it stopped, and hints at a
// DLT handler that is not wrapped.
func TestWaitFailure(t *testing.T) {
	r := kretrytest.NewRecorder()
	h := r.Wrap(listener.HandlerFunc(func(context.Context, *kgo.Record) error { return errors.New("down") }))
	_ = h(context.Background(), &kgo.Record{Key: []byte("k"), Topic: "orders", Offset: 4})
	ctx, cancel := context.WithCancelCause(context.Background())
	cancel(errors.New("the listener stopped"))
	_, err := r.Wait(ctx, "k", kretrytest.DeadLettered(retry.ReasonExhausted))
	if err == nil {
		t.Fatal("Wait with a canceled context returned no error")
	}
	for _, want := range []string{
		`kretrytest: key "k": wanted dead-lettered with reason "exhausted", gave up after`,
		": the listener stopped",
		"observed 1 deliveries of this key:\n\t1. attempt 1 from orders[0]@4: failed: down",
		"is the DLT handler wrapped",
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q:\n%v", want, err)
		}
	}
	ctx, cancel2 := context.WithTimeout(context.Background(), time.Nanosecond)
	defer cancel2()
	<-ctx.Done()
	if _, err := r.Wait(ctx, "k", kretrytest.Handled(1)); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Wait after the deadline: %v, want one matching context.DeadlineExceeded", err)
	}
}

// Wait blocks until a delivery reaches the outcome, waking on each one,
// and until its deadline when none does.
func TestWaitWakes(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := kretrytest.NewRecorder()
		h := r.Wrap(listener.HandlerFunc(func(_ context.Context, rec *kgo.Record) error {
			if string(rec.Value) == "bad" {
				return errors.New("down")
			}
			return nil
		}))
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		type result struct {
			ds  []kretrytest.Delivery
			err error
		}
		done := make(chan result, 1)
		go func() {
			ds, err := r.Wait(ctx, "k", kretrytest.Handled(0))
			done <- result{ds, err}
		}()
		synctest.Wait()
		_ = h(ctx, &kgo.Record{Key: []byte("other")})
		_ = h(ctx, &kgo.Record{Key: []byte("k"), Value: []byte("bad")})
		synctest.Wait()
		select {
		case res := <-done:
			t.Fatalf("Wait returned before the key was handled: %v, %v", res.ds, res.err)
		default:
		}
		_ = h(ctx, &kgo.Record{Key: []byte("k")})
		synctest.Wait()
		select {
		case res := <-done:
			if res.err != nil || len(res.ds) != 2 {
				t.Errorf("Wait: %v, %v; want both deliveries of k", res.ds, res.err)
			}
		default:
			t.Fatal("Wait still blocked after the key was handled")
		}

		start := time.Now()
		_, err := r.Wait(ctx, "never", kretrytest.Handled(0))
		if !errors.Is(err, context.DeadlineExceeded) || time.Since(start) != time.Minute {
			t.Errorf("Wait for a key never seen: %v after %v; want the deadline after 1m", err, time.Since(start))
		}
	})
}

func TestWrapDLTRecords(t *testing.T) {
	r := kretrytest.NewRecorder()
	fail := errors.New("alerting down")
	h := r.WrapDLT(dlt.HandlerFunc(func(context.Context, *kgo.Record, retry.State) error { return fail }))
	st := retry.State{Attempt: 1, OriginalTopic: "orders", Reason: retry.ReasonPermanent, Error: "no items"}
	if err := h(context.Background(), &kgo.Record{Key: []byte("k"), Topic: "orders-dlt"}, st); err != fail {
		t.Fatalf("wrapped DLT handler returned %v, want its handler's error", err)
	}
	ds, err := r.Wait(context.Background(), "k", kretrytest.DeadLettered(retry.ReasonPermanent))
	want := `DLT handler from orders-dlt[0]@0: reason "permanent" after 1 delivery, last error: no items; the DLT handler failed: alerting down`
	if err != nil || len(ds) != 1 || ds[0].String() != want || ds[0].State != st {
		t.Errorf("Wait: %q, %v; want one delivery %q with the state", ds, err, want)
	}
}

// A batch call records one delivery per record, each with its attempt and
// state from its headers and its own outcome, as the listener reads the
// batch's error.
func TestWrapBatchOutcomes(t *testing.T) {
	down := errors.New("database down")
	tier := &kgo.Record{Key: []byte("b"), Topic: "orders-retry", Partition: 1, Offset: 4, Headers: tierState().Append(nil, 0)}
	batch := func() []*kgo.Record {
		return []*kgo.Record{{Key: []byte("a"), Topic: "orders-retry", Partition: 1, Offset: 3}, tier,
			{Key: []byte("c"), Topic: "orders-retry", Partition: 1, Offset: 5}}
	}
	named := func(recs []*kgo.Record) error {
		var errs listener.BatchErrors
		errs.Add(recs[1], down)
		errs.Add(&kgo.Record{Key: []byte("x"), Topic: "orders-retry", Partition: 1, Offset: 99}, errors.New("not in the batch"))
		errs.Add(recs[1], errors.New("named twice"))
		errs.Add(recs[2], nil)
		return errs.Err()
	}
	for _, c := range []struct {
		name string
		h    listener.BatchHandler
		want [3]error // a, b, c
	}{
		{"nil handler", nil, [3]error{}},
		{"nil error", listener.BatchHandlerFunc(func(context.Context, []*kgo.Record) error { return nil }), [3]error{}},
		{"BatchErrors", listener.BatchHandlerFunc(func(_ context.Context, recs []*kgo.Record) error { return named(recs) }),
			[3]error{nil, down, nil}},
		{"wrapped BatchErrors", listener.BatchHandlerFunc(func(_ context.Context, recs []*kgo.Record) error {
			return fmt.Errorf("bulk insert: %w", named(recs))
		}), [3]error{nil, down, nil}},
		{"empty BatchErrors", listener.BatchHandlerFunc(func(context.Context, []*kgo.Record) error {
			return &listener.BatchErrors{}
		}), [3]error{}},
		{"plain error", listener.BatchHandlerFunc(func(context.Context, []*kgo.Record) error { return down }),
			[3]error{down, down, down}},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := kretrytest.NewRecorder()
			recs := batch()
			got := r.WrapBatch(c.h)(context.Background(), recs)
			if c.h != nil {
				if want := c.h.HandleBatch(context.Background(), recs); fmt.Sprint(got) != fmt.Sprint(want) {
					t.Errorf("wrapped batch handler returned %v, want its handler's %v", got, want)
				}
			}
			for i, key := range []string{"a", "b", "c"} {
				ds := recorded(r, key)
				if len(ds) != 1 {
					t.Fatalf("%s: %d deliveries recorded, want 1: %v", key, len(ds), ds)
				}
				d := ds[0]
				if d.Err != c.want[i] || d.Batch != 3 || d.Topic != "orders-retry" || d.Offset != recs[i].Offset {
					t.Errorf("%s: delivery %v (error %v), want error %v in a batch of 3 at offset %d", key, d, d.Err, c.want[i], recs[i].Offset)
				}
				wantAttempt := int32(1)
				if key == "b" {
					wantAttempt = 2
				}
				if d.Attempt != wantAttempt || (key == "b") != (d.State.OriginalTopic == "orders") {
					t.Errorf("%s: attempt %d, state %+v; want attempt %d, with the state decoded from b's headers only", key, d.Attempt, d.State, wantAttempt)
				}
			}
			if _, ok := waitNow(r, "x", kretrytest.Handled(0)); ok {
				t.Error("a record named by BatchErrors but not in the batch was recorded")
			}
		})
	}
}

// Outcomes are reached per key: a record handled in a batch is Handled,
// one retried from a tier in a batch is Retried, whichever its
// neighbours' outcomes.
func TestWrapBatchReaches(t *testing.T) {
	r := kretrytest.NewRecorder()
	h := r.WrapBatch(listener.BatchHandlerFunc(func(_ context.Context, recs []*kgo.Record) error {
		var errs listener.BatchErrors
		errs.Add(recs[0], errors.New("constraint violated"))
		return errs.Err()
	}))
	_ = h(context.Background(), []*kgo.Record{{Key: []byte("bad"), Topic: "orders"}, {Key: []byte("good"), Topic: "orders", Offset: 1}})
	_ = h(context.Background(), []*kgo.Record{{Key: []byte("other"), Topic: "orders-retry"},
		{Key: []byte("late"), Topic: "orders-retry", Offset: 1, Headers: tierState().Append(nil, 0)}})
	for _, c := range []struct {
		key  string
		want kretrytest.Outcome
		ok   bool
	}{
		{"good", kretrytest.Handled(1), true},
		{"bad", kretrytest.Handled(0), false},
		{"late", kretrytest.Handled(2), true},
		{"late", kretrytest.Retried("orders-retry"), true},
		{"other", kretrytest.Retried(""), false},
	} {
		if ds, ok := waitNow(r, c.key, c.want); ok != c.ok {
			t.Errorf("%s reaches %v: %v, want %v (deliveries %v)", c.key, c.want, ok, c.ok, ds)
		}
	}
	want := "attempt 1 from orders[0]@0 in a batch of 2: failed: constraint violated"
	if ds := recorded(r, "bad"); len(ds) != 1 || ds[0].String() != want {
		t.Errorf("bad: deliveries %q, want %q", ds, want)
	}
}

// A panic fails every record of the batch and goes on to the listener.
func TestWrapBatchPanic(t *testing.T) {
	r := kretrytest.NewRecorder()
	h := r.WrapBatch(listener.BatchHandlerFunc(func(context.Context, []*kgo.Record) error { panic("boom") }))
	func() {
		defer func() {
			if p := recover(); p != "boom" {
				t.Errorf("recovered %v, want the handler's panic", p)
			}
		}()
		_ = h(context.Background(), []*kgo.Record{{Key: []byte("a")}, {Key: []byte("b"), Offset: 1}})
	}()
	for _, key := range []string{"a", "b"} {
		if ds := recorded(r, key); len(ds) != 1 || ds[0].Err == nil || ds[0].Err.Error() != "panic: boom" {
			t.Errorf("%s: deliveries %v, want one failed with panic: boom", key, ds)
		}
	}
}

// waitNow reports whether key has reached want already, and its
// deliveries.
func waitNow(r *kretrytest.Recorder, key string, want kretrytest.Outcome) ([]kretrytest.Delivery, bool) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	ds, err := r.Wait(ctx, key, want)
	return ds, err == nil
}

// recorded returns key's deliveries so far.
func recorded(r *kretrytest.Recorder, key string) []kretrytest.Delivery {
	ds, _ := waitNow(r, key, kretrytest.Outcome{})
	return ds
}
