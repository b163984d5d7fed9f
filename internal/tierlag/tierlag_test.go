package tierlag_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kretry/kretry/internal/kafkatest"
	"github.com/kretry/kretry/internal/tierlag"
	"github.com/kretry/kretry/retry"
)

// now is the time the tests measure at: whole milliseconds, the unit of
// the kretry-due header, so that due times compare exactly.
func testNow() time.Time { return time.Now().Truncate(time.Millisecond).UTC() }

// tierRecord is a retry-tier record due at due, as a listener forwards it.
func tierRecord(topic string, partition int32, due time.Time) *kgo.Record {
	st := retry.State{Attempt: 2, Due: due, OriginalTopic: "orders", OriginalPartition: partition,
		OriginalOffset: 7, OriginalTimestamp: due.Add(-time.Hour), FirstFailure: due.Add(-time.Minute)}
	return &kgo.Record{Topic: topic, Partition: partition, Value: []byte("v"), Headers: st.Append(nil, 0)}
}

func commit(t *testing.T, c *kafkatest.Cluster, group string, offsets map[string]map[int32]int64) {
	t.Helper()
	var os kadm.Offsets
	for topic, ps := range offsets {
		for p, at := range ps {
			os.AddOffset(topic, p, at, -1)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := c.Admin.CommitAllOffsets(ctx, group, os); err != nil {
		t.Fatalf("commit: %v", err)
	}
}

func measure(t *testing.T, c *kafkatest.Cluster, group string, topics []string, opts tierlag.Options) tierlag.Report {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	rep, err := tierlag.Measure(ctx, c.Admin, group, topics, opts)
	if err != nil {
		t.Fatalf("Measure: %v", err)
	}
	return rep
}

func reader(c *kafkatest.Cluster) []kgo.Opt { return []kgo.Opt{kgo.SeedBrokers(c.Seeds...)} }

// want is the part of a PartitionLag the tests compare.
type want struct {
	committed, from, end                      int64
	waiting, notDue, overdue, corrupt, unread int64
	overdueSince, nextDue                     time.Time
	stopped                                   tierlag.Stop
}

func check(t *testing.T, got tierlag.PartitionLag, w want) {
	t.Helper()
	g := want{got.Committed, got.From, got.End, got.Waiting, got.NotDue, got.Overdue, got.Corrupt, got.Unread,
		got.OverdueSince, got.NextDue, got.Stopped}
	if !g.overdueSince.Equal(w.overdueSince) || !g.nextDue.Equal(w.nextDue) {
		t.Errorf("%s[%d]: overdueSince %v nextDue %v, want %v and %v", got.Topic, got.Partition,
			g.overdueSince, g.nextDue, w.overdueSince, w.nextDue)
	}
	g.overdueSince, g.nextDue, w.overdueSince, w.nextDue = time.Time{}, time.Time{}, time.Time{}, time.Time{}
	if g != w {
		t.Errorf("%s[%d]:\n got %+v\nwant %+v", got.Topic, got.Partition, g, w)
	}
	if got.Err != nil {
		t.Errorf("%s[%d]: Err %v", got.Topic, got.Partition, got.Err)
	}
}

// Every waiting record is read and classified exactly: not due, overdue,
// corrupt, counted from the committed offset or, with no commit, from the
// log start; partitions with nothing waiting are not read (and do not make
// Measure wait); a missing topic is reported in its Err; the group is
// neither joined nor committed to.
func TestMeasure(t *testing.T) {
	c := kafkatest.New(t)
	t1, t2, missing := c.Name("orders-retry-1000"), c.Name("orders-retry-2000"), c.Name("orders-retry-4000")
	group := c.Name("billing")
	c.CreateTopic(t1, 2)
	c.CreateTopic(t2, 2)
	now := testNow()

	dlState := retry.State{Attempt: 3, OriginalTopic: "orders", OriginalTimestamp: now, FirstFailure: now, Reason: retry.ReasonExhausted}
	badDue := tierRecord(t1, 0, now)
	for i := range badDue.Headers {
		if badDue.Headers[i].Key == retry.HeaderDue {
			badDue.Headers[i].Value = []byte{1, 2, 3}
		}
	}
	dlTS := now.Add(-3 * time.Hour)
	c.ProduceToPartitions(
		// t1[0]: two committed, then 3 overdue, 2 not due, 2 corrupt,
		// 1 dead-letter state (due at once, at its timestamp).
		tierRecord(t1, 0, now.Add(-5*time.Hour)),
		tierRecord(t1, 0, now.Add(-5*time.Hour)),
		tierRecord(t1, 0, now.Add(-time.Hour)),
		tierRecord(t1, 0, now.Add(-2*time.Hour)),
		tierRecord(t1, 0, now.Add(-30*time.Minute)),
		tierRecord(t1, 0, now.Add(2*time.Hour)),
		tierRecord(t1, 0, now.Add(time.Hour)),
		&kgo.Record{Topic: t1, Partition: 0, Value: []byte("no headers")},
		badDue,
		&kgo.Record{Topic: t1, Partition: 0, Value: []byte("dl"), Timestamp: dlTS, Headers: dlState.Append(nil, 0)},
		// t2[0]: nothing committed: 1 overdue (due exactly now), 3 not due.
		tierRecord(t2, 0, now),
		tierRecord(t2, 0, now.Add(time.Millisecond)),
		tierRecord(t2, 0, now.Add(time.Second)),
		tierRecord(t2, 0, now.Add(time.Minute)),
		// t2[1]: all committed.
		tierRecord(t2, 1, now.Add(-time.Hour)),
		tierRecord(t2, 1, now.Add(-time.Hour)),
	)
	commit(t, c, group, map[string]map[int32]int64{t1: {0: 2}, t2: {1: 2}})

	rep := measure(t, c, group, []string{t1, t2, missing, t1}, tierlag.Options{Now: now, ReaderOpts: reader(c)})

	if rep.Group != group || !rep.Now.Equal(now) {
		t.Errorf("report of %q at %v, want %q at %v", rep.Group, rep.Now, group, now)
	}
	if len(rep.Topics) != 3 {
		t.Fatalf("%d topics, want 3 (a topic given twice is measured once): %+v", len(rep.Topics), rep.Topics)
	}
	if got := rep.Topics[0]; got.Topic != t1 || got.Err != nil || len(got.Partitions) != 2 {
		t.Fatalf("topic 0: %+v", got)
	}
	check(t, rep.Topics[0].Partitions[0], want{committed: 2, from: 2, end: 10, waiting: 8, notDue: 2, overdue: 4, corrupt: 2,
		overdueSince: dlTS, nextDue: now.Add(time.Hour)})
	check(t, rep.Topics[0].Partitions[1], want{committed: -1, from: 0, end: 0})
	if got := rep.Topics[1]; got.Topic != t2 || got.Err != nil || len(got.Partitions) != 2 {
		t.Fatalf("topic 1: %+v", got)
	}
	check(t, rep.Topics[1].Partitions[0], want{committed: -1, from: 0, end: 4, waiting: 4, notDue: 3, overdue: 1,
		overdueSince: now, nextDue: now.Add(time.Millisecond)})
	check(t, rep.Topics[1].Partitions[1], want{committed: 2, from: 2, end: 2})
	if got := rep.Topics[2]; got.Topic != missing || !errors.Is(got.Err, kerr.UnknownTopicOrPartition) || len(got.Partitions) != 0 {
		t.Errorf("missing topic: %+v, want Err UnknownTopicOrPartition", got)
	}

	tot := rep.Total()
	if tot.Waiting != 12 || tot.NotDue != 5 || tot.Overdue != 5 || tot.Corrupt != 2 || tot.Unread != 0 {
		t.Errorf("total %+v", tot)
	}
	if got, want := tot.OldestOverdue(now), 3*time.Hour; got != want {
		t.Errorf("oldest overdue %v, want %v", got, want)
	}
	if !tot.NextDue.Equal(now.Add(time.Millisecond)) {
		t.Errorf("next due %v, want %v", tot.NextDue, now.Add(time.Millisecond))
	}

	// Measuring read nothing on the group's behalf.
	if got := c.Committed(group, t2); len(got) != 1 || got[1] != 2 {
		t.Errorf("commits of %s on %s after Measure: %v, want only {1: 2}", group, t2, got)
	}
	if got := c.Committed(group, t1); len(got) != 1 || got[0] != 2 {
		t.Errorf("commits of %s on %s after Measure: %v, want only {0: 2}", group, t1, got)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	groups, err := c.Admin.DescribeGroups(ctx, group)
	if err != nil {
		t.Fatal(err)
	}
	if g, ok := groups[group]; ok && len(g.Members) > 0 {
		t.Errorf("group %s has members after Measure: %+v", group, g.Members)
	}
}

// MaxRead and StopAtNotDue stop reading early and count the rest as
// Unread; without ReaderOpts nothing is read.
func TestMeasureStopsEarly(t *testing.T) {
	c := kafkatest.New(t)
	tier := c.Name("orders-retry-1000")
	group := c.Name("billing")
	c.CreateTopic(tier, 1)
	now := testNow()
	c.ProduceToPartitions(
		tierRecord(tier, 0, now.Add(-time.Minute)),
		tierRecord(tier, 0, now.Add(-time.Second)),
		tierRecord(tier, 0, now.Add(time.Second)),
		tierRecord(tier, 0, now.Add(-time.Second)), // overdue behind a not-due record (jitter)
		tierRecord(tier, 0, now.Add(time.Minute)),
	)

	t.Run("max-read", func(t *testing.T) {
		rep := measure(t, c, group, []string{tier}, tierlag.Options{Now: now, ReaderOpts: reader(c), MaxRead: 2})
		check(t, rep.Topics[0].Partitions[0], want{committed: -1, end: 5, waiting: 5, overdue: 2, unread: 3,
			overdueSince: now.Add(-time.Minute), stopped: tierlag.StopMaxRead})
	})
	t.Run("max-read-beyond-end", func(t *testing.T) {
		rep := measure(t, c, group, []string{tier}, tierlag.Options{Now: now, ReaderOpts: reader(c), MaxRead: 5})
		check(t, rep.Topics[0].Partitions[0], want{committed: -1, end: 5, waiting: 5, overdue: 3, notDue: 2,
			overdueSince: now.Add(-time.Minute), nextDue: now.Add(time.Second)})
	})
	t.Run("stop-at-not-due", func(t *testing.T) {
		rep := measure(t, c, group, []string{tier}, tierlag.Options{Now: now, ReaderOpts: reader(c), StopAtNotDue: true})
		check(t, rep.Topics[0].Partitions[0], want{committed: -1, end: 5, waiting: 5, overdue: 2, notDue: 1, unread: 2,
			overdueSince: now.Add(-time.Minute), nextDue: now.Add(time.Second), stopped: tierlag.StopNotDue})
	})
	t.Run("no-reader", func(t *testing.T) {
		rep := measure(t, c, group, []string{tier}, tierlag.Options{Now: now})
		check(t, rep.Topics[0].Partitions[0], want{committed: -1, end: 5, waiting: 5, unread: 5, stopped: tierlag.StopNoReader})
	})
	t.Run("reader-group", func(t *testing.T) {
		_, err := tierlag.Measure(context.Background(), c.Admin, group, []string{tier},
			tierlag.Options{ReaderOpts: append(reader(c), kgo.ConsumerGroup(group))})
		if !errors.Is(err, tierlag.ErrReaderGroup) {
			t.Errorf("Measure with a group in ReaderOpts: %v, want ErrReaderGroup", err)
		}
	})
	t.Run("negative-max-read", func(t *testing.T) {
		if _, err := tierlag.Measure(context.Background(), c.Admin, group, []string{tier}, tierlag.Options{MaxRead: -1}); err == nil {
			t.Error("Measure with MaxRead -1: no error")
		}
	})
}

// A committed offset whose records were deleted counts from the log start,
// where the listener resumes.
func TestMeasureCommitBeforeLogStart(t *testing.T) {
	c := kafkatest.New(t)
	tier := c.Name("orders-retry-1000")
	group := c.Name("billing")
	c.CreateTopic(tier, 1)
	now := testNow()
	for range 4 {
		c.ProduceToPartitions(tierRecord(tier, 0, now.Add(-time.Second)))
	}
	commit(t, c, group, map[string]map[int32]int64{tier: {0: 1}})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var del kadm.Offsets
	del.AddOffset(tier, 0, 3, -1)
	resp, err := c.Admin.DeleteRecords(ctx, del)
	if err == nil {
		err = resp.Error()
	}
	if err != nil {
		t.Fatalf("delete records: %v", err)
	}
	rep := measure(t, c, group, []string{tier}, tierlag.Options{Now: now, ReaderOpts: reader(c)})
	got := rep.Topics[0].Partitions[0]
	if got.Start != 3 {
		t.Fatalf("start %d, want 3", got.Start)
	}
	check(t, got, want{committed: 1, from: 3, end: 4, waiting: 1, overdue: 1, overdueSince: now.Add(-time.Second)})
}

// A partition whose last offset holds a transaction marker, not a record,
// is read to its end without waiting.
func TestMeasureTransactionMarkerAtEnd(t *testing.T) {
	c := kafkatest.New(t)
	tier := c.Name("orders-retry-1000")
	group := c.Name("billing")
	c.CreateTopic(tier, 1)
	now := testNow()

	cl, err := kgo.NewClient(kgo.SeedBrokers(c.Seeds...), kgo.TransactionalID(c.Name("txn")),
		kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := cl.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	if err := cl.ProduceSync(ctx, tierRecord(tier, 0, now.Add(-time.Second)), tierRecord(tier, 0, now.Add(time.Second))).FirstErr(); err != nil {
		t.Fatal(err)
	}
	if err := cl.EndTransaction(ctx, kgo.TryCommit); err != nil {
		t.Fatal(err)
	}
	// The end offset counts the marker once it is written.
	kafkatest.Eventually(t, 30*time.Second, func() bool {
		ends, err := c.Admin.ListEndOffsets(ctx, tier)
		o, _ := ends.Lookup(tier, 0)
		return err == nil && o.Offset == 3
	}, "end offset of %s never reached 3 (2 records and a commit marker)", tier)

	start := time.Now()
	rep := measure(t, c, group, []string{tier}, tierlag.Options{Now: now, ReaderOpts: reader(c), IdleTimeout: time.Minute})
	check(t, rep.Topics[0].Partitions[0], want{committed: -1, end: 3, waiting: 3, overdue: 1, notDue: 1,
		overdueSince: now.Add(-time.Second), nextDue: now.Add(time.Second)})
	if d := time.Since(start); d > 20*time.Second {
		t.Errorf("Measure took %v: it waited for a record at the marker's offset", d)
	}
}

func TestStopString(t *testing.T) {
	for s, want := range map[tierlag.Stop]string{tierlag.StopNone: "", tierlag.StopNoReader: "no-reader",
		tierlag.StopMaxRead: "max-read", tierlag.StopNotDue: "not-due", tierlag.StopIdle: "idle",
		tierlag.StopError: "error", tierlag.Stop(99): "Stop(99)"} {
		if got := s.String(); got != want {
			t.Errorf("Stop(%d).String() = %q, want %q", int(s), got, want)
		}
	}
}

func TestCountsAdd(t *testing.T) {
	t0 := time.Unix(1000, 0)
	a := tierlag.Counts{Waiting: 1, NotDue: 1, NextDue: t0.Add(time.Second)}
	a.Add(tierlag.Counts{Waiting: 2, Overdue: 1, Corrupt: 1, Unread: 1, Followers: 2, OverdueSince: t0, NextDue: t0.Add(2 * time.Second)})
	a.Add(tierlag.Counts{Followers: 1})
	want := tierlag.Counts{Waiting: 3, NotDue: 1, Overdue: 1, Corrupt: 1, Unread: 1, Followers: 3, OverdueSince: t0, NextDue: t0.Add(time.Second)}
	if a != want {
		t.Errorf("sum %+v, want %+v", a, want)
	}
	if got := a.OldestOverdue(t0.Add(time.Minute)); got != time.Minute {
		t.Errorf("OldestOverdue = %v, want 1m", got)
	}
	if got := (tierlag.Counts{}).OldestOverdue(t0); got != 0 {
		t.Errorf("OldestOverdue of none = %v, want 0", got)
	}
}

// When no record arrives for IdleTimeout, the partitions still being read
// are given up and their rest counts as Unread. (kfake only: its fetches
// are made to fail.)
func TestMeasureIdle(t *testing.T) {
	c := kafkatest.New(t)
	if c.Fake == nil {
		t.Skip("needs kfake to make fetches fail")
	}
	tier := c.Name("orders-retry-1000")
	group := c.Name("billing")
	c.CreateTopic(tier, 1)
	now := testNow()
	c.ProduceToPartitions(tierRecord(tier, 0, now), tierRecord(tier, 0, now))
	c.Fake.ControlKey(int16(kmsg.Fetch), func(kmsg.Request) (kmsg.Response, error, bool) {
		c.Fake.KeepControl()
		return nil, errors.New("fetch dropped by the test"), true
	})
	rep := measure(t, c, group, []string{tier}, tierlag.Options{Now: now, ReaderOpts: reader(c), IdleTimeout: 200 * time.Millisecond})
	check(t, rep.Topics[0].Partitions[0], want{committed: -1, end: 2, waiting: 2, unread: 2, stopped: tierlag.StopIdle})
}

// fakeClock is a Clock whose After fires at once, moving its time on.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) After(d time.Duration) <-chan time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
	ch := make(chan time.Time, 1)
	ch <- c.now
	return ch
}

// The idle timeout is measured on Options.Clock: an hour of a fake clock
// passes at once. (kfake only: its fetches are made to fail.)
func TestMeasureIdleOnClock(t *testing.T) {
	c := kafkatest.New(t)
	if c.Fake == nil {
		t.Skip("needs kfake to make fetches fail")
	}
	tier := c.Name("orders-retry-1000")
	c.CreateTopic(tier, 1)
	now := testNow()
	c.ProduceToPartitions(tierRecord(tier, 0, now), tierRecord(tier, 0, now))
	c.Fake.ControlKey(int16(kmsg.Fetch), func(kmsg.Request) (kmsg.Response, error, bool) {
		c.Fake.KeepControl()
		return nil, errors.New("fetch dropped by the test"), true
	})
	start := time.Now()
	rep := measure(t, c, c.Name("billing"), []string{tier}, tierlag.Options{Now: now, ReaderOpts: reader(c),
		IdleTimeout: time.Hour, Clock: &fakeClock{now: now}})
	check(t, rep.Topics[0].Partitions[0], want{committed: -1, end: 2, waiting: 2, unread: 2, stopped: tierlag.StopIdle})
	if d := time.Since(start); d > 20*time.Second {
		t.Errorf("Measure took %v: the idle timeout was not measured on the fake clock", d)
	}
}

// The copies of an aborted transaction are not counted: the listener never
// sees them.
func TestMeasureLeavesAbortedCopiesOut(t *testing.T) {
	c := kafkatest.New(t)
	tier := c.Name("orders-retry-1000")
	group := c.Name("billing")
	c.CreateTopic(tier, 1)
	now := testNow()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	txn, err := kgo.NewClient(kgo.SeedBrokers(c.Seeds...), kgo.TransactionalID(c.Name("txn")))
	if err != nil {
		t.Fatal(err)
	}
	defer txn.Close()
	for _, commit := range []kgo.TransactionEndTry{kgo.TryAbort, kgo.TryCommit} {
		if err := txn.BeginTransaction(); err != nil {
			t.Fatal(err)
		}
		due := now.Add(-time.Minute) // aborted: overdue; committed: not due
		if commit {
			due = now.Add(time.Minute)
		}
		if err := txn.ProduceSync(ctx, tierRecord(tier, 0, due), tierRecord(tier, 0, due)).FirstErr(); err != nil {
			t.Fatal(err)
		}
		if err := txn.EndTransaction(ctx, commit); err != nil {
			t.Fatal(err)
		}
	}
	rep := measure(t, c, group, []string{tier}, tierlag.Options{Now: now, ReaderOpts: reader(c)})
	pl := rep.Topics[0].Partitions[0]
	if pl.Overdue != 0 || pl.NotDue != 2 || pl.Unread != 0 {
		t.Errorf("partition %+v: want the 2 committed records not due, the 2 aborted ones not counted", pl)
	}
}

// followerRecord is a follower in a tier, as a key-ordered listener puts
// it there: no delivery yet, behind the record at original offset follows.
func followerRecord(topic string, partition int32, due time.Time, follows int64) *kgo.Record {
	r := tierRecord(topic, partition, due)
	st, _, _ := retry.Decode(r.Headers)
	st.Attempt, st.FirstFailure, st.Follower, st.Follows = 1, time.Time{}, true, follows
	r.Headers = st.Append(nil, 0)
	return r
}

// Followers are counted among the records read, in NotDue or Overdue as
// well; a committed, unread or corrupt follower is not.
func TestMeasureFollowers(t *testing.T) {
	c := kafkatest.New(t)
	tier := c.Name("orders-retry-1000")
	group := c.Name("billing")
	c.CreateTopic(tier, 2)
	now := testNow()
	badFollows := followerRecord(tier, 0, now.Add(-time.Minute), 3)
	for i := range badFollows.Headers {
		if badFollows.Headers[i].Key == retry.HeaderFollows {
			badFollows.Headers[i].Value = []byte{1, 2, 3, 4}
		}
	}
	c.ProduceToPartitions(
		// tier[0]: the record its key waits on, 2 overdue followers, 1
		// not-due follower, 1 follower whose kretry-follows is corrupt.
		tierRecord(tier, 0, now.Add(-2*time.Hour)),
		followerRecord(tier, 0, now.Add(-time.Hour), 7),
		followerRecord(tier, 0, now.Add(-time.Hour), 7),
		followerRecord(tier, 0, now.Add(time.Hour), 7),
		badFollows,
		// tier[1]: a committed follower, then a follower and a plain
		// record, then a follower beyond MaxRead.
		followerRecord(tier, 1, now.Add(-time.Hour), 1),
		followerRecord(tier, 1, now.Add(-time.Hour), 1),
		tierRecord(tier, 1, now.Add(time.Minute)),
		followerRecord(tier, 1, now.Add(-time.Hour), 1),
	)
	commit(t, c, group, map[string]map[int32]int64{tier: {1: 1}})

	rep := measure(t, c, group, []string{tier}, tierlag.Options{Now: now, ReaderOpts: reader(c)})
	p0, p1 := rep.Topics[0].Partitions[0], rep.Topics[0].Partitions[1]
	check(t, p0, want{committed: -1, from: 0, end: 5, waiting: 5, notDue: 1, overdue: 3, corrupt: 1,
		overdueSince: now.Add(-2 * time.Hour), nextDue: now.Add(time.Hour)})
	check(t, p1, want{committed: 1, from: 1, end: 4, waiting: 3, notDue: 1, overdue: 2,
		overdueSince: now.Add(-time.Hour), nextDue: now.Add(time.Minute)})
	if p0.Followers != 3 || p1.Followers != 2 || rep.Total().Followers != 5 {
		t.Errorf("followers %d and %d, total %d; want 3, 2 and 5", p0.Followers, p1.Followers, rep.Total().Followers)
	}

	rep = measure(t, c, group, []string{tier}, tierlag.Options{Now: now, ReaderOpts: reader(c), MaxRead: 2})
	if p0, p1 := rep.Topics[0].Partitions[0], rep.Topics[0].Partitions[1]; p0.Followers != 1 || p1.Followers != 1 ||
		p0.Unread != 3 || p1.Unread != 1 {
		t.Errorf("MaxRead 2: followers %d and %d, unread %d and %d; want 1, 1, 3, 1", p0.Followers, p1.Followers, p0.Unread, p1.Unread)
	}
}
