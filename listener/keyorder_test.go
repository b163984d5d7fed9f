package listener_test

import (
	"context"
	"encoding/binary"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/kretry/kretry/config"
	"github.com/kretry/kretry/internal/kafkatest"
	"github.com/kretry/kretry/listener"
	"github.com/kretry/kretry/retry"
	"github.com/kretry/kretry/strategy"
)

// orderChecker is a handler for key-order tests: a record's value is
// "<key>/<seq>", seq counting the key's records in the order they were
// produced. It fails a record's first plan(key, seq) deliveries, and
// records every call.
type orderChecker struct {
	mu    sync.Mutex
	plan  func(key string, seq int) int
	calls map[string][]int       // per key, the seq of every call, in call order
	tries map[string]int         // per "key/seq", calls so far
	ok    map[string]int         // per "key/seq", successful calls
	first map[string][]int       // per key, seqs in the order of their first success
	dlt   map[string][]dltRecord // per key, DLT handler calls
}

type dltRecord struct {
	seq    int
	reason string
}

func newOrderChecker(plan func(key string, seq int) int) *orderChecker {
	return &orderChecker{plan: plan, calls: map[string][]int{}, tries: map[string]int{}, ok: map[string]int{},
		first: map[string][]int{}, dlt: map[string][]dltRecord{}}
}

func parseSeq(v []byte) (string, int) {
	key, seq, _ := strings.Cut(string(v), "/")
	n, _ := strconv.Atoi(seq)
	return key, n
}

func (o *orderChecker) Handle(_ context.Context, rec *kgo.Record) error {
	key, seq := parseSeq(rec.Value)
	o.mu.Lock()
	defer o.mu.Unlock()
	o.calls[key] = append(o.calls[key], seq)
	id := string(rec.Value)
	o.tries[id]++
	if o.tries[id] <= o.plan(key, seq) {
		return fmt.Errorf("call %d of %s: %w", o.tries[id], id, errBoom)
	}
	if o.ok[id]++; o.ok[id] == 1 {
		o.first[key] = append(o.first[key], seq)
	}
	return nil
}

func (o *orderChecker) HandleDLT(_ context.Context, rec *kgo.Record, st retry.State) error {
	key, seq := parseSeq(rec.Value)
	o.mu.Lock()
	defer o.mu.Unlock()
	o.dlt[key] = append(o.dlt[key], dltRecord{seq: seq, reason: st.Reason})
	return nil
}

// outcomes counts the records with a final outcome: handled, or given to
// the DLT handler.
func (o *orderChecker) outcomes() int {
	o.mu.Lock()
	defer o.mu.Unlock()
	n := len(o.ok)
	for _, d := range o.dlt {
		n += len(d)
	}
	return n
}

// check fails t for every key whose handler calls went back to an earlier
// record (a record handled while an earlier one of its key waited), or
// whose first successes are out of produce order.
func (o *orderChecker) check(t *testing.T) {
	t.Helper()
	o.mu.Lock()
	defer o.mu.Unlock()
	for key, calls := range o.calls {
		for i := 1; i < len(calls); i++ {
			if calls[i] < calls[i-1] {
				t.Errorf("key %s: handler calls %v go back from record %d to %d", key, calls, calls[i-1], calls[i])
				break
			}
		}
		for i := 1; i < len(o.first[key]); i++ {
			if o.first[key][i] < o.first[key][i-1] {
				t.Errorf("key %s: first successes %v out of order", key, o.first[key])
				break
			}
		}
	}
}

func produceSeq(f fixture, keys, perKey int) {
	var recs []*kgo.Record
	for s := range perKey {
		for k := range keys {
			key := fmt.Sprintf("k%02d", k)
			recs = append(recs, &kgo.Record{Topic: f.topic, Key: []byte(key), Value: fmt.Appendf(nil, "%s/%d", key, s)})
		}
	}
	f.c.Produce(recs...)
}

func (f fixture) keyOrdered(t *testing.T, o *orderChecker, opts ...listener.Opt) *listener.Listener {
	t.Helper()
	base := []listener.Opt{listener.KeyOrder(), listener.DLTHandler(o), listener.Attempts(4),
		listener.Backoff(strategy.ExponentialBackoff(100*time.Millisecond, 2, time.Second))}
	return f.listener(t, o, append(base, opts...)...)
}

