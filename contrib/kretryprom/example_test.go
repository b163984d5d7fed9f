package kretryprom_test

import (
	"context"
	"fmt"
	"log"
	"net/http"
	"net/http/httptest"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/plugin/kprom"

	"github.com/kretry/kretry/contrib/kretryprom"
	"github.com/kretry/kretry/listener"
	"github.com/kretry/kretry/strategy"
)

// scrape serves reg as Prometheus would scrape it and prints the lines
// that start with prefix.
func scrape(reg prometheus.Gatherer, prefix string) {
	rec := httptest.NewRecorder()
	promhttp.HandlerFor(reg, promhttp.HandlerOpts{}).ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	for line := range strings.Lines(rec.Body.String()) {
		if strings.HasPrefix(line, prefix) {
			fmt.Print(line)
		}
	}
}

// A listener calls OnEvent for every outcome; here two events stand in
// for it.
func Example() {
	reg := prometheus.NewRegistry()
	m, err := kretryprom.New(reg)
	if err != nil {
		log.Fatal(err)
	}
	m.OnEvent(listener.Event{Kind: listener.EventRetried, Topic: "orders", Role: strategy.RoleMain,
		Target: "orders-retry-1000"})
	m.OnEvent(listener.Event{Kind: listener.EventDeadLettered, Topic: "orders-retry-1000", Role: strategy.RoleTier,
		Target: "orders-dlt", Reason: "exhausted"})
	scrape(reg, "kretry_dead_lettered_total")
	scrape(reg, `kretry_records_total{outcome="retried"`)
	// Output:
	// kretry_dead_lettered_total{dlt="orders-dlt",reason="exhausted",role="tier",topic="orders-retry-1000"} 1
	// kretry_records_total{outcome="retried",role="main",topic="orders"} 1
	// kretry_records_total{outcome="retried",role="tier",topic="orders-retry-1000"} 0
}

// A batch listener (listener.NewBatch) reports each batch handler call
// once, with its size and run time, and then each record's outcome; here
// the events of one batch of three records, one of which failed, stand in
// for it. The batch's run time is in kretry_batch_duration_seconds only.
func Example_batch() {
	reg := prometheus.NewRegistry()
	m, err := kretryprom.New(reg)
	if err != nil {
		log.Fatal(err)
	}
	m.OnEvent(listener.Event{Kind: listener.EventBatch, Topic: "orders", Role: strategy.RoleMain, Offset: 40,
		Batch: 3, Latency: 80 * time.Millisecond})
	for off := int64(40); off < 43; off++ {
		e := listener.Event{Kind: listener.EventHandled, Topic: "orders", Role: strategy.RoleMain, Offset: off, Attempt: 1,
			Batch: 3, Latency: 80 * time.Millisecond}
		if off == 41 {
			e.Kind, e.Target = listener.EventRetried, "orders-retry-1000"
		}
		m.OnEvent(e)
	}
	scrape(reg, "kretry_batch_records_sum")
	scrape(reg, "kretry_batch_records_count")
	scrape(reg, "kretry_batch_duration_seconds_count")
	scrape(reg, "kretry_handler_duration_seconds_count")
	scrape(reg, `kretry_records_total{outcome="handled"`)
	// Output:
	// kretry_batch_records_sum{role="main",topic="orders"} 3
	// kretry_batch_records_count{role="main",topic="orders"} 1
	// kretry_batch_duration_seconds_count{role="main",topic="orders"} 1
	// kretry_handler_duration_seconds_count{role="main",topic="orders"} 0
	// kretry_records_total{outcome="handled",role="main",topic="orders"} 2
}

// The three lines that wire a listener in: its events, its Kafka client,
// and its partitions. Watch reports every topic of the plan, at zero until
// the listener runs.
func ExampleMetrics_Watch() {
	reg := prometheus.NewRegistry()
	m, err := kretryprom.New(reg)
	if err != nil {
		log.Fatal(err)
	}
	handle := func(ctx context.Context, rec *kgo.Record) error { return nil }
	l, err := listener.New([]string{"localhost:9092"}, "orders", listener.HandlerFunc(handle),
		listener.Attempts(3),
		listener.Backoff(strategy.ExponentialBackoff(time.Second, 2, 0)), // 1 s, then 2 s
		listener.Hooks(m),
		listener.ClientOpts(kgo.WithHooks(m.ClientMetrics())),
	)
	if err != nil {
		log.Fatal(err)
	}
	unwatch := m.Watch(l)
	defer unwatch()
	// Serve reg, e.g. http.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{})),
	// then l.Run(ctx).
	scrape(reg, "kretry_partitions_owned")
	// Output:
	// kretry_partitions_owned{role="dlt",topic="orders-dlt"} 0
	// kretry_partitions_owned{role="main",topic="orders"} 0
	// kretry_partitions_owned{role="tier",topic="orders-retry-1000"} 0
	// kretry_partitions_owned{role="tier",topic="orders-retry-2000"} 0
}

// TierLag adds the records waiting in each watched listener's retry
// tiers, read with a plain consumer (never the listener's group) and split
// by due time, measured at most every 10 s.
func ExampleTierLag() {
	seeds := []string{"localhost:9092"}
	cl, err := kgo.NewClient(kgo.SeedBrokers(seeds...))
	if err != nil {
		log.Fatal(err)
	}
	defer cl.Close()
	reg := prometheus.NewRegistry()
	m, err := kretryprom.New(reg, kretryprom.TierLag(kadm.NewClient(cl), kgo.SeedBrokers(seeds...)))
	if err != nil {
		log.Fatal(err)
	}
	_ = m // m.Watch(l) as in the Watch example.
	// Gathering reg then reports, per tier topic, for example:
	//
	//	kretry_tier_records_waiting{group="kretry-orders",state="not_due",topic="orders-retry-1000"} 12
	//	kretry_tier_records_waiting{group="kretry-orders",state="overdue",topic="orders-retry-1000"} 0
	//	kretry_tier_oldest_overdue_seconds{group="kretry-orders",topic="orders-retry-1000"} 0
}

// Two listeners in one process: one Metrics counts the events of both,
// and each listener's client gets its own client metrics, told apart by a
// label.
func ExampleMetrics_ClientMetrics() {
	reg := prometheus.NewRegistry()
	m, err := kretryprom.New(reg)
	if err != nil {
		log.Fatal(err)
	}
	handle := func(ctx context.Context, rec *kgo.Record) error { return nil }
	for _, topic := range []string{"orders", "payments"} {
		client := m.ClientMetrics(kprom.WithStaticLabel(prometheus.Labels{"listener": topic}))
		l, err := listener.New([]string{"localhost:9092"}, topic, listener.HandlerFunc(handle),
			listener.Hooks(m),
			listener.ClientOpts(kgo.WithHooks(client)),
		)
		if err != nil {
			log.Fatal(err)
		}
		defer m.Watch(l)()
		// go l.Run(ctx)
	}
}
