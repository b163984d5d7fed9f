package kretryprom

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/kretry/kretry/listener"
	"github.com/kretry/kretry/strategy"
)

func nopHandler(context.Context, *kgo.Record) error { return nil }

// A watched listener that is not running reports every topic of its plan
// with zeros, and its counters exist at zero; unwatching removes the
// gauges.
func TestWatchIdleListener(t *testing.T) {
	m, reg := newTestMetrics(t)
	l, err := listener.New([]string{"127.0.0.1:1"}, "orders", listener.HandlerFunc(nopHandler),
		listener.Backoff(strategy.FixedBackoff(time.Second)))
	if err != nil {
		t.Fatal(err)
	}
	unwatch := m.Watch(l)
	want := `
# HELP kretry_partitions_owned Partitions the watched listeners own, by topic and role.
# TYPE kretry_partitions_owned gauge
kretry_partitions_owned{role="main",topic="orders"} 0
kretry_partitions_owned{role="dlt",topic="orders-dlt"} 0
kretry_partitions_owned{role="tier",topic="orders-retry"} 0
# HELP kretry_records_held Records fetched by the listeners and not yet handled.
# TYPE kretry_records_held gauge
kretry_records_held{role="main",topic="orders"} 0
kretry_records_held{role="dlt",topic="orders-dlt"} 0
kretry_records_held{role="tier",topic="orders-retry"} 0
# HELP kretry_dlt_handler_failures_total DLT handler calls that returned an error, by DLT.
# TYPE kretry_dlt_handler_failures_total counter
kretry_dlt_handler_failures_total{topic="orders-dlt"} 0
# HELP kretry_records_total Records that reached an outcome, by the topic they were read from, its role in the plan (main, tier, dlt) and the outcome: handled (the handler or DLT handler returned nil), retried (published to a retry tier), dead_lettered (published to a DLT), dropped (ended without a DLT, or the DLT handler gave up), skipped (a retry or DLT record of another consumer group, committed without a handler call) or followed (key order: published to a retry tier behind an earlier record of its key, without a handler call).
# TYPE kretry_records_total counter
kretry_records_total{outcome="dead_lettered",role="main",topic="orders"} 0
kretry_records_total{outcome="dropped",role="main",topic="orders"} 0
kretry_records_total{outcome="handled",role="main",topic="orders"} 0
kretry_records_total{outcome="retried",role="main",topic="orders"} 0
kretry_records_total{outcome="dropped",role="dlt",topic="orders-dlt"} 0
kretry_records_total{outcome="handled",role="dlt",topic="orders-dlt"} 0
kretry_records_total{outcome="skipped",role="dlt",topic="orders-dlt"} 0
kretry_records_total{outcome="dead_lettered",role="tier",topic="orders-retry"} 0
kretry_records_total{outcome="dropped",role="tier",topic="orders-retry"} 0
kretry_records_total{outcome="handled",role="tier",topic="orders-retry"} 0
kretry_records_total{outcome="retried",role="tier",topic="orders-retry"} 0
kretry_records_total{outcome="skipped",role="tier",topic="orders-retry"} 0
`
	names := []string{"kretry_partitions_owned", "kretry_records_held", "kretry_dlt_handler_failures_total", "kretry_records_total"}
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), names...); err != nil {
		t.Fatal(err)
	}
	if n, err := testutil.GatherAndCount(reg, "kretry_partitions_paused", "kretry_publishes_unacked"); err != nil || n != 6 {
		t.Fatalf("paused and unacked series: %d, %v; want 6", n, err)
	}

	// Two listeners of one group add up, without duplicate series.
	l2, err := listener.New([]string{"127.0.0.1:1"}, "orders", listener.HandlerFunc(nopHandler),
		listener.Backoff(strategy.FixedBackoff(time.Second)))
	if err != nil {
		t.Fatal(err)
	}
	unwatch2 := m.Watch(l2)
	if n, err := testutil.GatherAndCount(reg, "kretry_partitions_owned"); err != nil || n != 3 {
		t.Fatalf("owned series with two listeners: %d, %v; want 3", n, err)
	}

	unwatch()
	unwatch() // a second call does nothing
	unwatch2()
	if n, err := testutil.GatherAndCount(reg, "kretry_partitions_owned", "kretry_records_held"); err != nil || n != 0 {
		t.Fatalf("gauge series after unwatch: %d, %v; want 0", n, err)
	}
	if n, err := testutil.GatherAndCount(reg, "kretry_records_total"); err != nil || n != 12 {
		t.Fatalf("counter series after unwatch: %d, %v; want 12 (counters stay)", n, err)
	}
}
