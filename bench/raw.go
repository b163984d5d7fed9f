package main

import (
	"context"
	"fmt"
	"sync"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/kretry/kretry/listener"
)

// rawSystem is what a careful user writes with franz-go alone: one group
// client, a poll loop, and for S2 a forward to a retry topic whose
// acknowledgement is awaited before the poll's offsets are committed.
// Polls are canceled when the Tracker is done, so the loop notices the
// end while it waits in a poll. It uses kretry's fetch settings (FetchMaxWait, records per poll), so the
// comparison is of the work done per record, not of tuning.
type rawSystem struct{}

func (rawSystem) Name() string { return "raw" }

// untilDone returns a context canceled when tr is done (or ctx ends).
func untilDone(ctx context.Context, tr *Tracker) (context.Context, context.CancelFunc) {
	pctx, cancel := context.WithCancel(ctx)
	go func() {
		select {
		case <-tr.Done():
		case <-pctx.Done():
		}
		cancel()
	}()
	return pctx, cancel
}

func rawClient(env *Env, group string, topics ...string) (*kgo.Client, error) {
	return kgo.NewClient(kgo.SeedBrokers(env.Brokers...), kgo.ConsumerGroup(group), kgo.ConsumeTopics(topics...),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchMaxWait(listener.DefaultFetchMaxWait))
}

func (rawSystem) HappyPath(ctx context.Context, env *Env, in HappyPathInput) (Throughput, error) {
	cl, err := rawClient(env, in.Group, in.Topic)
	if err != nil {
		return Throughput{}, err
	}
	defer cl.Close()
	tr := NewTracker(in.Records, nil)
	defer tr.Close()
	pctx, cancel := untilDone(ctx, tr)
	defer cancel()
	for {
		select {
		case <-tr.Done():
			return tr.Throughput("poll loop, autocommit"), nil
		default:
		}
		fs := cl.PollRecords(pctx, listener.DefaultMaxPollRecords)
		if ctx.Err() != nil {
			return Throughput{}, fmt.Errorf("%w (%d of %d)", errTimeout, tr.Successes(), in.Records)
		}
		fs.EachRecord(func(r *kgo.Record) {
			k := string(r.Key)
			tr.Begin(k)
			tr.SucceededIn(r.Partition)
		})
	}
}

// RetryHop: main-topic records fail and are produced to the retry topic
// (asynchronously, acks=all, idempotent: franz-go's defaults); the poll's
// records are marked for the background commit once every forward of the
// poll is acknowledged; retry-topic records succeed.
func (rawSystem) RetryHop(ctx context.Context, env *Env, in RetryHopInput) (Throughput, error) {
	retryTopic := in.Topic + "-raw-retry"
	if err := env.CreateTopic(ctx, retryTopic, in.Partitions, nil); err != nil {
		return Throughput{}, err
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(env.Brokers...), kgo.ConsumerGroup(in.Group),
		kgo.ConsumeTopics(in.Topic, retryTopic), kgo.AutoCommitMarks(),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchMaxWait(listener.DefaultFetchMaxWait))
	if err != nil {
		return Throughput{}, err
	}
	defer cl.Close()
	tr := NewTracker(in.Records, nil)
	defer tr.Close()
	pctx, cancel := untilDone(ctx, tr)
	defer cancel()
	var (
		wg      sync.WaitGroup
		mu      sync.Mutex
		failure error
	)
	for {
		select {
		case <-tr.Done():
			return tr.EndToEnd("forward, await the poll's acks, mark, autocommit"), nil
		default:
		}
		fs := cl.PollRecords(pctx, listener.DefaultMaxPollRecords)
		if ctx.Err() != nil {
			return Throughput{}, fmt.Errorf("%w (%d of %d)", errTimeout, tr.Successes(), in.Records)
		}
		fs.EachRecord(func(r *kgo.Record) {
			k := string(r.Key)
			tr.Begin(k)
			if r.Topic == retryTopic {
				tr.SucceededIn(r.Partition)
				return
			}
			tr.Failed(k)
			wg.Add(1)
			cl.Produce(ctx, &kgo.Record{Topic: retryTopic, Key: r.Key, Value: r.Value, Headers: r.Headers},
				func(_ *kgo.Record, err error) {
					if err != nil {
						mu.Lock()
						failure = err
						mu.Unlock()
					}
					wg.Done()
				})
		})
		wg.Wait()
		mu.Lock()
		err := failure
		mu.Unlock()
		if err != nil {
			return Throughput{}, fmt.Errorf("raw: forward: %w", err)
		}
		cl.MarkCommitRecords(fs.Records()...)
	}
}
