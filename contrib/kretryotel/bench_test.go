package kretryotel_test

import (
	"context"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"go.opentelemetry.io/otel/propagation"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"

	"github.com/kretry/kretry/contrib/kretryotel"
	"github.com/kretry/kretry/listener"
	"github.com/kretry/kretry/strategy"
)

// BenchmarkStartDelivery measures what tracing adds to a delivery:
// StartDelivery and finish, on a main-topic record without trace headers
// and on a retry-tier record with a traceparent and an origin header, with
// providers that record nothing.
//
//	go test -run '^$' -bench StartDelivery -benchmem
func BenchmarkStartDelivery(b *testing.B) {
	never := sdktrace.NewTracerProvider(sdktrace.WithSampler(sdktrace.NeverSample()))
	defer func() { _ = never.Shutdown(context.Background()) }()
	prev, origin := spanContext(1, 2, true), spanContext(3, 4, true)
	tierHeaders := []kgo.RecordHeader{
		{Key: "traceparent", Value: []byte(traceparentOf(prev))},
		{Key: originHeader, Value: []byte(traceparentOf(origin))},
	}
	for _, p := range []struct {
		name string
		tp   trace.TracerProvider
	}{{"never-sample", never}, {"noop", noop.NewTracerProvider()}} {
		tr := kretryotel.New(kretryotel.TracerProvider(p.tp), kretryotel.Propagator(propagation.TraceContext{}))
		for _, r := range []struct {
			name string
			rec  *kgo.Record
			d    listener.Delivery
		}{
			{"main", &kgo.Record{Topic: "orders", Key: []byte("k")}, listener.Delivery{Group: "g", Role: strategy.RoleMain, Attempt: 1}},
			{"tier", &kgo.Record{Topic: "orders-retry", Key: []byte("k"), Headers: tierHeaders},
				listener.Delivery{Group: "g", Role: strategy.RoleTier, Attempt: 2, Due: time.Unix(1700000000, 0)}},
		} {
			b.Run(p.name+"/"+r.name, func(b *testing.B) {
				ctx := context.Background()
				out := listener.Outcome{Kind: listener.EventRetried, Err: errBoom, Target: "orders-retry"}
				b.ReportAllocs()
				for b.Loop() {
					_, finish := tr.StartDelivery(ctx, r.rec, r.d)
					finish(out)
				}
			})
		}
	}
}

// BenchmarkStartBatch measures what tracing adds to a batch handler call
// of 100 records: StartBatch, record for the two records that failed, and
// finish; on a main-topic batch whose records carry a traceparent, and on
// a retry-tier batch whose records also carry an origin header, with
// providers that record nothing.
//
//	go test -run '^$' -bench StartBatch -benchmem
func BenchmarkStartBatch(b *testing.B) {
	never := sdktrace.NewTracerProvider(sdktrace.WithSampler(sdktrace.NeverSample()))
	defer func() { _ = never.Shutdown(context.Background()) }()
	const n = 100
	batch := func(topic string, role strategy.TopicRole, attempt int32, origins bool) ([]*kgo.Record, []listener.Delivery) {
		recs := make([]*kgo.Record, n)
		ds := make([]listener.Delivery, n)
		for i := range recs {
			hs := []kgo.RecordHeader{{Key: "traceparent", Value: []byte(traceparentOf(spanContext(1, byte(i), true)))}}
			if origins {
				hs = append(hs, kgo.RecordHeader{Key: originHeader, Value: []byte(traceparentOf(spanContext(2, byte(i%10), true)))})
			}
			recs[i] = &kgo.Record{Topic: topic, Offset: int64(i), Key: []byte("k"), Headers: hs}
			ds[i] = listener.Delivery{Group: "g", Role: role, Attempt: attempt}
		}
		return recs, ds
	}
	outs := make([]listener.Outcome, n)
	for i := range outs {
		outs[i] = listener.Outcome{Kind: listener.EventHandled}
	}
	failed := []int{17, 42}
	for _, i := range failed {
		outs[i] = listener.Outcome{Kind: listener.EventRetried, Err: errBoom, Target: "orders-retry"}
	}
	for _, p := range []struct {
		name string
		tp   trace.TracerProvider
	}{{"never-sample", never}, {"noop", noop.NewTracerProvider()}} {
		tr := kretryotel.New(kretryotel.TracerProvider(p.tp), kretryotel.Propagator(propagation.TraceContext{}))
		mainRecs, mainDs := batch("orders", strategy.RoleMain, 1, false)
		tierRecs, tierDs := batch("orders-retry", strategy.RoleTier, 2, true)
		for _, r := range []struct {
			name string
			recs []*kgo.Record
			ds   []listener.Delivery
		}{{"main", mainRecs, mainDs}, {"tier", tierRecs, tierDs}} {
			b.Run(p.name+"/"+r.name, func(b *testing.B) {
				ctx := context.Background()
				b.ReportAllocs()
				for b.Loop() {
					_, record, finish := tr.StartBatch(ctx, r.recs, r.ds)
					for _, i := range failed {
						_ = record(i)
					}
					finish(outs)
				}
			})
		}
	}
}
