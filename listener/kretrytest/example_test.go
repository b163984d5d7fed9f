package kretrytest_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/kretry/kretry/listener"
	"github.com/kretry/kretry/listener/kretrytest"
	"github.com/kretry/kretry/retry"
	"github.com/kretry/kretry/strategy"
)

// A user's handler, tested without a testing.T: it fails once for each
// key and then succeeds, and fails for good on an order without items.
func Example() {
	var failed sync.Map
	handler := listener.HandlerFunc(func(ctx context.Context, rec *kgo.Record) error {
		if len(rec.Value) == 0 {
			return strategy.Permanent(errors.New("order has no items"))
		}
		if _, again := failed.LoadOrStore(string(rec.Key), true); !again {
			return errors.New("stock service down")
		}
		return nil
	})

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c, err := kretrytest.NewCluster(ctx, kretrytest.Topics("orders"))
	if err != nil {
		fmt.Println(err)
		return
	}
	defer c.Close()
	rec := kretrytest.NewRecorder()
	l, err := listener.New(c.Seeds(), "orders", rec.Wrap(handler),
		listener.Backoff(strategy.FixedBackoff(10*time.Millisecond)),
		listener.DLTHandler(rec.WrapDLT(nil)),
		listener.Logger(slog.New(slog.DiscardHandler)))
	if err != nil {
		fmt.Println(err)
		return
	}
	run := kretrytest.Start(ctx, l)
	defer run.Stop()
	err = c.Produce(ctx, &kgo.Record{Topic: "orders", Key: []byte("flaky"), Value: []byte("sku-1")},
		&kgo.Record{Topic: "orders", Key: []byte("empty")})
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, w := range []struct {
		key  string
		want kretrytest.Outcome
	}{
		{"flaky", kretrytest.Handled(2)},
		{"empty", kretrytest.DeadLettered(retry.ReasonPermanent)},
	} {
		ds, err := rec.Wait(run.Context(), w.key, w.want)
		if err != nil {
			fmt.Println(err)
			return
		}
		fmt.Printf("%s %v:\n", w.key, w.want)
		for _, d := range ds {
			fmt.Println("   ", d)
		}
	}
	// The DLT holds the record with its retry history in its headers.
	dead, err := c.Read(ctx, "orders-dlt")
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, r := range dead {
		fmt.Printf("%s in %s: reason %q, from %s@%d after %d delivery\n",
			r.Key, r.Topic, r.State.Reason, r.State.OriginalTopic, r.State.OriginalOffset, r.State.Attempt)
	}
	// Output:
	// flaky handled on attempt 2:
	//     attempt 1 from orders[0]@0: failed: stock service down
	//     attempt 2 from orders-retry[0]@0: handled
	// empty dead-lettered with reason "permanent":
	//     attempt 1 from orders[0]@1: failed: order has no items
	//     DLT handler from orders-dlt[0]@0: reason "permanent" after 1 delivery, last error: order has no items
	// empty in orders-dlt: reason "permanent", from orders@1 after 1 delivery
}
