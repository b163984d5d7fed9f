package kretryotel_test

import (
	"context"
	"fmt"
	"testing"
	"time"

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

type attrKey = attribute.Key

// recorded returns a Tracer over an always-sampling provider and the
// recorder of its spans.
func recorded(t testing.TB, opts ...kretryotel.Opt) (*kretryotel.Tracer, *tracetest.SpanRecorder) {
	sr := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(sr), sdktrace.WithSampler(sdktrace.AlwaysSample()))
	t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	opts = append([]kretryotel.Opt{kretryotel.TracerProvider(tp), kretryotel.Propagator(propagation.TraceContext{})}, opts...)
	return kretryotel.New(opts...), sr
}

func only(t *testing.T, sr *tracetest.SpanRecorder) sdktrace.ReadOnlySpan {
	t.Helper()
	ended := sr.Ended()
	if len(ended) != 1 {
		t.Fatalf("%d spans ended, want 1", len(ended))
	}
	return ended[0]
}

func spanContext(trace0, span0 byte, sampled bool) trace.SpanContext {
	var tid trace.TraceID
	var sid trace.SpanID
	for i := range tid {
		tid[i] = trace0 + byte(i)
	}
	for i := range sid {
		sid[i] = span0 + byte(i)
	}
	cfg := trace.SpanContextConfig{TraceID: tid, SpanID: sid, Remote: true}
	if sampled {
		cfg.TraceFlags = trace.FlagsSampled
	}
	return trace.NewSpanContext(cfg)
}

// A record without trace headers or Context gets a process span that is a
// new root — not a child of a span the listener's context carries — with
// no links, and the handler's context carries it.
func TestStartDeliveryWithoutTraceHeaders(t *testing.T) {
	for _, role := range []strategy.TopicRole{strategy.RoleMain, strategy.RoleTier, strategy.RoleDLT} {
		t.Run(role.String(), func(t *testing.T) {
			tr, sr := recorded(t)
			outer := trace.ContextWithSpanContext(context.Background(), spanContext(1, 1, true))
			rec := &kgo.Record{Topic: "orders", Partition: 2, Offset: 7, Key: []byte{0xff}} // key not UTF-8
			ctx, finish := tr.StartDelivery(outer, rec, listener.Delivery{Group: "g", Role: role, Attempt: 1})
			if ctx == nil || finish == nil {
				t.Fatal("StartDelivery returned a nil context or finish")
			}
			finish(listener.Outcome{Kind: listener.EventHandled})
			s := only(t, sr)
			if got := trace.SpanFromContext(ctx).SpanContext(); !got.Equal(s.SpanContext()) {
				t.Errorf("the context carries span %v, want the process span %v", got, s.SpanContext())
			}
			if s.Parent().IsValid() {
				t.Errorf("parent %v, want a new root", s.Parent())
			}
			if len(s.Links()) != 0 {
				t.Errorf("links %v, want none", s.Links())
			}
			a := attrMap(s.Attributes())
			for k, want := range map[string]string{
				"messaging.source.name":            "orders",
				"messaging.kafka.source.partition": "2",
				"messaging.kafka.message.offset":   "7",
				"messaging.kafka.consumer.group":   "g",
				string(kretryotel.RoleKey):         role.String(),
				string(kretryotel.AttemptKey):      "1",
				string(kretryotel.OutcomeKey):      "handled",
			} {
				if got := a[attrKey(k)].String(); got != want {
					t.Errorf("%s = %q, want %q", k, got, want)
				}
			}
			if _, ok := a["messaging.kafka.message.key"]; ok {
				t.Error("a key that is not UTF-8 is set as an attribute")
			}
			if s.Name() != "orders process" || s.SpanKind() != trace.SpanKindConsumer || s.Status().Code != codes.Unset {
				t.Errorf("span %q kind %v status %v", s.Name(), s.SpanKind(), s.Status())
			}
		})
	}
}

