package kretryotel

import (
	"context"
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

// record(i) is the Context of the record published for a failed recs[i]:
// the batch's span, recs[i]'s own baggage, no cancellation, and recs[i]'s
// origin — the batch's span on the main topic, the record's header on a
// tier, none when unknown or when the provider makes no spans — which the
// origin hook writes into the forwarded record.
func TestBatchRecordContext(t *testing.T) {
	prop := propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{})
	tp := sdktrace.NewTracerProvider()
	t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	sdkTracer := New(TracerProvider(tp), Propagator(prop))
	noopTracer := New(TracerProvider(noop.NewTracerProvider()), Propagator(prop))

	o1, o2 := testSpanContext(1, trace.FlagsSampled), testSpanContext(2, 0)
	recvBag, _ := baggage.Parse("tenant=beta")
	recs := []*kgo.Record{
		{Topic: "t", Offset: 1, Headers: []kgo.RecordHeader{
			{Key: originHeader, Value: encodeTraceparent(o1)}, {Key: "baggage", Value: []byte("tenant=acme")}}},
		{Topic: "t", Offset: 2, Headers: []kgo.RecordHeader{{Key: originHeader, Value: encodeTraceparent(o2)}},
			Context: baggage.ContextWithBaggage(context.Background(), recvBag)},
		{Topic: "t", Offset: 3},
	}
	bags := []string{"acme", "beta", ""}
	self := func(batch trace.SpanContext, _ int) trace.SpanContext { return batch }
	none := func(trace.SpanContext, int) trace.SpanContext { return trace.SpanContext{} }
	fromHeader := func(_ trace.SpanContext, i int) trace.SpanContext {
		return [...]trace.SpanContext{o1, o2, {}}[i]
	}
	for _, tc := range []struct {
		name   string
		tracer *Tracer
		role   strategy.TopicRole
		origin func(batch trace.SpanContext, i int) trace.SpanContext
	}{
		{"main", sdkTracer, strategy.RoleMain, self},
		{"tier", sdkTracer, strategy.RoleTier, fromHeader},
		{"noop main", noopTracer, strategy.RoleMain, none},
		{"noop tier", noopTracer, strategy.RoleTier, fromHeader},
	} {
		t.Run(tc.name, func(t *testing.T) {
			parent, cancel := context.WithCancel(context.Background())
			ds := make([]listener.Delivery, len(recs))
			for i := range ds {
				ds[i] = listener.Delivery{Role: tc.role, Attempt: 1}
			}
			ctx, record, finish := tc.tracer.StartBatch(parent, recs, ds)
			defer finish(nil)
			batch := trace.SpanContextFromContext(ctx)
			if tc.tracer == sdkTracer && !batch.IsValid() {
				t.Fatal("the batch's context carries no span")
			}
			if got := baggage.FromContext(ctx).Len(); got != 0 {
				t.Errorf("the batch's context carries %d baggage members, want none", got)
			}
			cancel()
			for i := range recs {
				rctx := record(i)
				if rctx == nil {
					t.Fatalf("record(%d) = nil", i)
				}
				if rctx.Err() != nil {
					t.Errorf("record(%d) is canceled with the batch's context", i)
				}
				if got := trace.SpanContextFromContext(rctx); !got.Equal(batch) {
					t.Errorf("record(%d) carries span %v, want the batch's %v", i, got, batch)
				}
				if got := baggage.FromContext(rctx).Member("tenant").Value(); got != bags[i] {
					t.Errorf("record(%d) baggage tenant=%q, want %q", i, got, bags[i])
				}
				hp, ok := rctx.Value(hopKey{}).(*hop)
				want := tc.origin(batch, i)
				if !ok || !hp.origin.Equal(want) {
					t.Errorf("record(%d) hop %+v, want origin %v", i, hp, want)
				}

				// The forwarded record gets exactly that origin.
				fwd := &kgo.Record{Topic: "t-retry", Context: rctx, Headers: append([]kgo.RecordHeader{
					{Key: retry.HeaderAttempt, Value: []byte{0, 0, 0, 2}}}, recs[i].Headers...)}
				(&originHook{propagator: prop}).OnProduceRecordBuffered(fwd)
				if got := originOf(fwd.Headers); !got.Equal(want.WithRemote(true)) && (got.IsValid() || want.IsValid()) {
					t.Errorf("record %d forwarded with origin %v, want %v", i, got, want)
				}
			}
		})
	}
}
