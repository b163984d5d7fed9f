package listener_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/kretry/kretry/internal/kafkatest"
	"github.com/kretry/kretry/listener"
	"github.com/kretry/kretry/retry"
)

type regOutcome struct {
	topic, key string
	attempt    int32
	reason     string // DLT only
}

// A struct of tagged handlers with a policy file runs end to end: the
// tags' topics are consumed, the file's policy applies, excluded errors go
// to the DLT handler field, and RunAll stops cleanly on cancel.
func TestRegisterRunsEndToEnd(t *testing.T) {
	c := kafkatest.New(t)
	orders, payments := c.Name("orders"), c.Name("payments")
	c.CreateTopic(orders, 2)
	c.CreateTopic(payments, 1)

	handled := make(chan regOutcome, 16)
	dead := make(chan regOutcome, 16)
	var flakyFailed atomic.Bool
	ordersHandler := listener.HandlerFunc(func(ctx context.Context, rec *kgo.Record) error {
		st, _ := retry.FromContext(ctx)
		switch key := string(rec.Key); {
		case key == "bad":
			return fmt.Errorf("parse order: %w", errRegValidation)
		case key == "flaky" && flakyFailed.CompareAndSwap(false, true):
			return errRegTimeout
		}
		handled <- regOutcome{topic: rec.Topic, key: string(rec.Key), attempt: st.Attempt}
		return nil
	})
	paymentsHandler := func(ctx context.Context, rec *kgo.Record) error {
		handled <- regOutcome{topic: rec.Topic, key: string(rec.Key)}
		return nil
	}
	ordersDLT := func(_ context.Context, rec *kgo.Record, st retry.State) error {
		dead <- regOutcome{topic: rec.Topic, key: string(rec.Key), attempt: st.Attempt, reason: st.Reason}
		return nil
	}
	handlers := tagged(
		tf{"Orders", "topic=" + orders + ",attempts=3,exclude=validation", ordersHandler},
		tf{"OrdersDLT", "dlt=" + orders, ordersDLT},
		tf{"Payments", "topic=" + payments, paymentsHandler},
	)
	file := parsePolicy(t, fmt.Sprintf(`
defaults:
  delay: 20ms
listeners:
  - topic: %s
    group: %s
    attempts: 2
`, orders, c.Name("group")))
	ls, err := listener.Register(c.Seeds, handlers, listener.NamedErrors(namedErrors(t)), listener.PolicyFile(file),
		listener.Logger(slog.New(slog.NewTextHandler(io.Discard, nil))))
	if err != nil {
		t.Fatal(err)
	}
	if got := ls[0].Plan().String(); got != fmt.Sprintf("%[1]s\t-\n%[1]s-retry\t20ms\n%[1]s-dlt\t-\n", orders) {
		t.Errorf("orders plan (file attempts 2 over tag attempts 3):\n%s", got)
	}

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	errc := make(chan error, 1)
	go func() { errc <- listener.RunAll(ctx, ls...) }()

	c.Produce(
		&kgo.Record{Topic: orders, Key: []byte("ok")},
		&kgo.Record{Topic: orders, Key: []byte("flaky")},
		&kgo.Record{Topic: orders, Key: []byte("bad")},
		&kgo.Record{Topic: payments, Key: []byte("p1")},
	)
	deadline := time.After(60 * time.Second)
	got := map[string]regOutcome{}
	for len(got) < 4 {
		select {
		case o := <-handled:
			got[o.key] = o
		case o := <-dead:
			got["dlt:"+o.key] = o
		case err := <-errc:
			t.Fatalf("RunAll returned early: %v", err)
		case <-deadline:
			t.Fatalf("outcomes so far: %v", got)
		}
	}
	if o := got["flaky"]; o.topic != orders+"-retry" || o.attempt != 2 {
		t.Errorf("flaky: %+v, want handled from %s-retry on attempt 2", o, orders)
	}
	if o := got["dlt:bad"]; o.topic != orders+"-dlt" || o.reason != "excluded:validation" || o.attempt != 1 {
		t.Errorf("bad: %+v, want in %s-dlt, excluded:validation after 1 delivery", o, orders)
	}
	if o := got["p1"]; o.topic != payments {
		t.Errorf("p1: %+v", o)
	}
	cancel()
	if err := <-errc; err != nil {
		t.Errorf("RunAll after cancel: %v", err)
	}
}

// When one listener cannot run, RunAll stops the others and reports it.
func TestRunAllStopsOthersOnFailure(t *testing.T) {
	c := kafkatest.New(t)
	present, missing := c.Name("present"), c.Name("missing")
	c.CreateTopic(present, 1)
	ls, err := listener.Register(c.Seeds, tagged(tf{"Present", "topic=" + present, nopHandler}, tf{"Missing", "topic=" + missing, nopHandler}),
		listener.Logger(slog.New(slog.NewTextHandler(io.Discard, nil))))
	if err != nil {
		t.Fatal(err)
	}
	errc := make(chan error, 1)
	go func() { errc <- listener.RunAll(context.Background(), ls...) }()
	select {
	case err := <-errc:
		if err == nil || !strings.Contains(err.Error(), fmt.Sprintf(`listener: topic %q: listener: main topic %q`, missing, missing)) {
			t.Errorf("RunAll: %v", err)
		}
		if n := strings.Count(err.Error(), "\n"); n != 0 {
			t.Errorf("RunAll reported %d errors, want only the failing listener's:\n%v", n+1, err)
		}
	case <-time.After(60 * time.Second):
		t.Fatal("RunAll did not return after a listener failed")
	}
}
