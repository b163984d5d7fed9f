package kretryotel

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/plugin/kotel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/baggage"
	"go.opentelemetry.io/otel/codes"
	semconv "go.opentelemetry.io/otel/semconv/v1.18.0"
	"go.opentelemetry.io/otel/trace"

	"github.com/kretry/kretry/listener"
	"github.com/kretry/kretry/strategy"
)

// Attribute keys that a Tracer sets on the process span of a batch
// (StartBatch) instead of the per-record ones a delivery's span has
// (AttemptKey, DueKey, the record's offset and key, OutcomeKey, TargetKey
// and ReasonKey).
const (
	// AttemptMinKey is the lowest delivery number among the records of a
	// batch: 1 on the main topic; on a retry tier, records of several
	// attempts may share a batch. Int.
	AttemptMinKey = attribute.Key("kretry.attempt.min")
	// AttemptMaxKey is the highest delivery number among the records of a
	// batch. Int.
	AttemptMaxKey = attribute.Key("kretry.attempt.max")
	// FirstOffsetKey is the offset of the first record of a batch (the
	// records of a batch are of one partition, in offset order). Int.
	FirstOffsetKey = attribute.Key("kretry.offset.first")
	// LastOffsetKey is the offset of the last record of a batch. Int.
	LastOffsetKey = attribute.Key("kretry.offset.last")
	// LinksDroppedKey is the number of distinct spans a batch's process
	// span would have linked to beyond its link limit (BatchLinkLimit).
	// Int; absent when no link was left out.
	LinksDroppedKey = attribute.Key("kretry.links.dropped")
)

// Attribute keys of the outcome summary of a batch's process span, set
// when the batch ends: how many of its records came to each outcome. Int;
// a count of zero is left out. A record whose outcome is another kind
// counts under "kretry.batch." and the kind's name with "_" for "-".
const (
	HandledCountKey      = attribute.Key("kretry.batch.handled")
	RetriedCountKey      = attribute.Key("kretry.batch.retried")
	DeadLetteredCountKey = attribute.Key("kretry.batch.dead_lettered")
	DroppedCountKey      = attribute.Key("kretry.batch.dropped")
	// AbandonedCountKey counts the records whose delivery was cut short
	// because the listener stopped (OutcomeAbandoned).
	AbandonedCountKey = attribute.Key("kretry.batch.abandoned")
)

// DefaultBatchLinkLimit is the most links a batch's process span gets
// unless BatchLinkLimit says otherwise: the OpenTelemetry SDK's default
// SpanLimits.LinkCountLimit, beyond which the SDK would discard the
// earliest links.
const DefaultBatchLinkLimit = 128

// maxBatchExceptions bounds the exception events of a batch's span: one
// for each distinct error text among its failed records, up to this many.
const maxBatchExceptions = 8

var _ listener.BatchTracer = (*Tracer)(nil)

