// Package kretryotel traces kretry listeners with OpenTelemetry, on top of
// franz-go's kotel plugin: every delivery of a record to a handler gets a
// process span, and a retried record's spans link back, hop by hop and
// directly, to the span that processed it first — through every retry tier
// and into the DLT.
//
// It is a module of its own (github.com/kretry/kretry/contrib/kretryotel),
// so OpenTelemetry never enters the dependency graph of kretry's core.
//
// # Wiring
//
// A Tracer is wired into a listener twice: as its listener.Tracer, which
// starts the process spans, and through its franz-go options, which add
// kotel's publish and receive spans and write the trace headers of every
// record the listener publishes:
//
//	t := kretryotel.New(
//		kretryotel.TracerProvider(tp),                      // default: otel.GetTracerProvider()
//		kretryotel.Propagator(propagation.TraceContext{}), // default: otel.GetTextMapPropagator()
//	)
//	l, err := listener.New(seeds, "orders", handler,
//		listener.Tracing(t),
//		listener.ClientOpts(t.ClientOpts()...),
//	)
//
// Both are needed. Without the client options there are no publish or
// receive spans, and a retry-tier or DLT record keeps the trace headers
// of the record it was made from, so the next hop would link to the wrong
// span and not to the original; without Tracing there are no process
// spans, and kotel's publish spans for the retry-tier and DLT records have
// no parent. The handler's context carries the process span, so spans the
// handler starts are its children. The same Tracer may serve several
// listeners.
//
// # Spans and links per hop
//
// For a record of "orders" that fails twice and is dead-lettered (attempts
// 3, one retry topic "orders-retry"), the spans are as follows; └─ marks a
// child span, ⇢ a span link, and ✉ a record with the trace headers it
// carries.
//
//	"orders publish"                 the upstream producer's, if traced
//	  ✉ orders: traceparent = "orders publish"
//	"orders receive"                 kotel's
//	└─ "orders process" #1           attempt=1 role=main outcome=retried, status Error
//	   │   ⇢ previous-hop: "orders publish"
//	   └─ "orders-retry publish" #1  kotel's
//	        ✉ orders-retry: traceparent = "orders-retry publish" #1
//	                        kretry-trace-origin = "orders process" #1
//	"orders-retry receive"
//	└─ "orders-retry process" #2     attempt=2 role=tier due=… outcome=retried, status Error
//	   │   ⇢ previous-hop: "orders-retry publish" #1
//	   │   ⇢ origin:       "orders process" #1
//	   └─ "orders-retry publish" #2
//	        ✉ orders-retry: traceparent = "orders-retry publish" #2
//	                        kretry-trace-origin = "orders process" #1
//	"orders-retry receive"
//	└─ "orders-retry process" #3     attempt=3 role=tier outcome=dead-lettered reason=exhausted
//	   │   ⇢ previous-hop: "orders-retry publish" #2
//	   │   ⇢ origin:       "orders process" #1
//	   └─ "orders-dlt publish"
//	        ✉ orders-dlt: traceparent = "orders-dlt publish"
//	                      kretry-trace-origin = "orders process" #1
//	"orders-dlt receive"
//	└─ "orders-dlt process"          attempt=3 role=dlt outcome=handled
//	       ⇢ previous-hop: "orders-dlt publish"
//	       ⇢ origin:       "orders process" #1
//
// By default each receive span is the child of the publish span in the
// record's headers, so all of a record's hops are one trace, rooted at the
// upstream producer (or at the first receive span). With LinkSpans each
// receive span starts a new trace instead, linked to the publish span, and
// each hop is a trace of its own; the process spans' links are the same.
// A record that reaches the Tracer without kotel's receive span in its
// Context (no kotel hooks on the client) gets a process span whose parent is
// the publish span in its headers, where the receive span would have
// been; with LinkSpans, a new root.
//
// The origin link does not follow the chain: the original process span's
// context travels in a header of kretry's, kretry-trace-origin (a W3C
// traceparent value), written into every retry-tier and DLT record by the
// hook in ClientOpts and carried unchanged from hop to hop. A span three
// hops later links to it directly, even when the spans between them were
// not sampled, were dropped, are in other traces (LinkSpans), or were
// made with another propagator. Each published record carries exactly one
// traceparent (and one of each header the propagator writes): the copies
// the record inherited from its source are removed before kotel writes
// its own. A main-topic delivery is always an origin: a record replayed
// from a DLT to its main topic starts a new chain.
//
// Process spans are named "<topic> process", of kind consumer, with the
// messaging attributes kotel gives its spans (semantic conventions
// v1.18.0: system, source name and kind, operation "process", partition,
// offset, key, consumer group, client ID) and kretry's: AttemptKey,
// RoleKey, GroupKey and, on retry tiers, DueKey; when the delivery ends,
// OutcomeKey, TargetKey and ReasonKey. A failed delivery records the
// handler's error as an exception event and sets the span's status to
// Error with its text. A sampler sees messaging.system,
// messaging.operation, messaging.source.name, kretry.role and
// kretry.attempt; the other attributes are set only on spans that are
// recorded.
//
// # Batches
//
// A Tracer is also a listener.BatchTracer: with listener.NewBatch, each
// call of the batch handler gets one process span, "<topic> process", of
// kind consumer (StartBatch); DLT records, handled one at a time, get a
// delivery's span as above. A batch's records each continue their own
// trace, so the batch's span is a new root — the OpenTelemetry messaging
// conventions' shape for batch processing — and links to every record
// instead: to the span in each record's trace headers (previous-hop) and,
// on a retry tier, to each record's original processing span (origin).
// A span several records name is linked once — the records of a tier
// batch that failed together in one main-topic batch share their origin
// — and links stop at BatchLinkLimit (128 by default, the SDK's own
// limit), in record order; kretry.links.dropped counts the rest.
//
//	"orders process" (batch of 3)     new root, messaging.batch.message_count=3
//	   │   ⇢ previous-hop: the publish span of each record
//	   └─ "orders-retry publish"      for the record that failed
//	        ✉ kretry-trace-origin = "orders process" (the batch)
//	"orders-retry process" (batch)    new root
//	       ⇢ previous-hop: "orders-retry publish", and the other records'
//	       ⇢ origin:       "orders process" (the batch), once
//
// A batch's span carries the batch's attributes, not a record's:
// messaging.batch.message_count, the partition, kretry.attempt.min and
// kretry.attempt.max (the records of a tier batch may be on different
// attempts), kretry.offset.first and kretry.offset.last. When the batch
// ends it counts its records by outcome (kretry.batch.handled,
// kretry.batch.retried, kretry.batch.dead_lettered, kretry.batch.dropped,
// kretry.batch.abandoned) and, if a record failed, sets the Error status
// ("2 of 100 records failed; first: …") and records each distinct error
// as an exception event, up to 8.
//
// The handler's context carries the batch's span but no record's baggage.
// The record published for a failed record has the batch's span as its
// Context, so its publish span is the batch span's child, with the failed
// record's own baggage and origin: on the main topic the batch's span,
// which becomes the origin of every record that fails in it, as a
// delivery's span does for its record.
//
// # Sampling
//
// Links and headers are written whatever the sampling decision: an
// unsampled span still has a span context, and the traceparent values
// carry its sampled flag. What is recorded depends on the sampler:
//
//   - With the default parent chain and a parent-based sampler, the
//     decision made for the first hop holds for every later hop: a
//     record's chain is recorded whole or not at all. The trace stays open
//     as long as the retries take; a backend or tail sampler that closes
//     traces after a window may split or drop long chains — use LinkSpans
//     then.
//   - With LinkSpans, every hop's trace is sampled on its own, so a link
//     may point at a span that was never recorded, and a sampled first
//     delivery may have unsampled retries. A sampler that keeps a hop when
//     a linked span was sampled (the links, with their flags, are in
//     sdktrace.SamplingParameters) keeps chains whole.
//   - A span that is not recorded sets no attributes, status or events, but
//     it still costs about 1.6 µs and 12 allocations per delivery, and a
//     recorded one 6–9 µs and 22 allocations (BenchmarkStartDelivery, and
//     the "Observability overhead" section of docs/benchmarks.md). That is
//     nothing beside a handler that calls a database, and most of a no-op
//     handler's cost. A batch's span reads every record's trace headers
//     for its links, sampled or not: about 0.8 µs and 3 allocations per
//     record (BenchmarkStartBatch).
//   - With a no-op TracerProvider no span contexts are made: no links,
//     and no kretry-trace-origin header is written (a tier record keeps
//     the one it has). A batch then reads no record's headers at all.
package kretryotel
