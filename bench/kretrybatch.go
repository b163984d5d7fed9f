package main

import (
	"context"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/kretry/kretry/listener"
	"github.com/kretry/kretry/strategy"
)

// kretryBatchSystem runs S2 with a BatchHandler (listener.NewBatch,
// BatchSize size, the listener's defaults otherwise). A batch from the main
// topic holds first deliveries only, and every one of them fails: with
// each, the handler names every record in a BatchErrors ("kretry-batch-each");
// without, it returns one error for the whole batch, as a failed bulk
// write does ("kretry-batch"). A batch from the retry tier succeeds.
type kretryBatchSystem struct {
	size int // BatchSize; 0: the listener's default
	each bool
}

func (s kretryBatchSystem) Name() string {
	if s.each {
		return "kretry-batch-each"
	}
	return "kretry-batch"
}

func (s kretryBatchSystem) RetryHop(ctx context.Context, env *Env, in RetryHopInput) (Throughput, error) {
	tr := NewTracker(in.Records, nil)
	var mainCalls, tierCalls, tierRecords atomic.Int64 // every main-topic record is in the input: in.Records of them
	h := listener.BatchHandlerFunc(func(_ context.Context, recs []*kgo.Record) error {
		tr.Begin(string(recs[0].Key))
		if recs[0].Topic == in.Topic { // first deliveries, told by the topic (a batch is of one topic)
			mainCalls.Add(1)
			if !s.each {
				return errFail
			}
			var errs listener.BatchErrors
			for _, r := range recs {
				errs.Add(r, errFail)
			}
			return errs.Err()
		}
		tierCalls.Add(1)
		tierRecords.Add(int64(len(recs)))
		tr.SucceededInN(recs[0].Partition, len(recs))
		return nil
	})
	size := s.size
	if size == 0 {
		size = listener.DefaultBatchSize
	}
	l, err := listener.NewBatch(env.Brokers, in.Topic, h, listener.Group(in.Group), listener.Logger(quietLogger()),
		listener.Attempts(2), listener.Backoff(strategy.ListBackoff(0)), listener.BatchSize(size))
	if err != nil {
		tr.Close()
		return Throughput{}, err
	}
	if err := runListener(ctx, l, tr); err != nil {
		return Throughput{}, err
	}
	fail := "a main-topic batch fails with one error"
	if s.each {
		fail = "a main-topic batch fails with a BatchErrors naming every record"
	}
	perCall := func(records, calls int64) float64 { return float64(records) / float64(max(calls, 1)) }
	return tr.EndToEnd(fmt.Sprintf("NewBatch, BatchSize %d, 1 tier, 0 ms, acks=all; %s; %.1f records per call on the main topic, %.1f on the tier",
		size, fail, perCall(int64(in.Records), mainCalls.Load()), perCall(tierRecords.Load(), tierCalls.Load()))), nil
}

// kretryBulk is S7 with a kretry listener: listener.New with a Handler
// (in.Batch 0) or listener.NewBatch with a BatchHandler, BatchSize
// in.Batch and BatchWait in.BatchWait; Concurrency in.Concurrency, the
// defaults otherwise.
func kretryBulk(ctx context.Context, env *Env, in bulkInput) (Throughput, error) {
	tr := NewTracker(in.Records, nil)
	in.Stats.timed = tr.Timing
	opts := []listener.Opt{listener.Group(in.Group), listener.Logger(quietLogger()), listener.Concurrency(in.Concurrency)}
	var (
		l   *listener.Listener
		err error
	)
	note := fmt.Sprintf("New (one record per call), Concurrency %d", in.Concurrency)
	if in.Batch == 0 {
		h := listener.HandlerFunc(func(_ context.Context, r *kgo.Record) error {
			start := time.Now()
			if in.onCall != nil {
				in.onCall([]*kgo.Record{r})
			}
			tr.Begin(string(r.Key))
			in.Stats.call(in.Wait, in.Cost, start, 1)
			tr.SucceededIn(r.Partition)
			return nil
		})
		l, err = listener.New(env.Brokers, in.Topic, h, opts...)
	} else {
		h := listener.BatchHandlerFunc(func(_ context.Context, recs []*kgo.Record) error {
			start := time.Now()
			if in.onCall != nil {
				in.onCall(recs)
			}
			tr.Begin(string(recs[0].Key))
			in.Stats.call(in.Wait, in.Cost, start, len(recs))
			tr.SucceededInN(recs[0].Partition, len(recs))
			return nil
		})
		l, err = listener.NewBatch(env.Brokers, in.Topic, h, append(opts, listener.BatchSize(in.Batch), listener.BatchWait(in.BatchWait))...)
		note = fmt.Sprintf("NewBatch, BatchSize %d, BatchWait %v, Concurrency %d", in.Batch, in.BatchWait, in.Concurrency)
	}
	if err != nil {
		tr.Close()
		return Throughput{}, err
	}
	if err := runListener(ctx, l, tr); err != nil {
		return Throughput{}, err
	}
	return tr.Throughput(note), nil
}
