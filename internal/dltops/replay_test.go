package dltops

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/kretry/kretry/internal/kafkatest"
	"github.com/kretry/kretry/retry"
	"github.com/kretry/kretry/retry/spring"
)

// replayFixture is a DLT of 2 partitions holding n records dead-lettered
// from orders (4 partitions), spread over its partitions, and the config
// of a replay of it.
type replayFixture struct {
	c       *kafkatest.Cluster
	dlt     string
	orders  string
	records []*kgo.Record // as produced, in order
	cfg     ReplayConfig
}

func newReplayFixture(t *testing.T, n int) *replayFixture {
	c := kafkatest.New(t)
	f := &replayFixture{c: c, dlt: c.Name("orders-dlt"), orders: c.Name("orders")}
	c.CreateTopic(f.dlt, 2)
	c.CreateTopic(f.orders, 4)
	now := time.Now()
	for i := range n {
		d := dead{key: fmt.Sprintf("k%03d", i), origTopic: f.orders, origPart: int32(i % 4), origOffset: int64(i),
			errType: "*net.OpError", reason: retry.ReasonExhausted, age: 48 * time.Hour, dltPart: int32(i % 2),
			headers: []kgo.RecordHeader{{Key: "trace-id", Value: []byte{byte(i), 0, 0xff}}}}
		if i%5 == 0 {
			d.errType = "*json.SyntaxError"
		}
		f.records = append(f.records, deadLetter(f.dlt, d, now))
	}
	c.ProduceToPartitions(f.records...)
	// A fake clock: a resume after a crash waits on it, at once.
	f.cfg = ReplayConfig{Run: "run-1", DLTs: []string{f.dlt}, StateDir: t.TempDir(), ClientOpts: opts(c), Clock: newFakeClock()}
	return f
}

// sources returns the TOPIC/PARTITION/OFFSET of the DLT records whose
// keys match, read back from the DLT.
func (f *replayFixture) sources(t *testing.T, match func(key string) bool) []string {
	var out []string
	for _, r := range f.c.ReadAll(f.dlt) {
		if match(string(r.Key)) {
			out = append(out, SourceOf(r))
		}
	}
	slices.Sort(out)
	return out
}

// exactlyOnce fails t unless the records of run in topic come from exactly
// the sources want, each once.
func exactlyOnce(t *testing.T, c *kafkatest.Cluster, topic, run string, want []string) {
	t.Helper()
	got := replayedFrom(c, topic, run)
	for _, src := range want {
		if got[src] != 1 {
			t.Errorf("%s: %s sent %d times by %s, want once", topic, src, got[src], run)
		}
		delete(got, src)
	}
	for src, n := range got {
		t.Errorf("%s: %s sent %d times by %s, want never", topic, src, n, run)
	}
}

func all(string) bool { return true }

