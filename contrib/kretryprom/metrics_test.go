package kretryprom

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	dto "github.com/prometheus/client_model/go"
	"github.com/twmb/franz-go/pkg/kadm"

	"github.com/kretry/kretry/listener"
	"github.com/kretry/kretry/strategy"
)

func newTestMetrics(t *testing.T, opts ...Opt) (*Metrics, *prometheus.Registry) {
	t.Helper()
	reg := prometheus.NewPedanticRegistry()
	m, err := New(reg, opts...)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return m, reg
}

const (
	mainTopic = "orders"
	tierTopic = "orders-retry-1000"
	dltTopic  = "orders-dlt"
)

// eventsOfEveryKind covers every kind an exporter counts, plus the
// partition kinds it ignores. Durations are binary fractions of a second,
// so that histogram sums are exact.
var eventsOfEveryKind = []listener.Event{
	{Kind: listener.EventHandled, Topic: mainTopic, Role: strategy.RoleMain, Attempt: 1, Latency: 125 * time.Millisecond},
	{Kind: listener.EventRetried, Topic: mainTopic, Role: strategy.RoleMain, Attempt: 1, Target: tierTopic, Latency: 500 * time.Millisecond},
	{Kind: listener.EventDeadLettered, Topic: mainTopic, Role: strategy.RoleMain, Attempt: 1, Target: dltTopic, Reason: "permanent",
		Latency: 250 * time.Millisecond},
	{Kind: listener.EventHandled, Topic: tierTopic, Role: strategy.RoleTier, Attempt: 2, Latency: 62500 * time.Microsecond,
		Late: 500 * time.Millisecond},
	// After a failed retry: lateness, and no run time (the listener does
	// not report it on dead-lettered events).
	{Kind: listener.EventDeadLettered, Topic: tierTopic, Role: strategy.RoleTier, Attempt: 3, Target: dltTopic, Reason: "exhausted",
		Late: 2 * time.Second},
	// Corrupt headers: dead-lettered without reaching the handler.
	{Kind: listener.EventDeadLettered, Topic: tierTopic, Role: strategy.RoleTier, Attempt: 2, Target: dltTopic, Reason: "corrupt-headers"},
	{Kind: listener.EventForwardFailed, Topic: mainTopic, Role: strategy.RoleMain, Target: tierTopic, Err: errors.New("broker down")},
	{Kind: listener.EventDLTHandlerFailed, Topic: dltTopic, Role: strategy.RoleDLT, Attempt: 1, Latency: 500 * time.Millisecond},
	{Kind: listener.EventHandled, Topic: dltTopic, Role: strategy.RoleDLT, Attempt: 2, Latency: 250 * time.Millisecond},
	// Timed by its EventDLTHandlerFailed already: not observed again.
	{Kind: listener.EventDropped, Topic: dltTopic, Role: strategy.RoleDLT, Reason: "dlt-handler-failed", Latency: time.Second},
	// Another group's records, on the shared tier and DLT.
	{Kind: listener.EventSkipped, Topic: tierTopic, Role: strategy.RoleTier, Attempt: 2, Group: "shipping", Reason: "other-group"},
	{Kind: listener.EventSkipped, Topic: tierTopic, Role: strategy.RoleTier, Attempt: 3, Group: "shipping", Reason: "other-group"},
	{Kind: listener.EventSkipped, Topic: dltTopic, Role: strategy.RoleDLT, Attempt: 3, Group: "shipping", Reason: "other-group"},
	// Key order: a record that followed its key, from the main topic, and
	// one that moved behind its key from a tier.
	{Kind: listener.EventFollowed, Topic: mainTopic, Role: strategy.RoleMain, Attempt: 1, Target: tierTopic},
	{Kind: listener.EventFollowed, Topic: tierTopic, Role: strategy.RoleTier, Attempt: 1, Target: tierTopic},
	{Kind: listener.EventAssigned, Topic: mainTopic, Role: strategy.RoleMain, Offset: -1},
	{Kind: listener.EventPaused, Topic: tierTopic, Role: strategy.RoleTier, Offset: -1, Due: time.Now()},
	{Kind: listener.EventResumed, Topic: tierTopic, Role: strategy.RoleTier, Offset: -1},
	{Kind: listener.EventRevoked, Topic: mainTopic, Role: strategy.RoleMain, Offset: -1},
}

