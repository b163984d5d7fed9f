package listener

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/kretry/kretry/retry"
	"github.com/kretry/kretry/strategy"
)

// loadLanes rebuilds the keys in retry of newly assigned lanes from the
// tiers — what they hold from the group's committed offsets to their end,
// which is what their parts will be handed — then lets their parts run.
// It runs on its own goroutine: the rebalance callback that made the
// lanes returns at once. A failed rebuild is tried again after a backoff
// until it succeeds, the lanes are revoked, or the listener stops.
func (c *consumer) loadLanes(lanes []*lane) {
	for try := 0; ; try++ {
		lanes = slices.DeleteFunc(lanes, func(l *lane) bool {
			l.mu.Lock()
			defer l.mu.Unlock()
			return l.gone
		})
		if len(lanes) == 0 || c.stopping.Load() {
			return
		}
		ctx, cancel := context.WithCancel(c.produceCtx)
		for _, l := range lanes {
			l.mu.Lock()
			l.cancel = cancel
			l.mu.Unlock()
		}
		start := time.Now()
		err := c.scanLanes(ctx, lanes)
		cancel()
		if err == nil {
			keys, recs := 0, 0
			for _, l := range lanes {
				k, r := l.size()
				keys, recs = keys+k, recs+r
			}
			c.log.Debug("kretry: key order: lanes loaded from the retry tiers", "lanes", len(lanes),
				"keys", keys, "records", recs, "took", time.Since(start))
			for _, l := range lanes {
				l.applyMarkers()
				c.laneReady(l)
			}
			return
		}
		if ctx.Err() != nil && c.produceCtx.Err() != nil {
			return
		}
		d := c.cfg.forwardBackoff.Schedule(min(try+1, 16))[min(try, 15)]
		c.log.Warn("kretry: key order: reading the keys in retry from the tiers failed; the lanes' partitions wait until it succeeds",
			"error", err, "retry_in", d)
		t := time.NewTimer(d)
		select {
		case <-t.C:
		case <-c.produceCtx.Done():
			t.Stop()
			return
		}
	}
}

// laneReady lets a loaded lane's parts run.
func (c *consumer) laneReady(l *lane) {
	l.mu.Lock()
	gone := l.gone
	l.mu.Unlock()
	if gone {
		return
	}
	l.ready.Store(true)
	c.partsMu.Lock()
	parts := slices.Clone(l.parts)
	c.partsMu.Unlock()
	for _, p := range parts {
		p.mu.Lock()
		p.scheduleLocked()
		p.mu.Unlock()
	}
}

