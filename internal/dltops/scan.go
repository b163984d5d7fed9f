package dltops

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// DefaultIdleTimeout is the idle timeout of a read (ScanOptions,
// ReplayConfig, InspectConfig) when it is 0.
const DefaultIdleTimeout = 30 * time.Second

// stallAfter is how long a partition may go without progress before Scan
// lists its offsets again (at most half the idle timeout).
const stallAfter = 2 * time.Second

// Errors of Scan, wrapped with the partition and offsets; test with
// errors.Is.
var (
	// ErrClientGroup: the client options name a consumer group. A read
	// of a DLT or a target topic must never join a group nor commit.
	ErrClientGroup = errors.New("the client options name a consumer group (kgo.ConsumerGroup); reading must not join one")
	// ErrLost: offsets were deleted before they were read and
	// ScanOptions.Lost is nil.
	ErrLost = errors.New("offsets were deleted before they were read")
	// ErrStalled: a partition made no progress for the idle timeout,
	// though its offsets say that records remain.
	ErrStalled = errors.New("no progress")
)

// ScanOptions tune Scan. The zero value reads read_uncommitted, treats
// deleted offsets as an error and gives up after DefaultIdleTimeout
// without progress.
type ScanOptions struct {
	// ReadCommitted reads with isolation read_committed: the records of
	// aborted transactions are not passed to fn. Ranges should then end at
	// the last stable offset (ListRanges), or a transaction still open
	// makes the read stall. Default false: read_uncommitted.
	ReadCommitted bool
	// Lost, when set, is told of each range [from, to) of a partition's
	// offsets that were deleted (retention, DeleteRecords, a truncated or
	// recreated log) before Scan read them, and Scan goes on after it.
	// Ranges are reported in offset order within a partition, and only
	// within the partition's range. Default nil: a loss is an error
	// (ErrLost).
	Lost func(topic string, partition int32, from, to int64)
	// IdleTimeout is how long a partition may go without progress (a
	// record, or a loss found by listing its offsets again) before Scan
	// fails with ErrStalled naming it: the partition is offline, or its
	// last offsets hold no record (compacted). Default 0:
	// DefaultIdleTimeout.
	IdleTimeout time.Duration
}

// Scan reads the records of ranges with a direct consumer (no group, no
// commits) built from opts, and calls fn for each record in offset order
// within its partition, from one goroutine. It returns when every partition
// has reached the end of its range, when fn returns an error (which Scan
// returns), when ctx ends (ctx.Err()), or with ErrStalled when a partition
// makes no progress for the idle timeout. opts must not name a consumer
// group (ErrClientGroup).
//
// Offsets of the ranges that were deleted before they were read (a range
// that starts before the log start, retention or DeleteRecords moving the
// log start while reading, a truncated log) are reported to so.Lost, and
// reading goes on after them. Scan sees a loss in the log start offset of
// each fetch response, in kgo's ErrDataLoss, and, when a partition makes no
// progress for a while, by listing its start and end offsets again. Empty
// ranges are not read. Transaction markers count towards reaching the end
// but are not passed to fn.
func Scan(ctx context.Context, opts []kgo.Opt, ranges Ranges, so ScanOptions, fn func(*kgo.Record) error) error {
	lc, err := kgo.NewClient(opts...)
	if err != nil {
		return err
	}
	defer lc.Close()
	if g, _ := lc.OptValue(kgo.ConsumerGroup).(string); g != "" {
		return fmt.Errorf("%w: group %q", ErrClientGroup, g)
	}
	s := newScanner(kadm.NewClient(lc), ranges, so, fn)
	if s.pending == 0 {
		return nil
	}
	if err := s.trim(ctx); err != nil || s.pending == 0 {
		return err
	}
	offsets := map[string]map[int32]kgo.Offset{}
	for _, p := range s.parts {
		if p.done {
			continue
		}
		if offsets[p.topic] == nil {
			offsets[p.topic] = map[int32]kgo.Offset{}
		}
		offsets[p.topic][p.partition] = kgo.NewOffset().At(p.next)
	}
	isolation := kgo.ReadUncommitted()
	if so.ReadCommitted {
		isolation = kgo.ReadCommitted()
	}
	cl, err := kgo.NewClient(append(slices.Clip(opts),
		kgo.ConsumePartitions(offsets),
		kgo.FetchIsolationLevel(isolation),
		kgo.KeepControlRecords(),
		// An offset below the log start (retention deleted it) resumes at
		// the log start; the loss shows in the fetch's log start offset.
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
	)...)
	if err != nil {
		return err
	}
	defer cl.Close()
	s.pause = func(topic string, p int32) { cl.PauseFetchPartitions(map[string][]int32{topic: {p}}) }
	for s.pending > 0 {
		pctx, cancel := context.WithTimeout(ctx, s.stall)
		polled := time.Now()
		fs := cl.PollFetches(pctx)
		waited := time.Since(polled)
		cancel()
		if err := ctx.Err(); err != nil {
			return err
		}
		var ferr error
		fs.EachPartition(func(fp kgo.FetchTopicPartition) {
			if ferr == nil {
				ferr = s.partition(fp)
			}
		})
		if ferr != nil {
			return ferr
		}
		s.waited(waited)
		if err := s.check(ctx); err != nil {
			return err
		}
	}
	return nil
}

