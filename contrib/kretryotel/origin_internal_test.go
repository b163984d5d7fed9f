package kretryotel

import (
	"context"
	"slices"
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"
	"go.opentelemetry.io/otel/baggage"
	"go.opentelemetry.io/otel/propagation"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"

	"github.com/kretry/kretry/listener"
	"github.com/kretry/kretry/retry"
	"github.com/kretry/kretry/strategy"
)

func testSpanContext(b byte, flags trace.TraceFlags) trace.SpanContext {
	var tid trace.TraceID
	var sid trace.SpanID
	for i := range tid {
		tid[i] = b + byte(i)
	}
	for i := range sid {
		sid[i] = b + 0x80 + byte(i)
	}
	return trace.NewSpanContext(trace.SpanContextConfig{TraceID: tid, SpanID: sid, TraceFlags: flags, Remote: true})
}

// The origin header is a W3C traceparent that reads back as it was
// written; malformed values read as no origin.
func TestTraceparentRoundTrip(t *testing.T) {
	for _, flags := range []trace.TraceFlags{0, trace.FlagsSampled, trace.FlagsRandom, 0xff} {
		sc := testSpanContext(1, flags)
		enc := encodeTraceparent(sc)
		kept := flags & (trace.FlagsSampled | trace.FlagsRandom) // the flags W3C defines
		want := "00-" + sc.TraceID().String() + "-" + sc.SpanID().String() + "-0" + string("0123"[kept])
		if string(enc) != want {
			t.Errorf("flags %v: encoded %q, want %q", flags, enc, want)
		}
		got := originOf([]kgo.RecordHeader{{Key: "other", Value: []byte("x")}, {Key: originHeader, Value: enc}})
		if !got.Equal(sc.WithTraceFlags(kept)) {
			t.Errorf("flags %v: decoded %v, want %v", flags, got, sc)
		}
	}
	for _, bad := range []string{"", "garbage", "00-" + string(make([]byte, 52)),
		"00-00000000000000000000000000000000-0102030405060708-01",  // zero trace id
		"ff-0102030405060708090a0b0c0d0e0f10-0102030405060708-01",  // invalid version
		"01-0102030405060708090a0b0c0d0e0f10-0102030405060708-01",  // a version kretry does not write
		"00-0102030405060708090A0B0C0D0E0F10-0102030405060708-01",  // upper case
		"00-0102030405060708090a0b0c0d0e0f10-0000000000000000-01",  // zero span id
		"00-0102030405060708090a0b0c0d0e0f10-0102030405060708-04",  // reserved flag
		"00-0102030405060708090a0b0c0d0e0f10-0102030405060708-01-", // too long
	} {
		if sc := originOf([]kgo.RecordHeader{{Key: originHeader, Value: []byte(bad)}}); sc.IsValid() {
			t.Errorf("%q decoded as %v", bad, sc)
		}
	}
	if sc := originOf(nil); sc.IsValid() {
		t.Errorf("no headers decoded as %v", sc)
	}
}

// The hook gives a retry record exactly one origin header and none of the
// propagator's headers it copied from its source (kotel writes those
// next), keeps the other headers in order, and leaves the old slice alone.
func TestOriginHook(t *testing.T) {
	prop := propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{})
	h := &originHook{propagator: prop}
	origin := testSpanContext(7, trace.FlagsSampled)
	ctx := context.WithValue(context.Background(), hopKey{}, &hop{origin: origin})
	attempt := kgo.RecordHeader{Key: retry.HeaderAttempt, Value: []byte{0, 0, 0, 2}}
	in := []kgo.RecordHeader{
		{Key: "user-a", Value: []byte("1")},
		{Key: "traceparent", Value: []byte("00-stale")},
		{Key: originHeader, Value: []byte("stale-1")},
		{Key: "tracestate", Value: []byte("k=v")},
		{Key: "user-b", Value: []byte("2")},
		{Key: "baggage", Value: []byte("tenant=acme")},
		{Key: originHeader, Value: []byte("stale-2")},
		attempt,
	}
	before := slices.Clone(in)
	r := &kgo.Record{Topic: "orders-retry", Headers: in, Context: ctx}
	h.OnProduceRecordBuffered(r)
	want := []kgo.RecordHeader{in[0], in[4], attempt, {Key: originHeader, Value: encodeTraceparent(origin)}}
	if !slices.EqualFunc(r.Headers, want, headerEqual) {
		t.Errorf("headers %q, want %q", r.Headers, want)
	}
	if !slices.EqualFunc(in, before, headerEqual) {
		t.Errorf("the old headers slice changed: %q, was %q", in, before)
	}

	// Unknown origin: stale copies go, nothing is written.
	r = &kgo.Record{Headers: slices.Clone(before), Context: context.WithValue(context.Background(), hopKey{}, &hop{})}
	h.OnProduceRecordBuffered(r)
	if want := []kgo.RecordHeader{in[0], in[4], attempt}; !slices.EqualFunc(r.Headers, want, headerEqual) {
		t.Errorf("without an origin: headers %q, want %q", r.Headers, want)
	}

	// Records the hook leaves alone.
	for name, r := range map[string]*kgo.Record{
		"no context":        {Headers: slices.Clone(before)},
		"not a delivery's":  {Headers: slices.Clone(before), Context: context.Background()},
		"no kretry headers": {Headers: slices.Clone(before[:7]), Context: ctx},
		"no headers at all": {Context: ctx},
	} {
		old := slices.Clone(r.Headers)
		h.OnProduceRecordBuffered(r)
		if !slices.EqualFunc(r.Headers, old, headerEqual) {
			t.Errorf("%s: headers changed to %q", name, r.Headers)
		}
	}
}

