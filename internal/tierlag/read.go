package tierlag

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/twmb/franz-go/pkg/kgo"
)

// cursor is the reading state of one partition.
type cursor struct {
	pl   *PartitionLag
	next int64 // the next offset to classify
	read int64 // records classified
	done bool
}

// reader classifies the waiting records of a report's partitions.
type reader struct {
	rep     *Report
	opts    Options
	cursors map[string]map[int32]*cursor
	pending int
	pause   func(topic string, partition int32)
}

// read classifies the waiting records of every partition of rep.
func read(ctx context.Context, rep *Report, opts Options) error {
	rd := &reader{rep: rep, opts: opts, cursors: map[string]map[int32]*cursor{}, pause: func(string, int32) {}}
	start := rd.init()
	if rd.pending == 0 {
		return nil
	}
	cl, err := kgo.NewClient(append(slices.Clone(opts.ReaderOpts),
		kgo.ConsumePartitions(start),
		// Transaction markers are kept so that a marker at the end of a
		// partition still shows that its end offset was reached.
		kgo.KeepControlRecords(),
		// Read as the listener reads: the copies of aborted transactions
		// (an exactly-once listener's) are nobody's to handle and are not
		// counted; records of a transaction still open are not visible
		// yet and end up Unread.
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		// Where the listener resumes when its offset was deleted.
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
	)...)
	if err != nil {
		return fmt.Errorf("tierlag: reader: %w", err)
	}
	defer cl.Close()
	rd.pause = func(topic string, p int32) { cl.PauseFetchPartitions(map[string][]int32{topic: {p}}) }

	clock := opts.Clock
	if clock == nil {
		clock = realClock{}
	}
	idle := opts.IdleTimeout
	if idle <= 0 {
		idle = DefaultIdleTimeout
	}
	deadline := clock.Now().Add(idle)
	for rd.pending > 0 {
		// The poll ends at the idle deadline, on clock.
		pctx, cancel := context.WithCancel(ctx)
		timer := clock.After(deadline.Sub(clock.Now()))
		stop := make(chan struct{})
		go func() {
			select {
			case <-timer:
				cancel()
			case <-stop:
			}
		}()
		fs := cl.PollFetches(pctx)
		close(stop)
		cancel()
		if err := ctx.Err(); err != nil {
			return err
		}
		if rd.apply(fs) {
			deadline = clock.Now().Add(idle)
		} else if !clock.Now().Before(deadline) {
			rd.finishAll(StopIdle)
		}
	}
	return nil
}

// init makes the cursors of the partitions to read and returns where
// reading starts.
func (rd *reader) init() map[string]map[int32]kgo.Offset {
	start := map[string]map[int32]kgo.Offset{}
	for i := range rd.rep.Topics {
		t := &rd.rep.Topics[i]
		for j := range t.Partitions {
			pl := &t.Partitions[j]
			if pl.Err != nil || pl.Waiting <= 0 {
				continue
			}
			if rd.opts.ReaderOpts == nil {
				pl.Unread, pl.Stopped = pl.Waiting, StopNoReader
				continue
			}
			if rd.cursors[pl.Topic] == nil {
				rd.cursors[pl.Topic] = map[int32]*cursor{}
				start[pl.Topic] = map[int32]kgo.Offset{}
			}
			rd.cursors[pl.Topic][pl.Partition] = &cursor{pl: pl, next: pl.From}
			start[pl.Topic][pl.Partition] = kgo.NewOffset().At(pl.From)
			rd.pending++
		}
	}
	return start
}

func (rd *reader) finish(c *cursor, why Stop) {
	c.done = true
	c.pl.Stopped = why
	c.pl.Unread = max(c.pl.End-c.next, 0)
	rd.pending--
	rd.pause(c.pl.Topic, c.pl.Partition)
}

func (rd *reader) finishAll(why Stop) {
	for _, ps := range rd.cursors {
		for _, c := range ps {
			if !c.done {
				rd.finish(c, why)
			}
		}
	}
}

// lose counts [c.next, to) of c, cut at its end, as lost, and moves c past
// it: the records were deleted, and the reader, like a listener, goes on
// from the new log start.
func (rd *reader) lose(c *cursor, to int64) bool {
	to = min(to, c.pl.End)
	if to <= c.next {
		return false
	}
	c.pl.Lost += to - c.next
	c.next = to
	if c.next >= c.pl.End {
		rd.finish(c, StopNone)
	}
	return true
}

// apply classifies the records of fs and reports whether any partition
// made progress. A data loss (kgo.ErrDataLoss, or a gap the log start of
// the fetch has passed) is counted in Lost, not an error; another fetch
// error stops its partition (StopError).
func (rd *reader) apply(fs kgo.Fetches) bool {
	progress := false
	fs.EachPartition(func(fp kgo.FetchTopicPartition) {
		c := rd.cursors[fp.Topic][fp.Partition]
		if c == nil || c.done {
			return
		}
		if fp.Err != nil {
			var loss *kgo.ErrDataLoss
			if errors.As(fp.Err, &loss) {
				progress = rd.lose(c, loss.ResetTo) || progress
				return
			}
			c.pl.Err = fp.Err
			rd.finish(c, StopError)
			return
		}
		for _, r := range fp.Records {
			if c.done || r.Offset < c.next {
				continue
			}
			progress = true
			if r.Offset > c.next && fp.LogStartOffset > c.next {
				if rd.lose(c, min(fp.LogStartOffset, r.Offset)); c.done {
					return
				}
			}
			if r.Offset >= c.pl.End { // the offsets before it hold no record
				c.next = c.pl.End
				rd.finish(c, StopNone)
				return
			}
			c.next = r.Offset + 1
			notDue := false
			if !r.Attrs.IsControl() {
				notDue = classify(&c.pl.Counts, r, rd.rep.Now)
				c.read++
			}
			switch {
			case c.next >= c.pl.End:
				rd.finish(c, StopNone)
			case rd.opts.MaxRead > 0 && c.read >= rd.opts.MaxRead:
				rd.finish(c, StopMaxRead)
			case rd.opts.StopAtNotDue && notDue:
				rd.finish(c, StopNotDue)
			}
		}
		if !c.done && len(fp.Records) == 0 && fp.LogStartOffset > c.next {
			progress = rd.lose(c, fp.LogStartOffset) || progress
		}
	})
	return progress
}
