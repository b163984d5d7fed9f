package retry_test

import (
	"fmt"
	"math"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/kretry/kretry/retry"
)

// followerState is a valid follower: a main-topic record queued behind the
// record at original offset 40 of its key, with no delivery yet (attempt 1,
// no first failure).
func followerState() retry.State {
	s := tierState()
	s.Attempt, s.FirstFailure, s.Error, s.ErrorType = 1, time.Time{}, "", ""
	s.OriginalOffset, s.Group, s.Follower, s.Follows = 42, "billing", true, 40
	return s
}

// headerValues returns the values of the headers named key, in order.
func headerValues(headers []kgo.RecordHeader, key string) [][]byte {
	var out [][]byte
	for _, h := range headers {
		if h.Key == key {
			out = append(out, h.Value)
		}
	}
	return out
}

// A follower round-trips, with attempt 1 and Go's zero first failure, and
// HeaderFollows is written last, as 8 bytes, only on followers.
func TestFollowerRoundTrip(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		in   retry.State
	}{
		{name: "no delivery yet", in: followerState()},
		{name: "follows offset 0", in: func() retry.State { s := followerState(); s.Follows = 0; return s }()},
		{name: "follows the largest offset", in: func() retry.State { s := followerState(); s.Follows = math.MaxInt64; return s }()},
		{name: "follows a negative offset", in: func() retry.State { s := followerState(); s.Follows = -1; return s }()},
		{name: "later attempt with a first failure", in: func() retry.State {
			s := followerState()
			s.Attempt, s.FirstFailure, s.Error, s.ErrorType = 3, base, "boom", "T"
			return s
		}()},
		{name: "without group or error", in: func() retry.State { s := followerState(); s.Group = ""; return s }()},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			hs := tt.in.Append(nil, 0)
			last := hs[len(hs)-1]
			if last.Key != retry.HeaderFollows || string(last.Value) != string(be64(tt.in.Follows)) {
				t.Fatalf("last header %s=% x, want %s=% x", last.Key, last.Value, retry.HeaderFollows, be64(tt.in.Follows))
			}
			if n := len(headerValues(hs, retry.HeaderFollows)); n != 1 {
				t.Fatalf("%d %s headers, want 1", n, retry.HeaderFollows)
			}
			got, ok, err := retry.Decode(hs)
			if err != nil || !ok {
				t.Fatalf("Decode = _, %v, %v", ok, err)
			}
			if got != tt.in {
				t.Fatalf("Decode(Append(s)):\n got %+v\nwant %+v", got, tt.in)
			}
			if err := tt.in.Validate(); err != nil {
				t.Fatalf("Validate() = %v", err)
			}
			if got.IsDeadLetter() {
				t.Fatal("a follower decodes as a dead letter")
			}
		})
	}

	// Not a follower: no header, whatever Follows holds.
	s := tierState()
	s.Follows = 40
	if v := headerValues(s.Append(nil, 0), retry.HeaderFollows); v != nil {
		t.Fatalf("Follower false wrote %s % x", retry.HeaderFollows, v)
	}
	if got, _, err := retry.Decode(s.Append(nil, 0)); err != nil || got.Follower || got.Follows != 0 {
		t.Fatalf("Decode of a non-follower = %+v, %v; want Follower false, Follows 0", got, err)
	}
}

