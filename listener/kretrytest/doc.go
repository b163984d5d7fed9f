// Package kretrytest tests kretry listeners and their handlers against a
// Kafka cluster, in the spirit of net/http/httptest: an in-process
// cluster (franz-go's kfake) by default, or an existing one named by
// Brokers, so the same test runs on both.
//
// In a test, a Kit does everything and fails the test with a clear
// message when something does not happen in time:
//
//	func TestOrders(t *testing.T) {
//		k := kretrytest.New(t, kretrytest.Topics("orders"))
//		l, err := listener.New(k.Seeds(), "orders", k.Wrap(orders.Handler()),
//			listener.Backoff(strategy.FixedBackoff(10*time.Millisecond)),
//			listener.DLTHandler(k.WrapDLT(nil)))
//		if err != nil {
//			t.Fatal(err)
//		}
//		k.Run(l) // stopped when the test ends; its error fails the test
//		k.Produce(&kgo.Record{Topic: "orders", Key: []byte("flaky")},
//			&kgo.Record{Topic: "orders", Key: []byte("empty")})
//		k.Require("flaky", kretrytest.Handled(2))
//		k.Require("empty", kretrytest.DeadLettered(retry.ReasonPermanent))
//	}
//
// Outside a test (an example program, say) the same parts take a context
// and return errors: NewCluster and Cluster.Close, Cluster.Produce and
// Cluster.Read, Start and Running.Stop, and a Recorder whose Wait waits
// for an Outcome.
//
// # How outcomes are seen
//
// A Recorder wraps the listener's handler (Recorder.Wrap, or
// Recorder.WrapBatch for a batch handler) and its DLT handler
// (Recorder.WrapDLT) and records each call by record key: the topic,
// partition and offset, the attempt, the retry state and the result — for
// a batch, each record's own result, as the listener reads the batch's
// error. A key reaches Handled(n) when the handler returns nil on
// delivery n, Retried(tier) when it is delivered from that retry tier, and
// DeadLettered(reason) when the DLT handler receives it with that reason.
// Cluster.Read reads a topic back with each record's decoded retry state,
// to check a DLT's records and headers.
//
// # Guarantees
//
//   - Nothing sleeps: Recorder.Wait wakes on each recorded call, and every
//     wait ends at its context's deadline (a Kit's: Timeout, 30 s by
//     default) or as soon as the listeners stop.
//   - A failed wait names the key, the outcome wanted, how long it waited
//     and why it stopped, and lists every delivery of the key observed.
//   - A Kit stops its listeners before the test ends and reports their
//     error; it closes its cluster after them.
//   - The package is for tests and examples: kretry's own packages never
//     import it, so kfake stays out of programs that use only them.
package kretrytest
