package kretryotel_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/baggage"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/kretry/kretry/contrib/kretryotel"
	"github.com/kretry/kretry/dlt"
	"github.com/kretry/kretry/internal/kafkatest"
	"github.com/kretry/kretry/listener"
	"github.com/kretry/kretry/retry"
	"github.com/kretry/kretry/strategy"
)

const (
	waitFor      = 30 * time.Second
	kotelScope   = "github.com/twmb/franz-go/plugin/kotel"
	originHeader = "kretry-trace-origin"
)

var errBoom = errors.New("boom")

// hopRun is what one record's trip main → tier → tier → DLT left behind.
type hopRun struct {
	topic, group string
	plan         strategy.Plan
	upstream     trace.SpanContext // the upstream producer's publish span
	spans        []sdktrace.ReadOnlySpan
	handlerSpans map[string]trace.SpanContext // "role/attempt" → span in the handler's context
	handlerBag   map[string]string            // "role/attempt" → the baggage member "tenant"
	records      map[string][]*kgo.Record     // tier and DLT topic → its records, read back
}

// runHops runs a listener traced by a Tracer made with opts over a record
// that fails every delivery (attempts 3, so main → tier → tier → DLT) and
// whose DLT handler succeeds; it returns once the DLT delivery's span has
// ended and the listener has stopped.
func runHops(t *testing.T, opts ...kretryotel.Opt) *hopRun {
	t.Helper()
	c := kafkatest.New(t)
	run := &hopRun{topic: c.Name("orders"), group: c.Name("g"),
		handlerSpans: map[string]trace.SpanContext{}, handlerBag: map[string]string{}, records: map[string][]*kgo.Record{}}
	c.CreateTopic(run.topic, 1)

	sr := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(sr), sdktrace.WithSampler(sdktrace.AlwaysSample()))
	t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	prop := propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{})
	tr := kretryotel.New(append([]kretryotel.Opt{kretryotel.TracerProvider(tp), kretryotel.Propagator(prop)}, opts...)...)

	var mu sync.Mutex
	seen := func(ctx context.Context, role strategy.TopicRole, attempt int32) {
		mu.Lock()
		defer mu.Unlock()
		k := fmt.Sprintf("%s/%d", role, attempt)
		run.handlerSpans[k] = trace.SpanFromContext(ctx).SpanContext()
		run.handlerBag[k] = baggage.FromContext(ctx).Member("tenant").Value()
	}
	handler := listener.HandlerFunc(func(ctx context.Context, _ *kgo.Record) error {
		role, attempt := strategy.RoleMain, int32(1)
		if st, ok := retry.FromContext(ctx); ok {
			role, attempt = strategy.RoleTier, st.Attempt
		}
		seen(ctx, role, attempt)
		return fmt.Errorf("attempt %d: %w", attempt, errBoom)
	})
	dltCalled := make(chan struct{})
	var once sync.Once
	dltHandler := dlt.HandlerFunc(func(ctx context.Context, _ *kgo.Record, st retry.State) error {
		seen(ctx, strategy.RoleDLT, st.Attempt)
		once.Do(func() { close(dltCalled) })
		return nil
	})
	l, err := listener.New(c.Seeds, run.topic, handler, listener.Group(run.group),
		listener.Logger(slog.New(slog.DiscardHandler)), listener.FetchMaxWait(20*time.Millisecond),
		listener.Attempts(3), listener.Backoff(strategy.FixedBackoff(50*time.Millisecond)),
		listener.DLTHandler(dltHandler),
		listener.Tracing(tr), listener.ClientOpts(tr.ClientOpts()...))
	if err != nil {
		t.Fatal(err)
	}
	run.plan = l.Plan()

	// The upstream producer is traced too (its client has the same hooks,
	// which leave records without kretry headers alone), under a span
	// whose baggage every hop should keep.
	producer, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(c.Seeds...), kgo.ProducerLinger(0)}, tr.ClientOpts()...)...)
	if err != nil {
		t.Fatal(err)
	}
	defer producer.Close()
	member, _ := baggage.NewMember("tenant", "acme")
	bag, _ := baggage.New(member)
	ctx, cancel := context.WithTimeout(baggage.ContextWithBaggage(context.Background(), bag), waitFor)
	defer cancel()
	ctx, root := tp.Tracer("upstream").Start(ctx, "upstream")
	out := &kgo.Record{Topic: run.topic, Key: []byte("k"), Value: []byte("v"), Context: ctx}
	if err := producer.ProduceSync(ctx, out).FirstErr(); err != nil {
		t.Fatal(err)
	}
	root.End()
	run.upstream = trace.SpanContextFromContext(out.Context)

	runCtx, stop := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- l.Run(runCtx) }()
	select {
	case <-dltCalled:
	case err := <-done:
		stop()
		t.Fatalf("Run returned before the DLT handler was called: %v", err)
	case <-time.After(waitFor):
		stop()
		t.Fatal("the record did not reach the DLT handler")
	}
	kafkatest.Eventually(t, waitFor, func() bool {
		for _, s := range sr.Ended() {
			if s.Name() == run.plan.DLT+" process" {
				return true
			}
		}
		return false
	}, "the DLT delivery's process span ended")
	stop()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Run: %v", err)
		}
	case <-time.After(waitFor):
		t.Fatal("Run did not return after its context was canceled")
	}
	run.spans = sr.Ended()
	for _, topic := range []string{run.plan.Tiers[0].Topic, run.plan.DLT} {
		run.records[topic] = c.ReadAll(topic)
	}
	return run
}

