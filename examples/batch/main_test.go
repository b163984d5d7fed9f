package main

import (
	"bytes"
	"context"
	"errors"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
)

// want are lines of the trace every run prints, in-process or not.
var want = []string{
	"(8 rows, attempt 1): database connection reset (which rows were written is unknown); the whole batch fails",
	"order-12 orders[1]@2 -> orders-retry, due in ",
	"order-04 @3 refused: orders_quantity_check violated: quantity 0 is not > 0",
	"order-17 @5 refused: orders_sku_fkey violated: no product \"SKU-404\"",
	"order-25 @9 refused: orders_customer_not_null violated: customer is null",
	"order-17 orders[0]@5 -> orders-dlt (permanent)",
	`order-04 in the DLT handler from orders-dlt: reason "permanent" after 1 delivery; error: orders_quantity_check violated`,
	`order-17 in the DLT handler from orders-dlt: reason "permanent" after 1 delivery; error: orders_sku_fkey violated`,
	`order-25 in the DLT handler from orders-dlt: reason "permanent" after 1 delivery; error: orders_customer_not_null violated`,
	"insert orders-retry[",
	"(8 rows, attempt 2): 5 written, 3 already present (skipped)",
	"done: table orders holds 27 rows, each written exactly once (the most writes of any row: 1)",
	"the retry re-sent 8 rows: 3 already present (skipped), 5 written",
	"3 orders in orders-dlt: order-04, order-17, order-25; offsets committed, group left",
}

func check(t *testing.T, out string, want []string) {
	t.Helper()
	for _, w := range want {
		if !strings.Contains(out, w) {
			t.Errorf("output lacks %q:\n%s", w, out)
		}
	}
	// Every batch holds at most 10 records (BatchSize), of one partition.
	calls := batchLine.FindAllStringSubmatch(out, -1)
	rows := 0
	for _, c := range calls {
		n, _ := strconv.Atoi(c[1])
		if n < 1 || n > 10 {
			t.Errorf("a batch of %d rows, want 1..10: %s", n, c[0])
		}
		rows += n
	}
	if rows != 38 {
		t.Errorf("the batches held %d rows in all, want 38 (30 orders, 8 of them twice)", rows)
	}
}

var batchLine = regexp.MustCompile(`insert orders(?:-retry)?\[\d\]@\d+\.\.\d+ \((\d+) rows, attempts? `)

func TestRun(t *testing.T) {
	var out bytes.Buffer
	if err := run("", "orders", time.Minute, &out); err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	check(t, out.String(), append(want, "started an in-process Kafka cluster (kfake) at "))
}

// With -brokers the example creates its topic on those brokers (here
// another in-process cluster, standing for yours) and starts none.
func TestRunBrokers(t *testing.T) {
	c, err := kfake.NewCluster(kfake.NumBrokers(1))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	var out bytes.Buffer
	if err := run(strings.Join(c.ListenAddrs(), ","), "orders", time.Minute, &out); err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	if strings.Contains(out.String(), "started an in-process") {
		t.Errorf("with -brokers the example started a cluster of its own:\n%s", out.String())
	}
	check(t, out.String(), want)
}

// A timeout shorter than the retry's 1 s delay ends the run with the
// deadline's error.
func TestRunTimeout(t *testing.T) {
	err := run("", "orders", 500*time.Millisecond, &bytes.Buffer{})
	if err == nil || !strings.Contains(err.Error(), "context deadline exceeded") {
		t.Errorf("run with a 500ms timeout: %v; want the deadline's error", err)
	}
}

// The table's insert is idempotent — a row already there with the same
// values is skipped, with others it violates the primary key — and not
// atomic: the reset leaves the rows before it written, once.
func TestTableInsert(t *testing.T) {
	db := newTable("SKU-1")
	a := row{ID: "a", Customer: "c", SKU: "SKU-1", Quantity: 1}
	b, c := a, a
	b.ID, c.ID = "b", "c"
	db.resetOnce("b", 1)
	if _, err := db.insert(context.Background(), []row{a, b, c}); !errors.Is(err, errConnReset) {
		t.Fatalf("first insert: %v, want the reset", err)
	}
	other := a
	other.Quantity = 2
	res, err := db.insert(context.Background(), []row{a, b, c, other, {ID: "d", SKU: "SKU-1", Quantity: 1}})
	if err != nil || res.written != 2 || res.present != 1 || len(res.refused) != 2 ||
		res.refused[0].at != 3 || !strings.Contains(res.refused[0].err.Error(), "orders_pkey violated") ||
		res.refused[1].at != 4 || !strings.Contains(res.refused[1].err.Error(), "customer is null") {
		t.Fatalf("insert after the reset: %+v, %v; want b and c written, a present, the changed a and d refused", res, err)
	}
	if rows, most := db.stats(); rows != 3 || most != 1 {
		t.Errorf("table: %d rows, most writes %d; want 3 rows written once", rows, most)
	}
}
