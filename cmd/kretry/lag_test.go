package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/kretry/kretry/internal/kafkatest"
	"github.com/kretry/kretry/retry"
)

// runCluster runs the command against c and returns its exit status and
// output.
func runCluster(t *testing.T, c *kafkatest.Cluster, args ...string) (int, string, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	args = append(args, "--brokers", strings.Join(c.Seeds, ","))
	var stdout, stderr bytes.Buffer
	code := runContext(ctx, args, &stdout, &stderr)
	return code, stdout.String(), stderr.String()
}

// tierRecord is a retry-tier record due at due, as a listener forwards it.
func tierRecord(topic string, partition int32, due time.Time) *kgo.Record {
	st := retry.State{Attempt: 2, Due: due, OriginalTopic: "orders", OriginalPartition: partition,
		OriginalOffset: 7, OriginalTimestamp: due.Add(-time.Hour), FirstFailure: due.Add(-time.Minute)}
	return &kgo.Record{Topic: topic, Partition: partition, Value: []byte("v"), Headers: st.Append(nil, 0)}
}

func commitOffsets(t *testing.T, c *kafkatest.Cluster, group string, offsets map[string]map[int32]int64) {
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

// writePolicy writes a policy file into a temporary directory.
func writePolicy(t *testing.T, yaml string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "policy.yaml")
	if err := os.WriteFile(path, []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// lagFixture is a listener whose two tiers hold records of every kind:
//
//	tier 1000 partition 0: 1 committed, then 2 overdue (1 h and 2 h), 2 not
//	                       due (in 1 h and 2 h), 1 without kretry headers
//	tier 1000 partition 1: empty
//	tier 2000 partition 0: nothing committed; 1 overdue (10 min)
//	tier 2000 partition 1: 2 records, both committed
//
// The listener has attempts 4, so its third tier, 4000, does not exist.
type lagFixture struct {
	c            *kafkatest.Cluster
	main, group  string
	tier1, tier2 string
	flags        []string // the listener as setting flags
}

func newLagFixture(t *testing.T) *lagFixture {
	c := kafkatest.New(t)
	f := &lagFixture{c: c, main: c.Name("orders"), group: c.Name("billing")}
	f.tier1, f.tier2 = f.main+"-retry-1000", f.main+"-retry-2000"
	f.flags = []string{"--topic", f.main, "--attempts", "4", "--delay", "1s", "--multiplier", "2"}
	c.CreateTopic(f.tier1, 2)
	c.CreateTopic(f.tier2, 2)
	now := time.Now()
	c.ProduceToPartitions(
		tierRecord(f.tier1, 0, now.Add(-3*time.Hour)),
		tierRecord(f.tier1, 0, now.Add(-time.Hour)),
		tierRecord(f.tier1, 0, now.Add(-2*time.Hour)),
		tierRecord(f.tier1, 0, now.Add(time.Hour)),
		tierRecord(f.tier1, 0, now.Add(2*time.Hour)),
		&kgo.Record{Topic: f.tier1, Partition: 0, Value: []byte("no kretry headers")},
		tierRecord(f.tier2, 0, now.Add(-10*time.Minute)),
		tierRecord(f.tier2, 1, now.Add(-time.Hour)),
		tierRecord(f.tier2, 1, now.Add(-time.Hour)),
	)
	commitOffsets(t, c, f.group, map[string]map[int32]int64{f.tier1: {0: 1}, f.tier2: {1: 2}})
	return f
}

func (f *lagFixture) lag(t *testing.T, extra ...string) (int, string, string) {
	t.Helper()
	return runCluster(t, f.c, append(append([]string{"tiers", "lag"}, f.flags...), extra...)...)
}

// The counts of --json are exact, per tier, per partition and in total;
// the command never joins or commits for the group.
func TestTiersLagJSON(t *testing.T) {
	before := time.Now() // before the fixture stamps its due times
	f := newLagFixture(t)
	code, stdout, stderr := f.lag(t, "--group", f.group, "--json")
	if code != exitOK {
		t.Fatalf("exit %d\nstderr:\n%s", code, stderr)
	}
	var got lagJSON
	if err := json.Unmarshal([]byte(stdout), &got); err != nil {
		t.Fatalf("%v\n%s", err, stdout)
	}
	if len(got.Listeners) != 1 {
		t.Fatalf("%d listeners: %s", len(got.Listeners), stdout)
	}
	l := got.Listeners[0]
	if l.Topic != f.main || l.Group != f.group || len(l.Tiers) != 3 {
		t.Fatalf("listener %s group %s with %d tiers, want %s, %s, 3:\n%s", l.Topic, l.Group, len(l.Tiers), f.main, f.group, stdout)
	}
	counts := func(c lagCountsJSON) [5]int64 { return [5]int64{c.Waiting, c.NotDue, c.Overdue, c.Corrupt, c.Unread} }
	for _, tc := range []struct {
		name string
		got  lagCountsJSON
		want [5]int64 // waiting, not due, overdue, corrupt, unread
	}{
		{"tier 1000", l.Tiers[0].lagCountsJSON, [5]int64{5, 2, 2, 1, 0}},
		{"tier 1000 partition 0", l.Tiers[0].Partitions[0].lagCountsJSON, [5]int64{5, 2, 2, 1, 0}},
		{"tier 1000 partition 1", l.Tiers[0].Partitions[1].lagCountsJSON, [5]int64{0, 0, 0, 0, 0}},
		{"tier 2000", l.Tiers[1].lagCountsJSON, [5]int64{1, 0, 1, 0, 0}},
		{"tier 2000 partition 1", l.Tiers[1].Partitions[1].lagCountsJSON, [5]int64{0, 0, 0, 0, 0}},
		{"tier 4000", l.Tiers[2].lagCountsJSON, [5]int64{0, 0, 0, 0, 0}},
		{"total", l.Total, [5]int64{6, 2, 3, 1, 0}},
	} {
		if g := counts(tc.got); g != tc.want {
			t.Errorf("%s: waiting, not due, overdue, corrupt, unread = %v, want %v", tc.name, g, tc.want)
		}
	}
	if l.Tiers[0].Topic != f.tier1 || l.Tiers[0].Delay != "1s" || l.Tiers[0].DelayMs != 1000 || l.Tiers[2].Topic != f.main+"-retry-4000" {
		t.Errorf("tiers %+v", l.Tiers)
	}
	if l.Tiers[2].Error == "" || len(l.Tiers[2].Partitions) != 0 {
		t.Errorf("missing tier 4000: error %q, %d partitions; want an error and none", l.Tiers[2].Error, len(l.Tiers[2].Partitions))
	}
	p := l.Tiers[1].Partitions[0]
	if p.Committed != nil || p.From != 0 || p.End != 1 {
		t.Errorf("tier 2000 partition 0: committed %v from %d end %d, want null, 0, 1", p.Committed, p.From, p.End)
	}
	if p := l.Tiers[0].Partitions[0]; p.Committed == nil || *p.Committed != 1 || p.From != 1 || p.End != 6 {
		t.Errorf("tier 1000 partition 0: %+v, want committed 1, from 1, end 6", p)
	}
	// The most overdue record was due 2 h before the fixture was built.
	if age := time.Duration(l.Total.OldestOverdueMs) * time.Millisecond; age < 2*time.Hour || age > 2*time.Hour+time.Since(before)+time.Minute {
		t.Errorf("oldest overdue %v, want about 2h", age)
	}
	if due := l.Total.NextDue; due.Before(before.Add(time.Hour-time.Second)) || due.After(time.Now().Add(time.Hour)) {
		t.Errorf("next due %v, want about an hour after %v", due, before)
	}
	if got.Now.Before(before) || got.Now.After(time.Now()) {
		t.Errorf("now %v is not the time of the run", got.Now)
	}

	if c := f.c.Committed(f.group, f.tier2); len(c) != 1 || c[1] != 2 {
		t.Errorf("commits on %s after tiers lag: %v, want {1: 2}", f.tier2, c)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	groups, err := f.c.Admin.DescribeGroups(ctx, f.group)
	if err != nil {
		t.Fatal(err)
	}
	if g, ok := groups[f.group]; ok && len(g.Members) > 0 {
		t.Errorf("group %s has members after tiers lag: %+v", f.group, g.Members)
	}
}

// rowFields returns the whitespace-separated fields of the line of out that
// starts with prefix.
func rowFields(t *testing.T, out, prefix string) []string {
	t.Helper()
	for _, l := range strings.Split(out, "\n") {
		if strings.HasPrefix(l, prefix) {
			return strings.Fields(l)
		}
	}
	t.Fatalf("no line starts with %q in\n%s", prefix, out)
	return nil
}

// The table has a row per tier and a total, --per-partition a row per
// partition, and the notes name the missing tier and the partitions
// counted from the log start.
func TestTiersLagTable(t *testing.T) {
	f := newLagFixture(t)
	code, stdout, stderr := f.lag(t, "--group", f.group, "--per-partition")
	if code != exitOK {
		t.Fatalf("exit %d\nstderr:\n%s", code, stderr)
	}
	t.Logf("\n%s", stdout)
	if !strings.HasPrefix(stdout, "group "+f.group+" (listener "+f.main+")\nTIER ") {
		t.Errorf("no heading:\n%s", stdout)
	}
	// TIER DELAY WAITING NOT-DUE OVERDUE CORRUPT UNREAD FOLLOWERS OLDEST-OVERDUE NEXT-DUE
	if got := strings.Join(rowFields(t, stdout, f.tier1+" ")[:8], " "); got != f.tier1+" 1s 5 2 2 1 0 0" {
		t.Errorf("tier 1000 row: %q", got)
	}
	row := rowFields(t, stdout, f.tier1+" ")
	if age, err := time.ParseDuration(row[8]); err != nil || age < 2*time.Hour || age > 2*time.Hour+time.Minute {
		t.Errorf("tier 1000 oldest overdue %q, want about 2h", row[8])
	}
	if row[9] != "in" || !strings.HasPrefix(row[10], "59m") && !strings.HasPrefix(row[10], "1h0m") {
		t.Errorf("tier 1000 next due %q, want in about 1h", row[9:])
	}
	if got := strings.Join(rowFields(t, stdout, f.tier2+" ")[:7], " "); got != f.tier2+" 2s 1 0 1 0 0" {
		t.Errorf("tier 2000 row: %q", got)
	}
	if got := strings.Join(rowFields(t, stdout, f.main+"-retry-4000 "), " "); got != f.main+"-retry-4000 4s - - - - - - - -" {
		t.Errorf("tier 4000 row: %q", got)
	}
	if got := strings.Join(rowFields(t, stdout, "total ")[:6], " "); got != "total 6 2 3 1 0" {
		t.Errorf("total row: %q", got)
	}
	// TIER PARTITION COMMITTED END WAITING NOT-DUE OVERDUE CORRUPT UNREAD FOLLOWERS ...
	_, perPartition, ok := strings.Cut(stdout, "\nTIER ")
	_, perPartition, ok2 := strings.Cut(perPartition, "\nTIER ")
	if !ok || !ok2 || strings.Join(strings.Fields(strings.SplitN(perPartition, "\n", 2)[0]), " ") !=
		"PARTITION COMMITTED END WAITING NOT-DUE OVERDUE CORRUPT UNREAD FOLLOWERS OLDEST-OVERDUE NEXT-DUE" {
		t.Fatalf("no per-partition table:\n%s", stdout)
	}
	for _, want := range []string{
		f.tier1 + " 0 1 6 5 2 2 1 0 0",
		f.tier1 + " 1 none (0) 0 0 0 0 0 0 0 - -",
		f.tier2 + " 0 none (0) 1 1 0 1 0 0 0",
		f.tier2 + " 1 2 2 0 0 0 0 0 0 - -",
	} {
		w := strings.Fields(want)
		got := ""
		for _, l := range strings.Split(perPartition, "\n") {
			if fs := strings.Fields(l); len(fs) > 1 && fs[0] == w[0] && fs[1] == w[1] {
				got = strings.Join(fs, " ")
			}
		}
		if !strings.HasPrefix(got, want) {
			t.Errorf("partition row %q, want %q", got, want)
		}
	}
	for _, note := range []string{
		"note: " + f.main + "-retry-4000 does not exist",
		"note: group " + f.group + " has committed nothing on " + f.tier2 + " partition 0;",
	} {
		if !strings.Contains(stdout, note) {
			t.Errorf("no %q in\n%s", note, stdout)
		}
	}
	// Partition 1 of tier 1000 has no commit, but nothing waits there.
	if strings.Contains(stdout, "committed nothing on "+f.tier1) || strings.Contains(stdout, "no offset on any tier") {
		t.Errorf("a note on commits that do not matter:\n%s", stdout)
	}
}

// --fail-overdue D exits 1 when a record is overdue for more than D.
func TestTiersLagFailOverdue(t *testing.T) {
	f := newLagFixture(t)
	code, _, stderr := f.lag(t, "--group", f.group, "--fail-overdue", "90m")
	if code != exitInvalid {
		t.Errorf("--fail-overdue 90m with a record 2h overdue: exit %d, want %d\n%s", code, exitInvalid, stderr)
	}
	if !strings.Contains(stderr, "records overdue for more than 1h30m0s in "+f.tier1+" of group "+f.group+" (oldest 2h") ||
		strings.Contains(stderr, f.tier2) {
		t.Errorf("stderr does not name tier 1000 alone:\n%s", stderr)
	}
	if code, _, stderr := f.lag(t, "--group", f.group, "--fail-overdue", "3h"); code != exitOK {
		t.Errorf("--fail-overdue 3h with a record 2h overdue: exit %d, want 0\n%s", code, stderr)
	}
}

// --max-read and --stop-at-not-due count the records they skip as unread
// and say so.
func TestTiersLagUnread(t *testing.T) {
	f := newLagFixture(t)
	code, stdout, stderr := f.lag(t, "--group", f.group, "--max-read", "3")
	if code != exitOK {
		t.Fatalf("exit %d\n%s", code, stderr)
	}
	// Partition 0 of tier 1000: overdue, overdue, not due, then 3 unread.
	if got := strings.Join(rowFields(t, stdout, f.tier1+" ")[:7], " "); got != f.tier1+" 1s 5 1 2 0 2" {
		t.Errorf("tier 1000 row with --max-read 3: %q\n%s", got, stdout)
	}
	if !strings.Contains(stdout, "note: 2 records unread: --max-read 3 records were read from their partitions") {
		t.Errorf("no note on unread records:\n%s", stdout)
	}

	code, stdout, stderr = f.lag(t, "--group", f.group, "--stop-at-not-due")
	if code != exitOK {
		t.Fatalf("exit %d\n%s", code, stderr)
	}
	if got := strings.Join(rowFields(t, stdout, f.tier1+" ")[:7], " "); got != f.tier1+" 1s 5 1 2 0 2" {
		t.Errorf("tier 1000 row with --stop-at-not-due: %q\n%s", got, stdout)
	}
	if !strings.Contains(stdout, "note: 2 records unread: --stop-at-not-due") {
		t.Errorf("no note on unread records:\n%s", stdout)
	}
}

// With --file the group is the listener's, and --group replaces it.
func TestTiersLagFileGroup(t *testing.T) {
	f := newLagFixture(t)
	file := writePolicy(t, `version: 1
listeners:
  - topic: `+f.main+`
    group: `+f.group+`
    attempts: 3
    delay: 1s
    multiplier: 2
`)
	code, stdout, stderr := runCluster(t, f.c, "tiers", "lag", "--file", file)
	if code != exitOK {
		t.Fatalf("exit %d\n%s", code, stderr)
	}
	if got := strings.Join(rowFields(t, stdout, "total ")[:6], " "); got != "total 6 2 3 1 0" {
		t.Errorf("group %s: total row %q\n%s", f.group, got, stdout)
	}

	other := f.c.Name("other")
	code, stdout, stderr = runCluster(t, f.c, "tiers", "lag", "--file", file, "--group", other)
	if code != exitOK {
		t.Fatalf("exit %d\n%s", code, stderr)
	}
	// Nothing committed: every record counts, from the log start.
	if !strings.HasPrefix(stdout, "group "+other+" (listener "+f.main+")") {
		t.Errorf("heading does not name group %s:\n%s", other, stdout)
	}
	if got := strings.Join(rowFields(t, stdout, "total ")[:6], " "); got != "total 9 2 6 1 0" {
		t.Errorf("group %s: total row %q\n%s", other, got, stdout)
	}
	for _, note := range []string{
		"note: group " + other + " has committed nothing on " + f.tier1 + " partition 0;",
		"note: group " + other + " has committed nothing on " + f.tier2 + " partitions 0, 1;",
		"note: group " + other + " has committed no offset on any tier: its listener has not run yet, or the group is not the listener's (see --group)\n",
	} {
		if !strings.Contains(stdout, note) {
			t.Errorf("no %q in\n%s", note, stdout)
		}
	}
}

// asFollower makes r, a tier record from tierRecord, a follower that a
// key-ordered listener queued behind the record at original offset follows
// of its key: attempt 1, no first failure, and the kretry-follows header.
func asFollower(r *kgo.Record, follows int64) *kgo.Record {
	st, _, _ := retry.Decode(r.Headers)
	st.Attempt, st.FirstFailure, st.Follower, st.Follows = 1, time.Time{}, true, follows
	r.Headers = st.Append(nil, 0)
	return r
}

// Followers are counted per tier, per partition and in total, in the
// FOLLOWERS column and the "followers" field of --json, among the records
// read: the not-due and overdue ones.
func TestTiersLagFollowers(t *testing.T) {
	c := kafkatest.New(t)
	main, group := c.Name("orders"), c.Name("billing")
	tier1, tier2 := main+"-retry-1000", main+"-retry-2000"
	c.CreateTopic(tier1, 2)
	c.CreateTopic(tier2, 1)
	now := time.Now()
	c.ProduceToPartitions(
		// tier 1000 partition 0: the record its key waits on, then two
		// followers, one overdue and one not due.
		tierRecord(tier1, 0, now.Add(-time.Hour)),
		asFollower(tierRecord(tier1, 0, now.Add(-time.Minute)), 7),
		asFollower(tierRecord(tier1, 0, now.Add(time.Hour)), 7),
		// tier 1000 partition 1: a follower.
		asFollower(tierRecord(tier1, 1, now.Add(-time.Minute)), 3),
		// tier 2000: no follower.
		tierRecord(tier2, 0, now.Add(time.Hour)),
	)
	flags := []string{"tiers", "lag", "--topic", main, "--attempts", "3", "--delay", "1s", "--multiplier", "2", "--group", group}

	code, stdout, stderr := runCluster(t, c, append(flags, "--json")...)
	if code != exitOK {
		t.Fatalf("exit %d\nstderr:\n%s", code, stderr)
	}
	var got lagJSON
	if err := json.Unmarshal([]byte(stdout), &got); err != nil || len(got.Listeners) != 1 || len(got.Listeners[0].Tiers) != 2 {
		t.Fatalf("%v\n%s", err, stdout)
	}
	l := got.Listeners[0]
	for _, tc := range []struct {
		name string
		got  lagCountsJSON
		want [4]int64 // waiting, not due, overdue, followers
	}{
		{"tier 1000", l.Tiers[0].lagCountsJSON, [4]int64{4, 1, 3, 3}},
		{"tier 1000 partition 0", l.Tiers[0].Partitions[0].lagCountsJSON, [4]int64{3, 1, 2, 2}},
		{"tier 1000 partition 1", l.Tiers[0].Partitions[1].lagCountsJSON, [4]int64{1, 0, 1, 1}},
		{"tier 2000", l.Tiers[1].lagCountsJSON, [4]int64{1, 1, 0, 0}},
		{"total", l.Total, [4]int64{5, 2, 3, 3}},
	} {
		if g := [4]int64{tc.got.Waiting, tc.got.NotDue, tc.got.Overdue, tc.got.Followers}; g != tc.want {
			t.Errorf("%s: waiting, not due, overdue, followers = %v, want %v", tc.name, g, tc.want)
		}
	}
	if !strings.Contains(stdout, `"followers": 3,`) {
		t.Errorf("--json has no \"followers\" field:\n%s", stdout)
	}

	code, stdout, stderr = runCluster(t, c, append(flags, "--per-partition")...)
	if code != exitOK {
		t.Fatalf("exit %d\nstderr:\n%s", code, stderr)
	}
	if got := strings.Join(rowFields(t, stdout, "TIER ")[:8], " "); got != "TIER DELAY WAITING NOT-DUE OVERDUE CORRUPT UNREAD FOLLOWERS" {
		t.Errorf("heading %q", got)
	}
	for _, want := range []string{
		tier1 + " 1s 4 1 3 0 0 3",
		tier2 + " 2s 1 1 0 0 0 0",
		"total 5 2 3 0 0 3",
		tier1 + " 0 none (0) 3 3 1 2 0 0 2",
		tier1 + " 1 none (0) 1 1 0 1 0 0 1",
	} {
		n, found := len(strings.Fields(want)), false
		for _, line := range strings.Split(stdout, "\n") {
			if fs := strings.Fields(line); len(fs) >= n && strings.Join(fs[:n], " ") == want {
				found = true
			}
		}
		if !found {
			t.Errorf("no row starts %q\n%s", want, stdout)
		}
	}
}

// An unreachable cluster fails with exit 3 and says what to check.
func TestTiersLagUnreachable(t *testing.T) {
	var stdout, stderr bytes.Buffer
	code := run([]string{"tiers", "lag", "--topic", "orders", "--brokers", "127.0.0.1:1", "--request-timeout", "1s"}, &stdout, &stderr)
	if code != exitFailed || !strings.Contains(stderr.String(), "cannot reach the cluster at 127.0.0.1:1") {
		t.Errorf("exit %d, stderr %q; want %d and a hint", code, stderr.String(), exitFailed)
	}
}

// BenchmarkTiersLag measures tiers lag over 100 000 waiting records, 25 000
// in each of 4 partitions of one tier, the first half of each overdue:
//
//	go test ./cmd/kretry -run '^$' -bench TiersLag -benchtime 3x
func BenchmarkTiersLag(b *testing.B) {
	c := kafkatest.New(b)
	main := c.Name("orders")
	tier := main + "-retry" // attempts 2: one tier
	c.CreateTopic(tier, 4)
	const perPartition = 25000
	now := time.Now()
	var rs []*kgo.Record
	for p := range int32(4) {
		for i := range perPartition {
			// Due at least 30 s ago or in at least 30 s.
			rs = append(rs, tierRecord(tier, p, now.Add(time.Duration(i-perPartition/2)*time.Minute+30*time.Second)))
		}
	}
	c.ProduceToPartitions(rs...)
	for _, bm := range []struct {
		name  string
		flags []string
		want  string // the counts of the total row: WAITING NOT-DUE OVERDUE CORRUPT UNREAD
	}{
		{"exact", []string{"--max-read", "0"}, "100000 50000 50000 0 0"},
		{"stop-at-not-due", []string{"--stop-at-not-due"}, "100000 4 50000 0 49996"},
	} {
		b.Run(bm.name, func(b *testing.B) {
			args := append([]string{"tiers", "lag", "--topic", main, "--attempts", "2",
				"--brokers", strings.Join(c.Seeds, ",")}, bm.flags...)
			for b.Loop() {
				var stdout, stderr bytes.Buffer
				if code := run(args, &stdout, &stderr); code != exitOK {
					b.Fatalf("exit %d\n%s", code, stderr.String())
				}
				for _, l := range strings.Split(stdout.String(), "\n") {
					if f := strings.Fields(l); len(f) > 5 && f[0] == "total" {
						if got := strings.Join(f[1:6], " "); got != bm.want {
							b.Fatalf("total %q, want %q\n%s", got, bm.want, stdout.String())
						}
					}
				}
			}
		})
	}
}
