package kretryotel_test

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/kretry/kretry/contrib/kretryotel"
	"github.com/kretry/kretry/internal/kafkatest"
	"github.com/kretry/kretry/listener"
	"github.com/kretry/kretry/strategy"
)

// batchCall is one call of the batch handler as the handler saw it.
type batchCall struct {
	topic   string
	keys    []string
	offsets []int64
	headers [][]kgo.RecordHeader // each record's, copied
	span    trace.SpanContext    // the span in the handler's context
}

// batchRun is what a traced batch listener left behind: its calls, the
// spans ended, and the records of its tier and DLT, read back.
type batchRun struct {
	topic, group, tier, dlt string
	upstream                map[string]trace.SpanContext // key → the upstream publish span
	calls                   []batchCall
	spans                   []sdktrace.ReadOnlySpan
	records                 map[string][]*kgo.Record // tier and DLT topic → its records
}

// The records of a batch run and what becomes of them: six records, in
// main-topic batches of three ([k0 k1 k2] and [k3 k4 k5]); k1, k2 and k4
// fail once and are retried, together, in one tier batch, where k2 fails
// permanently and is dead-lettered.
var (
	batchKeys      = []string{"k0", "k1", "k2", "k3", "k4", "k5"}
	batchMainFails = map[string]bool{"k1": true, "k2": true, "k4": true}
)

const batchTierFails = "k2"

// runBatchHops runs a traced batch listener over batchKeys, produced by a
// traced upstream producer, and returns once the three batch calls' spans,
// the four publish spans (three to the tier, one to the DLT) and the span
// of the DLT delivery (one record at a time, to the default DLT handler)
// have ended and the listener has stopped.
//
// The batches are deterministic: BatchSize 3 with a BatchWait longer than
// the test makes each worker wait for three records, and a zero-delay
// tier makes every tier record due as soon as it is read.
func runBatchHops(t *testing.T) *batchRun {
	t.Helper()
	c := kafkatest.New(t)
	run := &batchRun{topic: c.Name("orders"), group: c.Name("g"),
		upstream: map[string]trace.SpanContext{}, records: map[string][]*kgo.Record{}}
	c.CreateTopic(run.topic, 1)

	sr := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(sr), sdktrace.WithSampler(sdktrace.AlwaysSample()))
	t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	tr := kretryotel.New(kretryotel.TracerProvider(tp), kretryotel.Propagator(propagation.TraceContext{}))

	var mu sync.Mutex
	handler := listener.BatchHandlerFunc(func(ctx context.Context, recs []*kgo.Record) error {
		call := batchCall{topic: recs[0].Topic, span: trace.SpanContextFromContext(ctx)}
		var errs listener.BatchErrors
		for _, rec := range recs {
			k := string(rec.Key)
			call.keys = append(call.keys, k)
			call.offsets = append(call.offsets, rec.Offset)
			call.headers = append(call.headers, slices.Clone(rec.Headers))
			switch {
			case rec.Topic == run.topic && batchMainFails[k]:
				errs.Add(rec, fmt.Errorf("%s: %w", k, errBoom))
			case rec.Topic != run.topic && k == batchTierFails:
				errs.Add(rec, strategy.Permanent(fmt.Errorf("%s again: %w", k, errBoom)))
			}
		}
		mu.Lock()
		run.calls = append(run.calls, call)
		mu.Unlock()
		return errs.Err()
	})
	l, err := listener.NewBatch(c.Seeds, run.topic, handler, listener.Group(run.group),
		listener.Logger(slog.New(slog.DiscardHandler)), listener.FetchMaxWait(20*time.Millisecond),
		listener.BatchSize(3), listener.BatchWait(2*waitFor),
		listener.Attempts(3), listener.Backoff(strategy.ListBackoff(0)),
		listener.Tracing(tr), listener.ClientOpts(tr.ClientOpts()...))
	if err != nil {
		t.Fatal(err)
	}
	plan := l.Plan()
	run.tier, run.dlt = plan.Tiers[0].Topic, plan.DLT

	producer, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(c.Seeds...), kgo.ProducerLinger(0)}, tr.ClientOpts()...)...)
	if err != nil {
		t.Fatal(err)
	}
	defer producer.Close()
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	outs := make([]*kgo.Record, len(batchKeys))
	for i, k := range batchKeys {
		outs[i] = &kgo.Record{Topic: run.topic, Key: []byte(k), Value: []byte("v"), Context: ctx}
	}
	if err := producer.ProduceSync(ctx, outs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	for _, out := range outs {
		run.upstream[string(out.Key)] = trace.SpanContextFromContext(out.Context)
	}

	runCtx, stop := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- l.Run(runCtx) }()
	count := func(scope, name string) int {
		n := 0
		for _, s := range sr.Ended() {
			if s.InstrumentationScope().Name == scope && (name == "" || s.Name() == name) {
				n++
			}
		}
		return n
	}
	kafkatest.Eventually(t, waitFor, func() bool {
		return count(kretryotel.ScopeName, "") >= 4 && count(kretryotel.ScopeName, run.dlt+" process") >= 1 &&
			count(kotelScope, run.tier+" publish") >= len(batchMainFails) && count(kotelScope, run.dlt+" publish") >= 1
	}, "three batch spans, four publish spans and the DLT delivery's span ended")
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
	for _, topic := range []string{run.tier, run.dlt} {
		run.records[topic] = c.ReadAll(topic)
	}
	return run
}

