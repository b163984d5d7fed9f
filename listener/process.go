package listener

import (
	"context"
	"fmt"
	"log/slog"
	"runtime/debug"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/kretry/kretry/retry"
	"github.com/kretry/kretry/retry/spring"
	"github.com/kretry/kretry/strategy"
)

// result is what handling one record came to.
type result int

const (
	resultDone    result = iota // outcome final now: mark when the prefix allows
	resultPending               // published; final when Kafka acknowledges
	resultWait                  // not due yet: keep it and pause the partition
	resultAbandon               // interrupted by shutdown: leave it unmarked for redelivery
	resultSettled               // final, and already in the ledger (exactly once: part.succeed)
)

// Reasons of Event.Reason. Those written to the kretry-reason header of
// dead-lettered records are retry's (the retry.Reason constants, which
// include the classifier's "permanent", "excluded:<name>" and
// "not-included"); the first five are named here too.
const (
	ReasonExhausted      = retry.ReasonExhausted
	ReasonTimeout        = retry.ReasonTimeout
	ReasonCorruptHeaders = retry.ReasonCorruptHeaders
	// ReasonRejected: the retry tier refused the record (too large,
	// invalid), so it was published to the DLT instead.
	ReasonRejected = retry.ReasonRejected
	// ReasonTooLarge: the DLT refused the dead-lettered record for good
	// (too large, invalid), so a stub was published in its place: the
	// key (when at most StubMaxKeyBytes) and the kretry headers, without
	// the value and the user headers. Its kretry-error text names the
	// topic, partition and offset where the whole record still is, and
	// the reason it was dead-lettered.
	ReasonTooLarge = retry.ReasonTooLarge
	// ReasonOtherGroup: the Reason of an EventSkipped, a tier or DLT
	// record of another consumer group passed over (see Event.Group).
	// Never written to a record.
	ReasonOtherGroup = "other-group"
	// ReasonDLTHandlerFailed: the Reason of an EventDropped for a DLT
	// record whose DLT handler gave up. Never written to a record: the
	// record stays in the DLT.
	ReasonDLTHandlerFailed = "dlt-handler-failed"
	// ReasonStaleCopy: the Reason of an EventSkipped under key order
	// (KeyOrder): a copy of a record that a crash left in a tier, or a
	// main-topic record read again after one, while another copy of it is
	// the one being delivered. It is committed past without a handler
	// call. Never written to a record.
	ReasonStaleCopy = "stale-copy"
)

// DueAllowance is added to the longest delay a listener sets before a
// retry record's due time counts as corrupt (see MaxRequestedDelay). It
// covers clock differences between hosts and policies whose delays were
// shortened while records waited.
const DueAllowance = 10 * time.Minute

// StubMaxKeyBytes is the largest key a dead-letter stub keeps (see
// ReasonTooLarge).
const StubMaxKeyBytes = 1024

// PanicError is the error a recovered handler panic becomes. It is
// retried like any other error.
type PanicError struct {
	Value any    // the value passed to panic
	Stack []byte // the goroutine's stack at the panic
}

// Error returns the panic value followed by the stack.
func (e *PanicError) Error() string {
	return fmt.Sprintf("listener: handler panicked: %v\n%s", e.Value, e.Stack)
}

// process handles one record according to the role of its topic.
func (p *part) process(rec *kgo.Record) (result, time.Time) {
	switch p.role {
	case strategy.RoleTier:
		return p.processTier(rec)
	case strategy.RoleDLT:
		return p.processDLT(rec)
	default:
		return p.processMain(rec)
	}
}

