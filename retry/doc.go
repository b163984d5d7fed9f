// Package retry holds what describes a record's retries: the Policy (how
// many attempts, which backoff, which errors, which topics), the kretry-*
// header codec (State, Decode, Append — the only place header names and
// encodings live), and Next, which builds the record for the next hop.
//
// A Policy's zero value, once normalized, is Spring Kafka's default, so
// migrating users meet no surprises:
//
//	p := retry.Policy{}.Normalize() // 3 attempts, fixed 1 s, "-retry", "-dlt"
//	plan, err := p.Plan("orders")   // orders-retry, orders-dlt
//
// Handlers see the state of the delivery they run through their context:
//
//	func handle(ctx context.Context, rec *kgo.Record) error {
//		if st, ok := retry.FromContext(ctx); ok {
//			log.Printf("retry %d of %s@%d, first failed %v", st.Attempt,
//				st.OriginalTopic, st.OriginalOffset, st.FirstFailure)
//		}
//		…
//	}
//
// The header encodings are documented byte by byte in docs/headers.md.
package retry