func TestReplayResetsHeadersKeepsBytesAndPartition(t *testing.T) {
	f := newReplayFixture(t, 8)
	ctx := testCtx(t)
	// Extra user headers on one record, and Spring's, and an older replay's.
	src := deadLetter(f.dlt, dead{key: "special", origTopic: f.orders, origPart: 3, errType: "e", age: 72 * time.Hour,
		headers: []kgo.RecordHeader{{Key: "b", Value: []byte{0, 0}}, {Key: "kafka_dlt-exception-fqcn", Value: []byte("x")},
			{Key: "b", Value: nil}, {Key: retry.HeaderReplayRun, Value: []byte("old")}, {Key: "z", Value: []byte{}}}}, time.Now())
	src.Value = []byte{0xde, 0xad, 0xbe, 0xef, 0}
	f.c.ProduceToPartitions(src)
	before := time.Now().Add(-time.Second)
	res, err := Replay(ctx, f.cfg)
	if err != nil {
		t.Fatal(err)
	}
	if res.Status != ResultDone || res.Totals.Sent != 9 || res.Totals.SentTo[f.orders] != 9 || res.Totals.Read != 9 {
		t.Fatalf("result %+v", res)
	}
	out := f.c.ReadAll(f.orders)
	if len(out) != 9 {
		t.Fatalf("%s holds %d records, want 9", f.orders, len(out))
	}
	dltRecs := map[string]*kgo.Record{}
	for _, r := range f.c.ReadAll(f.dlt) {
		dltRecs[SourceOf(r)] = r
	}
	for _, r := range out {
		from, _ := header(r, retry.HeaderReplayedFrom)
		in := dltRecs[from]
		if in == nil {
			t.Fatalf("record replayed from %q, not a DLT record", from)
		}
		st, _, _ := retry.Decode(in.Headers)
		if r.Partition != st.OriginalPartition {
			t.Errorf("%s went to partition %d, want its original %d", from, r.Partition, st.OriginalPartition)
		}
		if !bytes.Equal(r.Key, in.Key) || !bytes.Equal(r.Value, in.Value) {
			t.Errorf("%s: key/value %q %x, want %q %x", from, r.Key, r.Value, in.Key, in.Value)
		}
		var wantHeaders []kgo.RecordHeader
		for _, h := range in.Headers {
			if !IsRetryHeader(h.Key) {
				wantHeaders = append(wantHeaders, h)
			}
		}
		n := len(r.Headers)
		if n != len(wantHeaders)+3 {
			t.Fatalf("%s: headers %v, want %v and the 3 audit headers", from, r.Headers, wantHeaders)
		}
		for i, h := range wantHeaders {
			if r.Headers[i].Key != h.Key || !bytes.Equal(r.Headers[i].Value, h.Value) || (r.Headers[i].Value == nil) != (h.Value == nil) {
				t.Errorf("%s: header %d = %q:%x, want %q:%x", from, i, r.Headers[i].Key, r.Headers[i].Value, h.Key, h.Value)
			}
		}
		if r.Headers[n-3].Key != retry.HeaderReplayRun || string(r.Headers[n-3].Value) != "run-1" ||
			r.Headers[n-2].Key != retry.HeaderReplayedFrom || r.Headers[n-1].Key != retry.HeaderReplayedAt {
			t.Errorf("%s: audit headers %v", from, r.Headers[n-3:])
		}
		if _, ok, _ := retry.Decode(r.Headers); ok {
			t.Errorf("%s: replayed record still carries kretry headers", from)
		}
		if string(r.Key) == "special" {
			// A nil header value (length -1 on the wire) stays nil, an
			// empty one stays empty.
			var b, z []kgo.RecordHeader
			for _, h := range r.Headers {
				switch h.Key {
				case "b":
					b = append(b, h)
				case "z":
					z = append(z, h)
				}
			}
			if len(b) != 2 || b[0].Value == nil || len(b[0].Value) != 2 || b[1].Value != nil ||
				len(z) != 1 || z[0].Value == nil || len(z[0].Value) != 0 {
				t.Errorf("special: headers b %#v and z %#v, want b [0 0], b nil and z empty (not nil)", b, z)
			}
		}
		if r.Timestamp.Before(before) {
			t.Errorf("%s: timestamp %v, want the replay time (after %v)", from, r.Timestamp, before)
		}
	}
	st, err := LoadState(StatePath(f.cfg.StateDir, "run-1"))
	if err != nil || st.Status != StatusDone {
		t.Fatalf("state %+v %v, want done", st, err)
	}
	// A finished run sends nothing again.
	again, err := Replay(ctx, f.cfg)
	if err != nil || again.Status != ResultAlreadyDone || again.Totals.Sent != 9 {
		t.Fatalf("second run: %+v %v, want already done", again, err)
	}
	if n := len(f.c.ReadAll(f.orders)); n != 9 {
		t.Errorf("%s holds %d records after the second run, want 9", f.orders, n)
	}
}

