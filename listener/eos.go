package listener

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kretry/kretry/config"
)

// ErrFenced is in the error Run returns when, in exactly-once mode,
// another instance with the same transactional ID took over (or the broker
// aborted a transaction that outlived its timeout): this instance's
// producer can no longer commit. Records it had not committed are
// redelivered to the group; restart it (with a transactional ID of its own)
// to rejoin.
var ErrFenced = errors.New("listener: exactly-once: producer fenced")

// DefaultTransactionInterval is how often an exactly-once listener commits
// its transaction unless TransactionInterval says otherwise.
const DefaultTransactionInterval = config.DefaultTransactionInterval

// maxTxnRecords bounds the records an exactly-once transaction settles: a
// transaction that has settled this many is committed at the poll loop's
// next turn, before its interval has passed.
const maxTxnRecords = 100_000

// eos is the state of an exactly-once run: the transact session and what
// the transaction in progress holds.
//
// Every publish of a transaction — a forward, a handler's outputs — and the
// ledger update that goes with it happen under gate's read lock (see
// part.settling); commit takes the write lock, so nothing is published
// while a transaction ends and the next begins. Handlers run without it:
// their outputs wait in their part's output slot (part.slot) until they
// return, and are published only if they succeed. A success with no
// outputs publishes nothing and completes without the gate.
type eos struct {
	c       *consumer
	sess    *kgo.GroupTransactSession
	id      string
	timeout time.Duration // the client's kgo.TransactionTimeout
	gate    sync.RWMutex

	mu      sync.Mutex
	started time.Time // when the transaction in progress began (or was last found empty)
	doomed  error     // a publish of this transaction failed: abort it

	// What the transaction in progress holds: records settled (counted
	// by worker turns), ledger marks made, and whether something was
	// published. Atomic: workers count without a lock.
	settled  atomic.Int64
	marks    atomic.Int64
	produced atomic.Bool
}

// transactionalID returns the producer's transactional ID: the one
// ExactlyOnce gave, or "<group>-<topic>-<host name>" (two listeners of one
// group on one host differ by their topic).
func (c *consumer) transactionalID() (string, error) {
	if c.cfg.txnID != "" {
		return c.cfg.txnID, nil
	}
	host, err := os.Hostname()
	if err != nil || host == "" {
		return "", fmt.Errorf("listener: ExactlyOnce: no transactional ID given and no host name (%v): give one, unique to this instance and stable across its restarts", err)
	}
	return c.cfg.group + "-" + c.cfg.topic + "-" + host, nil
}

// doom makes the transaction in progress abort at its end: a publish of it
// failed, so it does not hold every outcome it should.
func (e *eos) doom(err error) {
	e.mu.Lock()
	if e.doomed == nil {
		e.doomed = err
	}
	e.mu.Unlock()
}

// due reports whether the transaction in progress should end now: its
// interval has passed or it holds maxTxnRecords, and it holds something.
func (e *eos) due(now time.Time) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.marks.Load() == 0 && !e.produced.Load() && e.doomed == nil {
		// Nothing to commit: the interval starts again from now.
		e.started = now
		return false
	}
	return e.settled.Load() >= maxTxnRecords || now.Sub(e.started) >= e.c.cfg.txnInterval
}

// nextDue returns when the transaction in progress should end if it holds
// something by then.
func (e *eos) nextDue() time.Time {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.started.Add(e.c.cfg.txnInterval)
}

// commit ends the transaction in progress and begins the next one: it
// stops publishes (the gate), waits for every publish of the transaction
// to be acknowledged, commits the offsets the partitions' ledgers have
// settled with them — or aborts if a publish failed, and then forgets every
// partition's records, which the client fetches again from the last commit
// — and begins the next transaction. Called by the poll goroutine (or, at
// shutdown, by run), never from a rebalance callback. An error is fatal:
// the producer is fenced or the client closed.
func (e *eos) commit(ctx context.Context, final bool) error {
	e.gate.Lock()
	ev, err := e.commitLocked(ctx, final)
	e.gate.Unlock()
	if ev.Kind != 0 {
		e.c.emit(ev) // with no lock held
	}
	return err
}

