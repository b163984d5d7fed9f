package tierlag

import (
	"errors"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

// A partition whose committed offset could not be fetched is an error of
// that partition, not "nothing committed" (which would count it from the
// log start).
func TestTopicLagCommitError(t *testing.T) {
	listed := func(offs map[int32]int64) kadm.ListedOffsets {
		out := kadm.ListedOffsets{"tier": {}}
		for p, o := range offs {
			out["tier"][p] = kadm.ListedOffset{Topic: "tier", Partition: p, Offset: o}
		}
		return out
	}
	commits := kadm.OffsetResponses{"tier": {
		0: {Offset: kadm.Offset{Topic: "tier", Partition: 0, At: -1}, Err: kerr.UnstableOffsetCommit},
		1: {Offset: kadm.Offset{Topic: "tier", Partition: 1, At: 4}},
	}}
	tl := topicLag("tier", commits, listed(map[int32]int64{0: 2, 1: 2, 2: 2}), listed(map[int32]int64{0: 10, 1: 10, 2: 10}))
	p0, p1, p2 := tl.Partitions[0], tl.Partitions[1], tl.Partitions[2]
	if !errors.Is(p0.Err, kerr.UnstableOffsetCommit) || p0.Waiting != 0 || p0.HasCommit() {
		t.Errorf("partition 0 (commit error): %+v, want its Err and nothing counted", p0)
	}
	if p1.Err != nil || p1.Committed != 4 || p1.Waiting != 6 {
		t.Errorf("partition 1: %+v, want 6 waiting from its commit 4", p1)
	}
	if p2.Err != nil || p2.HasCommit() || p2.From != 2 || p2.Waiting != 8 {
		t.Errorf("partition 2 (no commit): %+v, want 8 waiting from the log start", p2)
	}
}

// A data loss while reading is counted in Lost and reading goes on from
// the new start, as a listener does: it is not an error of the partition.
func TestReaderDataLoss(t *testing.T) {
	now := time.Now()
	rep := &Report{Now: now, Topics: []TopicLag{{Topic: "tier", Partitions: []PartitionLag{
		{Topic: "tier", Partition: 0, Committed: -1, Start: 0, End: 20, From: 0, Counts: Counts{Waiting: 20}},
		{Topic: "tier", Partition: 1, Committed: -1, Start: 0, End: 5, From: 0, Counts: Counts{Waiting: 5}},
	}}}}
	rd := &reader{rep: rep, opts: Options{ReaderOpts: []kgo.Opt{}}, cursors: map[string]map[int32]*cursor{}, pause: func(string, int32) {}}
	rd.init()
	rec := func(p int32, off int64) *kgo.Record { return &kgo.Record{Topic: "tier", Partition: p, Offset: off} }
	fetch := func(ps ...kgo.FetchPartition) kgo.Fetches {
		return kgo.Fetches{{Topics: []kgo.FetchTopic{{Topic: "tier", Partitions: ps}}}}
	}
	steps := []kgo.Fetches{
		fetch(kgo.FetchPartition{Partition: 0, Records: []*kgo.Record{rec(0, 0), rec(0, 1)}}),
		fetch(kgo.FetchPartition{Partition: 0, Err: &kgo.ErrDataLoss{Topic: "tier", ConsumedTo: 2, ResetTo: 6}}),
		fetch(kgo.FetchPartition{Partition: 0, Records: []*kgo.Record{rec(0, 6), rec(0, 9)}, LogStartOffset: 8}),
		fetch(kgo.FetchPartition{Partition: 0, Err: &kgo.ErrDataLoss{Topic: "tier", ConsumedTo: 10, ResetTo: 30}},
			kgo.FetchPartition{Partition: 1, LogStartOffset: 7}),
	}
	for i, fs := range steps {
		if !rd.apply(fs) {
			t.Errorf("step %d: no progress", i)
		}
	}
	p0, p1 := rep.Topics[0].Partitions[0], rep.Topics[0].Partitions[1]
	if p0.Err != nil || p0.Stopped != StopNone || p0.Lost != 4+1+10 || p0.Corrupt != 4 || p0.Unread != 0 {
		t.Errorf("partition 0: %+v, want 15 lost (2-5, 7, 10-19), 4 read, done", p0)
	}
	if p1.Err != nil || p1.Stopped != StopNone || p1.Lost != 5 || rd.pending != 0 {
		t.Errorf("partition 1: %+v, want all 5 lost and done", p1)
	}
}
