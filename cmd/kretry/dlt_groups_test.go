package main

import (
	"context"
	"encoding/json"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/kretry/kretry/internal/dltops"
	"github.com/kretry/kretry/internal/kafkatest"
	"github.com/kretry/kretry/retry"
)

// groupDLTRecord is dltRecord dead-lettered by consumer group g ("" for a
// record without the kretry-group header).
func groupDLTRecord(dlt string, dltPart int32, topic string, partition int32, offset int64, key, g string, at time.Time) *kgo.Record {
	src := &kgo.Record{Topic: topic, Partition: partition, Offset: offset, Key: []byte(key),
		Value: []byte("value-" + key), Timestamp: at.Add(-time.Second)}
	st := retry.First(src, at).WithFailure(time.Time{}, "failed: "+key, "*net.OpError").DeadLetter(retry.ReasonExhausted)
	st.Group = g
	out := retry.Next(src, dlt, dltPart, st, 0)
	out.Timestamp = at
	return out
}

// Two services (billing and shipping) read orders and share its tiers and
// DLT. A replay with billing's policy sends billing's records to the first
// tier, for billing only, the record without a group to orders, for every
// group reading it, and skips shipping's (its policy was not given); the
// dry run says so, naming the groups. Shipping's policy then replays
// shipping's record. inspect shows and filters the groups.
func TestDLTReplayGroups(t *testing.T) {
	c := kafkatest.New(t)
	orders, dlt := c.Name("orders"), c.Name("orders-dlt")
	tier := orders + "-retry-1000"
	c.CreateTopic(orders, 3)
	c.CreateTopic(dlt, 2)
	c.CreateTopic(tier, 3)
	now := time.Now().Add(-time.Minute)
	c.ProduceToPartitions(
		groupDLTRecord(dlt, 0, orders, 2, 10, "b1", "billing", now),
		groupDLTRecord(dlt, 1, orders, 1, 11, "b2", "billing", now),
		groupDLTRecord(dlt, 0, orders, 0, 12, "s1", "shipping", now),
		groupDLTRecord(dlt, 1, orders, 0, 13, "n1", "", now))
	ctx := testCtx(t)
	for _, g := range []string{"billing", "shipping"} {
		var offs kadm.Offsets
		offs.AddOffset(orders, 0, 0, -1)
		if err := c.Admin.CommitAllOffsets(ctx, g, offs); err != nil {
			t.Fatal(err)
		}
	}
	brokers := "--brokers=" + strings.Join(c.Seeds, ",")
	policy := writePolicy(t, "version: 1\nlisteners:\n  - topic: "+orders+"\n    group: billing\n    attempts: 3\n    delay: 1s\n    multiplier: 2\n")

	code, out, errOut := kretry(ctx, "dlt", "inspect", brokers, dlt)
	if code != exitOK || !regexp.MustCompile(`(?m)^\*net\.OpError +`+orders+` +billing +<1h +2 `).MatchString(out) ||
		!regexp.MustCompile(`(?m)^\*net\.OpError +`+orders+` +shipping +<1h +1 `).MatchString(out) ||
		!regexp.MustCompile(`(?m)^\*net\.OpError +`+orders+` +\(none\) +<1h +1 `).MatchString(out) {
		t.Errorf("inspect: exit %d\n%s%s", code, out, errOut)
	}
	code, out, _ = kretry(ctx, "dlt", "inspect", brokers, "--group", "shipping", "--show-records", dlt)
	if code != exitOK || !strings.Contains(out, "read 4 records, 1 matched") || !strings.Contains(out, `key "s1"`) ||
		!strings.Contains(out, "group shipping") {
		t.Errorf("inspect --group shipping: exit %d\n%s", code, out)
	}

	code, out, errOut = kretry(ctx, "dlt", "replay", "--run", "d", "--dry-run", brokers, "--progress", "none", "--file", policy, dlt)
	if code != exitOK {
		t.Fatalf("dry run: exit %d\n%s%s", code, out, errOut)
	}
	for _, want := range []string{
		`(?m)^  per target topic \(would send, by this attempt\), and who sees the records:$`,
		`(?m)^    ` + orders + ` +1  every group reading ` + orders + `: billing, shipping$`,
		`(?m)^    ` + tier + ` +2  group billing only \(its first retry tier\)$`,
		`(?m)^  skipped +1$`,
		`(?m)^    the policy has no listener of its consumer group for its original topic .*: 1$`,
		`(?m)^      ` + dlt + `/0/1  group shipping$`,
	} {
		if !regexp.MustCompile(want).MatchString(out) {
			t.Errorf("dry run lacks %s:\n%s", want, out)
		}
	}
	if n := len(c.ReadAll(tier)) + len(c.ReadAll(orders)); n != 0 {
		t.Fatalf("the dry run sent %d records", n)
	}

	// Billing's records only, with billing's policy.
	code, out, errOut = kretry(ctx, "dlt", "replay", "--run", "b", brokers, "--state-dir", t.TempDir(), "--progress", "none",
		"--json", "--file", policy, "--group", "billing", dlt)
	var res dltops.Result
	if err := json.Unmarshal([]byte(out), &res); err != nil || code != exitOK {
		t.Fatalf("billing: exit %d %v\n%s%s", code, err, out, errOut)
	}
	if res.Totals.Matched != 2 || res.Totals.Sent != 2 || res.Totals.SentTo[tier] != 2 || len(res.Totals.TierGroups[tier]) != 1 {
		t.Errorf("billing: %+v", res.Totals)
	}
	// Shipping's record, with shipping's policy from flags.
	code, out, errOut = kretry(ctx, "dlt", "replay", "--run", "s", brokers, "--state-dir", t.TempDir(), "--progress", "none",
		"--topic", orders, "--group", "shipping", "--attempts", "3", "--delay", "1s", "--multiplier", "2", dlt)
	if code != exitOK || !regexp.MustCompile(`(?m)^    `+tier+` +1  group shipping only`).MatchString(out) {
		t.Fatalf("shipping: exit %d\n%s%s", code, out, errOut)
	}
	groups := map[string]string{}
	for _, r := range c.ReadAll(tier) {
		st, ok, err := retry.Decode(r.Headers)
		if !ok || err != nil || st.Attempt != 2 || st.Reason != "" {
			t.Errorf("%s in %s: state %+v %v %v", r.Key, tier, st, ok, err)
		}
		groups[string(r.Key)] = st.Group
	}
	if len(groups) != 3 || groups["b1"] != "billing" || groups["b2"] != "billing" || groups["s1"] != "shipping" {
		t.Errorf("%s holds %v, want b1 and b2 of billing, s1 of shipping", tier, groups)
	}
	if n := len(c.ReadAll(orders)); n != 0 {
		t.Errorf("%d records went to %s, want none: every record replayed had a group", n, orders)
	}
}

// With groupTopics, a group's records go to the tier named after it.
func TestDLTReplayGroupTopics(t *testing.T) {
	c := kafkatest.New(t)
	orders := c.Name("orders")
	dlt, tier := orders+"-billing-dlt", orders+"-billing-retry-1000"
	c.CreateTopic(orders, 1)
	c.CreateTopic(dlt, 1)
	c.CreateTopic(tier, 1)
	c.ProduceToPartitions(groupDLTRecord(dlt, 0, orders, 0, 1, "b1", "billing", time.Now()))
	code, out, errOut := kretry(testCtx(t), "dlt", "replay", "--run", "g", "--brokers="+strings.Join(c.Seeds, ","),
		"--state-dir", t.TempDir(), "--progress", "none",
		"--topic", orders, "--group", "billing", "--group-topics", "true", "--attempts", "3", "--delay", "1s", "--multiplier", "2", dlt)
	if code != exitOK || !regexp.MustCompile(`(?m)^    `+tier+` +1  group billing only`).MatchString(out) {
		t.Fatalf("exit %d\n%s%s", code, out, errOut)
	}
	if got := c.ReadAll(tier); len(got) != 1 {
		t.Errorf("%s holds %d records, want 1", tier, len(got))
	}
}

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return ctx
}
