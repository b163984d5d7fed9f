package main

import (
	"context"
	"fmt"
	"os"
	"strings"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/twmb/franz-go/pkg/kgo"
	"go.opentelemetry.io/otel/propagation"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"

	"github.com/kretry/kretry/contrib/kretryotel"
	"github.com/kretry/kretry/contrib/kretryprom"
	"github.com/kretry/kretry/listener"
	"github.com/kretry/kretry/retry"
	"github.com/kretry/kretry/strategy"
)

// observedSystem runs S1 and S2 exactly as kretrySystem does — the same
// handler, the same listener settings — with observability wired in the
// way the contrib modules document it, so that the ratio of the two is
// what metrics and tracing cost:
//
//   - metrics: kretryprom on a registry of the run's own, as a listener
//     Hook, with franz-go's client metrics (ClientMetrics) and Watch;
//   - tracing: kretryotel with the SDK's TracerProvider, AlwaysSample and
//     the W3C propagator, every span recorded and then dropped by
//     dropSpans (see there).
//
// The registry is gathered once the Tracker is done, while the listener
// still runs (the client metrics leave the registry with the client), and
// the counters and spans are checked once Run has returned; neither is
// timed. A run whose metrics or spans do not add up fails.
type observedSystem struct {
	name    string
	metrics bool // kretryprom
	tracing bool // kretryotel
}

func (s observedSystem) Name() string { return s.name }

// note is the configuration column of the table.
func (s observedSystem) note(base string) string {
	var parts []string
	if s.metrics {
		parts = append(parts, "kretryprom (Hooks, ClientMetrics, Watch)")
	}
	if s.tracing {
		parts = append(parts, "kretryotel (AlwaysSample, W3C, spans recorded then dropped)")
	}
	return base + " + " + strings.Join(parts, " + ")
}

// dropSpans is a span processor that drops every span once it has ended,
// counting kretryotel's process spans and all spans. The spans are still
// made, recorded — attributes, links, events, status — and snapshotted by
// the SDK for the processor, as for any processor of a sampled production
// setup; what is left out is the export: a BatchSpanProcessor's queue and
// the exporter's encoding and network, which run on other goroutines.
// (With no processor at all the SDK would skip the snapshot, which no real
// setup does.)
type dropSpans struct {
	process atomic.Int64
	all     atomic.Int64
}

func (d *dropSpans) OnStart(context.Context, sdktrace.ReadWriteSpan) {}

func (d *dropSpans) OnEnd(s sdktrace.ReadOnlySpan) {
	d.all.Add(1)
	if s.InstrumentationScope().Name == kretryotel.ScopeName {
		d.process.Add(1)
	}
}

func (d *dropSpans) Shutdown(context.Context) error   { return nil }
func (d *dropSpans) ForceFlush(context.Context) error { return nil }

// observation is one scenario run's metrics and tracing.
type observation struct {
	reg    *prometheus.Registry
	m      *kretryprom.Metrics
	tp     *sdktrace.TracerProvider
	tracer *kretryotel.Tracer
	spans  *dropSpans
	live   map[string]float64 // metric family -> sum of its samples, gathered while the listener ran
}

// observe builds s's metrics and tracing and returns the listener options
// that wire them in.
func (s observedSystem) observe() (*observation, []listener.Opt, error) {
	o := &observation{}
	var opts []listener.Opt
	if s.metrics {
		o.reg = prometheus.NewRegistry()
		m, err := kretryprom.New(o.reg)
		if err != nil {
			return nil, nil, err
		}
		o.m = m
		opts = append(opts, listener.Hooks(m), listener.ClientOpts(kgo.WithHooks(m.ClientMetrics())))
	}
	if s.tracing {
		o.spans = &dropSpans{}
		o.tp = sdktrace.NewTracerProvider(sdktrace.WithSampler(sdktrace.AlwaysSample()), sdktrace.WithSpanProcessor(o.spans))
		o.tracer = kretryotel.New(kretryotel.TracerProvider(o.tp), kretryotel.Propagator(propagation.TraceContext{}))
		opts = append(opts, listener.Tracing(o.tracer), listener.ClientOpts(o.tracer.ClientOpts()...))
	}
	return o, opts, nil
}

// run runs l until tr is done, like runListener, with l watched; the
// registry is gathered after tr is done, before l is stopped.
func (o *observation) run(ctx context.Context, l *listener.Listener, tr *Tracker) error {
	if o.m != nil {
		defer o.m.Watch(l)()
	}
	return runListenerThen(ctx, l, tr, func() (err error) {
		if o.reg != nil {
			o.live, err = gather(o.reg)
		}
		return err
	})
}

// gather gathers reg and sums each family's samples (a histogram's sample
// is its count).
func gather(reg *prometheus.Registry) (map[string]float64, error) {
	mfs, err := reg.Gather()
	if err != nil {
		return nil, fmt.Errorf("gathering the registry: %w", err)
	}
	out := map[string]float64{}
	for _, mf := range mfs {
		out[mf.GetName()] += sum(mf.GetMetric(), nil)
	}
	return out, nil
}

// sum adds up the samples of ms whose labels include want.
func sum(ms []*dto.Metric, want map[string]string) float64 {
	var n float64
next:
	for _, m := range ms {
		for k, v := range want {
			found := false
			for _, lp := range m.GetLabel() {
				if lp.GetName() == k && lp.GetValue() == v {
					found = true
				}
			}
			if !found {
				continue next
			}
		}
		switch {
		case m.Counter != nil:
			n += m.Counter.GetValue()
		case m.Gauge != nil:
			n += m.Gauge.GetValue()
		case m.Histogram != nil:
			n += float64(m.Histogram.GetSampleCount())
		}
	}
	return n
}

