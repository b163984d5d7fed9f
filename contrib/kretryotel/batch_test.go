package kretryotel_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"

	"github.com/kretry/kretry/contrib/kretryotel"
	"github.com/kretry/kretry/listener"
	"github.com/kretry/kretry/strategy"
)

// link is a span link as the tests compare it: its kind and span.
type link struct {
	kind string
	span trace.SpanContext
}

// batchLinks returns s's links in order.
func batchLinks(s sdktrace.ReadOnlySpan) []link {
	out := make([]link, 0, len(s.Links()))
	for _, l := range s.Links() {
		out = append(out, link{attrMap(l.Attributes)[kretryotel.LinkKey].AsString(), l.SpanContext})
	}
	return out
}

func sameLinks(got, want []link) bool {
	return slices.EqualFunc(got, want, func(a, b link) bool { return a.kind == b.kind && sameSpan(a.span, b.span) })
}

func showLinks(ls []link) string {
	out := make([]string, len(ls))
	for i, l := range ls {
		out[i] = l.kind + "=" + l.span.SpanID().String()
	}
	return "[" + strings.Join(out, " ") + "]"
}

// tracedRecord returns a record of topic at offset, carrying the trace
// headers of prev and origin when they are valid.
func tracedRecord(topic string, offset int64, prev, origin trace.SpanContext) *kgo.Record {
	rec := &kgo.Record{Topic: topic, Partition: 3, Offset: offset, Key: []byte("k")}
	if prev.IsValid() {
		rec.Headers = append(rec.Headers, kgo.RecordHeader{Key: "traceparent", Value: []byte(traceparentOf(prev))})
	}
	if origin.IsValid() {
		rec.Headers = append(rec.Headers, kgo.RecordHeader{Key: originHeader, Value: []byte(traceparentOf(origin))})
	}
	return rec
}

// deliveries returns the deliveries of a batch in role with the attempts
// given.
func deliveries(role strategy.TopicRole, attempts ...int32) []listener.Delivery {
	ds := make([]listener.Delivery, len(attempts))
	for i, a := range attempts {
		ds[i] = listener.Delivery{Group: "g", Role: role, Attempt: a}
	}
	return ds
}

// A main-topic batch gets one process span: a new root, not a child of a
// span the listener's context carries, with the batch's attributes and
// none of a single record's, linked once to each distinct previous hop
// and never to an origin; the handler's context carries it.
func TestStartBatchMain(t *testing.T) {
	tr, sr := recorded(t)
	p1, p2, stale := spanContext(0x10, 0x20, true), spanContext(0x30, 0x40, false), spanContext(0x50, 0x60, true)
	recs := []*kgo.Record{
		tracedRecord("orders", 10, p1, trace.SpanContext{}),
		tracedRecord("orders", 11, p1, trace.SpanContext{}), // published under the same span
		tracedRecord("orders", 12, p2, stale),               // an origin header on the main topic is not followed
		tracedRecord("orders", 13, trace.SpanContext{}, trace.SpanContext{}),
	}
	outer := trace.ContextWithSpanContext(context.Background(), spanContext(1, 1, true))
	ctx, record, finish := tr.StartBatch(outer, recs, deliveries(strategy.RoleMain, 1, 1, 1, 1))
	if ctx == nil || record == nil || finish == nil {
		t.Fatal("StartBatch returned a nil context, record or finish")
	}
	if n := len(sr.Ended()); n != 0 {
		t.Fatalf("%d spans ended before finish", n)
	}
	finish(slices.Repeat([]listener.Outcome{{Kind: listener.EventHandled}}, 4))
	s := only(t, sr)
	if got := trace.SpanFromContext(ctx).SpanContext(); !got.Equal(s.SpanContext()) {
		t.Errorf("the context carries span %v, want the batch's %v", got, s.SpanContext())
	}
	if s.Parent().IsValid() {
		t.Errorf("parent %v, want a new root", s.Parent())
	}
	if s.Name() != "orders process" || s.SpanKind() != trace.SpanKindConsumer || s.Status().Code != codes.Unset || len(s.Events()) != 0 {
		t.Errorf("span %q kind %v status %v events %v", s.Name(), s.SpanKind(), s.Status(), s.Events())
	}
	want := []link{{kretryotel.LinkPreviousHop, p1}, {kretryotel.LinkPreviousHop, p2}}
	if got := batchLinks(s); !sameLinks(got, want) {
		t.Errorf("links %s, want %s", showLinks(got), showLinks(want))
	}
	a := attrMap(s.Attributes())
	for k, want := range map[attribute.Key]string{
		"messaging.system":                 "kafka",
		"messaging.operation":              "process",
		"messaging.source.name":            "orders",
		"messaging.source.kind":            "topic",
		"messaging.batch.message_count":    "4",
		"messaging.kafka.source.partition": "3",
		"messaging.kafka.consumer.group":   "g",
		kretryotel.GroupKey:                "g",
		kretryotel.RoleKey:                 "main",
		kretryotel.AttemptMinKey:           "1",
		kretryotel.AttemptMaxKey:           "1",
		kretryotel.FirstOffsetKey:          "10",
		kretryotel.LastOffsetKey:           "13",
		kretryotel.HandledCountKey:         "4",
	} {
		if got := a[k].String(); got != want {
			t.Errorf("%s = %q, want %q", k, got, want)
		}
	}
	for _, k := range []attribute.Key{kretryotel.AttemptKey, kretryotel.OutcomeKey, kretryotel.LinksDroppedKey,
		kretryotel.RetriedCountKey, kretryotel.AbandonedCountKey, "messaging.kafka.message.offset", "messaging.kafka.message.key"} {
		if v, ok := a[k]; ok {
			t.Errorf("%s = %q is set on a batch's span", k, v.String())
		}
	}
}