// A topic with fewer partitions than the original partition gets the
// record by key; --to sends by key too.
func TestReplayByKeyAndTo(t *testing.T) {
	c := kafkatest.New(t)
	dlt, small, other := c.Name("dlt"), c.Name("small"), c.Name("other")
	c.CreateTopic(dlt, 1)
	c.CreateTopic(small, 2)
	c.CreateTopic(other, 3)
	now := time.Now()
	c.ProduceToPartitions(
		deadLetter(dlt, dead{key: "a", origTopic: small, origPart: 7, errType: "e"}, now),
		deadLetter(dlt, dead{key: "b", origTopic: small, origPart: 1, errType: "e"}, now))
	cfg := ReplayConfig{Run: "r", DLTs: []string{dlt}, StateDir: t.TempDir(), ClientOpts: opts(c)}
	if _, err := Replay(testCtx(t), cfg); err != nil {
		t.Fatal(err)
	}
	parts := map[string]int32{}
	for _, r := range c.ReadAll(small) {
		parts[string(r.Key)] = r.Partition
	}
	// murmur2("a") % 2, as Kafka's default partitioner computes it.
	wantA := int32(kgoKeyPartition([]byte("a"), 2))
	if len(parts) != 2 || parts["a"] != wantA || parts["b"] != 1 {
		t.Errorf("partitions %v, want a by key (%d) and b on its original 1", parts, wantA)
	}
	cfg.Run, cfg.To = "r2", other
	res, err := Replay(testCtx(t), cfg)
	if err != nil || res.Totals.SentTo[other] != 2 {
		t.Fatalf("--to: %+v %v", res, err)
	}
	for _, r := range c.ReadAll(other) {
		if want := int32(kgoKeyPartition(r.Key, 3)); r.Partition != want {
			t.Errorf("--to: %s on partition %d, want %d by key", r.Key, r.Partition, want)
		}
	}
}

// kgoKeyPartition is the partition kgo's key partitioner picks.
func kgoKeyPartition(key []byte, n int) int {
	p := kgo.StickyKeyPartitioner(nil).ForTopic("t")
	return p.Partition(&kgo.Record{Key: key}, n)
}

func TestReplayFilters(t *testing.T) {
	f := newReplayFixture(t, 20)
	f.cfg.Filter = Filter{ErrorTypes: []string{"*json.SyntaxError"}}
	res, err := Replay(testCtx(t), f.cfg)
	if err != nil {
		t.Fatal(err)
	}
	want := f.sources(t, func(k string) bool { var i int; fmt.Sscanf(k, "k%d", &i); return i%5 == 0 })
	if res.Totals.Read != 20 || res.Totals.Matched != 4 || res.Totals.Sent != 4 || len(want) != 4 {
		t.Errorf("totals %+v, want 20 read, 4 matched and sent", res.Totals)
	}
	exactlyOnce(t, f.c, f.orders, "run-1", want)
	f.cfg.Run = "by-key"
	f.cfg.Filter = Filter{Key: []byte("k007"), HasKey: true}
	if _, err := Replay(testCtx(t), f.cfg); err != nil {
		t.Fatal(err)
	}
	exactlyOnce(t, f.c, f.orders, "by-key", f.sources(t, func(k string) bool { return k == "k007" }))
}

func TestReplayDryRunSendsAndWritesNothing(t *testing.T) {
	f := newReplayFixture(t, 10)
	f.cfg.DryRun = true
	res, err := Replay(testCtx(t), f.cfg)
	if err != nil {
		t.Fatal(err)
	}
	if res.Status != ResultDryRun || res.Totals.SentTo[f.orders] != 10 || res.Totals.Sent != 0 {
		t.Errorf("dry run result %+v", res)
	}
	if n := len(f.c.ReadAll(f.orders)); n != 0 {
		t.Errorf("dry run sent %d records", n)
	}
	if entries, _ := os.ReadDir(f.cfg.StateDir); len(entries) != 0 {
		t.Errorf("dry run wrote %d files to the state dir", len(entries))
	}
}