// followerDecodeErrors are the cases of TestDecodeErrors for followers:
// HeaderFollows is what allows attempt 1 on a retry-tier record; it is not
// allowed on a dead-letter record; it must be 8 bytes and appear once.
func followerDecodeErrors() []decodeErrorCase {
	follower := followerState().Append(nil, 0)
	dlt := dltState().Append(nil, 0)
	withFollows := func(hs []kgo.RecordHeader, v []byte) []kgo.RecordHeader {
		return append(hs[:len(hs):len(hs)], header(retry.HeaderFollows, v))
	}
	type test = decodeErrorCase
	tests := []test{
		{
			name:    "attempt 1 without the follows header",
			headers: without(follower, retry.HeaderFollows),
			header:  retry.HeaderAttempt, target: retry.ErrCorruptHeader,
			msg: `kretry: header "kretry-attempt": want >= 2, got 1`,
		},
		{
			name:    "follower with attempt 0",
			headers: replaced(follower, retry.HeaderAttempt, be32(0)),
			header:  retry.HeaderAttempt, target: retry.ErrCorruptHeader,
			msg: `kretry: header "kretry-attempt": want >= 1, got 0`,
		},
		{
			name:    "follower with a negative attempt",
			headers: replaced(follower, retry.HeaderAttempt, be32(math.MinInt32)),
			header:  retry.HeaderAttempt, target: retry.ErrCorruptHeader,
			msg: fmt.Sprintf(`kretry: header "kretry-attempt": want >= 1, got %d`, math.MinInt32),
		},
		{
			name:    "follows on a dead-letter record",
			headers: withFollows(dlt, be64(40)),
			header:  retry.HeaderFollows, target: retry.ErrCorruptHeader,
			msg: `kretry: header "kretry-follows": only a retry-tier record may be a follower, and this one has kretry-reason`,
		},
		{
			name:    "follows on a dead-letter record at attempt 1",
			headers: withFollows(replaced(dlt, retry.HeaderAttempt, be32(1)), be64(40)),
			header:  retry.HeaderFollows, target: retry.ErrCorruptHeader,
			msg: `kretry: header "kretry-follows": only a retry-tier record may be a follower, and this one has kretry-reason`,
		},
		{
			name:    "follows twice",
			headers: duplicated(follower, retry.HeaderFollows),
			header:  retry.HeaderFollows, target: retry.ErrCorruptHeader,
			msg: `kretry: header "kretry-follows" appears 2 times`,
		},
		{
			name:    "follows twice on a record that needs no follows",
			headers: withFollows(withFollows(tierState().Append(nil, 0), be64(1)), be64(1)),
			header:  retry.HeaderFollows, target: retry.ErrCorruptHeader,
			msg: `kretry: header "kretry-follows" appears 2 times`,
		},
		{
			// A follower still needs every header a tier record needs.
			name:    "follower without a due time",
			headers: without(follower, retry.HeaderDue),
			header:  retry.HeaderDue, target: retry.ErrMissingHeader,
			msg: `kretry: header "kretry-due" missing`,
		},
		{
			name:    "follower without a first failure",
			headers: without(follower, retry.HeaderFirstFailure),
			header:  retry.HeaderFirstFailure, target: retry.ErrMissingHeader,
			msg: `kretry: header "kretry-first-failure" missing`,
		},
	}
	for _, n := range []int{0, 1, 4, 7, 9, 16} {
		tests = append(tests, test{
			name:    fmt.Sprintf("follows with %d bytes", n),
			headers: replaced(follower, retry.HeaderFollows, make([]byte, n)),
			header:  retry.HeaderFollows, target: retry.ErrCorruptHeader,
			msg: fmt.Sprintf(`kretry: header "kretry-follows": want 8 bytes, got %d`, n),
		})
	}
	// A nil value is a 0-byte value.
	tests = append(tests, test{
		name: "follows with a nil value", headers: replaced(follower, retry.HeaderFollows, nil),
		header: retry.HeaderFollows, target: retry.ErrCorruptHeader,
		msg: `kretry: header "kretry-follows": want 8 bytes, got 0`,
	})
	return tests
}