// On a retry tier the batch's span also links to each record's origin;
// records that share an origin (failed in one main-topic batch) or a
// previous hop give one link, and a record's origin that is its previous
// hop gives none more. The sampler sees the links.
func TestStartBatchTierLinks(t *testing.T) {
	var sampled [][]trace.Link
	sr := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(sr), sdktrace.WithSampler(samplerFunc(func(p sdktrace.SamplingParameters) {
		sampled = append(sampled, p.Links)
	})))
	t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	tr := kretryotel.New(kretryotel.TracerProvider(tp), kretryotel.Propagator(propagation.TraceContext{}))

	a, b, c := spanContext(0x10, 0x11, true), spanContext(0x20, 0x21, true), spanContext(0x30, 0x31, false)
	o1, o2 := spanContext(0x40, 0x41, true), spanContext(0x50, 0x51, true)
	recs := []*kgo.Record{
		tracedRecord("orders-retry", 5, a, o1),
		tracedRecord("orders-retry", 6, b, o1),
		tracedRecord("orders-retry", 7, c, c),
		tracedRecord("orders-retry", 8, a, o2),
		tracedRecord("orders-retry", 9, trace.SpanContext{}, trace.SpanContext{}),
	}
	_, _, finish := tr.StartBatch(context.Background(), recs, deliveries(strategy.RoleTier, 3, 2, 4, 2, 2))
	finish(slices.Repeat([]listener.Outcome{{Kind: listener.EventHandled}}, 5))
	s := only(t, sr)
	want := []link{
		{kretryotel.LinkPreviousHop, a}, {kretryotel.LinkOrigin, o1},
		{kretryotel.LinkPreviousHop, b},
		{kretryotel.LinkPreviousHop, c},
		{kretryotel.LinkOrigin, o2},
	}
	if got := batchLinks(s); !sameLinks(got, want) {
		t.Errorf("links %s, want %s", showLinks(got), showLinks(want))
	}
	if len(sampled) != 1 || len(sampled[0]) != len(want) {
		t.Errorf("the sampler saw %d spans, links %v; want 1 span with %d links", len(sampled), sampled, len(want))
	}
	attrs := attrMap(s.Attributes())
	if lo, hi := attrs[kretryotel.AttemptMinKey].AsInt64(), attrs[kretryotel.AttemptMaxKey].AsInt64(); lo != 2 || hi != 4 {
		t.Errorf("attempts %d..%d, want 2..4", lo, hi)
	}
	if got := attrs[kretryotel.RoleKey].AsString(); got != "tier" {
		t.Errorf("role %q, want tier", got)
	}
}

// samplerFunc samples every span and calls f with its parameters.
type samplerFunc func(sdktrace.SamplingParameters)

func (f samplerFunc) ShouldSample(p sdktrace.SamplingParameters) sdktrace.SamplingResult {
	f(p)
	return sdktrace.AlwaysSample().ShouldSample(p)
}

func (samplerFunc) Description() string { return "samplerFunc" }