// want is what a scenario run must have left in the metrics and spans.
type want struct {
	partitions int // owned while the listener ran, at least
	records    int
	outcomes   []string // "role/outcome": each of kretry_records_total must count records

	deliveries int // process spans
}

// check compares what o saw with w and shuts the tracing down; it returns
// a summary for stderr.
func (o *observation) check(w want) (string, error) {
	var sb strings.Builder
	var problems []string
	if o.reg != nil {
		for _, name := range []string{"kretry_partitions_owned", "kretry_read_bytes_total", "kretry_fetch_bytes_total", "kretry_handler_duration_seconds"} {
			if o.live[name] <= 0 {
				problems = append(problems, fmt.Sprintf("%s was %v while the listener ran", name, o.live[name]))
			}
		}
		if got := o.live["kretry_partitions_owned"]; got < float64(w.partitions) {
			problems = append(problems, fmt.Sprintf("kretry_partitions_owned was %v while the listener ran, want >= %d", got, w.partitions))
		}
		mfs, err := o.reg.Gather()
		if err != nil {
			return "", fmt.Errorf("observed: final gather: %w", err)
		}
		fmt.Fprintf(&sb, "%d families live, %v partitions owned", len(o.live), o.live["kretry_partitions_owned"])
		for _, mf := range mfs {
			if mf.GetName() != "kretry_records_total" {
				continue
			}
			for _, ro := range w.outcomes {
				role, outcome, _ := strings.Cut(ro, "/")
				got := sum(mf.GetMetric(), map[string]string{"role": role, "outcome": outcome})
				fmt.Fprintf(&sb, ", %s %v", ro, got)
				if got != float64(w.records) {
					problems = append(problems, fmt.Sprintf("kretry_records_total{role=%q,outcome=%q} = %v, want %d", role, outcome, got, w.records))
				}
			}
		}
	}
	if o.tp != nil {
		if err := o.tp.Shutdown(context.Background()); err != nil {
			return "", fmt.Errorf("observed: tracer provider shutdown: %w", err)
		}
		p, a := o.spans.process.Load(), o.spans.all.Load()
		if sb.Len() > 0 {
			sb.WriteString("; ")
		}
		fmt.Fprintf(&sb, "%d process spans, %d spans in all", p, a)
		if p != int64(w.deliveries) {
			problems = append(problems, fmt.Sprintf("%d process spans, want %d (one per delivery)", p, w.deliveries))
		}
	}
	if len(problems) > 0 {
		return sb.String(), fmt.Errorf("observed: %s", strings.Join(problems, "; "))
	}
	return sb.String(), nil
}

// finish checks o after a scenario run and logs what it saw.
func (s observedSystem) finish(o *observation, scenario string, w want) error {
	summary, err := o.check(w)
	fmt.Fprintf(os.Stderr, "bench: %s %s observed: %s\n", scenario, s.name, summary)
	return err
}

func (s observedSystem) HappyPath(ctx context.Context, env *Env, in HappyPathInput) (Throughput, error) {
	o, obs, err := s.observe()
	if err != nil {
		return Throughput{}, err
	}
	tr := NewTracker(in.Records, nil)
	h := listener.HandlerFunc(func(_ context.Context, r *kgo.Record) error {
		k := string(r.Key)
		tr.Begin(k)
		tr.SucceededIn(r.Partition)
		return nil
	})
	opts := append([]listener.Opt{listener.Group(in.Group), listener.Logger(quietLogger())}, obs...)
	l, err := listener.New(env.Brokers, in.Topic, h, opts...)
	if err != nil {
		return Throughput{}, err
	}
	if err := o.run(ctx, l, tr); err != nil {
		return Throughput{}, err
	}
	if err := s.finish(o, "s1", want{partitions: in.Partitions, records: in.Records, deliveries: in.Records,
		outcomes: []string{"main/handled"}}); err != nil {
		return Throughput{}, err
	}
	return tr.Throughput(s.note("defaults")), nil
}

func (s observedSystem) RetryHop(ctx context.Context, env *Env, in RetryHopInput) (Throughput, error) {
	o, obs, err := s.observe()
	if err != nil {
		return Throughput{}, err
	}
	tr := NewTracker(in.Records, nil)
	h := listener.HandlerFunc(func(ctx context.Context, r *kgo.Record) error {
		tr.Begin(string(r.Key))
		// The retry is told by its context; Tracker.Failed, a per-key
		// count for handlers that cannot tell (watermill's), is not
		// needed, and costs a map insert per record.
		if _, retried := retry.FromContext(ctx); !retried {
			return errFail
		}
		tr.SucceededIn(r.Partition)
		return nil
	})
	opts := append([]listener.Opt{listener.Group(in.Group), listener.Logger(quietLogger()),
		listener.Attempts(2), listener.Backoff(strategy.ListBackoff(0))}, obs...)
	l, err := listener.New(env.Brokers, in.Topic, h, opts...)
	if err != nil {
		return Throughput{}, err
	}
	if err := o.run(ctx, l, tr); err != nil {
		return Throughput{}, err
	}
	if err := s.finish(o, "s2", want{partitions: in.Partitions, records: in.Records, deliveries: 2 * in.Records,
		outcomes: []string{"main/retried", "tier/handled"}}); err != nil {
		return Throughput{}, err
	}
	return tr.EndToEnd(s.note("1 tier, 0 ms, acks=all")), nil
}