// span returns the ended span whose context is sc.
func (r *batchRun) span(sc trace.SpanContext) sdktrace.ReadOnlySpan {
	for _, s := range r.spans {
		if sameSpan(s.SpanContext(), sc) {
			return s
		}
	}
	return nil
}

// traceparent returns the span in headers' one traceparent header, and
// fails the test when there is not exactly one.
func traceparent(t *testing.T, what string, headers []kgo.RecordHeader) trace.SpanContext {
	t.Helper()
	rec := &kgo.Record{Headers: headers}
	tps := headerValues(rec, "traceparent")
	if len(tps) != 1 {
		t.Errorf("%s: traceparent headers %q, want one", what, tps)
		return trace.SpanContext{}
	}
	carrier := propagation.MapCarrier{"traceparent": tps[0]}
	return trace.SpanContextFromContext(propagation.TraceContext{}.Extract(context.Background(), carrier))
}

// A real batch listener on kfake: one process span per batch call, a new
// root, carried by the handler's context, with the batch's size, offsets,
// attempts and outcome counts; linked to each record's previous hop and,
// on the tier, to each record's origin. Each forwarded record is
// published under the span of the batch that failed it, and carries, in
// kretry-trace-origin, the main-topic batch span it was first processed
// in — on the tier and, through the tier batch, on the DLT.
func TestBatchSpansAcrossHops(t *testing.T) {
	run := runBatchHops(t)

	// The calls, in the order the deterministic batching makes them.
	type wantCall struct {
		topic string
		keys  []string
	}
	wantCalls := []wantCall{
		{run.topic, []string{"k0", "k1", "k2"}},
		{run.topic, []string{"k3", "k4", "k5"}},
		{run.tier, []string{"k1", "k2", "k4"}},
	}
	if len(run.calls) != len(wantCalls) {
		t.Fatalf("%d batch calls %+v, want %v", len(run.calls), run.calls, wantCalls)
	}
	for i, w := range wantCalls {
		if got := run.calls[i]; got.topic != w.topic || !slices.Equal(got.keys, w.keys) {
			t.Fatalf("call %d: %s %v, want %s %v", i, got.topic, got.keys, w.topic, w.keys)
		}
	}
	var batchSpans, dltSpans []sdktrace.ReadOnlySpan
	for _, s := range run.spans {
		switch {
		case s.InstrumentationScope().Name != kretryotel.ScopeName:
		case s.Name() == run.dlt+" process":
			dltSpans = append(dltSpans, s)
		default:
			batchSpans = append(batchSpans, s)
		}
	}
	if len(batchSpans) != len(run.calls) || len(dltSpans) != 1 {
		t.Fatalf("%d batch and %d DLT process spans, want one per batch call (%d) and one", len(batchSpans), len(dltSpans), len(run.calls))
	}
	// The span of each call is the one its handler's context carried.
	spans := make([]sdktrace.ReadOnlySpan, len(run.calls))
	for i, call := range run.calls {
		if spans[i] = run.span(call.span); spans[i] == nil || spans[i].InstrumentationScope().Name != kretryotel.ScopeName {
			t.Fatalf("call %d: the handler's context carried span %s, not a process span that ended", i, call.span.SpanID())
		}
	}
	main1, main2, tierSpan := spans[0].SpanContext(), spans[1].SpanContext(), spans[2].SpanContext()
	origin := map[string]trace.SpanContext{"k1": main1, "k2": main1, "k4": main2} // the main batch each failed in

	// Attributes, counts and status of each batch's span.
	for i, w := range []struct {
		role           string
		attempt        int64
		counts         map[attribute.Key]int64
		failed, events int
		first          string
	}{
		{"main", 1, map[attribute.Key]int64{kretryotel.HandledCountKey: 1, kretryotel.RetriedCountKey: 2}, 2, 2, "k1: boom"},
		{"main", 1, map[attribute.Key]int64{kretryotel.HandledCountKey: 2, kretryotel.RetriedCountKey: 1}, 1, 1, "k4: boom"},
		{"tier", 2, map[attribute.Key]int64{kretryotel.HandledCountKey: 2, kretryotel.DeadLetteredCountKey: 1}, 1, 1, "k2 again: boom"},
	} {
		s, call := spans[i], run.calls[i]
		if s.Name() != call.topic+" process" || s.SpanKind() != trace.SpanKindConsumer || s.Parent().IsValid() {
			t.Errorf("call %d: span %q of kind %v, parent %v; want %q, consumer, a new root",
				i, s.Name(), s.SpanKind(), s.Parent(), call.topic+" process")
		}
		a := attrMap(s.Attributes())
		for k, want := range map[attribute.Key]string{
			"messaging.system":              "kafka",
			"messaging.operation":           "process",
			"messaging.source.name":         call.topic,
			"messaging.batch.message_count": fmt.Sprint(len(call.keys)),
			kretryotel.GroupKey:             run.group,
			kretryotel.RoleKey:              w.role,
			kretryotel.AttemptMinKey:        fmt.Sprint(w.attempt),
			kretryotel.AttemptMaxKey:        fmt.Sprint(w.attempt),
			kretryotel.FirstOffsetKey:       fmt.Sprint(call.offsets[0]),
			kretryotel.LastOffsetKey:        fmt.Sprint(call.offsets[len(call.offsets)-1]),
		} {
			if got := a[k].String(); got != want {
				t.Errorf("call %d: %s = %q, want %q", i, k, got, want)
			}
		}
		counts := map[attribute.Key]int64{}
		for _, kv := range s.Attributes() {
			if strings.HasPrefix(string(kv.Key), "kretry.batch.") {
				counts[kv.Key] = kv.Value.AsInt64()
			}
		}
		if !mapsEqual(counts, w.counts) {
			t.Errorf("call %d: outcome counts %v, want %v", i, counts, w.counts)
		}
		wantStatus := fmt.Sprintf("%d of %d records failed; first: %s", w.failed, len(call.keys), w.first)
		if st := s.Status(); st.Code != codes.Error || st.Description != wantStatus {
			t.Errorf("call %d: status %+v, want Error %q", i, st, wantStatus)
		}
		if n := len(s.Events()); n != w.events {
			t.Errorf("call %d: %d exception events, want %d (one per distinct error)", i, n, w.events)
		}
	}

	// Main-topic batches link to each record's upstream publish span, and
	// to nothing else.
	for i := range 2 {
		var want []link
		for _, k := range run.calls[i].keys {
			want = append(want, link{kretryotel.LinkPreviousHop, run.upstream[k]})
		}
		if got := batchLinks(spans[i]); !sameLinks(got, want) {
			t.Errorf("main batch %d links %s, want %s", i, showLinks(got), showLinks(want))
		}
	}

	// Each tier record: published under the span of the main batch that
	// failed it, with that batch's span as its origin.
	tierRecs := run.records[run.tier]
	if len(tierRecs) != len(batchMainFails) {
		t.Fatalf("the tier holds %d records, want %d", len(tierRecs), len(batchMainFails))
	}
	published := map[string]trace.SpanContext{} // key → its tier publish span
	for _, rec := range tierRecs {
		k := string(rec.Key)
		what := fmt.Sprintf("%s@%d (%s)", run.tier, rec.Offset, k)
		pub := traceparent(t, what, rec.Headers)
		published[k] = pub
		if ps := run.span(pub); ps == nil || ps.InstrumentationScope().Name != kotelScope ||
			ps.Name() != run.tier+" publish" || !sameSpan(ps.Parent(), origin[k]) {
			t.Errorf("%s: traceparent %s is not a publish span under its main batch's span %s", what, pub.SpanID(), origin[k].SpanID())
		}
		if o := headerValues(rec, originHeader); len(o) != 1 || o[0] != traceparentOf(origin[k]) {
			t.Errorf("%s: %s headers %q, want one, %q (its main batch's span)", what, originHeader, o, traceparentOf(origin[k]))
		}
	}
	// The tier batch saw those headers, and links, in record order, to
	// each record's previous hop and origin, each span once.
	tierCall := run.calls[2]
	var want []link
	seen := map[trace.SpanID]bool{}
	for j, k := range tierCall.keys {
		if got := traceparent(t, "tier batch record "+k, tierCall.headers[j]); !sameSpan(got, published[k]) {
			t.Errorf("the tier batch's %s had traceparent %s, the tier holds %s", k, got.SpanID(), published[k].SpanID())
		}
		for _, l := range []link{{kretryotel.LinkPreviousHop, published[k]}, {kretryotel.LinkOrigin, origin[k]}} {
			if !seen[l.span.SpanID()] {
				seen[l.span.SpanID()] = true
				want = append(want, l)
			}
		}
	}
	if got := batchLinks(spans[2]); !sameLinks(got, want) {
		t.Errorf("tier batch links %s, want %s", showLinks(got), showLinks(want))
	}

	// The dead-lettered record: published under the tier batch's span,
	// its origin still k2's main batch.
	dltRecs := run.records[run.dlt]
	if len(dltRecs) != 1 || string(dltRecs[0].Key) != batchTierFails {
		t.Fatalf("the DLT holds %d records, want one, %s", len(dltRecs), batchTierFails)
	}
	what := fmt.Sprintf("%s@%d", run.dlt, dltRecs[0].Offset)
	pub := traceparent(t, what, dltRecs[0].Headers)
	if ps := run.span(pub); ps == nil || ps.Name() != run.dlt+" publish" || !sameSpan(ps.Parent(), tierSpan) {
		t.Errorf("%s: traceparent %s is not a publish span under the tier batch's span %s", what, pub.SpanID(), tierSpan.SpanID())
	}
	if o := headerValues(dltRecs[0], originHeader); len(o) != 1 || o[0] != traceparentOf(main1) {
		t.Errorf("%s: %s headers %q, want one, %q (the first main batch's span)", what, originHeader, o, traceparentOf(main1))
	}
	// Its delivery from the DLT, one record, links to that publish span
	// and to the origin.
	if ls := links(t, dltSpans[0]); len(ls) != 2 || !sameSpan(ls[kretryotel.LinkPreviousHop], pub) || !sameSpan(ls[kretryotel.LinkOrigin], main1) {
		t.Errorf("the DLT delivery links %s, want previous-hop %s and origin %s", linkString(ls), pub.SpanID(), main1.SpanID())
	}
}