// With a fake clock, the rate limit shows as the time the replay waited.
func TestReplayRateLimit(t *testing.T) {
	f := newReplayFixture(t, 30)
	clock := newFakeClock()
	f.cfg.Clock, f.cfg.Rate = clock, 10 // burst 1
	res, err := Replay(testCtx(t), f.cfg)
	if err != nil {
		t.Fatal(err)
	}
	if res.Totals.Sent != 30 {
		t.Fatalf("sent %d, want 30", res.Totals.Sent)
	}
	// 30 records at 10/s: the first at once, then one every 100ms.
	if w := clock.Waited(); w < 2900*time.Millisecond || w > 3*time.Second {
		t.Errorf("waited %v for 30 records at 10/s, want 2.9s", w)
	}
	f2 := newReplayFixture(t, 30)
	clock2 := newFakeClock()
	f2.cfg.Clock = clock2
	if _, err := Replay(testCtx(t), f2.cfg); err != nil {
		t.Fatal(err)
	}
	if w := clock2.Waited(); w != 0 {
		t.Errorf("waited %v without a rate limit", w)
	}
}

// A crash after sends that no checkpoint covers: the next attempt finds
// them in the target and sends every record exactly once.
func TestReplayResumeAfterCrashSendsNothingTwice(t *testing.T) {
	f := newReplayFixture(t, 40)
	f.cfg.CheckpointEvery = 7
	crashed := f.cfg
	crashed.hooks.crash = func(read, sends int64) bool { return sends == 17 }
	if _, err := Replay(testCtx(t), crashed); !errors.Is(err, errCrash) {
		t.Fatalf("first attempt: %v, want the simulated crash", err)
	}
	st, err := LoadState(StatePath(f.cfg.StateDir, "run-1"))
	if err != nil || st.Status != StatusRunning || st.Totals.Sent != 14 {
		t.Fatalf("state after the crash: %+v %v, want running with 14 sent at the last checkpoint", st, err)
	}
	if got := replayedFrom(f.c, f.orders, "run-1"); len(got) != 17 {
		t.Fatalf("%d records landed before the crash, want 17", len(got))
	}
	res, err := Replay(testCtx(t), f.cfg)
	if err != nil {
		t.Fatal(err)
	}
	if res.Status != ResultDone || res.Totals.AlreadySent != 3 || res.Totals.Sent != 37 || res.AttemptSent != 23 ||
		res.Attempts != 2 || res.ResumeScanned == 0 {
		t.Errorf("resume result %+v, want 3 already sent, 37 sent in all, 23 by this attempt", res)
	}
	exactlyOnce(t, f.c, f.orders, "run-1", f.sources(t, all))

	// Another run ID replays again, once.
	f.cfg.Run = "run-2"
	if _, err := Replay(testCtx(t), f.cfg); err != nil {
		t.Fatal(err)
	}
	exactlyOnce(t, f.c, f.orders, "run-2", f.sources(t, all))
	exactlyOnce(t, f.c, f.orders, "run-1", f.sources(t, all))
}

// The records an earlier attempt sent ahead of the last checkpoint stay in
// the state when a resumed attempt checkpoints before reaching them: a
// third attempt must not send them again.
func TestReplaySentAheadSurvivesCheckpoints(t *testing.T) {
	f := newReplayFixture(t, 30)
	f.cfg.CheckpointEvery = 10
	first := f.cfg
	first.hooks.crash = func(read, sends int64) bool { return sends == 8 }
	if _, err := Replay(testCtx(t), first); !errors.Is(err, errCrash) {
		t.Fatalf("first attempt: %v", err)
	}
	// Checkpoints after every record, then a crash before passing all the
	// sources the first attempt sent.
	second := f.cfg
	second.CheckpointEvery = 1
	second.hooks.crash = func(read, sends int64) bool { return read == 3 }
	if _, err := Replay(testCtx(t), second); !errors.Is(err, errCrash) {
		t.Fatalf("second attempt: %v", err)
	}
	st, err := LoadState(StatePath(f.cfg.StateDir, "run-1"))
	if err != nil {
		t.Fatal(err)
	}
	if len(st.SentAhead) == 0 {
		t.Errorf("state after the second attempt lists nothing sent ahead: %+v", st)
	}
	res, err := Replay(testCtx(t), f.cfg)
	if err != nil {
		t.Fatal(err)
	}
	if res.Totals.AlreadySent != 8 || res.Totals.Sent+res.Totals.AlreadySent != 30 {
		t.Errorf("totals %+v, want 8 already sent, 30 in all", res.Totals)
	}
	exactlyOnce(t, f.c, f.orders, "run-1", f.sources(t, all))
}