func TestOnEvent(t *testing.T) {
	m, reg := newTestMetrics(t, HandlerBuckets(0.2, 1), LatenessBuckets(1, 10))
	for _, e := range eventsOfEveryKind {
		m.OnEvent(e)
	}
	want := `
# HELP kretry_records_total Records that reached an outcome, by the topic they were read from, its role in the plan (main, tier, dlt) and the outcome: handled (the handler or DLT handler returned nil), retried (published to a retry tier), dead_lettered (published to a DLT), dropped (ended without a DLT, or the DLT handler gave up), skipped (a retry or DLT record of another consumer group, committed without a handler call) or followed (key order: published to a retry tier behind an earlier record of its key, without a handler call).
# TYPE kretry_records_total counter
kretry_records_total{outcome="dead_lettered",role="main",topic="orders"} 1
kretry_records_total{outcome="dropped",role="main",topic="orders"} 0
kretry_records_total{outcome="followed",role="main",topic="orders"} 1
kretry_records_total{outcome="handled",role="main",topic="orders"} 1
kretry_records_total{outcome="retried",role="main",topic="orders"} 1
kretry_records_total{outcome="dropped",role="dlt",topic="orders-dlt"} 1
kretry_records_total{outcome="handled",role="dlt",topic="orders-dlt"} 1
kretry_records_total{outcome="skipped",role="dlt",topic="orders-dlt"} 1
kretry_records_total{outcome="dead_lettered",role="tier",topic="orders-retry-1000"} 2
kretry_records_total{outcome="dropped",role="tier",topic="orders-retry-1000"} 0
kretry_records_total{outcome="followed",role="tier",topic="orders-retry-1000"} 1
kretry_records_total{outcome="handled",role="tier",topic="orders-retry-1000"} 1
kretry_records_total{outcome="retried",role="tier",topic="orders-retry-1000"} 0
kretry_records_total{outcome="skipped",role="tier",topic="orders-retry-1000"} 2
# HELP kretry_dead_lettered_total Records published to a dead-letter topic, by source topic, its role, the DLT and the reason (exhausted, permanent, timeout, excluded:<matcher>, ...).
# TYPE kretry_dead_lettered_total counter
kretry_dead_lettered_total{dlt="orders-dlt",reason="permanent",role="main",topic="orders"} 1
kretry_dead_lettered_total{dlt="orders-dlt",reason="corrupt-headers",role="tier",topic="orders-retry-1000"} 1
kretry_dead_lettered_total{dlt="orders-dlt",reason="exhausted",role="tier",topic="orders-retry-1000"} 1
# HELP kretry_dropped_total Records that ended without being published to a DLT (no DLT configured, or the DLT handler gave up), by topic, role and reason.
# TYPE kretry_dropped_total counter
kretry_dropped_total{reason="dlt-handler-failed",role="dlt",topic="orders-dlt"} 1
# HELP kretry_forward_failures_total Publishes to a retry tier or DLT that failed; each is retried, and nothing is committed past it meanwhile.
# TYPE kretry_forward_failures_total counter
kretry_forward_failures_total{target="orders-retry-1000",topic="orders"} 1
# HELP kretry_dlt_handler_failures_total DLT handler calls that returned an error, by DLT.
# TYPE kretry_dlt_handler_failures_total counter
kretry_dlt_handler_failures_total{topic="orders-dlt"} 1
# HELP kretry_handler_duration_seconds Run time of handler calls (role main and tier) and DLT handler calls (role dlt), successful or not; batch handler calls are in batch_duration_seconds.
# TYPE kretry_handler_duration_seconds histogram
kretry_handler_duration_seconds_bucket{role="main",topic="orders",le="0.2"} 1
kretry_handler_duration_seconds_bucket{role="main",topic="orders",le="1"} 3
kretry_handler_duration_seconds_bucket{role="main",topic="orders",le="+Inf"} 3
kretry_handler_duration_seconds_sum{role="main",topic="orders"} 0.875
kretry_handler_duration_seconds_count{role="main",topic="orders"} 3
kretry_handler_duration_seconds_bucket{role="dlt",topic="orders-dlt",le="0.2"} 0
kretry_handler_duration_seconds_bucket{role="dlt",topic="orders-dlt",le="1"} 2
kretry_handler_duration_seconds_bucket{role="dlt",topic="orders-dlt",le="+Inf"} 2
kretry_handler_duration_seconds_sum{role="dlt",topic="orders-dlt"} 0.75
kretry_handler_duration_seconds_count{role="dlt",topic="orders-dlt"} 2
kretry_handler_duration_seconds_bucket{role="tier",topic="orders-retry-1000",le="0.2"} 1
kretry_handler_duration_seconds_bucket{role="tier",topic="orders-retry-1000",le="1"} 1
kretry_handler_duration_seconds_bucket{role="tier",topic="orders-retry-1000",le="+Inf"} 1
kretry_handler_duration_seconds_sum{role="tier",topic="orders-retry-1000"} 0.0625
kretry_handler_duration_seconds_count{role="tier",topic="orders-retry-1000"} 1
# HELP kretry_delivery_lateness_seconds How long after its due time a record from a retry tier was handed to the handler.
# TYPE kretry_delivery_lateness_seconds histogram
kretry_delivery_lateness_seconds_bucket{topic="orders-retry-1000",le="1"} 1
kretry_delivery_lateness_seconds_bucket{topic="orders-retry-1000",le="10"} 2
kretry_delivery_lateness_seconds_bucket{topic="orders-retry-1000",le="+Inf"} 2
kretry_delivery_lateness_seconds_sum{topic="orders-retry-1000"} 2.5
kretry_delivery_lateness_seconds_count{topic="orders-retry-1000"} 2
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want),
		"kretry_records_total", "kretry_dead_lettered_total", "kretry_dropped_total", "kretry_forward_failures_total",
		"kretry_dlt_handler_failures_total", "kretry_handler_duration_seconds", "kretry_delivery_lateness_seconds"); err != nil {
		t.Fatal(err)
	}
}

// A dead-lettered event that carries the handler's run time is timed.
func TestOnEventDeadLetteredWithLatency(t *testing.T) {
	m, _ := newTestMetrics(t)
	m.OnEvent(listener.Event{Kind: listener.EventDeadLettered, Topic: tierTopic, Role: strategy.RoleTier, Target: dltTopic,
		Reason: "exhausted", Latency: time.Second, Late: time.Second})
	if n := testutil.CollectAndCount(m.handlerDuration); n != 1 {
		t.Fatalf("handler duration series = %d, want 1", n)
	}
	if got := histogramCount(t, m.handlerDuration.WithLabelValues(tierTopic, "tier")); got != 1 {
		t.Fatalf("handler duration count = %d, want 1", got)
	}
}

func histogramCount(t *testing.T, o prometheus.Observer) uint64 {
	t.Helper()
	h, ok := o.(prometheus.Histogram)
	if !ok {
		t.Fatalf("%T is not a histogram", o)
	}
	ch := make(chan prometheus.Metric, 1)
	h.Collect(ch)
	var pb dto.Metric
	if err := (<-ch).Write(&pb); err != nil {
		t.Fatal(err)
	}
	return pb.GetHistogram().GetSampleCount()
}

// A reason from outside kretry's small set cannot grow the label's values
// past maxReasons: the rest are counted as "other".
func TestReasonsAreBounded(t *testing.T) {
	m, _ := newTestMetrics(t)
	for i := range maxReasons + 10 {
		e := listener.Event{Kind: listener.EventDeadLettered, Topic: mainTopic, Role: strategy.RoleMain, Target: dltTopic,
			Reason: fmt.Sprintf("excluded:matcher-%d", i)}
		m.OnEvent(e)
		m.OnEvent(e) // a known one again
		m.OnEvent(listener.Event{Kind: listener.EventDropped, Topic: mainTopic, Role: strategy.RoleMain, Reason: e.Reason})
		m.OnEvent(listener.Event{Kind: listener.EventForwardFailed, Topic: mainTopic, Role: strategy.RoleMain,
			Target: fmt.Sprintf("t-%d", i)})
	}
	for _, c := range []struct {
		name string
		vec  prometheus.Collector
	}{{"dead_lettered", m.deadLettered}, {"dropped", m.dropped}, {"forward_failures", m.forwardFailures}} {
		if n := testutil.CollectAndCount(c.vec); n != maxReasons+1 {
			t.Errorf("%s: %d series, want %d (%d reasons and %q)", c.name, n, maxReasons+1, maxReasons, reasonOther)
		}
	}
	if got := testutil.ToFloat64(m.deadLettered.WithLabelValues(mainTopic, "main", reasonOther, reasonOther)); got != 20 {
		t.Errorf("dead-lettered as other = %v, want 20 (10 reasons, twice each)", got)
	}
	if got := testutil.ToFloat64(m.deadLettered.WithLabelValues(mainTopic, "main", dltTopic, "excluded:matcher-0")); got != 2 {
		t.Errorf("dead-lettered excluded:matcher-0 = %v, want 2", got)
	}
	if got := testutil.ToFloat64(m.records.WithLabelValues(mainTopic, "main", outcomeDeadLettered)); got != 2*(maxReasons+10) {
		t.Errorf("records dead-lettered = %v, want %d", got, 2*(maxReasons+10))
	}
}

// batchEvents are what a batch listener reports: a batch of three from
// the main topic, one of whose records is retried and whose BatchErrors
// named a record twice; and a batch of one from the tier. The records'
// events carry the batch's run time, as Event.Latency, and its size.
var batchEvents = []listener.Event{
	{Kind: listener.EventBatch, Topic: mainTopic, Role: strategy.RoleMain, Offset: 10, Batch: 3, Latency: 750 * time.Millisecond,
		Err: errors.New("1 record failed")},
	{Kind: listener.EventBatchErrorsInvalid, Topic: mainTopic, Role: strategy.RoleMain, Offset: 11, Batch: 3},
	{Kind: listener.EventHandled, Topic: mainTopic, Role: strategy.RoleMain, Offset: 10, Attempt: 1, Batch: 3, Latency: 750 * time.Millisecond},
	{Kind: listener.EventRetried, Topic: mainTopic, Role: strategy.RoleMain, Offset: 11, Attempt: 1, Batch: 3, Latency: 750 * time.Millisecond,
		Target: tierTopic},
	{Kind: listener.EventHandled, Topic: mainTopic, Role: strategy.RoleMain, Offset: 12, Attempt: 1, Batch: 3, Latency: 750 * time.Millisecond},
	{Kind: listener.EventBatch, Topic: tierTopic, Role: strategy.RoleTier, Offset: 4, Batch: 1, Latency: 2 * time.Second},
	{Kind: listener.EventDeadLettered, Topic: tierTopic, Role: strategy.RoleTier, Offset: 4, Attempt: 2, Batch: 1, Latency: 2 * time.Second,
		Late: 250 * time.Millisecond, Target: dltTopic, Reason: "exhausted"},
}

// A batch is observed once, by size and run time; its records count their
// outcomes and lateness but not the batch's run time, in
// kretry_handler_duration_seconds, which only a single-record call feeds.
func TestOnEventBatch(t *testing.T) {
	m, reg := newTestMetrics(t, HandlerBuckets(1, 10), LatenessBuckets(1, 10), BatchSizeBuckets(1, 2, 5))
	for _, e := range batchEvents {
		m.OnEvent(e)
	}
	// One record of the main topic handled on its own.
	m.OnEvent(listener.Event{Kind: listener.EventHandled, Topic: mainTopic, Role: strategy.RoleMain, Attempt: 1, Latency: 125 * time.Millisecond})
	want := `
# HELP kretry_batch_records Records given to each batch handler call, by the topic they were read from and its role (main, tier).
# TYPE kretry_batch_records histogram
kretry_batch_records_bucket{role="main",topic="orders",le="1"} 0
kretry_batch_records_bucket{role="main",topic="orders",le="2"} 0
kretry_batch_records_bucket{role="main",topic="orders",le="5"} 1
kretry_batch_records_bucket{role="main",topic="orders",le="+Inf"} 1
kretry_batch_records_sum{role="main",topic="orders"} 3
kretry_batch_records_count{role="main",topic="orders"} 1
kretry_batch_records_bucket{role="tier",topic="orders-retry-1000",le="1"} 1
kretry_batch_records_bucket{role="tier",topic="orders-retry-1000",le="2"} 1
kretry_batch_records_bucket{role="tier",topic="orders-retry-1000",le="5"} 1
kretry_batch_records_bucket{role="tier",topic="orders-retry-1000",le="+Inf"} 1
kretry_batch_records_sum{role="tier",topic="orders-retry-1000"} 1
kretry_batch_records_count{role="tier",topic="orders-retry-1000"} 1
# HELP kretry_batch_duration_seconds Run time of batch handler calls, successful or not, by topic and role (main, tier).
# TYPE kretry_batch_duration_seconds histogram
kretry_batch_duration_seconds_bucket{role="main",topic="orders",le="1"} 1
kretry_batch_duration_seconds_bucket{role="main",topic="orders",le="10"} 1
kretry_batch_duration_seconds_bucket{role="main",topic="orders",le="+Inf"} 1
kretry_batch_duration_seconds_sum{role="main",topic="orders"} 0.75
kretry_batch_duration_seconds_count{role="main",topic="orders"} 1
kretry_batch_duration_seconds_bucket{role="tier",topic="orders-retry-1000",le="1"} 0
kretry_batch_duration_seconds_bucket{role="tier",topic="orders-retry-1000",le="10"} 1
kretry_batch_duration_seconds_bucket{role="tier",topic="orders-retry-1000",le="+Inf"} 1
kretry_batch_duration_seconds_sum{role="tier",topic="orders-retry-1000"} 2
kretry_batch_duration_seconds_count{role="tier",topic="orders-retry-1000"} 1
# HELP kretry_batch_errors_invalid_total Records that a batch handler's BatchErrors named wrongly: not in the batch, or named twice. A bug in the handler.
# TYPE kretry_batch_errors_invalid_total counter
kretry_batch_errors_invalid_total{role="main",topic="orders"} 1
kretry_batch_errors_invalid_total{role="tier",topic="orders-retry-1000"} 0
# HELP kretry_records_total Records that reached an outcome, by the topic they were read from, its role in the plan (main, tier, dlt) and the outcome: handled (the handler or DLT handler returned nil), retried (published to a retry tier), dead_lettered (published to a DLT), dropped (ended without a DLT, or the DLT handler gave up), skipped (a retry or DLT record of another consumer group, committed without a handler call) or followed (key order: published to a retry tier behind an earlier record of its key, without a handler call).
# TYPE kretry_records_total counter
kretry_records_total{outcome="dead_lettered",role="main",topic="orders"} 0
kretry_records_total{outcome="dropped",role="main",topic="orders"} 0
kretry_records_total{outcome="handled",role="main",topic="orders"} 3
kretry_records_total{outcome="retried",role="main",topic="orders"} 1
kretry_records_total{outcome="dead_lettered",role="tier",topic="orders-retry-1000"} 1
kretry_records_total{outcome="dropped",role="tier",topic="orders-retry-1000"} 0
kretry_records_total{outcome="handled",role="tier",topic="orders-retry-1000"} 0
kretry_records_total{outcome="retried",role="tier",topic="orders-retry-1000"} 0
kretry_records_total{outcome="skipped",role="tier",topic="orders-retry-1000"} 0
# HELP kretry_handler_duration_seconds Run time of handler calls (role main and tier) and DLT handler calls (role dlt), successful or not; batch handler calls are in batch_duration_seconds.
# TYPE kretry_handler_duration_seconds histogram
kretry_handler_duration_seconds_bucket{role="main",topic="orders",le="1"} 1
kretry_handler_duration_seconds_bucket{role="main",topic="orders",le="10"} 1
kretry_handler_duration_seconds_bucket{role="main",topic="orders",le="+Inf"} 1
kretry_handler_duration_seconds_sum{role="main",topic="orders"} 0.125
kretry_handler_duration_seconds_count{role="main",topic="orders"} 1
kretry_handler_duration_seconds_bucket{role="tier",topic="orders-retry-1000",le="1"} 0
kretry_handler_duration_seconds_bucket{role="tier",topic="orders-retry-1000",le="10"} 0
kretry_handler_duration_seconds_bucket{role="tier",topic="orders-retry-1000",le="+Inf"} 0
kretry_handler_duration_seconds_sum{role="tier",topic="orders-retry-1000"} 0
kretry_handler_duration_seconds_count{role="tier",topic="orders-retry-1000"} 0
# HELP kretry_delivery_lateness_seconds How long after its due time a record from a retry tier was handed to the handler.
# TYPE kretry_delivery_lateness_seconds histogram
kretry_delivery_lateness_seconds_bucket{topic="orders-retry-1000",le="1"} 1
kretry_delivery_lateness_seconds_bucket{topic="orders-retry-1000",le="10"} 1
kretry_delivery_lateness_seconds_bucket{topic="orders-retry-1000",le="+Inf"} 1
kretry_delivery_lateness_seconds_sum{topic="orders-retry-1000"} 0.25
kretry_delivery_lateness_seconds_count{topic="orders-retry-1000"} 1
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want),
		"kretry_batch_records", "kretry_batch_duration_seconds", "kretry_batch_errors_invalid_total",
		"kretry_records_total", "kretry_handler_duration_seconds", "kretry_delivery_lateness_seconds"); err != nil {
		t.Fatal(err)
	}
}

