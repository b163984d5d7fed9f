package dltops

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/kretry/kretry/internal/kafkatest"
	"github.com/kretry/kretry/retry"
)

// fillDLT writes a DLT of 3 partitions (the third empty) and an empty
// second DLT, and returns their names.
func fillDLT(t *testing.T, c *kafkatest.Cluster, now time.Time) (dlt, empty string) {
	dlt, empty = c.Name("orders-dlt"), c.Name("empty-dlt")
	c.CreateTopic(dlt, 3)
	c.CreateTopic(empty, 2)
	var rs []*kgo.Record
	for i, d := range []dead{
		{key: "a1", origTopic: "orders", errType: "*net.OpError", reason: "exhausted", age: time.Minute, group: "billing"},
		{key: "a2", origTopic: "orders", errType: "*net.OpError", reason: "exhausted", age: 2 * time.Minute, dltPart: 1, group: "billing"},
		{key: "a3", origTopic: "orders", errType: "*net.OpError", reason: "timeout", age: 3 * time.Minute},
		{key: "b1", origTopic: "payments", errType: "*json.SyntaxError", reason: "permanent", age: 2 * 24 * time.Hour},
		{key: "b2", origTopic: "payments", errType: "*json.SyntaxError", reason: "permanent", age: 3 * 24 * time.Hour, dltPart: 1},
		{key: "c1", origTopic: "orders", errType: "*net.OpError", reason: "exhausted", age: 10 * 24 * time.Hour},
	} {
		d.origOffset = int64(100 + i)
		rs = append(rs, deadLetter(dlt, d, now))
	}
	rs = append(rs, corruptRecord(dlt, 0, "x1", "", now),
		&kgo.Record{Topic: dlt, Partition: 1, Key: []byte("n1"), Value: []byte("v"), Timestamp: now})
	c.ProduceToPartitions(rs...)
	return dlt, empty
}

func TestInspectGroupsAndCountsCorruptRecords(t *testing.T) {
	c := kafkatest.New(t)
	now := time.Now().Truncate(time.Millisecond)
	dlt, empty := fillDLT(t, c, now)
	rep, err := Inspect(testCtx(t), InspectConfig{DLTs: []string{dlt, empty}, ClientOpts: opts(c), Now: now, Samples: 3})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Read != 8 || rep.Matched != 8 || rep.Corrupt != 1 {
		t.Errorf("read %d matched %d corrupt %d, want 8 8 1", rep.Read, rep.Matched, rep.Corrupt)
	}
	type row struct {
		GroupKey
		count   int64
		reasons map[string]int64
	}
	want := []row{
		{GroupKey{LabelCorrupt, LabelUnknown, LabelUnknown, AgeHour}, 1, map[string]int64{LabelUnknown: 1}},
		{GroupKey{LabelNoHeaders, LabelUnknown, LabelNone, AgeHour}, 1, map[string]int64{LabelUnknown: 1}},
		{GroupKey{"*json.SyntaxError", "payments", LabelNone, AgeWeek}, 2, map[string]int64{"permanent": 2}},
		{GroupKey{"*net.OpError", "orders", LabelNone, AgeHour}, 1, map[string]int64{"timeout": 1}},
		{GroupKey{"*net.OpError", "orders", LabelNone, AgeOlder}, 1, map[string]int64{"exhausted": 1}},
		{GroupKey{"*net.OpError", "orders", "billing", AgeHour}, 2, map[string]int64{"exhausted": 2}},
	}
	if len(rep.Groups) != len(want) {
		t.Fatalf("%d groups, want %d: %+v", len(rep.Groups), len(want), rep.Groups)
	}
	for i, w := range want {
		g := rep.Groups[i]
		if g.GroupKey != w.GroupKey || g.Count != w.count || len(g.Reasons) != len(w.reasons) {
			t.Errorf("group %d = %+v, want %+v", i, g, w)
			continue
		}
		for k, n := range w.reasons {
			if g.Reasons[k] != n {
				t.Errorf("group %d reasons %v, want %v", i, g.Reasons, w.reasons)
			}
		}
	}
	op := rep.Groups[5]
	if !op.FirstSeen.Equal(now.Add(-2*time.Minute)) || !op.LastSeen.Equal(now.Add(-time.Minute)) ||
		!op.FirstFailure.Equal(now.Add(-2*time.Minute)) {
		t.Errorf("first/last seen %v %v first failure %v, want %v %v", op.FirstSeen, op.LastSeen, op.FirstFailure,
			now.Add(-2*time.Minute), now.Add(-time.Minute))
	}
	if len(rep.Samples) != 3 {
		t.Errorf("%d samples, want 3", len(rep.Samples))
	}
}

