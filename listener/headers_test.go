package listener_test

import (
	"errors"
	"math"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/kretry/kretry/internal/kafkatest"
	"github.com/kretry/kretry/listener"
	"github.com/kretry/kretry/retry"
	"github.com/kretry/kretry/strategy"
)

// hostileState builds valid kretry headers for a record injected into a
// retry tier, with the given attempt and due time.
func hostileState(topic string, attempt int32, due time.Time) retry.State {
	now := time.Now()
	return retry.State{Attempt: attempt, Due: due, OriginalTopic: topic, OriginalPartition: 0,
		OriginalOffset: 7, OriginalTimestamp: now.Add(-time.Minute), FirstFailure: now.Add(-time.Minute),
		Error: "earlier failure", ErrorType: "*errors.errorString"}
}

// Records injected into a retry tier with headers no kretry listener
// writes: each gets its documented outcome, and the records behind them
// are still handled in order.
func TestHostileRetryTierRecords(t *testing.T) {
	f := newFixture(t, 1)
	s := newScript(func(key string, n int) error {
		switch key {
		case "at-limit", "past-limit", "max-attempt", "huge-error", "": // "": the nil key
			return errors.New("bad \xff\xfe byte \xc3 and more")
		}
		return nil
	})
	logs := &logSink{}
	l := f.listener(t, s, listener.Logger(logs.logger()), listener.Attempts(3),
		listener.Backoff(strategy.FixedBackoff(50*time.Millisecond)), listener.Hooks(s))
	for _, topic := range l.Plan().Topics()[1:] {
		f.c.CreateTopic(topic, 1)
	}
	tier := l.Plan().Tiers[0].Topic
	now := time.Now()
	inject := func(key string, st retry.State, extra ...kgo.RecordHeader) *kgo.Record {
		r := rec(tier, key)
		r.Headers = st.Append(append([]kgo.RecordHeader(nil), extra...), 1<<20)
		return r
	}
	dup := inject("duplicated", hostileState(f.topic, 2, now))
	dup.Headers = append(dup.Headers, kgo.RecordHeader{Key: retry.HeaderAttempt, Value: []byte{0, 0, 0, 2}})
	huge := hostileState(f.topic, 2, now)
	huge.Error = strings.Repeat("e", 200_000)
	nilRec := inject("nil", hostileState(f.topic, 2, now))
	nilRec.Key, nilRec.Value = nil, nil
	f.c.Produce(
		inject("future", hostileState(f.topic, 2, time.Date(2100, 1, 1, 0, 0, 0, 0, time.UTC))),
		inject("past", hostileState(f.topic, 2, now.Add(-24*time.Hour))),
		dup,
		inject("at-limit", hostileState(f.topic, 3, now)),
		inject("past-limit", hostileState(f.topic, 1000, now)),
		inject("max-attempt", hostileState(f.topic, math.MaxInt32, now)),
		inject("huge-error", huge),
		nilRec,
		rec(tier, "no-headers"),
	)
	started(t, l)

	dlt := l.Plan().DLT
	kafkatest.Eventually(t, waitFor, func() bool {
		return len(s.dltOf("future")) == 1 && len(s.dltOf("duplicated")) == 1 && len(s.dltOf("at-limit")) == 1 &&
			len(s.dltOf("past-limit")) == 1 && len(s.dltOf("max-attempt")) == 1 && len(s.dltOf("no-headers")) == 1 &&
			s.count("past") == 1 && len(s.dltOf("huge-error")) == 1 && len(s.dltOf("")) == 1
	}, "every injected record reached its outcome")

	// A due time beyond anything this listener sets is corrupt, not a
	// reason to pause the partition until 2100.
	if d := s.dltOf("future")[0]; d.state.Reason != listener.ReasonCorruptHeaders || !strings.Contains(d.state.Error, "ahead") {
		t.Errorf("future: reason %q error %q, want corrupt-headers naming the due time", d.state.Reason, d.state.Error)
	}
	if s.count("future") != 0 || s.count("duplicated") != 0 || s.count("no-headers") != 0 {
		t.Errorf("the handler saw a record with corrupt headers")
	}
	// Every corrupt record's error type is the one docs/headers.md
	// promises, with the header named in the text.
	for key, header := range map[string]string{"future": retry.HeaderDue, "duplicated": retry.HeaderAttempt, "no-headers": retry.HeaderAttempt} {
		d := s.dltOf(key)[0]
		if d.state.ErrorType != "*retry.DecodeError" || !strings.Contains(d.state.Error, `header "`+header+`"`) {
			t.Errorf("%s: error type %q error %q, want *retry.DecodeError naming %s", key, d.state.ErrorType, d.state.Error, header)
		}
	}
	// A due time in the past is simply overdue: handled at once.
	if d := s.of("past")[0]; d.state.Attempt != 2 {
		t.Errorf("past: attempt %d, want 2", d.state.Attempt)
	}
	// Attempts at or past the limit get one delivery, then the DLT, which
	// counts the deliveries the record had: its attempt header's, even at
	// math.MaxInt32, where the next attempt number would overflow.
	for key, want := range map[string]int32{"at-limit": 3, "past-limit": 1000, "max-attempt": math.MaxInt32} {
		if n := s.count(key); n != 1 {
			t.Errorf("%s: handled %d times, want 1", key, n)
		}
		if d := s.dltOf(key)[0]; d.state.Reason != retry.ReasonExhausted || d.state.Attempt != want {
			t.Errorf("%s: DLT reason %q attempt %d, want exhausted after attempt %d", key, d.state.Reason, d.state.Attempt, want)
		}
	}
	// Error text that is not UTF-8 reaches the headers as valid UTF-8,
	// and a huge error header is cut to MaxErrorBytes, so the record
	// never grows from hop to hop.
	for _, key := range []string{"at-limit", "huge-error", ""} {
		d := s.dltOf(key)[0]
		v, n := headerValue(d.headers, retry.HeaderError)
		if n != 1 || !utf8.Valid(v) || !strings.Contains(string(v), "bad \uFFFD") {
			t.Errorf("%q: kretry-error %q (%d headers), want one valid UTF-8 header with U+FFFD", key, v, n)
		}
		if len(v) > retry.DefaultMaxErrorBytes {
			t.Errorf("%q: kretry-error is %d bytes, over the %d bound", key, len(v), retry.DefaultMaxErrorBytes)
		}
	}
	// The huge-error record failed once more in the first tier: its next
	// hop (the second tier: attempt 3) carries a bounded error.
	var hop *kgo.Record
	for _, r := range f.c.ReadAll(l.Plan().Tiers[len(l.Plan().Tiers)-1].Topic) {
		if string(r.Key) == "huge-error" {
			hop = r
		}
	}
	if hop == nil {
		t.Fatalf("huge-error never reached the next tier")
	}
	if size := recordSize(hop); size > 8*1024 {
		t.Errorf("huge-error's next hop is %d bytes: the 200 kB error header was carried on", size)
	}
	// Nil key and value survive the hops as nil.
	if d := s.dltOf("")[0]; d.state.Reason != retry.ReasonExhausted {
		t.Errorf("nil record: reason %q, want exhausted", d.state.Reason)
	}
	for _, r := range f.c.ReadAll(dlt) {
		if len(r.Key) == 0 && (r.Value != nil || r.Key != nil) {
			t.Errorf("nil key/value came back as %q/%q", r.Key, r.Value)
		}
	}
	// Nothing waits in the tier afterwards, and the tier is committed to
	// its end: no partition stays paused on a bogus due time.
	// (nine injected, plus the next hops of huge-error and the nil record)
	inTier := int64(len(f.c.ReadAll(tier)))
	if inTier != 11 {
		t.Errorf("tier holds %d records, want 9 injected + 2 forwarded", inTier)
	}
	kafkatest.Eventually(t, waitFor, func() bool { return f.c.Committed(f.group, tier)[0] == inTier }, "tier committed to its end")
	kafkatest.Eventually(t, waitFor, func() bool {
		for _, p := range l.Partitions() {
			if p.Paused {
				return false
			}
		}
		return true
	}, "no partition paused")
	for _, want := range [][]string{
		{"ERROR", "corrupt headers", "ahead"},
		{"ERROR", "corrupt headers", "kretry-attempt"},
	} {
		if line, ok := logs.find(want...); !ok {
			t.Errorf("no log line with %q", want)
		} else {
			t.Logf("log: %s", line)
		}
	}
}