// Links stop at the limit, in record order, and the distinct spans left
// out are counted.
func TestStartBatchLinkLimit(t *testing.T) {
	for _, tc := range []struct {
		name    string
		opts    []kretryotel.Opt
		records int
		links   int
	}{
		{"default", nil, 100, kretryotel.DefaultBatchLinkLimit},
		{"three", []kretryotel.Opt{kretryotel.BatchLinkLimit(3)}, 2, 3},
		{"zero is the default", []kretryotel.Opt{kretryotel.BatchLinkLimit(0)}, 70, kretryotel.DefaultBatchLinkLimit},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tr, sr := recorded(t, tc.opts...)
			recs := make([]*kgo.Record, tc.records)
			var all []link
			for i := range recs {
				prev, origin := spanContext(byte(i), 1, true), spanContext(byte(i), 2, true)
				recs[i] = tracedRecord("orders-retry", int64(i), prev, origin)
				all = append(all, link{kretryotel.LinkPreviousHop, prev}, link{kretryotel.LinkOrigin, origin})
			}
			_, _, finish := tr.StartBatch(context.Background(), recs, deliveries(strategy.RoleTier, slices.Repeat([]int32{2}, tc.records)...))
			finish(nil)
			s := only(t, sr)
			if got := batchLinks(s); !sameLinks(got, all[:tc.links]) {
				t.Errorf("links %s, want the first %d of %s", showLinks(got), tc.links, showLinks(all))
			}
			if got := attrMap(s.Attributes())[kretryotel.LinksDroppedKey].AsInt64(); got != int64(len(all)-tc.links) {
				t.Errorf("%s = %d, want %d", kretryotel.LinksDroppedKey, got, len(all)-tc.links)
			}
			if s.DroppedLinks() != 0 {
				t.Errorf("the SDK dropped %d links", s.DroppedLinks())
			}
		})
	}
}

// finish counts the records by outcome, and a batch with failures gets an
// Error status and one exception event per distinct error, at its first
// record's offset.
func TestFinishBatch(t *testing.T) {
	errA, errB := errors.New("stock service down"), errors.New("no such product")
	many := make([]listener.Outcome, 12)
	for i := range many {
		many[i] = listener.Outcome{Kind: listener.EventRetried, Err: fmt.Errorf("error %d", i)}
	}
	for _, tc := range []struct {
		name    string
		outs    []listener.Outcome
		counts  map[attribute.Key]int64
		status  string           // "" for Unset
		events  map[string]int64 // exception message → offset
		nEvents int              // events expected, when events is nil
	}{
		{"handled", slices.Repeat([]listener.Outcome{{Kind: listener.EventHandled}}, 3),
			map[attribute.Key]int64{kretryotel.HandledCountKey: 3}, "", map[string]int64{}, 0},
		{"mixed", []listener.Outcome{
			{Kind: listener.EventHandled},
			{Kind: listener.EventRetried, Err: errA, Target: "orders-retry"},
			{Kind: listener.EventRetried, Err: errA, Target: "orders-retry"},
			{Kind: listener.EventDeadLettered, Err: errB, Target: "orders-dlt", Reason: "permanent"},
			{Kind: listener.EventDropped, Err: errB, Reason: "permanent"},
			{},
		}, map[attribute.Key]int64{kretryotel.HandledCountKey: 1, kretryotel.RetriedCountKey: 2, kretryotel.DeadLetteredCountKey: 1,
			kretryotel.DroppedCountKey: 1, kretryotel.AbandonedCountKey: 1},
			"4 of 6 records failed; first: stock service down", map[string]int64{errA.Error(): 101, errB.Error(): 103}, 0},
		{"other kind", []listener.Outcome{{Kind: listener.EventDLTHandlerFailed, Err: errA}},
			map[attribute.Key]int64{"kretry.batch.dlt_handler_failed": 1}, "1 of 1 records failed; first: stock service down",
			map[string]int64{errA.Error(): 100}, 0},
		{"many errors", many, map[attribute.Key]int64{kretryotel.RetriedCountKey: 12}, "12 of 12 records failed; first: error 0", nil, 8},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tr, sr := recorded(t)
			recs := make([]*kgo.Record, len(tc.outs))
			for i := range recs {
				recs[i] = &kgo.Record{Topic: "orders", Offset: 100 + int64(i)}
			}
			_, _, finish := tr.StartBatch(context.Background(), recs, deliveries(strategy.RoleMain, slices.Repeat([]int32{1}, len(recs))...))
			finish(tc.outs)
			s := only(t, sr)
			got := map[attribute.Key]int64{}
			for _, kv := range s.Attributes() {
				if strings.HasPrefix(string(kv.Key), "kretry.batch.") {
					got[kv.Key] = kv.Value.AsInt64()
				}
			}
			if !mapsEqual(got, tc.counts) {
				t.Errorf("counts %v, want %v", got, tc.counts)
			}
			if st := s.Status(); (tc.status == "") != (st.Code == codes.Unset) || st.Description != tc.status {
				t.Errorf("status %+v, want %q", st, tc.status)
			}
			ev := s.Events()
			if tc.events == nil {
				if len(ev) != tc.nEvents {
					t.Errorf("%d events, want %d", len(ev), tc.nEvents)
				}
				return
			}
			evs := map[string]int64{}
			for _, e := range ev {
				a := attrMap(e.Attributes)
				if e.Name != "exception" {
					t.Errorf("event %q", e.Name)
				}
				evs[a["exception.message"].AsString()] = a["messaging.kafka.message.offset"].AsInt64()
			}
			if len(ev) != len(tc.events) || !mapsEqual(evs, tc.events) {
				t.Errorf("exception events %v, want %v", evs, tc.events)
			}
		})
	}
}

