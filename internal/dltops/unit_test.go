package dltops

import (
	"bytes"
	"context"
	"errors"
	"maps"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/kretry/kretry/retry"
)

var now = time.Date(2026, 3, 14, 12, 0, 0, 0, time.UTC)

func TestParseTimeBound(t *testing.T) {
	tests := []struct {
		expr string
		want time.Time
		err  string
	}{
		{"", time.Time{}, ""},
		{"2026-01-02T15:04:05Z", time.Date(2026, 1, 2, 15, 4, 5, 0, time.UTC), ""},
		{"2026-01-02T16:04:05+01:00", time.Date(2026, 1, 2, 15, 4, 5, 0, time.UTC), ""},
		{"90m", now.Add(-90 * time.Minute), ""},
		{"7d", now.Add(-7 * 24 * time.Hour), ""},
		{"-1h", time.Time{}, "must not be negative"},
		{"yesterday", time.Time{}, "want an RFC 3339 time"},
		{"xd", time.Time{}, "days such as 7d"},
	}
	for _, tt := range tests {
		got, err := ParseTimeBound(tt.expr, now)
		if tt.err != "" {
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("ParseTimeBound(%q) error %v, want %q", tt.expr, err, tt.err)
			}
			continue
		}
		if err != nil || !got.At.Equal(tt.want) || got.Expr != tt.expr {
			t.Errorf("ParseTimeBound(%q) = %+v, %v; want %v", tt.expr, got, err, tt.want)
		}
	}
}

func TestFilterMatch(t *testing.T) {
	rec := deadLetter("d", dead{key: "k1", origTopic: "orders", errType: "*net.OpError", reason: "exhausted", age: time.Hour}, now)
	info := Decoder{}.Decode(rec)
	if info.Kind != KindKretry {
		t.Fatalf("decoded %+v, want kretry", info)
	}
	at := func(expr string) TimeBound { b, _ := ParseTimeBound(expr, now); return b }
	tests := []struct {
		name string
		f    Filter
		want bool
	}{
		{"zero", Filter{}, true},
		{"error type", Filter{ErrorTypes: []string{"x", "*net.OpError"}}, true},
		{"other error type", Filter{ErrorTypes: []string{"*net.OpErr"}}, false},
		{"reason", Filter{Reasons: []string{"exhausted"}}, true},
		{"other reason", Filter{Reasons: []string{"timeout"}}, false},
		{"topic", Filter{OriginalTopics: []string{"orders"}}, true},
		{"other topic", Filter{OriginalTopics: []string{"payments"}}, false},
		{"since before", Filter{Since: at("2h")}, true},
		{"since after", Filter{Since: at("30m")}, false},
		{"since equal", Filter{Since: at("1h")}, true},
		{"until after", Filter{Until: at("30m")}, true},
		{"until equal", Filter{Until: at("1h")}, false},
		{"key", Filter{Key: []byte("k1"), HasKey: true}, true},
		{"other key", Filter{Key: []byte("k2"), HasKey: true}, false},
		{"all", Filter{ErrorTypes: []string{"*net.OpError"}, Reasons: []string{"exhausted"}, Key: []byte("k1"), HasKey: true}, true},
	}
	for _, tt := range tests {
		if got := tt.f.Match(rec, info); got != tt.want {
			t.Errorf("%s: Match = %v, want %v", tt.name, got, tt.want)
		}
	}
}

func TestDecodeKinds(t *testing.T) {
	withTopic := corruptRecord("d", 0, "c", "orders", now)
	withTopic.Offset = 5
	if info := (Decoder{}).Decode(withTopic); info.Kind != KindCorrupt || !info.Salvaged ||
		info.OriginalTopic() != "orders" || info.ErrorType() != LabelCorrupt || info.Err == nil {
		t.Errorf("corrupt with original headers: %+v", info)
	}
	noTopic := corruptRecord("d", 0, "c", "", now)
	if info := (Decoder{}).Decode(noTopic); info.Kind != KindCorrupt || info.Salvaged || info.target() != "" ||
		info.OriginalTopic() != LabelUnknown {
		t.Errorf("corrupt without original topic: %+v", info)
	}
	plain := &kgo.Record{Topic: "d", Headers: []kgo.RecordHeader{{Key: "trace", Value: []byte("x")}}}
	if info := (Decoder{}).Decode(plain); info.Kind != KindNone || info.ErrorType() != LabelNoHeaders || info.Reason() != LabelUnknown {
		t.Errorf("no headers: %+v", info)
	}
	// The fallback reads what kretry's headers do not.
	fb := Decoder{Fallback: func([]kgo.RecordHeader) (retry.State, bool, error) {
		return retry.State{OriginalTopic: "spring-orders", OriginalPartition: 2, ErrorType: "java.lang.IllegalStateException"}, true, nil
	}}
	if info := fb.Decode(plain); info.Kind != KindFallback || info.target() != "spring-orders" || info.ErrorType() != "java.lang.IllegalStateException" {
		t.Errorf("fallback: %+v", info)
	}
}

