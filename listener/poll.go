package listener

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
)

// poll is the only goroutine that polls. It hands records to their
// partitions and returns on ctx cancel (nil) or a fatal error.
func (c *consumer) poll(ctx context.Context) error {
	for {
		pctx, cancel := ctx, context.CancelFunc(nil)
		if c.eos != nil {
			// Exactly once, a poll returns when the transaction is due.
			pctx, cancel = context.WithDeadline(ctx, c.eos.nextDue())
		}
		fetches := c.client.PollRecords(pctx, c.cfg.maxPollRecords)
		if cancel != nil {
			cancel()
		}
		if fetches.IsClientClosed() || ctx.Err() != nil {
			c.client.AllowRebalance()
			return nil
		}
		var fatal error
		fetches.EachError(func(t string, p int32, err error) {
			if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
				return
			}
			if isFatal(err) {
				if t == "" { // a group error, not a partition's
					fatal = fmt.Errorf("listener: consumer group %q: %w", c.cfg.group, err)
				} else {
					fatal = fmt.Errorf("listener: consuming %s[%d]: %w", t, p, err)
				}
				return
			}
			if t == "" {
				c.log.Warn("kretry: consumer group error; the client retries", "group", c.cfg.group, "error", err)
				return
			}
			c.log.Warn("kretry: fetch error; the client retries", "topic", t, "partition", p, "error", err)
		})
		if fatal != nil {
			c.client.AllowRebalance()
			return fatal
		}
		c.partsMu.Lock()
		for _, f := range fetches {
			// A poll returns one Fetch per broker, and within it a
			// partition's records only once the client has given out
			// all it buffered of the partitions before it: a partition
			// followed by another has nothing left in the client.
			var prev *part
			for _, t := range f.Topics {
				for _, fp := range t.Partitions {
					if len(fp.Records) == 0 {
						continue
					}
					if prev != nil {
						prev.exhausted()
					}
					prev = c.parts[topicPartition{t.Topic, fp.Partition}]
					if prev != nil {
						prev.add(fp.Records)
					}
				}
			}
		}
		c.partsMu.Unlock()
		// Pauses asked for since the last poll (by add, or by workers
		// whose head must wait) reach the client before it is polled
		// again, so a paused partition's records stop coming at once.
		c.pauser.apply()
		if err := c.commitIfDue(ctx); err != nil {
			c.client.AllowRebalance()
			return err
		}
		c.client.AllowRebalance()
		if ok, err := c.waitForRoom(ctx); !ok {
			return err
		}
	}
}

// hogDelay is how long the poll loop waits at its limit before it pauses
// the partitions that hold the most records.
const hogDelay = 50 * time.Millisecond

// waitForRoom blocks the poll loop while the records held for unpaused
// partitions are at the limit (see room). When that lasts, the partitions
// holding at least a poll's worth are paused so the rest can be polled
// again. It returns false when ctx is canceled. Rebalances are allowed
// meanwhile.
func (c *consumer) waitForRoom(ctx context.Context) (bool, error) {
	if c.room() {
		return true, nil
	}
	t := time.NewTimer(hogDelay)
	defer t.Stop()
	var txn <-chan time.Time // exactly once: the transaction's end
	if c.eos != nil {
		tt := time.NewTimer(time.Until(c.eos.nextDue()))
		defer tt.Stop()
		txn = tt.C
	}
	for !c.room() {
		select {
		case <-c.drained:
		case <-t.C:
			c.partsMu.Lock()
			for _, p := range c.parts {
				p.pauseIfHog(c.cfg.maxPollRecords)
			}
			c.partsMu.Unlock()
			t.Reset(hogDelay)
		case <-txn:
			if err := c.commitIfDue(ctx); err != nil {
				return false, err
			}
			txn = time.After(time.Until(c.eos.nextDue()))
		case <-ctx.Done():
			return false, nil
		}
	}
	return true, nil
}

// commitIfDue commits the exactly-once transaction in progress when it is
// due (eos.due); at least once it does nothing. The commit is bounded by
// its own deadline, not by ctx: a shutdown lets it finish.
func (c *consumer) commitIfDue(ctx context.Context) error {
	if c.eos == nil || !c.eos.due(time.Now()) {
		return nil
	}
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), c.eos.timeout/2)
	defer cancel()
	return c.eos.commit(cctx, false)
}

// room reports whether the poll loop may poll again: while fewer than
// maxHeld records are held, and past that while it is taking the rest of
// the fetch the client was handing out when the limit was reached.
//
// The client fetches a broker's partitions again only once it has handed
// out everything of the previous fetch from that broker. Stopping in the
// middle of a fetch would keep the next one from starting until the
// workers had worked the held records down, and then they would wait for
// it: fetching and handling would take turns instead of overlapping.
// Those records are in memory already; taken, they wait in their
// partitions' queues instead of in the client. So at the limit the loop
// goes on polling what the client buffers, up to as many records as it
// buffered then (extra), and then waits until the held records are below
// the limit again. At most maxHeld records plus what the client buffered
// at that moment (a fetch from each broker, at most) are held, and the
// client buffers at most one more fetch from each broker.
func (c *consumer) room() bool {
	held := c.held.Load()
	if held < int64(c.cfg.maxHeld) {
		c.extra = 0
		return true
	}
	if c.extra == 0 {
		c.extra = max(c.client.BufferedFetchRecords(), 1) // 1: the extension is spent
	}
	return held < int64(c.cfg.maxHeld)+c.extra && c.client.BufferedFetchRecords() > 0
}

// signalDrained wakes the poll loop if it waits for room.
func (c *consumer) signalDrained() {
	select {
	case c.drained <- struct{}{}:
	default:
	}
}

// isFatal reports errors that retrying cannot fix: bad credentials and
// missing authorizations.
func isFatal(err error) bool {
	for _, fatal := range []error{
		kerr.SaslAuthenticationFailed, kerr.TopicAuthorizationFailed,
		kerr.GroupAuthorizationFailed, kerr.ClusterAuthorizationFailed,
		kerr.UnsupportedSaslMechanism, kerr.IllegalSaslState,
	} {
		if errors.Is(err, fatal) {
			return true
		}
	}
	return false
}
