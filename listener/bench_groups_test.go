package listener_test

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/kretry/kretry/listener"
	"github.com/kretry/kretry/retry"
)

// BenchmarkSkipOtherGroups measures what sharing a retry tier with another
// consumer group costs: a listener drains a tier of 1.5 M due records of
// which nine in ten belong to another group (skipped) and one in ten to
// its own (handled by a no-op handler), against the same listener draining
// a tier of its own records only and a plain franz-go poll loop reading
// the group header of each record of the mixed tier, in the same run,
// rotating which goes first. It reports median rates and the ratios of
// summed times (ratio: raw time over kretry's on the mixed tier). Run it
// with
//
//	go test ./listener -run '^$' -bench SkipOtherGroups -benchtime 7x -v
func BenchmarkSkipOtherGroups(b *testing.B) {
	const partitions = 6
	records := 1_500_000
	if testing.Short() {
		records = 20_000
	}
	c, err := kfake.NewCluster(kfake.NumBrokers(1))
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	seeds := c.ListenAddrs()
	var raws, mixeds, owns []time.Duration
	for i := 0; b.Loop(); i++ {
		mixed, own := fmt.Sprintf("mixed%d", i), fmt.Sprintf("own%d", i)
		for _, main := range []string{mixed, own} {
			if err := c.CreateTopic(main, partitions, nil); err != nil {
				b.Fatal(err)
			}
			if err := c.CreateTopic(main+"-retry", partitions, nil); err != nil {
				b.Fatal(err)
			}
		}
		fillTier(b, seeds, mixed, records, 10)
		fillTier(b, seeds, own, records, 1)
		runs := []func(){
			func() { mixeds = append(mixeds, drainTier(b, seeds, mixed)) },
			func() { owns = append(owns, drainTier(b, seeds, own)) },
			func() { raws = append(raws, drainTierRaw(b, seeds, mixed, records)) },
		}
		for j := range runs {
			runs[(i+j)%len(runs)]()
		}
		b.Logf("repetition %d: raw %v, mixed %v, own %v", i, raws[i], mixeds[i], owns[i])
	}
	n := float64(records)
	b.ReportMetric(n/median(raws).Seconds(), "raw-median-rec/s")
	b.ReportMetric(n/median(mixeds).Seconds(), "mixed-median-rec/s")
	b.ReportMetric(n/median(owns).Seconds(), "own-median-rec/s")
	b.ReportMetric(sum(mixeds).Seconds()/sum(owns).Seconds(), "mixed/own-time")
	b.ReportMetric(sum(raws).Seconds()/sum(mixeds).Seconds(), "ratio")
}

func median(ds []time.Duration) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[len(s)/2]
}

func sum(ds []time.Duration) (t time.Duration) {
	for _, d := range ds {
		t += d
	}
	return t
}

// fillTier writes n due retry records to main's tier (main+"-retry"); one
// in every ownEvery belongs to the group "mine", the others to "theirs".
func fillTier(b *testing.B, seeds []string, main string, n, ownEvery int) {
	cl, err := kgo.NewClient(kgo.SeedBrokers(seeds...), kgo.RecordPartitioner(kgo.RoundRobinPartitioner()))
	if err != nil {
		b.Fatal(err)
	}
	defer cl.Close()
	val := make([]byte, 100)
	now := time.Now()
	for i := range n {
		st := retry.First(&kgo.Record{Topic: main, Offset: int64(i), Timestamp: now}, now).WithFailure(now, "timeout", "*net.OpError")
		st.Group = "theirs"
		if i%ownEvery == 0 {
			st.Group = "mine"
		}
		r := retry.Next(&kgo.Record{Key: fmt.Appendf(nil, "%d", i), Value: val}, main+"-retry", -1, st, 0)
		cl.Produce(context.Background(), r, func(_ *kgo.Record, err error) {
			if err != nil {
				b.Error(err)
			}
		})
	}
	if err := cl.Flush(context.Background()); err != nil {
		b.Fatal(err)
	}
}

// drainTier runs a listener of group "mine" on main until it has handled
// or skipped the last record of every partition of its tier, timed from
// the first fetched batch.
func drainTier(b *testing.B, seeds []string, main string) time.Duration {
	tier := main + "-retry"
	last, done := lastOf(b, seeds, tier)
	hook := listener.HookFunc(func(e listener.Event) {
		if (e.Kind == listener.EventHandled || e.Kind == listener.EventSkipped) && e.Topic == tier {
			last(e.Partition, e.Offset)
		}
	})
	h := listener.HandlerFunc(func(_ context.Context, r *kgo.Record) error { noop(r); return nil })
	return timedRun(b, seeds, main, h, done, listener.Group("mine"), listener.Hooks(hook))
}

// drainTierRaw is what a careful franz-go user writes to serve only their
// group's share of a shared topic: poll, look for the group header, handle
// the own records, autocommit.
func drainTierRaw(b *testing.B, seeds []string, main string, n int) time.Duration {
	var start firstFetch
	cl, err := kgo.NewClient(kgo.SeedBrokers(seeds...), kgo.ConsumerGroup("raw-"+main), kgo.ConsumeTopics(main+"-retry"),
		kgo.WithHooks(&start), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchMaxWait(listener.DefaultFetchMaxWait))
	if err != nil {
		b.Fatal(err)
	}
	defer cl.Close()
	got := 0
	for got < n {
		cl.PollRecords(context.Background(), listener.DefaultMaxPollRecords).EachRecord(func(r *kgo.Record) {
			got++
			for _, h := range r.Headers {
				if h.Key == retry.HeaderGroup && string(h.Value) == "mine" {
					noop(r)
				}
			}
		})
	}
	return time.Since(*start.at.Load())
}
