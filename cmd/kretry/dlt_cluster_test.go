package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/kretry/kretry/internal/dltops"
	"github.com/kretry/kretry/internal/kafkatest"
	"github.com/kretry/kretry/retry"
	"github.com/kretry/kretry/retry/spring"
)

const dltWait = 30 * time.Second

// dltRecord is the DLT record the listener writes for a main-topic record
// (topic, partition, offset) that failed permanently at failedAt.
func dltRecord(dlt string, dltPart int32, topic string, partition int32, offset int64, key, errType string, failedAt time.Time) *kgo.Record {
	src := &kgo.Record{Topic: topic, Partition: partition, Offset: offset, Key: []byte(key),
		Value: []byte("value-" + key), Timestamp: failedAt.Add(-time.Second),
		Headers: []kgo.RecordHeader{{Key: "trace-id", Value: []byte(key)}}}
	st := retry.First(src, failedAt).WithFailure(time.Time{}, "failed: "+key, errType).DeadLetter(retry.ReasonPermanent)
	out := retry.Next(src, dlt, dltPart, st, 0)
	out.Timestamp = failedAt
	return out
}

// dltFixture is a cluster with a DLT of 2 partitions holding n records
// dead-lettered from orders (3 partitions), every third with a
// *json.SyntaxError and the others a *net.OpError, plus one record with
// corrupt headers naming no original topic.
type dltFixture struct {
	c      *kafkatest.Cluster
	dlt    string
	orders string
	n      int
}

func newDLTFixture(t *testing.T, n int) *dltFixture {
	c := kafkatest.New(t)
	f := &dltFixture{c: c, dlt: c.Name("orders-dlt"), orders: c.Name("orders"), n: n}
	c.CreateTopic(f.dlt, 2)
	c.CreateTopic(f.orders, 3)
	now := time.Now()
	var rs []*kgo.Record
	for i := range n {
		typ := "*net.OpError"
		if i%3 == 0 {
			typ = "*json.SyntaxError"
		}
		rs = append(rs, dltRecord(f.dlt, int32(i%2), f.orders, int32(i%3), int64(i), fmt.Sprintf("k%02d", i), typ, now.Add(-2*time.Hour)))
	}
	bad := dltRecord(f.dlt, 0, f.orders, 0, 99, "bad", "x", now)
	var hs []kgo.RecordHeader
	for _, h := range bad.Headers {
		if h.Key != retry.HeaderOriginalTopic {
			hs = append(hs, h)
		}
	}
	bad.Headers = hs
	c.ProduceToPartitions(append(rs, bad)...)
	return f
}

func (f *dltFixture) brokers() string { return "--brokers=" + strings.Join(f.c.Seeds, ",") }

// kretry runs the CLI with args and returns its exit code, stdout and
// stderr.
func kretry(ctx context.Context, args ...string) (int, string, string) {
	var stdout, stderr bytes.Buffer
	code := runContext(ctx, args, &stdout, &stderr)
	return code, stdout.String(), stderr.String()
}

// replayed counts the records of topic sent by run, by source.
func replayed(c *kafkatest.Cluster, topic, run string) map[string]int {
	out := map[string]int{}
	for _, r := range c.ReadAll(topic) {
		var by, from string
		for _, h := range r.Headers {
			switch h.Key {
			case retry.HeaderReplayRun:
				by = string(h.Value)
			case retry.HeaderReplayedFrom:
				from = string(h.Value)
			}
		}
		if by == run {
			out[from]++
		}
	}
	return out
}