// commitLocked is commit under the gate's write lock; it returns the event
// to report.
func (e *eos) commitLocked(ctx context.Context, final bool) (Event, error) {
	c := e.c
	if err := c.client.Flush(ctx); err != nil {
		// Not acknowledged in time (a broker down, say): the transaction
		// stays open and the commit is tried again at the poll loop's next
		// turn, until the transaction timeout makes the broker abort it.
		c.log.Warn("kretry: exactly-once transaction's publishes not acknowledged in time; committing it again shortly",
			"transactional_id", e.id, "error", err)
		return Event{}, nil
	}
	offsets := c.settledOffsets()
	e.mu.Lock()
	doomed := e.doomed
	e.mu.Unlock()
	try := kgo.TryCommit
	if doomed != nil {
		try = kgo.TryAbort
	}
	ectx := kgo.PreTxnCommitFnContext(ctx, func(req *kmsg.TxnOffsetCommitRequest) error {
		keepSettled(req, offsets)
		return nil
	})
	settled := int(e.settled.Load())
	start := time.Now()
	committed, err := e.sess.End(ectx, try)
	if err != nil {
		if errors.Is(err, kerr.ProducerFenced) || errors.Is(err, kerr.InvalidProducerEpoch) || errors.Is(err, kerr.TransactionalIDAuthorizationFailed) {
			return Event{}, fmt.Errorf("listener: exactly-once: transactional ID %q: %w: %w", e.id, ErrFenced, err)
		}
		return Event{}, fmt.Errorf("listener: exactly-once: ending the transaction of %q: %w", e.id, err)
	}
	ev := Event{Kind: EventTransactionCommitted, Offset: -1, Latency: time.Since(start), Batch: settled}
	if !committed {
		why := errors.New("a partition was revoked or lost during it")
		if doomed != nil {
			why = fmt.Errorf("a publish failed: %w", doomed)
		}
		c.log.Warn("kretry: exactly-once transaction aborted; every partition is read again from its last commit", "transactional_id", e.id, "why", why.Error())
		c.forgetAll()
		ev.Kind, ev.Err = EventTransactionAborted, why
	}
	e.mu.Lock()
	e.doomed, e.started = nil, time.Now()
	e.mu.Unlock()
	e.settled.Store(0)
	e.marks.Store(0)
	e.produced.Store(false)
	if final {
		return ev, nil
	}
	if err := e.sess.Begin(); err != nil {
		return ev, fmt.Errorf("listener: exactly-once: beginning a transaction of %q: %w", e.id, err)
	}
	return ev, nil
}

// settledOffsets returns, for every owned partition whose ledger has
// settled records since its last commit, the offset to commit.
func (c *consumer) settledOffsets() map[string]map[int32]kgo.EpochOffset {
	out := map[string]map[int32]kgo.EpochOffset{}
	c.partsMu.Lock()
	defer c.partsMu.Unlock()
	for k, p := range c.parts {
		p.mu.Lock()
		p.commits.flush()
		rec := p.txnMark
		p.mu.Unlock()
		if rec == nil {
			continue
		}
		if out[k.topic] == nil {
			out[k.topic] = map[int32]kgo.EpochOffset{}
		}
		out[k.topic][k.partition] = kgo.EpochOffset{Epoch: rec.LeaderEpoch, Offset: rec.Offset + 1}
	}
	return out
}

// keepSettled rewrites a transaction's offset commit, which the client
// builds from every record polled, to the offsets the ledgers settled:
// partitions without one are left out.
func keepSettled(req *kmsg.TxnOffsetCommitRequest, offsets map[string]map[int32]kgo.EpochOffset) {
	topics := req.Topics[:0]
	for _, t := range req.Topics {
		ps := t.Partitions[:0]
		for _, p := range t.Partitions {
			if eo, ok := offsets[t.Topic][p.Partition]; ok {
				p.Offset, p.LeaderEpoch = eo.Offset, eo.Epoch
				ps = append(ps, p)
			}
		}
		if len(ps) > 0 {
			t.Partitions = ps
			topics = append(topics, t)
		}
	}
	req.Topics = topics
}

// forgetAll replaces every owned partition's part with a fresh one after
// an aborted transaction: the client fetches each partition again from its
// last commit, so the records held, the ledger and the pause state of the
// old parts are void. A handler still running for an old part finds it
// gone when it returns and publishes nothing (part.settling).
func (c *consumer) forgetAll() {
	tps := map[string][]int32{}
	c.partsMu.Lock()
	for k, old := range c.parts {
		old.stop()
		np := newPart(c, k.topic, k.partition, old.role)
		np.follow(old)
		c.parts[k] = np
		tps[k.topic] = append(tps[k.topic], k.partition)
	}
	c.partsMu.Unlock()
	c.pauser.resumeNow(c.client, tps)
}

