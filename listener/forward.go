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
	ev.Batch = d.batchSize()
	h := &forwarding{entry: entry{rec: rec}, p: p, ev: ev}
	if p.lane != nil && rec.Key != nil && (ev.Kind == EventRetried || ev.Kind == EventFollowed) && ev.Reason != reasonMarker {
		h.kh, h.koff, h.keyed = p.kh, st.OriginalOffset, true
	}
	p.c.stamp(&h.out, rec, ev.Target, st)
	h.out.Context = d.recordContext()
	h.built()
	p.track(&h.entry)
	p.c.fwd.forward(h)
}

// forwarding is one forward of a failed record: the source record's entry
// in its part's commit ledger, the record that carries its outcome to a
// tier or DLT, and the event to report once Kafka has it — one allocation
// for all of it.
type forwarding struct {
	entry       // the source record's place in p's commit ledger
	p     *part // the source record's part
	// out is the record published. The client writes into it (partition,
	// timestamp, offset…), and hooks may change its headers and context:
	// headers, partition and ctx keep them as built, for a re-publish.
	out       kgo.Record
	headers   []kgo.RecordHeader
	partition int32
	ctx       context.Context
	ev        Event // EventRetried or EventDeadLettered, reported on acknowledgement
	failures  int   // failed publishes of out so far
	// keyed: under key order, out is the new copy of the record of key
	// hash kh at original offset koff; its acknowledgement makes it the
	// live one (lane.live).
	keyed bool
	kh    uint64
	koff  int64
}

// built notes out as it is before its first publish.
func (h *forwarding) built() {
	h.headers, h.partition, h.ctx, h.failures = h.out.Headers, h.out.Partition, h.out.Context, 0
}

// pristine returns out as it was built, before any publish wrote into it.
func (h *forwarding) pristine() kgo.Record {
	return kgo.Record{Key: h.out.Key, Value: h.out.Value, Headers: h.headers, Topic: h.out.Topic,
		Partition: h.partition, Context: h.ctx}
}