// StartBatch implements listener.BatchTracer: it starts one process span
// for a call of a batch handler, named "<topic> process" like a single
// delivery's, of kind consumer. The span is a new root: the records of a
// batch each continue a trace of their own (each has its own kotel receive
// span), so, as the OpenTelemetry messaging conventions do for batch
// processing, the span links to them instead of choosing one parent. It
// links to the span in each record's trace headers (LinkPreviousHop) and,
// on a retry tier, to each record's original processing span, read from
// its kretry-trace-origin header (LinkOrigin); a span is linked once
// however many records name it, and the links are made in record order up
// to BatchLinkLimit (LinksDroppedKey counts the rest).
//
// Its attributes are messaging.system, messaging.operation "process",
// messaging.source.name and kind, messaging.batch.message_count,
// messaging.kafka.source.partition, messaging.kafka.consumer.group and
// client ID, and kretry's RoleKey, GroupKey, AttemptMinKey,
// AttemptMaxKey, FirstOffsetKey and LastOffsetKey. A sampler sees
// messaging.system, messaging.operation, messaging.source.name,
// messaging.batch.message_count, kretry.role, kretry.attempt.min and
// kretry.attempt.max, and the links.
//
// The returned context carries the span and ctx's values and
// cancellation, and no record's baggage (the records' may differ).
// record(i) returns the Context of the record published for a failed
// recs[i]: the span, recs[i]'s baggage, and recs[i]'s original processing
// span for the origin hook of ClientOpts — the batch's span on the main
// topic, as a main-topic delivery's span is the origin of its record, and
// the origin in recs[i]'s header on a retry tier. finish counts the
// outcomes (HandledCountKey, ...), sets an Error status when a record
// failed, with the number failed and the first error, records each
// distinct error text (up to 8) as an exception event with the offset of
// its first record, and ends the span.
//
// With a no-op TracerProvider (noop.NewTracerProvider), StartBatch reads
// no record's headers. recs is not modified.
func (t *Tracer) StartBatch(ctx context.Context, recs []*kgo.Record, ds []listener.Delivery) (context.Context, func(int) context.Context, func([]listener.Outcome)) {
	if ctx == nil {
		ctx = context.Background()
	}
	if len(recs) == 0 {
		return ctx, func(int) context.Context { return nil }, func([]listener.Outcome) {}
	}
	var d listener.Delivery // Group and Role are the same for every record
	if len(ds) > 0 {
		d = ds[0]
	}
	lo, hi := attemptRange(ds)

	opts := make([]trace.SpanStartOption, 0, 4)
	opts = append(opts, consumerKind, trace.WithNewRoot(), trace.WithAttributes(
		messagingSystem,
		semconv.MessagingOperationProcess,
		semconv.MessagingSourceName(recs[0].Topic),
		semconv.MessagingBatchMessageCount(len(recs)),
		roleAttr(d.Role),
		AttemptMinKey.Int(int(lo)),
		AttemptMaxKey.Int(int(hi)),
	))
	dropped := 0
	if !t.noop {
		var links []trace.Link
		links, dropped = t.batchLinks(recs, d.Role)
		if len(links) > 0 {
			opts = append(opts, trace.WithLinks(links...))
		}
	}
	if trace.SpanContextFromContext(ctx).IsValid() {
		ctx = trace.ContextWithSpan(ctx, nil) // hidden from a provider that ignores WithNewRoot
	}
	ctx, span := t.tracer.Start(ctx, recs[0].Topic+" process", opts...)
	if span.IsRecording() {
		span.SetAttributes(t.batchAttrs(recs, d, dropped)...)
	}
	b := &batch{t: t, ctx: ctx, span: span, role: d.Role, recs: slices.Clone(recs)}
	return ctx, b.record, b.finish
}

// attemptRange returns the lowest and highest attempt of ds.
func attemptRange(ds []listener.Delivery) (lo, hi int32) {
	for i, d := range ds {
		if i == 0 || d.Attempt < lo {
			lo = d.Attempt
		}
		if i == 0 || d.Attempt > hi {
			hi = d.Attempt
		}
	}
	return lo, hi
}

// roleAttr returns the RoleKey attribute of role.
func roleAttr(role strategy.TopicRole) attribute.KeyValue {
	if int(role) >= 0 && int(role) < len(roleAttrs) {
		return roleAttrs[role]
	}
	return RoleKey.String(role.String())
}

// spanID identifies a span, whatever its flags and remoteness.
type spanID struct {
	trace trace.TraceID
	span  trace.SpanID
}

// batchLinks returns the links of a batch's span: each record's previous
// hop and, off the main topic, its origin, each span once, up to the link
// limit; and the number of distinct spans left out.
func (t *Tracer) batchLinks(recs []*kgo.Record, role strategy.TopicRole) (links []trace.Link, dropped int) {
	n := len(recs)
	if role != strategy.RoleMain {
		n *= 2
	}
	links = make([]trace.Link, 0, min(n, t.batchLinkLimit))
	seen := make(map[spanID]struct{}, min(n, t.batchLinkLimit))
	add := func(sc trace.SpanContext, attrs []attribute.KeyValue) {
		if !sc.IsValid() {
			return
		}
		id := spanID{sc.TraceID(), sc.SpanID()}
		if _, dup := seen[id]; dup {
			return
		}
		seen[id] = struct{}{}
		if len(links) == t.batchLinkLimit {
			dropped++
			return
		}
		links = append(links, trace.Link{SpanContext: sc, Attributes: attrs})
	}
	for _, rec := range recs {
		add(trace.SpanContextFromContext(t.propagator.Extract(context.Background(), kotel.NewRecordCarrier(rec))), linkPreviousHop)
		if role != strategy.RoleMain {
			add(originOf(rec.Headers), linkOrigin)
		}
	}
	return links, dropped
}