// An interrupt (ctx canceled) flushes and checkpoints: the resume finds
// nothing sent ahead and completes the run.
func TestReplayInterruptCheckpointsAndResumes(t *testing.T) {
	f := newReplayFixture(t, 30)
	ctx, cancel := context.WithCancel(testCtx(t))
	interrupted := f.cfg
	interrupted.Progress = progressFunc(func(s Snapshot) {
		if s.Done >= 12 {
			cancel()
		}
	})
	res, err := Replay(ctx, interrupted)
	if !errors.Is(err, ErrInterrupted) || !errors.Is(err, context.Canceled) || res == nil || res.Status != ResultInterrupted {
		t.Fatalf("interrupted attempt: %+v %v", res, err)
	}
	st, err := LoadState(StatePath(f.cfg.StateDir, "run-1"))
	if err != nil || st.Status != StatusRunning || st.Totals.Sent != res.Totals.Sent || st.Totals.Sent < 12 {
		t.Fatalf("state %+v %v: want the interrupted attempt's %d sends checkpointed", st, err, res.Totals.Sent)
	}
	if got := len(replayedFrom(f.c, f.orders, "run-1")); int64(got) != st.Totals.Sent {
		t.Errorf("%d records in the target, the checkpoint says %d", got, st.Totals.Sent)
	}
	res, err = Replay(testCtx(t), f.cfg)
	if err != nil || res.Status != ResultDone || res.Totals.AlreadySent != 0 || res.Totals.Sent != 30 {
		t.Fatalf("resume: %+v %v", res, err)
	}
	exactlyOnce(t, f.c, f.orders, "run-1", f.sources(t, all))
}

type progressFunc func(Snapshot)

func (p progressFunc) Update(s Snapshot) { p(s) }
func (p progressFunc) Finish(Snapshot)   {}

func TestReplayRefusesAnotherSelection(t *testing.T) {
	f := newReplayFixture(t, 10)
	crashed := f.cfg
	crashed.hooks.crash = func(read, sends int64) bool { return sends == 3 }
	if _, err := Replay(testCtx(t), crashed); !errors.Is(err, errCrash) {
		t.Fatal(err)
	}
	for name, change := range map[string]func(*ReplayConfig){
		"error type": func(c *ReplayConfig) { c.Filter.ErrorTypes = []string{"x"} },
		"to":         func(c *ReplayConfig) { c.To = f.orders },
		"since":      func(c *ReplayConfig) { c.Filter.Since = TimeBound{Expr: "1h", At: time.Now()} },
		"DLTs":       func(c *ReplayConfig) { c.DLTs = []string{f.dlt, f.c.Name("other")} },
	} {
		cfg := f.cfg
		change(&cfg)
		_, err := Replay(testCtx(t), cfg)
		if !errors.Is(err, ErrSelectionChanged) {
			t.Errorf("%s changed: %v, want ErrSelectionChanged", name, err)
		}
	}
	if got := len(replayedFrom(f.c, f.orders, "run-1")); got != 3 {
		t.Errorf("%d records sent, want the 3 of the crashed attempt", got)
	}
	// The same relative --since is accepted, and keeps its first instant.
	if _, err := Replay(testCtx(t), f.cfg); err != nil {
		t.Fatal(err)
	}
	exactlyOnce(t, f.c, f.orders, "run-1", f.sources(t, all))
}

