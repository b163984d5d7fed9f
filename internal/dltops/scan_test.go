package dltops

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kretry/kretry/internal/kafkatest"
)

// lostLog collects what Scan reports lost.
type lostLog []LostRange

func (l *lostLog) add(topic string, p int32, from, to int64) {
	*l = append(*l, LostRange{Topic: topic, Partition: p, From: from, To: to})
}

func (l lostLog) total() int64 {
	var n int64
	for _, r := range l {
		n += r.To - r.From
	}
	return n
}

// deleteRecords moves the log start of topic's partition p to offset.
func deleteRecords(t *testing.T, c *kafkatest.Cluster, topic string, p int32, offset int64) {
	t.Helper()
	var del kadm.Offsets
	del.AddOffset(topic, p, offset, -1)
	resp, err := c.Admin.DeleteRecords(context.Background(), del)
	if err == nil {
		err = resp.Error()
	}
	if err != nil {
		t.Fatalf("delete records of %s[%d] below %d: %v", topic, p, offset, err)
	}
}

// The log start moves past the end of the range while Scan reads it:
// Scan reports the rest as lost and ends, instead of waiting for records
// that will never come.
func TestScanLogStartPassesEndWhileReading(t *testing.T) {
	c := kafkatest.New(t)
	topic := c.Name("dlt")
	c.CreateTopic(topic, 1)
	for i := range 6 { // one batch each, fetched one at a time
		c.ProduceToPartitions(&kgo.Record{Topic: topic, Value: []byte(fmt.Sprint(i))})
	}
	var lost lostLog
	var read []int64
	so := ScanOptions{Lost: lost.add, IdleTimeout: 2 * time.Second}
	start := time.Now()
	err := Scan(testCtx(t), append(opts(c), kgo.FetchMaxBytes(1), kgo.FetchMaxPartitionBytes(1)),
		Ranges{topic: {0: {Start: 0, End: 6}}}, so, func(r *kgo.Record) error {
			if len(read) == 0 {
				deleteRecords(t, c, topic, 0, 6)
			}
			read = append(read, r.Offset)
			return nil
		})
	if err != nil {
		t.Fatalf("Scan: %v (after %v)", err, time.Since(start))
	}
	if int64(len(read))+lost.total() != 6 || len(read) == 0 || lost[len(lost)-1].To != 6 {
		t.Errorf("read %v, lost %+v: want every offset read or lost, up to 6", read, lost)
	}
}

// A range that starts before the log start: its head is reported lost
// before reading begins; without Lost, that is ErrLost.
func TestScanRangeBeforeLogStart(t *testing.T) {
	c := kafkatest.New(t)
	topic := c.Name("dlt")
	c.CreateTopic(topic, 1)
	for i := range 5 {
		c.ProduceToPartitions(&kgo.Record{Topic: topic, Value: []byte(fmt.Sprint(i))})
	}
	deleteRecords(t, c, topic, 0, 3)
	ranges := Ranges{topic: {0: {Start: 1, End: 5}}}
	var lost lostLog
	var read []int64
	err := Scan(testCtx(t), opts(c), ranges, ScanOptions{Lost: lost.add}, func(r *kgo.Record) error {
		read = append(read, r.Offset)
		return nil
	})
	if err != nil || !slices.Equal(read, []int64{3, 4}) || len(lost) != 1 || lost[0] != (LostRange{topic, 0, 1, 3}) {
		t.Errorf("Scan: read %v, lost %+v, %v; want 3 and 4 read, [1, 3) lost", read, lost, err)
	}
	err = Scan(testCtx(t), opts(c), ranges, ScanOptions{}, func(*kgo.Record) error { return nil })
	if !errors.Is(err, ErrLost) || !strings.Contains(err.Error(), topic+"[0] offsets 1 to 2") {
		t.Errorf("Scan without Lost: %v, want ErrLost naming the offsets", err)
	}
}

