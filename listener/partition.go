package listener

import (
	"context"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/kretry/kretry/retry"
	"github.com/kretry/kretry/strategy"
)

// Reasons a partition's fetching is paused; it is resumed when none is left.
const (
	pauseDue  uint8 = 1 << iota // the head record is not yet due
	pauseFull                   // holds too many records while others wait
)

// pauseState is why a partition's fetching is paused, and how far the
// pause has gone. It changes under its part's mu; part.setPauseLocked
// carries its edges to the client and the poll loop's count.
type pauseState struct {
	reasons uint8 // pauseDue | pauseFull
	// hogWait: paused as a hog (pauseFull from the poll loop), but not yet
	// in the client, which still buffers the partition's records (see
	// part.pauseIfHog).
	hogWait bool
	// examined: a worker has processed a record of this assignment, so a
	// tier partition's head has been looked at.
	examined bool
}

// paused reports whether any reason holds.
func (s *pauseState) paused() bool { return s.reasons != 0 }

// has reports whether reason holds.
func (s *pauseState) has(reason uint8) bool { return s.reasons&reason != 0 }

// set adds reason (on) or removes it, and reports the edge: +1 when the
// partition became paused (no reason before, one now), -1 when it stopped
// being paused, 0 otherwise.
func (s *pauseState) set(reason uint8, on bool) int {
	before := s.reasons
	if on {
		s.reasons |= reason
	} else {
		s.reasons &^= reason
	}
	switch {
	case before == 0 && s.reasons != 0:
		return +1
	case before != 0 && s.reasons == 0:
		return -1
	}
	return 0
}

// part is the listener's state for one owned partition. Everything below
// mu is guarded by it. Exactly one worker handles a part at a time
// (running), so records of a partition are handled in offset order.
type part struct {
	c         *consumer
	topic     string
	partition int32
	role      strategy.TopicRole

	mu       sync.Mutex
	cond     sync.Cond
	queue    recQueue  // polled, not yet handled, in offset order
	queued   bool      // in the run queue
	running  bool      // a worker is handling it
	waiting  bool      // armed in the due timers
	dueAt    time.Time // the head record's due time while waiting
	pause    pauseState
	gone     bool    // revoked, lost, or the listener is stopping
	after    *part   // an earlier part of this partition whose handler still runs
	next     *part   // the newer part waiting for this one to finish
	dltTries int     // DLT handler failures of the head record
	commits  commits // the commit ledger: the only code that marks offsets
	// outbox holds the partition's pause and resume events, in the order
	// they happened, until flushEvents hands them to the hooks with no
	// lock held; emitting is set while one goroutine does.
	outbox   []Event
	emitting bool

	// A batch listener's part: filling is set while the part waits (in
	// the due timers) for its queue to fill a batch, since fillSince.
	filling   bool
	fillSince time.Time
	scratch   batchScratch // the worker's memory for batches

	// txnMark is, in exactly-once mode, the newest record the ledger has
	// settled (see part.markTxn).
	txnMark *kgo.Record
	// slot holds, exactly once, the outputs of the delivery the part's
	// worker is making (one at a time), and slotCtx is the handler
	// context that carries it when the delivery is not traced.
	slot    outputs
	slotCtx context.Context

	// lane is, under key order, the keys in retry of the part's lane
	// (partition n of the main topic and every tier); nil otherwise. The
	// part takes no record until the lane is loaded.
	lane *lane
	// kh is the key hash of the record the part's worker is delivering,
	// under key order: computed once per record (atMain, atTier).
	kh uint64
}

// queueEventLocked queues a partition event for flushEvents.
func (p *part) queueEventLocked(e Event) {
	if p.c.observed {
		p.outbox = append(p.outbox, e)
	}
}

// flushEvents emits the queued events in order, with no lock held, so a
// hook may call back into the listener (Listener.Partitions, say). One
// goroutine emits at a time; one that finds another emitting leaves its
// events to it, which keeps them in order.
func (p *part) flushEvents() {
	p.mu.Lock()
	if p.emitting {
		p.mu.Unlock()
		return
	}
	p.emitting = true
	for len(p.outbox) > 0 {
		evs := p.outbox
		p.outbox = nil
		p.mu.Unlock()
		for _, e := range evs {
			p.c.emit(e)
		}
		p.mu.Lock()
	}
	p.emitting = false
	p.mu.Unlock()
}

func newPart(c *consumer, topic string, partition int32, role strategy.TopicRole) *part {
	p := &part{
		c: c, topic: topic, partition: partition, role: role,
		commits: commits{markFn: c.markCommit},
	}
	p.cond.L = &p.mu
	if c.eos != nil {
		p.commits.markFn = p.markTxn
	}
	return p
}

