package dltops

import (
	"bytes"
	"errors"
	"fmt"
	"maps"
	"slices"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/kretry/kretry/internal/kafkatest"
	"github.com/kretry/kretry/retry"
)

// groupFixture is a DLT shared by the consumer groups of one main topic:
// billing and shipping have retry tiers of their own (shipping's with
// fewer partitions than orders), audit's plan has none (attempts 1), and
// ghost is not in the policy. Records without a group come from Spring
// Kafka or an older kretry.
type groupFixture struct {
	c                         *kafkatest.Cluster
	dlt, orders               string
	billingTier, shippingTier string
	cfg                       ReplayConfig
}

func newGroupFixture(t *testing.T) *groupFixture {
	c := kafkatest.New(t)
	f := &groupFixture{c: c, dlt: c.Name("orders-dlt"), orders: c.Name("orders"),
		billingTier: c.Name("orders-retry-1000"), shippingTier: c.Name("orders-shipping-retry-500")}
	c.CreateTopic(f.dlt, 2)
	c.CreateTopic(f.orders, 4)
	c.CreateTopic(f.billingTier, 4)
	c.CreateTopic(f.shippingTier, 2)
	f.cfg = ReplayConfig{Run: "groups", DLTs: []string{f.dlt}, StateDir: t.TempDir(), ClientOpts: opts(c),
		Clock: newFakeClock(), FirstTiers: map[ListenerKey]string{
			{f.orders, "billing"}: f.billingTier, {f.orders, "shipping"}: f.shippingTier, {f.orders, "audit"}: ""}}
	return f
}

// dead returns n DLT records of group g, keys g0, g1, …, from orders
// partition 3 and then 1, 3, …, at offsets 100+i.
func (f *groupFixture) dead(g string, n int, now time.Time) []*kgo.Record {
	var out []*kgo.Record
	for i := range n {
		key := fmt.Sprintf("%s%d", g, i)
		if g == "" {
			key = fmt.Sprintf("none%d", i)
		}
		out = append(out, deadLetter(f.dlt, dead{key: key, origTopic: f.orders, origPart: int32(3 - 2*(i%2)),
			origOffset: int64(100 + i), errType: "*net.OpError", reason: retry.ReasonExhausted, age: time.Hour,
			dltPart: int32(i % 2), group: g, headers: []kgo.RecordHeader{{Key: "trace-id", Value: []byte(key)}}}, now))
	}
	return out
}

// tierRecords returns the records of topic by key.
func tierRecords(c *kafkatest.Cluster, topic string) map[string]*kgo.Record {
	out := map[string]*kgo.Record{}
	for _, r := range c.ReadAll(topic) {
		out[string(r.Key)] = r
	}
	return out
}

