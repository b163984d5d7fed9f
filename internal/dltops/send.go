package dltops

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/kretry/kretry/internal/hop"
)

// sendItem is what a replay sends for one DLT record.
type sendItem struct {
	src    *kgo.Record // the DLT record; its key, value and headers are shared
	source string      // SourceOf(src)
	route
	info Info // src decoded
}

func sendOf(src *kgo.Record, info Info, rt route) sendItem {
	return sendItem{src: src, source: SourceOf(src), route: rt, info: info}
}

// record returns the record to produce for s, handed over at now: into
// its group's first retry tier with a fresh retry state (TierRecord), or
// with no retry header (ReplayRecord).
func (s sendItem) record(run string, now time.Time) *kgo.Record {
	if s.kind == kindTier {
		return TierRecord(s.src, s.topic, s.partition, tierState(s.info, s.group, now), run, now)
	}
	return ReplayRecord(s.src, s.topic, s.partition, run, now)
}

// rejectedSend is a send the cluster refused for the record itself.
type rejectedSend struct {
	sendItem
	err error
}

// producerOpts are the options of the replay's client: the caller's, the
// partitioner, and the delivery bound. With
// AllowIdempotentProduceCancellation, the record delivery timeout also
// fails records in flight, so that the producer never writes a request
// carrying a record later than DeliveryTimeout after the record's
// timestamp, its hand-over time (see the package documentation).
func (r *replayer) producerOpts() []kgo.Opt {
	opts := append(slices.Clip(r.cfg.ClientOpts),
		kgo.RecordPartitioner(hop.Partitioner()),
		kgo.RecordDeliveryTimeout(r.cfg.DeliveryTimeout),
		kgo.AllowIdempotentProduceCancellation(),
		kgo.MaxBufferedRecords(r.maxInFlight+64),
	)
	return append(opts, r.cfg.hooks.prodOpts...)
}

// deliveryBound is the longest time after its hand-over at which cl can
// have a record appended to a log: it writes no request carrying the
// record after the record delivery timeout, and gives the broker a produce
// request's timeout (ProduceRequestTimeout plus RequestTimeoutOverhead) to
// answer a request.
func deliveryBound(cl *kgo.Client) time.Duration {
	d := func(opt any) time.Duration { v, _ := cl.OptValue(opt).(time.Duration); return v }
	return d(kgo.RecordDeliveryTimeout) + d(kgo.ProduceRequestTimeout) + d(kgo.RequestTimeoutOverhead)
}

// waitSpace waits until fewer than maxInFlight records are unanswered, or
// ctx ends: the producer's own buffer (larger) is never full, so a
// hand-over never blocks where an interrupt cannot reach it.
func (r *replayer) waitSpace(ctx context.Context) error {
	for {
		r.mu.Lock()
		n := r.sends - r.answered
		r.mu.Unlock()
		if n < int64(r.maxInFlight) {
			return nil
		}
		select {
		case <-r.space:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// send hands the record for s to the producer, stamped now.
func (r *replayer) send(s sendItem, run string, now time.Time) {
	out := s.record(run, now)
	r.mu.Lock()
	r.sends++
	r.mu.Unlock()
	r.lastHandOver = now
	r.prod.Produce(r.pctx, out, func(_ *kgo.Record, err error) { r.answer(s, err) })
}

// answer is the produce callback of s.
func (r *replayer) answer(s sendItem, err error) {
	r.mu.Lock()
	r.answered++
	switch {
	case err == nil:
		r.acked++
		r.st.Totals.Sent++
		r.st.Totals.countSent(s.route)
		r.res.AttemptSent++
	case hop.Rejected(err):
		r.refused++
		r.rejected = append(r.rejected, rejectedSend{s, err})
	case r.prodErr == nil:
		r.prodErr = fmt.Errorf("sending %s to %s: %w", s.source, s.topic, err)
	}
	r.mu.Unlock()
	select {
	case r.space <- struct{}{}:
	default:
	}
}

func (r *replayer) failed() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.prodErr
}

func (r *replayer) sendCount() int64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.sends
}

// unacked returns the records handed over and not acknowledged (nor
// definitely refused): those that may still land.
func (r *replayer) unacked() int64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.sends - r.acked - r.refused
}

// settle waits until every record handed over is answered, or
// FlushTimeout passes, sends each rejected one again on its own, and
// returns the first failed send. It returns nil only when every record
// handed over so far has been acknowledged or, refused alone too, skipped.
func (r *replayer) settle(ctx context.Context) error {
	fctx, cancel := context.WithTimeout(ctx, r.cfg.FlushTimeout)
	defer cancel()
	err := r.prod.Flush(fctx)
	if perr := r.failed(); perr != nil {
		return perr
	}
	if err != nil {
		return fmt.Errorf("waiting for the cluster to acknowledge the records sent: %w", err)
	}
	return r.retryRejected()
}

// retryRejected sends each rejected record again, alone: a batch refused
// as too large may hold records that fit. One refused again is skipped
// (SkipRejected); the refusal was an answer, so it did not land.
func (r *replayer) retryRejected() error {
	r.mu.Lock()
	rs := r.rejected
	r.rejected = nil
	r.mu.Unlock()
	for i, x := range rs {
		now := r.cfg.Clock.Now()
		if !now.Before(r.handOverBy) {
			if err := r.extendLease(now); err != nil {
				r.requeue(rs[i:])
				return err
			}
		}
		out := x.record(r.cfg.Run, now)
		r.mu.Lock()
		r.sends++
		r.mu.Unlock()
		r.lastHandOver = now
		ctx, cancel := context.WithTimeout(r.pctx, r.cfg.FlushTimeout)
		err := r.prod.ProduceSync(ctx, out).FirstErr()
		cancel()
		r.mu.Lock()
		r.answered++
		switch {
		case err == nil:
			r.acked++
			r.st.Totals.Sent++
			r.st.Totals.countSent(x.route)
			r.res.AttemptSent++
		case hop.Rejected(err):
			r.refused++
		default:
			if r.prodErr == nil {
				r.prodErr = fmt.Errorf("sending %s to %s alone after %v: %w", x.source, x.topic, x.err, err)
			}
			err = r.prodErr
			r.mu.Unlock()
			return err
		}
		r.mu.Unlock()
		if err != nil {
			r.skip(SkippedRecord{Source: x.source, Reason: SkipRejected, Target: x.topic, TargetFrom: x.from, Group: x.group}, err)
		}
	}
	return nil
}

// requeue puts rejected sends back, for the next settle.
func (r *replayer) requeue(rs []rejectedSend) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.rejected = append(rs, r.rejected...)
}
