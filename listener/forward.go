package listener

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/kretry/kretry/internal/hop"
	"github.com/kretry/kretry/retry"
	"github.com/kretry/kretry/retry/spring"
)

// forward publishes rec, stamped with st, to ev.Target for delivery d
// (nil for a record that never reached the handler), through the
// consumer's forwarder. rec stays pending in the part's commit ledger
// (nothing is committed past it) until the forwarder settles it.
func (p *part) forward(d *delivery, rec *kgo.Record, st retry.State, ev Event) {
	e := p.track(rec)
	out := p.c.next(rec, ev.Target, st)
	out.Context = d.recordContext()
	p.c.fwd.forward(p, e, out, ev)
}

// forwarder is the seam between deciding a failed record's outcome and
// making it durable. A worker hands it the record that carries the
// outcome — the retry-tier or DLT record — and it settles the source
// record in its part's commit ledger: part.ack once Kafka has the
// outcome, or part.abandon to leave the source uncommitted for
// redelivery. asyncForwarder is the at-least-once one; a transactional
// forwarder, or batches, plug in here without the poll loop or the
// workers changing.
type forwarder interface {
	// forward publishes out, the hop record for the source record that p
	// tracks as e, and reports ev (EventRetried or EventDeadLettered)
	// once Kafka acknowledges it.
	forward(p *part, e *entry, out *kgo.Record, ev Event)
	// flush waits until every publish started is acknowledged or has
	// failed, or ctx ends.
	flush(ctx context.Context) error
	// stop gives up the publishes waiting to be retried: their sources
	// stay uncommitted.
	stop()
}

// asyncForwarder publishes asynchronously, batched by the client, with
// acks from every in-sync replica. A failed publish is retried with
// backoff for as long as the partition is owned and the listener runs,
// and reported on each failure; a record its tier refuses for good goes to
// the DLT instead (ReasonRejected), and one its DLT refuses is replaced
// there by a stub (ReasonTooLarge).
type asyncForwarder struct {
	c *consumer

	retriesMu sync.Mutex
	retries   map[*time.Timer]struct{} // armed publish retries, stopped by stop
}

func (f *asyncForwarder) forward(p *part, e *entry, out *kgo.Record, ev Event) {
	f.produce(p, e, out, ev, 0)
}

func (f *asyncForwarder) flush(ctx context.Context) error { return f.c.client.Flush(ctx) }

func (f *asyncForwarder) produce(p *part, e *entry, out *kgo.Record, ev Event, failures int) {
	// Keep a pristine copy: the client writes into the record it sends.
	again := *out
	f.c.client.Produce(f.c.produceCtx, out, func(_ *kgo.Record, err error) {
		if err == nil {
			f.c.emit(ev)
			p.ack(e)
			return
		}
		failures++
		fe := ev
		fe.Kind, fe.Err = EventForwardFailed, err
		f.c.emit(fe)
		p.mu.Lock()
		gone := p.gone
		p.mu.Unlock()
		attrs := []slog.Attr{slog.String("topic", ev.Topic), slog.Int("partition", int(ev.Partition)),
			slog.Int64("offset", ev.Offset), slog.String("target", ev.Target), slog.Int("failures", failures),
			slog.String("error", err.Error())}
		if f.c.produceCtx.Err() != nil || gone {
			// Shutting down or no longer ours: leave it unacknowledged, so
			// its source record is never committed and will be read again.
			f.c.log.LogAttrs(context.Background(), slog.LevelWarn, "kretry: publish abandoned; its source record stays uncommitted and will be redelivered", attrs...)
			p.abandon(e)
			return
		}
		if ev.Kind == EventRetried && hop.Rejected(err) {
			// The tier will never take this record (too large, invalid):
			// dead-letter it rather than stall the partition.
			f.c.log.LogAttrs(context.Background(), slog.LevelError, "kretry: retry tier rejected the record; dead-lettering it", attrs...)
			f.rejectToDLT(p, e, &again, ev, err)
			return
		}
		if ev.Kind == EventDeadLettered && ev.Reason != ReasonTooLarge && hop.Rejected(err) {
			// Nor will the DLT: publish a stub that points at the whole
			// record rather than stall the partition for good.
			f.c.log.LogAttrs(context.Background(), slog.LevelError, "kretry: DLT rejected the record; publishing a stub without its value in its place",
				append(attrs, slog.Int("value_bytes", len(again.Value)), slog.Int("key_bytes", len(again.Key)))...)
			f.stubToDLT(p, e, &again, ev, err)
			return
		}
		d := f.c.cfg.forwardBackoff.Schedule(min(failures, 16))[min(failures, 16)-1]
		f.c.log.LogAttrs(context.Background(), slog.LevelError, "kretry: publish failed; retrying, nothing is committed past it",
			append(attrs, slog.Duration("retry_in", d))...)
		f.afterRetry(d, func() {
			if f.c.produceCtx.Err() != nil {
				p.abandon(e)
				return
			}
			next := again
			f.produce(p, e, &next, ev, failures)
		})
	})
}