func TestIsRetryHeader(t *testing.T) {
	for key, want := range map[string]bool{
		retry.HeaderAttempt: true, retry.HeaderReason: true, retry.HeaderError: true,
		retry.HeaderReplayRun: true, retry.HeaderReplayedFrom: true, retry.HeaderReplayedAt: true,
		"kafka_original-topic": true, "kafka_exception-fqcn": true, "kafka_dlt-original-offset": true,
		"retry_topic-attempts": true, "retry_topic-backoff-timestamp": true, "kafka_key-exception-fqcn": true,
		"kretry-future": false, "trace-id": false, "kafka_originaltopic": false, "": false,
	} {
		if got := IsRetryHeader(key); got != want {
			t.Errorf("IsRetryHeader(%q) = %v, want %v", key, got, want)
		}
	}
}

func TestParseSource(t *testing.T) {
	topic, p, o, err := parseSource("orders.v1-dlt/3/1042")
	if err != nil || topic != "orders.v1-dlt" || p != 3 || o != 1042 {
		t.Errorf("parseSource = %q %d %d %v", topic, p, o, err)
	}
	for _, bad := range []string{"", "a/b/c", "/1/2", "a/1", "a/1/x", "a/99999999999/1"} {
		if _, _, _, err := parseSource(bad); err == nil {
			t.Errorf("parseSource(%q): no error", bad)
		}
	}
	r := &kgo.Record{Topic: "t", Partition: 7, Offset: 9}
	if s := SourceOf(r); s != "t/7/9" {
		t.Errorf("SourceOf = %q", s)
	}
}

func TestReplayRecordHeaders(t *testing.T) {
	user := []kgo.RecordHeader{
		{Key: "trace-id", Value: []byte{0, 1, 2}},
		{Key: "kafka_dlt-exception-message", Value: []byte("spring")},
		{Key: "dup", Value: []byte("a")},
		{Key: "dup", Value: nil},
		{Key: retry.HeaderReplayRun, Value: []byte("older-run")},
		{Key: "kretry-future", Value: []byte("kept")},
	}
	src := deadLetter("orders-dlt", dead{key: "k", origTopic: "orders", origPart: 2, errType: "e", headers: user}, now)
	src.Partition, src.Offset = 1, 17
	sent := now.Add(time.Hour)
	out := ReplayRecord(src, "orders", 2, "run-1", sent)
	var keys []string
	for _, h := range out.Headers {
		keys = append(keys, h.Key)
	}
	want := []string{"trace-id", "dup", "dup", "kretry-future", retry.HeaderReplayRun, retry.HeaderReplayedFrom, retry.HeaderReplayedAt}
	if strings.Join(keys, " ") != strings.Join(want, " ") {
		t.Fatalf("headers %v, want %v", keys, want)
	}
	if !bytes.Equal(out.Headers[0].Value, []byte{0, 1, 2}) || string(out.Headers[1].Value) != "a" || out.Headers[2].Value != nil {
		t.Errorf("user headers changed: %v", out.Headers[:3])
	}
	if v, _ := header(out, retry.HeaderReplayRun); v != "run-1" {
		t.Errorf("run header %q", v)
	}
	if v, _ := header(out, retry.HeaderReplayedFrom); v != "orders-dlt/1/17" {
		t.Errorf("replayed-from %q", v)
	}
	at := out.Headers[6].Value
	if len(at) != 8 || int64(uint64(at[0])<<56|uint64(at[1])<<48|uint64(at[2])<<40|uint64(at[3])<<32|
		uint64(at[4])<<24|uint64(at[5])<<16|uint64(at[6])<<8|uint64(at[7])) != sent.UnixMilli() {
		t.Errorf("replayed-at %x, want %d", at, sent.UnixMilli())
	}
	if !out.Timestamp.Equal(sent) || out.Topic != "orders" || out.Partition != 2 ||
		&out.Value[0] != &src.Value[0] || string(out.Key) != "k" {
		t.Errorf("record %+v", out)
	}
	if _, ok, err := retry.Decode(out.Headers); ok || err != nil {
		t.Errorf("replayed record still decodes as a retry record: %v %v", ok, err)
	}
}