// Listeners that handle one record at a time leave no batch series.
func TestNoBatchSeriesWithoutBatches(t *testing.T) {
	m, _ := newTestMetrics(t)
	for _, e := range eventsOfEveryKind {
		m.OnEvent(e)
	}
	for name, c := range map[string]prometheus.Collector{
		"batch_records": m.batchRecords, "batch_duration_seconds": m.batchDuration, "batch_errors_invalid_total": m.batchInvalid,
	} {
		if n := testutil.CollectAndCount(c); n != 0 {
			t.Errorf("%s: %d series, want none", name, n)
		}
	}
}

// Once a topic has been seen, counting an event allocates nothing.
func TestOnEventDoesNotAllocate(t *testing.T) {
	m, _ := newTestMetrics(t)
	all := slices.Concat(eventsOfEveryKind, batchEvents)
	for _, e := range all {
		m.OnEvent(e)
	}
	for _, e := range all {
		if n := testing.AllocsPerRun(100, func() { m.OnEvent(e) }); n != 0 {
			t.Errorf("OnEvent(%s from %s) allocates %v times", e.Kind, e.Topic, n)
		}
	}
}

func TestOnEventConcurrent(t *testing.T) {
	m, _ := newTestMetrics(t)
	const goroutines, each = 8, 500
	done := make(chan struct{})
	for g := range goroutines {
		go func() {
			defer func() { done <- struct{}{} }()
			for i := range each {
				topic := fmt.Sprintf("topic-%d", (g+i)%5)
				m.OnEvent(listener.Event{Kind: listener.EventRetried, Topic: topic, Role: strategy.RoleMain, Target: topic + "-retry"})
				m.OnEvent(listener.Event{Kind: listener.EventDeadLettered, Topic: topic, Role: strategy.RoleMain,
					Target: topic + "-dlt", Reason: fmt.Sprintf("r%d", i%3)})
			}
		}()
	}
	for range goroutines {
		<-done
	}
	var retried, dead float64
	for i := range 5 {
		topic := fmt.Sprintf("topic-%d", i)
		retried += testutil.ToFloat64(m.records.WithLabelValues(topic, "main", outcomeRetried))
		dead += testutil.ToFloat64(m.records.WithLabelValues(topic, "main", outcomeDeadLettered))
	}
	if retried != goroutines*each || dead != goroutines*each {
		t.Fatalf("retried %v, dead-lettered %v; want %d each", retried, dead, goroutines*each)
	}
	if n := testutil.CollectAndCount(m.deadLettered); n != 15 {
		t.Fatalf("dead-lettered series = %d, want 15 (5 topics x 3 reasons)", n)
	}
}

