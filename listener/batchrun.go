package listener

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/kretry/kretry/retry"
	"github.com/kretry/kretry/strategy"
)

// batchItem is one record of a batch window: the records a worker took
// from the head of its partition's queue for one BatchHandler call.
type batchItem struct {
	rec   *kgo.Record
	check tierCheck   // tierDue for every main-topic record
	st    retry.State // a tier record's state, read from its headers
	owner string      // tierSkip: the group the record belongs to
	derr  error       // tierCorrupt: why its headers are refused
	err   error       // after the call: the record's failure, nil if handled
	named bool        // a BatchErrors named it
	at    int         // its index in the handler's slice (tierDue only), for BatchTracer's record
}

// batchScratch is a part's reusable memory for batches: one worker runs a
// part at a time, so one set serves every batch of the part.
type batchScratch struct {
	window []*kgo.Record // the records taken from the queue's head
	items  []batchItem
	recs   []*kgo.Record
	ds     []Delivery
	done   []*kgo.Record
	outs   []Outcome
}

// release drops the scratch's references to records, so a waiting part
// does not pin their fetches.
func (s *batchScratch) release() {
	clear(s.window)
	clear(s.items)
	clear(s.recs)
	clear(s.done)
	clear(s.outs)
	s.window, s.items, s.recs, s.done, s.outs = s.window[:0], s.items[:0], s.recs[:0], s.done[:0], s.outs[:0]
}

// processBatch hands window — records at the head of the part's queue, in
// offset order — to the BatchHandler and carries out each record's
// outcome, in offset order: handled records complete in the commit
// ledger, failed ones are routed on their own (process.go's fail), exactly
// as single records are. It reports how many records of window it took
// (all of them, or those before the first tier record not yet due), the
// result, and for resultWait the head record's due time. Called by a
// worker, without the part's lock.
func (p *part) processBatch(window []*kgo.Record) (res result, taken int, until time.Time) {
	sc := &p.scratch
	defer sc.release()
	now := time.Now()

	// The window's records up to the first that is not due yet; the tier
	// records another group owns or whose headers are corrupt are not the
	// handler's and get their own outcome, in their place.
	for _, rec := range window {
		it := batchItem{rec: rec, check: tierDue}
		if p.role == strategy.RoleTier {
			it.st, it.check, it.owner, it.derr = p.checkTier(rec, now)
			if it.check == tierWait {
				if len(sc.items) == 0 {
					return resultWait, 0, it.st.Due
				}
				break
			}
		} else {
			it.st.Attempt = 1
		}
		if it.check == tierDue {
			it.at = len(sc.recs)
			sc.recs = append(sc.recs, rec)
		}
		sc.items = append(sc.items, it)
	}
	taken = len(sc.items)
	if len(sc.recs) == 0 {
		if !p.settling() {
			return resultAbandon, 0, time.Time{}
		}
		res = p.settleBatch(p.c.handlerCtx, nil, 0, now, 0)
		p.settled(res == resultPending)
		return res, taken, time.Time{}
	}

	// The call.
	n := len(sc.recs)
	ctx, record, finish := p.c.handlerCtx, (func(int) context.Context)(nil), (func([]Outcome))(nil)
	if bt, ok := p.c.cfg.tracer.(BatchTracer); ok {
		sc.ds = sc.ds[:0]
		for _, it := range sc.items {
			if it.check == tierDue {
				sc.ds = append(sc.ds, Delivery{Group: p.c.cfg.group, Role: p.role, Attempt: it.st.Attempt, Due: it.st.Due})
			}
		}
		var tctx context.Context
		tctx, record, finish = bt.StartBatch(p.c.handlerCtx, sc.recs, sc.ds)
		if tctx != nil {
			ctx = tctx
		}
	}
	var outs *outputs
	if p.c.eos != nil {
		p.slot.open()
		outs = &p.slot
		ctx = context.WithValue(ctx, outputsKey{}, outs)
	}
	start := now
	err := p.c.callBatch(ctx, sc.recs)
	end := time.Now()
	latency := end.Sub(start)
	if p.c.observed {
		p.c.emit(Event{Kind: EventBatch, Topic: p.topic, Partition: p.partition, Offset: sc.recs[0].Offset,
			Role: p.role, Latency: latency, Err: err, Batch: n})
	}

	// Each record's error.
	failed := 0
	var be *BatchErrors
	switch {
	case err == nil:
	case errors.As(err, &be):
		failed = p.assignBatchErrors(be)
	default:
		for i := range sc.items {
			if sc.items[i].check == tierDue {
				sc.items[i].err = err
			}
		}
		failed = n
	}
	abandon := failed > 0 && p.c.handlerCtx.Err() != nil
	if abandon || !p.settling() {
		// Shutting down past the handlers' time: the failures may be the
		// cancellation's. Settle the records before the first failure and
		// leave the rest uncommitted, for redelivery. Exactly once,
		// settle none (the outputs cannot be told apart by record), and
		// none either if an aborted transaction forgot the part.
		outs.take()
		cut := 0
		if abandon && p.c.eos == nil {
			cut = slices.IndexFunc(sc.items, func(it batchItem) bool { return it.err != nil })
			sc.items = sc.items[:cut]
			p.settleBatch(ctx, record, n, end, latency)
		}
		if finish != nil {
			sc.outs = sc.outs[:min(len(sc.outs), cut)]
			for len(sc.outs) < n {
				sc.outs = append(sc.outs, Outcome{}) // abandoned: delivered again
			}
			finish(sc.outs)
		}
		return resultAbandon, cut, time.Time{}
	}
	// Exactly once, the call's outputs are published with the outcomes —
	// unless it failed as a whole.
	published := false
	if failed < n {
		published = p.c.publishOutputs(outs.take())
	} else {
		outs.take()
	}
	res = p.settleBatch(ctx, record, n, end, latency)
	p.settled(published || res == resultPending)
	if finish != nil {
		finish(sc.outs)
	}
	return res, taken, time.Time{}
}

