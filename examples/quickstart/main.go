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
// created if it is missing).
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

	"github.com/kretry/kretry/examples/internal/demo"
	"github.com/kretry/kretry/listener"
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

	seeds, stop, err := demo.Cluster(ctx, brokers, 3, topic)
	if err != nil {
		return err
	}
	defer stop()
	if brokers == "" {
		say("started an in-process Kafka cluster (kfake) at %s", strings.Join(seeds, ","))
	}

	var (
		deliveries = map[string]int{}
		finished   = map[string]bool{}
		allDone    = make(chan struct{})
	)
	finish := func(key string) {
		mu.Lock()
		finished[key] = true
		n := len(finished)
		mu.Unlock()
		if n == 4 {
			close(allDone)
		}
	}

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
		finish(key)
		return nil
	})
	dltHandler := dltFunc(func(_ context.Context, rec *kgo.Record, st retry.State) error {
		say("%-8s in the DLT handler from %s: reason %q after %d deliveries; first failed %s ago; last error: %s",
			rec.Key, rec.Topic, st.Reason, st.Attempt, time.Since(st.FirstFailure).Round(time.Millisecond), st.Error)
		finish(string(rec.Key))
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

	l, err := listener.New(seeds, topic, handle,
		listener.Group("quickstart"),
		listener.Attempts(4),
		listener.Backoff(strategy.ExponentialBackoff(500*time.Millisecond, 2, 0)),
		listener.DLTHandler(dltHandler),
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

	if err := demo.Produce(ctx, seeds, map[string][]string{topic: {"order-1", "order-2", "order-3", "order-4"}}); err != nil {
		return err
	}
	say("produced order-1 .. order-4")

	runCtx, stopRun := context.WithCancel(ctx)
	defer stopRun()
	errc := make(chan error, 1)
	go func() { errc <- l.Run(runCtx) }()
	select {
	case <-allDone:
	case err := <-errc:
		return fmt.Errorf("listener stopped early: %w", err)
	case <-ctx.Done():
		return fmt.Errorf("demo did not finish within %v", timeout)
	}
	stopRun()
	if err := <-errc; err != nil {
		return err
	}
	say("done: order-1 and order-2 handled, order-3 and order-4 in the DLT; offsets committed, group left")
	return nil
}

type dltFunc func(context.Context, *kgo.Record, retry.State) error

func (f dltFunc) HandleDLT(ctx context.Context, rec *kgo.Record, st retry.State) error {
	return f(ctx, rec, st)
}