// A partition that gives no record (here: every fetch fails) makes Scan
// fail with ErrStalled naming it after the idle timeout, instead of
// blocking forever. kfake only: its fetches are made to fail.
func TestScanStalledPartition(t *testing.T) {
	c := kafkatest.New(t)
	if c.Fake == nil {
		t.Skip("needs kfake to make fetches fail")
	}
	topic := c.Name("dlt")
	c.CreateTopic(topic, 2)
	c.ProduceToPartitions(&kgo.Record{Topic: topic, Partition: 1, Value: []byte("a")}, &kgo.Record{Topic: topic, Partition: 1, Value: []byte("b")})
	c.Fake.ControlKey(int16(kmsg.Fetch), func(kmsg.Request) (kmsg.Response, error, bool) {
		c.Fake.KeepControl()
		return nil, errors.New("fetch dropped by the test"), true
	})
	err := Scan(testCtx(t), opts(c), Ranges{topic: {1: {Start: 0, End: 2}}}, ScanOptions{IdleTimeout: 500 * time.Millisecond},
		func(*kgo.Record) error { return nil })
	if !errors.Is(err, ErrStalled) || !strings.Contains(err.Error(), topic+"[1] gave no record for 500ms at offset 0") ||
		!strings.Contains(err.Error(), "log start 0, end 2") {
		t.Errorf("Scan of a partition that cannot be fetched: %v, want ErrStalled naming it", err)
	}
}

// A caller slower than the idle timeout (a rate limit) is not a stalled
// partition: only the time spent waiting for records counts.
func TestScanSlowCallerIsNotStalled(t *testing.T) {
	c := kafkatest.New(t)
	topic := c.Name("dlt")
	c.CreateTopic(topic, 2)
	c.ProduceToPartitions(&kgo.Record{Topic: topic, Value: []byte("a")}, &kgo.Record{Topic: topic, Value: []byte("b")},
		&kgo.Record{Topic: topic, Partition: 1, Value: []byte("c")})
	n := 0
	// One partition per fetch: the other waits in the client while the
	// caller is slow.
	err := Scan(testCtx(t), append(opts(c), kgo.FetchMaxBytes(1)), Ranges{topic: {0: {Start: 0, End: 2}, 1: {Start: 0, End: 1}}},
		ScanOptions{IdleTimeout: 200 * time.Millisecond},
		func(*kgo.Record) error {
			n++
			time.Sleep(300 * time.Millisecond) // the caller's own slowness, not a wait for the read
			return nil
		})
	if err != nil || n != 3 {
		t.Errorf("Scan with a slow caller: %d records, %v", n, err)
	}
}

// What a fetch says about deleted offsets: an ErrDataLoss reset, and a gap
// the log start passed, are losses; a gap behind the log start (an aborted
// transaction, a compacted record) is not.
func TestScannerLosses(t *testing.T) {
	var lost lostLog
	var read []int64
	s := newScanner(nil, Ranges{"d": {0: {Start: 2, End: 20}}}, ScanOptions{Lost: lost.add},
		func(r *kgo.Record) error { read = append(read, r.Offset); return nil })
	p := s.parts[partKey{"d", 0}]
	recs := func(offs ...int64) []*kgo.Record {
		var out []*kgo.Record
		for _, o := range offs {
			out = append(out, &kgo.Record{Topic: "d", Offset: o})
		}
		return out
	}
	fp := func(f kgo.FetchPartition) kgo.FetchTopicPartition {
		return kgo.FetchTopicPartition{Topic: "d", FetchPartition: f}
	}
	steps := []kgo.FetchPartition{
		{Records: recs(2, 4), LogStartOffset: 0}, // 3: a hole, not a loss
		{Err: &kgo.ErrDataLoss{Topic: "d", ConsumedTo: 5, ResetTo: 8}},
		{Records: recs(8, 11), LogStartOffset: 10}, // 9: deleted
		{Records: recs(12)},                        // unknown log start: a hole
		{Err: &kgo.ErrDataLoss{Topic: "d", ConsumedTo: 13, ResetTo: 25}},
	}
	for i, f := range steps {
		if err := s.partition(fp(f)); err != nil {
			t.Fatalf("step %d: %v", i, err)
		}
	}
	want := lostLog{{"d", 0, 5, 8}, {"d", 0, 9, 10}, {"d", 0, 13, 20}}
	if !slices.Equal(read, []int64{2, 4, 8, 11, 12}) || !slices.Equal(lost, want) || !p.done || s.pending != 0 {
		t.Errorf("read %v, lost %+v, done %v; want 2 4 8 11 12 read and %+v lost, the partition done", read, lost, p.done, want)
	}
	if err := s.partition(fp(kgo.FetchPartition{Err: errors.New("late")})); err != nil {
		t.Errorf("an error on a finished partition: %v", err)
	}
}