// readyLocked reports whether the part should be in the run queue.
func (p *part) readyLocked() bool {
	return !p.gone && !p.queued && !p.running && !p.waiting && !p.commits.blocked && p.after == nil && p.queue.len() > 0 &&
		(p.lane == nil || p.lane.ready.Load())
}

// scheduleLocked puts the part in the run queue if it has work to do.
func (p *part) scheduleLocked() {
	if p.readyLocked() {
		p.queued = true
		p.c.runq.push(p)
	}
}

// add appends freshly polled records. Called from the poll goroutine.
func (p *part) add(recs []*kgo.Record) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.gone {
		return
	}
	p.queue.push(recs)
	if !p.pause.paused() {
		p.c.held.Add(int64(len(recs)))
	}
	if p.filling && p.queue.len() >= p.c.cfg.batchSize {
		// A full batch does not wait for BatchWait.
		p.filling, p.waiting = false, false
		p.c.timers.Disarm(p)
	}
	// A hog's records still buffered in the client come before the other
	// partitions' (see pauseIfHog). They do not count towards the poll
	// loop's limit, and are taken only while the hog holds no more than a
	// hog paused at once could: the limit and a poll. Past that, it is
	// paused in the client, and what the client still buffers of it is
	// dropped and fetched again later.
	if p.pause.hogWait && p.queue.len() >= p.c.cfg.maxHeld+p.c.cfg.maxPollRecords {
		p.pauseClientLocked()
	}
	// A retry tier's records may have to wait long. Until its head has
	// been looked at, fetch no more than a poll's worth for it, so that a
	// backlog waiting in a tier when the partition is assigned stays in
	// Kafka rather than in memory. (Once the head waits, the partition is
	// paused; while records flow, the poll loop's limit applies.)
	//
	// Unless the newest record polled is already due: then so is the
	// backlog before it (a tier's due times grow with its offsets, but
	// for jitter and requested delays), nothing waits, and the records
	// flow under the poll loop's limit as on the main topic. Pausing would
	// not save memory there, only waste work: franz-go drops a paused
	// partition's records still in its buffers at the next poll and
	// fetches them again after the resume — with well-compressed records,
	// up to a whole partition's fetch, decoded twice.
	if p.role == strategy.RoleTier && !p.pause.examined && !p.pause.has(pauseFull) &&
		p.queue.len() >= p.c.cfg.maxPollRecords && (len(recs) == 0 || !p.c.dueSoon(recs[len(recs)-1])) {
		p.setPauseLocked(pauseFull, true)
	}
	p.scheduleLocked()
}

// dueSoon reports whether a retry-tier record is due within FetchMaxWait,
// the wait a worker serves without pausing its partition, or belongs to
// another group (its worker skips it at once). A record whose kretry
// headers are missing or corrupt is not: its worker decides.
func (l *Listener) dueSoon(rec *kgo.Record) bool {
	if _, foreign := retry.ForeignGroup(rec.Headers, l.cfg.group); foreign {
		return true
	}
	st, ok, err := l.decode(rec.Headers, false)
	return ok && err == nil && time.Until(st.Due) < l.cfg.fetchMaxWait
}

// setPauseLocked adds or removes a pause reason, pausing or resuming the
// partition in the client when the set of reasons becomes non-empty or empty.
// Records of paused partitions do not count towards the poll loop's limit
// (Listener.held): a partition waiting for a due time never holds up the
// others.
func (p *part) setPauseLocked(reason uint8, on bool) {
	if p.gone {
		// A part no longer owned must not touch the client's pause state:
		// the partition may already belong to a newer part.
		return
	}
	switch edge := p.pause.set(reason, on); {
	case edge > 0:
		p.c.held.Add(-int64(p.queue.len()))
		if !p.pause.hogWait {
			p.c.pauser.set(topicPartition{p.topic, p.partition}, true)
		}
		p.c.signalDrained()
	case edge < 0:
		p.c.held.Add(int64(p.queue.len()))
		if p.pause.hogWait {
			p.pause.hogWait = false // never paused in the client
		} else {
			p.c.pauser.set(topicPartition{p.topic, p.partition}, false)
		}
	case on && p.pause.hogWait:
		p.pauseClientLocked() // another reason must stop fetching now
	}
}

// pauseIfHog pauses the partition when it holds at least threshold
// records; the poll loop calls it when it has been blocked for a while, so
// a slow partition cannot starve the others.
//
// The pause takes effect in two steps. At once, the partition's records
// stop counting towards the poll loop's limit, so the others are polled
// again. In the client, it is paused only once the poll loop has taken
// the records the client still buffers for it (exhausted), or as many as
// a hog paused at once could hold (add). franz-go drops a paused
// partition's buffered records at the next poll and fetches them again
// after the resume, and the partition's share of one fetch — which the
// client hands out before the partitions behind it — can be thousands of
// records, tens of thousands when they compress well. Those records are
// in memory already; taken, they wait in the partition's queue instead of
// in the client, and are not fetched and decoded twice.
func (p *part) pauseIfHog(threshold int) {
	p.mu.Lock()
	if !p.gone && !p.pause.paused() && p.queue.len() >= threshold {
		p.pause.hogWait = true
		p.setPauseLocked(pauseFull, true)
	}
	p.mu.Unlock()
}

