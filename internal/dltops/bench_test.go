package dltops

import (
	"fmt"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/kretry/kretry/internal/kafkatest"
)

// benchRecords is the size of the DLT the benchmarks read.
const benchRecords = 20000

// benchDLT fills a DLT of 4 partitions with benchRecords records of 256
// byte values dead-lettered from a topic of 4 partitions.
func benchDLT(b *testing.B) (c *kafkatest.Cluster, dlt, orders string) {
	c = kafkatest.New(b)
	dlt, orders = c.Name("dlt"), c.Name("orders")
	c.CreateTopic(dlt, 4)
	c.CreateTopic(orders, 4)
	now := time.Now()
	value := make([]byte, 256)
	rs := make([]*kgo.Record, 0, benchRecords)
	for i := range benchRecords {
		r := deadLetter(dlt, dead{key: fmt.Sprintf("k%06d", i), origTopic: orders, origPart: int32(i % 4),
			origOffset: int64(i), errType: "*net.OpError", reason: "exhausted", age: time.Hour, dltPart: int32(i % 4)}, now)
		r.Value = value
		rs = append(rs, r)
	}
	c.ProduceToPartitions(rs...)
	return c, dlt, orders
}

// BenchmarkReplay reports the records per second a replay sends, without
// a rate limit.
func BenchmarkReplay(b *testing.B) {
	c, dlt, _ := benchDLT(b)
	dir := b.TempDir()
	b.ResetTimer()
	for i := range b.N {
		start := time.Now()
		res, err := Replay(b.Context(), ReplayConfig{Run: fmt.Sprintf("bench-%d", i), DLTs: []string{dlt},
			StateDir: dir, ClientOpts: opts(c)})
		if err != nil || res.Totals.Sent != benchRecords {
			b.Fatalf("%+v %v", res, err)
		}
		b.ReportMetric(float64(benchRecords)/time.Since(start).Seconds(), "records/s")
	}
}

// BenchmarkInspect reports the records per second inspect reads.
func BenchmarkInspect(b *testing.B) {
	c, dlt, _ := benchDLT(b)
	b.ResetTimer()
	for range b.N {
		start := time.Now()
		rep, err := Inspect(b.Context(), InspectConfig{DLTs: []string{dlt}, ClientOpts: opts(c)})
		if err != nil || rep.Read != benchRecords {
			b.Fatalf("%+v %v", rep, err)
		}
		b.ReportMetric(float64(benchRecords)/time.Since(start).Seconds(), "records/s")
	}
}
