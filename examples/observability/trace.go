package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"sync"

	"github.com/twmb/franz-go/pkg/kgo"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/stdout/stdouttrace"
	"go.opentelemetry.io/otel/propagation"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.18.0"
	"go.opentelemetry.io/otel/trace"

	"github.com/kretry/kretry/contrib/kretryotel"
	"github.com/kretry/kretry/listener"
	"github.com/kretry/kretry/retry"
	"github.com/kretry/kretry/strategy"
)

// kotelScope is the instrumentation scope of franz-go's kotel spans
// (publish and receive), which kretryotel.Tracer.ClientOpts adds.
const kotelScope = "github.com/twmb/franz-go/plugin/kotel"

// tracing is the example's OpenTelemetry setup: an SDK TracerProvider
// whose spans go to a chainRecorder and, with -spans, to a file as JSON
// (stdouttrace), and the kretryotel Tracer that the listener and the
// producer are wired with. A real program would add an OTLP exporter
// instead of the file.
type tracing struct {
	provider *sdktrace.TracerProvider
	tracer   *kretryotel.Tracer
	chains   *chainRecorder
	file     *os.File // nil without -spans
}

// newTracing sets up tracing; spansFile, when not empty, is created and
// receives every span as one JSON object a line.
func newTracing(spansFile string) (*tracing, error) {
	t := &tracing{chains: newChainRecorder()}
	opts := []sdktrace.TracerProviderOption{sdktrace.WithSpanProcessor(t.chains)}
	if spansFile != "" {
		f, err := os.Create(spansFile)
		if err != nil {
			return nil, fmt.Errorf("-spans: %w", err)
		}
		exp, err := stdouttrace.New(stdouttrace.WithWriter(f))
		if err != nil {
			_ = f.Close()
			return nil, fmt.Errorf("-spans: %w", err)
		}
		t.file = f
		opts = append(opts, sdktrace.WithBatcher(exp))
	}
	t.provider = sdktrace.NewTracerProvider(opts...)
	t.tracer = kretryotel.New(
		kretryotel.TracerProvider(t.provider),
		kretryotel.Propagator(propagation.TraceContext{}), // W3C traceparent headers
	)
	return t, nil
}

// close ends the provider, which writes the spans still batched to the
// -spans file, and closes the file.
func (t *tracing) close() error {
	err := t.provider.Shutdown(context.Background())
	if t.file != nil {
		err = errors.Join(err, t.file.Close())
	}
	return err
}

// chainRecorder is an sdktrace.SpanProcessor that keeps, in memory, the
// process spans of the first record that is dead-lettered because its
// attempts ran out and is then handled from the DLT — one span per
// delivery, from the main topic through the retry tiers to the DLT — with
// the names of the publish spans its links point to. It keeps the spans
// of the records still in flight until it has found one; then it keeps
// nothing more.
type chainRecorder struct {
	mu     sync.Mutex
	chains map[trace.SpanID]*chain // by origin: the record's main-topic process span
	byID   map[trace.SpanID]*chain // a process span's chain, from its start
	picked *chain
	ready  chan struct{} // closed when picked is set
}

// chain is one record's deliveries, as far as they have gone.
type chain struct {
	origin  trace.SpanID            // its main-topic process span
	ids     []trace.SpanID          // its process spans, started
	process []sdktrace.ReadOnlySpan // its process spans, ended (not the abandoned ones)
	publish map[trace.SpanID]hop    // publish spans started under its process spans
}

// hop is a publish span: the record a delivery forwarded.
type hop struct {
	name   string       // "<topic> publish"
	parent trace.SpanID // the process span of that delivery
}

var _ sdktrace.SpanProcessor = (*chainRecorder)(nil)

func newChainRecorder() *chainRecorder {
	return &chainRecorder{
		chains: map[trace.SpanID]*chain{},
		byID:   map[trace.SpanID]*chain{},
		ready:  make(chan struct{}),
	}
}

// Ready is closed once a record's chain is complete.
func (r *chainRecorder) Ready() <-chan struct{} { return r.ready }