func (p *part) processMain(rec *kgo.Record) (result, time.Time) {
	if p.lane != nil && rec.Key != nil {
		o := p.c.keys.atMain(p.lane, rec)
		p.kh = o.h
		switch o.v {
		case vFollow:
			st := retry.First(rec, time.Time{})
			st.Attempt, st.FirstFailure, st.Due = 1, time.Time{}, o.due
			return p.followKey(rec, st, o), time.Time{}
		case vWait:
			return resultWait, time.Now().Add(keyWait)
		case vStale:
			return p.stale(rec), time.Time{}
		}
	}
	d := p.startDelivery(rec, strategy.RoleMain, 1, time.Time{})
	defer d.end()
	// The hot path of a healthy system: without hooks, no clock is read.
	var start time.Time
	if p.c.observed {
		start = time.Now()
	}
	err := p.c.call(d.ctx, rec, nil, false)
	if err == nil {
		d.decided(EventHandled, nil, "", "")
		if p.c.observed {
			p.c.emit(Event{Kind: EventHandled, Topic: rec.Topic, Partition: rec.Partition, Offset: rec.Offset,
				Role: strategy.RoleMain, Attempt: 1, Latency: time.Since(start)})
		}
		return p.succeed(&d, rec), time.Time{}
	}
	if p.c.handlerCtx.Err() != nil {
		return resultAbandon, time.Time{}
	}
	// One clock read serves the failure: its time, the due time and the
	// handler's latency.
	now := time.Now()
	var latency time.Duration
	if p.c.observed {
		latency = now.Sub(start)
	}
	return p.failSettling(&d, rec, 1, retry.First(rec, now), err, now, latency, 0), time.Time{}
}

func (p *part) processTier(rec *kgo.Record) (result, time.Time) {
	now := time.Now()
	st, check, owner, derr := p.checkTier(rec, now)
	switch check {
	case tierSkip:
		return p.skip(rec, owner), time.Time{}
	case tierCorrupt:
		if !p.settling() {
			return resultAbandon, time.Time{}
		}
		res := p.corrupt(rec, derr)
		p.settled(res == resultPending)
		return res, time.Time{}
	case tierWait:
		return resultWait, st.Due
	}
	if p.lane != nil && rec.Key != nil {
		if isMarker(&st) {
			return p.marker(rec, st), time.Time{}
		}
		o := p.c.keys.atTier(p.lane, rec, &st)
		p.kh = o.h
		switch o.v {
		case vFollow:
			st.Due = o.due
			return p.followKey(rec, st, o), time.Time{}
		case vDeadLetter:
			return p.deadFollower(rec, st, o), time.Time{}
		case vWait:
			return resultWait, now.Add(keyWait)
		case vPending:
			return resultWait, now.Add(copyWait)
		case vStale:
			return p.stale(rec), time.Time{}
		}
	}
	d := p.startDelivery(rec, strategy.RoleTier, st.Attempt, st.Due)
	defer d.end()
	// The clock read that found the record due is its start.
	start, late := now, now.Sub(st.Due)
	err := p.c.call(d.ctx, rec, &st, false)
	if err == nil {
		if p.lane != nil && rec.Key != nil {
			p.c.keys.done(p.lane, p.kh, st.OriginalOffset, false)
		}
		d.decided(EventHandled, nil, "", "")
		if p.c.observed {
			p.c.emit(Event{Kind: EventHandled, Topic: rec.Topic, Partition: rec.Partition, Offset: rec.Offset,
				Role: strategy.RoleTier, Attempt: st.Attempt, Latency: time.Since(start), Late: late})
		}
		return p.succeed(&d, rec), time.Time{}
	}
	if p.c.handlerCtx.Err() != nil {
		return resultAbandon, time.Time{}
	}
	now = time.Now()
	next := st.Advance(time.Time{}, "", "")
	if next.FirstFailure.IsZero() {
		next.FirstFailure = now // a follower's first failure
	}
	return p.failSettling(&d, rec, st.Attempt, next, err, now, now.Sub(start), late), time.Time{}
}

// tierCheck is what a retry-tier record's headers say before any handler
// call (part.checkTier).
type tierCheck int

const (
	tierDue     tierCheck = iota // due: hand it to the handler
	tierWait                     // not due yet: wait for st.Due
	tierSkip                     // another group's record: skip it
	tierCorrupt                  // missing or corrupt headers: dead-letter it
)

// checkTier reads a retry-tier record's headers at now: its state, and
// whether it is due, must wait, is another group's (owner) or is corrupt
// (derr says why).
func (p *part) checkTier(rec *kgo.Record, now time.Time) (st retry.State, check tierCheck, owner string, derr error) {
	if owner, foreign := retry.ForeignGroup(rec.Headers, p.c.cfg.group); foreign {
		return st, tierSkip, owner, nil
	}
	st, ok, derr := p.c.decode(rec.Headers, false)
	if derr == nil && !ok {
		derr = retry.NewDecodeError(retry.HeaderAttempt, retry.ErrMissingHeader,
			" missing: the retry topic record carries no kretry headers")
	}
	if derr != nil {
		return st, tierCorrupt, "", derr
	}
	if ahead := st.Due.Sub(now); ahead > p.c.dueLimit {
		return st, tierCorrupt, "", retry.NewDecodeError(retry.HeaderDue, retry.ErrCorruptHeader, fmt.Sprintf(
			": %s is %v ahead, further than this listener ever sets (%v: its longest tier delay or MaxRequestedDelay, plus DueAllowance %v)",
			st.Due.Format(time.RFC3339Nano), ahead.Round(time.Millisecond), p.c.dueLimit, DueAllowance))
	}
	if now.Before(st.Due) {
		return st, tierWait, "", nil
	}
	return st, tierDue, "", nil
}