func mapsEqual[K comparable](a, b map[K]int64) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

// countingPropagator counts the headers read through it.
type countingPropagator struct {
	propagation.TextMapPropagator
	extracts int
}

func (p *countingPropagator) Extract(ctx context.Context, c propagation.TextMapCarrier) context.Context {
	p.extracts++
	return p.TextMapPropagator.Extract(ctx, c)
}

// With a no-op provider a batch reads no record's headers and costs the
// same whatever its size; with a provider that samples nothing it still
// reads each record's, for the links a sampler may decide on.
func TestStartBatchNoopProvider(t *testing.T) {
	never := sdktrace.NewTracerProvider(sdktrace.WithSampler(sdktrace.NeverSample()))
	t.Cleanup(func() { _ = never.Shutdown(context.Background()) })
	batchOf := func(n int) []*kgo.Record {
		recs := make([]*kgo.Record, n)
		for i := range recs {
			recs[i] = tracedRecord("orders-retry", int64(i), spanContext(1, byte(i), true), spanContext(2, byte(i), true))
		}
		return recs
	}
	outer := trace.ContextWithSpanContext(context.Background(), spanContext(9, 9, true))
	for _, tc := range []struct {
		name     string
		tp       trace.TracerProvider
		extracts int
	}{{"noop", noop.NewTracerProvider(), 0}, {"never-sample", never, 100}} {
		t.Run(tc.name, func(t *testing.T) {
			prop := &countingPropagator{TextMapPropagator: propagation.TraceContext{}}
			tr := kretryotel.New(kretryotel.TracerProvider(tc.tp), kretryotel.Propagator(prop))
			recs := batchOf(100)
			ctx, record, finish := tr.StartBatch(outer, recs, deliveries(strategy.RoleTier, slices.Repeat([]int32{2}, 100)...))
			if prop.extracts != tc.extracts {
				t.Errorf("%d headers read, want %d", prop.extracts, tc.extracts)
			}
			if sc := trace.SpanContextFromContext(ctx); sc.Equal(trace.SpanContextFromContext(outer)) {
				t.Error("the batch's context carries the listener context's span")
			}
			if record(7) == nil || record(100) != nil || record(-1) != nil {
				t.Error("record: want a context for each record of the batch, and nil out of range")
			}
			finish(slices.Repeat([]listener.Outcome{{Kind: listener.EventRetried, Err: errBoom}}, 100))
		})
	}
	tr := kretryotel.New(kretryotel.TracerProvider(noop.NewTracerProvider()), kretryotel.Propagator(propagation.TraceContext{}))
	allocs := func(recs []*kgo.Record) float64 {
		ds := deliveries(strategy.RoleTier, slices.Repeat([]int32{2}, len(recs))...)
		return testing.AllocsPerRun(50, func() {
			_, _, finish := tr.StartBatch(context.Background(), recs, ds)
			finish(nil)
		})
	}
	if one, hundred := allocs(batchOf(1)), allocs(batchOf(100)); hundred != one {
		t.Errorf("a no-op batch of 100 allocates %v times, of 1 %v times; want the same", hundred, one)
	}
}

// An empty batch starts no span and breaks nothing.
func TestStartBatchEmpty(t *testing.T) {
	tr, sr := recorded(t)
	ctx, record, finish := tr.StartBatch(context.Background(), nil, nil)
	finish(nil)
	if ctx == nil || record(0) != nil || len(sr.Ended()) != 0 {
		t.Errorf("context %v, record(0) %v, %d spans; want a context, nil and none", ctx, record(0), len(sr.Ended()))
	}
}
