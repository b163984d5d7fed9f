package listener_test

import (
	"encoding/binary"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/kretry/kretry/internal/kafkatest"
	"github.com/kretry/kretry/listener"
	"github.com/kretry/kretry/retry"
	"github.com/kretry/kretry/retry/spring"
	"github.com/kretry/kretry/strategy"
)

func be32(v int32) []byte { return binary.BigEndian.AppendUint32(nil, uint32(v)) }
func be64(v int64) []byte { return binary.BigEndian.AppendUint64(nil, uint64(v)) }

// javaBigInteger is BigInteger.valueOf(v).toByteArray() for v >= 0: the
// shortest big-endian form whose top bit is the sign (0).
func javaBigInteger(v int64) []byte {
	b := be64(v)
	for len(b) > 1 && b[0] == 0 && b[1]&0x80 == 0 {
		b = b[1:]
	}
	return b
}

// springTierRecord is a record as a Spring @RetryableTopic service
// publishes it to its first retry topic, headers written by hand from
// Spring's encodings (docs/interop-spring.md).
func springTierRecord(tier, mainTopic, key string, due time.Time) *kgo.Record {
	orig := due.Add(-time.Second).UnixMilli()
	return &kgo.Record{Topic: tier, Partition: 0, Key: []byte(key), Value: []byte("value-" + key),
		Headers: []kgo.RecordHeader{
			{Key: "trace-id", Value: []byte("user header")},
			{Key: "kafka_exception-fqcn", Value: []byte("org.springframework.kafka.listener.ListenerExecutionFailedException")},
			{Key: "kafka_exception-cause-fqcn", Value: []byte("java.lang.IllegalStateException")},
			{Key: "kafka_exception-message", Value: []byte("Listener failed; java.lang.IllegalStateException: stock service down")},
			{Key: "kafka_exception-stacktrace", Value: []byte("java.lang.IllegalStateException: stock service down\n\tat com.example.Orders.on(Orders.java:42)")},
			{Key: "kafka_original-topic", Value: []byte(mainTopic)},
			{Key: "kafka_original-partition", Value: be32(0)},
			{Key: "kafka_original-offset", Value: be64(41)},
			{Key: "kafka_original-timestamp", Value: be64(orig)},
			{Key: "kafka_original-timestamp-type", Value: []byte("CREATE_TIME")},
			{Key: "retry_topic-original-timestamp", Value: javaBigInteger(orig)},
			{Key: "retry_topic-attempts", Value: be32(2)},
			{Key: "retry_topic-backoff-timestamp", Value: javaBigInteger(due.UnixMilli())},
		}}
}

// A listener with SpringHeaders(spring.Read) takes over a retry topic a
// Spring service wrote: the record is delivered at its due time as
// delivery 2, with the original coordinates Spring recorded, and what it
// forwards carries kretry's headers only (or Spring's too with Write).
func TestSpringTierRecordsAreTakenOver(t *testing.T) {
	for _, tc := range []struct {
		name  string
		mode  spring.Mode
		write bool
	}{{"read", spring.Read, false}, {"read-write", spring.Read | spring.Write, true}} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, 1)
			s := newScript(failTimes(map[string]int{"k": 100}))
			l := f.listener(t, s, listener.Attempts(3), listener.Backoff(strategy.FixedBackoff(300*time.Millisecond)),
				listener.SpringHeaders(tc.mode))
			plan := l.Plan()
			f.c.CreateTopic(plan.Tiers[0].Topic, 1)
			due := time.Now().Add(400 * time.Millisecond)
			f.c.Produce(springTierRecord(plan.Tiers[0].Topic, f.topic, "k", due))
			started(t, l)
			kafkatest.Eventually(t, waitFor, func() bool { return len(s.dltOf("k")) == 1 }, "k in the DLT handler")
			ds := s.of("k")
			if len(ds) != 2 {
				t.Fatalf("k delivered %d times, want 2 (attempt 2 from the Spring tier, attempt 3 from kretry's)", len(ds))
			}
			first := ds[0]
			if first.topic != plan.Tiers[0].Topic || first.state.Attempt != 2 || first.at.Before(due.Truncate(time.Millisecond)) {
				t.Errorf("first delivery: topic %s attempt %d at %v; want %s, attempt 2, not before %v",
					first.topic, first.state.Attempt, first.at, plan.Tiers[0].Topic, due)
			}
			if first.state.OriginalTopic != f.topic || first.state.OriginalOffset != 41 ||
				first.state.ErrorType != "java.lang.IllegalStateException" {
				t.Errorf("state from Spring's headers %+v: want original %s@41, error type java.lang.IllegalStateException", first.state, f.topic)
			}
			d := s.dltOf("k")[0]
			if d.state.Reason != listener.ReasonExhausted || d.state.Attempt != 3 || d.state.OriginalTopic != f.topic ||
				d.state.OriginalOffset != 41 {
				t.Errorf("DLT state %+v: want exhausted after 3 deliveries, original %s@41", d.state, f.topic)
			}
			var springKeys int
			for _, h := range d.headers {
				if spring.IsSpringHeader(h.Key) {
					springKeys++
				}
			}
			if tc.write {
				st, ok, err := spring.DecodeDeadLetter(d.headers)
				if !ok || err != nil || st.Attempt != 3 || st.OriginalTopic != f.topic || st.OriginalOffset != 41 {
					t.Errorf("Spring headers on the DLT record decode to %+v, %v, %v: want attempt 3 from %s@41", st, ok, err, f.topic)
				}
			} else if springKeys != 0 {
				t.Errorf("the DLT record carries %d Spring headers; with Read only they are removed", springKeys)
			}
			if !hasHeader(d.headers, "trace-id") {
				t.Errorf("the user header was not kept: %v", d.headers)
			}
		})
	}
}