// skip passes over a record another consumer group forwarded to a topic
// this listener shares with it (retry.ForeignGroup): the record is that
// group's to handle, or to dead-letter if it is corrupt, and this group's
// offset moves past it. A record without retry.HeaderGroup (Spring Kafka's,
// or one written before kretry stamped it) belongs to every group and is
// never skipped. Skipping comes before decoding and before any wait for a
// due time.
func (p *part) skip(rec *kgo.Record, owner string) result {
	if p.c.observed {
		p.c.emit(Event{Kind: EventSkipped, Topic: rec.Topic, Partition: rec.Partition, Offset: rec.Offset,
			Role: p.role, Group: owner, Reason: ReasonOtherGroup})
	}
	return resultDone
}

// corrupt dead-letters a retry-topic record whose kretry headers are
// missing or invalid: it is never handed to the handler (its due time is
// unknown) and never dropped.
func (p *part) corrupt(rec *kgo.Record, derr error) result {
	st := retry.Corrupt(rec, time.Now(), derr)
	p.c.log.LogAttrs(context.Background(), slog.LevelError, "kretry: retry record has corrupt headers; dead-lettering it",
		slog.String("topic", rec.Topic), slog.Int("partition", int(rec.Partition)),
		slog.Int64("offset", rec.Offset), slog.String("error", derr.Error()))
	return p.deadLetter(nil, rec, st, p.c.router().dead(st.Reason, ""), derr, 0, 0)
}

// succeed settles delivery d of rec, whose handler returned nil. At least
// once it returns resultDone: run completes rec in the ledger. Exactly
// once it publishes the handler's outputs and completes rec under the
// transaction gate, so both are in the same transaction, and returns
// resultSettled — or resultAbandon, publishing nothing, if the part is
// gone (an aborted transaction forgot it).
func (p *part) succeed(d *delivery, rec *kgo.Record) result {
	if p.c.eos == nil {
		return resultDone
	}
	outs := d.outs.take()
	if len(outs) == 0 {
		// Nothing to publish: the record's offset may be committed with
		// this transaction or a later one, so run completes it as at
		// least once, without the gate.
		return resultDone
	}
	if !p.settling() {
		return resultAbandon
	}
	p.c.publishOutputs(outs)
	p.mu.Lock()
	p.commits.complete(rec)
	p.mu.Unlock()
	p.settled(true)
	return resultSettled
}

// failSettling is fail for a delivery whose handler failed: its outputs
// are dropped, and exactly once the routing happens under the transaction
// gate (or not at all if the part is gone: resultAbandon).
func (p *part) failSettling(d *delivery, rec *kgo.Record, delivered int32, next retry.State, err error, now time.Time, latency, late time.Duration) result {
	d.outs.take()
	if !p.settling() {
		return resultAbandon
	}
	res := p.fail(d, rec, delivered, next, err, now, latency, late)
	p.settled(res == resultPending)
	return res
}