// A DLT holding the records of several groups: each group's records go to
// the first retry tier of that group's plan, as its second delivery due
// now with the original topic, partition and offset of the DLT record, a
// fresh time budget and the group; records of a group whose plan has no
// tier, and records without a group, go to the original topic; records of
// a group the policy does not know are skipped and listed.
func TestReplaySendsEachGroupToItsFirstTier(t *testing.T) {
	f := newGroupFixture(t)
	now := time.Now()
	var recs []*kgo.Record
	for _, g := range []string{"billing", "shipping", "audit", "", "ghost"} {
		recs = append(recs, f.dead(g, 2, now)...)
	}
	f.c.ProduceToPartitions(recs...)
	// A service reading orders: it sees what goes there.
	var offs kadm.Offsets
	offs.AddOffset(f.orders, 0, 0, -1)
	if err := f.c.Admin.CommitAllOffsets(testCtx(t), "svc-reader", offs); err != nil {
		t.Fatal(err)
	}
	clock := f.cfg.Clock.(*fakeClock)
	sent := clock.Now()
	res, err := Replay(testCtx(t), f.cfg)
	if err != nil {
		t.Fatal(err)
	}
	tt := res.Totals
	if res.Status != ResultDone || tt.Sent != 8 || tt.SentTo[f.billingTier] != 2 || tt.SentTo[f.shippingTier] != 2 ||
		tt.SentTo[f.orders] != 4 || tt.Skipped[SkipNoListener] != 2 {
		t.Fatalf("totals %+v, want 2 to each tier, 4 to orders, ghost's 2 skipped", tt)
	}
	if !slices.Equal(tt.TierGroups[f.billingTier], []string{"billing"}) ||
		!slices.Equal(tt.TierGroups[f.shippingTier], []string{"shipping"}) || len(tt.TierGroups) != 2 {
		t.Errorf("tier groups %v, want billing's tier for billing only, shipping's for shipping only", tt.TierGroups)
	}
	if !slices.Equal(res.Readers[f.orders], []string{"svc-reader"}) || len(res.Readers) != 1 || res.ReadersError != "" {
		t.Errorf("readers %v (%s), want svc-reader on %s only", res.Readers, res.ReadersError, f.orders)
	}
	for _, s := range tt.SkippedRecords {
		if s.Group != "ghost" || s.Reason != SkipNoListener {
			t.Errorf("skipped %+v, want ghost's records, no listener", s)
		}
	}

	dltState := map[string]retry.State{}
	for _, r := range f.c.ReadAll(f.dlt) {
		st, _, err := retry.Decode(r.Headers)
		if err != nil {
			t.Fatal(err)
		}
		dltState[string(r.Key)] = st
	}
	wantTime := sent.UTC().Truncate(time.Millisecond)
	check := func(topic, group string, partitions int) {
		t.Helper()
		got := tierRecords(f.c, topic)
		if len(got) != 2 {
			t.Fatalf("%s holds %d records, want %s's 2", topic, len(got), group)
		}
		for i := range 2 {
			key := fmt.Sprintf("%s%d", group, i)
			r, in := got[key], dltState[key]
			if r == nil {
				t.Fatalf("%s lacks %s", topic, key)
			}
			st, ok, err := retry.Decode(r.Headers)
			if err != nil || !ok {
				t.Fatalf("%s: %s's retry headers: %v %v", topic, key, ok, err)
			}
			want := retry.State{Attempt: 2, Due: wantTime, OriginalTopic: f.orders, OriginalPartition: in.OriginalPartition,
				OriginalOffset: in.OriginalOffset, OriginalTimestamp: wantTime, FirstFailure: wantTime, Group: group}
			if st != want {
				t.Errorf("%s: %s's state\n%+v, want\n%+v", topic, key, st, want)
			}
			if by, _ := header(r, retry.HeaderReplayRun); by != "groups" {
				t.Errorf("%s: %s's replay run %q", topic, key, by)
			}
			if v, _ := header(r, "trace-id"); v != key || !bytes.Equal(r.Value, []byte("value-"+key)) {
				t.Errorf("%s: %s lost its user header or value", topic, key)
			}
			wantPart := in.OriginalPartition
			if int(wantPart) >= partitions {
				wantPart = int32(kgoKeyPartition(r.Key, partitions))
			}
			if r.Partition != wantPart {
				t.Errorf("%s: %s on partition %d, want %d", topic, key, r.Partition, wantPart)
			}
			if !r.Timestamp.Equal(wantTime) {
				t.Errorf("%s: %s's timestamp %v, want %v", topic, key, r.Timestamp, wantTime)
			}
		}
	}
	check(f.billingTier, "billing", 4)
	check(f.shippingTier, "shipping", 2)

	main := tierRecords(f.c, f.orders)
	if len(main) != 4 || main["audit0"] == nil || main["audit1"] == nil || main["none0"] == nil || main["none1"] == nil {
		t.Fatalf("%s holds %v, want audit's and the records without a group", f.orders, slices.Sorted(maps.Keys(main)))
	}
	for k, r := range main {
		if _, ok, _ := retry.Decode(r.Headers); ok {
			t.Errorf("%s: %s carries retry headers, want a first delivery", f.orders, k)
		}
	}

	// Run again: finished, nothing more.
	res, err = Replay(testCtx(t), f.cfg)
	if err != nil || res.Status != ResultAlreadyDone {
		t.Fatalf("again: %+v %v", res, err)
	}
	exactlyOnce(t, f.c, f.billingTier, "groups", sourcesOf(f.c, f.dlt, "billing"))
}

// sourcesOf returns the DLT records of dlt whose key starts with prefix.
func sourcesOf(c *kafkatest.Cluster, dlt, prefix string) []string {
	var out []string
	for _, r := range c.ReadAll(dlt) {
		if bytes.HasPrefix(r.Key, []byte(prefix)) {
			out = append(out, SourceOf(r))
		}
	}
	return out
}

// --group selects the records of one group; --to sends them all to one
// topic by key, whatever their group, without retry headers.
func TestReplayGroupFilterAndTo(t *testing.T) {
	f := newGroupFixture(t)
	now := time.Now()
	f.c.ProduceToPartitions(append(f.dead("billing", 3, now), f.dead("shipping", 2, now)...)...)
	f.cfg.Filter.Groups = []string{"shipping"}
	res, err := Replay(testCtx(t), f.cfg)
	if err != nil || res.Totals.Matched != 2 || res.Totals.Sent != 2 || res.Totals.SentTo[f.shippingTier] != 2 {
		t.Fatalf("--group shipping: %+v %v", res, err)
	}
	if n := len(f.c.ReadAll(f.billingTier)); n != 0 {
		t.Errorf("--group shipping sent %d records to billing's tier", n)
	}
	other := f.c.Name("other")
	f.c.CreateTopic(other, 3)
	f.cfg.Run, f.cfg.To, f.cfg.Filter.Groups = "to", other, nil
	res, err = Replay(testCtx(t), f.cfg)
	if err != nil || res.Totals.Sent != 5 || res.Totals.SentTo[other] != 5 || len(res.Totals.TierGroups) != 0 {
		t.Fatalf("--to: %+v %v", res, err)
	}
	for _, r := range f.c.ReadAll(other) {
		if _, ok, _ := retry.Decode(r.Headers); ok {
			t.Errorf("--to: %s carries retry headers", r.Key)
		}
	}
}

