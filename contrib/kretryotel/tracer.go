package kretryotel

import (
	"context"
	"time"
	"unicode/utf8"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/plugin/kotel"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/baggage"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	semconv "go.opentelemetry.io/otel/semconv/v1.18.0"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"

	"github.com/kretry/kretry/listener"
	"github.com/kretry/kretry/strategy"
)

// ScopeName is the instrumentation scope of the process spans. kotel's
// publish and receive spans have kotel's own scope,
// "github.com/twmb/franz-go/plugin/kotel".
const ScopeName = "github.com/kretry/kretry/contrib/kretryotel"

// Attribute keys that a Tracer sets on process spans, besides the
// messaging ones it shares with kotel (semantic conventions v1.18.0, as
// kotel uses).
const (
	// AttemptKey is the delivery's number: 1 for the first, 2 for the
	// first retry, …; on a DLT delivery, the deliveries the record had
	// before it was dead-lettered. Int.
	AttemptKey = attribute.Key("kretry.attempt")
	// RoleKey is the part the record's topic plays: "main", "tier" or
	// "dlt".
	RoleKey = attribute.Key("kretry.role")
	// GroupKey is the listener's consumer group.
	GroupKey = attribute.Key("kretry.group")
	// DueKey is, on a retry-tier delivery, the time the record was due,
	// in RFC 3339 with up to nanoseconds, UTC. Absent otherwise.
	DueKey = attribute.Key("kretry.due")
	// OutcomeKey is what the delivery came to: "handled", "retried",
	// "dead-lettered", "dropped", "dlt-handler-failed" (the names of
	// listener.EventKind), or OutcomeAbandoned.
	OutcomeKey = attribute.Key("kretry.outcome")
	// TargetKey is the retry tier or DLT the record was published to.
	// Absent when it was not published.
	TargetKey = attribute.Key("kretry.target")
	// ReasonKey is why the record was dead-lettered or dropped. Absent
	// otherwise.
	ReasonKey = attribute.Key("kretry.reason")
	// LinkKey is set on each link of a process span: LinkPreviousHop or
	// LinkOrigin.
	LinkKey = attribute.Key("kretry.link")
)

// Values of LinkKey and OutcomeKey.
const (
	// LinkPreviousHop marks the link to the span found in the record's
	// trace headers: the publish span of the delivery that forwarded it,
	// or, on a main-topic record, its producer's span.
	LinkPreviousHop = "previous-hop"
	// LinkOrigin marks the link, on retry-tier and DLT deliveries, to the
	// process span of the record's main-topic delivery.
	LinkOrigin = "origin"
	// OutcomeAbandoned is the outcome of a delivery cut short because the
	// listener stopped; the record will be delivered again.
	OutcomeAbandoned = "abandoned"
)

var (
	consumerKind    = trace.WithSpanKind(trace.SpanKindConsumer)
	messagingSystem = semconv.MessagingSystemKey.String("kafka")
	linkPreviousHop = []attribute.KeyValue{LinkKey.String(LinkPreviousHop)}
	linkOrigin      = []attribute.KeyValue{LinkKey.String(LinkOrigin)}
	roleAttrs       = [...]attribute.KeyValue{
		strategy.RoleUnknown: RoleKey.String(strategy.RoleUnknown.String()),
		strategy.RoleMain:    RoleKey.String(strategy.RoleMain.String()),
		strategy.RoleTier:    RoleKey.String(strategy.RoleTier.String()),
		strategy.RoleDLT:     RoleKey.String(strategy.RoleDLT.String()),
	}
)

// Tracer traces a kretry listener with OpenTelemetry: it is a
// listener.Tracer, whose process spans wrap every delivery, and a
// listener.BatchTracer, whose process spans wrap every batch handler call;
// its ClientOpts add franz-go's kotel hooks, whose publish and receive
// spans carry the trace from hop to hop. Make one with New; a Tracer is safe
// for concurrent use and may serve several listeners.
type Tracer struct {
	tracer       trace.Tracer
	propagator   propagation.TextMapPropagator
	kotel        *kotel.Tracer
	hook         *originHook
	clientID     string
	keyFormatter func(*kgo.Record) (string, error)
	linkSpans    bool

	batchLinkLimit int
	noop           bool // the provider makes no spans: StartBatch reads no headers
}

var _ listener.Tracer = (*Tracer)(nil)