func TestInspectFilters(t *testing.T) {
	c := kafkatest.New(t)
	now := time.Now().Truncate(time.Millisecond)
	dlt, _ := fillDLT(t, c, now)
	at := func(expr string) TimeBound { b, _ := ParseTimeBound(expr, now); return b }
	tests := []struct {
		name    string
		f       Filter
		matched int64
	}{
		{"error type", Filter{ErrorTypes: []string{"*net.OpError"}}, 4},
		{"error types", Filter{ErrorTypes: []string{"*net.OpError", LabelCorrupt}}, 5},
		{"reason", Filter{Reasons: []string{"exhausted"}}, 3},
		{"original topic", Filter{OriginalTopics: []string{"payments"}}, 2},
		{"since", Filter{Since: at("1h")}, 5},
		{"since, from the first offset after it", Filter{Since: at("150s")}, 4},
		{"until", Filter{Until: at("1d")}, 3},
		{"since and until", Filter{Since: at("4d"), Until: at("1d")}, 2},
		{"key", Filter{Key: []byte("b2"), HasKey: true}, 1},
		{"group", Filter{Groups: []string{"billing"}}, 2},
		{"no group", Filter{Groups: []string{LabelNone}}, 5},
		{"groups", Filter{Groups: []string{"billing", LabelUnknown}}, 3},
		{"nothing", Filter{ErrorTypes: []string{"none such"}}, 0},
	}
	for _, tt := range tests {
		rep, err := Inspect(testCtx(t), InspectConfig{DLTs: []string{dlt}, Filter: tt.f, ClientOpts: opts(c), Now: now})
		if err != nil {
			t.Fatalf("%s: %v", tt.name, err)
		}
		var sum int64
		for _, g := range rep.Groups {
			sum += g.Count
		}
		if rep.Matched != tt.matched || sum != tt.matched {
			t.Errorf("%s: matched %d (groups %d), want %d", tt.name, rep.Matched, sum, tt.matched)
		}
	}
}

// Inspect reads without a group: afterwards no group has an offset for
// the DLT.
func TestInspectCommitsNothing(t *testing.T) {
	c := kafkatest.New(t)
	now := time.Now()
	dlt, _ := fillDLT(t, c, now)
	if _, err := Inspect(testCtx(t), InspectConfig{DLTs: []string{dlt}, ClientOpts: opts(c)}); err != nil {
		t.Fatal(err)
	}
	ctx := testCtx(t)
	groups, err := c.Admin.ListGroups(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(groups.Groups()) > 0 {
		offs := c.Admin.FetchManyOffsets(ctx, groups.Groups()...)
		for g, r := range offs {
			if _, ok := r.Fetched[dlt]; ok {
				t.Errorf("group %s has offsets for %s", g, dlt)
			}
		}
	}
	if !kafkatest.Real() && len(groups.Groups()) != 0 {
		t.Errorf("groups %v exist on a fresh cluster after inspect, want none", groups.Groups())
	}
}

func TestInspectMissingTopic(t *testing.T) {
	c := kafkatest.New(t)
	_, err := Inspect(testCtx(t), InspectConfig{DLTs: []string{c.Name("nope")}, ClientOpts: opts(c)})
	if err == nil || err.Error() != "topic "+c.Name("nope")+" does not exist" {
		t.Errorf("err = %v, want topic ... does not exist", err)
	}
}

// A DLT written in a transaction ends with a commit marker: the read still
// ends.
func TestScanEndsAfterTransactionMarker(t *testing.T) {
	c := kafkatest.New(t)
	dlt := c.Name("txn-dlt")
	c.CreateTopic(dlt, 1)
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.Seeds...), kgo.TransactionalID(c.Name("txn")), kgo.DefaultProduceTopic(dlt))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx := testCtx(t)
	if err := cl.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"a", "b"} {
		if err := cl.ProduceSync(ctx, deadLetter(dlt, dead{key: k, origTopic: "orders", errType: "e"}, time.Now())).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	if err := cl.EndTransaction(ctx, kgo.TryCommit); err != nil {
		t.Fatal(err)
	}
	waitStable(t, c, dlt, 3) // 2 records and the commit marker
	rep, err := Inspect(ctx, InspectConfig{DLTs: []string{dlt}, ClientOpts: opts(c)})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Read != 2 {
		t.Errorf("read %d, want 2", rep.Read)
	}
}

