package listener_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/kretry/kretry/listener"
)

// BenchmarkHappyPath consumes the same topic of 100-byte records with a
// plain franz-go group poll loop and with a kretry listener (no-op handler,
// one consumer group, default settings) in the same run, alternating, and
// reports both rates and their ratio. Run it with
//
//	go test ./listener -run '^$' -bench HappyPath -benchtime 3x
func BenchmarkHappyPath(b *testing.B) {
	const partitions = 6
	records := 500_000
	if testing.Short() {
		records = 50_000
	}
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(partitions, "bench"))
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	seeds := c.ListenAddrs()
	fill(b, seeds, "bench", records)

	var rawTotal, kretryTotal time.Duration
	for i := 0; b.Loop(); i++ {
		rawTotal += consumeRaw(b, seeds, "bench", fmt.Sprintf("raw-%d", i), records)
		kretryTotal += consumeKretry(b, seeds, "bench", fmt.Sprintf("kretry-%d", i), records)
	}
	n := float64(b.N * records)
	raw, kr := n/rawTotal.Seconds(), n/kretryTotal.Seconds()
	b.ReportMetric(raw, "raw-rec/s")
	b.ReportMetric(kr, "kretry-rec/s")
	b.ReportMetric(kr/raw, "ratio")
}

func fill(b *testing.B, seeds []string, topic string, n int) {
	cl, err := kgo.NewClient(kgo.SeedBrokers(seeds...), kgo.DefaultProduceTopic(topic))
	if err != nil {
		b.Fatal(err)
	}
	defer cl.Close()
	val := make([]byte, 100)
	for i := range n {
		cl.Produce(context.Background(), &kgo.Record{Key: fmt.Appendf(nil, "%d", i), Value: val}, func(_ *kgo.Record, err error) {
			if err != nil {
				b.Error(err)
			}
		})
	}
	if err := cl.Flush(context.Background()); err != nil {
		b.Fatal(err)
	}
}

// Both consumers are timed from the first fetched batch to the last record
// handled: group joins on kfake vary by hundreds of milliseconds and would
// drown the difference being measured.

type firstFetch struct{ at atomic.Pointer[time.Time] }

func (f *firstFetch) OnFetchBatchRead(kgo.BrokerMetadata, string, int32, kgo.FetchBatchMetrics) {
	if f.at.Load() == nil {
		now := time.Now()
		f.at.CompareAndSwap(nil, &now)
	}
}

func consumeRaw(b *testing.B, seeds []string, topic, group string, n int) time.Duration {
	var start firstFetch
	cl, err := kgo.NewClient(kgo.SeedBrokers(seeds...), kgo.ConsumerGroup(group), kgo.ConsumeTopics(topic),
		kgo.WithHooks(&start),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchMaxWait(listener.DefaultFetchMaxWait))
	if err != nil {
		b.Fatal(err)
	}
	defer cl.Close()
	got := 0
	ctx := context.Background()
	for got < n {
		fs := cl.PollRecords(ctx, listener.DefaultMaxPollRecords)
		fs.EachRecord(func(r *kgo.Record) {
			got++
			noop(r)
		})
	}
	return time.Since(*start.at.Load())
}

var sink atomic.Int64

func noop(r *kgo.Record) { sink.Add(int64(len(r.Value))) }

func consumeKretry(b *testing.B, seeds []string, topic, group string, n int) time.Duration {
	var start firstFetch
	var got atomic.Int64
	done := make(chan struct{})
	h := listener.HandlerFunc(func(_ context.Context, r *kgo.Record) error {
		noop(r)
		if got.Add(1) == int64(n) {
			close(done)
		}
		return nil
	})
	l, err := listener.New(seeds, topic, h, listener.Group(group), listener.ClientOpts(kgo.WithHooks(&start)),
		listener.Logger(slog.New(slog.NewTextHandler(io.Discard, nil))))
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- l.Run(ctx) }()
	<-done
	took := time.Since(*start.at.Load())
	cancel()
	if err := <-errc; err != nil {
		b.Fatal(err)
	}
	return took
}
