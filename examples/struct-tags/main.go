// Command struct-tags declares kretry listeners in struct tags: each
// tagged handler field of a struct becomes a listener, each "dlt=" field
// the DLT handler of a topic, and error names in the tags resolve through a
// registry the program passes. With no flags it starts an in-process Kafka
// cluster (franz-go's kfake), so it needs nothing installed:
//
//	go run ./examples/struct-tags
//
// It produces four orders and two payments. order-1 is handled, order-2
// fails once and is handled from the retry tier, order-3 is invalid and
// order-4 names a missing item: both errors are excluded from retries in
// the tag, so they go straight to the DLT handler. pay-2 is flagged as
// fraud and routed to its own DLT. The program stops once all six are
// settled, as kretry's test kit (listener/kretrytest) observes. Point it at
// a real cluster with -brokers host:port.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/kretry/kretry/config"
	"github.com/kretry/kretry/dlt"
	"github.com/kretry/kretry/listener"
	"github.com/kretry/kretry/listener/kretrytest"
	"github.com/kretry/kretry/retry"
	"github.com/kretry/kretry/strategy"
)

// Handlers declares the listeners. The tags hold the whole retry policy;
// docs/configuration.md lists every key.
type Handlers struct {
	Orders      listener.HandlerFunc `kretry:"topic=orders,group=billing,attempts=4,delay=200ms,multiplier=2,maxDelay=1s,exclude=validation|notfound"`
	OrdersDLT   dlt.HandlerFunc      `kretry:"dlt=orders"`
	Payments    listener.HandlerFunc `kretry:"topic=payments,attempts=2,delay=100ms,routes=-fraud:fraud"`
	PaymentsDLT dlt.HandlerFunc      `kretry:"dlt=payments"`
}

// The errors the tags name.
var (
	ErrInvalid     = errors.New("order has no line items")
	ErrNoSuchItem  = errors.New("no such item")
	ErrFraud       = errors.New("payment flagged as fraud")
	errUnavailable = errors.New("inventory service unavailable")
)

func main() {
	brokers := flag.String("brokers", "", "comma-separated Kafka brokers; empty starts an in-process kfake cluster")
	timeout := flag.Duration("timeout", time.Minute, "give up if the demo has not finished by then")
	flag.Parse()
	if err := run(*brokers, *timeout, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "struct-tags:", err)
		os.Exit(1)
	}
}

func run(brokers string, timeout time.Duration, out io.Writer) error {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	start := time.Now()
	var mu sync.Mutex
	say := func(format string, args ...any) {
		mu.Lock()
		defer mu.Unlock()
		fmt.Fprintf(out, "%7.3fs  %s\n", time.Since(start).Seconds(), fmt.Sprintf(format, args...))
	}

	cluster, err := kretrytest.NewCluster(ctx, kretrytest.Brokers(brokers), kretrytest.Partitions(2),
		kretrytest.Topics("orders", "payments"))
	if err != nil {
		return err
	}
	defer cluster.Close()

	var failedOnce sync.Map
	h := &Handlers{
		Orders: func(ctx context.Context, rec *kgo.Record) error {
			attempt := attemptOf(ctx)
			switch key := string(rec.Key); {
			case key == "order-2":
				if _, again := failedOnce.LoadOrStore(key, true); !again {
					say("%-8s %-20s attempt %d -> fails: %v", key, rec.Topic, attempt, errUnavailable)
					return fmt.Errorf("reserve stock: %w", errUnavailable)
				}
			case key == "order-3":
				say("%-8s %-20s attempt %d -> fails: %v", key, rec.Topic, attempt, ErrInvalid)
				return fmt.Errorf("validate: %w", ErrInvalid)
			case key == "order-4":
				say("%-8s %-20s attempt %d -> fails: %v", key, rec.Topic, attempt, ErrNoSuchItem)
				return fmt.Errorf("reserve stock: %w", ErrNoSuchItem)
			}
			say("%-8s %-20s attempt %d -> handled", rec.Key, rec.Topic, attempt)
			return nil
		},
		Payments: func(ctx context.Context, rec *kgo.Record) error {
			if string(rec.Key) == "pay-2" {
				say("%-8s %-20s attempt %d -> fails: %v", rec.Key, rec.Topic, attemptOf(ctx), ErrFraud)
				return strategy.Permanent(ErrFraud)
			}
			say("%-8s %-20s attempt %d -> handled", rec.Key, rec.Topic, attemptOf(ctx))
			return nil
		},
	}
	dltHandler := dlt.HandlerFunc(func(ctx context.Context, rec *kgo.Record, st retry.State) error {
		say("%-8s %-20s DLT handler: reason %q after %d deliveries: %s", rec.Key, rec.Topic, st.Reason, st.Attempt, st.Error)
		return nil
	})
	// The test kit's recorder sees every delivery, so the program can wait
	// for each record's outcome.
	rec := kretrytest.NewRecorder()
	h.Orders, h.Payments = rec.Wrap(h.Orders), rec.Wrap(h.Payments)
	h.OrdersDLT, h.PaymentsDLT = rec.WrapDLT(dltHandler), rec.WrapDLT(dltHandler)

	reg, err := config.NewRegistry(
		strategy.Is("validation", ErrInvalid),
		strategy.Is("notfound", ErrNoSuchItem),
		strategy.Is("fraud", ErrFraud),
	)
	if err != nil {
		return err
	}
	ls, err := listener.Register(cluster.Seeds(), h,
		listener.NamedErrors(reg),
		listener.Logger(slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError}))),
	)
	if err != nil {
		return err
	}
	for _, l := range ls {
		say("listener %q, group %q, plan:", l.Spec().Topic, l.Group())
		for _, line := range strings.Split(strings.TrimSpace(l.Plan().String()), "\n") {
			say("    %s", strings.ReplaceAll(line, "\t", "  "))
		}
	}

	var records []*kgo.Record
	for topic, keys := range map[string][]string{
		"orders":   {"order-1", "order-2", "order-3", "order-4"},
		"payments": {"pay-1", "pay-2"},
	} {
		for _, key := range keys {
			records = append(records, &kgo.Record{Topic: topic, Key: []byte(key), Value: []byte(`{}`)})
		}
	}
	if err := cluster.Produce(ctx, records...); err != nil {
		return err
	}
	say("produced order-1 .. order-4, pay-1 and pay-2")

	run := kretrytest.Start(ctx, ls...)
	defer run.Stop()
	for _, w := range []struct {
		key  string
		want kretrytest.Outcome
	}{
		{"order-1", kretrytest.Handled(1)},
		{"order-2", kretrytest.Handled(2)},
		{"order-3", kretrytest.DeadLettered("excluded:validation")},
		{"order-4", kretrytest.DeadLettered("excluded:notfound")},
		{"pay-1", kretrytest.Handled(1)},
		{"pay-2", kretrytest.DeadLettered(retry.ReasonPermanent)},
	} {
		// run.Context() ends if the listeners stop early.
		if _, err := rec.Wait(run.Context(), w.key, w.want); err != nil {
			return errors.Join(err, run.Stop())
		}
	}
	if err := run.Stop(); err != nil {
		return err
	}
	say("done: order-1, order-2 and pay-1 handled; order-3, order-4 and pay-2 in their DLTs")
	return nil
}

func attemptOf(ctx context.Context) int32 {
	if st, ok := retry.FromContext(ctx); ok {
		return st.Attempt
	}
	return 1
}
