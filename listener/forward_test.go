package listener_test

import (
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kretry/kretry/internal/kafkatest"
	"github.com/kretry/kretry/listener"
	"github.com/kretry/kretry/retry"
	"github.com/kretry/kretry/strategy"
)

// A record too large for its retry tier and for the DLT is neither
// retried forever nor dropped: the tier refuses it (the client refuses it
// at once, its batch size capped at the tier's max.message.bytes), the DLT
// refuses the whole record too, and a stub takes its place in the DLT —
// reason "too-large", the kretry headers, the key, no value and no user
// headers — whose error text says where the whole record is. The
// partition moves on and commits past it.
func TestHostileRecordTooLargeForTierAndDLTLeavesStub(t *testing.T) {
	f := newFixture(t, 1)
	s := newScript(func(key string, n int) error {
		if key == "next" {
			return nil
		}
		return errBoom
	})
	logs := &logSink{}
	limit := "4096"
	l := f.listener(t, s, listener.Logger(logs.logger()), listener.Attempts(2),
		listener.Backoff(strategy.FixedBackoff(50*time.Millisecond)),
		listener.TopicConfigs(map[string]*string{"max.message.bytes": &limit}))
	big := rec(f.topic, "big")
	big.Value = []byte(strings.Repeat("v", 6000))
	fat := rec(f.topic, "fat-headers") // small value, huge user header
	fat.Headers = []kgo.RecordHeader{{Key: "blob", Value: []byte(strings.Repeat("h", 6000))}}
	f.c.Produce(big, fat, rec(f.topic, "next"))
	started(t, l)

	kafkatest.Eventually(t, waitFor, func() bool {
		return len(s.dltOf("big")) == 1 && len(s.dltOf("fat-headers")) == 1 && s.count("next") == 1
	}, "stubs for big and fat-headers in the DLT, next handled")
	for _, key := range []string{"big", "fat-headers"} {
		d := s.dltOf(key)[0]
		if d.state.Reason != listener.ReasonTooLarge {
			t.Errorf("%s: reason %q, want %q", key, d.state.Reason, listener.ReasonTooLarge)
		}
		if d.state.Attempt != 1 || d.state.OriginalTopic != f.topic {
			t.Errorf("%s: attempt %d original %q, want 1 and %q", key, d.state.Attempt, d.state.OriginalTopic, f.topic)
		}
		if !strings.Contains(d.state.Error, f.topic+"[0]@") || !strings.Contains(d.state.Error, `dead-lettered as "rejected"`) {
			t.Errorf("%s: stub error text does not say where the record is and why it was dead-lettered: %q", key, d.state.Error)
		}
		if len(retry.UserHeaders(d.headers)) != 0 {
			t.Errorf("%s: stub kept user headers: %v", key, retry.UserHeaders(d.headers))
		}
		if d.state.Error == "" || d.state.ErrorType == "" {
			t.Errorf("%s: stub lacks error text or type: %+v", key, d.state)
		}
	}
	for _, r := range f.c.ReadAll(l.Plan().DLT) {
		if len(r.Value) != 0 || string(r.Key) != "big" && string(r.Key) != "fat-headers" {
			t.Errorf("DLT holds %q with a %d-byte value, want only the two stubs without values", r.Key, len(r.Value))
		}
	}
	if n := len(f.c.ReadAll(l.Plan().DLT)); n != 2 {
		t.Errorf("DLT holds %d records, want 2 stubs", n)
	}
	if n := len(f.c.ReadAll(l.Plan().Tiers[0].Topic)); n != 0 {
		t.Errorf("tier holds %d records, want 0: it refuses them", n)
	}
	kafkatest.Eventually(t, waitFor, func() bool { return f.c.Committed(f.group, f.topic)[0] == 3 },
		"main topic committed past both")
	for _, want := range []string{"retry tier rejected the record", "DLT rejected the record; publishing a stub"} {
		if line, ok := logs.find("ERROR", want); !ok {
			t.Errorf("no error log line %q", want)
		} else {
			t.Logf("log: %s", line)
		}
	}
}

func TestPublishFailureHoldsCommitUntilRecovered(t *testing.T) {
	f := newFixture(t, 1)
	if f.c.Fake == nil {
		t.Skip("needs kfake fault injection")
	}
	s := newScript(failTimes(map[string]int{"x": 1}))
	l := f.listener(t, s, listener.Backoff(strategy.FixedBackoff(50*time.Millisecond)))
	tier := l.Plan().Tiers[0].Topic
	fault := f.c.Fake.Fault(kfake.Fault{
		Keys:  []kmsg.Key{kmsg.Produce},
		Topic: tier,
		Err:   kerr.TopicAuthorizationFailed,
		Count: -1,
	})
	f.c.Produce(rec(f.topic, "x"), rec(f.topic, "y"), rec(f.topic, "z"))
	started(t, l)
	kafkatest.Eventually(t, waitFor, func() bool {
		return s.count("z") == 1 && len(s.eventsOf(listener.EventForwardFailed)) >= 2
	}, "later records handled while x's publish keeps failing")
	if got := f.c.Committed(f.group, f.topic)[0]; got > 0 {
		t.Fatalf("committed offset %d while x (offset 0) is unacknowledged; want nothing committed past it", got)
	}
	fault.Remove()
	kafkatest.Eventually(t, waitFor, func() bool { return s.count("x") == 2 }, "x retried after the fault is removed")
	kafkatest.Eventually(t, waitFor, func() bool { return f.c.Committed(f.group, f.topic)[0] == 3 }, "main committed to 3")
}

// A retry tier that refuses a record for good (here: too large) does not
// stall its partition: the record is dead-lettered with reason "rejected".
func TestTierRejectsRecordGoesToDLT(t *testing.T) {
	f := newFixture(t, 1)
	if f.c.Fake == nil {
		t.Skip("needs kfake fault injection")
	}
	s := newScript(failTimes(map[string]int{"big": 1}))
	l := f.listener(t, s, listener.Backoff(strategy.FixedBackoff(50*time.Millisecond)))
	f.c.Fake.Fault(kfake.Fault{Keys: []kmsg.Key{kmsg.Produce}, Topic: l.Plan().Tiers[0].Topic,
		Err: kerr.MessageTooLarge, Count: -1})
	f.c.Produce(rec(f.topic, "big"), rec(f.topic, "next"))
	started(t, l)
	kafkatest.Eventually(t, waitFor, func() bool { return len(s.dltOf("big")) == 1 }, "big dead-lettered")
	st := s.dltOf("big")[0].state
	if st.Reason != listener.ReasonRejected || st.Attempt != 1 {
		t.Errorf("reason %q attempt %d, want rejected after 1 delivery", st.Reason, st.Attempt)
	}
	kafkatest.Eventually(t, waitFor, func() bool { return f.c.Committed(f.group, f.topic)[0] == 2 }, "main committed past it")
}
