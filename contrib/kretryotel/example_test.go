package kretryotel_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"go.opentelemetry.io/otel/propagation"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/kretry/kretry/contrib/kretryotel"
	"github.com/kretry/kretry/listener"
	"github.com/kretry/kretry/retry"
	"github.com/kretry/kretry/strategy"
)

// A listener traced with kretryotel: a record that fails once is handled
// on its retry, and the retry's process span links back to the first.
func Example() {
	// An in-process cluster and an in-memory span recorder; use your
	// brokers and exporter instead.
	cluster, _ := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(1, "orders"))
	defer cluster.Close()
	seeds := cluster.ListenAddrs()
	spans := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(spans))
	defer func() { _ = tp.Shutdown(context.Background()) }()

	t := kretryotel.New(kretryotel.TracerProvider(tp), kretryotel.Propagator(propagation.TraceContext{}))

	handled := make(chan struct{})
	handler := listener.HandlerFunc(func(ctx context.Context, rec *kgo.Record) error {
		if _, retried := retry.FromContext(ctx); !retried {
			return errors.New("stock service down")
		}
		close(handled)
		return nil
	})
	l, err := listener.New(seeds, "orders", handler,
		listener.Group("example"),
		listener.Backoff(strategy.FixedBackoff(100*time.Millisecond)),
		listener.Logger(slog.New(slog.DiscardHandler)),
		listener.Tracing(t),                    // process spans
		listener.ClientOpts(t.ClientOpts()...), // publish and receive spans, trace headers
	)
	if err != nil {
		fmt.Println(err)
		return
	}

	producer, _ := kgo.NewClient(kgo.SeedBrokers(seeds...))
	defer producer.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	producer.ProduceSync(ctx, &kgo.Record{Topic: "orders", Key: []byte("order-1")})
	errc := make(chan error, 1)
	go func() { errc <- l.Run(ctx) }()
	<-handled
	cancel()
	<-errc // Run returns once the retry's delivery has ended

	var process []sdktrace.ReadOnlySpan
	for _, s := range spans.Ended() {
		if s.InstrumentationScope().Name == kretryotel.ScopeName {
			process = append(process, s)
		}
	}
	slices.SortFunc(process, func(a, b sdktrace.ReadOnlySpan) int { return a.StartTime().Compare(b.StartTime()) })
	name := map[trace.SpanID]string{}
	for _, s := range spans.Ended() {
		name[s.SpanContext().SpanID()] = s.Name()
	}
	for _, s := range process {
		fmt.Printf("%s: %s\n", s.Name(), outcome(s))
		for _, link := range s.Links() {
			fmt.Printf("  %s → %s\n", link.Attributes[0].Value.AsString(), name[link.SpanContext.SpanID()])
		}
	}
	// Output:
	// orders process: retried (Error: stock service down)
	// orders-retry process: handled
	//   previous-hop → orders-retry publish
	//   origin → orders process
}

func outcome(s sdktrace.ReadOnlySpan) string {
	for _, a := range s.Attributes() {
		if a.Key == kretryotel.OutcomeKey {
			if s.Status().Description != "" {
				return fmt.Sprintf("%s (%s: %s)", a.Value.AsString(), s.Status().Code, s.Status().Description)
			}
			return a.Value.AsString()
		}
	}
	return "?"
}