func TestNewRejects(t *testing.T) {
	for _, c := range []struct {
		name string
		reg  prometheus.Registerer
		opts []Opt
		want string
	}{
		{"nil registerer", nil, nil, "registerer must not be nil"},
		{"namespace", prometheus.NewRegistry(), []Opt{Namespace("kretry-prod")}, `Namespace must match`},
		{"no buckets", prometheus.NewRegistry(), []Opt{HandlerBuckets()}, "HandlerBuckets: at least one bucket"},
		{"unsorted buckets", prometheus.NewRegistry(), []Opt{LatenessBuckets(1, 0.5)}, "LatenessBuckets: buckets must be strictly increasing, bucket 1 (0.5)"},
		{"batch buckets", prometheus.NewRegistry(), []Opt{BatchSizeBuckets(1, 1)}, "BatchSizeBuckets: buckets must be strictly increasing, bucket 1 (1)"},
		{"infinite bucket", prometheus.NewRegistry(), []Opt{HandlerBuckets(1, 2, math.Inf(1))}, "bucket 2 is +Inf"},
		{"nil admin", prometheus.NewRegistry(), []Opt{TierLag(nil)}, "TierLag: the admin client must not be nil"},
		{"interval", prometheus.NewRegistry(), []Opt{TierLag(kadm.NewClient(nil)), TierLagInterval(0)}, "TierLagInterval must be > 0, got 0s"},
		{"timeout", prometheus.NewRegistry(), []Opt{TierLagTimeout(-time.Second)}, "TierLagTimeout must be > 0, got -1s"},
		{"max read", prometheus.NewRegistry(), []Opt{TierLagMaxRead(-1)}, "TierLagMaxRead must be >= 0, got -1"},
	} {
		t.Run(c.name, func(t *testing.T) {
			m, err := New(c.reg, c.opts...)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("New: %v, %v; want an error containing %q", m, err, c.want)
			}
		})
	}
}

