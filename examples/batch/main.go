// Command batch shows a batch handler with non-blocking retries: a bulk
// insert of orders into a database table, one call for each batch of
// records. With no flags it starts an in-process Kafka cluster (franz-go's
// kfake), so it needs nothing installed:
//
//	go run ./examples/batch
//
// It produces 30 orders to the "orders" topic (3 partitions) and inserts
// them, in batches of up to 10 records of one partition, into a table
// simulated in memory (table.go). Three orders violate a constraint of the
// table: the handler names each in a listener.BatchErrors, wrapped with
// strategy.Permanent, so those three go straight to the dead-letter topic
// while the rest of their batch is acknowledged. Once, the connection to
// the database resets in the middle of a batch: the handler returns a
// plain error, so every record of that batch goes to the retry tier and
// is inserted again a second later, by a batch of the retry tier. Some of
// its rows had been written before the reset; the insert is idempotent,
// so the retry skips them, and the summary checks that no row was written
// twice.
//
// The trace shows each batch call (topic, partition, offsets, size,
// attempts) and what it wrote or refused, each record's hop to the retry
// tier or the DLT, and the DLT handler receiving the constraint
// violators with their reason and error.
//
// Point it at a real cluster with -brokers host:port (the "orders" topic is
// created if it is missing). The cluster, the records and the wait for
// each order's outcome come from kretry's test kit, listener/kretrytest
// (docs/testing.md).
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"slices"
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
		fmt.Fprintln(os.Stderr, "batch:", err)
		os.Exit(1)
	}
}

const (
	numOrders = 30
	// resetOn is the order whose batch loses the database connection, on
	// its first insert, after resetAfter of its rows were written.
	resetOn    = "order-12"
	resetAfter = 3
)

// orders returns the orders the example produces, by ID: a few violate a
// constraint of the table (bad lists them).
func orders() (ids []string, byID map[string]row, bad []string) {
	byID = map[string]row{}
	for i := 1; i <= numOrders; i++ {
		r := row{ID: fmt.Sprintf("order-%02d", i), Customer: fmt.Sprintf("customer-%d", i%7+1),
			SKU: fmt.Sprintf("SKU-%d", i%5+1), Quantity: i%4 + 1}
		switch i {
		case 4:
			r.Quantity = 0
		case 17:
			r.SKU = "SKU-404"
		case 25:
			r.Customer = ""
		}
		ids, byID[r.ID] = append(ids, r.ID), r
	}
	return ids, byID, []string{"order-04", "order-17", "order-25"}
}