// Records that name no original topic are skipped and listed, unless --to
// says where they go.
func TestReplaySkipsRecordsWithoutOriginalTopic(t *testing.T) {
	f := newReplayFixture(t, 4)
	now := time.Now()
	f.c.ProduceToPartitions(corruptRecord(f.dlt, 0, "x", "", now), corruptRecord(f.dlt, 1, "y", f.orders, now),
		&kgo.Record{Topic: f.dlt, Partition: 1, Key: []byte("plain"), Value: []byte("v")})
	res, err := Replay(testCtx(t), f.cfg)
	if err != nil {
		t.Fatal(err)
	}
	if res.Totals.Sent != 5 || res.Totals.Skipped[SkipNoTopic] != 2 || len(res.Totals.SkippedRecords) != 2 ||
		!strings.Contains(res.Totals.SkippedRecords[0].Error+res.Totals.SkippedRecords[1].Error, retry.HeaderAttempt) {
		t.Errorf("totals %+v: want 5 sent (4 and the corrupt one with its original topic), 2 skipped and listed", res.Totals)
	}
	other := f.c.Name("other")
	f.c.CreateTopic(other, 1)
	f.cfg.Run, f.cfg.To = "to", other
	res, err = Replay(testCtx(t), f.cfg)
	if err != nil || res.Totals.Sent != 7 || res.Totals.SkippedTotal() != 0 {
		t.Errorf("--to: %+v %v, want all 7 sent", res, err)
	}
}

// A record whose original topic does not exist is skipped and listed,
// with the topic and the header that named it; the others are sent, and
// the run finishes (a resume would not stop at it). With --to, a missing
// topic stops the run before sending anything.
func TestReplaySkipsRecordsWhoseTopicDoesNotExist(t *testing.T) {
	c := kafkatest.New(t)
	dlt, orders, gone := c.Name("dlt"), c.Name("orders"), c.Name("gone")
	c.CreateTopic(dlt, 1)
	c.CreateTopic(orders, 1)
	now := time.Now()
	c.ProduceToPartitions(deadLetter(dlt, dead{key: "a", origTopic: gone, errType: "e"}, now),
		deadLetter(dlt, dead{key: "b", origTopic: orders, errType: "e"}, now),
		deadLetter(dlt, dead{key: "c", origTopic: gone, errType: "e"}, now))
	cfg := ReplayConfig{Run: "r", DLTs: []string{dlt}, StateDir: t.TempDir(), ClientOpts: opts(c), Clock: newFakeClock()}
	res, err := Replay(testCtx(t), cfg)
	if err != nil || res.Status != ResultDone || res.Totals.Sent != 1 || res.Totals.Skipped[SkipNoSuchTopic] != 2 || !res.Incomplete() {
		t.Fatalf("replay with a missing original topic: %+v %v", res, err)
	}
	want := SkippedRecord{Source: dlt + "/0/0", Reason: SkipNoSuchTopic, Target: gone, TargetFrom: retry.HeaderOriginalTopic}
	if len(res.Totals.SkippedRecords) != 2 || res.Totals.SkippedRecords[0] != want {
		t.Errorf("skipped %+v, want first %+v", res.Totals.SkippedRecords, want)
	}
	exactlyOnce(t, c, orders, "r", []string{dlt + "/0/1"})

	cfg.Run, cfg.To = "to", gone
	res, err = Replay(testCtx(t), cfg)
	if err == nil || !strings.Contains(err.Error(), "--to topic "+gone+" does not exist") || res.Status != ResultFailed {
		t.Errorf("replay --to a missing topic: %+v %v", res, err)
	}
}

func TestReplayConfigErrors(t *testing.T) {
	for name, cfg := range map[string]ReplayConfig{
		"run":  {Run: "a/b", DLTs: []string{"d"}},
		"dots": {Run: "..", DLTs: []string{"d"}},
		"dlts": {Run: "r"},
		"to":   {Run: "r", DLTs: []string{"d"}, To: "d"},
		"rate": {Run: "r", DLTs: []string{"d"}, Rate: -1},
	} {
		if _, err := Replay(context.Background(), cfg); !errors.Is(err, ErrConfig) {
			t.Errorf("%s: %v, want ErrConfig", name, err)
		}
	}
}

