package listener_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/kretry/kretry/listener"
)

// BenchmarkHappyPath consumes the same topic of 100-byte records with a
// plain franz-go group poll loop and with a kretry listener (no-op handler,
// one consumer group, default settings) in the same run, alternating, and
// reports both rates and their ratio. Run it with
//
//	go test ./listener -run '^$' -bench HappyPath -benchtime 6x
func BenchmarkHappyPath(b *testing.B) {
	const partitions = 6
	records := 1_000_000
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

	// Alternate which one goes first, so neither always runs on a heap the
	// other has just grown.
	var rawTotal, kretryTotal time.Duration
	for i := 0; b.Loop(); i++ {
		if i%2 == 0 {
			rawTotal += consumeRaw(b, seeds, "bench", fmt.Sprintf("raw-%d", i), records)
			kretryTotal += consumeKretry(b, seeds, "bench", fmt.Sprintf("kretry-%d", i), records)
		} else {
			kretryTotal += consumeKretry(b, seeds, "bench", fmt.Sprintf("kretry-%d", i), records)
			rawTotal += consumeRaw(b, seeds, "bench", fmt.Sprintf("raw-%d", i), records)
		}
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

// noop stands for a handler that does nothing; it touches the record so
// neither loop can skip it, and shares no memory between goroutines.
//
//go:noinline
func noop(r *kgo.Record) bool { return len(r.Value) == 0 }

func lastOffsets(b *testing.B, seeds []string, topic string) map[int32]int64 {
	cl, err := kgo.NewClient(kgo.SeedBrokers(seeds...))
	if err != nil {
		b.Fatal(err)
	}
	defer cl.Close()
	ends, err := kadm.NewClient(cl).ListEndOffsets(context.Background(), topic)
	if err != nil {
		b.Fatal(err)
	}
	out := map[int32]int64{}
	ends.Each(func(o kadm.ListedOffset) {
		if o.Offset > 0 {
			out[o.Partition] = o.Offset - 1
		}
	})
	return out
}

func consumeKretry(b *testing.B, seeds []string, topic, group string, n int) time.Duration {
	// Completion is detected per partition (the last offset is known), so
	// concurrent workers share no counter on the hot path.
	last, done := lastOf(b, seeds, topic)
	h := listener.HandlerFunc(func(_ context.Context, r *kgo.Record) error {
		noop(r)
		last(r.Partition, r.Offset)
		return nil
	})
	return timedRun(b, seeds, topic, h, done, listener.Group(group))
}

// lastOf returns a function to call with each record of topic a listener
// finishes, and a channel it closes once that was the last record of
// every partition (as of the call).
func lastOf(b *testing.B, seeds []string, topic string) (func(partition int32, offset int64), <-chan struct{}) {
	lastByPartition := lastOffsets(b, seeds, topic)
	last := make([]int64, len(lastByPartition))
	for p, o := range lastByPartition {
		last[p] = o
	}
	var left atomic.Int32
	left.Store(int32(len(lastByPartition)))
	done := make(chan struct{})
	return func(partition int32, offset int64) {
		if offset == last[partition] && left.Add(-1) == 0 {
			close(done)
		}
	}, done
}

// timedRun runs a listener on topic until done is closed and returns the
// time from its first fetched batch.
func timedRun(b *testing.B, seeds []string, topic string, h listener.Handler, done <-chan struct{}, opts ...listener.Opt) time.Duration {
	var start firstFetch
	opts = append(opts, listener.ClientOpts(kgo.WithHooks(&start)),
		listener.Logger(slog.New(slog.NewTextHandler(io.Discard, nil))))
	l, err := listener.New(seeds, topic, h, opts...)
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