// OnStart files a process span under its record's chain (its links are
// set when it starts) and a publish span under the chain of the process
// span it is the child of.
func (r *chainRecorder) OnStart(_ context.Context, s sdktrace.ReadWriteSpan) {
	scope := s.InstrumentationScope().Name
	if scope != kretryotel.ScopeName && (scope != kotelScope || !strings.HasSuffix(s.Name(), " publish")) {
		return // a receive span
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.picked != nil {
		return
	}
	id := s.SpanContext().SpanID()
	switch scope {
	case kretryotel.ScopeName:
		origin := id // a main-topic delivery is its own origin
		if attr(s.Attributes(), kretryotel.RoleKey) != strategy.RoleMain.String() {
			sc, ok := link(s.Links(), kretryotel.LinkOrigin)
			if !ok {
				return
			}
			origin = sc.SpanID()
		}
		c := r.chains[origin]
		if c == nil {
			c = &chain{origin: origin, publish: map[trace.SpanID]hop{}}
			r.chains[origin] = c
		}
		c.ids = append(c.ids, id)
		r.byID[id] = c
	case kotelScope:
		if c := r.byID[s.Parent().SpanID()]; c != nil {
			c.publish[id] = hop{name: s.Name(), parent: s.Parent().SpanID()}
		}
	}
}

// OnEnd adds an ended process span to its chain and, at the record's last
// delivery, either picks the chain or forgets it.
func (r *chainRecorder) OnEnd(s sdktrace.ReadOnlySpan) {
	if s.InstrumentationScope().Name != kretryotel.ScopeName {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.picked != nil {
		return
	}
	c := r.byID[s.SpanContext().SpanID()]
	if c == nil {
		return
	}
	role, outcome := attr(s.Attributes(), kretryotel.RoleKey), attr(s.Attributes(), kretryotel.OutcomeKey)
	if outcome == kretryotel.OutcomeAbandoned {
		// The listener stopped or lost the partition; the record is
		// delivered again: from a tier or the DLT in the same chain, from
		// the main topic as a new origin.
		if role == strategy.RoleMain.String() {
			r.forget(c)
		}
		return
	}
	c.process = append(c.process, s)
	handled := outcome == listener.EventHandled.String()
	if !handled && outcome != listener.EventDropped.String() {
		return // retried, dead-lettered, or a DLT handler failure that is retried
	}
	if role == strategy.RoleDLT.String() && handled && c.complete() {
		r.picked = c
		r.chains, r.byID = nil, nil
		close(r.ready)
		return
	}
	r.forget(c)
}

// forget drops a chain that will not be printed.
func (r *chainRecorder) forget(c *chain) {
	delete(r.chains, c.origin)
	for _, id := range c.ids {
		delete(r.byID, id)
	}
}

// complete reports whether the chain is one delivery per hop, main topic
// first, retry tiers at attempts 2, 3, …, and the DLT last, dead-lettered
// because its attempts ran out.
func (c *chain) complete() bool {
	c.sort()
	n := len(c.process)
	if n < 3 {
		return false
	}
	for i, s := range c.process {
		want := strategy.RoleTier
		switch i {
		case 0:
			want = strategy.RoleMain
		case n - 1:
			want = strategy.RoleDLT
		}
		if attr(s.Attributes(), kretryotel.RoleKey) != want.String() {
			return false
		}
		if i < n-1 && attrInt(s.Attributes(), kretryotel.AttemptKey) != int64(i+1) {
			return false
		}
	}
	return attr(c.process[n-2].Attributes(), kretryotel.ReasonKey) == retry.ReasonExhausted
}

func (c *chain) sort() {
	slices.SortStableFunc(c.process, func(a, b sdktrace.ReadOnlySpan) int { return a.StartTime().Compare(b.StartTime()) })
}

// Shutdown implements sdktrace.SpanProcessor.
func (*chainRecorder) Shutdown(context.Context) error { return nil }

// ForceFlush implements sdktrace.SpanProcessor.
func (*chainRecorder) ForceFlush(context.Context) error { return nil }

// key returns the record key of the picked chain.
func (r *chainRecorder) key() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.picked == nil {
		return ""
	}
	return attr(r.picked.process[0].Attributes(), semconv.MessagingKafkaMessageKeyKey)
}

// print writes the picked chain to out: one line per process span
// (topic, span ID, attempt, outcome, reason, target) and one per link
// (kind, span ID, and what the span linked to is).
func (r *chainRecorder) print(out io.Writer) {
	r.mu.Lock()
	defer r.mu.Unlock()
	c := r.picked
	if c == nil {
		fmt.Fprintln(out, "trace: no record was dead-lettered after all its attempts yet; run longer")
		return
	}
	first := c.process[0]
	traces := map[trace.TraceID]bool{}
	width := 0
	for _, s := range c.process {
		traces[s.SpanContext().TraceID()] = true
		width = max(width, len(s.Name()))
	}
	where := fmt.Sprintf("all in trace %s", first.SpanContext().TraceID())
	if len(traces) > 1 {
		where = fmt.Sprintf("in %d traces", len(traces))
	}
	fmt.Fprintf(out, "process spans of %s, dead-lettered after %d deliveries (%s):\n",
		attr(first.Attributes(), semconv.MessagingKafkaMessageKeyKey), len(c.process)-1, where)
	names := map[trace.SpanID]string{}
	for _, s := range c.process {
		names[s.SpanContext().SpanID()] = s.Name()
	}
	for _, s := range c.process {
		as := attr(s.Attributes(), kretryotel.OutcomeKey)
		if reason := attr(s.Attributes(), kretryotel.ReasonKey); reason != "" {
			as += " (" + reason + ")"
		}
		if target := attr(s.Attributes(), kretryotel.TargetKey); target != "" {
			as += " → " + target
		}
		fmt.Fprintf(out, "  %-*s  span %s  attempt %d  %s\n", width, s.Name(), s.SpanContext().SpanID(),
			attrInt(s.Attributes(), kretryotel.AttemptKey), as)
		for _, l := range s.Links() {
			id := l.SpanContext.SpanID()
			what := "not recorded"
			switch kind := attr(l.Attributes, kretryotel.LinkKey); {
			case names[id] != "":
				what = names[id]
			case c.publish[id].name != "":
				what = fmt.Sprintf("%s, child of span %s", c.publish[id].name, c.publish[id].parent)
			case kind == kretryotel.LinkPreviousHop && attr(s.Attributes(), kretryotel.RoleKey) == strategy.RoleMain.String():
				what = "the producer's publish span"
			}
			fmt.Fprintf(out, "      link %-12s %s  %s\n", attr(l.Attributes, kretryotel.LinkKey), id, what)
		}
	}
}

// attr returns the string value of key in kvs; "" when absent.
func attr(kvs []attribute.KeyValue, key attribute.Key) string {
	for _, kv := range kvs {
		if kv.Key == key {
			return kv.Value.AsString()
		}
	}
	return ""
}

// attrInt returns the int value of key in kvs; 0 when absent.
func attrInt(kvs []attribute.KeyValue, key attribute.Key) int64 {
	for _, kv := range kvs {
		if kv.Key == key {
			return kv.Value.AsInt64()
		}
	}
	return 0
}

// link returns the span context of the link whose kretry.link is kind.
func link(ls []sdktrace.Link, kind string) (trace.SpanContext, bool) {
	for _, l := range ls {
		if attr(l.Attributes, kretryotel.LinkKey) == kind {
			return l.SpanContext, true
		}
	}
	return trace.SpanContext{}, false
}

// producerOpts are the franz-go options that trace a producer of the main
// topic: its publish spans, and the trace headers that make them the
// previous hop of the records' first deliveries. None when t is nil.
func (t *tracing) producerOpts() []kgo.Opt {
	if t == nil {
		return nil
	}
	return t.tracer.ClientOpts()
}
