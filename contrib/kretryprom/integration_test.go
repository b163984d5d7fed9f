package kretryprom_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/prometheus/client_golang/prometheus/testutil"
	dto "github.com/prometheus/client_model/go"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/kretry/kretry/contrib/kretryprom"
	"github.com/kretry/kretry/internal/kafkatest"
	"github.com/kretry/kretry/listener"
	"github.com/kretry/kretry/retry"
	"github.com/kretry/kretry/strategy"
)

const waitFor = 30 * time.Second

var (
	errUnavailable = errors.New("inventory unavailable")
	errInvalid     = errors.New("order has no lines")
)

// run starts l and returns a function that stops it and returns Run's
// error; the test's cleanup stops it too.
func run(t *testing.T, l *listener.Listener) (stop func() error) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- l.Run(ctx) }()
	var once sync.Once
	var err error
	stop = func() error {
		once.Do(func() {
			cancel()
			select {
			case err = <-done:
			case <-time.After(waitFor):
				err = errors.New("Run did not return in time after cancel")
			}
		})
		return err
	}
	t.Cleanup(func() {
		if err := stop(); err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	return stop
}

// waitMetrics waits until check, given the gathered families, returns nil,
// and fails the test with its last error otherwise.
func waitMetrics(t *testing.T, reg prometheus.Gatherer, what string, check func(map[string]*dto.MetricFamily) error) {
	t.Helper()
	var last error
	kafkatest.Eventually(t, waitFor, func() bool {
		mfs, err := reg.Gather()
		if err != nil {
			last = err
			return false
		}
		byName := map[string]*dto.MetricFamily{}
		for _, mf := range mfs {
			byName[mf.GetName()] = mf
		}
		last = check(byName)
		return last == nil
	}, "%s", stringer(func() string { return fmt.Sprintf("%s: %v", what, last) }))
}

// stringer defers building a failure message until it is printed.
type stringer func() string

func (s stringer) String() string { return s() }

// value returns the value of the series of mf whose labels are exactly
// labels (name=value pairs), and whether it exists. A histogram's value is
// its sample count.
func value(mf *dto.MetricFamily, labels ...string) (float64, bool) {
	if mf == nil {
		return 0, false
	}
	want := map[string]string{}
	for i := 0; i+1 < len(labels); i += 2 {
		want[labels[i]] = labels[i+1]
	}
series:
	for _, m := range mf.GetMetric() {
		if len(m.GetLabel()) != len(want) {
			continue
		}
		for _, lp := range m.GetLabel() {
			if v, ok := want[lp.GetName()]; !ok || v != lp.GetValue() {
				continue series
			}
		}
		switch {
		case m.Counter != nil:
			return m.GetCounter().GetValue(), true
		case m.Gauge != nil:
			return m.GetGauge().GetValue(), true
		case m.Histogram != nil:
			return float64(m.GetHistogram().GetSampleCount()), true
		}
	}
	return 0, false
}

// expect is one series and the value it must have.
type expect struct {
	name   string
	labels []string
	want   float64
}

func checkAll(mfs map[string]*dto.MetricFamily, es []expect) error {
	var errs []error
	for _, e := range es {
		got, ok := value(mfs[e.name], e.labels...)
		if !ok {
			errs = append(errs, fmt.Errorf("%s%v: missing, want %v", e.name, e.labels, e.want))
		} else if got != e.want {
			errs = append(errs, fmt.Errorf("%s%v = %v, want %v", e.name, e.labels, got, e.want))
		}
	}
	return errors.Join(errs...)
}

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// A real listener on kfake, whose handler fails some records, brings
// every counter and histogram to its exact value, and the gauges to the
// state of an idle listener; the Kafka client's metrics are there too,
// and /metrics serves them.
func TestListenerMetrics(t *testing.T) {
	c := kafkatest.New(t)
	topic, group := c.Name("orders"), c.Name("group")
	c.CreateTopic(topic, 1)

	reg := prometheus.NewPedanticRegistry()
	m, err := kretryprom.New(reg)
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	deliveries := map[string]int{}
	handle := func(_ context.Context, rec *kgo.Record) error {
		key := string(rec.Key)
		mu.Lock()
		deliveries[key]++
		n := deliveries[key]
		mu.Unlock()
		switch {
		case strings.HasPrefix(key, "flaky") && n == 1, strings.HasPrefix(key, "bad"):
			return errUnavailable
		case strings.HasPrefix(key, "perm"):
			return strategy.Permanent(errInvalid)
		}
		return nil
	}
	var dltCalls atomic.Int32
	dltHandle := func(_ context.Context, rec *kgo.Record, _ retry.State) error {
		if string(rec.Key) == "perm" && dltCalls.Add(1) == 1 {
			return errors.New("DLT store unavailable")
		}
		return nil
	}
	// Whether the listener reports the handler's run time on dead-lettered
	// events decides one histogram count below.
	var deadLetterTimed atomic.Bool
	probe := listener.HookFunc(func(e listener.Event) {
		if e.Kind == listener.EventDeadLettered && e.Latency > 0 {
			deadLetterTimed.Store(true)
		}
	})
	l, err := listener.New(c.Seeds, topic, listener.HandlerFunc(handle),
		listener.Group(group),
		listener.Attempts(3),
		listener.Backoff(strategy.FixedBackoff(100*time.Millisecond)),
		listener.DLTHandler(dltFunc(dltHandle)),
		listener.DLTHandlerBackoff(10*time.Millisecond),
		listener.FetchMaxWait(20*time.Millisecond),
		listener.Logger(quiet()),
		listener.Hooks(m, probe),
		listener.ClientOpts(kgo.WithHooks(m.ClientMetrics())),
	)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Watch(l)()
	plan := l.Plan()
	if len(plan.Tiers) != 1 || !plan.Tiers[0].Reusable {
		t.Fatalf("plan tiers %+v, want one reusable tier", plan.Tiers)
	}
	tier, dlt := plan.Tiers[0].Topic, plan.DLT

	var rs []*kgo.Record
	for _, k := range []string{"ok-1", "ok-2", "ok-3", "flaky-1", "flaky-2", "bad", "perm"} {
		rs = append(rs, &kgo.Record{Topic: topic, Key: []byte(k), Value: []byte("{}")})
	}
	c.Produce(rs...)
	stop := run(t, l)

	records := func(topic, role, outcome string, want float64) expect {
		return expect{"kretry_records_total", []string{"topic", topic, "role", role, "outcome", outcome}, want}
	}
	// Main: ok x3 handled; flaky x2 and bad retried; perm dead-lettered.
	// Tier: flaky x2 handled on their second delivery; bad retried once
	// more, then dead-lettered (3 attempts). DLT: perm (after one DLT
	// handler failure) and bad handled.
	counters := []expect{
		records(topic, "main", "handled", 3), records(topic, "main", "retried", 3),
		records(topic, "main", "dead_lettered", 1), records(topic, "main", "dropped", 0),
		records(tier, "tier", "handled", 2), records(tier, "tier", "retried", 1),
		records(tier, "tier", "dead_lettered", 1), records(tier, "tier", "dropped", 0),
		records(dlt, "dlt", "handled", 2), records(dlt, "dlt", "dropped", 0),
		{"kretry_dead_lettered_total", []string{"topic", topic, "role", "main", "dlt", dlt, "reason", "permanent"}, 1},
		{"kretry_dead_lettered_total", []string{"topic", tier, "role", "tier", "dlt", dlt, "reason", "exhausted"}, 1},
		{"kretry_dlt_handler_failures_total", []string{"topic", dlt}, 1},
	}
	waitMetrics(t, reg, "counters", func(mfs map[string]*dto.MetricFamily) error { return checkAll(mfs, counters) })

	timed := 0.0
	if deadLetterTimed.Load() {
		timed = 1
	}
	histograms := []expect{
		// Handled and retried deliveries (and dead-lettered ones, if the
		// listener times them).
		{"kretry_handler_duration_seconds", []string{"topic", topic, "role", "main"}, 6 + timed},
		{"kretry_handler_duration_seconds", []string{"topic", tier, "role", "tier"}, 3 + timed},
		// Two DLT records handled, one DLT handler failure.
		{"kretry_handler_duration_seconds", []string{"topic", dlt, "role", "dlt"}, 3},
		// Every delivery from the tier: flaky x2, bad x2.
		{"kretry_delivery_lateness_seconds", []string{"topic", tier}, 4},
	}
	gauges := []expect{}
	for _, tr := range []struct{ topic, role string }{{topic, "main"}, {tier, "tier"}, {dlt, "dlt"}} {
		lv := []string{"topic", tr.topic, "role", tr.role}
		gauges = append(gauges,
			expect{"kretry_partitions_owned", lv, 1}, expect{"kretry_partitions_paused", lv, 0},
			expect{"kretry_records_held", lv, 0}, expect{"kretry_publishes_unacked", lv, 0})
	}
	waitMetrics(t, reg, "histograms and gauges", func(mfs map[string]*dto.MetricFamily) error {
		if err := checkAll(mfs, append(histograms, gauges...)); err != nil {
			return err
		}
		for _, name := range []string{"kretry_forward_failures_total", "kretry_dropped_total"} {
			if mf := mfs[name]; mf != nil {
				return fmt.Errorf("%s has %d series, want none", name, len(mf.GetMetric()))
			}
		}
		// franz-go's client metrics, from ClientMetrics.
		for _, name := range []string{"kretry_connects_total", "kretry_fetch_bytes_total", "kretry_produce_bytes_total"} {
			if mfs[name] == nil {
				return fmt.Errorf("client metric %s missing", name)
			}
		}
		return nil
	})

	srv := httptest.NewServer(promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	defer srv.Close()
	resp, err := http.Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range []string{
		fmt.Sprintf(`kretry_records_total{outcome="handled",role="main",topic=%q} 3`, topic),
		fmt.Sprintf(`kretry_dead_lettered_total{dlt=%q,reason="exhausted",role="tier",topic=%q} 1`, dlt, tier),
		fmt.Sprintf(`kretry_partitions_owned{role="tier",topic=%q} 1`, tier),
		`kretry_connects_total{node_id="`,
	} {
		if !strings.Contains(string(body), line) {
			t.Errorf("/metrics lacks %s", line)
		}
	}

	if err := stop(); err != nil {
		t.Fatal(err)
	}
	// Stopped: nothing owned, and the client's metrics are gone with it.
	waitMetrics(t, reg, "after Run returned", func(mfs map[string]*dto.MetricFamily) error {
		if err := checkAll(mfs, []expect{{"kretry_partitions_owned", []string{"topic", topic, "role", "main"}, 0}}); err != nil {
			return err
		}
		if mfs["kretry_connects_total"] != nil {
			return errors.New("client metrics still registered")
		}
		return nil
	})
	if err := checkAll(gather(t, reg), counters); err != nil {
		t.Fatalf("counters changed after stop: %v", err)
	}
}

func gather(t *testing.T, g prometheus.Gatherer) map[string]*dto.MetricFamily {
	t.Helper()
	mfs, err := g.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]*dto.MetricFamily{}
	for _, mf := range mfs {
		out[mf.GetName()] = mf
	}
	return out
}

type dltFunc func(context.Context, *kgo.Record, retry.State) error

func (f dltFunc) HandleDLT(ctx context.Context, rec *kgo.Record, st retry.State) error {
	return f(ctx, rec, st)
}

// freshAdmin returns an admin client that refreshes its metadata often:
// a client that has been told a topic does not exist believes it for
// kgo.MetadataMinAge (5 s by default), and the tier lag is measured before
// the listener creates its tiers.
func freshAdmin(t *testing.T, seeds []string) *kadm.Client {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(seeds...), kgo.MetadataMinAge(10*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return kadm.NewClient(cl)
}

// A record waiting in a tier for its due time pauses the tier partition
// and is held; TierLag reports it as not due. Once the listener has
// stopped, an overdue record and a corrupt one behind it are reported too.
func TestWaitingRecordGaugesAndTierLag(t *testing.T) {
	c := kafkatest.New(t)
	topic, group := c.Name("orders"), c.Name("group")
	c.CreateTopic(topic, 1)

	reg := prometheus.NewPedanticRegistry()
	m, err := kretryprom.New(reg,
		kretryprom.TierLag(freshAdmin(t, c.Seeds), kgo.SeedBrokers(c.Seeds...)),
		kretryprom.TierLagInterval(100*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	l, err := listener.New(c.Seeds, topic, listener.HandlerFunc(func(context.Context, *kgo.Record) error { return errUnavailable }),
		listener.Group(group),
		listener.Attempts(2),
		listener.Backoff(strategy.FixedBackoff(time.Hour)),
		listener.FetchMaxWait(20*time.Millisecond),
		listener.Logger(quiet()),
		listener.Hooks(m),
	)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Watch(l)()
	tier := l.Plan().Tiers[0].Topic
	c.Produce(&kgo.Record{Topic: topic, Key: []byte("a"), Value: []byte("{}")})
	stop := run(t, l)

	tierLabels := []string{"topic", tier, "role", "tier"}
	waiting := func(state string, want float64) expect {
		return expect{"kretry_tier_records_waiting", []string{"group", group, "topic", tier, "state", state}, want}
	}
	waitMetrics(t, reg, "a record waiting in the tier", func(mfs map[string]*dto.MetricFamily) error {
		return checkAll(mfs, []expect{
			{"kretry_records_total", []string{"topic", topic, "role", "main", "outcome", "retried"}, 1},
			{"kretry_partitions_owned", tierLabels, 1},
			{"kretry_partitions_paused", tierLabels, 1},
			{"kretry_records_held", tierLabels, 1},
			{"kretry_partitions_paused", []string{"topic", topic, "role", "main"}, 0},
			waiting("not_due", 1), waiting("overdue", 0), waiting("corrupt", 0), waiting("unread", 0),
			{"kretry_tier_oldest_overdue_seconds", []string{"group", group, "topic", tier}, 0},
		})
	})
	if err := stop(); err != nil {
		t.Fatal(err)
	}

	// Behind the waiting record: one due a minute ago, one without kretry
	// headers.
	src := &kgo.Record{Topic: topic, Key: []byte("b"), Value: []byte("{}"), Timestamp: time.Now().Add(-2 * time.Minute)}
	st := retry.First(src, time.Now().Add(-2*time.Minute)).WithFailure(time.Now().Add(-time.Minute), "boom", "")
	overdue := retry.Next(src, tier, 0, st, 1024)
	c.ProduceToPartitions(overdue, &kgo.Record{Topic: tier, Partition: 0, Key: []byte("c"), Value: []byte("{}")})

	waitMetrics(t, reg, "an overdue and a corrupt record behind it", func(mfs map[string]*dto.MetricFamily) error {
		if err := checkAll(mfs, []expect{
			{"kretry_partitions_owned", tierLabels, 0},
			{"kretry_partitions_paused", tierLabels, 0},
			waiting("not_due", 1), waiting("overdue", 1), waiting("corrupt", 1), waiting("unread", 0),
		}); err != nil {
			return err
		}
		age, _ := value(mfs["kretry_tier_oldest_overdue_seconds"], "group", group, "topic", tier)
		if age < 60 || age > 60+waitFor.Seconds() {
			return fmt.Errorf("oldest overdue %vs, want about 60s", age)
		}
		return nil
	})
}

// Without reader options, the tier lag is listed from offsets alone: every
// waiting record is "unread". A measurement is reused for TierLagInterval.
func TestTierLagWithoutReader(t *testing.T) {
	c := kafkatest.New(t)
	topic, group := c.Name("orders"), c.Name("group")
	c.CreateTopic(topic, 2)
	adm := freshAdmin(t, c.Seeds)
	reg := prometheus.NewPedanticRegistry()
	m, err := kretryprom.New(reg, kretryprom.TierLag(adm), kretryprom.TierLagInterval(time.Nanosecond))
	if err != nil {
		t.Fatal(err)
	}
	l, err := listener.New(c.Seeds, topic, listener.HandlerFunc(func(context.Context, *kgo.Record) error { return nil }),
		listener.Group(group), listener.Attempts(3),
		listener.Backoff(strategy.ExponentialBackoff(time.Second, 2, 0)))
	if err != nil {
		t.Fatal(err)
	}
	defer m.Watch(l)()
	tiers := l.Plan().Tiers
	if len(tiers) != 2 {
		t.Fatalf("tiers %+v, want 2", tiers)
	}
	// The tiers do not exist yet (Run creates them): no series, no error.
	if err := checkAll(gather(t, reg), []expect{{"kretry_tier_lag_errors_total", nil, 0}}); err != nil {
		t.Fatal(err)
	}
	if n, err := testutil.GatherAndCount(reg, "kretry_tier_records_waiting"); err != nil || n != 0 {
		t.Fatalf("tier lag series before the tiers exist: %d, %v; want 0", n, err)
	}
	c.CreateTopic(tiers[0].Topic, 2)
	c.CreateTopic(tiers[1].Topic, 2)
	c.ProduceToPartitions(
		&kgo.Record{Topic: tiers[0].Topic, Partition: 0}, &kgo.Record{Topic: tiers[0].Topic, Partition: 1},
		&kgo.Record{Topic: tiers[0].Topic, Partition: 1}, &kgo.Record{Topic: tiers[1].Topic, Partition: 0})
	unread := func(tier string, want float64) expect {
		return expect{"kretry_tier_records_waiting", []string{"group", group, "topic", tier, "state", "unread"}, want}
	}
	// A new topic's metadata takes a moment to spread; until it has, a
	// measurement may be incomplete, and the topic is left out.
	waitMetrics(t, reg, "tier lag from offsets", func(mfs map[string]*dto.MetricFamily) error {
		return checkAll(mfs, []expect{
			unread(tiers[0].Topic, 3), unread(tiers[1].Topic, 1),
			{"kretry_tier_records_waiting", []string{"group", group, "topic", tiers[0].Topic, "state", "not_due"}, 0},
		})
	})

	// With the default interval, a second gather reuses the first one's
	// measurement.
	reg2 := prometheus.NewPedanticRegistry()
	m2, err := kretryprom.New(reg2, kretryprom.TierLag(adm))
	if err != nil {
		t.Fatal(err)
	}
	defer m2.Watch(l)()
	waitMetrics(t, reg2, "tier lag, default interval", func(mfs map[string]*dto.MetricFamily) error {
		// Both tiers listed: the measurement is complete, and kept.
		return checkAll(mfs, []expect{unread(tiers[0].Topic, 3), unread(tiers[1].Topic, 1)})
	})
	c.ProduceToPartitions(&kgo.Record{Topic: tiers[0].Topic, Partition: 0})
	if err := checkAll(gather(t, reg2), []expect{unread(tiers[0].Topic, 3)}); err != nil {
		t.Fatalf("second gather within the interval: %v", err)
	}
	waitMetrics(t, reg, "tier lag, 1ns interval", func(mfs map[string]*dto.MetricFamily) error {
		return checkAll(mfs, []expect{unread(tiers[0].Topic, 4)})
	})
}

// A measurement that fails reports no tier lag, counts an error, and is
// not kept: the next gather measures again.
func TestTierLagFailure(t *testing.T) {
	dead, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := dead.Addr().String()
	dead.Close() // nothing listens there now
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.RequestRetries(0), kgo.RetryTimeout(100*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	reg := prometheus.NewPedanticRegistry()
	m, err := kretryprom.New(reg, kretryprom.TierLag(kadm.NewClient(cl)), kretryprom.TierLagTimeout(300*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	l, err := listener.New([]string{addr}, "orders", listener.HandlerFunc(func(context.Context, *kgo.Record) error { return nil }))
	if err != nil {
		t.Fatal(err)
	}
	defer m.Watch(l)()
	for want := 1.0; want <= 2; want++ {
		got := gather(t, reg)
		if err := checkAll(got, []expect{{"kretry_tier_lag_errors_total", nil, want}}); err != nil {
			t.Fatalf("gather %v: %v", want, err)
		}
		if got["kretry_tier_records_waiting"] != nil {
			t.Fatalf("gather %v: tier lag reported without a measurement", want)
		}
	}
}