// followerDeadLetter is the DLT record of a follower that a key-ordered
// listener dead-lettered with reason follower, without a handler call,
// because the record at original offset follows of its key was
// dead-lettered: attempt 1, Go's zero first failure, no kretry-follows.
func followerDeadLetter(dlt string, offset, follows int64, group string, at time.Time) *kgo.Record {
	src := &kgo.Record{Topic: "orders", Partition: 2, Offset: offset, Key: []byte("k"), Value: []byte("v"), Timestamp: at.Add(-time.Minute)}
	st := retry.State{Attempt: 1, Due: at, OriginalTopic: "orders", OriginalPartition: 2, OriginalOffset: offset,
		OriginalTimestamp: src.Timestamp, Group: group, Follower: true, Follows: follows}
	st = st.WithFailure(time.Time{}, fmt.Sprintf("kretry: follows orders/2/%d, which was dead-lettered", follows), "").
		DeadLetter(retry.ReasonFollower)
	out := retry.Next(src, dlt, 0, st, 0)
	out.Timestamp = at
	return out
}

// Followers dead-lettered with reason follower group under it like any
// reason, beside the record they followed; their samples say they were
// never handled rather than "attempt 1", and their zero first failure is
// not taken for the group's.
func TestInspectFollowerReason(t *testing.T) {
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	leader := deadLetter("orders-dlt", dead{key: "k", origTopic: "orders", origPart: 2, origOffset: 40,
		errType: "*net.OpError", reason: retry.ReasonExhausted, age: time.Minute, group: "billing"}, now)
	recs := []*kgo.Record{
		leader,
		followerDeadLetter("orders-dlt", 41, 40, "billing", now),
		followerDeadLetter("orders-dlt", 42, 40, "billing", now.Add(time.Second)),
	}
	for _, r := range recs[1:] {
		for _, h := range r.Headers {
			if h.Key == retry.HeaderFollows {
				t.Fatalf("a dead-lettered follower carries %s", h.Key)
			}
		}
	}
	agg := NewAggregator([]string{"orders-dlt"}, now, 10)
	for i, r := range recs {
		r.Offset = int64(i)
		info := Decoder{}.Decode(r)
		if info.Kind != KindKretry {
			t.Fatalf("record %d: kind %v, err %v", i, info.Kind, info.Err)
		}
		agg.Add(r, info, true)
	}
	rep := agg.Report()
	if len(rep.Groups) != 2 {
		t.Fatalf("%d groups, want 2: %+v", len(rep.Groups), rep.Groups)
	}
	// LabelNone sorts before "*net.OpError".
	fg, lg := rep.Groups[0], rep.Groups[1]
	if fg.GroupKey != (GroupKey{LabelNone, "orders", "billing", AgeHour}) || fg.Count != 2 ||
		len(fg.Reasons) != 1 || fg.Reasons[retry.ReasonFollower] != 2 {
		t.Errorf("followers' group %+v", fg)
	}
	if !fg.FirstFailure.IsZero() {
		t.Errorf("followers' first failure %v, want none (they never failed)", fg.FirstFailure)
	}
	if lg.ErrorType != "*net.OpError" || lg.Reasons[retry.ReasonExhausted] != 1 {
		t.Errorf("leader's group %+v", lg)
	}
	if len(rep.Samples) != 3 {
		t.Fatalf("%d samples, want 3", len(rep.Samples))
	}
	if s := rep.Samples[0]; s.NeverHandled || s.Attempt != 1 {
		t.Errorf("leader sample: never handled %v, attempt %d; want false, 1", s.NeverHandled, s.Attempt)
	}
	for _, s := range rep.Samples[1:] {
		if !s.NeverHandled || s.Attempt != 0 || s.Reason != retry.ReasonFollower ||
			!strings.Contains(s.Error, "follows orders/2/40") || s.OriginalOffset == nil || *s.OriginalOffset < 41 {
			t.Errorf("follower sample %+v", s)
		}
	}
	b, err := json.Marshal(rep.Samples[1])
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), `"reason":"follower"`) || !strings.Contains(string(b), `"neverHandled":true`) ||
		strings.Contains(string(b), `"attempt"`) {
		t.Errorf("follower sample JSON %s", b)
	}
	if b, _ := json.Marshal(rep.Samples[0]); strings.Contains(string(b), "neverHandled") {
		t.Errorf("leader sample JSON %s", b)
	}

	// --reason follower selects them.
	f := Filter{Reasons: []string{retry.ReasonFollower}}
	n := 0
	for _, r := range recs {
		if f.Match(r, Decoder{}.Decode(r)) {
			n++
		}
	}
	if n != 2 {
		t.Errorf("a reason filter on %q matched %d records, want 2", retry.ReasonFollower, n)
	}
}