// Records of a key are handled in produce order while some of them fail
// across the tiers; records of other keys keep flowing.
func TestKeyOrderFollowersWaitBehindTheirKey(t *testing.T) {
	f := newFixture(t, 2)
	const keys, perKey = 20, 10
	// About 20 % of the records fail 1 to 3 times.
	o := newOrderChecker(func(key string, seq int) int {
		k, _ := strconv.Atoi(key[1:])
		if (k*7+seq*3)%5 == 0 {
			return 1 + (k+seq)%3
		}
		return 0
	})
	s := newScript(nil)
	l := f.keyOrdered(t, o, listener.Hooks(s))
	produceSeq(f, keys, perKey)
	started(t, l)
	kafkatest.Eventually(t, 60*time.Second, func() bool { return o.outcomes() == keys*perKey }, "every record handled")
	o.check(t)
	if n := len(s.eventsOf(listener.EventFollowed)); n == 0 {
		t.Errorf("no record followed its key")
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	for key, d := range o.dlt {
		t.Errorf("key %s dead-lettered %v, want none (3 failures at most, 4 attempts)", key, d)
	}
	// A key with no failure is never held up: its records are handled
	// once each, in order.
	for k := range keys {
		key := fmt.Sprintf("k%02d", k)
		if len(o.calls[key]) < perKey {
			t.Errorf("key %s: %d calls, want at least %d", key, len(o.calls[key]), perKey)
		}
	}
}

// A record with a nil key is not ordered: the ones after a failing one
// are handled while it waits in a tier.
func TestKeyOrderNilKeysAreNotOrdered(t *testing.T) {
	f := newFixture(t, 1)
	o := newOrderChecker(func(_ string, seq int) int {
		if seq == 0 {
			return 1
		}
		return 0
	})
	l := f.keyOrdered(t, o, listener.Backoff(strategy.FixedBackoff(time.Second)))
	var recs []*kgo.Record
	for s := range 3 {
		recs = append(recs, &kgo.Record{Topic: f.topic, Value: fmt.Appendf(nil, "nil/%d", s)})
	}
	f.c.Produce(recs...)
	started(t, l)
	kafkatest.Eventually(t, 30*time.Second, func() bool { return o.outcomes() == 3 }, "every record handled")
	o.mu.Lock()
	defer o.mu.Unlock()
	if got := fmt.Sprint(o.first["nil"]); got != "[1 2 0]" {
		t.Errorf("nil-key records first handled in the order %s, want [1 2 0]: the failed one retried after the others", got)
	}
}

// Followers of a record that is dead-lettered: released in order by
// default, dead-lettered without a handler call with FollowersDeadLetter.
func TestKeyOrderFollowersOfADeadLetter(t *testing.T) {
	for _, policy := range []string{config.FollowersRelease, config.FollowersDeadLetter} {
		t.Run(policy, func(t *testing.T) {
			f := newFixture(t, 1)
			o := newOrderChecker(func(key string, seq int) int {
				if key == "k00" && seq == 0 {
					return 100 // exhausted
				}
				return 0
			})
			l := f.keyOrdered(t, o, listener.Attempts(2), listener.Backoff(strategy.FixedBackoff(300*time.Millisecond)),
				listener.FollowersOnDeadLetter(policy))
			produceSeq(f, 2, 4)
			started(t, l)
			kafkatest.Eventually(t, 30*time.Second, func() bool { return o.outcomes() == 8 }, "every record's outcome")
			o.check(t)
			o.mu.Lock()
			defer o.mu.Unlock()
			var want string
			if policy == config.FollowersRelease {
				want = "[{0 exhausted}]"
				if got := fmt.Sprint(o.first["k00"]); got != "[1 2 3]" {
					t.Errorf("k00 first successes %s, want [1 2 3] after its record 0 was dead-lettered", got)
				}
			} else {
				want = "[{0 exhausted} {1 follower} {2 follower} {3 follower}]"
				if got := fmt.Sprint(o.calls["k00"]); got != "[0 0]" {
					t.Errorf("k00 handler calls %s, want [0 0]: its followers are dead-lettered without a call", got)
				}
			}
			if got := fmt.Sprint(o.dlt["k00"]); got != want {
				t.Errorf("k00 dead letters %s, want %s", got, want)
			}
			// Under FollowersDeadLetter a marker went to the tier for each
			// dead-lettered record a later one followed (k00/0, 1 and 2:
			// each follower follows the one before it); never under
			// release.
			markers := 0
			for _, r := range f.c.ReadAll(l.Plan().Tiers[0].Topic) {
				if st, _, err := retry.Decode(r.Headers); err == nil && st.Follower && st.Follows == st.OriginalOffset {
					markers++
				}
			}
			if wantMarkers := map[string]int{config.FollowersRelease: 0, config.FollowersDeadLetter: 3}[policy]; markers != wantMarkers {
				t.Errorf("%d dead-letter markers in the tier, want %d", markers, wantMarkers)
			}
			if got := fmt.Sprint(o.first["k01"]); got != "[0 1 2 3]" {
				t.Errorf("k01, never failing, first successes %s, want [0 1 2 3]", got)
			}
		})
	}
}

// A restarted listener rebuilds the keys in retry from the tiers: a
// record produced while its key waits there follows it, though the
// listener that put it there is gone.
func TestKeyOrderRebuiltAfterRestart(t *testing.T) {
	f := newFixture(t, 1)
	o := newOrderChecker(func(key string, seq int) int {
		if key == "k00" && seq == 0 {
			return 1
		}
		return 0
	})
	s := newScript(nil)
	opts := []listener.Opt{listener.Backoff(strategy.FixedBackoff(3 * time.Second)), listener.Hooks(s)}
	l := f.keyOrdered(t, o, opts...)
	produceSeq(f, 1, 2) // k00/0 fails, k00/1 follows it
	stop := started(t, l)
	kafkatest.Eventually(t, 20*time.Second, func() bool { return len(s.eventsOf(listener.EventFollowed)) == 1 }, "k00/1 to follow k00/0")
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	o.mu.Lock()
	if got := fmt.Sprint(o.calls["k00"]); got != "[0]" {
		t.Fatalf("calls before the restart %s, want [0]", got)
	}
	o.mu.Unlock()
	f.c.Produce(&kgo.Record{Topic: f.topic, Key: []byte("k00"), Value: []byte("k00/2")})
	s2 := newScript(nil)
	started(t, f.keyOrdered(t, o, listener.Backoff(strategy.FixedBackoff(3*time.Second)), listener.Hooks(s2)))
	kafkatest.Eventually(t, 30*time.Second, func() bool { return o.outcomes() == 3 }, "every record handled")
	o.check(t)
	o.mu.Lock()
	defer o.mu.Unlock()
	if got := fmt.Sprint(o.calls["k00"]); got != "[0 0 1 2]" {
		t.Errorf("k00 calls %s, want [0 0 1 2]: record 2 follows the records still in the tier", got)
	}
	if n := len(s2.eventsOf(listener.EventFollowed)); n != 1 {
		t.Errorf("%d records followed after the restart, want 1 (k00/2)", n)
	}
}

// At MaxKeysInRetry, a record of a key not in retry waits for a key to
// leave; records of keys in retry still follow them.
func TestKeyOrderMaxKeysInRetry(t *testing.T) {
	f := newFixture(t, 1)
	o := newOrderChecker(func(key string, seq int) int {
		if seq == 0 && key != "k02" {
			return 1
		}
		return 0
	})
	s := newScript(nil)
	l := f.keyOrdered(t, o, listener.MaxKeysInRetry(1), listener.Hooks(s),
		listener.Backoff(strategy.FixedBackoff(500*time.Millisecond)))
	f.c.Produce(
		&kgo.Record{Topic: f.topic, Key: []byte("k00"), Value: []byte("k00/0")},
		&kgo.Record{Topic: f.topic, Key: []byte("k00"), Value: []byte("k00/1")},
		&kgo.Record{Topic: f.topic, Key: []byte("k01"), Value: []byte("k01/0")},
	)
	started(t, l)
	kafkatest.Eventually(t, 30*time.Second, func() bool { return o.outcomes() == 3 }, "every record handled")
	o.check(t)
	o.mu.Lock()
	defer o.mu.Unlock()
	// k01's record waited until k00 left retry, after k00/0 and k00/1
	// were handled.
	if got := fmt.Sprint(o.calls["k00"], o.calls["k01"]); got != "[0 0 1] [0 0]" {
		t.Errorf("calls %s, want [0 0 1] [0 0]", got)
	}
	if n := len(s.eventsOf(listener.EventFollowed)); n != 1 {
		t.Errorf("%d followers, want 1", n)
	}
}

// A tier record whose kretry-follows header is corrupt is dead-lettered as
// corrupt and never handed to the handler.
func TestKeyOrderCorruptFollowerHeader(t *testing.T) {
	f := newFixture(t, 1)
	o := newOrderChecker(func(string, int) int { return 0 })
	l := f.keyOrdered(t, o)
	tier := l.Plan().Tiers[0].Topic
	f.c.CreateTopic(tier, 1)
	st := retry.State{Attempt: 1, Due: time.Now(), OriginalTopic: f.topic, OriginalOffset: 7,
		OriginalTimestamp: time.Now(), Follower: true, Follows: 3, Group: f.group}
	hs := st.Append(nil, 0)
	for i := range hs {
		if hs[i].Key == retry.HeaderFollows {
			hs[i].Value = binary.BigEndian.AppendUint32(nil, 3) // 4 bytes, want 8
		}
	}
	f.c.Produce(&kgo.Record{Topic: tier, Key: []byte("k00"), Value: []byte("k00/9"), Headers: hs})
	started(t, l)
	kafkatest.Eventually(t, 30*time.Second, func() bool { return o.outcomes() == 1 }, "the record dead-lettered")
	o.mu.Lock()
	defer o.mu.Unlock()
	if len(o.calls["k00"]) != 0 {
		t.Errorf("handler called %v for a record with a corrupt follower header", o.calls["k00"])
	}
	if d := o.dlt["k00"]; len(d) != 1 || !strings.HasPrefix(d[0].reason, retry.ReasonCorruptHeaders) {
		t.Errorf("dead letters %v, want one with reason %s", d, retry.ReasonCorruptHeaders)
	}
}

func TestKeyOrderRefusals(t *testing.T) {
	f := newFixture(t, 4)
	o := newOrderChecker(func(string, int) int { return 0 })
	_, err := listener.NewBatch(f.c.Seeds, f.topic, listener.BatchHandlerFunc(func(context.Context, []*kgo.Record) error { return nil }),
		listener.KeyOrder())
	if err == nil || !strings.Contains(err.Error(), "KeyOrder does not work with batch handlers") {
		t.Errorf("NewBatch with KeyOrder: %v", err)
	}
	for _, tc := range []struct {
		opts []listener.Opt
		want string
	}{
		{[]listener.Opt{listener.FollowersOnDeadLetter(config.FollowersDeadLetter)}, "FollowersOnDeadLetter applies only to key-ordered retries"},
		{[]listener.Opt{listener.KeyOrder(), listener.FollowersOnDeadLetter("drop")}, `FollowersOnDeadLetter must be "release" or "dead-letter", got "drop"`},
		{[]listener.Opt{listener.KeyOrder(), listener.MaxKeysInRetry(-1)}, "MaxKeysInRetry must be >= 1"},
		{[]listener.Opt{listener.MaxKeysInRetry(5)}, "MaxKeysInRetry applies only to key-ordered retries"},
		{[]listener.Opt{listener.KeyOrder(), listener.ExactlyOnce("x")}, "KeyOrder does not work with ExactlyOnce"},
	} {
		_, err := listener.New(f.c.Seeds, f.topic, o, tc.opts...)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("options %d: %v, want %q", len(tc.opts), err, tc.want)
		}
	}
	// A tier with fewer partitions than the main topic fails Run.
	l := f.keyOrdered(t, o)
	f.c.CreateTopic(l.Plan().Tiers[0].Topic, 2)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := l.Run(ctx); err == nil || !strings.Contains(err.Error(), "has 2 partitions, fewer than the main topic") {
		t.Errorf("Run with a 2-partition tier under a 4-partition main topic: %v", err)
	}
}