// next is the record to publish to target for rec with state st, stamped
// with this listener's group (retry.HeaderGroup): see retry.Next, plus
// Spring's headers with SpringHeaders(spring.Write), or without stale ones
// read with spring.Read.
func (l *Listener) next(rec *kgo.Record, target string, st retry.State) *kgo.Record {
	st.Group = l.cfg.group
	out := retry.Next(rec, target, rec.Partition, st, l.policy.MaxErrorBytes)
	switch {
	case l.cfg.spring.Has(spring.Write):
		out.Headers = spring.Append(out.Headers, st, l.policy.MaxErrorBytes)
	case l.cfg.spring.Has(spring.Read):
		out.Headers = spring.Strip(out.Headers)
	}
	return out
}

// rejectToDLT publishes a record its tier refused to the DLT instead, with
// reason "rejected" and the publish error in its error text.
func (f *asyncForwarder) rejectToDLT(p *part, e *entry, tierRec *kgo.Record, ev Event, perr error) {
	st, _, derr := retry.Decode(tierRec.Headers)
	if derr != nil { // cannot happen: we wrote these headers
		st = retry.Corrupt(tierRec, time.Now(), derr)
	} else {
		st = st.WithFailure(time.Time{}, fmt.Sprintf("publish to %s rejected: %v (after: %s)", ev.Target, perr, st.Error),
			fmt.Sprintf("%T", perr)).DeadLetter(ReasonRejected)
	}
	dlt := f.c.plan.DLT
	out := f.c.next(tierRec, dlt, st)
	ev.Kind, ev.Target, ev.Reason, ev.Err = EventDeadLettered, dlt, ReasonRejected, perr
	f.produce(p, e, out, ev, 0)
}

// stubToDLT publishes, in place of a dead-letter record its DLT refused
// for good, a stub: the kretry headers, the key if it is at most
// StubMaxKeyBytes, no value and no user headers, with reason
// ReasonTooLarge and an error text that says where the whole record is and
// why it was dead-lettered. If the DLT refuses even that, the publish is
// retried with backoff like any failed publish (an operator must act).
func (f *asyncForwarder) stubToDLT(p *part, e *entry, full *kgo.Record, ev Event, perr error) {
	st, _, derr := retry.Decode(full.Headers)
	if derr != nil { // cannot happen: we wrote these headers
		st = retry.Corrupt(full, time.Now(), derr)
	}
	users := retry.UserHeaders(full.Headers)
	userBytes := 0
	for _, h := range users {
		userBytes += len(h.Key) + len(h.Value)
	}
	key := full.Key
	keyNote := "key kept"
	if len(key) > StubMaxKeyBytes {
		key, keyNote = nil, fmt.Sprintf("key (%d bytes) left out", len(full.Key))
	}
	st.Error = fmt.Sprintf("stub: %s refused the dead-lettered record (%v); the whole record is at %s[%d]@%d "+
		"until that topic's retention removes it; value (%d bytes) and %d user headers (%d bytes) left out, %s; "+
		"dead-lettered as %q after: %s",
		ev.Target, perr, ev.Topic, ev.Partition, ev.Offset, len(full.Value), len(users), userBytes, keyNote, st.Reason, st.Error)
	st.ErrorType = fmt.Sprintf("%T", perr)
	st.Reason = ReasonTooLarge
	st.Group = f.c.cfg.group
	stub := &kgo.Record{Key: key, Topic: full.Topic, Partition: full.Partition,
		Headers: st.Append(nil, f.c.policy.MaxErrorBytes)}
	if f.c.cfg.spring.Has(spring.Write) {
		stub.Headers = spring.Append(stub.Headers, st, f.c.policy.MaxErrorBytes)
	}
	ev.Reason, ev.Err = ReasonTooLarge, perr
	f.produce(p, e, stub, ev, 0)
}

// afterRetry runs fn after d unless the listener stops first.
func (f *asyncForwarder) afterRetry(d time.Duration, fn func()) {
	f.retriesMu.Lock()
	defer f.retriesMu.Unlock()
	if f.retries == nil {
		f.retries = make(map[*time.Timer]struct{})
	}
	var t *time.Timer
	t = time.AfterFunc(d, func() {
		f.retriesMu.Lock()
		delete(f.retries, t)
		f.retriesMu.Unlock()
		fn()
	})
	f.retries[t] = struct{}{}
}

// stop stops every pending publish retry; their records stay
// uncommitted.
func (f *asyncForwarder) stop() {
	f.retriesMu.Lock()
	defer f.retriesMu.Unlock()
	for t := range f.retries {
		t.Stop()
	}
	clear(f.retries)
}
