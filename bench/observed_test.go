package main

import (
	"context"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"go.opentelemetry.io/otel/propagation"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"

	"github.com/kretry/kretry/contrib/kretryotel"
	"github.com/kretry/kretry/listener"
	"github.com/kretry/kretry/strategy"
)

// Small runs of the observed systems against embedded kfake. Besides the
// Tracker's count, each run checks its own metrics and spans (see
// observedSystem) and fails when they do not add up.

func TestObservedHappyPath(t *testing.T) {
	for _, s := range observedSystems(t) {
		t.Run(s.Name(), func(t *testing.T) {
			env := peerEnv(t)
			ctx := peerCtx(t, 2*time.Minute)
			in := HappyPathInput{Topic: "s1", Group: "s1-group", Partitions: peerPartitions, Records: peerRecords, ValueBytes: 100}
			peerFill(t, ctx, env, in.Topic, in.Partitions, in.Records, in.ValueBytes)
			res, err := s.HappyPath(ctx, env, in)
			if err != nil {
				t.Fatal(err)
			}
			// S1 is timed over the last 90% of the successes.
			peerCheckThroughput(t, res, in.Records-in.Records/10)
		})
	}
}

func TestObservedRetryHop(t *testing.T) {
	for _, s := range observedSystems(t) {
		t.Run(s.Name(), func(t *testing.T) { peerRetryHop(t, s, peerRecords) })
	}
}

func observedSystems(t *testing.T) []observedSystem {
	var out []observedSystem
	for _, s := range allSystems() {
		if o, ok := s.(observedSystem); ok {
			out = append(out, o)
		}
	}
	if len(out) != 2 {
		t.Fatalf("%d observed systems in allSystems, want 2 (kretry-metrics, kretry-observed)", len(out))
	}
	return out
}

// BenchmarkObservedDelivery measures, without Kafka, what the observed
// systems add to one delivery of a record to the handler: kretryprom's
// OnEvent for the EventHandled the listener emits, and kretryotel's
// process span (StartDelivery and finish) with the bench's provider
// (AlwaysSample, spans dropped once ended) and, for comparison, with
// NeverSample. kotel's receive and publish spans are not included.
//
//	cd bench && go test -run '^$' -bench ObservedDelivery -benchmem
func BenchmarkObservedDelivery(b *testing.B) {
	o, _, err := observedSystem{metrics: true, tracing: true}.observe()
	if err != nil {
		b.Fatal(err)
	}
	defer func() { _ = o.tp.Shutdown(context.Background()) }()
	never := sdktrace.NewTracerProvider(sdktrace.WithSampler(sdktrace.NeverSample()), sdktrace.WithSpanProcessor(&dropSpans{}))
	defer func() { _ = never.Shutdown(context.Background()) }()
	unsampled := kretryotel.New(kretryotel.TracerProvider(never), kretryotel.Propagator(propagation.TraceContext{}))

	rec := &kgo.Record{Topic: "bench-1764000000-s1-1", Key: []byte("k123456"), Value: make([]byte, 100), Partition: 3, Offset: 123456}
	d := listener.Delivery{Group: "bench-1764000000-s1-kretry-observed-2", Role: strategy.RoleMain, Attempt: 1}
	handled := listener.Outcome{Kind: listener.EventHandled}
	retried := listener.Outcome{Kind: listener.EventRetried, Err: errFail, Target: rec.Topic + "-retry-0"}

	b.Run("kretryprom/handled", func(b *testing.B) {
		e := listener.Event{Kind: listener.EventHandled, Topic: rec.Topic, Partition: rec.Partition, Offset: rec.Offset,
			Role: strategy.RoleMain, Attempt: 1, Latency: time.Microsecond}
		b.ReportAllocs()
		for b.Loop() {
			o.m.OnEvent(e)
		}
	})
	for _, c := range []struct {
		name string
		t    *kretryotel.Tracer
		out  listener.Outcome
	}{
		{"kretryotel-sampled/handled", o.tracer, handled},
		{"kretryotel-sampled/retried", o.tracer, retried},
		{"kretryotel-unsampled/handled", unsampled, handled},
	} {
		b.Run(c.name, func(b *testing.B) {
			ctx := context.Background()
			b.ReportAllocs()
			for b.Loop() {
				_, finish := c.t.StartDelivery(ctx, rec, d)
				finish(c.out)
			}
		})
	}
}