// process returns the process spans by "role/attempt".
func (r *hopRun) process(t *testing.T) map[string]sdktrace.ReadOnlySpan {
	t.Helper()
	out := map[string]sdktrace.ReadOnlySpan{}
	for _, s := range r.spans {
		if s.InstrumentationScope().Name != kretryotel.ScopeName {
			continue
		}
		attrs := attrMap(s.Attributes())
		k := fmt.Sprintf("%s/%d", attrs[kretryotel.RoleKey].AsString(), attrs[kretryotel.AttemptKey].AsInt64())
		if _, dup := out[k]; dup {
			t.Errorf("two process spans for delivery %s", k)
		}
		out[k] = s
	}
	return out
}

// kotelSpan returns the kotel span named name whose parent is parent.
func (r *hopRun) kotelSpan(t *testing.T, name string, parent trace.SpanContext) sdktrace.ReadOnlySpan {
	t.Helper()
	var found []sdktrace.ReadOnlySpan
	for _, s := range r.spans {
		if s.InstrumentationScope().Name == kotelScope && s.Name() == name && sameSpan(s.Parent(), parent) {
			found = append(found, s)
		}
	}
	if len(found) != 1 {
		t.Fatalf("%d kotel spans %q with parent %s, want 1", len(found), name, parent.SpanID())
	}
	return found[0]
}

// receiveOf returns the span recorded as the parent of s, or nil when s
// has no parent or its parent was not recorded (a remote one).
func (r *hopRun) parentOf(s sdktrace.ReadOnlySpan) sdktrace.ReadOnlySpan {
	for _, o := range r.spans {
		if sameSpan(o.SpanContext(), s.Parent()) {
			return o
		}
	}
	return nil
}

// checkParent checks that process span s of a record published by pub
// continues the record's trace: its parent is kotel's receive span, itself
// the child of pub (or, with LinkSpans, a new root linked to pub). When the
// listener did not keep the receive span in the record's Context — it
// drops it from records it copies while a tier partition waits for a due
// time — the process span is instead pub's child, or with LinkSpans a new
// root: the Tracer continues from the record's headers as kotel would.
func (r *hopRun) checkParent(t *testing.T, s sdktrace.ReadOnlySpan, pub trace.SpanContext, newRoots bool) {
	t.Helper()
	recv := r.parentOf(s)
	switch {
	case recv != nil && recv.InstrumentationScope().Name == kotelScope &&
		recv.Name() == strings.TrimSuffix(s.Name(), " process")+" receive":
		if newRoots {
			if recv.Parent().IsValid() || len(recv.Links()) != 1 || !sameSpan(recv.Links()[0].SpanContext, pub) {
				t.Errorf("%q: receive span parent %v links %v, want a new root linked to %s", s.Name(), recv.Parent(), recv.Links(), pub.SpanID())
			}
		} else if !sameSpan(recv.Parent(), pub) {
			t.Errorf("%q: receive span's parent %s, want the publish span %s", s.Name(), recv.Parent().SpanID(), pub.SpanID())
		}
	case !newRoots && sameSpan(s.Parent(), pub):
		t.Logf("%q had no receive span in its record's Context; its parent is the publish span from the headers", s.Name())
	case newRoots && !s.Parent().IsValid():
		t.Logf("%q had no receive span in its record's Context; it is a new root", s.Name())
	default:
		name := "(not recorded)"
		if recv != nil {
			name = recv.Name()
		}
		t.Errorf("%q: parent %s %s; want kotel's receive span, or the publish span %s (LinkSpans: %v)",
			s.Name(), s.Parent().SpanID(), name, pub.SpanID(), newRoots)
	}
}