// Without kotel's receive span, the process span continues the trace in
// the record's headers (or, with LinkSpans, starts a new one) and links to
// it; on a tier or DLT delivery it also links to the origin header's span,
// once even when it is the same span.
func TestStartDeliveryFromHeaders(t *testing.T) {
	prev, origin := spanContext(0x10, 0x20, true), spanContext(0x30, 0x40, false)
	tp := func(sc trace.SpanContext) []byte { return []byte(traceparentOf(sc)) }
	for _, tc := range []struct {
		name      string
		role      strategy.TopicRole
		headers   []kgo.RecordHeader
		linkSpans bool
		parent    trace.SpanContext
		links     map[string]trace.SpanContext
	}{
		{"main", strategy.RoleMain, []kgo.RecordHeader{{Key: "traceparent", Value: tp(prev)}, {Key: originHeader, Value: tp(origin)}},
			false, prev, map[string]trace.SpanContext{kretryotel.LinkPreviousHop: prev}},
		{"tier", strategy.RoleTier, []kgo.RecordHeader{{Key: "traceparent", Value: tp(prev)}, {Key: originHeader, Value: tp(origin)}},
			false, prev, map[string]trace.SpanContext{kretryotel.LinkPreviousHop: prev, kretryotel.LinkOrigin: origin}},
		{"dlt link-spans", strategy.RoleDLT, []kgo.RecordHeader{{Key: "traceparent", Value: tp(prev)}, {Key: originHeader, Value: tp(origin)}},
			true, trace.SpanContext{}, map[string]trace.SpanContext{kretryotel.LinkPreviousHop: prev, kretryotel.LinkOrigin: origin}},
		{"tier origin only", strategy.RoleTier, []kgo.RecordHeader{{Key: originHeader, Value: tp(origin)}},
			false, trace.SpanContext{}, map[string]trace.SpanContext{kretryotel.LinkOrigin: origin}},
		{"tier origin is previous", strategy.RoleTier, []kgo.RecordHeader{{Key: "traceparent", Value: tp(prev)}, {Key: originHeader, Value: tp(prev)}},
			false, prev, map[string]trace.SpanContext{kretryotel.LinkPreviousHop: prev}},
		{"malformed", strategy.RoleTier, []kgo.RecordHeader{{Key: "traceparent", Value: []byte("00-zz")}, {Key: originHeader, Value: []byte("garbage")}},
			false, trace.SpanContext{}, map[string]trace.SpanContext{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var opts []kretryotel.Opt
			if tc.linkSpans {
				opts = append(opts, kretryotel.LinkSpans())
			}
			tr, sr := recorded(t, opts...)
			rec := &kgo.Record{Topic: "orders-retry", Headers: tc.headers}
			due := time.Date(2026, 1, 2, 3, 4, 5, 6e6, time.UTC)
			_, finish := tr.StartDelivery(context.Background(), rec, listener.Delivery{Role: tc.role, Attempt: 2, Due: due})
			finish(listener.Outcome{})
			s := only(t, sr)
			if !sameSpan(s.Parent(), tc.parent) && (s.Parent().IsValid() || tc.parent.IsValid()) {
				t.Errorf("parent %v, want %v", s.Parent().SpanID(), tc.parent.SpanID())
			}
			if want := tc.parent.IsValid(); want && s.SpanContext().TraceID() != tc.parent.TraceID() {
				t.Errorf("trace %v, want the previous hop's %v", s.SpanContext().TraceID(), tc.parent.TraceID())
			}
			got := links(t, s)
			if len(got) != len(tc.links) {
				t.Errorf("links %s, want %s", linkString(got), linkString(tc.links))
			}
			for kind, want := range tc.links {
				if l := got[kind]; !l.Equal(want) {
					t.Errorf("%s link %v, want %v (remote, with its flags)", kind, l, want)
				}
			}
			a := attrMap(s.Attributes())
			if got := a[kretryotel.DueKey].String(); got != "2026-01-02T03:04:05.006Z" {
				t.Errorf("%s = %q", kretryotel.DueKey, got)
			}
			if got := a[kretryotel.OutcomeKey].String(); got != kretryotel.OutcomeAbandoned {
				t.Errorf("%s = %q for a zero Outcome, want %q", kretryotel.OutcomeKey, got, kretryotel.OutcomeAbandoned)
			}
		})
	}
}

