// Package dlt is the dead-letter side of kretry: the Handler that is called
// for each record read back from a dead-letter topic (DLT), and the default
// handler that logs it.
//
// A record reaches a DLT when its handler keeps failing until the policy's
// attempts run out, when its error is not retryable (strategy.Permanent, an
// excluded error, an error outside the include list), when the policy's time
// budget has passed, or when its retry headers were corrupt. The listener
// publishes it to the DLT with its full history in headers (see
// docs/headers.md), commits the source record only once Kafka has
// acknowledged that publish, and later hands the DLT record to the Handler:
//
//	l, err := listener.New(seeds, "orders", handle,
//		listener.DLTHandler(dlt.HandlerFunc(func(ctx context.Context, rec *kgo.Record, s retry.State) error {
//			alerts.Notify(ctx, s.OriginalTopic, s.OriginalOffset, s.Reason, s.Error)
//			return nil
//		})),
//	)
//
// What happens when the DLT handler itself fails is the policy's
// retry.DLTStrategy; in every case the record stays in the DLT topic.
package dlt