// A listener that finds a dead-letter marker in a tier when its lane is
// assigned dead-letters the followers of the record it names, as the
// instance that wrote it would have; without the marker they are handled.
func TestKeyOrderDeadLetterMarkerSurvivesRestart(t *testing.T) {
	for _, withMarker := range []bool{true, false} {
		t.Run(fmt.Sprint("marker=", withMarker), func(t *testing.T) {
			f := newFixture(t, 1)
			o := newOrderChecker(func(string, int) int { return 0 })
			l := f.keyOrdered(t, o, listener.FollowersOnDeadLetter(config.FollowersDeadLetter))
			tier := l.Plan().Tiers[0].Topic
			f.c.CreateTopic(tier, 1)
			now := time.Now()
			state := func(off, follows int64) retry.State {
				return retry.State{Attempt: 1, Due: now, OriginalTopic: f.topic, OriginalOffset: off,
					OriginalTimestamp: now, Follower: true, Follows: follows, Group: f.group}
			}
			recs := []*kgo.Record{{Topic: tier, Key: []byte("k00"), Value: []byte("k00/1"), Headers: state(1, 0).Append(nil, 0)}}
			if withMarker {
				recs = append(recs, &kgo.Record{Topic: tier, Key: []byte("k00"), Headers: state(0, 0).Append(nil, 0)})
			}
			f.c.Produce(recs...)
			started(t, l)
			kafkatest.Eventually(t, 30*time.Second, func() bool { return o.outcomes() == 1 }, "the follower's outcome")
			o.mu.Lock()
			defer o.mu.Unlock()
			if withMarker {
				if len(o.calls["k00"]) != 0 || fmt.Sprint(o.dlt["k00"]) != "[{1 follower}]" {
					t.Errorf("calls %v, dead letters %v: want the follower dead-lettered without a call", o.calls["k00"], o.dlt["k00"])
				}
			} else if fmt.Sprint(o.calls["k00"]) != "[1]" || len(o.dlt["k00"]) != 0 {
				t.Errorf("calls %v, dead letters %v: want the follower handled", o.calls["k00"], o.dlt["k00"])
			}
		})
	}
}

