package kretryotel

import (
	"encoding/hex"

	"github.com/twmb/franz-go/pkg/kgo"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"github.com/kretry/kretry/retry"
)

// originHeader holds, on a retry-tier or DLT record, the span context of
// the process span of the record's main-topic delivery — the original
// processing span — as a W3C traceparent value
// ("00-<trace id>-<span id>-<flags>", lower-case hex). It is written on
// every hop, whatever the propagator, and travels with the record like a
// user header (retry.Next copies it; it is not a retry.IsKretryHeader
// name).
const originHeader = retry.HeaderTraceOrigin

// hop is what a delivery's context tells the origin hook about the records
// published for it.
type hop struct {
	origin trace.SpanContext // invalid when unknown
}

type hopKey struct{}

// originHook writes originHeader into the retry-tier and DLT records that
// a traced delivery publishes, and removes the propagator's headers that
// such a record copied from its source, so that the ones kotel writes next
// are the only ones.
type originHook struct {
	propagator propagation.TextMapPropagator
}

var _ kgo.HookProduceRecordBuffered = (*originHook)(nil)

// OnProduceRecordBuffered implements kgo.HookProduceRecordBuffered. It
// acts only on records published for a delivery the Tracer started (their
// Context carries it) that carry kretry's retry headers; it replaces
// r.Headers with a new slice and leaves the old one untouched, which
// the listener may still hold for a later retry of the publish.
func (h *originHook) OnProduceRecordBuffered(r *kgo.Record) {
	if r.Context == nil {
		return
	}
	hp, ok := r.Context.Value(hopKey{}).(*hop)
	if !ok || !hasHeader(r.Headers, retry.HeaderAttempt) {
		return
	}
	stale := h.propagator.Fields()
	headers := make([]kgo.RecordHeader, 0, len(r.Headers)+1)
	for _, hd := range r.Headers {
		if hd.Key == originHeader || contains(stale, hd.Key) {
			continue
		}
		headers = append(headers, hd)
	}
	if hp.origin.IsValid() {
		headers = append(headers, kgo.RecordHeader{Key: originHeader, Value: encodeTraceparent(hp.origin)})
	}
	r.Headers = headers
}

func hasHeader(hs []kgo.RecordHeader, key string) bool {
	for _, h := range hs {
		if h.Key == key {
			return true
		}
	}
	return false
}

func contains(keys []string, key string) bool {
	for _, k := range keys {
		if k == key {
			return true
		}
	}
	return false
}

// encodeTraceparent returns sc as a W3C traceparent value, version 00.
func encodeTraceparent(sc trace.SpanContext) []byte {
	tid, sid := sc.TraceID(), sc.SpanID()
	b := make([]byte, 0, 55)
	b = append(b, "00-"...)
	b = hex.AppendEncode(b, tid[:])
	b = append(b, '-')
	b = hex.AppendEncode(b, sid[:])
	b = append(b, '-')
	return hex.AppendEncode(b, []byte{byte(sc.TraceFlags() & (trace.FlagsSampled | trace.FlagsRandom))})
}

// originOf returns the span context in headers' first originHeader, or an
// invalid one when there is none or it is malformed. kretry writes
// version 00 only, so only that version is read.
func originOf(headers []kgo.RecordHeader) trace.SpanContext {
	for _, h := range headers {
		if h.Key == originHeader {
			return decodeTraceparent(h.Value)
		}
	}
	return trace.SpanContext{}
}

// decodeTraceparent parses a W3C traceparent value of version 00, as
// written by encodeTraceparent. It returns an invalid span context for
// anything else, including all-zero IDs.
func decodeTraceparent(v []byte) trace.SpanContext {
	// 00-<32 hex>-<16 hex>-<2 hex>
	if len(v) != 55 || v[0] != '0' || v[1] != '0' || v[2] != '-' || v[35] != '-' || v[52] != '-' {
		return trace.SpanContext{}
	}
	var c trace.SpanContextConfig
	var flags [1]byte
	if !lowerHex(v[3:35]) || !lowerHex(v[36:52]) || !lowerHex(v[53:55]) {
		return trace.SpanContext{}
	}
	_, err1 := hex.Decode(c.TraceID[:], v[3:35])
	_, err2 := hex.Decode(c.SpanID[:], v[36:52])
	_, err3 := hex.Decode(flags[:], v[53:55])
	if err1 != nil || err2 != nil || err3 != nil || flags[0] > 3 {
		return trace.SpanContext{}
	}
	c.TraceFlags = trace.TraceFlags(flags[0])
	c.Remote = true
	return trace.NewSpanContext(c) // invalid if an ID is all zeros
}

// lowerHex reports whether b is lower-case hex digits only, as W3C Trace
// Context requires.
func lowerHex(b []byte) bool {
	for _, c := range b {
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}