// A follower's next state is no follower: Advance (it was delivered and
// failed) and DeadLetter clear Follower and Follows, and the hop's record
// carries no kretry-follows, although its source did.
func TestFollowerAdvanceAndDeadLetterClear(t *testing.T) {
	t.Parallel()
	f := followerState()
	src := retry.Next(mainRecord(), "orders-retry", 3, f, 0)
	if v := headerValues(src.Headers, retry.HeaderFollows); len(v) != 1 {
		t.Fatalf("the follower's record has %d %s headers, want 1", len(v), retry.HeaderFollows)
	}

	adv := f.Advance(base.Add(time.Minute), "db: down", "*net.OpError")
	if adv.Follower || adv.Follows != 0 || adv.Attempt != 2 {
		t.Fatalf("Advance = %+v; want no follower, attempt 2", adv)
	}
	if !adv.FirstFailure.IsZero() || adv.OriginalOffset != f.OriginalOffset || adv.Group != f.Group {
		t.Fatalf("Advance changed more than it documents: %+v", adv)
	}
	// The caller sets a follower's first failure; the state then validates
	// like any tier state.
	adv.FirstFailure = base
	hop := retry.Next(src, "orders-retry-2", 3, adv, 0)
	if v := headerValues(hop.Headers, retry.HeaderFollows); v != nil {
		t.Fatalf("the advanced hop carries %s % x", retry.HeaderFollows, v)
	}
	if got, _, err := retry.Decode(hop.Headers); err != nil || got != adv {
		t.Fatalf("Decode(advanced hop) = %+v, %v; want %+v", got, err, adv)
	}

	dead := f.DeadLetter(retry.ReasonFollower)
	if dead.Follower || dead.Follows != 0 || dead.Attempt != 1 || dead.Reason != retry.ReasonFollower || !dead.Due.IsZero() {
		t.Fatalf("DeadLetter = %+v; want no follower, attempt 1, reason %q, no due", dead, retry.ReasonFollower)
	}
	dead.Error = "kretry: follows orders/3/40, dead-lettered"
	dlt := retry.Next(src, "orders-dlt", 3, dead, 0)
	if v := headerValues(dlt.Headers, retry.HeaderFollows); v != nil {
		t.Fatalf("the dead-letter record carries %s % x", retry.HeaderFollows, v)
	}
	got, _, err := retry.Decode(dlt.Headers)
	if err != nil || got != dead {
		t.Fatalf("Decode(dead-lettered follower) = %+v, %v; want %+v", got, err, dead)
	}
	if !got.FirstFailure.IsZero() {
		t.Fatalf("dead-lettered follower's first failure %v, want Go's zero time", got.FirstFailure)
	}

	// A follower whose headers are corrupt is dead-lettered as no
	// follower, with its attempt counted as no delivery.
	bad := &kgo.Record{Topic: "orders-retry", Partition: 3, Offset: 9, Timestamp: base,
		Headers: replaced(src.Headers, retry.HeaderDue, []byte{1})}
	_, _, derr := retry.Decode(bad.Headers)
	c := retry.Corrupt(bad, base, derr)
	if c.Follower || c.Attempt != 1 || c.Reason != retry.ReasonCorruptHeaders || c.OriginalOffset != f.OriginalOffset {
		t.Fatalf("Corrupt(follower) = %+v", c)
	}
	if err := c.Validate(); err != nil {
		t.Fatalf("Corrupt(follower).Validate() = %v", err)
	}
}

// ExampleState_Append_follower encodes a follower: a record put in a retry
// tier behind an earlier record of its key (here the one at offset 5)
// without a handler call. It has had no delivery: its attempt is 1 and its
// first failure is Go's zero time.
func ExampleState_Append_follower() {
	s := retry.State{
		Attempt:           1,
		Due:               time.Date(2026, 1, 1, 0, 0, 1, 500_000_000, time.UTC),
		OriginalTopic:     "orders",
		OriginalPartition: 0,
		OriginalOffset:    7,
		OriginalTimestamp: time.Date(2025, 12, 31, 23, 59, 59, 0, time.UTC),
		Group:             "billing",
		Follower:          true,
		Follows:           5,
	}
	headers := s.Append(nil, 0)
	for _, h := range headers {
		if h.Key == retry.HeaderOriginalTopic || h.Key == retry.HeaderGroup {
			fmt.Printf("%-26s %q\n", h.Key, h.Value)
		} else {
			fmt.Printf("%-26s % x\n", h.Key, h.Value)
		}
	}

	got, _, err := retry.Decode(headers)
	fmt.Println(err, got.Follower, got.Follows, got.Attempt, got.FirstFailure.IsZero())
	// Output:
	// kretry-attempt             00 00 00 01
	// kretry-due                 00 00 01 9b 76 da ad dc
	// kretry-original-topic      "orders"
	// kretry-original-partition  00 00 00 00
	// kretry-original-offset     00 00 00 00 00 00 00 07
	// kretry-original-timestamp  00 00 01 9b 76 da a4 18
	// kretry-first-failure       ff ff c7 7c ed d3 28 00
	// kretry-group               "billing"
	// kretry-follows             00 00 00 00 00 00 00 05
	// <nil> true 5 1 true
}