// fail carries out the routing decision for a delivery d of rec that
// failed with err. delivered is the number of deliveries the record has
// had, this one included; next is the record's state for the delivery
// that would come next (its Attempt is one more than delivered, unless
// that saturated at math.MaxInt32); late is how late the delivery started
// after its due time; now is when the delivery failed.
func (p *part) fail(d *delivery, rec *kgo.Record, delivered int32, next retry.State, err error, now time.Time, latency, late time.Duration) result {
	dec := p.c.router().decide(next, err, now)
	if dec.capped > 0 {
		p.c.log.LogAttrs(context.Background(), slog.LevelWarn, "kretry: handler asked for a retry delay longer than MaxRequestedDelay; using MaxRequestedDelay",
			slog.String("topic", rec.Topic), slog.Int("partition", int(rec.Partition)),
			slog.Int64("offset", rec.Offset), slog.Duration("requested", dec.capped), slog.Duration("max", p.c.cfg.maxRequested))
	}
	if p.lane != nil && rec.Key != nil && !p.keyRouted(rec, next, dec) {
		return resultAbandon
	}
	errText, errType := err.Error(), strategy.ErrorType(err)
	if dec.kind != routeTier {
		st := next.WithFailure(time.Time{}, errText, errType).DeadLetter(dec.reason)
		st.Attempt = delivered // DeadLetter's Attempt-1 is one short when Advance saturated
		return p.deadLetter(d, rec, st, dec, err, latency, late)
	}
	next = next.WithFailure(dec.due, errText, errType)
	d.decided(EventRetried, err, dec.topic, "")
	p.forward(d, rec, next, Event{Kind: EventRetried, Topic: rec.Topic, Partition: rec.Partition, Offset: rec.Offset,
		Role: p.role, Attempt: delivered, Target: dec.topic, Due: next.Due, Err: err, Latency: latency, Late: late})
	return resultPending
}

// deadLetter carries out dec, a routeDLT or routeDrop decision: it
// publishes rec with its dead-letter state st to dec.topic, or drops it
// with a log line. d is the delivery that failed, nil for a record that
// never reached the handler; latency is the handler's run time and late
// how late it started.
func (p *part) deadLetter(d *delivery, rec *kgo.Record, st retry.State, dec decision, err error, latency, late time.Duration) result {
	reason := st.Reason
	if dec.kind == routeDrop {
		p.c.log.LogAttrs(context.Background(), slog.LevelWarn, "kretry: record failed for good; no DLT configured, dropping it",
			slog.String("topic", rec.Topic), slog.Int("partition", int(rec.Partition)),
			slog.Int64("offset", rec.Offset), slog.String("reason", reason), slog.String("error", st.Error))
		d.decided(EventDropped, err, "", reason)
		p.c.emit(Event{Kind: EventDropped, Topic: rec.Topic, Partition: rec.Partition, Offset: rec.Offset,
			Role: p.role, Attempt: st.Attempt, Reason: reason, Err: err, Latency: latency, Late: late, Batch: d.batchSize()})
		return resultDone
	}
	d.decided(EventDeadLettered, err, dec.topic, reason)
	p.forward(d, rec, st, Event{Kind: EventDeadLettered, Topic: rec.Topic, Partition: rec.Partition,
		Offset: rec.Offset, Role: p.role, Attempt: st.Attempt, Target: dec.topic, Reason: reason, Err: err, Latency: latency, Late: late})
	return resultPending
}

func (p *part) processDLT(rec *kgo.Record) (result, time.Time) {
	if owner, foreign := retry.ForeignGroup(rec.Headers, p.c.cfg.group); foreign {
		return p.skip(rec, owner), time.Time{}
	}
	st, _, derr := p.c.decode(rec.Headers, true)
	if derr != nil && st.Reason == "" {
		st.Reason = ReasonCorruptHeaders + ": " + derr.Error()
	}
	d := p.startDelivery(rec, strategy.RoleDLT, st.Attempt, time.Time{})
	defer d.end()
	start := time.Now()
	err := p.c.call(d.ctx, rec, &st, true)
	if err != nil && p.c.handlerCtx.Err() != nil {
		return resultAbandon, time.Time{}
	}
	if err == nil {
		p.dltTries = 0
		d.decided(EventHandled, nil, "", "")
		p.c.emit(Event{Kind: EventHandled, Topic: rec.Topic, Partition: rec.Partition, Offset: rec.Offset,
			Role: strategy.RoleDLT, Attempt: st.Attempt, Latency: time.Since(start)})
		return p.succeed(&d, rec), time.Time{}
	}
	d.outs.take() // a failed call's outputs are dropped
	p.dltTries++
	d.decided(EventDLTHandlerFailed, err, "", "")
	p.c.emit(Event{Kind: EventDLTHandlerFailed, Topic: rec.Topic, Partition: rec.Partition, Offset: rec.Offset,
		Role: strategy.RoleDLT, Attempt: int32(p.dltTries), Err: err, Latency: time.Since(start)})
	pol := &p.c.policy
	if pol.DLT == retry.DLTRetryOnError && p.dltTries < pol.DLTHandlerAttempts {
		return resultWait, time.Now().Add(pol.DLTHandlerBackoff)
	}
	p.c.log.LogAttrs(context.Background(), slog.LevelError, "kretry: DLT handler failed; leaving the record in the DLT and moving on",
		slog.String("topic", rec.Topic), slog.Int("partition", int(rec.Partition)),
		slog.Int64("offset", rec.Offset), slog.Int("handler_attempts", p.dltTries), slog.String("error", err.Error()))
	p.dltTries = 0
	d.decided(EventDropped, err, "", ReasonDLTHandlerFailed)
	p.c.emit(Event{Kind: EventDropped, Topic: rec.Topic, Partition: rec.Partition, Offset: rec.Offset,
		Role: strategy.RoleDLT, Attempt: st.Attempt, Reason: ReasonDLTHandlerFailed, Err: err})
	return resultDone, time.Time{}
}