func TestAgeBucket(t *testing.T) {
	for age, want := range map[time.Duration]string{
		-time.Minute: AgeHour, 0: AgeHour, 59 * time.Minute: AgeHour, time.Hour: AgeDay,
		23 * time.Hour: AgeDay, 24 * time.Hour: AgeWeek, 7*24*time.Hour - 1: AgeWeek, 7 * 24 * time.Hour: AgeOlder,
	} {
		if got := AgeBucket(age); got != want {
			t.Errorf("AgeBucket(%v) = %s, want %s", age, got, want)
		}
	}
}

func TestStateRoundTrip(t *testing.T) {
	dir := t.TempDir()
	path := StatePath(dir, "r1")
	if st, err := LoadState(path); st != nil || err != nil {
		t.Fatalf("LoadState of no file = %v, %v", st, err)
	}
	st := &State{Version: stateVersion, Run: "r1", Status: StatusRunning,
		Sources: map[string]map[int32]SourcePos{"d": {0: {Start: 1, Next: 5, End: 9}}},
		Targets: map[string]map[int32]int64{"t": {2: 40}}, SentAhead: []string{"d/0/6"}}
	st.Totals.init()
	st.Totals.SentTo["t"] = 3
	if err := st.save(path); err != nil {
		t.Fatal(err)
	}
	got, err := LoadState(path)
	if err != nil {
		t.Fatal(err)
	}
	if got.Sources["d"][0].Next != 5 || got.Targets["t"][2] != 40 || got.SentAhead[0] != "d/0/6" || got.Totals.SentTo["t"] != 3 {
		t.Errorf("loaded %+v", got)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Errorf("dir holds %d entries, want the state file only (no temporary file left)", len(entries))
	}
	if err := os.WriteFile(path, []byte(`{"version": 2, "run": "r1"`), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadState(path); err == nil {
		t.Error("a truncated state file loads")
	}
	if err := os.WriteFile(filepath.Join(dir, "x.json"), []byte(`{"version": 9}`), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadState(filepath.Join(dir, "x.json")); err == nil || !strings.Contains(err.Error(), "version 9") {
		t.Errorf("LoadState of version 9: %v", err)
	}
}

func TestSelectionDiff(t *testing.T) {
	tiers := map[ListenerKey]string{{"orders", "billing"}: "orders-retry-1000", {"orders", "audit"}: ""}
	a := selectionOf([]string{"b", "a"}, "", &Filter{ErrorTypes: []string{"x", "y", "x"}}, tiers)
	b := selectionOf([]string{"a", "b"}, "", &Filter{ErrorTypes: []string{"y", "x"}}, maps.Clone(tiers))
	if d := a.diff(b); len(d) != 0 || a.Fingerprint() != b.Fingerprint() {
		t.Errorf("same selection in another order differs: %v", d)
	}
	// --to sends every record to one topic: the policy's tiers do not count.
	c := selectionOf([]string{"a"}, "t", &Filter{Reasons: []string{"timeout"}, Since: TimeBound{Expr: "24h"}, Groups: []string{"billing"}}, tiers)
	d := a.diff(c)
	want := []string{"DLTs: was a,b, now a", "--to: was (none), now t", "--error-type: was x,y, now (none)",
		"--reason: was (none), now timeout", "--since: was (none), now 24h", "--group: was (none), now billing",
		"the policy's first retry tiers (--file, --topic): was orders (group audit) -> orders,orders (group billing) -> orders-retry-1000, now (none)"}
	if strings.Join(d, "|") != strings.Join(want, "|") || a.Fingerprint() == c.Fingerprint() {
		t.Errorf("diff = %q\nwant %q", d, want)
	}
	// Another tier for a group is another selection.
	e := selectionOf([]string{"a", "b"}, "", &Filter{ErrorTypes: []string{"x", "y"}},
		map[ListenerKey]string{{"orders", "billing"}: "orders-retry-500", {"orders", "audit"}: ""})
	if d := a.diff(e); len(d) != 1 || a.Fingerprint() == e.Fingerprint() {
		t.Errorf("another first tier: diff %q", d)
	}
}

// The limiter lets rate events per second through, on a virtual clock.
func TestLimiterRate(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l := NewLimiter(50, nil) // burst 2
		start := time.Now()
		for range 102 {
			if err := l.Wait(context.Background()); err != nil {
				t.Fatal(err)
			}
		}
		// 2 at once, then 100 at 50/s.
		if got := time.Since(start); got != 2*time.Second {
			t.Errorf("102 events at 50/s with burst 2 took %v, want 2s", got)
		}
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		if err := l.Wait(ctx); err == nil {
			t.Error("Wait with a canceled context returned nil")
		}
		var unlimited *Limiter
		if err := unlimited.Wait(context.Background()); err != nil {
			t.Error(err)
		}
	})
}