// New returns a Tracer configured by opts. Every option has a usable
// default, so New() traces with the global provider and propagator.
func New(opts ...Opt) *Tracer {
	var c cfg
	for _, o := range opts {
		o.apply(&c)
	}
	if c.provider == nil {
		c.provider = otel.GetTracerProvider()
	}
	if c.propagator == nil {
		c.propagator = otel.GetTextMapPropagator()
	}
	kopts := []kotel.TracerOpt{kotel.TracerProvider(c.provider), kotel.TracerPropagator(c.propagator)}
	if c.clientID != "" {
		kopts = append(kopts, kotel.ClientID(c.clientID))
	}
	if c.keyFormatter != nil {
		kopts = append(kopts, kotel.KeyFormatter(c.keyFormatter))
	}
	if c.linkSpans {
		kopts = append(kopts, kotel.LinkSpans())
	}
	if c.batchLinkLimit <= 0 {
		c.batchLinkLimit = DefaultBatchLinkLimit
	}
	tracer := c.provider.Tracer(ScopeName, trace.WithSchemaURL(semconv.SchemaURL))
	_, isNoop := tracer.(noop.Tracer)
	return &Tracer{
		tracer:         tracer,
		propagator:     c.propagator,
		kotel:          kotel.NewTracer(kopts...),
		hook:           &originHook{propagator: c.propagator},
		clientID:       c.clientID,
		keyFormatter:   c.keyFormatter,
		linkSpans:      c.linkSpans,
		batchLinkLimit: c.batchLinkLimit,
		noop:           isNoop,
	}
}

// ClientOpts returns the franz-go options that complete the tracing: pass
// them to the listener with listener.ClientOpts(t.ClientOpts()...). They
// add kotel's hooks, which start a receive span for every record fetched
// and a publish span for every record produced (each retry-tier and DLT
// record is published under the process span of the delivery that failed)
// and write the publish span into the record's headers; and a hook of the
// Tracer's own, which writes the original processing span into every
// retry-tier and DLT record (see the package documentation).
func (t *Tracer) ClientOpts() []kgo.Opt {
	// The origin hook runs first: it clears the propagator's headers that
	// the record copied from its source, so that kotel's are the only ones.
	return []kgo.Opt{kgo.WithHooks(t.hook, t.kotel)}
}

// StartDelivery implements listener.Tracer: it starts the delivery's
// process span, named "<topic> process", of kind consumer, with the
// messaging attributes kotel gives its spans and kretry's own (AttemptKey,
// RoleKey, GroupKey, DueKey; see the package documentation). Its parent is
// kotel's receive span in rec.Context; without one, the span found in the
// record's trace headers (with LinkSpans, or without such a span: none,
// never a span ctx carries). It links to the span in the record's trace
// headers (LinkPreviousHop) and, on a retry-tier or DLT delivery, to the
// process span of the record's main-topic delivery (LinkOrigin), read
// from the kretry-trace-origin header.
//
// The returned context carries the span (trace.SpanFromContext returns
// it), the record's baggage, and ctx's values and cancellation; finish
// records the outcome and ends the span. rec is not modified.
func (t *Tracer) StartDelivery(ctx context.Context, rec *kgo.Record, d listener.Delivery) (context.Context, func(listener.Outcome)) {
	if ctx == nil {
		ctx = context.Background()
	}
	carrier := kotel.NewRecordCarrier(rec)
	prev := t.propagator.Extract(context.Background(), carrier)
	prevSC := trace.SpanContextFromContext(prev)
	var origin trace.SpanContext
	if d.Role != strategy.RoleMain {
		origin = originOf(rec.Headers)
	}

	opts := make([]trace.SpanStartOption, 0, 5)
	opts = append(opts, consumerKind, trace.WithAttributes(startAttrs(rec, d)...))
	switch prevOK, originOK := prevSC.IsValid(), origin.IsValid() && !origin.Equal(prevSC); {
	case prevOK && originOK:
		opts = append(opts, trace.WithLinks(trace.Link{SpanContext: prevSC, Attributes: linkPreviousHop},
			trace.Link{SpanContext: origin, Attributes: linkOrigin}))
	case prevOK:
		opts = append(opts, trace.WithLinks(trace.Link{SpanContext: prevSC, Attributes: linkPreviousHop}))
	case originOK:
		opts = append(opts, trace.WithLinks(trace.Link{SpanContext: origin, Attributes: linkOrigin}))
	}

	// The parent: kotel's receive span; else the previous hop, as kotel
	// would have done; never a span that ctx happens to carry (Run's).
	var received trace.Span
	var parent trace.SpanContext
	bag := baggage.FromContext(prev)
	if rec.Context != nil {
		if s := trace.SpanFromContext(rec.Context); s.SpanContext().IsValid() {
			received = s
		}
		if b := baggage.FromContext(rec.Context); b.Len() > 0 {
			bag = b
		}
	}
	switch {
	case received != nil:
		ctx, parent = trace.ContextWithSpan(ctx, received), received.SpanContext()
	case prevSC.IsValid() && !t.linkSpans:
		ctx, parent = trace.ContextWithRemoteSpanContext(ctx, prevSC), prevSC
	default:
		opts = append(opts, trace.WithNewRoot())
		if trace.SpanContextFromContext(ctx).IsValid() {
			ctx = trace.ContextWithSpan(ctx, nil) // hidden from a provider that ignores WithNewRoot
		}
	}
	if bag.Len() > 0 {
		ctx = baggage.ContextWithBaggage(ctx, bag)
	}

	ctx, span := t.tracer.Start(ctx, rec.Topic+" process", opts...)
	if span.IsRecording() {
		span.SetAttributes(t.moreAttrs(rec, d)...)
	}
	if sc := span.SpanContext(); d.Role == strategy.RoleMain && !sc.Equal(parent) {
		// (A no-op provider returns the parent's context: no span of its own.)
		origin = sc
	}
	ctx = context.WithValue(ctx, hopKey{}, &hop{origin: origin})
	return ctx, func(o listener.Outcome) { finish(span, o) }
}

