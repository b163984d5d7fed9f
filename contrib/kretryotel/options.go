package kretryotel

import (
	"github.com/twmb/franz-go/pkg/kgo"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
)

// Opt configures a Tracer. Options are applied in order; a later option
// overrides an earlier one that sets the same thing.
type Opt interface {
	apply(*cfg)
}

type opt func(*cfg)

func (o opt) apply(c *cfg) { o(c) }

type cfg struct {
	provider     trace.TracerProvider
	propagator   propagation.TextMapPropagator
	clientID     string
	keyFormatter func(*kgo.Record) (string, error)
	linkSpans    bool

	batchLinkLimit int
}

// TracerProvider sets the provider of the process spans and of kotel's
// publish and receive spans. nil restores the default: the global provider
// (otel.GetTracerProvider) as of New, which follows a later
// otel.SetTracerProvider.
func TracerProvider(tp trace.TracerProvider) Opt {
	return opt(func(c *cfg) { c.provider = tp })
}

// Propagator sets how span contexts are written to and read from record
// headers, by kotel and by the Tracer when it looks for the previous hop.
// Use propagation.TraceContext{} (W3C traceparent), possibly in a
// propagation.NewCompositeTextMapPropagator with propagation.Baggage{}.
// nil restores the default: the global propagator
// (otel.GetTextMapPropagator) as of New — which does nothing until
// otel.SetTextMapPropagator is called, so without one no previous-hop
// links are made (the links to the original processing span do not depend
// on it).
func Propagator(p propagation.TextMapPropagator) Opt {
	return opt(func(c *cfg) { c.propagator = p })
}

// ClientID sets the messaging.kafka.client_id attribute of every span.
// Default: none (the attribute is left out).
func ClientID(id string) Opt { return opt(func(c *cfg) { c.clientID = id }) }

// KeyFormatter sets how a record's key becomes the messaging.kafka.message.key
// attribute, on process spans and kotel's spans alike. The key is left out
// when fn returns an error or text that is not valid UTF-8. Default (nil):
// the key's bytes when they are valid UTF-8.
func KeyFormatter(fn func(*kgo.Record) (string, error)) Opt {
	return opt(func(c *cfg) { c.keyFormatter = fn })
}

// LinkSpans makes each hop its own trace: kotel's receive spans (and, when
// there is no receive span, the process spans) start new traces instead of
// continuing the publisher's, and are joined to it by a link only. Use it
// when retry delays are long, so that one trace does not stay open for
// hours across every tier. The process spans' links to the previous hop
// and to the original processing span are made either way. Default: off,
// every hop of a record is in the trace of its first delivery.
func LinkSpans() Opt { return opt(func(c *cfg) { c.linkSpans = true }) }

// BatchLinkLimit sets the most links the process span of a batch
// (StartBatch) gets: the distinct spans its records link to, in record
// order, each record's previous hop before its origin. The spans beyond
// it are counted in LinksDroppedKey. Raise it together with the SDK's
// SpanLimits.LinkCountLimit, which otherwise discards the earliest links.
// n <= 0 restores the default, DefaultBatchLinkLimit (128).
func BatchLinkLimit(n int) Opt { return opt(func(c *cfg) { c.batchLinkLimit = n }) }
