package listener_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/kretry/kretry/listener"
	"github.com/kretry/kretry/listener/kretrytest"
	"github.com/kretry/kretry/retry"
	"github.com/kretry/kretry/strategy"
)

// A batch handler inserts its records in one call. When the call fails
// as a whole (a plain error), every record of the batch goes to the retry
// tier; when some records fail (a BatchErrors), only those go on, each on
// its own — here straight to the DLT, as a permanent failure.
func ExampleNewBatch() {
	products := map[string]bool{"sku-1": true, "sku-2": true}
	var reset atomic.Bool
	handler := listener.BatchHandlerFunc(func(ctx context.Context, recs []*kgo.Record) error {
		if reset.CompareAndSwap(false, true) {
			return errors.New("database connection reset") // fails every record
		}
		var errs listener.BatchErrors
		for _, rec := range recs {
			if !products[string(rec.Value)] {
				errs.Add(rec, strategy.Permanent(fmt.Errorf("no product %q", rec.Value)))
			}
		}
		// … insert the others in one statement …
		return errs.Err()
	})

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	// An in-process cluster (kretrytest.Brokers names yours).
	c, err := kretrytest.NewCluster(ctx, kretrytest.Topics("orders"))
	if err != nil {
		fmt.Println(err)
		return
	}
	defer c.Close()
	rec := kretrytest.NewRecorder()
	l, err := listener.NewBatch(c.Seeds(), "orders", rec.WrapBatch(handler),
		listener.BatchSize(10),
		listener.Backoff(strategy.FixedBackoff(100*time.Millisecond)),
		listener.DLTHandler(rec.WrapDLT(nil)),
		listener.Logger(slog.New(slog.DiscardHandler)))
	if err != nil {
		fmt.Println(err)
		return
	}
	err = c.Produce(ctx, &kgo.Record{Topic: "orders", Key: []byte("order-1"), Value: []byte("sku-1")},
		&kgo.Record{Topic: "orders", Key: []byte("order-2"), Value: []byte("sku-9")},
		&kgo.Record{Topic: "orders", Key: []byte("order-3"), Value: []byte("sku-2")})
	if err != nil {
		fmt.Println(err)
		return
	}
	run := kretrytest.Start(ctx, l)
	defer run.Stop()
	for _, w := range []struct {
		key  string
		want kretrytest.Outcome
	}{
		{"order-1", kretrytest.Handled(2)},
		{"order-2", kretrytest.DeadLettered(retry.ReasonPermanent)},
		{"order-3", kretrytest.Handled(2)},
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
	// Output:
	// order-1 handled on attempt 2:
	//     attempt 1 from orders[0]@0 in a batch of 3: failed: database connection reset
	//     attempt 2 from orders-retry[0]@0 in a batch of 3: handled
	// order-2 dead-lettered with reason "permanent":
	//     attempt 1 from orders[0]@1 in a batch of 3: failed: database connection reset
	//     attempt 2 from orders-retry[0]@1 in a batch of 3: failed: no product "sku-9"
	//     DLT handler from orders-dlt[0]@0: reason "permanent" after 2 deliveries, last error: no product "sku-9"
	// order-3 handled on attempt 2:
	//     attempt 1 from orders[0]@2 in a batch of 3: failed: database connection reset
	//     attempt 2 from orders-retry[0]@2 in a batch of 3: handled
}

// A batch handler names each record that failed, with its own error; Add
// ignores a nil error, so a per-record result can be passed as it is, and
// Err is nil when nothing failed.
func ExampleBatchErrors() {
	recs := []*kgo.Record{
		{Topic: "orders", Offset: 10, Key: []byte("order-1"), Value: []byte("2")},
		{Topic: "orders", Offset: 11, Key: []byte("order-2"), Value: []byte("0")},
		{Topic: "orders", Offset: 12, Key: []byte("order-3"), Value: []byte("5")},
		{Topic: "orders", Offset: 13, Key: []byte("order-4"), Value: []byte("-1")},
	}
	validate := func(rec *kgo.Record) error {
		if q := string(rec.Value); q == "0" || q[0] == '-' {
			return strategy.Permanent(fmt.Errorf("quantity %s is not > 0", q))
		}
		return nil
	}

	var errs listener.BatchErrors
	for _, rec := range recs {
		errs.Add(rec, validate(rec))
	}
	err := errs.Err() // what HandleBatch returns
	fmt.Println(err)
	for rec, err := range errs.All() {
		fmt.Printf("%s: %v (permanent: %v)\n", rec.Key, err, strategy.IsPermanent(err))
	}

	var none listener.BatchErrors
	none.Add(recs[0], validate(recs[0]))
	fmt.Println(none.Len(), none.Err() == nil)
	// Output:
	// listener: 2 record(s) of the batch failed; orders[0]@11: quantity 0 is not > 0; orders[0]@13: quantity -1 is not > 0
	// order-2: quantity 0 is not > 0 (permanent: true)
	// order-4: quantity -1 is not > 0 (permanent: true)
	// 0 true
}