// Two copies of one record in a tier (a crash between a move's publish and
// the commit of the copy it replaced): the rebuild holds the record once,
// the first copy reached is delivered and the other passed over.
func TestKeyOrderStaleCopyPassedOver(t *testing.T) {
	f := newFixture(t, 1)
	o := newOrderChecker(func(string, int) int { return 0 })
	s := newScript(nil)
	l := f.keyOrdered(t, o, listener.Hooks(s))
	tiers := l.Plan().Tiers
	f.c.CreateTopic(tiers[0].Topic, 1)
	f.c.CreateTopic(tiers[1].Topic, 1)
	now := time.Now()
	st := retry.State{Attempt: 2, Due: now, OriginalTopic: f.topic, OriginalOffset: 4,
		OriginalTimestamp: now, FirstFailure: now, Group: f.group}
	copyOf := func(tier string, attempt int32) *kgo.Record {
		st := st
		st.Attempt = attempt
		return &kgo.Record{Topic: tier, Key: []byte("k00"), Value: []byte("k00/4"), Headers: st.Append(nil, 0)}
	}
	f.c.Produce(copyOf(tiers[0].Topic, 2), copyOf(tiers[1].Topic, 3))
	started(t, l)
	kafkatest.Eventually(t, 30*time.Second, func() bool {
		return o.outcomes() == 1 && len(s.eventsOf(listener.EventSkipped)) == 1
	}, "one delivery and one copy passed over")
	o.mu.Lock()
	defer o.mu.Unlock()
	if got := fmt.Sprint(o.calls["k00"]); got != "[4]" {
		t.Errorf("calls %s, want [4]: one delivery of the record", got)
	}
	if e := s.eventsOf(listener.EventSkipped)[0]; e.Reason != listener.ReasonStaleCopy {
		t.Errorf("skipped %+v, want reason %s", e, listener.ReasonStaleCopy)
	}
}
