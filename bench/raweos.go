package main

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/kretry/kretry/listener"
	"github.com/kretry/kretry/retry"
)

// rawEOSSystem is the exactly-once consume → produce loop a careful user
// writes with franz-go alone, as its transactions documentation and
// examples show: a kgo.GroupTransactSession (read_committed), and in one
// goroutine per session
//
//	poll → Begin → handle each record, producing (asynchronously) its
//	forward or output → End(TryCommit): flush, commit the polled offsets
//	in the transaction, end it
//
// franz-go forbids polling or producing while a transaction ends, so the
// loop waits for each End; there is no pipelining to be had. Correct by
// construction: End commits the offsets of every record polled, and every
// record polled has been handled and its publishes acknowledged (End
// flushes) before it; a failed publish aborts the transaction and the run.
// An abort the session makes itself (a rebalance during the transaction,
// an offset commit the broker refuses) rewinds it to its last commit; the
// loop handles those records again without counting them twice (see
// loop), and the note counts the aborts. Every variant polls with
// PollFetches and kretry's FetchMaxWait.
type rawEOSSystem struct {
	name string
	v    rawEOSVariant
	// variant marks the screening variants that "raw-eos-variants" runs.
	variant bool
}

func (s rawEOSSystem) Name() string { return s.name }

// rawEOSVariant is one way of writing the loop.
type rawEOSVariant struct {
	// interval: one transaction spans the polls of this long (a poll is cut
	// at the transaction's end); 0: one transaction per poll.
	interval time.Duration
	// split consumes S2's retry topic with a session of its own (its own
	// group and transactional ID), in a loop of its own, as raw's
	// at-least-once pipeline does (raw-fetches-3c-marks); S1 consumes one
	// topic either way.
	split bool
	// headers writes kretry's headers on every forward (retry.Next) and
	// reads them back (retry.Decode) before a retry is handled, as
	// raw-headers does: what kretry's wire format costs in this loop.
	headers bool
	// out publishes one output record per success, in the transaction, as
	// kretry-eos-out does with listener.Produce.
	out bool
}

// rawEOSBest is the variant run as "raw-eos" (and, with headers or out,
// "raw-eos-headers" and "raw-eos-out"): one session, one transaction per
// 100 ms. The four variants were within 10% of each other in summed time
// on kfake and on Kafka, in S1 and S2, none leading everywhere
// (docs/benchmarks.md, "Exactly once (S1, S2)"); of those, this one ends
// as many transactions as kretry-eos does, in the same layout (one client
// for both topics), and never ends two in a row so fast that the broker
// refuses the second's offset commit (CONCURRENT_TRANSACTIONS), as one per
// poll did at the end of runs on Kafka.
var rawEOSBest = rawEOSVariant{interval: 100 * time.Millisecond}

// rawEOSSystems returns raw-eos, raw-eos-headers, raw-eos-out and the
// screening variants, named "raw-eos-<poll|interval>-<sessions>s".
func rawEOSSystems() []System {
	out := []System{rawEOSSystem{name: "raw-eos", v: rawEOSBest}}
	h, o := rawEOSBest, rawEOSBest
	h.headers, o.out = true, true
	out = append(out, rawEOSSystem{name: "raw-eos-headers", v: h}, rawEOSSystem{name: "raw-eos-out", v: o})
	for _, interval := range []time.Duration{0, 100 * time.Millisecond} {
		for _, split := range []bool{false, true} {
			v := rawEOSVariant{interval: interval, split: split}
			out = append(out, rawEOSSystem{name: v.name(), v: v, variant: true})
		}
	}
	return out
}

func (v rawEOSVariant) name() string {
	txn, sessions := "poll", "1s"
	if v.interval > 0 {
		txn = v.interval.String()
	}
	if v.split {
		sessions = "2s"
	}
	return "raw-eos-" + txn + "-" + sessions
}

// note describes the variant in the table's configuration column.
func (v rawEOSVariant) note(split bool) string {
	parts := []string{"GroupTransactSession, read_committed, PollFetches"}
	if v.interval > 0 {
		parts = append(parts, fmt.Sprintf("one transaction per %v of polls", v.interval))
	} else {
		parts = append(parts, "one transaction per poll")
	}
	if split {
		parts = append(parts, "a session (group, transactional ID, loop) per consumed topic")
	}
	if v.headers {
		parts = append(parts, "kretry's headers written (retry.Next) and read back (retry.Decode)")
	}
	if v.out {
		parts = append(parts, "one output per success")
	}
	return strings.Join(parts, ", ")
}