// exhausted tells a hog waiting to be paused in the client that the client
// buffers no more of its records: the poll loop saw a record of another
// partition after its own in one fetch, which the client only returns once
// the partition's records before it are all taken. Called from the poll
// goroutine.
func (p *part) exhausted() {
	p.mu.Lock()
	if p.pause.hogWait {
		p.pauseClientLocked()
	}
	p.mu.Unlock()
}

// pauseClientLocked ends a hog's wait: the client stops fetching it.
func (p *part) pauseClientLocked() {
	p.pause.hogWait = false
	if !p.gone && p.pause.paused() {
		p.c.pauser.set(topicPartition{p.topic, p.partition}, true)
	}
}

// wake is the due timer's callback: the head record is due now.
func (p *part) wake() {
	p.mu.Lock()
	if p.gone || !p.waiting {
		p.mu.Unlock()
		return
	}
	p.waiting, p.filling = false, false
	if p.pause.has(pauseDue) {
		p.queueEventLocked(Event{Kind: EventResumed, Topic: p.topic, Partition: p.partition, Offset: -1})
	}
	p.setPauseLocked(pauseDue, false)
	p.scheduleLocked()
	events := len(p.outbox) > 0
	p.mu.Unlock()
	if events {
		p.flushEvents()
	}
}

// track appends e, a not-yet-acknowledged entry, to the commit ledger. It
// must be called before the record's publish is started, so the
// acknowledgement always finds it.
func (p *part) track(e *entry) {
	p.mu.Lock()
	p.commits.track(e)
	p.mu.Unlock()
}

// abandon gives up on e's publish: its record stays uncommitted and is
// redelivered to the partition's next owner. It no longer counts as work
// in progress for waitIdle.
func (p *part) abandon(e *entry) {
	p.mu.Lock()
	if p.commits.abandon(e) {
		p.cond.Broadcast()
	}
	p.mu.Unlock()
}

// ack records e's acknowledgement in the commit ledger, which marks what
// it completes (or notes it for a later mark while more publishes are
// pending: see commits.unmarked), and unblocks the part if it was waiting
// for acknowledgements. A revoke that waitIdle wakes marks what is noted
// (markDone) before it commits.
func (p *part) ack(e *entry) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.commits.ack(e) {
		return
	}
	if p.commits.unblock(p.c.cfg.maxPending) {
		p.scheduleLocked()
	}
	p.cond.Broadcast()
}