// scanLanes reads the lanes' tier partitions from the group's committed
// offsets (their log start without one) to their end offsets, and records
// every record of the group with a key in its lane.
func (c *consumer) scanLanes(ctx context.Context, lanes []*lane) error {
	ko := c.keys
	ko.scanMu.Lock()
	defer ko.scanMu.Unlock()
	for _, l := range lanes {
		l.mu.Lock()
		ko.held.Add(-int64(len(l.keys)))
		l.keys, l.markers = map[uint64]*keyRecs{}, nil // from a failed attempt
		l.mu.Unlock()
	}
	if ko.scanCl == nil {
		cl, err := kgo.NewClient(append(c.connOpts(),
			kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
			kgo.KeepControlRecords(),
			kgo.FetchMaxWait(c.cfg.fetchMaxWait))...)
		if err != nil {
			return err
		}
		ko.scanCl = cl
	}
	cl := ko.scanCl
	adm := kadm.NewClient(cl)
	tiers := c.tierTopics()
	committed, err := adm.FetchOffsets(ctx, c.cfg.group)
	if err == nil {
		err = committed.Error()
	}
	if err != nil {
		return fmt.Errorf("fetching the group's committed offsets: %w", err)
	}
	ends, err := adm.ListEndOffsets(ctx, tiers...)
	if err == nil {
		err = ends.Error()
	}
	if err != nil {
		return fmt.Errorf("listing the tiers' end offsets: %w", err)
	}
	byN := map[int32]*lane{}
	for _, l := range lanes {
		byN[l.n] = l
	}
	type span struct{ next, end int64 }
	want := map[string]map[int32]*span{}
	start := map[string]map[int32]kgo.Offset{}
	ends.Each(func(o kadm.ListedOffset) {
		if byN[o.Partition] == nil || o.Offset <= 0 {
			return
		}
		from := kgo.NewOffset().AtStart()
		next := int64(0)
		if r, ok := committed.Lookup(o.Topic, o.Partition); ok && r.At >= 0 {
			if r.At >= o.Offset {
				return
			}
			from, next = kgo.NewOffset().At(r.At), r.At
		}
		if want[o.Topic] == nil {
			want[o.Topic], start[o.Topic] = map[int32]*span{}, map[int32]kgo.Offset{}
		}
		want[o.Topic][o.Partition] = &span{next: next, end: o.Offset}
		start[o.Topic][o.Partition] = from
	})
	if len(want) == 0 {
		return nil
	}
	cl.AddConsumePartitions(start)
	defer func() {
		rm := map[string][]int32{}
		for t, ps := range want {
			for p := range ps {
				rm[t] = append(rm[t], p)
			}
		}
		cl.RemoveConsumePartitions(rm)
	}()
	left := 0
	for _, ps := range want {
		left += len(ps)
	}
	for left > 0 {
		fs := cl.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			return err
		}
		var ferr error
		fs.EachError(func(t string, p int32, err error) {
			var loss *kgo.ErrDataLoss
			if !errors.As(err, &loss) && ferr == nil { // a reset past deleted records is no failure
				ferr = fmt.Errorf("reading %s[%d]: %w", t, p, err)
			}
		})
		if ferr != nil {
			return ferr
		}
		fs.EachPartition(func(fp kgo.FetchTopicPartition) {
			s := want[fp.Topic][fp.Partition]
			if s == nil || s.next >= s.end {
				return
			}
			for _, r := range fp.Records {
				if r.Offset < s.next || r.Offset >= s.end {
					continue
				}
				if !r.Attrs.IsControl() {
					c.scanned(byN[r.Partition], r)
				}
				s.next = r.Offset + 1
			}
			// The offsets before the high watermark that hold no record
			// (compacted away) never come.
			if fp.Err == nil && fp.HighWatermark > 0 && s.next < s.end && len(fp.Records) == 0 && fp.HighWatermark <= s.next {
				s.next = s.end
			}
			if s.next >= s.end {
				left--
			}
		})
	}
	return nil
}

// scanned records r, a tier record read by a rebuild, in its lane: unless
// it is another group's, carries no key, or has headers its tier part
// will dead-letter as corrupt.
func (c *consumer) scanned(l *lane, r *kgo.Record) {
	if r.Key == nil {
		return
	}
	if _, foreign := retry.ForeignGroup(r.Headers, c.cfg.group); foreign {
		return
	}
	st, ok, err := c.decode(r.Headers, false)
	if !ok || err != nil {
		return
	}
	h := c.keys.hash(r.Key)
	if isMarker(&st) {
		l.mu.Lock()
		l.markers = append(l.markers, marker{h: h, off: st.OriginalOffset})
		l.mu.Unlock()
		return
	}
	follows := int64(-1)
	if st.Follower {
		follows = st.Follows
	}
	c.keys.add(l, h, keyRec{off: st.OriginalOffset, follows: follows}, r.Topic, st.Due)
}

// tierTopics lists the plan's retry tiers.
func (l *Listener) tierTopics() []string {
	var out []string
	for _, t := range l.consumedTopics() {
		if role, _ := l.plan.Lookup(t); role == strategy.RoleTier {
			out = append(out, t)
		}
	}
	return out
}

// close closes the rebuilds' client.
func (ko *keyOrder) close() {
	ko.scanMu.Lock()
	defer ko.scanMu.Unlock()
	if ko.scanCl != nil {
		ko.scanCl.Close()
		ko.scanCl = nil
	}
}
