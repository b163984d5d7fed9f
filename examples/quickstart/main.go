// Command quickstart shows kretry end to end. With no flags it starts an
// in-process Kafka cluster (franz-go's kfake), so it needs nothing
// installed:
//
//	go run ./examples/quickstart
//
// It produces four orders to the "orders" topic and handles them with a
// handler that succeeds for order-1, fails twice and then succeeds for
// order-2, always fails for order-3, and fails permanently for order-4. The
// trace shows each delivery, each hop through the retry tiers, and the
// dead-letter handler receiving the two records that could not be handled.
//
// Point it at a real cluster with -brokers host:port (the "orders" topic is
// created if it is missing). The cluster, the records and the wait for
// each order's outcome come from kretry's test kit, listener/kretrytest
// (docs/testing.md).
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

	"github.com/kretry/kretry/dlt"
	"github.com/kretry/kretry/listener"
	"github.com/kretry/kretry/listener/kretrytest"
	"github.com/kretry/kretry/retry"
	"github.com/kretry/kretry/strategy"
)

func main() {
	brokers := flag.String("brokers", "", "comma-separated Kafka brokers; empty starts an in-process kfake cluster")
	topic := flag.String("topic", "orders", "main topic")
	timeout := flag.Duration("timeout", time.Minute, "give up if the demo has not finished by then")
	flag.Parse()
	if err := run(*brokers, *topic, *timeout, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "quickstart:", err)
		os.Exit(1)
	}
}

var errUnavailable = errors.New("inventory service unavailable")
var errInvalid = errors.New("order has no line items")

func run(brokers, topic string, timeout time.Duration, out io.Writer) error {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	start := time.Now()
	var mu sync.Mutex
	say := func(format string, args ...any) {
		mu.Lock()
		defer mu.Unlock()
		fmt.Fprintf(out, "%7.3fs  %s\n", time.Since(start).Seconds(), fmt.Sprintf(format, args...))
	}

	// The test kit's cluster: in-process, or the brokers given, where the
	// topic is created if it is missing.
	cluster, err := kretrytest.NewCluster(ctx, kretrytest.Brokers(brokers), kretrytest.Partitions(3), kretrytest.Topics(topic))
	if err != nil {
		return err
	}
	defer cluster.Close()
	if cluster.InProcess() {
		say("started an in-process Kafka cluster (kfake) at %s", strings.Join(cluster.Seeds(), ","))
	}

	deliveries := map[string]int{}
	handle := listener.HandlerFunc(func(ctx context.Context, rec *kgo.Record) error {
		key := string(rec.Key)
		mu.Lock()
		deliveries[key]++
		n := deliveries[key]
		mu.Unlock()
		attempt := "first delivery"
		if st, ok := retry.FromContext(ctx); ok {
			attempt = fmt.Sprintf("attempt %d, due %s, %s late", st.Attempt,
				st.Due.Format("15:04:05.000"), time.Since(st.Due).Round(time.Millisecond))
		}
		switch {
		case key == "order-2" && n <= 2, key == "order-3":
			say("%-8s from %-22s %s -> fails: %v", key, rec.Topic, attempt, errUnavailable)
			return fmt.Errorf("reserve stock: %w", errUnavailable)
		case key == "order-4":
			say("%-8s from %-22s %s -> fails permanently: %v", key, rec.Topic, attempt, errInvalid)
			return strategy.Permanent(errInvalid)
		}
		say("%-8s from %-22s %s -> handled", key, rec.Topic, attempt)
		return nil
	})
	dltHandler := dlt.HandlerFunc(func(_ context.Context, rec *kgo.Record, st retry.State) error {
		say("%-8s in the DLT handler from %s: reason %q after %d deliveries; first failed %s ago; last error: %s",
			rec.Key, rec.Topic, st.Reason, st.Attempt, time.Since(st.FirstFailure).Round(time.Millisecond), st.Error)
		return nil
	})
	trace := listener.HookFunc(func(e listener.Event) {
		switch e.Kind {
		case listener.EventRetried:
			say("%-8s published to %s, due in %s", e.Topic+"@"+fmt.Sprint(e.Offset), e.Target, time.Until(e.Due).Round(time.Millisecond))
		case listener.EventDeadLettered:
			say("%-8s dead-lettered to %s (%s)", e.Topic+"@"+fmt.Sprint(e.Offset), e.Target, e.Reason)
		}
	})

	// The recorder sees every delivery, so the program can wait for each
	// order's outcome.
	rec := kretrytest.NewRecorder()
	l, err := listener.New(cluster.Seeds(), topic, rec.Wrap(handle),
		listener.Group("quickstart"),
		listener.Attempts(4),
		listener.Backoff(strategy.ExponentialBackoff(500*time.Millisecond, 2, 0)),
		listener.DLTHandler(rec.WrapDLT(dltHandler)),
		listener.Hooks(trace),
		listener.Logger(slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError}))),
	)
	if err != nil {
		return err
	}
	say("plan for %q (attempts 4, exponential 500ms x2):", topic)
	for _, t := range l.Plan().Topics() {
		role, _ := l.Plan().Lookup(t)
		delay := ""
		for _, tier := range l.Plan().Tiers {
			if tier.Topic == t {
				delay = "delay " + tier.Delay.String()
			}
		}
		say("    %-24s %-6s %s", t, role, delay)
	}

	var orders []*kgo.Record
	for _, key := range []string{"order-1", "order-2", "order-3", "order-4"} {
		orders = append(orders, &kgo.Record{Topic: topic, Key: []byte(key), Value: []byte(`{}`)})
	}
	if err := cluster.Produce(ctx, orders...); err != nil {
		return err
	}
	say("produced order-1 .. order-4")

	run := kretrytest.Start(ctx, l)
	defer run.Stop()
	for _, w := range []struct {
		key  string
		want kretrytest.Outcome
	}{
		{"order-1", kretrytest.Handled(1)},
		{"order-2", kretrytest.Handled(3)},
		{"order-3", kretrytest.DeadLettered(retry.ReasonExhausted)},
		{"order-4", kretrytest.DeadLettered(retry.ReasonPermanent)},
	} {
		// run.Context() ends if the listener stops early.
		if _, err := rec.Wait(run.Context(), w.key, w.want); err != nil {
			return errors.Join(err, run.Stop())
		}
	}
	if err := run.Stop(); err != nil {
		return err
	}
	say("done: order-1 and order-2 handled, order-3 and order-4 in the DLT; offsets committed, group left")
	return nil
}
