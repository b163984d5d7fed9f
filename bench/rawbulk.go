package main

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/kretry/kretry/listener"
)

// bulkInput is one system's run of S7: Records of the records already in
// Topic (on Partitions partitions) handled in Group by a handler that costs
// Cost per call (Stats.call waits it out with Wait), at most Concurrency
// calls at a time, each given up to Batch records (Batch 0: kretry's
// single-record Handler, one record per call).
type bulkInput struct {
	Topic       string
	Group       string
	Partitions  int
	Records     int
	Batch       int
	Concurrency int
	BatchWait   time.Duration // kretry's BatchWait; raw hands over what a partition holds
	Cost        bulkCost
	Wait        *waiter
	Stats       *bulkStats // the run sets its timed to its Tracker's Timing
	// onCall, if not nil, is given the records of each call as it starts
	// (tests check batches against it).
	onCall func(recs []*kgo.Record)
}

// rawBulkQueue is how many polled slices of its records each partition's
// goroutine may hold unread before the poll loop waits for it.
const rawBulkQueue = 4

// rawBulk is S7 as a careful franz-go user writes a bulk writer with no
// retries: one group client whose poll loop (PollFetches) hands each
// partition's records to a goroutine of that partition; the goroutine
// waits for one of Concurrency handler slots (a semaphore), takes
// everything that has reached it by then, up to Batch records, makes one
// call, frees the slot and marks the batch's last offset for the
// autocommit. A partition's batches are thus handled one at a time in
// offset order and committed only once handled; each partition's queue is
// bounded (rawBulkQueue polls), so the poll loop waits, not the heap, when
// the handler is the bottleneck. Batch 1 is the single-record handler. No
// partition is revoked during a run (one member), so the goroutines are
// not stopped on revocation as a production consumer's must be.
func rawBulk(ctx context.Context, env *Env, in bulkInput) (Throughput, error) {
	cl, err := kgo.NewClient(kgo.SeedBrokers(env.Brokers...), kgo.ConsumerGroup(in.Group), kgo.ConsumeTopics(in.Topic),
		kgo.AutoCommitMarks(), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchMaxWait(listener.DefaultFetchMaxWait))
	if err != nil {
		return Throughput{}, err
	}
	defer cl.Close()
	tr := NewTracker(in.Records, nil)
	defer tr.Close()
	in.Stats.timed = tr.Timing
	pctx, cancel := untilDone(ctx, tr)
	defer cancel()
	batch := max(1, in.Batch)
	slots := make(chan struct{}, in.Concurrency)
	queues := map[int32]chan []*kgo.Record{}
	var wg sync.WaitGroup
	defer func() {
		cancel()
		for _, q := range queues {
			close(q)
		}
		wg.Wait()
	}()
	worker := func(q <-chan []*kgo.Record) {
		var pending []*kgo.Record
		for pctx.Err() == nil {
			if len(pending) == 0 {
				recs, ok := <-q
				if !ok {
					return
				}
				pending = slices.Clip(recs) // appends copy: the fetch's slice stays franz-go's
			}
			select {
			case slots <- struct{}{}:
			case <-pctx.Done():
				return
			}
		fill: // what reached the partition while it waited for a slot
			for len(pending) < batch {
				select {
				case recs, ok := <-q:
					if !ok {
						break fill
					}
					pending = append(pending, recs...)
				default:
					break fill
				}
			}
			n := min(batch, len(pending))
			call, last := pending[:n], pending[n-1]
			start := time.Now()
			if in.onCall != nil {
				in.onCall(call)
			}
			tr.Begin(string(call[0].Key))
			in.Stats.call(in.Wait, in.Cost, start, n)
			<-slots
			tr.SucceededInN(last.Partition, n)
			cl.MarkCommitOffsets(map[string]map[int32]kgo.EpochOffset{last.Topic: {last.Partition: {Epoch: last.LeaderEpoch, Offset: last.Offset + 1}}})
			pending = pending[n:]
		}
	}
	for {
		select {
		case <-tr.Done():
			return tr.Throughput(fmt.Sprintf("PollFetches, a goroutine per partition, up to %d records per call, %d calls at a time (semaphore), "+
				"marks each call's last offset once it returns, autocommit of marks", batch, in.Concurrency)), nil
		default:
		}
		fs := cl.PollFetches(pctx)
		if ctx.Err() != nil {
			return Throughput{}, fmt.Errorf("%w (%d of %d)", errTimeout, tr.Successes(), in.Records)
		}
		fs.EachPartition(func(p kgo.FetchTopicPartition) {
			if len(p.Records) == 0 {
				return
			}
			q := queues[p.Partition]
			if q == nil {
				q = make(chan []*kgo.Record, rawBulkQueue)
				queues[p.Partition] = q
				wg.Go(func() { worker(q) })
			}
			select {
			case q <- p.Records:
			case <-pctx.Done():
			}
		})
	}
}
