package listener

import (
	"context"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/kretry/kretry/strategy"
)

func (c *consumer) assigned(_ context.Context, cl *kgo.Client, assigned map[string][]int32) {
	var load []*lane
	c.partsMu.Lock()
	for topic, ps := range assigned {
		role, _ := c.plan.Lookup(topic)
		for _, pn := range ps {
			k := topicPartition{topic, pn}
			if old := c.parts[k]; old != nil {
				old.stop() // not expected: franz-go revokes before it reassigns
				c.removed[k] = old
			}
			np := newPart(c, topic, pn, role)
			if old := c.removed[k]; old != nil {
				np.follow(old)
				delete(c.removed, k)
			}
			c.parts[k] = np
			if c.keys != nil && role != strategy.RoleDLT {
				l, made := c.keys.lane(pn, true)
				if made {
					load = append(load, l)
				}
				np.lane = l
				l.parts = append(l.parts, np)
			}
		}
	}
	c.partsMu.Unlock()
	if len(load) > 0 {
		go c.loadLanes(load)
	}
	for topic, ps := range assigned {
		for _, pn := range ps {
			c.emit(Event{Kind: EventAssigned, Topic: topic, Partition: pn, Offset: -1})
		}
	}
	// franz-go keeps pause state across rebalances; a newly assigned
	// partition starts unpaused, whatever happened to it before.
	c.pauser.resumeNow(cl, assigned)
}

func (c *consumer) revoked(ctx context.Context, cl *kgo.Client, revoked map[string][]int32) {
	c.release(ctx, cl, revoked, true)
}

func (c *consumer) lost(ctx context.Context, cl *kgo.Client, lost map[string][]int32) {
	c.release(ctx, cl, lost, false)
}

// release forgets partitions that are no longer ours. When they were
// revoked (not lost) it first waits, up to RevokeTimeout, for their
// handler calls and publishes, then commits what is done.
func (c *consumer) release(ctx context.Context, cl *kgo.Client, tps map[string][]int32, commit bool) {
	var ps []*part
	c.partsMu.Lock()
	for topic, pns := range tps {
		for _, pn := range pns {
			k := topicPartition{topic, pn}
			if p := c.parts[k]; p != nil {
				ps = append(ps, p)
				delete(c.parts, k)
				c.removed[k] = p
			}
		}
	}
	c.partsMu.Unlock()
	for _, p := range ps {
		p.stop()
		if p.lane != nil {
			// Its keys are read from the tiers again by the lane's next
			// owner, this member included.
			c.keys.drop(p.partition)
		}
		c.emit(Event{Kind: EventRevoked, Topic: p.topic, Partition: p.partition, Offset: -1})
	}
	// When the listener is stopping, Run has already waited for handlers
	// and flushed publishes: what is unfinished now stays unfinished.
	// Exactly once, nothing is waited for either: the revoke aborts the
	// transaction in progress, and a handler of a revoked part publishes
	// nothing when it returns (part.settling). (Waiting here would also
	// hold the transact session's lock, which the commit needs, while a
	// handler waits for the commit's gate.)
	if commit && !c.stopping.Load() && c.eos == nil {
		deadline := time.Now().Add(c.cfg.revokeTimeout)
		for _, p := range ps {
			if !p.waitIdle(deadline, true) {
				c.log.Warn("kretry: revoked partition still busy at the revoke timeout; its unfinished records will be redelivered to the new owner",
					"topic", p.topic, "partition", p.partition)
			}
		}
	}
	if commit && c.eos != nil {
		// Exactly once, offsets are committed only with a transaction,
		// and a revoke aborts the one in progress (the session sees to
		// it): the new owner reads these partitions from their last
		// transaction's commit.
		commit = false
	}
	if commit {
		for _, p := range ps {
			p.markDone()
		}
		deadline := time.Now().Add(c.cfg.revokeTimeout)
		if c.stopping.Load() {
			deadline = time.Unix(0, c.stopBy.Load())
		}
		cctx, cancel := context.WithDeadline(ctx, deadline)
		if err := cl.CommitMarkedOffsets(cctx); err != nil {
			c.log.Warn("kretry: commit on revoke failed; records after the last commit will be redelivered", "error", err)
		}
		cancel()
	}
	c.pauser.resumeNow(cl, tps)
}
