package tierlag

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/kretry/kretry/retry"
)

// DefaultIdleTimeout is the Options.IdleTimeout used when it is 0.
const DefaultIdleTimeout = 30 * time.Second

// ErrReaderGroup is returned by Measure when Options.ReaderOpts name a
// consumer group: the reader must never join the group it measures, nor
// commit for it.
var ErrReaderGroup = errors.New("tierlag: Options.ReaderOpts must not name a consumer group (kgo.ConsumerGroup)")

// Options tune Measure. The zero value lists offsets only and reads no
// record: every waiting record counts as Unread.
type Options struct {
	// Now is the time due times are compared with. Default: time.Now()
	// when Measure starts.
	Now time.Time

	// ReaderOpts are the connection options (seed brokers, TLS, SASL,
	// timeouts) of the plain consumer that reads the waiting records. They
	// must not name a consumer group or topics to consume; Measure adds the
	// partitions and offsets itself. Default nil: no record is read, so
	// NotDue, Overdue and Corrupt stay 0 and every waiting record is Unread.
	ReaderOpts []kgo.Opt

	// MaxRead is the most records read per partition; the rest of the
	// partition counts as Unread (Stopped is StopMaxRead). Default 0: no
	// bound, every waiting record is read.
	MaxRead int64

	// StopAtNotDue stops reading a partition at its first record that is
	// not yet due; the records behind it count as Unread (Stopped is
	// StopNotDue). Within a tier, records are written in order of their
	// due times except for jitter and delays a handler asked for, so the
	// records behind a not-due record are very likely not due either: this
	// trades exactness for speed when many records wait. It also matches
	// what the listener does, which delivers a partition in order and
	// waits for its first record that is not due. Default false: read to
	// the end.
	StopAtNotDue bool

	// IdleTimeout is how long reading may go without reaching any new
	// record of a partition still being read before those partitions are
	// given up (Stopped is StopIdle, their rest Unread). It guards against
	// offsets that hold no record (a compacted tail, records deleted while
	// reading). It is measured on Clock. Default 0: DefaultIdleTimeout.
	IdleTimeout time.Duration

	// Clock is the time source of IdleTimeout (not of Now). Default nil:
	// the system clock.
	Clock Clock
}

// Clock is a time source: Now, and After, a channel that delivers once d
// has passed. Tests use a fake one.
type Clock interface {
	Now() time.Time
	After(d time.Duration) <-chan time.Time
}

type realClock struct{}

func (realClock) Now() time.Time                         { return time.Now() }
func (realClock) After(d time.Duration) <-chan time.Time { return time.After(d) }

// Stop says why reading a partition ended before its end offset.
type Stop int

// Reasons for Unread records.
const (
	// StopNone: the partition was read to its end offset (or nothing
	// waited in it).
	StopNone Stop = iota
	// StopNoReader: Options.ReaderOpts were nil; no record was read.
	StopNoReader
	// StopMaxRead: Options.MaxRead records were read.
	StopMaxRead
	// StopNotDue: Options.StopAtNotDue and a record not yet due was read.
	StopNotDue
	// StopIdle: no new record arrived within Options.IdleTimeout.
	StopIdle
	// StopError: fetching failed; PartitionLag.Err says why.
	StopError
)

// String returns a short name: "", "no-reader", "max-read", "not-due",
// "idle" or "error".
func (s Stop) String() string {
	switch s {
	case StopNone:
		return ""
	case StopNoReader:
		return "no-reader"
	case StopMaxRead:
		return "max-read"
	case StopNotDue:
		return "not-due"
	case StopIdle:
		return "idle"
	case StopError:
		return "error"
	}
	return fmt.Sprintf("Stop(%d)", int(s))
}