// HappyPath consumes the topic in one session; each record is handled
// (and with out produces its output) in the transaction.
func (s rawEOSSystem) HappyPath(ctx context.Context, env *Env, in HappyPathInput) (Throughput, error) {
	if s.v.split && s.variant {
		one := s.v
		one.split = false
		return Throughput{}, fmt.Errorf("%w: S1 consumes one topic; same as %s", ErrUnsupported, one.name())
	}
	var out string
	if s.v.out {
		o, drop, err := eosOutputTopic(ctx, env, in.Group, in.Partitions)
		if err != nil {
			return Throughput{}, err
		}
		defer drop()
		out = o
	}
	tr := NewTracker(in.Records, nil)
	defer tr.Close()
	handle := func(r *kgo.Record) (*kgo.Record, bool, error) {
		tr.Begin(string(r.Key))
		if s.v.out {
			return &kgo.Record{Topic: out, Key: r.Key, Value: r.Value}, true, nil
		}
		return nil, true, nil
	}
	aborts, err := s.v.loop(ctx, env, in.Group, []string{in.Topic}, tr, handle)
	if err = errors.Join(err, countedOnce(tr)); err != nil {
		return Throughput{}, err
	}
	return tr.Throughput(s.v.note(false) + abortNote(aborts)), nil
}

// RetryHop: main-topic records fail and are forwarded to the retry topic
// in the transaction; retry-topic records, read once their transaction
// committed, succeed (with out, producing their output in the
// transaction that commits their offsets).
func (s rawEOSSystem) RetryHop(ctx context.Context, env *Env, in RetryHopInput) (Throughput, error) {
	retryTopic := in.Topic + "-raw-retry"
	if err := env.CreateTopic(ctx, retryTopic, in.Partitions, nil); err != nil {
		return Throughput{}, err
	}
	var out string
	if s.v.out {
		o, _, err := eosOutputTopic(ctx, env, in.Topic, in.Partitions)
		if err != nil {
			return Throughput{}, err
		}
		out = o
	}
	tr := NewTracker(in.Records, nil)
	defer tr.Close()
	handle := func(group string) func(r *kgo.Record) (*kgo.Record, bool, error) {
		return func(r *kgo.Record) (*kgo.Record, bool, error) {
			tr.Begin(string(r.Key))
			if r.Topic != retryTopic { // a first delivery: it fails and is forwarded
				if s.v.headers {
					return rawVariant{}.stamped(r, retryTopic, group, false), false, nil
				}
				return &kgo.Record{Topic: retryTopic, Key: r.Key, Value: r.Value, Headers: r.Headers}, false, nil
			}
			if s.v.headers {
				// A retry: read its state, and check it is due (it always
				// is: S2's tier has no delay).
				st, _, err := retry.Decode(r.Headers)
				if err == nil && time.Now().Before(st.Due) {
					err = fmt.Errorf("%s[%d]@%d is not due until %v", r.Topic, r.Partition, r.Offset, st.Due)
				}
				if err != nil {
					return nil, false, err
				}
			}
			if s.v.out {
				return &kgo.Record{Topic: out, Key: r.Key, Value: r.Value}, true, nil
			}
			return nil, true, nil
		}
	}
	if !s.v.split {
		aborts, err := s.v.loop(ctx, env, in.Group, []string{in.Topic, retryTopic}, tr, handle(in.Group))
		if err = errors.Join(err, countedOnce(tr)); err != nil {
			return Throughput{}, err
		}
		return tr.EndToEnd("forward to a retry topic, consumed by the same session; " + s.v.note(false) + abortNote(aborts)), nil
	}
	var (
		wg          sync.WaitGroup
		retryAborts int
		retryErr    error
	)
	wg.Go(func() {
		retryAborts, retryErr = s.v.loop(ctx, env, in.Group+"-retry", []string{retryTopic}, tr, handle(in.Group+"-retry"))
	})
	aborts, err := s.v.loop(ctx, env, in.Group, []string{in.Topic}, tr, handle(in.Group))
	wg.Wait()
	if err = errors.Join(err, retryErr, countedOnce(tr)); err != nil {
		return Throughput{}, err
	}
	return tr.EndToEnd("forward to a retry topic, consumed in a group of its own; " + s.v.note(true) + abortNote(aborts+retryAborts)), nil
}

// countedOnce checks, once the loops have returned, that every record's
// success was counted once: no more than the records given.
func countedOnce(tr *Tracker) error {
	if n := tr.Successes(); n != int(tr.want) {
		return fmt.Errorf("raw-eos: %d successes counted for %d records", n, tr.want)
	}
	return nil
}

func abortNote(aborts int) string {
	if aborts == 0 {
		return ""
	}
	return fmt.Sprintf("; %d transactions aborted by the session and redone", aborts)
}

