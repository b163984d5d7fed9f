package listener_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/kretry/kretry/dlt"
	"github.com/kretry/kretry/listener"
	"github.com/kretry/kretry/retry"
	"github.com/kretry/kretry/strategy"
)

// A handler that fails once is called again from the retry tier after its
// delay; a handler that fails for good hands the record to the DLT handler.
func Example() {
	// An in-process cluster; use your brokers instead.
	cluster, _ := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(1, "orders"))
	defer cluster.Close()
	seeds := cluster.ListenAddrs()

	done := make(chan struct{}, 2)
	failures := map[string]int{}
	handler := listener.HandlerFunc(func(ctx context.Context, rec *kgo.Record) error {
		st, retried := retry.FromContext(ctx)
		key := string(rec.Key)
		switch {
		case key == "bad":
			fmt.Printf("%s from %s: invalid\n", key, rec.Topic)
			return strategy.Permanent(errors.New("invalid order"))
		case failures[key] == 0:
			failures[key]++
			fmt.Printf("%s from %s: failed\n", key, rec.Topic)
			return errors.New("stock service down")
		}
		fmt.Printf("%s from %s: handled on attempt %d (retried: %v)\n", key, rec.Topic, st.Attempt, retried)
		done <- struct{}{}
		return nil
	})
	dltHandler := dlt.HandlerFunc(func(_ context.Context, rec *kgo.Record, st retry.State) error {
		fmt.Printf("%s in %s: %s after %d delivery: %s\n", rec.Key, rec.Topic, st.Reason, st.Attempt, st.Error)
		done <- struct{}{}
		return nil
	})

	opts := []listener.Opt{
		listener.Group("example"),
		listener.Backoff(strategy.FixedBackoff(100 * time.Millisecond)),
		listener.DLTHandler(dltHandler),
		listener.Logger(slog.New(slog.DiscardHandler)),
	}
	l, err := listener.New(seeds, "orders", handler, opts...)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(l.Plan())

	producer, _ := kgo.NewClient(kgo.SeedBrokers(seeds...))
	defer producer.Close()
	// One record per run, so the output's order does not depend on timing.
	// A Listener runs once; the second one continues where the first
	// committed.
	for _, key := range []string{"good", "bad"} {
		ctx, cancel := context.WithCancel(context.Background())
		producer.ProduceSync(ctx, &kgo.Record{Topic: "orders", Key: []byte(key)})
		errc := make(chan error, 1)
		go func() { errc <- l.Run(ctx) }()
		<-done
		cancel()
		if err := <-errc; err != nil {
			fmt.Println(err)
		}
		l, _ = listener.New(seeds, "orders", handler, opts...)
	}
	// Output:
	// orders	-
	// orders-retry	100ms
	// orders-dlt	-
	//
	// good from orders: failed
	// good from orders-retry: handled on attempt 2 (retried: true)
	// bad from orders: invalid
	// bad in orders-dlt: permanent after 1 delivery: invalid order
}

// Options that set single policy fields start from Spring Kafka's defaults.
func ExampleNew_plan() {
	l, err := listener.New([]string{"localhost:9092"}, "orders", listener.HandlerFunc(
		func(context.Context, *kgo.Record) error { return nil }),
		listener.Attempts(4),
		listener.Backoff(strategy.ExponentialBackoff(time.Second, 2, 0)),
	)
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, t := range l.Plan().Tiers {
		fmt.Println(t.Topic, t.Delay)
	}
	fmt.Println(l.Plan().DLT, l.Group())
	// Output:
	// orders-retry-1000 1s
	// orders-retry-2000 2s
	// orders-retry-4000 4s
	// orders-dlt kretry-orders
}

// Bad options fail in New with a message naming the option and the rule.
func ExampleNew_validation() {
	_, err := listener.New(nil, "orders", nil, listener.Attempts(-1), listener.Concurrency(-1))
	fmt.Println(err)
	// Output:
	// listener: handler must not be nil
	// listener: seeds must name at least one broker (host:port)
	// listener: Concurrency must be >= 1, or 0 for the default, got -1
	// listener: topic "orders": attempts: must be >= 1 and <= 32767, or 0 for the default, got -1
}