// Counts are the waiting records of a partition, or the sums over several.
type Counts struct {
	// Waiting is the end offset minus the offset the group resumes at:
	// the records the group has not committed. Offsets that hold no
	// record (transaction markers, compacted records) count too, so
	// NotDue+Overdue+Corrupt+Unread can be less than Waiting.
	Waiting int64
	// NotDue is the number of records read whose due time is after Now.
	NotDue int64
	// Overdue is the number of records read whose due time is at or
	// before Now. A record whose kretry headers decode without a due time
	// (a dead-letter state) is due at once and counts here, due at its
	// record timestamp.
	Overdue int64
	// Corrupt is the number of records read whose kretry headers are
	// missing or do not decode (retry.Decode); the listener dead-letters
	// them without calling the handler.
	Corrupt int64
	// Unread is the number of waiting offsets not read; see Stop.
	Unread int64
	// Followers is the number of the records read, counted in NotDue or
	// Overdue, that are followers (retry.HeaderFollows): a key-ordered
	// listener (listener.KeyOrder) put them in the tier without a handler
	// call, behind an earlier record of their key, and hands them to the
	// handler only once the records of their key ahead of them have an
	// outcome, so a follower can be overdue while it waits for them.
	Followers int64
	// Lost is the number of waiting offsets deleted (retention,
	// DeleteRecords, a truncated log) while Measure read them: the reader
	// went on from the new log start, as a listener does, and the
	// listener will not see them either. They are in Waiting but in no
	// other count.
	Lost int64
	// OverdueSince is the earliest due time of the Overdue records: the
	// most overdue record has been due since then. Zero when none.
	OverdueSince time.Time
	// NextDue is the earliest due time of the NotDue records. Zero when
	// none.
	NextDue time.Time
}

// Add adds o to c: the counts are summed, OverdueSince and NextDue are the
// earliest of the two.
func (c *Counts) Add(o Counts) {
	c.Waiting += o.Waiting
	c.NotDue += o.NotDue
	c.Overdue += o.Overdue
	c.Corrupt += o.Corrupt
	c.Unread += o.Unread
	c.Followers += o.Followers
	c.Lost += o.Lost
	c.OverdueSince = earliest(c.OverdueSince, o.OverdueSince)
	c.NextDue = earliest(c.NextDue, o.NextDue)
}

// OldestOverdue returns how long the most overdue record has been due at
// now (Report.Now), or 0 when no record is overdue.
func (c Counts) OldestOverdue(now time.Time) time.Duration {
	if c.OverdueSince.IsZero() {
		return 0
	}
	return now.Sub(c.OverdueSince)
}

func earliest(a, b time.Time) time.Time {
	if a.IsZero() || !b.IsZero() && b.Before(a) {
		return b
	}
	return a
}

// PartitionLag is the measure of one partition of a tier topic.
type PartitionLag struct {
	Topic     string
	Partition int32
	// Committed is the group's committed offset, or -1 when it has
	// committed none on this partition.
	Committed int64
	// Start is the log start offset and End the end offset (high
	// watermark) when Measure listed them.
	Start, End int64
	// From is where the group resumes, and where reading starts: Committed,
	// or Start when nothing is committed or the committed offset was
	// deleted (as a kretry listener does), never past End.
	From int64
	// Stopped says why reading ended before End; StopNone when it did not.
	Stopped Stop
	// Err is why the offsets or the group's committed offset could not be
	// fetched (Counts are then zero), or why reading failed (Stopped is
	// StopError).
	Err error
	Counts
}

// HasCommit reports whether the group has committed an offset on the
// partition.
func (p PartitionLag) HasCommit() bool { return p.Committed >= 0 }

// TopicLag is the measure of one tier topic.
type TopicLag struct {
	Topic string
	// Err is why the topic could not be measured, for example
	// kerr.UnknownTopicOrPartition when it does not exist. Partitions is
	// then empty.
	Err error
	// Partitions are sorted by partition number.
	Partitions []PartitionLag
}

// Total returns the sum of the partitions' counts.
func (t TopicLag) Total() Counts {
	var c Counts
	for _, p := range t.Partitions {
		c.Add(p.Counts)
	}
	return c
}

// Report is what Measure found for one group.
type Report struct {
	Group string
	// Now is the time due times were compared with.
	Now time.Time
	// Topics are in the order they were given to Measure, each once.
	Topics []TopicLag
}

// Total returns the sum over every topic.
func (r Report) Total() Counts {
	var c Counts
	for _, t := range r.Topics {
		c.Add(t.Total())
	}
	return c
}