// recordSize is the bytes a record's key, value and headers take.
func recordSize(r *kgo.Record) int {
	n := len(r.Key) + len(r.Value)
	for _, h := range r.Headers {
		n += len(h.Key) + len(h.Value)
	}
	return n
}

// A DLT record with corrupt or missing kretry headers still reaches the
// DLT handler — with Reason "corrupt-headers: <decode error>" — and is
// never published anywhere again: the DLT does not feed itself.
func TestHostileCorruptDLTRecordGoesToDLTHandlerOnce(t *testing.T) {
	f := newFixture(t, 1)
	s := newScript(failTimes(nil))
	l := f.listener(t, s)
	for _, topic := range l.Plan().Topics()[1:] {
		f.c.CreateTopic(topic, 1)
	}
	dlt := l.Plan().DLT
	bad := rec(dlt, "corrupt")
	bad.Headers = []kgo.RecordHeader{{Key: retry.HeaderAttempt, Value: []byte{1}}}
	f.c.Produce(bad, rec(dlt, "bare"))
	started(t, l)
	kafkatest.Eventually(t, waitFor, func() bool {
		return len(s.dltOf("corrupt")) == 1 && len(s.dltOf("bare")) == 1
	}, "both reach the DLT handler")
	if d := s.dltOf("corrupt")[0]; !strings.HasPrefix(d.state.Reason, listener.ReasonCorruptHeaders+": ") {
		t.Errorf("reason %q, want %q followed by the decode error", d.state.Reason, listener.ReasonCorruptHeaders+": ")
	}
	kafkatest.Eventually(t, waitFor, func() bool { return f.c.Committed(f.group, dlt)[0] == 2 }, "DLT committed")
	if n := len(f.c.ReadAll(dlt)); n != 2 {
		t.Errorf("DLT holds %d records, want the 2 injected: nothing republished", n)
	}
	if s.count("corrupt")+s.count("bare") != 0 {
		t.Errorf("the main handler saw DLT records")
	}
}

