// Package spring translates between kretry's retry bookkeeping (retry.State)
// and the headers Spring Kafka's non-blocking retries (@RetryableTopic) put
// on retry-topic and dead-letter records, so that a kretry listener can take
// over topics a Spring service wrote, and a Spring service can take over
// kretry's.
//
// Decode reads a Spring retry-topic record, DecodeDeadLetter a Spring
// dead-letter record (Spring stamps both with the same headers, so the caller
// says which kind of topic it read from). Resolve picks between kretry's and
// Spring's headers when a record carries both. Append writes Spring's
// headers for a State next to kretry's own, replacing any Spring headers the
// record already carried. IsSpringHeader and Strip recognise and remove
// them, for example when a dead-lettered record is replayed and its history
// must be reset.
//
// A listener turns the translation on with listener.SpringHeaders and a
// Mode: Read, Write or Read|Write. Reading a retry tier, then forwarding:
//
//	st, ok, err := spring.Resolve(rec.Headers, false) // true on a DLT
//	…
//	out := retry.Next(rec, tier.Topic, rec.Partition, next, maxErrorBytes)
//	out.Headers = spring.Append(out.Headers, next, maxErrorBytes) // Write
//
// The header names are Spring's defaults, from RetryTopicHeaders and
// KafkaHeaders:
//
//	retry_topic-attempts            number of the delivery (4 bytes; 1 byte before Spring 2.7.9)
//	retry_topic-backoff-timestamp   due time, epoch ms, BigInteger form (1–8 bytes)
//	retry_topic-original-timestamp  original record timestamp, BigInteger form
//	kafka_original-topic            text
//	kafka_original-partition        4 bytes
//	kafka_original-offset           8 bytes
//	kafka_original-timestamp        8 bytes, epoch ms
//	kafka_original-timestamp-type   text, CREATE_TIME or LOG_APPEND_TIME
//	kafka_exception-fqcn, kafka_exception-cause-fqcn, kafka_exception-message, kafka_exception-stacktrace
//	kafka_key-exception-fqcn, kafka_key-exception-message, kafka_key-exception-stacktrace
//	kafka_dlt-original-*, kafka_dlt-exception-*, kafka_dlt-key-exception-* (plain DeadLetterPublishingRecoverer)
//
// "BigInteger form" is what Java's BigInteger.valueOf(v).toByteArray()
// returns: the shortest big-endian two's complement encoding of v, so a
// positive value whose top byte has its high bit set starts with 0x00.
// docs/interop-spring.md has the full mapping, the take-over procedure and
// the limits.
package spring