// A DLT record Spring Kafka wrote is read from its headers by the Spring
// fallback and replayed to its original partition without any of them.
func TestReplaySpringRecord(t *testing.T) {
	f := newReplayFixture(t, 0)
	st := retry.State{Attempt: 3, OriginalTopic: f.orders, OriginalPartition: 2, OriginalOffset: 7,
		OriginalTimestamp: time.Now().Add(-time.Hour).Truncate(time.Millisecond), FirstFailure: time.Now().Truncate(time.Millisecond),
		Error: "Listener failed", ErrorType: "java.lang.IllegalStateException", Reason: spring.ReasonSpring}
	rec := &kgo.Record{Topic: f.dlt, Partition: 1, Key: []byte("s"), Value: []byte("v"),
		Headers: spring.Append([]kgo.RecordHeader{{Key: "trace-id", Value: []byte("t")}}, st, 0)}
	rec.Headers = append(rec.Headers, kgo.RecordHeader{Key: "kafka_dlt-original-consumer-group", Value: []byte("g")})
	f.c.ProduceToPartitions(rec)

	dec := Decoder{Fallback: spring.DecodeDeadLetter}
	rep, err := Inspect(testCtx(t), InspectConfig{DLTs: []string{f.dlt}, ClientOpts: opts(f.c), Decoder: dec})
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Groups) != 1 || rep.Groups[0].ErrorType != "java.lang.IllegalStateException" ||
		rep.Groups[0].OriginalTopic != f.orders || rep.Groups[0].Reasons[spring.ReasonSpring] != 1 {
		t.Errorf("groups %+v", rep.Groups)
	}
	f.cfg.Decoder = dec
	res, err := Replay(testCtx(t), f.cfg)
	if err != nil || res.Totals.Sent != 1 {
		t.Fatalf("%+v %v", res, err)
	}
	out := f.c.ReadAll(f.orders)
	if len(out) != 1 || out[0].Partition != 2 {
		t.Fatalf("replayed %+v, want one record on partition 2", out)
	}
	var keys []string
	for _, h := range out[0].Headers {
		keys = append(keys, h.Key)
	}
	if want := []string{"trace-id", retry.HeaderReplayRun, retry.HeaderReplayedFrom, retry.HeaderReplayedAt}; !slices.Equal(keys, want) {
		t.Errorf("headers %v, want %v", keys, want)
	}
}

// DLT records that retention deletes before the replay reads them are
// counted as lost, by range, and the run says it is incomplete; the
// records that remain are sent once.
func TestReplayCountsLostRecords(t *testing.T) {
	f := newReplayFixture(t, 20)
	f.cfg.CheckpointEvery = 4
	crashed := f.cfg
	crashed.hooks.crash = func(read, _ int64) bool { return read == 4 } // right after a checkpoint
	if _, err := Replay(testCtx(t), crashed); !errors.Is(err, errCrash) {
		t.Fatal(err)
	}
	st, err := LoadState(StatePath(f.cfg.StateDir, "run-1"))
	if err != nil {
		t.Fatal(err)
	}
	var want int64
	var wantRanges []LostRange
	sources := f.sources(t, func(string) bool { return true })
	for p := range int32(2) {
		deleteRecords(t, f.c, f.dlt, p, 7)
		if next := st.Sources[f.dlt][p].Next; next < 7 {
			want += 7 - next
			wantRanges = append(wantRanges, LostRange{f.dlt, p, next, 7})
			for o := next; o < 7; o++ {
				sources = slices.DeleteFunc(sources, func(s string) bool { return s == fmt.Sprintf("%s/%d/%d", f.dlt, p, o) })
			}
		}
	}
	res, err := Replay(testCtx(t), f.cfg)
	if err != nil || res.Status != ResultDone || !res.Incomplete() || res.Totals.Lost != want || want == 0 {
		t.Fatalf("resume: %+v %v; want done with %d lost", res, err, want)
	}
	got := slices.Clone(res.Totals.LostRanges)
	slices.SortFunc(got, func(a, b LostRange) int { return int(a.Partition - b.Partition) })
	if !slices.Equal(got, wantRanges) {
		t.Errorf("lost ranges %+v, want %+v", got, wantRanges)
	}
	if res.Totals.Sent+res.Totals.Lost != 20 {
		t.Errorf("totals %+v: want every record sent or lost", res.Totals)
	}
	exactlyOnce(t, f.c, f.orders, "run-1", sources)
}