// Without SpringHeaders, a Spring-written retry record has no kretry
// headers: it is dead-lettered as corrupt, never handed to the handler.
func TestSpringTierRecordWithoutOptionIsCorrupt(t *testing.T) {
	f := newFixture(t, 1)
	s := newScript(failTimes(nil))
	l := f.listener(t, s, listener.Attempts(3))
	plan := l.Plan()
	f.c.CreateTopic(plan.Tiers[0].Topic, 1)
	f.c.Produce(springTierRecord(plan.Tiers[0].Topic, f.topic, "k", time.Now()))
	started(t, l)
	kafkatest.Eventually(t, waitFor, func() bool { return len(s.dltOf("k")) == 1 }, "k in the DLT handler")
	if n := s.count("k"); n != 0 {
		t.Errorf("k handed to the handler %d times, want 0", n)
	}
	if st := s.dltOf("k")[0].state; st.Reason != retry.ReasonCorruptHeaders {
		t.Errorf("reason %q, want %q", st.Reason, retry.ReasonCorruptHeaders)
	}
}

// A kretry listener with Write publishes retry records a Spring service
// can read: spring.Decode on the tier record gives the same state as
// kretry's own headers.
func TestSpringWriteStampsTierRecords(t *testing.T) {
	f := newFixture(t, 1)
	s := newScript(failTimes(map[string]int{"k": 1}))
	l := f.listener(t, s, listener.Attempts(2), listener.Backoff(strategy.FixedBackoff(100*time.Millisecond)),
		listener.SpringHeaders(spring.Write))
	f.c.Produce(rec(f.topic, "k"))
	started(t, l)
	kafkatest.Eventually(t, waitFor, func() bool { return len(s.eventsOf(listener.EventHandled)) == 1 }, "k handled on retry")
	recs := kafkatest.ReadTopic(t, f.c.Admin, f.c.Seeds, l.Plan().Tiers[0].Topic)
	if len(recs) != 1 {
		t.Fatalf("%d records on the tier, want 1", len(recs))
	}
	own, ok, err := retry.Decode(recs[0].Headers)
	if !ok || err != nil {
		t.Fatalf("kretry headers: %v %v", ok, err)
	}
	sp, ok, err := spring.Decode(recs[0].Headers)
	if !ok || err != nil {
		t.Fatalf("Spring headers: %v %v", ok, err)
	}
	if sp.Attempt != own.Attempt || !sp.Due.Equal(own.Due) || sp.OriginalTopic != own.OriginalTopic ||
		sp.OriginalOffset != own.OriginalOffset || sp.Error != own.Error {
		t.Errorf("Spring view %+v differs from kretry's %+v", sp, own)
	}
}

func hasHeader(hs []kgo.RecordHeader, key string) bool {
	for _, h := range hs {
		if h.Key == key {
			return true
		}
	}
	return false
}
