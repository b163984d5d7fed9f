package retry_test

import (
	"errors"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/kretry/kretry/retry"
)

// BenchmarkNext is the cost of building one hop's record, paid once per
// failed delivery: a main-topic record with two user headers, forwarded to
// its first tier with a short error text.
func BenchmarkNext(b *testing.B) {
	now := time.Now()
	src := &kgo.Record{Topic: "orders", Partition: 3, Offset: 42, Timestamp: now, Key: []byte("order-42"),
		Value: make([]byte, 100), Headers: []kgo.RecordHeader{{Key: "trace-id", Value: []byte("abc")}, {Key: "tenant", Value: []byte("acme")}}}
	err := errors.New("payment service: connection refused")
	b.ReportAllocs()
	for b.Loop() {
		st := retry.First(src, now).WithFailure(now.Add(time.Second), err.Error(), "*errors.errorString")
		st.Group = "billing"
		if out := retry.Next(src, "orders-retry-1000", src.Partition, st, 0); len(out.Headers) != 12 {
			b.Fatal(len(out.Headers))
		}
	}
}

// BenchmarkDecode is the cost of reading a tier record's retry state, paid
// once per retry delivery.
func BenchmarkDecode(b *testing.B) {
	now := time.Now()
	st := retry.First(&kgo.Record{Topic: "orders", Timestamp: now}, now).WithFailure(now.Add(time.Second), "payment service: connection refused", "*errors.errorString")
	st.Group = "billing"
	hs := st.Append([]kgo.RecordHeader{{Key: "trace-id", Value: []byte("abc")}}, 0)
	b.ReportAllocs()
	for b.Loop() {
		if _, ok, err := retry.Decode(hs); !ok || err != nil {
			b.Fatal(err)
		}
	}
}