// scanner is the reading state of a Scan.
type scanner struct {
	so      ScanOptions
	fn      func(*kgo.Record) error
	adm     *kadm.Client
	parts   map[partKey]*part
	pending int
	idle    time.Duration
	stall   time.Duration
	pause   func(topic string, partition int32)
	listErr error // of the last listing that failed
}

type partKey struct {
	topic     string
	partition int32
}

// part is one partition being read: next is the next offset to read, end
// the end of its range. idle is the time spent polling since it last made
// progress: time spent in fn does not count, so that a slow caller (a rate
// limit) does not look like a stalled partition. relisted is idle when its
// offsets were last listed, start and last what they said (-1: not yet).
type part struct {
	partKey
	next, end   int64
	done        bool
	moved       bool // made progress in the last poll
	idle        time.Duration
	relisted    time.Duration
	start, last int64
}

func newScanner(adm *kadm.Client, ranges Ranges, so ScanOptions, fn func(*kgo.Record) error) *scanner {
	s := &scanner{so: so, fn: fn, adm: adm, parts: map[partKey]*part{}, idle: so.IdleTimeout,
		pause: func(string, int32) {}}
	if s.idle <= 0 {
		s.idle = DefaultIdleTimeout
	}
	s.stall = min(stallAfter, s.idle/2)
	for topic, ps := range ranges {
		for p, r := range ps {
			if r.End > r.Start {
				k := partKey{topic, p}
				s.parts[k] = &part{partKey: k, next: r.Start, end: r.End, start: -1, last: -1}
				s.pending++
			}
		}
	}
	return s
}

func (s *scanner) topics(parts func(*part) bool) []string {
	var out []string
	for _, p := range s.parts {
		if parts(p) && !slices.Contains(out, p.topic) {
			out = append(out, p.topic)
		}
	}
	slices.Sort(out)
	return out
}

// trim reports as lost the beginning of every range that lies before its
// partition's log start, before reading begins.
func (s *scanner) trim(ctx context.Context) error {
	starts, err := listOffsets(ctx, "start", s.topics(func(*part) bool { return true }), s.adm.ListStartOffsets)
	if err != nil {
		return err
	}
	for _, p := range s.parts {
		if start, ok := starts[p.topic][p.partition]; ok && start > p.next {
			if err := s.lose(p, p.next, start); err != nil {
				return err
			}
		}
	}
	return nil
}

// partition handles one partition of a fetch.
func (s *scanner) partition(fp kgo.FetchTopicPartition) error {
	p := s.parts[partKey{fp.Topic, fp.Partition}]
	if fp.Err != nil {
		var loss *kgo.ErrDataLoss
		switch {
		case p == nil || p.done:
			return nil // not ours, or finished; also the poll's own deadline
		case errors.As(fp.Err, &loss):
			// The client was reset to ResetTo: what lies between is gone.
			return s.lose(p, p.next, loss.ResetTo)
		}
		return fmt.Errorf("reading %s[%d] at offset %d: %w", fp.Topic, fp.Partition, p.next, fp.Err)
	}
	if p == nil || p.done {
		return nil
	}
	for _, r := range fp.Records {
		if r.Offset < p.next {
			continue // read before a reset
		}
		if r.Offset > p.next && fp.LogStartOffset > p.next {
			// A gap that the log start passed: deleted, not a
			// compaction or an aborted transaction's hole.
			if err := s.lose(p, p.next, min(fp.LogStartOffset, r.Offset)); err != nil || p.done {
				return err
			}
		}
		if r.Offset >= p.end {
			s.finish(p) // the offsets before it hold no record
			return nil
		}
		if !r.Attrs.IsControl() {
			if err := s.fn(r); err != nil {
				return err
			}
		}
		p.next = r.Offset + 1
		p.progress()
		if p.next >= p.end {
			s.finish(p)
			return nil
		}
	}
	if len(fp.Records) == 0 && fp.LogStartOffset > p.next {
		return s.lose(p, p.next, fp.LogStartOffset)
	}
	return nil
}

