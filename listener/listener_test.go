package listener_test

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/kretry/kretry/internal/kafkatest"
	"github.com/kretry/kretry/listener"
	"github.com/kretry/kretry/retry"
	"github.com/kretry/kretry/strategy"
)

const waitFor = 30 * time.Second

func TestSuccessPathCommitsEveryRecord(t *testing.T) {
	f := newFixture(t, 3)
	s := newScript(failTimes(nil))
	l := f.listener(t, s)
	var rs = rec(f.topic, "a")
	f.c.Produce(rs, rec(f.topic, "b"), rec(f.topic, "c"), rec(f.topic, "d"))
	stop := started(t, l)
	kafkatest.Eventually(t, waitFor, func() bool {
		return s.count("a") == 1 && s.count("b") == 1 && s.count("c") == 1 && s.count("d") == 1
	}, "every record handled once")
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	var total int64
	for _, off := range f.c.Committed(f.group, f.topic) {
		total += off
	}
	if total != 4 {
		t.Fatalf("committed offsets sum to %d, want 4 (every record committed)", total)
	}
	for _, tier := range l.Plan().Tiers {
		if n := len(f.c.ReadAll(tier.Topic)); n != 0 {
			t.Errorf("tier %s holds %d records, want 0", tier.Topic, n)
		}
	}
}

func TestRetryThenSuccessStampsHeadersAtEachHop(t *testing.T) {
	f := newFixture(t, 2)
	s := newScript(failTimes(map[string]int{"k": 2}))
	l := f.listener(t, s, listener.Attempts(4),
		listener.Backoff(strategy.ExponentialBackoff(200*time.Millisecond, 2, 0)))
	r := rec(f.topic, "k")
	r.Headers = []kgo.RecordHeader{{Key: "trace-id", Value: []byte{0, 1, 2}}, {Key: "tenant", Value: []byte("acme")}}
	f.c.Produce(r)
	stop := started(t, l)
	kafkatest.Eventually(t, waitFor, func() bool { return s.count("k") == 3 }, "3 deliveries of k (got %d)", s.count("k"))
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	ds := s.of("k")
	plan := l.Plan()
	if len(plan.Tiers) != 3 {
		t.Fatalf("plan has %d tiers, want 3: %v", len(plan.Tiers), plan)
	}
	wantTopics := []string{f.topic, plan.Tiers[0].Topic, plan.Tiers[1].Topic}
	first := ds[0]
	if first.retried {
		t.Errorf("first delivery carries retry state %+v, want none", first.state)
	}
	for i, d := range ds {
		if d.topic != wantTopics[i] {
			t.Errorf("delivery %d from %s, want %s", i+1, d.topic, wantTopics[i])
		}
		if i == 0 {
			continue
		}
		st := d.state
		// User headers first, unchanged and in order; then exactly one of
		// each kretry header, the attempt encoded as 4 big-endian bytes.
		if len(d.headers) < 2 || d.headers[0].Key != "trace-id" || !bytes.Equal(d.headers[0].Value, []byte{0, 1, 2}) ||
			d.headers[1].Key != "tenant" || string(d.headers[1].Value) != "acme" {
			t.Errorf("delivery %d: user headers not carried unchanged: %v", i+1, d.headers)
		}
		seen := map[string]int{}
		for _, h := range d.headers {
			seen[h.Key]++
			if h.Key == retry.HeaderAttempt && !bytes.Equal(h.Value, []byte{0, 0, 0, byte(i + 1)}) {
				t.Errorf("delivery %d: %s = %x, want %08x", i+1, h.Key, h.Value, i+1)
			}
		}
		for k, n := range seen {
			if n != 1 {
				t.Errorf("delivery %d: header %s appears %d times", i+1, k, n)
			}
		}
		if !d.retried || int(st.Attempt) != i+1 {
			t.Errorf("delivery %d: state attempt %d (present %v), want %d", i+1, st.Attempt, d.retried, i+1)
		}
		if st.OriginalTopic != f.topic || st.OriginalOffset != first.offset {
			t.Errorf("delivery %d: original %s@%d, want %s@%d", i+1, st.OriginalTopic, st.OriginalOffset, f.topic, first.offset)
		}
		if st.Error == "" || st.ErrorType == "" {
			t.Errorf("delivery %d: error %q type %q, want both set", i+1, st.Error, st.ErrorType)
		}
		if d.at.Before(st.Due) {
			t.Errorf("delivery %d handled %v before its due time", i+1, st.Due.Sub(d.at))
		}
		gap := d.at.Sub(ds[i-1].at)
		if nominal := plan.Tiers[i-1].Delay; gap < nominal {
			t.Errorf("delivery %d came %v after the previous one, less than the tier delay %v", i+1, gap, nominal)
		}
		if st.FirstFailure.IsZero() || (i > 1 && !st.FirstFailure.Equal(ds[1].state.FirstFailure)) {
			t.Errorf("delivery %d: first failure %v, want the same non-zero time on every hop", i+1, st.FirstFailure)
		}
	}
	if n := len(s.dltOf("k")); n != 0 {
		t.Errorf("k reached the DLT handler %d times, want 0", n)
	}
	if n := len(s.eventsOf(listener.EventRetried)); n != 2 {
		t.Errorf("%d retried events, want 2", n)
	}
}