// run handles the part's queued records until it runs out, must wait, has
// handled a fair share, or is told to stop. Called by a worker.
func (p *part) run() {
	p.mu.Lock()
	p.queued = false
	if p.gone || p.running {
		p.mu.Unlock()
		return
	}
	p.running = true
	var waitUntil time.Time
	popped := 0
	budget := p.c.cfg.maxPollRecords
	batched := p.c.batch != nil && p.role != strategy.RoleDLT
	n := 0 // records taken this turn
	for {
		if p.gone || p.queue.len() == 0 || p.c.stopping.Load() {
			break
		}
		if p.commits.full(p.c.cfg.maxPending) {
			break
		}
		if n >= budget {
			break // let other partitions run; scheduleLocked below requeues us
		}
		var (
			res   result
			until time.Time
			taken = 1
			rec   *kgo.Record
		)
		if batched {
			if p.waitForBatchLocked() {
				break
			}
			p.scratch.window = p.queue.peek(p.scratch.window[:0], p.c.cfg.batchSize)
			p.fillSince = time.Time{}
			p.mu.Unlock()

			res, taken, until = p.processBatch(p.scratch.window)

			p.mu.Lock()
		} else {
			rec = p.queue.head()
			p.mu.Unlock()

			res, until = p.process(rec)

			p.mu.Lock()
		}
		p.pause.examined = true
		if p.gone {
			// Revoked, lost or stopped while the handler ran: the queue
			// is gone. A final outcome may still be marked: the revoke
			// commits it, and otherwise the client ignores the mark. (A
			// batch's outcomes are in the ledger already.)
			if res == resultDone && rec != nil {
				p.commits.complete(rec)
			}
			break
		}
		if batched && taken > 0 {
			// processBatch settled the records it took, even when it
			// then stopped (resultAbandon) or found a record to wait for.
			p.queue.popN(taken)
			if !p.pause.paused() {
				popped += taken
			}
			n += taken
		}
		if res == resultAbandon {
			break
		}
		if res == resultWait {
			p.waiting, p.dueAt = true, until
			// Pausing stops fetching, and resuming costs a fetch round
			// trip, and up to FetchMaxWait when a fetch is in flight. A
			// wait shorter than that is served from the queue, which
			// the poll loop's limit still bounds.
			if time.Until(until) >= p.c.cfg.fetchMaxWait {
				p.setPauseLocked(pauseDue, true)
				// Do not let the few records held pin whole fetches
				// while the partition waits.
				p.queue.compact()
				waitUntil = until
			}
			p.c.timers.Arm(p, until)
			break
		}
		if batched {
			continue
		}
		n++
		p.queue.pop()
		if !p.pause.paused() {
			popped++
		}
		if res == resultDone {
			p.commits.complete(rec)
		}
	}
	if e := p.c.eos; e != nil && n > 0 {
		e.settled.Add(int64(n)) // towards the transaction's size bound
	}
	if popped > 0 {
		p.c.held.Add(-int64(popped))
		p.c.signalDrained()
	}
	if p.pause.has(pauseFull) && p.queue.len() <= p.c.cfg.maxPollRecords/2 {
		p.setPauseLocked(pauseFull, false)
	}
	// Mark before running=false: a revoke waiting in waitIdle then
	// commits everything this run finished.
	p.commits.flush()
	if !waitUntil.IsZero() {
		// Queued under the lock, so it always precedes the matching
		// EventResumed.
		p.queueEventLocked(Event{Kind: EventPaused, Topic: p.topic, Partition: p.partition, Offset: -1, Due: waitUntil})
	}
	p.running = false
	p.scheduleLocked()
	p.cond.Broadcast()
	next := p.next
	p.next = nil
	events := len(p.outbox) > 0
	p.mu.Unlock()
	if events {
		p.flushEvents()
	}
	if next != nil {
		// This part was removed while its handler ran and the partition
		// has since come back: its new part may start now, so the two
		// never handle the same partition at once.
		next.mu.Lock()
		next.after = nil
		next.scheduleLocked()
		next.mu.Unlock()
	}
}

// waitForBatchLocked arms the due timers for the end of BatchWait and
// reports true when the part should wait for more records to fill a
// batch: it holds fewer than BatchSize, and BatchWait has not passed since
// a worker first found it so. A poll that fills the batch (add), or the
// timer (wake), schedules it again.
func (p *part) waitForBatchLocked() bool {
	wait := p.c.cfg.batchWait
	if wait <= 0 || p.queue.len() >= p.c.cfg.batchSize {
		return false
	}
	now := time.Now()
	if p.fillSince.IsZero() {
		p.fillSince = now
	}
	until := p.fillSince.Add(wait)
	if !now.Before(until) {
		return false
	}
	p.waiting, p.filling, p.dueAt = true, true, until
	p.c.timers.Arm(p, until)
	return true
}

// markDone marks the records a worker turn has finished but not yet
// marked, for a commit that cannot wait for the turn to end (shutdown,
// revoke). Marks only ever move forward, so marking again is harmless.
func (p *part) markDone() {
	p.mu.Lock()
	p.commits.flush()
	p.mu.Unlock()
}

// follow makes np, the new part of a partition that was assigned again,
// wait until old's handler call (if one still runs) has returned.
func (np *part) follow(old *part) {
	old.mu.Lock()
	if old.running {
		old.next = np
		np.after = old
	}
	old.mu.Unlock()
}

// stop marks the part gone and drops its held records; they were never
// marked, so they are redelivered to whoever owns the partition next.
func (p *part) stop() {
	p.mu.Lock()
	p.gone = true
	if !p.pause.paused() {
		p.c.held.Add(-int64(p.queue.len()))
	}
	p.queue.reset()
	waiting := p.waiting
	p.waiting, p.filling = false, false
	p.cond.Broadcast()
	p.mu.Unlock()
	if waiting {
		p.c.timers.Disarm(p)
	}
}

// waitIdle waits until no handler runs for the part and, if acks is set,
// every publish is acknowledged, or until deadline. It reports whether the
// part became idle.
func (p *part) waitIdle(deadline time.Time, acks bool) bool {
	t := time.AfterFunc(time.Until(deadline), func() {
		p.mu.Lock()
		p.cond.Broadcast()
		p.mu.Unlock()
	})
	defer t.Stop()
	p.mu.Lock()
	defer p.mu.Unlock()
	for p.running || (acks && p.commits.unacked > 0) {
		if !time.Now().Before(deadline) {
			return false
		}
		p.cond.Wait()
	}
	return true
}