func (p *part) progress() { p.moved, p.idle, p.relisted = true, 0, 0 }

// waited adds d, the time the last poll took, to the idle time of every
// partition that made no progress in it.
func (s *scanner) waited(d time.Duration) {
	for _, p := range s.parts {
		if !p.moved && !p.done {
			p.idle += d
		}
		p.moved = false
	}
}

// lose reports [from, to) of p, cut to its range, as lost and moves p past
// it.
func (s *scanner) lose(p *part, from, to int64) error {
	from, to = max(from, p.next), min(to, p.end)
	if to <= from {
		return nil
	}
	if err := s.report(p, from, to); err != nil {
		return err
	}
	p.next = to
	p.progress()
	if p.next >= p.end {
		s.finish(p)
	}
	return nil
}

// report tells so.Lost of [from, to) of p, or returns ErrLost.
func (s *scanner) report(p *part, from, to int64) error {
	if to <= from {
		return nil
	}
	if s.so.Lost == nil {
		return fmt.Errorf("%w: %s[%d] offsets %d to %d", ErrLost, p.topic, p.partition, from, to-1)
	}
	s.so.Lost(p.topic, p.partition, from, to)
	return nil
}

func (s *scanner) finish(p *part) {
	if !p.done {
		p.done = true
		s.pending--
		s.pause(p.topic, p.partition)
	}
}

// check lists again the offsets of the partitions that have made no
// progress for a while, to find what was deleted under them, and fails
// with ErrStalled naming a partition that has made none for the idle
// timeout.
func (s *scanner) check(ctx context.Context) error {
	stalled := func(p *part) bool { return !p.done && p.idle-p.relisted >= s.stall }
	if topics := s.topics(stalled); len(topics) > 0 {
		if err := s.relist(ctx, topics, stalled); err != nil {
			return err
		}
	}
	var worst *part
	for _, p := range s.parts {
		if !p.done && p.idle >= s.idle && (worst == nil || p.idle > worst.idle) {
			worst = p
		}
	}
	if worst == nil {
		return nil
	}
	listed := "its offsets could not be listed"
	if worst.start >= 0 {
		listed = fmt.Sprintf("log start %d, end %d when last listed", worst.start, worst.last)
	}
	err := fmt.Errorf("%w: %s[%d] gave no record for %v at offset %d, before the end of the range read (%d; %s): "+
		"the partition may be offline, or its last offsets may hold no record (compacted)",
		ErrStalled, worst.topic, worst.partition, s.idle, worst.next, worst.end, listed)
	if s.listErr != nil {
		err = fmt.Errorf("%w; listing its offsets: %w", err, s.listErr)
	}
	return err
}

// relist lists the start and end offsets of topics and applies them to
// the stalled partitions: a log start past the next offset, or an end
// before the end of the range (a truncated or recreated log), is a loss.
// A listing that fails is kept for the idle error, not returned.
func (s *scanner) relist(ctx context.Context, topics []string, stalled func(*part) bool) error {
	endList, what := s.adm.ListEndOffsets, "end"
	if s.so.ReadCommitted {
		endList, what = s.adm.ListCommittedOffsets, "last stable"
	}
	starts, err := listOffsets(ctx, "start", topics, s.adm.ListStartOffsets)
	var ends map[string]map[int32]int64
	if err == nil {
		ends, err = listOffsets(ctx, what, topics, endList)
	}
	if err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		s.listErr = err
		for _, p := range s.parts {
			if stalled(p) {
				p.relisted = p.idle
			}
		}
		return nil
	}
	s.listErr = nil
	for _, p := range s.parts {
		if !stalled(p) {
			continue
		}
		p.relisted = p.idle
		start, ok1 := starts[p.topic][p.partition]
		end, ok2 := ends[p.topic][p.partition]
		if !ok1 || !ok2 {
			continue
		}
		p.start, p.last = start, end
		if end < p.end {
			// Truncated or recreated: offsets [end, p.end) are gone; the
			// range ends at end.
			from := max(end, p.next)
			if err := s.report(p, from, p.end); err != nil {
				return err
			}
			p.end = from
			p.progress()
			if p.next >= p.end {
				s.finish(p)
				continue
			}
		}
		if err := s.lose(p, p.next, start); err != nil {
			return err
		}
	}
	return nil
}

// newAdmin returns an admin client made from opts and its close function.
func newAdmin(opts []kgo.Opt) (*kadm.Client, func(), error) {
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		return nil, nil, err
	}
	return kadm.NewClient(cl), cl.Close, nil
}
