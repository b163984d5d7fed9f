package kretryprom_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/kretry/kretry/contrib/kretryprom"
	"github.com/kretry/kretry/internal/kafkatest"
	"github.com/kretry/kretry/listener"
	"github.com/kretry/kretry/strategy"
)

// histogramSum returns the sample sum of the histogram series of mf whose
// labels are exactly labels, and whether it exists.
func histogramSum(mf *dto.MetricFamily, labels ...string) (float64, bool) {
	if mf == nil {
		return 0, false
	}
	for _, m := range mf.GetMetric() {
		if len(m.GetLabel())*2 != len(labels) || m.GetHistogram() == nil {
			continue
		}
		match := true
		for _, lp := range m.GetLabel() {
			i := slices.Index(labels, lp.GetName())
			if i < 0 || i%2 != 0 || labels[i+1] != lp.GetValue() {
				match = false
				break
			}
		}
		if match {
			return m.GetHistogram().GetSampleSum(), true
		}
	}
	return 0, false
}

// A real batch listener on kfake: each batch handler call is observed
// once, in kretry_batch_records (count and sum: the calls and their
// records) and kretry_batch_duration_seconds; each record's outcome is
// counted in kretry_records_total, and its lateness on the tier, but its
// run time is not observed in kretry_handler_duration_seconds. A record
// that BatchErrors names twice is counted in
// kretry_batch_errors_invalid_total and routed once.
//
// The batches are deterministic: BatchSize 3 with a BatchWait longer than
// the test makes each worker wait for three records, and a zero-delay
// tier makes every tier record due as soon as it is read. Main: [k0 k1
// k2] fails k1 and k2, [k3 k4 k5] fails k4 (named twice). Tier: [k1 k2
// k4] dead-letters k2. DLT: k2, one record at a time, to the default DLT
// handler.
func TestBatchListenerMetrics(t *testing.T) {
	c := kafkatest.New(t)
	topic, group := c.Name("orders"), c.Name("group")
	c.CreateTopic(topic, 1)

	reg := prometheus.NewPedanticRegistry()
	m, err := kretryprom.New(reg)
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var calls [][]string // each call's keys
	handle := func(_ context.Context, recs []*kgo.Record) error {
		var errs listener.BatchErrors
		keys := make([]string, len(recs))
		for i, rec := range recs {
			keys[i] = string(rec.Key)
			switch {
			case rec.Topic == topic && (keys[i] == "k1" || keys[i] == "k2"):
				errs.Add(rec, errUnavailable)
			case rec.Topic == topic && keys[i] == "k4":
				errs.Add(rec, errUnavailable)
				errs.Add(rec, errors.New("named again")) // invalid: routed once, for its first error
			case rec.Topic != topic && keys[i] == "k2":
				errs.Add(rec, strategy.Permanent(errInvalid))
			}
		}
		mu.Lock()
		calls = append(calls, keys)
		mu.Unlock()
		return errs.Err()
	}
	l, err := listener.NewBatch(c.Seeds, topic, listener.BatchHandlerFunc(handle),
		listener.Group(group),
		listener.BatchSize(3), listener.BatchWait(2*waitFor),
		listener.Attempts(3),
		listener.Backoff(strategy.ListBackoff(0)),
		listener.FetchMaxWait(20*time.Millisecond),
		listener.Logger(quiet()),
		listener.Hooks(m),
	)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Watch(l)()
	plan := l.Plan()
	tier, dlt := plan.Tiers[0].Topic, plan.DLT

	var rs []*kgo.Record
	for _, k := range []string{"k0", "k1", "k2", "k3", "k4", "k5"} {
		rs = append(rs, &kgo.Record{Topic: topic, Key: []byte(k), Value: []byte("{}")})
	}
	c.Produce(rs...)
	stop := run(t, l)

	records := func(topic, role, outcome string, want float64) expect {
		return expect{"kretry_records_total", []string{"topic", topic, "role", role, "outcome", outcome}, want}
	}
	mainL, tierL, dltL := []string{"topic", topic, "role", "main"}, []string{"topic", tier, "role", "tier"}, []string{"topic", dlt, "role", "dlt"}
	counters := []expect{
		records(topic, "main", "handled", 3), records(topic, "main", "retried", 3),
		records(topic, "main", "dead_lettered", 0), records(topic, "main", "dropped", 0),
		records(tier, "tier", "handled", 2), records(tier, "tier", "retried", 0),
		records(tier, "tier", "dead_lettered", 1), records(tier, "tier", "dropped", 0),
		records(dlt, "dlt", "handled", 1),
		{"kretry_dead_lettered_total", []string{"topic", tier, "role", "tier", "dlt", dlt, "reason", "permanent"}, 1},
		{"kretry_batch_errors_invalid_total", mainL, 1},
		{"kretry_batch_errors_invalid_total", tierL, 0},
	}
	histograms := []expect{
		// One observation per call.
		{"kretry_batch_records", mainL, 2},
		{"kretry_batch_records", tierL, 1},
		{"kretry_batch_duration_seconds", mainL, 2},
		{"kretry_batch_duration_seconds", tierL, 1},
		// The batches' records are not timed one by one; the DLT's record,
		// handled alone, is.
		{"kretry_handler_duration_seconds", mainL, 0},
		{"kretry_handler_duration_seconds", tierL, 0},
		{"kretry_handler_duration_seconds", dltL, 1},
		// Every record delivered from the tier.
		{"kretry_delivery_lateness_seconds", []string{"topic", tier}, 3},
	}
	waitMetrics(t, reg, "counters and histograms", func(mfs map[string]*dto.MetricFamily) error {
		if err := checkAll(mfs, append(counters, histograms...)); err != nil {
			return err
		}
		// Records per call: the sums of the sizes.
		for _, s := range []struct {
			labels []string
			want   float64
		}{{mainL, 6}, {tierL, 3}} {
			if got, _ := histogramSum(mfs["kretry_batch_records"], s.labels...); got != s.want {
				return fmt.Errorf("kretry_batch_records%v sum %v, want %v", s.labels, got, s.want)
			}
		}
		// The DLT is read one record at a time: no batch series.
		for _, name := range []string{"kretry_batch_records", "kretry_batch_duration_seconds", "kretry_batch_errors_invalid_total"} {
			if _, ok := value(mfs[name], dltL...); ok {
				return fmt.Errorf("%s has a series for the DLT", name)
			}
		}
		return nil
	})
	if err := stop(); err != nil {
		t.Fatal(err)
	}

	// The calls were the ones the metrics describe.
	want := [][]string{{"k0", "k1", "k2"}, {"k3", "k4", "k5"}, {"k1", "k2", "k4"}}
	mu.Lock()
	defer mu.Unlock()
	if !slices.EqualFunc(calls, want, slices.Equal) {
		t.Errorf("batch calls %v, want %v", calls, want)
	}
	if err := checkAll(gather(t, reg), append(counters, histograms...)); err != nil {
		t.Errorf("metrics changed after stop: %v", err)
	}
}