// finish records the outcome: target and reason when set, the error as an
// exception event and an Error status for failures.
func TestFinishOutcomes(t *testing.T) {
	boom := fmt.Errorf("stock service down")
	for _, tc := range []struct {
		out            listener.Outcome
		outcome        string
		target, reason string
	}{
		{listener.Outcome{Kind: listener.EventHandled}, "handled", "", ""},
		{listener.Outcome{Kind: listener.EventRetried, Err: boom, Target: "orders-retry"}, "retried", "orders-retry", ""},
		{listener.Outcome{Kind: listener.EventDeadLettered, Err: boom, Target: "orders-dlt", Reason: "exhausted"}, "dead-lettered", "orders-dlt", "exhausted"},
		{listener.Outcome{Kind: listener.EventDropped, Err: boom, Reason: "permanent"}, "dropped", "", "permanent"},
		{listener.Outcome{Kind: listener.EventDLTHandlerFailed, Err: boom}, "dlt-handler-failed", "", ""},
		{listener.Outcome{}, kretryotel.OutcomeAbandoned, "", ""},
	} {
		t.Run(tc.outcome, func(t *testing.T) {
			tr, sr := recorded(t)
			_, finish := tr.StartDelivery(context.Background(), &kgo.Record{Topic: "orders"}, listener.Delivery{Role: strategy.RoleMain, Attempt: 1})
			if n := len(sr.Ended()); n != 0 {
				t.Fatalf("%d spans ended before finish", n)
			}
			finish(tc.out)
			s := only(t, sr)
			a := attrMap(s.Attributes())
			if got := a[kretryotel.OutcomeKey].String(); got != tc.outcome {
				t.Errorf("outcome %q, want %q", got, tc.outcome)
			}
			for k, want := range map[attrKey]string{kretryotel.TargetKey: tc.target, kretryotel.ReasonKey: tc.reason} {
				if v, ok := a[k]; ok != (want != "") || (ok && v.AsString() != want) {
					t.Errorf("%s = %q (set %v), want %q", k, v.String(), ok, want)
				}
			}
			failed := tc.out.Err != nil
			if st := s.Status(); failed != (st.Code == codes.Error) || (failed && st.Description != boom.Error()) {
				t.Errorf("status %+v (failed %v)", st, failed)
			}
			ev := s.Events()
			if failed != (len(ev) == 1) || (failed && (ev[0].Name != "exception" || attrMap(ev[0].Attributes)["exception.message"].AsString() != boom.Error())) {
				t.Errorf("events %+v (failed %v), want the error as one exception event", ev, failed)
			}
		})
	}
}

// With a no-op provider nothing breaks, and the handler's context carries
// the receive span's context unchanged.
func TestNoopProvider(t *testing.T) {
	tr := kretryotel.New(kretryotel.TracerProvider(noop.NewTracerProvider()), kretryotel.Propagator(propagation.TraceContext{}))
	prev := spanContext(1, 2, true)
	rec := &kgo.Record{Topic: "orders", Headers: []kgo.RecordHeader{{Key: "traceparent", Value: []byte(traceparentOf(prev))}}}
	ctx, finish := tr.StartDelivery(context.Background(), rec, listener.Delivery{Role: strategy.RoleMain, Attempt: 1})
	finish(listener.Outcome{Kind: listener.EventRetried, Err: errBoom, Target: "orders-retry"})
	if got := trace.SpanContextFromContext(ctx); !got.Equal(prev) {
		t.Errorf("context span %v, want the record's %v", got, prev)
	}
	if len(tr.ClientOpts()) == 0 {
		t.Error("no client options")
	}
}