// Scan never joins a group.
func TestScanRejectsConsumerGroup(t *testing.T) {
	c := kafkatest.New(t)
	topic := c.Name("dlt")
	c.CreateTopic(topic, 1)
	err := Scan(testCtx(t), append(opts(c), kgo.ConsumerGroup(c.Name("g"))), Ranges{topic: {0: {Start: 0, End: 1}}},
		ScanOptions{}, func(*kgo.Record) error { return nil })
	if !errors.Is(err, ErrClientGroup) {
		t.Errorf("Scan with a group: %v, want ErrClientGroup", err)
	}
	_, err = Replay(testCtx(t), ReplayConfig{Run: "g", DLTs: []string{topic}, StateDir: t.TempDir(),
		ClientOpts: append(opts(c), kgo.ConsumerGroup(c.Name("g")))})
	if !errors.Is(err, ErrClientGroup) || !errors.Is(err, ErrConfig) {
		t.Errorf("Replay with a group: %v, want ErrConfig and ErrClientGroup", err)
	}
}

// waitStable waits until the last stable offset of topic's partition 0 is
// want: a broker writes transaction markers after it answers EndTxn, and a
// read_committed reader ends at the last stable offset.
func waitStable(t *testing.T, c *kafkatest.Cluster, topic string, want int64) {
	t.Helper()
	kafkatest.Eventually(t, 30*time.Second, func() bool {
		lso, err := c.Admin.ListCommittedOffsets(context.Background(), topic)
		o, _ := lso.Lookup(topic, 0)
		return err == nil && o.Offset == want
	}, "the last stable offset of %s never reached %d", topic, want)
}

// Records of an aborted transaction in a DLT (a dead-letter publisher
// that aborted) are neither counted by Inspect nor replayed.
func TestAbortedTransactionsAreNotRead(t *testing.T) {
	c := kafkatest.New(t)
	dlt, orders := c.Name("dlt"), c.Name("orders")
	c.CreateTopic(dlt, 1)
	c.CreateTopic(orders, 1)
	now := time.Now()
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.Seeds...), kgo.TransactionalID(c.Name("txn")),
		kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx := testCtx(t)
	txn := func(commit kgo.TransactionEndTry, keys ...string) {
		t.Helper()
		if err := cl.BeginTransaction(); err != nil {
			t.Fatal(err)
		}
		for _, k := range keys {
			if err := cl.ProduceSync(ctx, deadLetter(dlt, dead{key: k, origTopic: orders, errType: "e"}, now)).FirstErr(); err != nil {
				t.Fatal(err)
			}
		}
		if err := cl.EndTransaction(ctx, commit); err != nil {
			t.Fatal(err)
		}
	}
	txn(kgo.TryAbort, "aborted-1", "aborted-2")
	txn(kgo.TryCommit, "committed")
	c.ProduceToPartitions(deadLetter(dlt, dead{key: "plain", origTopic: orders, errType: "e"}, now))
	waitStable(t, c, dlt, 6) // 3 records in transactions, their 2 markers, and 1 plain record

	rep, err := Inspect(ctx, InspectConfig{DLTs: []string{dlt}, ClientOpts: opts(c), Samples: 10})
	if err != nil || rep.Read != 2 || rep.Matched != 2 {
		t.Fatalf("inspect: %+v %v; want the committed and the plain record only", rep, err)
	}
	res, err := Replay(ctx, ReplayConfig{Run: "txn", DLTs: []string{dlt}, StateDir: t.TempDir(), ClientOpts: opts(c)})
	if err != nil || res.Totals.Sent != 2 {
		t.Fatalf("replay: %+v %v", res, err)
	}
	var keys []string
	for _, r := range c.ReadAll(orders) {
		keys = append(keys, string(r.Key))
	}
	slices.Sort(keys)
	if !slices.Equal(keys, []string{"committed", "plain"}) {
		t.Errorf("replayed %v, want committed and plain", keys)
	}
}