// decode reads a tier (or, with deadLetter, a DLT) record's retry state:
// kretry's headers, or Spring's with SpringHeaders(spring.Read).
func (l *Listener) decode(headers []kgo.RecordHeader, deadLetter bool) (retry.State, bool, error) {
	if l.cfg.spring.Has(spring.Read) {
		return spring.Resolve(headers, deadLetter)
	}
	return retry.Decode(headers)
}

// call runs the handler for rec — or, with deadLetter, the DLT handler,
// given *st — with st in its context (nil on a first delivery, where
// retry.FromContext finds none), the configured timeout, and panics
// recovered as a *PanicError.
func (l *Listener) call(ctx context.Context, rec *kgo.Record, st *retry.State, deadLetter bool) error {
	if st != nil {
		ctx = retry.WithState(ctx, *st)
	}
	if deadLetter {
		return l.invoke(ctx, rec, nil, st)
	}
	return l.invoke(ctx, rec, nil, nil)
}

// invoke is every handler call: the batch handler for recs when it is not
// nil, else the DLT handler for rec given *dead when that is not nil, else
// the handler for rec; under the configured timeout, with panics recovered
// as a *PanicError.
func (l *Listener) invoke(ctx context.Context, rec *kgo.Record, recs []*kgo.Record, dead *retry.State) (err error) {
	if l.cfg.handlerTimeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, l.cfg.handlerTimeout)
		defer cancel()
	}
	defer func() {
		if r := recover(); r != nil {
			err = &PanicError{Value: r, Stack: debug.Stack()}
		}
	}()
	switch {
	case recs != nil:
		return l.batch.HandleBatch(ctx, recs)
	case dead != nil:
		return l.dltHandler.HandleDLT(ctx, rec, *dead)
	}
	return l.handler.Handle(ctx, rec)
}

// keyWait is how long, under key order, a record waits before it is looked
// at again when it cannot be ordered yet: its main partition stops at
// MaxKeysInRetry keys.
const keyWait = 100 * time.Millisecond

// copyWait is how long, under key order, a copy of a record waits when the
// record's newest copy is not acknowledged yet (it may be that copy: the
// fetch can outrun the acknowledgement).
const copyWait = 5 * time.Millisecond

// followKey publishes rec, a record that must wait behind an earlier record
// of its key, to o.tier as a follower with state st (its due time set),
// without a handler call.
func (p *part) followKey(rec *kgo.Record, st retry.State, o order) result {
	st.Follower, st.Follows = true, o.follows
	st.Reason = ""
	if p.role == strategy.RoleTier {
		p.lane.moved(o.h, st.OriginalOffset, o.tier, o.due)
	}
	p.forward(nil, rec, st, Event{Kind: EventFollowed, Topic: rec.Topic, Partition: rec.Partition, Offset: rec.Offset,
		Role: p.role, Attempt: st.Attempt, Target: o.tier, Due: st.Due})
	return resultPending
}

// stale passes over rec, a copy of a record whose live copy is another
// (ReasonStaleCopy).
func (p *part) stale(rec *kgo.Record) result {
	if p.c.observed {
		p.c.emit(Event{Kind: EventSkipped, Topic: rec.Topic, Partition: rec.Partition, Offset: rec.Offset,
			Role: p.role, Reason: ReasonStaleCopy})
	}
	return resultDone
}