func run(brokers, topic string, timeout time.Duration, out io.Writer) error {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	start := time.Now()
	var mu sync.Mutex
	// say prints one line, or several that stay together.
	say := func(format string, args ...any) {
		mu.Lock()
		defer mu.Unlock()
		msg := strings.ReplaceAll(fmt.Sprintf(format, args...), "\n", "\n"+strings.Repeat(" ", 10))
		fmt.Fprintf(out, "%7.3fs  %s\n", time.Since(start).Seconds(), msg)
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

	db := newTable("SKU-1", "SKU-2", "SKU-3", "SKU-4", "SKU-5")
	db.resetOnce(resetOn, resetAfter)
	// What the batches of the retry tier did: rows handed over again,
	// written, found already present.
	var resent, rewritten, represent int
	handle := listener.BatchHandlerFunc(func(ctx context.Context, recs []*kgo.Record) error {
		var errs listener.BatchErrors
		rows := make([]row, 0, len(recs))
		from := make([]*kgo.Record, 0, len(recs)) // rows[i] is from[i]'s
		lo, hi := int32(0), int32(0)
		for _, rec := range recs {
			attempt := int32(1) // a main-topic record has no retry state
			if st, ok, err := retry.Decode(rec.Headers); ok && err == nil {
				attempt = st.Attempt
			}
			if lo == 0 || attempt < lo {
				lo = attempt
			}
			hi = max(hi, attempt)
			r := row{ID: string(rec.Key)}
			if err := json.Unmarshal(rec.Value, &r); err != nil {
				errs.Add(rec, strategy.Permanent(fmt.Errorf("order %s: %w", rec.Key, err)))
				continue
			}
			rows, from = append(rows, r), append(from, rec)
		}
		attempts := fmt.Sprintf("attempt %d", lo)
		if hi > lo {
			attempts = fmt.Sprintf("attempts %d..%d", lo, hi)
		}
		call := fmt.Sprintf("insert %s[%d]@%d..%d (%d rows, %s)", recs[0].Topic, recs[0].Partition,
			recs[0].Offset, recs[len(recs)-1].Offset, len(recs), attempts)

		res, err := db.insert(ctx, rows)
		if err != nil {
			// Which rows were written is unknown: every record of the
			// batch goes to the retry tier, the insert is retried whole.
			say("%s: %v (which rows were written is unknown); the whole batch fails", call, err)
			return fmt.Errorf("bulk insert: %w", err)
		}
		if hi > 1 {
			mu.Lock()
			resent, rewritten, represent = resent+len(recs), rewritten+res.written, represent+res.present
			mu.Unlock()
		}
		var b strings.Builder
		fmt.Fprintf(&b, "%s: %d written", call, res.written)
		if res.present > 0 {
			fmt.Fprintf(&b, ", %d already present (skipped)", res.present)
		}
		if len(res.refused) > 0 {
			fmt.Fprintf(&b, ", %d refused", len(res.refused))
		}
		for _, f := range res.refused {
			rec := from[f.at]
			fmt.Fprintf(&b, "\n%-8s @%d refused: %v", rec.Key, rec.Offset, f.err)
			// A constraint violation fails again on every retry: straight
			// to the DLT. The rest of the batch is acknowledged.
			errs.Add(rec, strategy.Permanent(f.err))
		}
		say("%s", b.String())
		return errs.Err()
	})
	dltHandler := dlt.HandlerFunc(func(_ context.Context, rec *kgo.Record, st retry.State) error {
		say("%-8s in the DLT handler from %s: reason %q after %s; error: %s",
			rec.Key, rec.Topic, st.Reason, deliveries(st.Attempt), st.Error)
		return nil
	})

	// keys names the main topic's records in the trace of each hop; it is
	// filled once they are produced, before the listener starts.
	keys := map[[2]int64]string{}
	name := func(e listener.Event) string {
		if k, ok := keys[[2]int64{int64(e.Partition), e.Offset}]; ok && e.Topic == topic {
			return fmt.Sprintf("%-8s %s[%d]@%d", k, e.Topic, e.Partition, e.Offset)
		}
		return fmt.Sprintf("%s[%d]@%d", e.Topic, e.Partition, e.Offset)
	}
	trace := listener.HookFunc(func(e listener.Event) {
		switch e.Kind {
		case listener.EventRetried:
			say("%s -> %s, due in %s", name(e), e.Target, time.Until(e.Due).Round(100*time.Millisecond))
		case listener.EventDeadLettered:
			say("%s -> %s (%s)", name(e), e.Target, e.Reason)
		}
	})

	// The recorder sees every record of every batch, so the program can
	// wait for each order's outcome.
	rec := kretrytest.NewRecorder()
	l, err := listener.NewBatch(cluster.Seeds(), topic, rec.WrapBatch(handle),
		listener.Group("batch-example"),
		listener.BatchSize(10),
		listener.Attempts(3),
		listener.Backoff(strategy.FixedBackoff(time.Second)),
		listener.DLTHandler(rec.WrapDLT(dltHandler)),
		listener.Hooks(trace),
		listener.Logger(slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError}))),
	)
	if err != nil {
		return err
	}
	say("plan for %q (batches of up to 10 records, attempts 3, fixed backoff 1s):\n%s",
		topic, strings.TrimSpace(l.Plan().String()))

	ids, byID, bad := orders()
	var records []*kgo.Record
	for _, id := range ids {
		v, err := json.Marshal(byID[id])
		if err != nil {
			return err
		}
		records = append(records, &kgo.Record{Topic: topic, Key: []byte(id), Value: v})
	}
	if err := cluster.Produce(ctx, records...); err != nil {
		return err
	}
	for _, r := range records {
		keys[[2]int64{int64(r.Partition), r.Offset}] = string(r.Key)
	}
	say("produced %s .. %s; %s violate a constraint", ids[0], ids[len(ids)-1], strings.Join(bad, ", "))

	run := kretrytest.Start(ctx, l)
	defer run.Stop()
	for _, id := range ids {
		want := kretrytest.Handled(0)
		switch {
		case id == resetOn:
			want = kretrytest.Handled(2)
		case slices.Contains(bad, id):
			want = kretrytest.DeadLettered(retry.ReasonPermanent)
		}
		// run.Context() ends if the listener stops early.
		if _, err := rec.Wait(run.Context(), id, want); err != nil {
			return errors.Join(err, run.Stop())
		}
	}
	if err := run.Stop(); err != nil {
		return err
	}

	// Every valid order is in the table, written once; no violator is.
	var problems []error
	for _, id := range ids {
		in, writes := db.has(id)
		violates := slices.Contains(bad, id)
		if in == violates || writes > 1 {
			problems = append(problems, fmt.Errorf("%s: in the table %v, written %d times", id, in, writes))
		}
	}
	rows, maxWrites := db.stats()
	if maxWrites > 1 {
		problems = append(problems, fmt.Errorf("a row was written %d times", maxWrites))
	}
	if err := errors.Join(problems...); err != nil {
		return err
	}
	mu.Lock()
	again := [3]int{resent, represent, rewritten}
	mu.Unlock()
	say("done: table orders holds %d rows, each written exactly once (the most writes of any row: %d)\n"+
		"the retry re-sent %d rows: %d already present (skipped), %d written\n"+
		"%d orders in %s: %s; offsets committed, group left",
		rows, maxWrites, again[0], again[1], again[2], len(bad), l.Plan().DLT, strings.Join(bad, ", "))
	return nil
}

// deliveries says "1 delivery", "2 deliveries".
func deliveries(n int32) string {
	if n == 1 {
		return "1 delivery"
	}
	return fmt.Sprintf("%d deliveries", n)
}
