// Package strategy holds the pure decisions behind kretry's retry topics:
// the backoff schedule (Backoff), the topics a record travels through and
// their names (Plan), and which errors are retried and where the rest go
// (Classifier). It does no I/O, keeps no global state and does not import a
// Kafka client, so everything in it can be tested as plain values.
//
// # Plans and topic names
//
// NewPlan turns a main topic, a number of attempts (deliveries including the
// first), a Backoff and a Naming into retry tiers and dead-letter topics. The
// names follow Spring Kafka's @RetryableTopic rules exactly, so a kretry
// consumer and a Spring consumer can share topics:
//
//   - attempts N gives N-1 retries; each has a nominal delay from the Backoff;
//   - a retry topic is <main><RetrySuffix>-<delay in ms>, or -<index> (0-based)
//     with SuffixByIndex or when every delay is the same;
//   - with SingleTopic (the default) a schedule needing one retry topic gets
//     the bare <main><RetrySuffix>, and the run of repeated delays that ends
//     a schedule (a capped exponential) shares one Reusable last tier; a
//     delay repeated anywhere else is an error, as in Spring;
//   - with MultipleTopics every retry has its own topic, and a repeated
//     delay d gets -<d>-0, -<d>-1, ... counted from its first occurrence;
//   - the dead-letter topic is <main><DLTSuffix>, and an error route with
//     suffix s adds <main><s><DLTSuffix>;
//   - with Naming.GroupTopics (off by default, not a Spring rule) every
//     retry and dead-letter name starts with <main>-<group> instead of
//     <main>, so each consumer group of one main topic has its own tiers
//     and DLTs: orders-billing-retry-1000, orders-billing-dlt (NewPlanFor).
//
// Every list entry of Backoff.Delays should serve a retry: a plan with more
// entries than attempts-1 is an error, not a silent truncation.
//
// # Zero values
//
// One rule holds for every setting of Backoff and Naming, as for every
// kretry setting: a zero field is unset and means its documented default
// (a zero Delay is DefaultDelay, an empty suffix the default suffix, a zero
// MaxDelay no cap); values that can never be valid are reported by
// Validate, every one of them, each a *SettingError naming the setting.
// The entries of Backoff.Delays are values, not settings: a zero entry is a
// retry without wait (ListBackoff(0)).
//
// Names never depend on Jitter, which only spreads the actual waits.
//
//	p, err := strategy.NewPlan("orders", 4,
//		strategy.ExponentialBackoff(time.Second, 2, 0), strategy.Naming{})
//	// p.Tiers: orders-retry-1000, orders-retry-2000, orders-retry-4000
//	// p.DLT:   orders-dlt
//
// # Classifying errors
//
// A Classifier looks at the error a handler returned, through its whole
// wrap chain, and returns a Decision: retry, or dead-letter now, and which
// dead-letter topic. Handlers steer it with Permanent (never retry) and
// RetryAfter (retry after a specific delay):
//
//	c := strategy.Classifier{
//		Exclude: []strategy.Matcher{strategy.Is("bad-input", ErrBadInput)},
//		Routes:  []strategy.Route{{Suffix: "-validation", Matcher: strategy.As[*ValidationError]("validation")}},
//	}
//	d := c.Classify(err) // d.Verdict, d.Reason, d.Route, d.Delay
package strategy