func attrMap(kvs []attribute.KeyValue) map[attribute.Key]attribute.Value {
	m := make(map[attribute.Key]attribute.Value, len(kvs))
	for _, kv := range kvs {
		m[kv.Key] = kv.Value
	}
	return m
}

// sameSpan compares span identities, ignoring the remote flag (a context
// read from headers is remote; the recorded span is not).
func sameSpan(a, b trace.SpanContext) bool {
	return a.IsValid() && a.TraceID() == b.TraceID() && a.SpanID() == b.SpanID()
}

// links returns s's links by their kretry.link value.
func links(t *testing.T, s sdktrace.ReadOnlySpan) map[string]trace.SpanContext {
	t.Helper()
	out := map[string]trace.SpanContext{}
	for _, l := range s.Links() {
		kind := attrMap(l.Attributes)[kretryotel.LinkKey].AsString()
		if _, dup := out[kind]; dup {
			t.Errorf("%q has two %q links", s.Name(), kind)
		}
		out[kind] = l.SpanContext
	}
	return out
}

// linkString shows links by kind and span ID.
func linkString(ls map[string]trace.SpanContext) string {
	out := make([]string, 0, len(ls))
	for kind, sc := range ls {
		out = append(out, kind+"="+sc.SpanID().String())
	}
	slices.Sort(out)
	return "[" + strings.Join(out, " ") + "]"
}

func traceparentOf(sc trace.SpanContext) string {
	return fmt.Sprintf("00-%s-%s-%s", sc.TraceID(), sc.SpanID(), sc.TraceFlags())
}

// headerValues returns the values of every header key of rec.
func headerValues(rec *kgo.Record, key string) []string {
	var out []string
	for _, h := range rec.Headers {
		if h.Key == key {
			out = append(out, string(h.Value))
		}
	}
	return out
}

// One process span per delivery, with its attributes, outcome and status;
// each publish span a child of the process span that caused it; each later
// process span linked to the previous hop's publish span and to the
// original main-topic process span; the handler's context carrying the
// process span; and exactly one trace header of each kind on the records.
func TestSpansAcrossHops(t *testing.T) {
	for _, tc := range []struct {
		name string
		opts []kretryotel.Opt
	}{
		{"parent-chain", nil},
		{"link-spans", []kretryotel.Opt{kretryotel.LinkSpans()}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			run := runHops(t, tc.opts...)
			checkHops(t, run, tc.opts != nil)
		})
	}
}