// deadFollower dead-letters rec, a follower of a record of its key that
// was dead-lettered (config.FollowersDeadLetter), without a handler call.
func (p *part) deadFollower(rec *kgo.Record, st retry.State, o order) result {
	err := fmt.Errorf("the record of its key at offset %d of %s[%d] it followed was dead-lettered", o.follows, st.OriginalTopic, st.OriginalPartition)
	if !p.markDead(rec, st) {
		return resultAbandon
	}
	dst := st.WithFailure(time.Time{}, err.Error(), "").DeadLetter(retry.ReasonFollower)
	return p.deadLetter(nil, rec, dst, p.c.router().dead(retry.ReasonFollower, ""), err, 0, 0)
}

// keyRouted updates, under key order, the keys in retry for rec (state
// st), whose delivery failed and was routed by dec: a main-topic record
// going to a tier now has its key in retry; a tier record going to another
// tier is its key's last publish; one dead-lettered or dropped leaves
// (markDead). It reports false when the listener stops first.
func (p *part) keyRouted(rec *kgo.Record, st retry.State, dec decision) bool {
	ko, h := p.c.keys, p.kh
	switch {
	case dec.kind == routeTier && p.role == strategy.RoleMain:
		ko.add(p.lane, h, keyRec{off: st.OriginalOffset, follows: -1, state: copyPending}, dec.topic, dec.due)
	case dec.kind == routeTier:
		p.lane.moved(h, st.OriginalOffset, dec.topic, dec.due)
	case p.role == strategy.RoleTier:
		return p.markDead(rec, st)
	}
	return true
}

// markDead records that rec, a tier record with state st, is being
// dead-lettered (or dropped). Under config.FollowersDeadLetter, when
// records of its key follow it, a dead-letter marker goes first to the
// tier of the key's last publish, so that whoever owns the lane after a
// restart or a rebalance still dead-letters them: a record of the key,
// without value, whose kretry-follows names its own original offset. The
// publish is retried until Kafka has it; it reports false when the
// listener stops first.
func (p *part) markDead(rec *kgo.Record, st retry.State) bool {
	ko, h := p.c.keys, p.kh
	if tier, due, ok := ko.markerFor(p.lane, h, st.OriginalOffset); ok {
		m := retry.State{Attempt: 1, Due: due, OriginalTopic: st.OriginalTopic, OriginalPartition: st.OriginalPartition,
			OriginalOffset: st.OriginalOffset, OriginalTimestamp: st.OriginalTimestamp, FirstFailure: st.FirstFailure,
			Error: "dead-letter marker: the record at this original offset was dead-lettered; the records of its key that follow it are dead-lettered too",
			Group: p.c.cfg.group, Follower: true, Follows: st.OriginalOffset}
		out := &kgo.Record{Topic: tier, Partition: rec.Partition, Key: rec.Key, Headers: m.Append(nil, p.c.policy.MaxErrorBytes)}
		for try := 1; ; try++ {
			err := p.c.client.ProduceSync(p.c.produceCtx, out).FirstErr()
			if err == nil {
				break
			}
			if p.c.produceCtx.Err() != nil {
				return false
			}
			d := p.c.cfg.forwardBackoff.Schedule(min(try, 16))[min(try, 16)-1]
			p.c.log.Warn("kretry: key order: publishing a dead-letter marker failed; retrying", "topic", tier,
				"partition", rec.Partition, "error", err, "retry_in", d)
			t := time.NewTimer(d)
			select {
			case <-t.C:
			case <-p.c.produceCtx.Done():
				t.Stop()
				return false
			}
			out.Partition = rec.Partition
		}
	}
	ko.done(p.lane, h, st.OriginalOffset, true)
	return true
}

// marker handles a dead-letter marker read from a tier (see markDead):
// while records of its key still follow the record it names, it moves
// behind the key's last publish, and otherwise it has done its work.
// Either way no handler sees it.
func (p *part) marker(rec *kgo.Record, st retry.State) result {
	ko := p.c.keys
	p.kh = ko.hash(rec.Key)
	tier, due, ok := ko.markerFor(p.lane, p.kh, st.OriginalOffset)
	if !ok {
		return resultDone
	}
	st.Due = due
	p.forward(nil, rec, st, Event{Kind: EventFollowed, Topic: rec.Topic, Partition: rec.Partition, Offset: rec.Offset,
		Role: p.role, Attempt: st.Attempt, Target: tier, Due: due, Reason: reasonMarker})
	return resultPending
}

// reasonMarker is the Reason of the EventFollowed of a dead-letter marker
// moving behind its key's last publish.
const reasonMarker = "dead-letter-marker"