// assignBatchErrors gives each record of the batch its error from be, and
// reports how many records failed. A record be names that is not in the
// batch, or that it names again, is logged and reported as an
// EventBatchErrorsInvalid: the first is not routed, the second keeps its
// first error.
func (p *part) assignBatchErrors(be *BatchErrors) int {
	sc := &p.scratch
	failed := 0
	for rec, err := range be.All() {
		i := p.batchIndex(rec)
		var bad string
		switch {
		case i < 0:
			bad = "names a record that is not in the batch; it is not routed"
		case sc.items[i].named:
			bad = "names a record twice; it is routed once, for its first error"
		}
		if bad != "" {
			p.invalidBatchErrors(rec, bad, err)
			continue
		}
		sc.items[i].named, sc.items[i].err = true, err
		failed++
	}
	return failed
}

// batchIndex returns the index in the scratch's items (which are in
// offset order) of the record handed to the handler with rec's topic,
// partition and offset, or -1.
func (p *part) batchIndex(rec *kgo.Record) int {
	sc := &p.scratch
	if rec == nil || rec.Topic != p.topic || rec.Partition != p.partition {
		return -1
	}
	i, found := slices.BinarySearchFunc(sc.items, rec.Offset, func(it batchItem, off int64) int {
		return cmp.Compare(it.rec.Offset, off)
	})
	if !found || sc.items[i].check != tierDue {
		return -1
	}
	return i
}

// invalidBatchErrors reports a BatchErrors mistake: a log line and an
// EventBatchErrorsInvalid.
func (p *part) invalidBatchErrors(rec *kgo.Record, what string, err error) {
	topic, partition, offset := "<nil record>", int32(-1), int64(-1)
	if rec != nil {
		topic, partition, offset = rec.Topic, rec.Partition, rec.Offset
	}
	msg := fmt.Sprintf("listener: the batch handler's BatchErrors %s (batch: %s[%d]@%d..%d): add each record of recs at most once",
		what, p.topic, p.partition, p.scratch.recs[0].Offset, p.scratch.recs[len(p.scratch.recs)-1].Offset)
	p.c.log.LogAttrs(context.Background(), slog.LevelError, "kretry: "+msg,
		slog.String("topic", topic), slog.Int("partition", int(partition)), slog.Int64("offset", offset),
		slog.String("error", err.Error()))
	p.c.emit(Event{Kind: EventBatchErrorsInvalid, Topic: topic, Partition: partition, Offset: offset,
		Role: p.role, Err: fmt.Errorf("%s: %w", msg, err)})
}

// settleBatch carries out the outcome of every item in the scratch, in
// offset order: handled and skipped records complete in the commit
// ledger, failed ones are routed (a tier or the DLT), corrupt ones are
// dead-lettered. n is the batch's size, ctx its context, record the
// batch tracer's per-record context (or nil), now when the call ended and
// latency how long it ran. It reports resultPending when something was
// published, and resultDone otherwise.
func (p *part) settleBatch(ctx context.Context, record func(int) context.Context, n int, now time.Time, latency time.Duration) result {
	sc := &p.scratch
	res := resultDone
	sc.outs = sc.outs[:0]
	flush := func() {
		if len(sc.done) == 0 {
			return
		}
		p.mu.Lock()
		for _, rec := range sc.done {
			p.commits.complete(rec)
		}
		p.mu.Unlock()
		clear(sc.done)
		sc.done = sc.done[:0]
	}
	for i := range sc.items {
		it := &sc.items[i]
		rec := it.rec
		switch it.check {
		case tierSkip:
			p.skip(rec, it.owner)
			sc.done = append(sc.done, rec)
			continue
		case tierCorrupt:
			flush()
			if p.corrupt(rec, it.derr) == resultPending {
				res = resultPending
			} else {
				sc.done = append(sc.done, rec)
			}
			continue
		}
		var late time.Duration
		if p.role == strategy.RoleTier {
			late = max(0, now.Add(-latency).Sub(it.st.Due))
		}
		if it.err == nil {
			sc.outs = append(sc.outs, Outcome{Kind: EventHandled})
			if p.c.observed {
				p.c.emit(Event{Kind: EventHandled, Topic: rec.Topic, Partition: rec.Partition, Offset: rec.Offset,
					Role: p.role, Attempt: it.st.Attempt, Latency: latency, Late: late, Batch: n})
			}
			sc.done = append(sc.done, rec)
			continue
		}
		flush()
		d := delivery{ctx: ctx, batch: n}
		if record != nil {
			d.traced = true
			if rctx := record(it.at); rctx != nil {
				d.ctx = rctx
			}
		}
		var next retry.State
		if p.role == strategy.RoleTier {
			next = it.st.Advance(time.Time{}, "", "")
		} else {
			next = retry.First(rec, now)
		}
		if p.fail(&d, rec, it.st.Attempt, next, it.err, now, latency, late) == resultPending {
			res = resultPending
		} else {
			sc.done = append(sc.done, rec)
		}
		sc.outs = append(sc.outs, d.out)
	}
	flush()
	return res
}

// callBatch runs the batch handler for recs with the configured timeout
// and panics recovered as a *PanicError.
func (l *Listener) callBatch(ctx context.Context, recs []*kgo.Record) error {
	return l.invoke(ctx, nil, recs, nil)
}
