package dltops

import (
	"context"
	"fmt"
	"slices"
	"time"
)

// checkpoint settles the producer (every record sent so far acknowledged,
// or refused and skipped) and writes the state file with the next source
// offsets, the end offsets of every target topic (and of newTarget, if
// set), the sources sent ahead that are not yet passed, and a new
// hand-over lease. It writes nothing when a send has failed or a record is
// still unacknowledged: the previous checkpoint stays. A target topic that
// no longer exists is dropped from the state (nothing sent to it can be
// found, nor land); a newTarget that does not exist is an error wrapping a
// noSuchTopic, and nothing is written.
func (r *replayer) checkpoint(ctx context.Context, newTarget string) error {
	if err := r.settle(ctx); err != nil {
		return err
	}
	topics := make([]string, 0, len(r.st.Targets)+1)
	for t := range r.st.Targets {
		topics = append(topics, t)
	}
	if newTarget != "" {
		topics = append(topics, newTarget)
	}
	slices.Sort(topics)
	for len(topics) > 0 {
		ends, err := listOffsets(ctx, "end", topics, r.adm.ListEndOffsets)
		if err == nil {
			r.st.Targets = ends
			break
		}
		missing, only := missingTopics(err)
		switch {
		case !only && newTarget != "":
			return fmt.Errorf("cannot send to %s: %w", newTarget, err)
		case !only:
			return err
		case slices.Contains(missing, newTarget):
			return err
		}
		topics = slices.DeleteFunc(topics, func(t string) bool { return slices.Contains(missing, t) })
		for _, t := range missing {
			delete(r.st.Targets, t)
		}
	}
	r.st.SentAhead = r.st.SentAhead[:0]
	for src := range r.ahead {
		r.st.SentAhead = append(r.st.SentAhead, src)
	}
	slices.Sort(r.st.SentAhead)
	now := r.cfg.Clock.Now()
	r.st.Updated = now.UTC()
	last := AttemptEnd{HandOverBy: now.Add(r.lease), LastHandOver: r.lastHandOver, DeliveryBound: r.bound}
	if r.ending {
		// Settled and ending: nothing of this attempt can land later.
		last = AttemptEnd{HandOverBy: now, LastHandOver: r.lastHandOver, DeliveryBound: r.bound, Ended: true, Clean: true}
	}
	r.mu.Lock()
	r.st.Last = last
	err := r.st.save(r.path)
	r.mu.Unlock()
	if err != nil {
		return err
	}
	r.handOverBy = last.HandOverBy
	r.sinceCk, r.lastCkpt = 0, now
	r.res.Checkpoints++
	if h := r.cfg.hooks.afterCheckpoint; h != nil && !r.ending && h(newTarget) {
		return errCrash
	}
	return nil
}

// extendLease moves the hand-over lease of the state file on to now plus
// the lease, keeping everything else of the last checkpoint: no offset
// moves, so nothing needs to be settled first.
func (r *replayer) extendLease(now time.Time) error {
	return r.rewriteLast(func(last *AttemptEnd) {
		*last = AttemptEnd{HandOverBy: now.Add(r.lease), LastHandOver: r.lastHandOver, DeliveryBound: r.bound}
	}, now)
}

// writeExit records in the state file, keeping everything else of the
// last checkpoint, that the attempt ended with unacked records that may
// still land: a resume waits until LastHandOver plus the delivery bound
// and the replication margin. The producer must be closed first.
func (r *replayer) writeExit(unacked int64) error {
	now := r.cfg.Clock.Now()
	return r.rewriteLast(func(last *AttemptEnd) {
		by := r.handOverBy
		if now.Before(by) {
			by = now
		}
		*last = AttemptEnd{HandOverBy: by, LastHandOver: r.lastHandOver,
			DeliveryBound: r.bound, Ended: true, Unacked: unacked}
	}, now)
}

// rewriteLast rewrites the state file with its Last changed by set.
func (r *replayer) rewriteLast(set func(*AttemptEnd), now time.Time) error {
	st, err := LoadState(r.path)
	if err != nil {
		return err
	}
	if st == nil {
		// No checkpoint was written, so no record was handed over: the
		// first checkpoint comes before any.
		return nil
	}
	set(&st.Last)
	st.Updated = now.UTC()
	if err := st.save(r.path); err != nil {
		return err
	}
	r.handOverBy = st.Last.HandOverBy
	return nil
}
