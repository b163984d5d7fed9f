package main

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
)

// want are lines of the trace every run prints, in-process or not.
var want = []string{
	`order-1  from orders                 first delivery -> handled`,
	`order-2  from orders-retry-1000      attempt 3, due `,
	`order-3  from orders-retry-2000      attempt 4, due `,
	`order-3  in the DLT handler from orders-dlt: reason "exhausted" after 4 deliveries`,
	`order-4  in the DLT handler from orders-dlt: reason "permanent" after 1 deliveries`,
	"done: order-1 and order-2 handled, order-3 and order-4 in the DLT",
}

func TestRun(t *testing.T) {
	var out bytes.Buffer
	if err := run("", "orders", time.Minute, &out); err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	for _, w := range append(want, "started an in-process Kafka cluster (kfake) at ") {
		if !strings.Contains(out.String(), w) {
			t.Errorf("output lacks %q:\n%s", w, out.String())
		}
	}
}

// With -brokers the quickstart creates its topic on those brokers (here
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
		t.Errorf("with -brokers the quickstart started a cluster of its own:\n%s", out.String())
	}
	for _, w := range want {
		if !strings.Contains(out.String(), w) {
			t.Errorf("output lacks %q:\n%s", w, out.String())
		}
	}
}

// A timeout too short for the retries (order-2 is handled after 1.5 s)
// ends the run with the deadline's error.
func TestRunTimeout(t *testing.T) {
	err := run("", "orders", time.Second, &bytes.Buffer{})
	if err == nil || !strings.Contains(err.Error(), "context deadline exceeded") {
		t.Errorf("run with a 1s timeout: %v; want the deadline's error", err)
	}
}