// A second Metrics in the same registry and namespace is refused; a
// refused New leaves nothing registered behind.
func TestNewRegistersAllOrNothing(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	first, err := New(reg)
	if err != nil {
		t.Fatal(err)
	}
	first.OnEvent(eventsOfEveryKind[0])
	if _, err := New(reg); err == nil || !strings.Contains(err.Error(), `registering records_total (namespace "kretry")`) {
		t.Fatalf("second New: %v; want a registration error", err)
	}
	if _, err := New(reg, Namespace("other")); err != nil {
		t.Fatalf("New with another namespace: %v", err)
	}

	// A clash on a later metric: the ones registered before it are
	// unregistered again.
	// (A registry remembers the label names and help of every name it
	// has seen, so the squatter is an identical histogram.)
	other, _ := newTestMetrics(t)
	squatter := other.handlerDuration
	reg = prometheus.NewPedanticRegistry()
	reg.MustRegister(squatter)
	if _, err := New(reg); err == nil || !strings.Contains(err.Error(), "registering handler_duration_seconds") {
		t.Fatalf("New beside a squatter: %v; want a registration error", err)
	}
	reg.Unregister(squatter)
	if _, err := New(reg); err != nil {
		t.Fatalf("New after the squatter left: %v (a metric of the refused New stayed registered)", err)
	}
}