func headerEqual(a, b kgo.RecordHeader) bool {
	return a.Key == b.Key && string(a.Value) == string(b.Value)
}

// The delivery context tells the hook the origin: the process span itself
// on the main topic, the header's on a tier, none when unknown or when the
// provider makes no spans.
func TestDeliveryOrigin(t *testing.T) {
	headerOrigin := testSpanContext(9, trace.FlagsSampled)
	withOrigin := []kgo.RecordHeader{{Key: originHeader, Value: encodeTraceparent(headerOrigin)}}
	prev := testSpanContext(3, trace.FlagsSampled)
	withPrev := []kgo.RecordHeader{{Key: "traceparent", Value: encodeTraceparent(prev)}}
	tp := sdktrace.NewTracerProvider()
	t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	sdkTracer := New(TracerProvider(tp), Propagator(propagation.TraceContext{}))
	noopTracer := New(TracerProvider(noop.NewTracerProvider()), Propagator(propagation.TraceContext{}))
	bag, _ := baggage.Parse("tenant=acme")
	recvCtx := baggage.ContextWithBaggage(trace.ContextWithSpanContext(context.Background(), prev), bag)
	for _, tc := range []struct {
		name    string
		tracer  *Tracer
		rec     *kgo.Record
		role    strategy.TopicRole
		want    func(span trace.SpanContext) trace.SpanContext
		wantBag string
	}{
		{"main", sdkTracer, &kgo.Record{Headers: withOrigin}, strategy.RoleMain, func(s trace.SpanContext) trace.SpanContext { return s }, ""},
		{"tier", sdkTracer, &kgo.Record{Headers: withOrigin}, strategy.RoleTier, func(trace.SpanContext) trace.SpanContext { return headerOrigin }, ""},
		{"tier without origin", sdkTracer, &kgo.Record{Headers: withPrev}, strategy.RoleTier, func(trace.SpanContext) trace.SpanContext { return trace.SpanContext{} }, ""},
		{"noop main", noopTracer, &kgo.Record{Headers: withPrev}, strategy.RoleMain, func(trace.SpanContext) trace.SpanContext { return trace.SpanContext{} }, ""},
		{"noop main with receive", noopTracer, &kgo.Record{Context: recvCtx}, strategy.RoleMain, func(trace.SpanContext) trace.SpanContext { return trace.SpanContext{} }, "acme"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, finish := tc.tracer.StartDelivery(context.Background(), tc.rec, listener.Delivery{Role: tc.role, Attempt: 1})
			defer finish(listener.Outcome{Kind: listener.EventHandled})
			hp, ok := ctx.Value(hopKey{}).(*hop)
			if !ok {
				t.Fatal("the delivery's context carries no hop")
			}
			if tc.role == strategy.RoleMain && tc.tracer == sdkTracer && !hp.origin.IsValid() {
				t.Error("a main-topic delivery's process span is not the origin")
			}
			if want := tc.want(trace.SpanContextFromContext(ctx)); !hp.origin.Equal(want) {
				t.Errorf("origin %v, want %v", hp.origin, want)
			}
			if got := baggage.FromContext(ctx).Member("tenant").Value(); got != tc.wantBag {
				t.Errorf("baggage tenant=%q, want %q", got, tc.wantBag)
			}
		})
	}
}