// A record the cluster refuses (larger than its topic's max.message.bytes)
// is sent again alone and, refused again, skipped with the cluster's
// error, its topic and the header that named it; the records batched with
// it are sent; the run finishes, incomplete.
func TestReplaySkipsRecordsTheClusterRefuses(t *testing.T) {
	c := kafkatest.New(t)
	dlt, small := c.Name("dlt"), c.Name("small")
	c.CreateTopic(dlt, 1)
	limit := "2000"
	ctx := testCtx(t)
	resp, err := c.Admin.CreateTopic(ctx, 1, -1, map[string]*string{"max.message.bytes": &limit}, small)
	if err == nil {
		err = resp.Err
	}
	if err == nil {
		err = kafkatest.WaitTopic(ctx, c.Admin, small, 1)
	}
	if err != nil {
		t.Fatalf("create %s: %v", small, err)
	}
	now := time.Now()
	rng := rand.NewChaCha8([32]byte{})
	var recs []*kgo.Record
	for i := range 12 {
		r := deadLetter(dlt, dead{key: fmt.Sprintf("k%02d", i), origTopic: small, errType: "e"}, now)
		// Random bytes, so that compression does not shrink them: a few
		// fit in one batch, not all, and one not at all.
		r.Value = make([]byte, 300)
		if i == 5 {
			r.Value = make([]byte, 5000)
		}
		rng.Read(r.Value)
		recs = append(recs, r)
	}
	c.ProduceToPartitions(recs...)
	res, err := Replay(ctx, ReplayConfig{Run: "big", DLTs: []string{dlt}, StateDir: t.TempDir(), ClientOpts: opts(c), Clock: newFakeClock(),
		hooks: hooks{prodOpts: []kgo.Opt{kgo.ProducerLinger(50 * time.Millisecond)}}})
	if err != nil || res.Status != ResultDone || res.Totals.Sent != 11 || res.Totals.Skipped[SkipRejected] != 1 || !res.Incomplete() {
		t.Fatalf("replay: %+v %v; want 11 sent and 1 skipped as refused", res, err)
	}
	s := res.Totals.SkippedRecords[0]
	if s.Source != dlt+"/0/5" || s.Target != small || s.TargetFrom != retry.HeaderOriginalTopic || !strings.Contains(s.Error, "MESSAGE_TOO_LARGE") {
		t.Errorf("skipped %+v", s)
	}
	var want []string
	for i := range int64(12) {
		if i != 5 {
			want = append(want, fmt.Sprintf("%s/0/%d", dlt, i))
		}
	}
	exactlyOnce(t, c, small, "big", want)
}

// A dry run on the state of a crashed run counts what this attempt would
// send: neither what earlier attempts sent nor what they sent after their
// last checkpoint (found in the target).
func TestReplayDryRunAfterCrash(t *testing.T) {
	f := newReplayFixture(t, 10)
	f.cfg.CheckpointEvery = 5
	crashed := f.cfg
	crashed.hooks.crash = func(_, sends int64) bool { return sends == 7 }
	if _, err := Replay(testCtx(t), crashed); !errors.Is(err, errCrash) {
		t.Fatal(err)
	}
	dry := f.cfg
	dry.DryRun = true
	res, err := Replay(testCtx(t), dry)
	if err != nil || res.Status != ResultDryRun || res.AttemptWouldSend != 3 || res.WouldSendTo[f.orders] != 3 ||
		res.Totals.AlreadySent != 2 || !res.Unsettled {
		t.Fatalf("dry run: %+v %v; want 3 to send, 2 already sent, unsettled", res, err)
	}
	if got := len(replayedFrom(f.c, f.orders, "run-1")); got != 7 {
		t.Errorf("%d records in the target after the dry run, want the 7 of the crashed attempt", got)
	}
}