func TestNamespace(t *testing.T) {
	for _, c := range []struct{ ns, want string }{{"billing", "billing_records_total"}, {"", "records_total"}} {
		m, reg := newTestMetrics(t, Namespace(c.ns))
		m.OnEvent(eventsOfEveryKind[0])
		mfs, err := reg.Gather()
		if err != nil {
			t.Fatal(err)
		}
		var names []string
		for _, mf := range mfs {
			names = append(names, mf.GetName())
		}
		if !strings.Contains(strings.Join(names, " "), c.want) {
			t.Errorf("Namespace(%q): families %v, want %s among them", c.ns, names, c.want)
		}
	}
}

// Exactly-once transactions are counted by outcome, with both series
// present from the start.
func TestOnEventTransactions(t *testing.T) {
	m, reg := newTestMetrics(t)
	m.OnEvent(listener.Event{Kind: listener.EventTransactionCommitted, Offset: -1, Batch: 10})
	m.OnEvent(listener.Event{Kind: listener.EventTransactionCommitted, Offset: -1, Batch: 3})
	m.OnEvent(listener.Event{Kind: listener.EventTransactionAborted, Offset: -1, Batch: 7})
	want := `
# HELP kretry_transactions_total Exactly-once transactions ended, by outcome: committed, or aborted (a failed publish, a revoke or a lost partition; their records are delivered again).
# TYPE kretry_transactions_total counter
kretry_transactions_total{outcome="aborted"} 1
kretry_transactions_total{outcome="committed"} 2
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "kretry_transactions_total"); err != nil {
		t.Fatal(err)
	}
}
