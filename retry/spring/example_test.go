package spring_test

import (
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/kretry/kretry/retry"
	"github.com/kretry/kretry/retry/spring"
)

// springRetryRecord returns the headers Spring Kafka puts on a record of
// "orders" (partition 3, offset 42, produced at 2025-12-31T23:59:59Z) that
// it forwards to orders-retry after the first failure, due again at
// 2026-01-01T00:00:01.5Z.
func springRetryRecord() []kgo.RecordHeader {
	hdr := func(k string, v ...byte) kgo.RecordHeader { return kgo.RecordHeader{Key: k, Value: v} }
	text := func(k, v string) kgo.RecordHeader { return kgo.RecordHeader{Key: k, Value: []byte(v)} }
	return []kgo.RecordHeader{
		text("trace-id", "abc"),
		text("kafka_exception-fqcn", "org.springframework.kafka.listener.ListenerExecutionFailedException"),
		text("kafka_exception-cause-fqcn", "java.lang.IllegalStateException"),
		text("kafka_exception-message", "Listener failed; db: timeout"),
		text("kafka_original-topic", "orders"),
		hdr("kafka_original-partition", 0, 0, 0, 3),
		hdr("kafka_original-offset", 0, 0, 0, 0, 0, 0, 0, 42),
		hdr("kafka_original-timestamp", 0, 0, 0x01, 0x9b, 0x76, 0xda, 0xa4, 0x18),
		text("kafka_original-timestamp-type", "CREATE_TIME"),
		hdr("retry_topic-original-timestamp", 0x01, 0x9b, 0x76, 0xda, 0xa4, 0x18),
		hdr("retry_topic-attempts", 0, 0, 0, 2),
		hdr("retry_topic-backoff-timestamp", 0x01, 0x9b, 0x76, 0xda, 0xad, 0xdc),
	}
}

func ExampleDecode() {
	st, ok, err := spring.Decode(springRetryRecord())
	if err != nil || !ok {
		fmt.Println(ok, err)
		return
	}
	fmt.Println("attempt:", st.Attempt)
	fmt.Println("due:", st.Due.Format(time.RFC3339Nano))
	fmt.Printf("original: %s/%d@%d at %s\n", st.OriginalTopic, st.OriginalPartition, st.OriginalOffset,
		st.OriginalTimestamp.Format(time.RFC3339))
	fmt.Println("error:", st.ErrorType, "-", st.Error)
	fmt.Println("valid:", st.Validate() == nil)
	// Output:
	// attempt: 2
	// due: 2026-01-01T00:00:01.5Z
	// original: orders/3@42 at 2025-12-31T23:59:59Z
	// error: java.lang.IllegalStateException - Listener failed; db: timeout
	// valid: true
}

func ExampleDecodeDeadLetter() {
	// Spring stamps dead-letter records with the same headers as retry
	// records; a listener reading a dead-letter topic says so.
	st, _, err := spring.DecodeDeadLetter(springRetryRecord())
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println("deliveries:", st.Attempt)
	fmt.Println("reason:", st.Reason)
	fmt.Println("due set:", !st.Due.IsZero())
	// Output:
	// deliveries: 1
	// reason: spring
	// due set: false
}

func ExampleDecode_corrupt() {
	hs := append(springRetryRecord(), kgo.RecordHeader{Key: "retry_topic-attempts", Value: []byte{0, 2}})
	_, ok, err := spring.Decode(hs)
	fmt.Println(ok, err)
	// Output:
	// true kretry: Spring header "retry_topic-attempts": want 1 or 4 bytes, got 2
}

func ExampleAppend() {
	st := retry.State{
		Attempt:           2,
		Due:               time.Date(2026, 1, 1, 0, 0, 1, 500_000_000, time.UTC),
		OriginalTopic:     "orders",
		OriginalPartition: 3,
		OriginalOffset:    42,
		OriginalTimestamp: time.Date(2025, 12, 31, 23, 59, 59, 0, time.UTC),
		FirstFailure:      time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC),
		Error:             "db: timeout",
		ErrorType:         "*net.OpError",
	}
	// A stale Spring header from an earlier hop is replaced, not repeated.
	dst := []kgo.RecordHeader{
		{Key: "trace-id", Value: []byte("abc")},
		{Key: "retry_topic-attempts", Value: []byte{0, 0, 0, 7}},
	}
	binary := map[string]bool{
		"kafka_original-partition": true, "kafka_original-offset": true, "kafka_original-timestamp": true,
		"retry_topic-original-timestamp": true, "retry_topic-attempts": true, "retry_topic-backoff-timestamp": true,
	}
	for _, h := range spring.Append(dst, st, 0) {
		if binary[h.Key] {
			fmt.Printf("%-31s % x\n", h.Key, h.Value)
		} else {
			fmt.Printf("%-31s %q\n", h.Key, h.Value)
		}
	}
	// Output:
	// trace-id                        "abc"
	// kafka_exception-fqcn            "*net.OpError"
	// kafka_exception-cause-fqcn      "*net.OpError"
	// kafka_exception-message         "db: timeout"
	// kafka_exception-stacktrace      "*net.OpError: db: timeout"
	// kafka_original-topic            "orders"
	// kafka_original-partition        00 00 00 03
	// kafka_original-offset           00 00 00 00 00 00 00 2a
	// kafka_original-timestamp        00 00 01 9b 76 da a4 18
	// kafka_original-timestamp-type   "CREATE_TIME"
	// retry_topic-original-timestamp  01 9b 76 da a4 18
	// retry_topic-attempts            00 00 00 02
	// retry_topic-backoff-timestamp   01 9b 76 da ad dc
}

func ExampleStrip() {
	// Replaying a dead-lettered record: reset its retry history, kretry's
	// and Spring's, and keep the user's headers.
	hs := append(springRetryRecord(), kgo.RecordHeader{Key: "kretry-attempt", Value: []byte{0, 0, 0, 3}})
	for _, h := range spring.Strip(retry.UserHeaders(hs)) {
		fmt.Println(h.Key)
	}
	// Output:
	// trace-id
}
