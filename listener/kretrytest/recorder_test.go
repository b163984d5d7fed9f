package kretrytest_test

import (
	"context"
	"errors"
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