// loop consumes topics in group with a transact session of its own (its
// transactional ID is "<group>-txn") until tr is done and every success
// is committed, and returns the number of transactions the session
// aborted. handle is called for every record, in order, and returns the
// record to publish for it in the transaction (nil: none) and whether the
// record is a success to count; an error from it, or a failed publish,
// aborts the transaction and ends the loop with that error.
//
// A success is counted (Tracker.SucceededIn) when it is handled, as
// kretry's handlers count theirs. When the session aborts a transaction
// (a rebalance, or a broker answering CONCURRENT_TRANSACTIONS to an offset
// commit that follows the previous transaction's end too closely), it
// rewinds every partition to its last commit and the transaction's records
// come again: that many successes of each partition are then not counted
// again (owed), so each record counts once.
func (v rawEOSVariant) loop(ctx context.Context, env *Env, group string, topics []string, tr *Tracker,
	handle func(*kgo.Record) (*kgo.Record, bool, error)) (aborts int, err error) {
	sess, err := kgo.NewGroupTransactSession(kgo.SeedBrokers(env.Brokers...), kgo.ConsumerGroup(group), kgo.ConsumeTopics(topics...),
		kgo.TransactionalID(group+"-txn"), kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchMaxWait(listener.DefaultFetchMaxWait))
	if err != nil {
		return 0, err
	}
	defer sess.Close()
	pctx, cancel := untilDone(ctx, tr)
	defer cancel()
	var (
		mu      sync.Mutex
		failure error // the first failed publish of the transaction in progress
		inTxn   bool
		ends    time.Time // when the transaction in progress is due to end (interval)
		// Successes come from one topic per loop (S1's input, S2's retry
		// topic): its partitions key them.
		handled = map[int32]int{} // successes handled in the transaction in progress, per partition
		owed    = map[int32]int{} // successes of aborted transactions to handle again without counting
		owing   int               // the sum of owed
	)
	promise := func(r *kgo.Record, err error) {
		if err != nil {
			mu.Lock()
			if failure == nil {
				failure = fmt.Errorf("raw-eos: publishing to %s: %w", r.Topic, err)
			}
			mu.Unlock()
		}
	}
	end := func(failed error) error {
		inTxn = false
		try := kgo.TryCommit
		if failed != nil {
			try = kgo.TryAbort
		}
		committed, err := sess.End(ctx, try)
		mu.Lock()
		if failed == nil {
			failed = failure
		}
		failure = nil
		mu.Unlock()
		switch {
		case err != nil:
			return fmt.Errorf("raw-eos: ending a transaction: %w", errors.Join(err, failed))
		case failed != nil:
			return failed // a publish failed: its transaction did not commit
		case !committed:
			aborts++
			for p, n := range handled {
				owed[p] += n
				owing += n
			}
		}
		clear(handled)
		return nil
	}
	for {
		done := false
		select {
		case <-tr.Done():
			done = true
		default:
		}
		if done && inTxn {
			if err := end(nil); err != nil {
				return aborts, err
			}
		}
		if done && owing == 0 {
			return aborts, nil
		}
		// Once tr is done, only an aborted transaction's records are
		// left to handle again: polls are no longer canceled.
		poll := pctx
		if done {
			poll = ctx
		}
		var fs kgo.Fetches
		if inTxn && v.interval > 0 {
			tctx, tcancel := context.WithDeadline(poll, ends)
			fs = sess.PollFetches(tctx)
			tcancel()
		} else {
			fs = sess.PollFetches(poll)
		}
		if ctx.Err() != nil {
			return aborts, fmt.Errorf("%w (%d of %d)", errTimeout, tr.Successes(), tr.want)
		}
		var fetchErr error
		fs.EachError(func(t string, p int32, err error) {
			if !errors.Is(err, context.Canceled) && !errors.Is(err, context.DeadlineExceeded) && fetchErr == nil {
				fetchErr = fmt.Errorf("raw-eos: consuming %s[%d]: %w", t, p, err)
			}
		})
		if fetchErr != nil {
			if inTxn {
				fetchErr = errors.Join(fetchErr, end(fetchErr))
			}
			return aborts, fetchErr
		}
		if !fs.Empty() {
			if !inTxn {
				if err := sess.Begin(); err != nil {
					return aborts, fmt.Errorf("raw-eos: beginning a transaction: %w", err)
				}
				inTxn, ends = true, time.Now().Add(v.interval)
			}
			var herr error
			fs.EachRecord(func(r *kgo.Record) {
				if herr != nil {
					return
				}
				o, ok, err := handle(r)
				if err != nil {
					herr = err
					return
				}
				if o != nil {
					sess.Produce(ctx, o, promise)
				}
				if ok {
					handled[r.Partition]++
					if owed[r.Partition] > 0 {
						owed[r.Partition]--
						owing--
					} else {
						tr.SucceededIn(r.Partition)
					}
				}
			})
			if herr != nil {
				return aborts, errors.Join(herr, end(herr))
			}
		}
		if inTxn && (v.interval == 0 || !time.Now().Before(ends)) {
			if err := end(nil); err != nil {
				return aborts, err
			}
		}
	}
}
