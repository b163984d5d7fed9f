// Package listener runs a kretry listener: it consumes a main topic, its
// retry tiers and its dead-letter topics (DLTs) in one consumer group and
// drives every record to exactly one acknowledged outcome.
//
//	l, err := listener.New([]string{"localhost:9092"}, "orders", handler,
//		listener.Group("billing"),
//		listener.Attempts(4),
//		listener.Backoff(strategy.ExponentialBackoff(time.Second, 2, 10*time.Second)),
//		listener.DLTHandler(dltHandler),
//	)
//	if err != nil {
//		return err
//	}
//	return l.Run(ctx) // blocks until ctx is canceled
//
// When the handler returns an error for a record of the main topic, the
// record is published to the retry tier of its next attempt
// ("orders-retry-1000", "orders-retry-2000", …) with headers that carry its
// history and its due time (docs/headers.md). The main partition moves on at
// once. A retry tier's partition is paused while its head record is not yet
// due and resumed by a single timer when it is: nothing sleeps, and records
// waiting in a tier stay in Kafka. When the attempts run out, or the error is
// not retryable, the record is published to its DLT and later handed to the
// DLT handler.
//
// Listeners can also be declared in struct tags and YAML policy files, so
// operators can change a policy without a rebuild: see Register, PolicyFile
// and docs/configuration.md.
//
// # Batch handlers
//
// A BatchHandler (NewBatch, or a handler field of that type with Register)
// takes many records in one call, for bulk writes. A batch holds one
// partition's records in offset order, up to BatchSize (default 100), all
// from the main topic or all from one retry tier, tier records only once
// due; BatchWait lets a partition wait for a batch to fill. The handler
// returns nil when every record was handled, a *BatchErrors naming the
// records that failed, each with its own error, or any other error to fail
// them all. Only the failed records are forwarded, each routed on its own as
// a single record would be; the others are committed and never handed to
// the handler again:
//
//	l, err := listener.NewBatch(seeds, "orders", listener.BatchHandlerFunc(
//		func(ctx context.Context, recs []*kgo.Record) error {
//			var errs listener.BatchErrors
//			for rec, err := range db.InsertAll(ctx, recs) { // your bulk insert's per-row errors
//				errs.Add(rec, err)
//			}
//			return errs.Err()
//		}), listener.BatchSize(500))
//
// The guarantees below hold for batches as for single records: a batch's
// offsets are committed only once each failed record's forward is
// acknowledged.
//
// # Exactly once
//
// With ExactlyOnce, the records the listener forwards to tiers and DLTs,
// the records handlers publish with Produce, and the offsets they settle
// are committed together in Kafka transactions, every TransactionInterval;
// every topic is read read_committed. A retry copy, a DLT copy or a
// handler's output is then visible exactly once, whatever crashes or
// rebalances happen; handler calls, and their side effects outside Kafka,
// stay at least once (docs/reliability.md, "Exactly once"):
//
//	l, err := listener.New(seeds, "orders", listener.HandlerFunc(
//		func(ctx context.Context, rec *kgo.Record) error {
//			invoice, err := bill(ctx, rec)
//			if err != nil {
//				return err // retried; nothing Produce was given is published
//			}
//			return listener.Produce(ctx, &kgo.Record{Topic: "invoices", Key: rec.Key, Value: invoice})
//		}), listener.ExactlyOnce(os.Getenv("POD_NAME")))
//
// # Key order
//
// With KeyOrder, the records of one key on one main-topic partition are
// handled in offset order across the retry tiers: a record whose key has a
// record waiting in a tier is not handed to the handler but follows it
// into the tier (a follower, retry.HeaderFollows), and is handled once the
// records before it have their outcome; records of other keys flow. The
// keys in retry are read back from the tiers whenever a partition is
// assigned, so a restart or a rebalance keeps the order
// (docs/key-order.md):
//
//	l, err := listener.New(seeds, "accounts", handler, listener.KeyOrder())
//
// # Observing and interoperating
//
// Hooks receive an Event for every outcome, failed publish, pause and
// assignment; Tracing wraps every delivery in a Tracer whose context reaches
// the handler and the records published for it. Neither brings a
// dependency: the modules github.com/kretry/kretry/contrib/kretryprom
// (Prometheus) and github.com/kretry/kretry/contrib/kretryotel
// (OpenTelemetry) implement them. SpringHeaders reads and writes Spring
// Kafka's retry headers, so a listener can take over retry topics a Spring
// service wrote, and the other way round (docs/interop-spring.md).
//
// # Guarantees
//
//   - A record's offset is committed only after its outcome is final: the
//     handler returned nil, or Kafka acknowledged its publish to a tier or
//     DLT. Commits never pass a record whose outcome is not final.
//   - Delivery is at least once. A record is handled again after a crash, a
//     lost partition, or a rebalance that outlasts RevokeTimeout (and, with
//     ExactlyOnce, after an aborted transaction; what it published to Kafka
//     is then visible once all the same).
//   - A retried record is never handled before its due time.
//   - Records of one partition are handled in offset order; partitions are
//     handled concurrently, up to Concurrency at a time. Ordering across
//     tiers is not kept by default: a record that failed is retried after
//     later records of its key have been handled. With KeyOrder it is,
//     per key.
//
// # Several services on one topic
//
// Services that consume one topic, each in its own consumer group (Group),
// share its retry topics and DLT under the default names. Every record a
// listener forwards carries its group (retry.HeaderGroup), and a listener
// hands its handler and DLT handler only its own group's records and those
// that name no group (Spring Kafka's); it skips the others without waiting
// for them, commits past them and reports each as an EventSkipped. Per-group
// topic names (strategy.Naming.GroupTopics) give each group its own tiers
// and DLT instead, so that none reads the others' records. RunAll refuses
// two listeners of one group on one topic and warns about groups that share
// tiers.
//
// # Tuning
//
// FetchMaxWait (default 100 ms) bounds how late a retry can be after a quiet
// spell, because a resumed partition waits for the fetch already in flight.
// While records flow, lateness is a few milliseconds. See docs/architecture.md.
package listener
