// Package config declares kretry listeners without code changes to their
// policies: in struct tags on handler fields, in YAML policy files, and (for
// the kretry CLI) in flags. Every surface uses the same keys (Fields) and
// the same rules, and resolves to the same Spec — topic, group, retry
// policy, topic settings, batch settings, exactly-once settings and
// key-order settings — as the listener package's Go options. The batch
// settings (BatchKeys) apply to batch handlers only; transactionalId and
// transactionInterval (ExactlyOnceKeys) to exactly-once listeners only;
// the key-order settings (KeyOrderKeys) to single-record handlers only,
// and followersOnDeadLetter and maxKeysInRetry to key-ordered listeners
// only. keyOrder and exactlyOnce do not combine yet.
//
//	type Handlers struct {
//		Orders    listener.HandlerFunc `kretry:"topic=orders,group=billing,attempts=4,delay=1s,multiplier=2,maxDelay=10s,exclude=validation|notfound"`
//		OrdersDLT dlt.HandlerFunc      `kretry:"dlt=orders"`
//	}
//
// and, in a policy file an operator can change without a rebuild:
//
//	version: 1
//	defaults:
//	  attempts: 4
//	listeners:
//	  - topic: orders
//	    maxDelay: 30s
//
// listener.Register turns a struct of tagged handlers, optionally with
// policy files (listener.PolicyFile), into listeners. This package does
// the parsing and resolving: ParseTag, Parse and Load read declarations
// (Decl); Resolve combines them; Registry maps the error names used in
// include, exclude and routes to strategy.Matcher values.
//
// # Precedence
//
// When several sources set the same field of the same listener, the
// higher one wins, field by field:
//
//  1. built-in defaults (DefaultSpec: Spring Kafka's policy defaults)
//  2. Go options given to listener.Register (or listener.New)
//  3. the handler field's kretry struct tag
//  4. each policy file, in the order given: its defaults, then the
//     listener's entry
//
// So everything a policy file says is in effect, and an operator reading
// it needs no code to know. A source that chooses the backoff kind, or
// include versus exclude, also discards the lower sources' settings that
// belong to the other choice (see Resolve).
//
// # Zero values
//
// One rule holds for every number and duration, on every surface: 0 (0s)
// means the setting's documented default, as an unset field of the Go
// structs does ("attempts: 0" is 3 attempts, "partitions: 0" the main
// topic's count, "batch: 0" DefaultBatchSize, "maxKeysInRetry: 0"
// DefaultMaxKeysInRetry). The entries of delays are values and mean what
// they say: "delays: [0s]" retries without wait.
//
// # Errors
//
// Every problem is an *Error that says where it was written (file:line:col,
// or the struct type and field of a tag), the key, and the rule, and all
// problems are reported at once, in the words retry.Policy.Validate uses
// for the same problem given in Go. Named errors must be registered; a
// policy that would fail at start-up fails when it is resolved.
package config