func TestCorruptRetryHeadersGoToDLTNotHandler(t *testing.T) {
	f := newFixture(t, 1)
	s := newScript(failTimes(nil))
	l := f.listener(t, s)
	for _, topic := range l.Plan().Topics()[1:] {
		f.c.CreateTopic(topic, 1)
	}
	tier := l.Plan().Tiers[0].Topic
	bad := rec(tier, "corrupt")
	bad.Headers = []kgo.RecordHeader{{Key: retry.HeaderDue, Value: []byte{1, 2, 3}}, {Key: "user", Value: []byte("kept")}}
	none := rec(tier, "bare")
	f.c.Produce(bad, none)
	started(t, l)
	kafkatest.Eventually(t, waitFor, func() bool {
		return len(s.dltOf("corrupt")) == 1 && len(s.dltOf("bare")) == 1
	}, "both dead-lettered")
	if s.count("corrupt")+s.count("bare") != 0 {
		t.Errorf("handler saw records with corrupt headers")
	}
	d := s.dltOf("corrupt")[0]
	if d.state.Reason != listener.ReasonCorruptHeaders || d.state.Error == "" {
		t.Errorf("reason %q error %q, want corrupt-headers and the decode error", d.state.Reason, d.state.Error)
	}
	var kept bool
	for _, h := range d.headers {
		kept = kept || (h.Key == "user" && string(h.Value) == "kept")
	}
	if !kept {
		t.Errorf("user header lost on the way to the DLT: %v", d.headers)
	}
}