// A group's first tier that does not exist: its records are skipped with
// the tier named, the others sent.
func TestReplaySkipsRecordsWhoseTierDoesNotExist(t *testing.T) {
	f := newGroupFixture(t)
	gone := f.c.Name("orders-retry-gone")
	f.cfg.FirstTiers[ListenerKey{f.orders, "billing"}] = gone
	f.c.ProduceToPartitions(append(f.dead("billing", 2, time.Now()), f.dead("shipping", 1, time.Now())...)...)
	res, err := Replay(testCtx(t), f.cfg)
	if err != nil || res.Totals.Sent != 1 || res.Totals.Skipped[SkipNoSuchTier] != 2 {
		t.Fatalf("%+v %v, want shipping's record sent and billing's 2 skipped", res, err)
	}
	s := res.Totals.SkippedRecords[0]
	if s.Target != gone || s.TargetFrom != "policy of group billing" || s.Group != "billing" {
		t.Errorf("skipped %+v", s)
	}
}

// After a crash with records in flight to several tiers, the resume finds
// those that landed in each tier and sends every record exactly once.
func TestReplayResumeAcrossTiers(t *testing.T) {
	f := newGroupFixture(t)
	now := time.Now()
	f.c.ProduceToPartitions(append(append(f.dead("billing", 12, now), f.dead("shipping", 12, now)...), f.dead("", 6, now)...)...)
	f.cfg.CheckpointEvery = 5
	crashed := f.cfg
	crashed.hooks.crash = func(read, sends int64) bool { return sends == 13 }
	if _, err := Replay(testCtx(t), crashed); !errors.Is(err, errCrash) {
		t.Fatalf("first attempt: %v, want the simulated crash", err)
	}
	res, err := Replay(testCtx(t), f.cfg)
	if err != nil || res.Status != ResultDone || res.Totals.Sent+res.Totals.AlreadySent != 30 || res.Totals.AlreadySent == 0 {
		t.Fatalf("resume: %+v %v", res, err)
	}
	exactlyOnce(t, f.c, f.billingTier, "groups", sourcesOf(f.c, f.dlt, "billing"))
	exactlyOnce(t, f.c, f.shippingTier, "groups", sourcesOf(f.c, f.dlt, "shipping"))
	exactlyOnce(t, f.c, f.orders, "groups", sourcesOf(f.c, f.dlt, "none"))
}

// A dry run counts per target and names the groups that see them, and
// sends nothing.
func TestReplayDryRunNamesGroups(t *testing.T) {
	f := newGroupFixture(t)
	now := time.Now()
	f.c.ProduceToPartitions(append(f.dead("billing", 2, now), f.dead("", 1, now)...)...)
	f.cfg.DryRun = true
	res, err := Replay(testCtx(t), f.cfg)
	if err != nil {
		t.Fatal(err)
	}
	if res.WouldSendTo[f.billingTier] != 2 || res.WouldSendTo[f.orders] != 1 ||
		!slices.Equal(res.Totals.TierGroups[f.billingTier], []string{"billing"}) || res.Readers[f.orders] == nil {
		t.Errorf("dry run %+v", res)
	}
	if n := len(f.c.ReadAll(f.billingTier)) + len(f.c.ReadAll(f.orders)); n != 0 {
		t.Errorf("dry run sent %d records", n)
	}
}

// The tiers of the policy must not be DLTs being replayed, and name a
// topic and a group.
func TestReplayConfigFirstTiers(t *testing.T) {
	for _, tiers := range []map[ListenerKey]string{
		{{"orders", "billing"}: "orders-dlt"},
		{{"", "billing"}: "t"},
		{{"orders", ""}: "t"},
	} {
		cfg := ReplayConfig{Run: "r", DLTs: []string{"orders-dlt"}, FirstTiers: tiers}
		if err := cfg.validate(); !errors.Is(err, ErrConfig) {
			t.Errorf("%v: %v, want ErrConfig", tiers, err)
		}
	}
}