func TestProgressReporters(t *testing.T) {
	clock := newFakeClock()
	var bar bytes.Buffer
	b := NewBar(&bar, clock)
	b.Update(Snapshot{Done: 10, Total: 100, Sent: 9, Rate: 10})
	b.Update(Snapshot{Done: 20, Total: 100}) // within 100ms: not drawn
	clock.After(time.Second)
	b.Finish(Snapshot{Done: 100, Total: 100, Sent: 95, Rate: 50})
	out := bar.String()
	if strings.Count(out, "\r") != 2 || !strings.Contains(out, " 10/100  10%  sent 9  10/s  ETA 9s") ||
		!strings.Contains(out, "100/100 100%  sent 95") || !strings.HasSuffix(out, "\n") || strings.Contains(out, "20/100") {
		t.Errorf("bar output %q", out)
	}
	var lines bytes.Buffer
	l := NewLines(&lines, 10, time.Minute, clock)
	for i := int64(1); i <= 25; i++ {
		l.Update(Snapshot{Done: i, Total: 25})
	}
	clock.After(2 * time.Minute)
	l.Update(Snapshot{Done: 25, Total: 25})
	if got := strings.Count(lines.String(), "\n"); got != 3 {
		t.Errorf("%d lines, want 3 (at 10, 20, and after the interval):\n%s", got, lines.String())
	}
}

// A save stopped between writing the temporary file and renaming it (a
// crash) leaves the old state in place, readable; a temporary file left by
// a killed process does not get in the way.
func TestStateSaveKeepsOldStateUntilRename(t *testing.T) {
	dir := t.TempDir()
	path := StatePath(dir, "r1")
	old := &State{Run: "r1", Status: StatusRunning, Sources: map[string]map[int32]SourcePos{"d": {0: {Next: 5, End: 9}}}}
	if err := old.save(path); err != nil {
		t.Fatal(err)
	}
	next := &State{Run: "r1", Status: StatusDone, Sources: map[string]map[int32]SourcePos{"d": {0: {Next: 9, End: 9}}}}
	crash := errors.New("crash before rename")
	var tmp string
	err := next.saveWith(path, func(from, _ string) error {
		tmp = from
		b, rerr := os.ReadFile(from)
		if rerr != nil || !strings.Contains(string(b), `"status": "done"`) {
			t.Errorf("temporary file %s: %q %v, want the new state written and synced", from, b, rerr)
		}
		return crash
	})
	if !errors.Is(err, crash) {
		t.Fatalf("save: %v, want the crash", err)
	}
	got, err := LoadState(path)
	if err != nil || got.Status != StatusRunning || got.Sources["d"][0].Next != 5 {
		t.Fatalf("after the crash: %+v %v, want the old state", got, err)
	}
	if _, err := os.Stat(tmp); !os.IsNotExist(err) {
		t.Errorf("temporary file %s left behind: %v", tmp, err)
	}
	// A killed process leaves its temporary file: it is not the state.
	if err := os.WriteFile(filepath.Join(dir, ".kretry-replay-r1.json.tmp-1"), []byte("{garbage"), 0o644); err != nil {
		t.Fatal(err)
	}
	if got, err := LoadState(path); err != nil || got.Status != StatusRunning {
		t.Errorf("with a stray temporary file: %+v %v", got, err)
	}
	if err := next.save(path); err != nil {
		t.Fatal(err)
	}
	if got, err := LoadState(path); err != nil || got.Status != StatusDone || got.Version != stateVersion {
		t.Errorf("after the save: %+v %v", got, err)
	}
}