func TestDLTInspectCommand(t *testing.T) {
	f := newDLTFixture(t, 12)
	ctx := context.Background()
	code, out, errOut := kretry(ctx, "dlt", "inspect", f.brokers(), f.dlt)
	if code != exitOK {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	for _, want := range []*regexp.Regexp{
		regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(f.dlt) + `: read 13 records, 13 matched, 1 with corrupt headers$`),
		regexp.MustCompile(`(?m)^ERROR TYPE +ORIGINAL TOPIC +GROUP +AGE +COUNT +FIRST SEEN +LAST SEEN +REASONS$`),
		regexp.MustCompile(`(?m)^\(corrupt headers\) +\(unknown\) +\(unknown\) +<1h +1 .* \(unknown\)=1$`),
		regexp.MustCompile(`(?m)^\*json\.SyntaxError +` + f.orders + ` +\(none\) +1h-1d +4 .* permanent=4$`),
		regexp.MustCompile(`(?m)^\*net\.OpError +` + f.orders + ` +\(none\) +1h-1d +8 .* permanent=8$`),
	} {
		if !want.MatchString(out) {
			t.Errorf("output lacks %s:\n%s", want, out)
		}
	}

	code, out, _ = kretry(ctx, "dlt", "inspect", "--json", f.brokers(), "--error-type", "*json.SyntaxError,(corrupt headers)", f.dlt)
	var rep dltops.Report
	if err := json.Unmarshal([]byte(out), &rep); err != nil || code != exitOK {
		t.Fatalf("--json: exit %d, %v:\n%s", code, err, out)
	}
	if rep.Read != 13 || rep.Matched != 5 || len(rep.Groups) != 2 || rep.Groups[1].Count != 4 {
		t.Errorf("--json report %+v", rep)
	}

	code, out, _ = kretry(ctx, "dlt", "inspect", f.brokers(), "--show-records", "--limit", "2", "--key", "k03", f.dlt)
	if code != exitOK || !strings.Contains(out, "records (the first 1 of 1 matched):") ||
		!strings.Contains(out, `key "k03"  *json.SyntaxError  reason permanent  from `+f.orders+"/0/3  group (none)  attempts 1") ||
		!strings.Contains(out, "failed: k03") {
		t.Errorf("--show-records: exit %d\n%s", code, out)
	}

	code, _, errOut = kretry(ctx, "dlt", "inspect", f.brokers(), f.c.Name("missing"))
	if code != exitFailed || !strings.Contains(errOut, "topic "+f.c.Name("missing")+" does not exist") {
		t.Errorf("missing topic: exit %d: %s", code, errOut)
	}
}