// forwarder is the seam between deciding a failed record's outcome and
// making it durable. A worker hands it a forwarding: the record that
// carries the outcome — the retry-tier or DLT record — and the source
// record's entry in its part's commit ledger, which the forwarder settles:
// part.ack once Kafka has the outcome, or part.abandon to leave the source
// uncommitted for redelivery. asyncForwarder is the at-least-once one; a transactional
// forwarder, or batches, plug in here without the poll loop or the
// workers changing.
type forwarder interface {
	// forward publishes h.out and reports h.ev (EventRetried or
	// EventDeadLettered) once Kafka acknowledges it.
	forward(h *forwarding)
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

func (f *asyncForwarder) forward(h *forwarding) { f.produce(h) }

func (f *asyncForwarder) flush(ctx context.Context) error { return f.c.client.Flush(ctx) }

// produce publishes h.out; published handles the outcome.
func (f *asyncForwarder) produce(h *forwarding) {
	f.c.client.Produce(f.c.produceCtx, &h.out, func(_ *kgo.Record, err error) { f.published(h, err) })
}

// published settles h once Kafka has acknowledged h.out, or handles the
// failed publish: abandoned when the listener stops or the partition is
// gone, to the DLT (or a stub there) when the target refused it for good,
// and otherwise retried with backoff.
func (f *asyncForwarder) published(h *forwarding, err error) {
	p, ev := h.p, &h.ev
	if err == nil {
		if h.keyed {
			p.lane.live(h.kh, h.koff, h.out.Topic, h.out.Offset)
		}
		if f.c.observed {
			f.c.emit(*ev)
		}
		p.ack(&h.entry)
		return
	}
	h.failures++
	if f.c.observed {
		fe := *ev
		fe.Kind, fe.Err = EventForwardFailed, err
		f.c.emit(fe)
	}
	p.mu.Lock()
	gone := p.gone
	p.mu.Unlock()
	attrs := []slog.Attr{slog.String("topic", ev.Topic), slog.Int("partition", int(ev.Partition)),
		slog.Int64("offset", ev.Offset), slog.String("target", ev.Target), slog.Int("failures", h.failures),
		slog.String("error", err.Error())}
	if f.c.produceCtx.Err() != nil || gone {
		// Shutting down or no longer ours: leave it unacknowledged, so
		// its source record is never committed and will be read again.
		f.c.log.LogAttrs(context.Background(), slog.LevelWarn, "kretry: publish abandoned; its source record stays uncommitted and will be redelivered", attrs...)
		p.abandon(&h.entry)
		return
	}
	if (ev.Kind == EventRetried || ev.Kind == EventFollowed) && hop.Rejected(err) {
		// The tier will never take this record (too large, invalid):
		// dead-letter it rather than stall the partition.
		f.c.log.LogAttrs(context.Background(), slog.LevelError, "kretry: retry tier rejected the record; dead-lettering it", attrs...)
		f.rejectToDLT(h, err)
		return
	}
	if ev.Kind == EventDeadLettered && ev.Reason != ReasonTooLarge && hop.Rejected(err) {
		// Nor will the DLT: publish a stub that points at the whole
		// record rather than stall the partition for good.
		f.c.log.LogAttrs(context.Background(), slog.LevelError, "kretry: DLT rejected the record; publishing a stub without its value in its place",
			append(attrs, slog.Int("value_bytes", len(h.out.Value)), slog.Int("key_bytes", len(h.out.Key)))...)
		f.stubToDLT(h, err)
		return
	}
	if f.c.eos != nil {
		// Exactly once, a publish is not retried within its transaction:
		// the transaction aborts, and its records are delivered again.
		f.c.log.LogAttrs(context.Background(), slog.LevelError, "kretry: publish failed; aborting the exactly-once transaction, its records will be delivered again", attrs...)
		f.c.eos.doom(fmt.Errorf("publishing %s[%d]@%d to %s: %w", ev.Topic, ev.Partition, ev.Offset, ev.Target, err))
		p.abandon(&h.entry)
		return
	}
	d := f.c.cfg.forwardBackoff.Schedule(min(h.failures, 16))[min(h.failures, 16)-1]
	f.c.log.LogAttrs(context.Background(), slog.LevelError, "kretry: publish failed; retrying, nothing is committed past it",
		append(attrs, slog.Duration("retry_in", d))...)
	f.afterRetry(d, func() {
		if f.c.produceCtx.Err() != nil {
			p.abandon(&h.entry)
			return
		}
		h.out = h.pristine()
		f.produce(h)
	})
}

// stamp fills out, the record to publish to target for rec with state
// st, stamped with this listener's group (retry.HeaderGroup): see
// retry.Next, plus Spring's headers with SpringHeaders(spring.Write), or
// without stale ones read with spring.Read.
func (l *Listener) stamp(out, rec *kgo.Record, target string, st retry.State) {
	st.Group = l.cfg.group
	*out = kgo.Record{Key: rec.Key, Value: rec.Value, Topic: target, Partition: rec.Partition,
		Headers: retry.NextHeaders(rec, st, l.policy.MaxErrorBytes)}
	switch {
	case l.cfg.spring.Has(spring.Write):
		out.Headers = spring.Append(out.Headers, st, l.policy.MaxErrorBytes)
	case l.cfg.spring.Has(spring.Read):
		out.Headers = spring.Strip(out.Headers)
	}
}

// rejectToDLT publishes a record its tier refused to the DLT instead, with
// reason "rejected" and the publish error in its error text.
func (f *asyncForwarder) rejectToDLT(h *forwarding, perr error) {
	tierRec := h.pristine()
	st, _, derr := retry.Decode(tierRec.Headers)
	if derr != nil { // cannot happen: we wrote these headers
		st = retry.Corrupt(&tierRec, time.Now(), derr)
	} else {
		st = st.WithFailure(time.Time{}, fmt.Sprintf("publish to %s rejected: %v (after: %s)", h.ev.Target, perr, st.Error),
			fmt.Sprintf("%T", perr)).DeadLetter(ReasonRejected)
	}
	dlt := f.c.plan.DLT
	if p := h.p; p.lane != nil && tierRec.Key != nil {
		// Key order: the record will not wait in the tier after all.
		f.c.keys.done(p.lane, f.c.keys.hash(tierRec.Key), st.OriginalOffset, true)
	}
	f.c.stamp(&h.out, &tierRec, dlt, st)
	h.out.Context = tierRec.Context
	h.built()
	h.ev.Kind, h.ev.Target, h.ev.Reason, h.ev.Err = EventDeadLettered, dlt, ReasonRejected, perr
	f.produce(h)
}

// stubToDLT publishes, in place of a dead-letter record its DLT refused
// for good, a stub: the kretry headers, the key if it is at most
// StubMaxKeyBytes, no value and no user headers, with reason
// ReasonTooLarge and an error text that says where the whole record is and
// why it was dead-lettered. If the DLT refuses even that, the publish is
// retried with backoff like any failed publish (an operator must act).
func (f *asyncForwarder) stubToDLT(h *forwarding, perr error) {
	full := h.pristine()
	ev := &h.ev
	st, _, derr := retry.Decode(full.Headers)
	if derr != nil { // cannot happen: we wrote these headers
		st = retry.Corrupt(&full, time.Now(), derr)
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
	h.out = kgo.Record{Key: key, Topic: full.Topic, Partition: full.Partition, Context: full.Context,
		Headers: st.Append(nil, f.c.policy.MaxErrorBytes)}
	if f.c.cfg.spring.Has(spring.Write) {
		h.out.Headers = spring.Append(h.out.Headers, st, f.c.policy.MaxErrorBytes)
	}
	h.built()
	ev.Reason, ev.Err = ReasonTooLarge, perr
	f.produce(h)
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