// batchAttrs returns the rest of a recorded batch span's attributes.
func (t *Tracer) batchAttrs(recs []*kgo.Record, d listener.Delivery, dropped int) []attribute.KeyValue {
	attrs := make([]attribute.KeyValue, 0, 8)
	attrs = append(attrs,
		semconv.MessagingSourceKindTopic,
		semconv.MessagingKafkaSourcePartition(int(recs[0].Partition)),
		semconv.MessagingKafkaConsumerGroupKey.String(d.Group),
		GroupKey.String(d.Group),
		FirstOffsetKey.Int64(recs[0].Offset),
		LastOffsetKey.Int64(recs[len(recs)-1].Offset),
	)
	if t.clientID != "" {
		attrs = append(attrs, semconv.MessagingKafkaClientIDKey.String(t.clientID))
	}
	if dropped > 0 {
		attrs = append(attrs, LinksDroppedKey.Int(dropped))
	}
	return attrs
}

// batch is one batch handler call's span and what its records' contexts
// need.
type batch struct {
	t    *Tracer
	ctx  context.Context // the handler's context, with the span
	span trace.Span
	role strategy.TopicRole
	recs []*kgo.Record
}

// record returns the Context of the record published for recs[i], or nil
// when i is out of range.
func (b *batch) record(i int) context.Context {
	if i < 0 || i >= len(b.recs) {
		return nil
	}
	rec := b.recs[i]
	origin := b.span.SpanContext() // invalid when the provider makes no spans
	if b.role != strategy.RoleMain {
		origin = originOf(rec.Headers)
	}
	ctx := context.WithoutCancel(b.ctx)
	if bag := b.t.baggageOf(rec); bag.Len() > 0 {
		ctx = baggage.ContextWithBaggage(ctx, bag)
	}
	return context.WithValue(ctx, hopKey{}, &hop{origin: origin})
}

// baggageOf returns rec's baggage: its receive context's, or else its
// headers'.
func (t *Tracer) baggageOf(rec *kgo.Record) baggage.Baggage {
	if rec.Context != nil {
		if bag := baggage.FromContext(rec.Context); bag.Len() > 0 {
			return bag
		}
	}
	return baggage.FromContext(t.propagator.Extract(context.Background(), kotel.NewRecordCarrier(rec)))
}

// outcomeCountKeys are the count keys of the outcomes a batch's records
// come to, by kind; 0 is OutcomeAbandoned.
var outcomeCountKeys = map[listener.EventKind]attribute.Key{
	0:                          AbandonedCountKey,
	listener.EventHandled:      HandledCountKey,
	listener.EventRetried:      RetriedCountKey,
	listener.EventDeadLettered: DeadLetteredCountKey,
	listener.EventDropped:      DroppedCountKey,
}

// countKey returns the outcome count key of kind.
func countKey(kind listener.EventKind) attribute.Key {
	if k, ok := outcomeCountKeys[kind]; ok {
		return k
	}
	return attribute.Key("kretry.batch." + strings.ReplaceAll(kind.String(), "-", "_"))
}

// finish records what the records of the batch came to on its span and
// ends it.
func (b *batch) finish(outs []listener.Outcome) {
	span := b.span
	if !span.IsRecording() {
		span.End()
		return
	}
	// Counts in the order of the kinds' first appearance.
	var kinds []listener.EventKind
	var counts []int
	failed, first := 0, -1
	for i, o := range outs {
		j := slices.Index(kinds, o.Kind)
		if j < 0 {
			kinds, counts = append(kinds, o.Kind), append(counts, 0)
			j = len(kinds) - 1
		}
		counts[j]++
		if o.Err != nil {
			failed++
			if first < 0 {
				first = i
			}
		}
	}
	attrs := make([]attribute.KeyValue, len(kinds))
	for i, k := range kinds {
		attrs[i] = countKey(k).Int(counts[i])
	}
	span.SetAttributes(attrs...)
	if failed > 0 {
		b.exceptions(outs)
		span.SetStatus(codes.Error, fmt.Sprintf("%d of %d records failed; first: %v", failed, len(outs), outs[first].Err))
	}
	span.End()
}

// exceptions records each distinct error text of outs, up to
// maxBatchExceptions, as an exception event with the offset of the first
// record that failed with it.
func (b *batch) exceptions(outs []listener.Outcome) {
	seen := make(map[string]struct{}, maxBatchExceptions)
	for i, o := range outs {
		if o.Err == nil {
			continue
		}
		text := o.Err.Error()
		if _, dup := seen[text]; dup {
			continue
		}
		if len(seen) == maxBatchExceptions {
			return
		}
		seen[text] = struct{}{}
		var opts []trace.EventOption
		if i < len(b.recs) {
			opts = append(opts, trace.WithAttributes(semconv.MessagingKafkaMessageOffsetKey.Int64(b.recs[i].Offset)))
		}
		b.span.RecordError(o.Err, opts...)
	}
}