func TestExhaustedRecordReachesDLTWithHistory(t *testing.T) {
	f := newFixture(t, 1)
	s := newScript(failTimes(map[string]int{"bad": 100}))
	l := f.listener(t, s, listener.Attempts(3), listener.Backoff(strategy.FixedBackoff(100*time.Millisecond)))
	f.c.Produce(rec(f.topic, "bad"), rec(f.topic, "good"))
	started(t, l)
	kafkatest.Eventually(t, waitFor, func() bool { return len(s.dltOf("bad")) == 1 }, "bad in the DLT handler")
	if n := s.count("bad"); n != 3 {
		t.Errorf("bad delivered %d times, want 3", n)
	}
	if n := s.count("good"); n != 1 {
		t.Errorf("good delivered %d times, want 1", n)
	}
	d := s.dltOf("bad")[0]
	if d.topic != l.Plan().DLT {
		t.Errorf("DLT record read from %s, want %s", d.topic, l.Plan().DLT)
	}
	st := d.state
	if st.Reason != listener.ReasonExhausted || st.Attempt != 3 || st.OriginalTopic != f.topic ||
		st.FirstFailure.IsZero() || st.Error == "" {
		t.Errorf("DLT state %+v: want reason exhausted, attempt 3, original topic %s, first failure and error set", st, f.topic)
	}
}

func TestNonRetryableGoesStraightToDLT(t *testing.T) {
	f := newFixture(t, 1)
	s := newScript(func(key string, n int) error {
		if key == "perm" {
			return strategy.Permanent(errBoom)
		}
		return nil
	})
	l := f.listener(t, s, listener.Backoff(strategy.FixedBackoff(50*time.Millisecond)))
	f.c.Produce(rec(f.topic, "perm"))
	started(t, l)
	kafkatest.Eventually(t, waitFor, func() bool { return len(s.dltOf("perm")) == 1 }, "perm in the DLT handler")
	if n := s.count("perm"); n != 1 {
		t.Errorf("perm delivered %d times, want 1", n)
	}
	if st := s.dltOf("perm")[0].state; st.Reason != "permanent" || st.Attempt != 1 {
		t.Errorf("DLT state reason %q attempt %d, want permanent 1", st.Reason, st.Attempt)
	}
}

func TestExcludedErrorAndRouteToOwnDLT(t *testing.T) {
	f := newFixture(t, 1)
	s := newScript(func(key string, n int) error { return errBoom })
	l := f.listener(t, s,
		listener.Exclude(strategy.Is("boom", errBoom)),
		listener.Route("-boom", strategy.Is("boom", errBoom)))
	f.c.Produce(rec(f.topic, "x"))
	started(t, l)
	kafkatest.Eventually(t, waitFor, func() bool { return len(s.dltOf("x")) == 1 }, "x in the DLT handler")
	d := s.dltOf("x")[0]
	if want := f.topic + "-boom-dlt"; d.topic != want {
		t.Errorf("dead-lettered to %s, want %s", d.topic, want)
	}
	if s.count("x") != 1 {
		t.Errorf("x delivered %d times, want 1", s.count("x"))
	}
}

func TestHandlerRequestedDelayOverridesTier(t *testing.T) {
	f := newFixture(t, 1)
	s := newScript(func(key string, n int) error {
		if n == 1 {
			return strategy.RetryAfter(errBoom, 700*time.Millisecond)
		}
		return nil
	})
	l := f.listener(t, s, listener.Backoff(strategy.FixedBackoff(10*time.Millisecond)))
	f.c.Produce(rec(f.topic, "slow"))
	started(t, l)
	kafkatest.Eventually(t, waitFor, func() bool { return s.count("slow") == 2 }, "second delivery")
	ds := s.of("slow")
	if gap := ds[1].at.Sub(ds[0].at); gap < 700*time.Millisecond {
		t.Errorf("retried after %v, want >= the requested 700ms", gap)
	}
	if due := ds[1].state.Due; ds[1].at.Before(due) {
		t.Errorf("handled %v before due", due.Sub(ds[1].at))
	}
}

func TestMainPartitionNeverWaitsForRetry(t *testing.T) {
	f := newFixture(t, 1)
	s := newScript(failTimes(map[string]int{"first": 1}))
	l := f.listener(t, s, listener.Backoff(strategy.FixedBackoff(time.Hour)))
	f.c.Produce(rec(f.topic, "first"), rec(f.topic, "second"), rec(f.topic, "third"))
	started(t, l)
	kafkatest.Eventually(t, waitFor, func() bool { return s.count("third") == 1 }, "records behind a failed one are handled")
	if s.count("first") != 1 {
		t.Errorf("first delivered %d times, want 1 (its retry is an hour away)", s.count("first"))
	}
	// The main partition is committed past the failed record once its
	// publish to the tier is acknowledged.
	kafkatest.Eventually(t, waitFor, func() bool { return f.c.Committed(f.group, f.topic)[0] == 3 },
		"main partition committed to 3")
}

func TestHandlerPanicIsRetried(t *testing.T) {
	f := newFixture(t, 1)
	s := newScript(func(key string, n int) error {
		if n == 1 {
			panic("kaboom")
		}
		return nil
	})
	l := f.listener(t, s, listener.Backoff(strategy.FixedBackoff(50*time.Millisecond)))
	f.c.Produce(rec(f.topic, "p"))
	started(t, l)
	kafkatest.Eventually(t, waitFor, func() bool { return s.count("p") == 2 }, "p redelivered after panic")
	st := s.of("p")[1].state
	if st.ErrorType != "*listener.PanicError" {
		t.Errorf("error type %q, want *listener.PanicError", st.ErrorType)
	}
	if want := "kaboom"; !strings.Contains(st.Error, want) || !strings.Contains(st.Error, "goroutine") {
		t.Errorf("error text %q: want the panic value and a stack", st.Error)
	}
}