// Measure measures the records group has not committed in each of topics
// (a listener's retry tiers), as described in the package documentation.
// adm lists offsets and fetches the group's commits; the waiting records
// are read with a new plain consumer built from opts.ReaderOpts, which is
// closed before Measure returns. Reading stops at the end offsets listed
// when Measure started, so records produced later are not counted and a
// partition with nothing waiting is not read at all.
//
// A topic or partition that cannot be measured is reported in its Err;
// Measure itself fails only when the group's commits or the offsets
// cannot be fetched at all, when the reader cannot be built, or when ctx
// ends.
func Measure(ctx context.Context, adm *kadm.Client, group string, topics []string, opts Options) (Report, error) {
	now := opts.Now
	if now.IsZero() {
		now = time.Now()
	}
	rep := Report{Group: group, Now: now}
	if opts.MaxRead < 0 {
		return rep, fmt.Errorf("tierlag: MaxRead must be >= 0, got %d", opts.MaxRead)
	}
	var uniq []string
	for _, t := range topics {
		if !slices.Contains(uniq, t) {
			uniq = append(uniq, t)
		}
	}
	topics = uniq
	if len(topics) == 0 {
		return rep, nil
	}
	if opts.ReaderOpts != nil {
		// A group in the options would make the reader join it; find out
		// before the reader is built (a client does nothing until used).
		probe, err := kgo.NewClient(opts.ReaderOpts...)
		if err != nil {
			return rep, fmt.Errorf("tierlag: reader: %w", err)
		}
		g, _ := probe.OptValue(kgo.ConsumerGroup).(string)
		probe.Close()
		if g != "" {
			return rep, ErrReaderGroup
		}
	}
	// The commits are fetched before the end offsets, so that a commit is
	// never past the end offset it is compared with.
	commits, err := adm.FetchOffsets(ctx, group)
	if err != nil && !errors.Is(err, kerr.GroupIDNotFound) {
		return rep, fmt.Errorf("tierlag: fetching the committed offsets of group %q: %w", group, err)
	}
	starts, err := adm.ListStartOffsets(ctx, topics...)
	if err := partial(err); err != nil {
		return rep, fmt.Errorf("tierlag: listing the start offsets of %s: %w", strings.Join(topics, ", "), err)
	}
	ends, err := adm.ListEndOffsets(ctx, topics...)
	if err := partial(err); err != nil {
		return rep, fmt.Errorf("tierlag: listing the end offsets of %s: %w", strings.Join(topics, ", "), err)
	}

	for _, topic := range topics {
		rep.Topics = append(rep.Topics, topicLag(topic, commits, starts, ends))
	}
	if err := read(ctx, &rep, opts); err != nil {
		return rep, err
	}
	return rep, nil
}

// partial returns err unless it says that only some brokers failed to
// answer: the partitions they lead are then missing from the listing, and
// topicLag reports them in their Err.
func partial(err error) error {
	var se *kadm.ShardErrors
	if errors.As(err, &se) && !se.AllFailed {
		return nil
	}
	return err
}

// topicLag builds the offsets of one topic from the listings.
func topicLag(topic string, commits kadm.OffsetResponses, starts, ends kadm.ListedOffsets) TopicLag {
	t := TopicLag{Topic: topic}
	eps, ok := ends[topic]
	if !ok {
		t.Err = kerr.UnknownTopicOrPartition
		return t
	}
	if e, ok := eps[-1]; ok && e.Err != nil {
		t.Err = e.Err
		return t
	}
	for p, e := range eps {
		pl := PartitionLag{Topic: topic, Partition: p, Committed: -1, End: e.Offset, Err: e.Err}
		if s, ok := starts[topic][p]; ok && pl.Err == nil {
			pl.Start, pl.Err = s.Offset, s.Err
		} else if pl.Err == nil {
			pl.Err = errors.New("tierlag: no start offset listed (its broker did not answer)")
		}
		if c, ok := commits.Lookup(topic, p); ok && c.Err != nil && pl.Err == nil {
			// Not "no commit": the group's offset is unknown, so is what
			// waits.
			pl.Err = fmt.Errorf("tierlag: fetching the group's committed offset: %w", c.Err)
		} else if ok && c.At >= 0 {
			pl.Committed = c.At
		}
		if pl.Err == nil {
			pl.From = max(pl.Committed, pl.Start)
			pl.From = min(pl.From, pl.End)
			pl.Waiting = pl.End - pl.From
		}
		t.Partitions = append(t.Partitions, pl)
	}
	slices.SortFunc(t.Partitions, func(a, b PartitionLag) int { return cmp.Compare(a.Partition, b.Partition) })
	return t
}

// classify counts r in c and reports whether it is not yet due.
func classify(c *Counts, r *kgo.Record, now time.Time) bool {
	st, ok, err := retry.Decode(r.Headers)
	if err != nil || !ok {
		c.Corrupt++
		return false
	}
	if st.Follower {
		c.Followers++
	}
	due := st.Due
	if due.IsZero() { // a dead-letter state: the listener handles it at once
		due = r.Timestamp
	}
	if due.After(now) {
		c.NotDue++
		c.NextDue = earliest(c.NextDue, due)
		return true
	}
	c.Overdue++
	c.OverdueSince = earliest(c.OverdueSince, due)
	return false
}