// Followers dead-lettered with reason follower (key order) group and
// print like any reason, and their records say they were never handled.
func TestDLTInspectFollowers(t *testing.T) {
	c := kafkatest.New(t)
	dlt, orders := c.Name("orders-dlt"), c.Name("orders")
	c.CreateTopic(dlt, 1)
	now := time.Now()
	leader := dltRecord(dlt, 0, orders, 2, 40, "k", "*net.OpError", now.Add(-time.Minute))
	follower := func(offset int64) *kgo.Record {
		src := &kgo.Record{Topic: orders, Partition: 2, Offset: offset, Key: []byte("k"), Value: []byte("v"), Timestamp: now.Add(-time.Hour)}
		st := retry.State{Attempt: 1, Due: now, OriginalTopic: orders, OriginalPartition: 2, OriginalOffset: offset,
			OriginalTimestamp: src.Timestamp, Group: "billing", Follower: true, Follows: 40}
		st = st.WithFailure(time.Time{}, "kretry: follows "+orders+"/2/40, which was dead-lettered", "").DeadLetter(retry.ReasonFollower)
		out := retry.Next(src, dlt, 0, st, 0)
		out.Timestamp = now
		return out
	}
	c.ProduceToPartitions(leader, follower(41), follower(42))
	ctx := context.Background()
	brokers := "--brokers=" + strings.Join(c.Seeds, ",")

	code, out, errOut := kretry(ctx, "dlt", "inspect", brokers, dlt)
	if code != exitOK {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	for _, want := range []*regexp.Regexp{
		regexp.MustCompile(`(?m)^\(none\) +` + regexp.QuoteMeta(orders) + ` +billing +<1h +2 .* follower=2$`),
		regexp.MustCompile(`(?m)^\*net\.OpError +` + regexp.QuoteMeta(orders) + ` +\(none\) +<1h +1 .* permanent=1$`),
	} {
		if !want.MatchString(out) {
			t.Errorf("output lacks %s:\n%s", want, out)
		}
	}

	code, out, _ = kretry(ctx, "dlt", "inspect", brokers, "--show-records", "--reason", "follower", dlt)
	if code != exitOK || !strings.Contains(out, "records (the first 2 of 2 matched):") ||
		!strings.Contains(out, `key "k"  (none)  reason follower  from `+orders+"/2/41  group billing  never handled (a follower)\n") ||
		!strings.Contains(out, "      kretry: follows "+orders+"/2/40, which was dead-lettered\n") ||
		strings.Contains(out, "attempts") {
		t.Errorf("--show-records --reason follower: exit %d\n%s", code, out)
	}

	code, out, _ = kretry(ctx, "dlt", "inspect", "--json", brokers, "--show-records", dlt)
	var rep dltops.Report
	if err := json.Unmarshal([]byte(out), &rep); err != nil || code != exitOK {
		t.Fatalf("--json: exit %d, %v:\n%s", code, err, out)
	}
	if len(rep.Samples) != 3 || rep.Samples[0].NeverHandled || rep.Samples[0].Attempt != 1 ||
		!rep.Samples[1].NeverHandled || rep.Samples[1].Attempt != 0 || rep.Samples[2].Reason != retry.ReasonFollower {
		t.Errorf("--json samples %+v", rep.Samples)
	}
}

func TestDLTInspectUnreachableCluster(t *testing.T) {
	code, _, errOut := kretry(context.Background(), "dlt", "inspect", "--brokers", "127.0.0.1:1", "--request-timeout", "300ms", "d")
	if code != exitFailed || !strings.Contains(errOut, "cannot reach the cluster at 127.0.0.1:1") {
		t.Errorf("exit %d: %s", code, errOut)
	}
}

func TestDLTReplayCommand(t *testing.T) {
	f := newDLTFixture(t, 30)
	dir := t.TempDir()
	args := []string{"dlt", "replay", "--run", "fix-1", f.brokers(), "--state-dir", dir, "--topic", f.orders, f.dlt}
	ctx := context.Background()

	code, out, errOut := kretry(ctx, append([]string{"dlt", "replay", "--dry-run"}, args[2:]...)...)
	if code != exitOK || !regexp.MustCompile(`would send +30`).MatchString(out) ||
		!strings.Contains(out, "no original topic in the headers (use --to): 1") {
		t.Errorf("dry run: exit %d\n%s%s", code, out, errOut)
	}
	if n := len(f.c.ReadAll(f.orders)); n != 0 {
		t.Fatalf("dry run sent %d records", n)
	}

	// Interrupted (as by Ctrl-C) from the progress reporter, once 4 DLT
	// offsets are behind the replay.
	ictx, cancel := context.WithCancel(ctx)
	defer cancel()
	icode, iout, ierr := kretryReplay(ictx, replayEnv{progress: cancelAt(4, cancel)}, append(args[2:], "--progress", "plain")...)
	if icode != exitFailed || !strings.Contains(iout, "run fix-1: interrupted") ||
		!strings.Contains(ierr, "replay interrupted") ||
		!strings.Contains(ierr, "every record this attempt sent was acknowledged and is recorded in the state file; resume with the same command:\n  kretry dlt replay --run fix-1 ") ||
		!strings.Contains(ierr, " --state-dir "+dir+"\n") {
		t.Fatalf("interrupted: exit %d\nstdout:\n%s\nstderr:\n%s", icode, iout, ierr)
	}
	if n := len(f.c.ReadAll(f.orders)); n == 0 || n == 30 {
		t.Fatalf("%d records replayed by the interrupted attempt, want some", n)
	}

	// Another selection under the same run ID is refused.
	code, _, errOut = kretry(ctx, append(args, "--reason", "permanent")...)
	if code != exitUsage || !strings.Contains(errOut, "different selection") || !strings.Contains(errOut, "--reason: was (none), now permanent") {
		t.Errorf("other selection: exit %d: %s", code, errOut)
	}

	// The resume finishes; a record was skipped, so it exits 1.
	code, out, errOut = kretry(ctx, append(args, "--json")...)
	var res dltops.Result
	if err := json.Unmarshal([]byte(out), &res); err != nil || code != exitInvalid ||
		!strings.Contains(errOut, "run fix-1 finished without replaying every selected record: 1 skipped, 0 lost") {
		t.Fatalf("resume: exit %d %v\n%s%s", code, err, out, errOut)
	}
	if res.Status != dltops.ResultDone || res.Attempts != 2 || res.Totals.Sent != 30 || res.Totals.SkippedTotal() != 1 ||
		res.Totals.SkippedRecords[0].Source != f.dlt+"/0/15" {
		t.Errorf("resume result %+v", res)
	}
	got := replayed(f.c, f.orders, "fix-1")
	if len(got) != 30 {
		t.Errorf("%d sources replayed, want 30", len(got))
	}
	for src, n := range got {
		if n != 1 {
			t.Errorf("%s replayed %d times", src, n)
		}
	}

	code, out, _ = kretry(ctx, args...)
	if code != exitInvalid || !strings.Contains(out, "run fix-1 already finished at ") {
		t.Errorf("finished run again: exit %d\n%s", code, out)
	}
	if n := len(f.c.ReadAll(f.orders)); n != 30 {
		t.Errorf("%d records in %s, want 30", n, f.orders)
	}
	if _, err := dltops.LoadState(filepath.Join(dir, "kretry-replay-fix-1.json")); err != nil {
		t.Error(err)
	}
}

// kretryReplay runs "kretry dlt replay args" with env.
func kretryReplay(ctx context.Context, env replayEnv, args ...string) (int, string, string) {
	var stdout, stderr bytes.Buffer
	code := dltReplayWith(ctx, args, &stdout, &stderr, env)
	return code, stdout.String(), stderr.String()
}

// cancelAt wraps a progress reporter so that it calls cancel once done
// DLT offsets are behind the replay: an interrupt at a known point.
func cancelAt(done int64, cancel func()) func(dltops.Progress) dltops.Progress {
	return func(p dltops.Progress) dltops.Progress {
		return progressHook{p, func(s dltops.Snapshot) {
			if s.Done >= done {
				cancel()
			}
		}}
	}
}

type progressHook struct {
	dltops.Progress
	update func(dltops.Snapshot)
}

func (h progressHook) Update(s dltops.Snapshot) {
	h.update(s)
	h.Progress.Update(s)
}

// triggerWriter calls fn once, when what it has been written contains s.
type triggerWriter struct {
	bytes.Buffer
	s  string
	fn func()
}

func (w *triggerWriter) Write(p []byte) (int, error) {
	n, err := w.Buffer.Write(p)
	if w.fn != nil && strings.Contains(w.String(), w.s) {
		w.fn()
		w.fn = nil
	}
	return n, err
}

// A resume after an attempt that did not end cleanly says that it waits,
// until when and why, and Ctrl-C stops the wait without sending anything.
func TestDLTReplayWaitsAfterUncleanAttempt(t *testing.T) {
	f := newDLTFixture(t, 10)
	dir := t.TempDir()
	args := []string{"--run", "w", f.brokers(), "--state-dir", dir, "--progress", "none", "--topic", f.orders, f.dlt}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if code, _, errOut := kretryReplay(ctx, replayEnv{progress: cancelAt(3, cancel)}, args...); code != exitFailed {
		t.Fatalf("interrupted attempt: exit %d: %s", code, errOut)
	}
	// Make the state say that the attempt crashed, with a lease that runs
	// for another hour.
	path := filepath.Join(dir, "kretry-replay-w.json")
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var st map[string]any
	if err := json.Unmarshal(b, &st); err != nil {
		t.Fatal(err)
	}
	st["last"] = map[string]any{"handOverBy": time.Now().Add(time.Hour), "deliveryBoundNs": int64(70 * time.Second)}
	if b, err = json.Marshal(st); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
	sent := len(f.c.ReadAll(f.orders))

	wctx, wcancel := context.WithCancel(context.Background())
	defer wcancel()
	stderr := &triggerWriter{s: "waiting until", fn: wcancel}
	var stdout bytes.Buffer
	code := dltReplayWith(wctx, args, &stdout, stderr, replayEnv{})
	errOut := stderr.String()
	if code != exitFailed || !strings.Contains(errOut, "before reading the target topics: the previous attempt did not end (crashed or killed)") ||
		!strings.Contains(errOut, "replication margin 30s (replica.lag.time.max.ms)") || !strings.Contains(errOut, "Ctrl-C stops the wait") ||
		!strings.Contains(errOut, "this attempt sent nothing and left the state file as it was") {
		t.Errorf("interrupted wait: exit %d\n%s", code, errOut)
	}
	if n := len(f.c.ReadAll(f.orders)); n != sent {
		t.Errorf("%d records sent during the wait", n-sent)
	}
}

// Without --state-dir, the state goes to $XDG_STATE_HOME/kretry, created
// if needed, wherever the command runs.
func TestDLTReplayDefaultStateDir(t *testing.T) {
	f := newDLTFixture(t, 3)
	home := t.TempDir()
	t.Setenv("XDG_STATE_HOME", home)
	code, out, errOut := kretry(context.Background(), "dlt", "replay", "--run", "d", f.brokers(), "--progress", "none",
		"--error-type", "*net.OpError,*json.SyntaxError", "--topic", f.orders, f.dlt)
	state := filepath.Join(home, "kretry", "kretry-replay-d.json")
	if code != exitOK || !strings.Contains(out, "state file "+state+" (") {
		t.Fatalf("exit %d\n%s%s", code, out, errOut)
	}
	if _, err := os.Stat(state); err != nil {
		t.Error(err)
	}
}

// A plain (non-JSON) summary of a finished run.
func TestDLTReplaySummary(t *testing.T) {
	f := newDLTFixture(t, 6)
	other := f.c.Name("other")
	f.c.CreateTopic(other, 1)
	code, out, errOut := kretry(context.Background(), "dlt", "replay", "--run", "r", f.brokers(), "--state-dir", t.TempDir(),
		"--error-type", "*net.OpError", "--to", other, "--progress", "none", f.dlt)
	if code != exitOK {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	for _, want := range []string{
		`(?m)^run r: done in \S+ \(attempt 1\)$`,
		`(?m)^ +read +7 +DLT records \(this attempt 7\)$`,
		`(?m)^ +matched +4 *$`,
		`(?m)^ +sent +4 +\(this attempt 4, \d+ records/s\)$`,
		`(?m)^ +skipped +0 *$`,
		`(?m)^  per target topic \(sent, including already sent\), and who sees the records:\n +` + other + ` +4 +every group reading ` + other + ` \(no group has committed offsets on it yet\)$`,
		`(?m)^  state file .*kretry-replay-r.json \(\d+ checkpoints\)$`,
	} {
		if !regexp.MustCompile(want).MatchString(out) {
			t.Errorf("summary lacks %s:\n%s", want, out)
		}
	}
}

// The CLI reads DLT records Spring Kafka wrote (no kretry headers) from
// Spring's headers, and replays them to their original partition.
func TestDLTSpringRecords(t *testing.T) {
	c := kafkatest.New(t)
	dlt, orders := c.Name("orders-dlt"), c.Name("orders")
	c.CreateTopic(dlt, 1)
	c.CreateTopic(orders, 3)
	st := retry.State{Attempt: 2, OriginalTopic: orders, OriginalPartition: 1, OriginalOffset: 5,
		OriginalTimestamp: time.Now().Truncate(time.Millisecond), FirstFailure: time.Now().Truncate(time.Millisecond),
		ErrorType: "java.lang.IllegalStateException", Error: "db down", Reason: spring.ReasonSpring}
	c.ProduceToPartitions(&kgo.Record{Topic: dlt, Key: []byte("s"), Value: []byte("v"), Headers: spring.Append(nil, st, 0)})
	brokers := "--brokers=" + strings.Join(c.Seeds, ",")
	code, out, errOut := kretry(context.Background(), "dlt", "inspect", brokers, dlt)
	if code != exitOK || !regexp.MustCompile(`(?m)^java\.lang\.IllegalStateException +`+orders+` +\(none\) +<1h +1 .* spring=1$`).MatchString(out) {
		t.Errorf("inspect: exit %d\n%s%s", code, out, errOut)
	}
	code, out, errOut = kretry(context.Background(), "dlt", "replay", "--run", "s", brokers, "--state-dir", t.TempDir(), "--topic", orders, dlt)
	if code != exitOK {
		t.Fatalf("replay: exit %d\n%s%s", code, out, errOut)
	}
	got := c.ReadAll(orders)
	if len(got) != 1 || got[0].Partition != 1 || len(got[0].Headers) != 3 {
		t.Errorf("replayed %+v, want one record on partition 1 with the 3 audit headers only", got)
	}
}