// markTxn is an exactly-once part's commit mark: the ledger's newest
// settled record, committed with the transaction (settledOffsets). Called
// with p.mu held.
func (p *part) markTxn(rec *kgo.Record) {
	if p.txnMark == nil || rec.Offset > p.txnMark.Offset {
		p.txnMark = rec
		p.c.eos.marks.Add(1)
	}
}

// settling starts the publishing of an outcome: in exactly-once mode it
// takes the transaction gate's read lock and reports false (having
// released it) if the part is gone — an aborted transaction forgot it, or
// it was revoked — so that nothing is published for it. end ends it. In
// at-least-once mode both do nothing.
func (p *part) settling() bool {
	e := p.c.eos
	if e == nil {
		return true
	}
	e.gate.RLock()
	p.mu.Lock()
	gone := p.gone
	p.mu.Unlock()
	if gone {
		e.gate.RUnlock()
		return false
	}
	return true
}

// settled ends what settling started, noting whether something was
// published.
func (p *part) settled(published bool) {
	if e := p.c.eos; e != nil {
		if published {
			e.produced.Store(true)
		}
		e.gate.RUnlock()
	}
}

// outputs holds the records a handler produced with Produce during one
// delivery in exactly-once mode, until the delivery's outcome is known:
// published in the transaction if it succeeded, dropped if not. A part
// has one (part.slot), opened for each delivery and taken at its end.
type outputs struct {
	mu   sync.Mutex
	recs []*kgo.Record
	done bool // no delivery is open: Produce is refused
}

// open starts a delivery's outputs.
func (o *outputs) open() {
	o.mu.Lock()
	o.recs, o.done = o.recs[:0], false
	o.mu.Unlock()
}

type outputsKey struct{}
type consumerKey struct{}

// Produce publishes recs as the output of the handler call whose context
// is ctx (a Handler's, BatchHandler's or DLT handler's).
//
// In exactly-once mode (ExactlyOnce) the records are kept until the
// handler returns: if it succeeds (returns nil, or a BatchErrors for some
// of a batch's records), they are published in the listener's transaction,
// atomically with the record's offset and its retry-tier or DLT forwards
// — they become visible to read_committed consumers exactly once, or not
// at all; if it fails or panics they are dropped, and the retry produces
// them anew. Produce returns at once; a publish that fails later aborts the
// transaction, and the records are delivered again.
//
// In at-least-once mode Produce publishes at once and waits for Kafka's
// acknowledgement, returning the first error; a record may then be
// published again if its source record is redelivered.
//
// The records are partitioned by key, as franz-go's default partitioner
// does (their Partition field is ignored). Calling Produce with any other
// context, or after the handler returned, is an error.
func Produce(ctx context.Context, recs ...*kgo.Record) error {
	for _, r := range recs {
		// By key, as franz-go's default partitioner does: the listener's
		// client keeps a hop record's partition number, and a zero
		// Partition would otherwise send every output to partition 0.
		r.Partition = -1
	}
	if o, ok := ctx.Value(outputsKey{}).(*outputs); ok {
		o.mu.Lock()
		defer o.mu.Unlock()
		if o.done {
			return errors.New("listener.Produce: the handler call this context belongs to has returned; produce from the handler, before it returns")
		}
		o.recs = append(o.recs, recs...)
		return nil
	}
	if c, ok := ctx.Value(consumerKey{}).(*consumer); ok {
		return c.client.ProduceSync(ctx, recs...).FirstErr()
	}
	return errors.New("listener.Produce: ctx is not the context of a handler call; pass the context the listener gave the handler")
}

// take ends the delivery's outputs and returns them; they stay valid
// until the part's next delivery opens the slot.
func (o *outputs) take() []*kgo.Record {
	if o == nil {
		return nil
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	o.done = true
	return o.recs
}

// publishOutputs publishes a successful delivery's outputs recs in the
// transaction (under the gate: see part.settling). It reports whether
// there were any.
func (c *consumer) publishOutputs(recs []*kgo.Record) bool {
	for _, r := range recs {
		c.client.Produce(c.produceCtx, r, func(r *kgo.Record, err error) {
			if err != nil {
				c.eos.doom(fmt.Errorf("publishing a handler's output to %s: %w", r.Topic, err))
			}
		})
	}
	return len(recs) > 0
}