// startAttrs returns the attributes a process span starts with: the few a
// sampler may decide on. The others are set by moreAttrs once the span is
// known to be recorded, so an unsampled delivery does not pay for them.
func startAttrs(rec *kgo.Record, d listener.Delivery) []attribute.KeyValue {
	return []attribute.KeyValue{
		messagingSystem,
		semconv.MessagingOperationProcess,
		semconv.MessagingSourceName(rec.Topic),
		roleAttr(d.Role),
		AttemptKey.Int(int(d.Attempt)),
	}
}

// moreAttrs returns the rest of a recorded process span's attributes.
func (t *Tracer) moreAttrs(rec *kgo.Record, d listener.Delivery) []attribute.KeyValue {
	attrs := make([]attribute.KeyValue, 0, 9)
	attrs = append(attrs,
		semconv.MessagingSourceKindTopic,
		semconv.MessagingKafkaSourcePartition(int(rec.Partition)),
		semconv.MessagingKafkaMessageOffsetKey.Int64(rec.Offset),
		semconv.MessagingKafkaConsumerGroupKey.String(d.Group),
		GroupKey.String(d.Group),
	)
	if !d.Due.IsZero() {
		attrs = append(attrs, DueKey.String(d.Due.UTC().Format(time.RFC3339Nano)))
	}
	if key, ok := t.key(rec); ok {
		attrs = append(attrs, semconv.MessagingKafkaMessageKeyKey.String(key))
	}
	if t.clientID != "" {
		attrs = append(attrs, semconv.MessagingKafkaClientIDKey.String(t.clientID))
	}
	if rec.Key != nil && rec.Value == nil {
		attrs = append(attrs, semconv.MessagingKafkaMessageTombstoneKey.Bool(true))
	}
	return attrs
}

// key returns the record's key as kotel would show it.
func (t *Tracer) key(rec *kgo.Record) (string, bool) {
	if rec.Key == nil {
		return "", false
	}
	if t.keyFormatter != nil {
		k, err := t.keyFormatter(rec)
		return k, err == nil && utf8.ValidString(k)
	}
	if !utf8.Valid(rec.Key) {
		return "", false
	}
	return string(rec.Key), true
}

// finish records what a delivery came to on its span and ends it.
func finish(span trace.Span, o listener.Outcome) {
	if span.IsRecording() {
		outcome := OutcomeAbandoned
		if o.Kind != 0 {
			outcome = o.Kind.String()
		}
		// One SetAttributes call: each call grows the span's attribute slice.
		var buf [3]attribute.KeyValue
		attrs := append(buf[:0], OutcomeKey.String(outcome))
		if o.Target != "" {
			attrs = append(attrs, TargetKey.String(o.Target))
		}
		if o.Reason != "" {
			attrs = append(attrs, ReasonKey.String(o.Reason))
		}
		span.SetAttributes(attrs...)
		if o.Err != nil {
			span.RecordError(o.Err)
			span.SetStatus(codes.Error, o.Err.Error())
		}
	}
	span.End()
}