func checkHops(t *testing.T, run *hopRun, newRoots bool) {
	tier, dltTopic := run.plan.Tiers[0].Topic, run.plan.DLT
	ps := run.process(t)
	type want struct {
		key, topic, outcome, target, reason string
		failed                              bool
	}
	wants := []want{
		{"main/1", run.topic, "retried", tier, "", true},
		{"tier/2", tier, "retried", tier, "", true},
		{"tier/3", tier, "dead-lettered", dltTopic, listener.ReasonExhausted, true},
		{"dlt/3", dltTopic, "handled", "", "", false},
	}
	if len(ps) != len(wants) {
		keys := make([]string, 0, len(ps))
		for k := range ps {
			keys = append(keys, k)
		}
		t.Fatalf("process spans for deliveries %v, want main/1, tier/2, tier/3 and dlt/3", keys)
	}
	for _, w := range wants {
		s, ok := ps[w.key]
		if !ok {
			t.Fatalf("no process span for delivery %s", w.key)
		}
		a := attrMap(s.Attributes())
		check := func(k attribute.Key, want string) {
			t.Helper()
			v, ok := a[k]
			switch {
			case want == "" && ok:
				t.Errorf("%s: %s = %q, want it absent", w.key, k, v.String())
			case want != "" && v.String() != want:
				t.Errorf("%s: %s = %q (set: %v), want %q", w.key, k, v.String(), ok, want)
			}
		}
		if s.Name() != w.topic+" process" || s.SpanKind() != trace.SpanKindConsumer {
			t.Errorf("%s: span %q of kind %v, want %q, consumer", w.key, s.Name(), s.SpanKind(), w.topic+" process")
		}
		check("messaging.system", "kafka")
		check("messaging.operation", "process")
		check("messaging.source.name", w.topic)
		check("messaging.kafka.message.key", "k")
		check(kretryotel.GroupKey, run.group)
		check(kretryotel.OutcomeKey, w.outcome)
		check(kretryotel.TargetKey, w.target)
		check(kretryotel.ReasonKey, w.reason)
		if _, due := a[kretryotel.DueKey]; due != strings.HasPrefix(w.key, "tier/") {
			t.Errorf("%s: has %s: %v, want it on tier deliveries only", w.key, kretryotel.DueKey, due)
		}
		st := s.Status()
		if w.failed {
			attempt := strings.TrimPrefix(strings.TrimPrefix(w.key, "main/"), "tier/")
			if st.Code != codes.Error || st.Description != "attempt "+attempt+": boom" {
				t.Errorf("%s: status %+v, want Error with the handler's error", w.key, st)
			}
			if ev := s.Events(); len(ev) != 1 || ev[0].Name != "exception" {
				t.Errorf("%s: events %+v, want the error recorded as an exception event", w.key, ev)
			}
		} else if st.Code != codes.Unset || len(s.Events()) != 0 {
			t.Errorf("%s: status %+v, events %v; want unset and none", w.key, st, s.Events())
		}
		if got := run.handlerSpans[w.key]; !sameSpan(got, s.SpanContext()) {
			t.Errorf("%s: the handler's context carried span %s, want the process span %s", w.key, got.SpanID(), s.SpanContext().SpanID())
		}
		if got := run.handlerBag[w.key]; got != "acme" {
			t.Errorf("%s: the handler's baggage has tenant=%q, want the upstream's \"acme\"", w.key, got)
		}
	}

	main := ps["main/1"].SpanContext()
	// Each forward is published under the process span that failed, and
	// the next delivery links to that publish span and to the original.
	hops := []struct{ from, to, topic string }{
		{"main/1", "tier/2", tier},
		{"tier/2", "tier/3", tier},
		{"tier/3", "dlt/3", dltTopic},
	}
	published := map[string]string{} // traceparent of each publish span → its hop
	for _, h := range hops {
		pub := run.kotelSpan(t, h.topic+" publish", ps[h.from].SpanContext())
		if pub.SpanKind() != trace.SpanKindProducer {
			t.Errorf("publish span of %s → %s is of kind %v", h.from, h.to, pub.SpanKind())
		}
		published[traceparentOf(pub.SpanContext())] = h.from + " → " + h.to
		next := ps[h.to]
		ls := links(t, next)
		if len(ls) != 2 || !sameSpan(ls[kretryotel.LinkPreviousHop], pub.SpanContext()) || !sameSpan(ls[kretryotel.LinkOrigin], main) {
			t.Errorf("%s links %s, want previous-hop %s (the publish span of %s) and origin %s (main/1)",
				h.to, linkString(ls), pub.SpanContext().SpanID(), h.from, main.SpanID())
		}
		run.checkParent(t, next, pub.SpanContext(), newRoots)
		if inMain := next.SpanContext().TraceID() == main.TraceID(); inMain == newRoots {
			t.Errorf("%s is in trace %s, the original is %s; want a new trace only with LinkSpans (%v)",
				h.to, next.SpanContext().TraceID(), main.TraceID(), newRoots)
		}
	}
	// The main delivery links to the upstream producer, and nothing else.
	if ls := links(t, ps["main/1"]); len(ls) != 1 || !sameSpan(ls[kretryotel.LinkPreviousHop], run.upstream) {
		t.Errorf("main/1 links %s, want only previous-hop %s (the upstream publish span)", linkString(ls), run.upstream.SpanID())
	}
	run.checkParent(t, ps["main/1"], run.upstream, newRoots)
	if inUpstream := main.TraceID() == run.upstream.TraceID(); inUpstream == newRoots {
		t.Errorf("main/1 is in trace %s, the upstream's is %s; want a new trace only with LinkSpans (%v)",
			main.TraceID(), run.upstream.TraceID(), newRoots)
	}

	// The records as they are in Kafka: one traceparent each, the publish
	// span's; one origin header, the main process span's; one baggage.
	for topic, n := range map[string]int{tier: 2, dltTopic: 1} {
		recs := run.records[topic]
		if len(recs) != n {
			t.Fatalf("%s holds %d records, want %d", topic, len(recs), n)
		}
		for _, rec := range recs {
			tp := headerValues(rec, "traceparent")
			if len(tp) != 1 || published[tp[0]] == "" {
				t.Errorf("%s@%d: traceparent headers %q, want one, a publish span's (%v)", topic, rec.Offset, tp, published)
			}
			if o := headerValues(rec, originHeader); len(o) != 1 || o[0] != traceparentOf(main) {
				t.Errorf("%s@%d: %s headers %q, want one, %q", topic, rec.Offset, originHeader, o, traceparentOf(main))
			}
			if b := headerValues(rec, "baggage"); len(b) != 1 || b[0] != "tenant=acme" {
				t.Errorf("%s@%d: baggage headers %q, want one, tenant=acme", topic, rec.Offset, b)
			}
		}
	}
}
