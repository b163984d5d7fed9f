package listener

import (
	"context"
	"errors"
	"fmt"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// commits is one partition's commit ledger: the records whose outcome is
// not final yet, in offset order, and the newest record whose outcome is.
// It is the only code that marks offsets for commit (mark), and it marks
// only the end of a prefix of final outcomes, so a commit never passes a
// record whose publish Kafka has not acknowledged. It has no lock of its
// own: its part's mu guards it, and every method is called with it held.
type commits struct {
	// markFn marks a record for commit: consumer.markCommit, the one
	// place the listener asks its client to (see mark).
	markFn func(*kgo.Record)

	// pending holds the records whose outcome is not final, from the
	// oldest, with the final outcomes that came after the first of them.
	pending []*entry
	// unacked counts the entries of pending whose publish is still in
	// progress (neither acknowledged nor abandoned).
	unacked int
	// blocked is set while too many publishes wait for acknowledgement
	// (MaxPending): the part takes no new record until half are done.
	blocked bool
	// lastDone is the newest record a running worker turn may mark but
	// has not marked yet: a turn marks once, at its end, to keep the
	// client's lock off the hot path. Shutdown and revoke mark it too, so
	// a handler that never returns does not keep the records finished
	// before it in the same turn from being committed.
	lastDone *kgo.Record
	// unmarked is the end of the newest prefix of final outcomes that
	// acknowledgements completed but ack has not marked: while more
	// publishes are pending, ack marks once every markEvery prefixes, to
	// keep the client's lock off the path of every acknowledgement. The
	// last pending acknowledgement marks, and so does flush.
	unmarked *kgo.Record
	skipped  int // prefixes completed since the last mark
}

// markEvery is how many completed prefixes ack leaves unmarked at most
// while publishes are still pending (see commits.unmarked).
const markEvery = 64

// entry is a record whose outcome is not yet acknowledged by Kafka.
type entry struct {
	rec       *kgo.Record
	done      bool
	abandoned bool // its publish was given up (shutdown, partition gone)
}

// track appends e, the entry of a record whose publish is about to
// start. It must be called before the publish is started, so the
// acknowledgement always finds it.
func (c *commits) track(e *entry) {
	c.pending = append(c.pending, e)
	c.unacked++
}

// abandon gives up on e's publish: its record stays uncommitted (the mark
// can never pass it) and is redelivered to the partition's next owner. It
// reports whether e was still in progress.
func (c *commits) abandon(e *entry) bool {
	if e.abandoned || e.done {
		return false
	}
	e.abandoned = true
	c.unacked--
	return true
}

// complete records a synchronous final outcome of rec (handled, dropped,
// skipped): rec becomes the turn's lastDone when nothing before it is
// pending, and waits behind the pending entries otherwise.
func (c *commits) complete(rec *kgo.Record) {
	if len(c.pending) == 0 {
		c.lastDone = rec
		return
	}
	c.pending = append(c.pending, &entry{rec: rec, done: true})
}

// ack records that e's publish was acknowledged and marks the end of the
// prefix of final outcomes it completes. It reports whether e was still in
// progress.
func (c *commits) ack(e *entry) bool {
	if e.done || e.abandoned {
		return false
	}
	e.done = true
	c.unacked--
	var last *kgo.Record
	i := 0
	for ; i < len(c.pending) && c.pending[i].done; i++ {
		last = c.pending[i].rec
	}
	if i > 0 {
		clear(c.pending[:i])
		c.pending = c.pending[i:]
		if len(c.pending) == 0 {
			c.pending = nil
		}
	}
	if last != nil {
		if len(c.pending) > 0 && c.skipped < markEvery-1 {
			c.unmarked = last
			c.skipped++
		} else {
			c.unmarked, c.skipped = nil, 0
			c.mark(last)
		}
	}
	return true
}

// full reports whether the part must stop taking records until some of
// its publishes are acknowledged (maxPending pending), and sets blocked if
// so.
func (c *commits) full(maxPending int) bool {
	if len(c.pending) >= maxPending {
		c.blocked = true
		return true
	}
	return false
}

// unblock clears blocked once the pending entries have fallen to half of
// maxPending, and reports whether it did.
func (c *commits) unblock(maxPending int) bool {
	if c.blocked && len(c.pending) <= maxPending/2 {
		c.blocked = false
		return true
	}
	return false
}

// flush marks what acknowledgements completed but ack left unmarked, and
// the turn's lastDone, if any. Marks only ever move forward, so marking
// again is harmless.
func (c *commits) flush() {
	if c.unmarked != nil {
		c.mark(c.unmarked)
		c.unmarked, c.skipped = nil, 0
	}
	if c.lastDone != nil {
		c.mark(c.lastDone)
		c.lastDone = nil
	}
}

// mark is the one place the listener marks an offset for commit.
func (c *commits) mark(rec *kgo.Record) { c.markFn(rec) }

// committed reports failed background commits; records after the last
// successful commit are redelivered if the partition moves or the process
// stops before a later commit succeeds.
func (c *consumer) committed(_ *kgo.Client, _ *kmsg.OffsetCommitRequest, resp *kmsg.OffsetCommitResponse, err error) {
	if err == nil && resp != nil {
	resp:
		for _, t := range resp.Topics {
			for _, p := range t.Partitions {
				if err = kerr.ErrorForCode(p.ErrorCode); err != nil {
					err = fmt.Errorf("%s[%d]: %w", t.Topic, p.Partition, err)
					break resp
				}
			}
		}
	}
	if err != nil && !errors.Is(err, context.Canceled) {
		c.log.Warn("kretry: commit failed; it is retried with the next commit, and uncommitted records are redelivered if the partition moves",
			"group", c.cfg.group, "error", err)
	}
}