// StartDelivery, as the listener calls it for a record of a retry tier
// that carries the trace headers of its previous hop.
func ExampleTracer_StartDelivery() {
	spans := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(spans))
	t := kretryotel.New(kretryotel.TracerProvider(tp), kretryotel.Propagator(propagation.TraceContext{}))

	rec := &kgo.Record{Topic: "orders-retry", Partition: 0, Offset: 41, Key: []byte("order-1"), Headers: []kgo.RecordHeader{
		// Written by kotel: the span that published the record.
		{Key: "traceparent", Value: []byte("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01")},
		// Written by kretryotel: the record's main-topic process span.
		{Key: "kretry-trace-origin", Value: []byte("00-0af7651916cd43dd8448eb211c80319c-00f067aa0ba902b7-01")},
	}}
	ctx, finish := t.StartDelivery(context.Background(), rec, listener.Delivery{
		Group: "orders-group", Role: strategy.RoleTier, Attempt: 2,
		Due: time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC),
	})
	_ = ctx // the handler runs with ctx; trace.SpanFromContext(ctx) is the process span
	finish(listener.Outcome{Kind: listener.EventHandled})

	s := spans.Ended()[0]
	fmt.Println(s.Name(), s.SpanKind(), "parent", s.Parent().SpanID())
	for _, kv := range s.Attributes() {
		if kv.Key == kretryotel.AttemptKey || kv.Key == kretryotel.RoleKey || kv.Key == kretryotel.DueKey || kv.Key == kretryotel.OutcomeKey {
			fmt.Printf("  %s=%s\n", kv.Key, kv.Value.String())
		}
	}
	for _, l := range s.Links() {
		fmt.Printf("  link %s=%s: %s\n", l.Attributes[0].Key, l.Attributes[0].Value.AsString(), l.SpanContext.SpanID())
	}
	// Output:
	// orders-retry process consumer parent b7ad6b7169203331
	//   kretry.role=tier
	//   kretry.attempt=2
	//   kretry.due=2026-05-01T12:00:00Z
	//   kretry.outcome=handled
	//   link kretry.link=previous-hop: b7ad6b7169203331
	//   link kretry.link=origin: 00f067aa0ba902b7
}

// StartBatch, as a batch listener calls it for two records of a retry
// tier that failed together in one main-topic batch: one span for the
// batch, linked to each record's previous hop and, once, to their shared
// origin; one record fails again.
func ExampleTracer_StartBatch() {
	spans := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(spans))
	t := kretryotel.New(kretryotel.TracerProvider(tp), kretryotel.Propagator(propagation.TraceContext{}))

	// The main-topic batch's process span, the origin of both records.
	origin := []byte("00-0af7651916cd43dd8448eb211c80319c-00f067aa0ba902b7-01")
	recs := []*kgo.Record{
		{Topic: "orders-retry", Offset: 7, Headers: []kgo.RecordHeader{
			{Key: "traceparent", Value: []byte("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01")},
			{Key: "kretry-trace-origin", Value: origin},
		}},
		{Topic: "orders-retry", Offset: 8, Headers: []kgo.RecordHeader{
			{Key: "traceparent", Value: []byte("00-0af7651916cd43dd8448eb211c80319c-c4e1d22b09a3f5e6-01")},
			{Key: "kretry-trace-origin", Value: origin},
		}},
	}
	ds := []listener.Delivery{
		{Group: "orders-group", Role: strategy.RoleTier, Attempt: 2},
		{Group: "orders-group", Role: strategy.RoleTier, Attempt: 3},
	}
	ctx, record, finish := t.StartBatch(context.Background(), recs, ds)
	_ = ctx // the batch handler runs with ctx; trace.SpanFromContext(ctx) is the batch's span
	// The listener publishes the failed record, recs[1], with Context
	// record(1): its publish span is a child of the batch's span, and it
	// keeps recs[1]'s origin.
	_ = record(1)
	finish([]listener.Outcome{
		{Kind: listener.EventHandled},
		{Kind: listener.EventDeadLettered, Err: errors.New("stock service down"), Target: "orders-dlt", Reason: "exhausted"},
	})

	s := spans.Ended()[0]
	fmt.Println(s.Name(), s.SpanKind(), "new root:", !s.Parent().IsValid())
	for _, kv := range s.Attributes() {
		switch kv.Key {
		case "messaging.batch.message_count", kretryotel.AttemptMinKey, kretryotel.AttemptMaxKey,
			kretryotel.HandledCountKey, kretryotel.DeadLetteredCountKey:
			fmt.Printf("  %s=%s\n", kv.Key, kv.Value.String())
		}
	}
	for _, l := range s.Links() {
		fmt.Printf("  link %s: %s\n", l.Attributes[0].Value.AsString(), l.SpanContext.SpanID())
	}
	fmt.Printf("  %s: %s\n", s.Status().Code, s.Status().Description)
	// Output:
	// orders-retry process consumer new root: true
	//   messaging.batch.message_count=2
	//   kretry.attempt.min=2
	//   kretry.attempt.max=3
	//   kretry.batch.handled=1
	//   kretry.batch.dead_lettered=1
	//   link previous-hop: b7ad6b7169203331
	//   link origin: 00f067aa0ba902b7
	//   link previous-hop: c4e1d22b09a3f5e6
	//   Error: 1 of 2 records failed; first: stock service down
}
