package retry_test

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/kretry/kretry/retry"
)

// base is a whole-millisecond UTC time, as Decode returns times.
var base = time.Date(2026, 3, 14, 15, 9, 26, 535_000_000, time.UTC)

// tierState is a valid retry-tier State with whole-millisecond UTC times.
func tierState() retry.State {
	return retry.State{
		Attempt:           2,
		Due:               base.Add(5 * time.Second),
		OriginalTopic:     "orders",
		OriginalPartition: 3,
		OriginalOffset:    42,
		OriginalTimestamp: base.Add(-time.Minute),
		FirstFailure:      base,
		Error:             "payment service: connection refused",
		ErrorType:         "*net.OpError",
	}
}

func dltState() retry.State {
	s := tierState()
	s.Due = time.Time{}
	s.Reason = retry.ReasonExhausted
	return s
}

func ms(v int64) time.Time { return time.UnixMilli(v).UTC() }

func header(key string, value []byte) kgo.RecordHeader {
	return kgo.RecordHeader{Key: key, Value: value}
}

func TestRoundTrip(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		in   retry.State
		want retry.State // defaults to in
	}{
		{name: "tier", in: tierState()},
		{name: "dead letter", in: dltState()},
		{name: "dead letter keeps a due time", in: func() retry.State {
			s := dltState()
			s.Due = base
			return s
		}()},
		{name: "maximum values", in: retry.State{
			Attempt:           math.MaxInt32,
			Due:               ms(math.MaxInt64),
			OriginalTopic:     strings.Repeat("t", 249),
			OriginalPartition: math.MaxInt32,
			OriginalOffset:    math.MaxInt64,
			OriginalTimestamp: ms(math.MaxInt64),
			FirstFailure:      ms(math.MaxInt64),
			Error:             strings.Repeat("e", retry.DefaultMaxErrorBytes),
			ErrorType:         strings.Repeat("y", retry.MaxErrorTypeBytes),
		}},
		{name: "minimum values", in: retry.State{
			Attempt:           2,
			Due:               ms(math.MinInt64),
			OriginalTopic:     "t",
			OriginalPartition: math.MinInt32,
			OriginalOffset:    math.MinInt64,
			OriginalTimestamp: ms(math.MinInt64),
			FirstFailure:      ms(math.MinInt64),
			Reason:            "r",
		}},
		{name: "zero partition offset and epoch times", in: retry.State{
			Attempt:       2,
			Due:           ms(0),
			OriginalTopic: "a.b_c-d",
			FirstFailure:  ms(0),
			// OriginalTimestamp zero: encodes as Go's zero time and
			// decodes back to it.
		}},
		{name: "empty error and type are omitted and decode empty", in: func() retry.State {
			s := tierState()
			s.Error, s.ErrorType = "", ""
			return s
		}()},
		{name: "excluded reason", in: dltState().DeadLetter(retry.ReasonExcludedPrefix + "validation")},
		{name: "non-ASCII text", in: func() retry.State {
			s := tierState()
			s.OriginalTopic = "commandes-été"
			s.Error = "échec: 支払い失敗 😀"
			return s
		}()},
		{
			name: "sub-millisecond times: due rounds up, others truncate",
			in: func() retry.State {
				s := tierState()
				s.Due = base.Add(time.Nanosecond)
				s.FirstFailure = base.Add(999 * time.Microsecond)
				s.OriginalTimestamp = base.Add(time.Nanosecond)
				return s
			}(),
			want: func() retry.State {
				s := tierState()
				s.Due = base.Add(time.Millisecond)
				s.OriginalTimestamp = base
				return s
			}(),
		},
		{
			name: "local times decode as UTC",
			in: func() retry.State {
				s := tierState()
				loc := time.FixedZone("UTC+5", 5*3600)
				s.Due = s.Due.In(loc)
				s.FirstFailure = s.FirstFailure.In(loc)
				return s
			}(),
			want: tierState(),
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			want := tt.want
			if want == (retry.State{}) {
				want = tt.in
			}
			got, ok, err := retry.Decode(tt.in.Append(nil, 0))
			if err != nil || !ok {
				t.Fatalf("Decode(Append(s)) = _, %v, %v; want true, nil", ok, err)
			}
			if got != want {
				t.Fatalf("Decode(Append(s)):\n got %+v\nwant %+v", got, want)
			}
			if err := tt.in.Validate(); err != nil {
				t.Fatalf("Validate() = %v", err)
			}
		})
	}
}

// TestRoundTripRandom checks Decode(Append(s)) against the documented
// normalisation for many generated States.
func TestRoundTripRandom(t *testing.T) {
	t.Parallel()
	rng := rand.New(rand.NewPCG(1, 2))
	pick32 := func() int32 {
		return [...]int32{0, 1, -1, math.MaxInt32, math.MinInt32, rng.Int32()}[rng.IntN(6)]
	}
	pick64 := func() int64 {
		return [...]int64{0, 1, -1, math.MaxInt64, math.MinInt64, rng.Int64()}[rng.IntN(6)]
	}
	pickTime := func() time.Time {
		// Whole milliseconds anywhere in int64 range (short of the top,
		// where rounding up would overflow), plus a sub-millisecond part,
		// in a random zone.
		m := [...]int64{0, 1, -1, math.MaxInt64 - 1, math.MinInt64, rng.Int64N(1<<50) - 1<<49}[rng.IntN(6)]
		ns := time.Duration(rng.Int64N(int64(time.Millisecond)))
		return ms(m).Add(ns).In(time.FixedZone("z", (rng.IntN(24)-12)*3600))
	}
	pickText := func(max int) string {
		b := make([]byte, rng.IntN(max))
		for i := range b {
			const alphabet = "aZ9 \xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\xff"
			b[i] = alphabet[rng.IntN(len(alphabet))]
		}
		return string(b)
	}
	for i := range 2000 {
		s := retry.State{
			Attempt:           2 + rng.Int32N(math.MaxInt32-1),
			OriginalTopic:     "x" + pickText(50),
			OriginalPartition: pick32(),
			OriginalOffset:    pick64(),
			OriginalTimestamp: pickTime(),
			FirstFailure:      pickTime(),
			Error:             pickText(2 * retry.DefaultMaxErrorBytes),
			ErrorType:         pickText(2 * retry.MaxErrorTypeBytes),
		}
		if rng.IntN(2) == 0 {
			s.Reason = "r" + pickText(20)
		}
		if s.Reason == "" || rng.IntN(2) == 0 {
			s.Due = pickTime()
		}
		maxErr := rng.IntN(3 * retry.DefaultMaxErrorBytes / 2)

		got, ok, err := retry.Decode(s.Append(nil, maxErr))
		if err != nil || !ok {
			t.Fatalf("#%d: Decode(Append(%+v)) = _, %v, %v", i, s, ok, err)
		}
		want := s
		want.OriginalTopic = strings.ToValidUTF8(s.OriginalTopic, "\uFFFD")
		want.Reason = strings.ToValidUTF8(s.Reason, "\uFFFD")
		want.OriginalTimestamp = ms(s.OriginalTimestamp.UnixMilli())
		want.FirstFailure = ms(s.FirstFailure.UnixMilli())
		if !s.Due.IsZero() {
			want.Due = ms(s.Due.UnixMilli())
			if s.Due.Nanosecond()%1e6 != 0 {
				want.Due = want.Due.Add(time.Millisecond)
			}
		}
		want.Error, want.ErrorType = got.Error, got.ErrorType // checked below
		if got != want {
			t.Fatalf("#%d:\n got %+v\nwant %+v", i, got, want)
		}
		bound := maxErr
		if bound <= 0 {
			bound = retry.DefaultMaxErrorBytes
		}
		checkTruncated(t, s.Error, got.Error, bound)
		checkTruncated(t, s.ErrorType, got.ErrorType, retry.MaxErrorTypeBytes)
	}
}

// checkTruncated checks that got is in, made valid UTF-8 and cut to bound as
// State.Append documents.
func checkTruncated(t *testing.T, in, got string, bound int) {
	t.Helper()
	valid := strings.ToValidUTF8(in, "\uFFFD")
	if !utf8.ValidString(got) {
		t.Fatalf("result %q is not valid UTF-8", got)
	}
	if len(valid) <= bound {
		if got != valid {
			t.Fatalf("text within the bound changed: got %q, want %q", got, valid)
		}
		return
	}
	if len(got) > bound {
		t.Fatalf("len(result) = %d, want <= %d", len(got), bound)
	}
	prefix := got
	if bound >= len(retry.TruncationMarker) {
		var ok bool
		if prefix, ok = strings.CutSuffix(got, retry.TruncationMarker); !ok {
			t.Fatalf("truncated text %q lacks the marker", got)
		}
	}
	if !strings.HasPrefix(valid, prefix) {
		t.Fatalf("truncated text %q is not a prefix of the input", prefix)
	}
	// The cut is as late as a rune boundary allows.
	if room := bound - len(got); room > 0 && room >= utf8.UTFMax {
		t.Fatalf("cut %d bytes before the bound", room)
	}
}

func TestTruncation(t *testing.T) {
	t.Parallel()
	marker := retry.TruncationMarker
	tests := []struct {
		name   string
		text   string
		max    int
		want   string
		isType bool
	}{
		{name: "under the bound", text: "abc", max: 20, want: "abc"},
		{name: "exactly the bound", text: strings.Repeat("a", 20), max: 20, want: strings.Repeat("a", 20)},
		{name: "one over", text: strings.Repeat("a", 21), max: 20, want: "aaaaaa" + marker},
		{name: "two-byte rune straddles the cut", text: "aaaaaéé" + strings.Repeat("z", 20), max: 20, want: "aaaaa" + marker},
		{name: "three-byte rune straddles the cut", text: "aaaa€" + strings.Repeat("z", 20), max: 20, want: "aaaa" + marker},
		{name: "four-byte rune ends at the cut", text: "aa😀" + strings.Repeat("z", 20), max: 20, want: "aa😀" + marker},
		{name: "bound equals the marker", text: strings.Repeat("a", 30), max: len(marker), want: marker},
		{name: "bound below the marker cuts bare", text: "ab😀cd", max: 5, want: "ab"},
		{name: "zero means default", text: strings.Repeat("a", 5000), max: 0,
			want: strings.Repeat("a", retry.DefaultMaxErrorBytes-len(marker)) + marker},
		{name: "negative means default", text: strings.Repeat("a", 4097), max: -1,
			want: strings.Repeat("a", retry.DefaultMaxErrorBytes-len(marker)) + marker},
		{name: "invalid bytes are replaced before cutting", text: "a\xffb", max: 20, want: "a\uFFFDb"},
		{name: "error type bounded to 256", text: strings.Repeat("T", 300), isType: true,
			want: strings.Repeat("T", retry.MaxErrorTypeBytes-len(marker)) + marker},
		{name: "error type at 256 kept", text: strings.Repeat("T", 256), isType: true,
			want: strings.Repeat("T", 256)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s := tierState()
			if tt.isType {
				s.ErrorType = tt.text
			} else {
				s.Error = tt.text
			}
			got, _, err := retry.Decode(s.Append(nil, tt.max))
			if err != nil {
				t.Fatal(err)
			}
			field := got.Error
			if tt.isType {
				field = got.ErrorType
			}
			if field != tt.want {
				t.Fatalf("got %q (%d bytes), want %q (%d bytes)", field, len(field), tt.want, len(tt.want))
			}
		})
	}
}

func TestDueRoundsUp(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		due  time.Time
		want time.Time
	}{
		{name: "1.0000001 ms", due: ms(1).Add(100 * time.Nanosecond), want: ms(2)},
		{name: "whole millisecond unchanged", due: ms(1), want: ms(1)},
		{name: "just under a millisecond", due: ms(1).Add(-time.Nanosecond), want: ms(1)},
		{name: "before the epoch", due: ms(-1).Add(time.Nanosecond), want: ms(0)},
		{name: "real clock value", due: base.Add(123456 * time.Nanosecond), want: base.Add(time.Millisecond)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s := tierState()
			s.Due = tt.due
			got, _, err := retry.Decode(s.Append(nil, 0))
			if err != nil {
				t.Fatal(err)
			}
			if !got.Due.Equal(tt.want) {
				t.Fatalf("Due = %v, want %v", got.Due, tt.want)
			}
			if got.Due.Before(tt.due) {
				t.Fatalf("decoded due %v is earlier than encoded %v", got.Due, tt.due)
			}
		})
	}
}

// without returns headers minus every header named key.
func without(headers []kgo.RecordHeader, key string) []kgo.RecordHeader {
	var out []kgo.RecordHeader
	for _, h := range headers {
		if h.Key != key {
			out = append(out, h)
		}
	}
	return out
}

// replaced returns headers with the value of key replaced.
func replaced(headers []kgo.RecordHeader, key string, value []byte) []kgo.RecordHeader {
	out := make([]kgo.RecordHeader, len(headers))
	for i, h := range headers {
		if h.Key == key {
			h.Value = value
		}
		out[i] = h
	}
	return out
}

// duplicated returns headers with the header named key appended a second time.
func duplicated(headers []kgo.RecordHeader, key string) []kgo.RecordHeader {
	out := append([]kgo.RecordHeader(nil), headers...)
	for _, h := range headers {
		if h.Key == key {
			return append(out, h)
		}
	}
	return append(out, header(key, []byte("x")))
}

// decodeErrorCase is a header list Decode must reject with a
// *DecodeError for header that wraps target.
type decodeErrorCase struct {
	name    string
	headers []kgo.RecordHeader
	header  string
	target  error
	msg     string // exact message, when set
}

func TestDecodeErrors(t *testing.T) {
	t.Parallel()
	tier := tierState().Append(nil, 0)
	dlt := dltState().Append(nil, 0)

	type test = decodeErrorCase
	var tests []test

	required := []string{
		retry.HeaderAttempt, retry.HeaderDue, retry.HeaderOriginalTopic,
		retry.HeaderOriginalPartition, retry.HeaderOriginalOffset,
		retry.HeaderOriginalTimestamp, retry.HeaderFirstFailure,
	}
	for _, key := range required {
		tests = append(tests, test{
			name: "tier missing " + key, headers: without(tier, key), header: key,
			target: retry.ErrMissingHeader, msg: fmt.Sprintf("kretry: header %q missing", key),
		})
		if key != retry.HeaderDue {
			tests = append(tests, test{
				name: "DLT missing " + key, headers: without(dlt, key), header: key,
				target: retry.ErrMissingHeader,
			})
		}
	}

	widths := map[string]int{
		retry.HeaderAttempt: 4, retry.HeaderDue: 8, retry.HeaderOriginalPartition: 4,
		retry.HeaderOriginalOffset: 8, retry.HeaderOriginalTimestamp: 8, retry.HeaderFirstFailure: 8,
	}
	for key, width := range widths {
		for _, n := range []int{0, 1, 3, width - 1, width + 1, 16} {
			tests = append(tests, test{
				name:    fmt.Sprintf("%s with %d bytes", key, n),
				headers: replaced(tier, key, make([]byte, n)), header: key,
				target: retry.ErrCorruptHeader,
				msg:    fmt.Sprintf("kretry: header %q: want %d bytes, got %d", key, width, n),
			})
		}
	}

	all := append(required, retry.HeaderError, retry.HeaderErrorType, retry.HeaderReason)
	for _, key := range all {
		headers := tier
		if key == retry.HeaderReason {
			headers = dlt
		}
		tests = append(tests, test{
			name: "duplicate " + key, headers: duplicated(headers, key), header: key,
			target: retry.ErrCorruptHeader, msg: fmt.Sprintf("kretry: header %q appears 2 times", key),
		})
	}
	tests = append(tests, test{
		name:    "triplicate attempt",
		headers: duplicated(duplicated(tier, retry.HeaderAttempt), retry.HeaderAttempt),
		header:  retry.HeaderAttempt, target: retry.ErrCorruptHeader,
		msg: `kretry: header "kretry-attempt" appears 3 times`,
	})
	tests = append(tests, test{
		name:    "reason on a tier record with a duplicated error",
		headers: duplicated(append(tier[:len(tier):len(tier)], header(retry.HeaderReason, []byte("r"))), retry.HeaderError),
		header:  retry.HeaderError, target: retry.ErrCorruptHeader,
	})

	for _, a := range []int32{1, 0, -1, math.MinInt32} {
		tests = append(tests, test{
			name:    fmt.Sprintf("attempt %d", a),
			headers: replaced(tier, retry.HeaderAttempt, be32(a)), header: retry.HeaderAttempt,
			target: retry.ErrCorruptHeader,
			msg:    fmt.Sprintf(`kretry: header "kretry-attempt": want >= 2, got %d`, a),
		})
	}
	tests = append(tests,
		test{
			name:    "empty original topic",
			headers: replaced(tier, retry.HeaderOriginalTopic, nil), header: retry.HeaderOriginalTopic,
			target: retry.ErrCorruptHeader, msg: `kretry: header "kretry-original-topic": must not be empty`,
		},
		test{
			name:    "empty reason",
			headers: replaced(dlt, retry.HeaderReason, []byte{}), header: retry.HeaderReason,
			target: retry.ErrCorruptHeader, msg: `kretry: header "kretry-reason": must not be empty`,
		},
		test{
			name:    "due is Go's zero time",
			headers: replaced(tier, retry.HeaderDue, be64(time.Time{}.UnixMilli())), header: retry.HeaderDue,
			target: retry.ErrCorruptHeader,
		},
		test{
			name:    "only an error header",
			headers: []kgo.RecordHeader{header(retry.HeaderError, []byte("boom"))},
			header:  retry.HeaderAttempt, target: retry.ErrMissingHeader,
		},
		test{
			// The first problem in header-constant order is reported.
			name: "several problems: first in order wins",
			headers: replaced(without(tier, retry.HeaderFirstFailure),
				retry.HeaderOriginalOffset, []byte{1}),
			header: retry.HeaderOriginalOffset, target: retry.ErrCorruptHeader,
		},
	)
	tests = append(tests, followerDecodeErrors()...)

	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, ok, err := retry.Decode(tt.headers)
			if err == nil {
				t.Fatalf("Decode succeeded with %+v", got)
			}
			if !ok {
				t.Errorf("ok = false, want true: kretry headers were present")
			}
			if got != (retry.State{}) {
				t.Errorf("State = %+v, want zero on error", got)
			}
			if !errors.Is(err, tt.target) {
				t.Errorf("errors.Is(%v, %v) = false", err, tt.target)
			}
			other := retry.ErrMissingHeader
			if tt.target == retry.ErrMissingHeader {
				other = retry.ErrCorruptHeader
			}
			if errors.Is(err, other) {
				t.Errorf("error %v also matches %v", err, other)
			}
			var he *retry.DecodeError
			if !errors.As(err, &he) || he.Header != tt.header {
				t.Errorf("error %v: want a *DecodeError for %q", err, tt.header)
			}
			if tt.msg != "" && err.Error() != tt.msg {
				t.Errorf("message %q, want %q", err.Error(), tt.msg)
			}
			if !strings.Contains(err.Error(), `"`+tt.header+`"`) {
				t.Errorf("message %q does not name the header", err.Error())
			}
		})
	}
}

func TestDecodeWithoutKretryHeaders(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		headers []kgo.RecordHeader
	}{
		{name: "nil"},
		{name: "empty", headers: []kgo.RecordHeader{}},
		{name: "user headers", headers: []kgo.RecordHeader{header("trace", []byte{1}), header("trace", nil)}},
		{name: "unknown kretry- name is a user header", headers: []kgo.RecordHeader{header("kretry-future", []byte("x"))}},
		{name: "names are case-sensitive", headers: []kgo.RecordHeader{header("Kretry-Attempt", be32(2))}},
		{name: "Spring headers are not ours", headers: []kgo.RecordHeader{header("retry_topic-attempts", be32(2))}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, ok, err := retry.Decode(tt.headers)
			if ok || err != nil || got != (retry.State{}) {
				t.Fatalf("Decode = %+v, %v, %v; want zero, false, nil", got, ok, err)
			}
		})
	}
}

func TestDecodeIgnoresUserHeaders(t *testing.T) {
	t.Parallel()
	headers := append([]kgo.RecordHeader{header("a", []byte("1"))}, tierState().Append(nil, 0)...)
	headers = append(headers, header("a", []byte("2")), header("kretry-future", nil))
	got, ok, err := retry.Decode(headers)
	if err != nil || !ok || got != tierState() {
		t.Fatalf("Decode = %+v, %v, %v; want %+v, true, nil", got, ok, err, tierState())
	}
}

func TestInvalidUTF8TextDecodes(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		key   string
		value string
		want  func(retry.State) string
		text  string
	}{
		{name: "error", key: retry.HeaderError, value: "bad \xff\xfe bytes \xc3", text: "bad \uFFFD bytes \uFFFD",
			want: func(s retry.State) string { return s.Error }},
		{name: "error type", key: retry.HeaderErrorType, value: "\x80T", text: "\uFFFDT",
			want: func(s retry.State) string { return s.ErrorType }},
		{name: "original topic", key: retry.HeaderOriginalTopic, value: "or\xffders", text: "or\uFFFDders",
			want: func(s retry.State) string { return s.OriginalTopic }},
		{name: "reason", key: retry.HeaderReason, value: "excluded:\xed\xa0\x80", text: "excluded:\uFFFD",
			want: func(s retry.State) string { return s.Reason }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			headers := dltState().Append(nil, 0)
			got, _, err := retry.Decode(replaced(headers, tt.key, []byte(tt.value)))
			if err != nil {
				t.Fatalf("Decode: %v; invalid UTF-8 must not be an error", err)
			}
			if text := tt.want(got); text != tt.text {
				t.Fatalf("decoded %q, want %q", text, tt.text)
			}
			// And Append writes it back as valid UTF-8.
			for _, h := range got.Append(nil, 0) {
				if h.Key == tt.key && !utf8.Valid(h.Value) {
					t.Fatalf("Append wrote invalid UTF-8 %q", h.Value)
				}
			}
		})
	}
}

func TestReasonOnlyOnDeadLetters(t *testing.T) {
	t.Parallel()
	has := func(headers []kgo.RecordHeader, key string) bool {
		for _, h := range headers {
			if h.Key == key {
				return true
			}
		}
		return false
	}
	tests := []struct {
		name       string
		state      retry.State
		wantReason bool
		wantDue    bool
	}{
		{name: "tier", state: tierState(), wantDue: true},
		{name: "dead letter", state: tierState().DeadLetter(retry.ReasonPermanent), wantReason: true},
		{name: "advanced out of a dead letter", state: dltState().Advance(base, "e", "t"), wantDue: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			headers := tt.state.Append(nil, 0)
			if got := has(headers, retry.HeaderReason); got != tt.wantReason {
				t.Errorf("reason header present = %v, want %v", got, tt.wantReason)
			}
			if got := has(headers, retry.HeaderDue); got != tt.wantDue {
				t.Errorf("due header present = %v, want %v", got, tt.wantDue)
			}
			got, _, err := retry.Decode(headers)
			if err != nil {
				t.Fatal(err)
			}
			if got.IsDeadLetter() != tt.wantReason {
				t.Errorf("IsDeadLetter() = %v, want %v", got.IsDeadLetter(), tt.wantReason)
			}
		})
	}
}

func TestValidate(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		state  retry.State
		header string // "" when valid
	}{
		{name: "tier", state: tierState()},
		{name: "dead letter without due", state: dltState()},
		{name: "zero state", state: retry.State{}, header: retry.HeaderAttempt},
		{name: "tier without due", state: func() retry.State { s := tierState(); s.Due = time.Time{}; return s }(),
			header: retry.HeaderDue},
		{name: "attempt 1", state: func() retry.State { s := tierState(); s.Attempt = 1; return s }(),
			header: retry.HeaderAttempt},
		{name: "empty topic", state: func() retry.State { s := tierState(); s.OriginalTopic = ""; return s }(),
			header: retry.HeaderOriginalTopic},
		// Attempt 1 only on a follower, and no follower among dead letters.
		{name: "follower at attempt 1", state: followerState()},
		{name: "follower at attempt 0", state: func() retry.State { s := followerState(); s.Attempt = 0; return s }(),
			header: retry.HeaderAttempt},
		{name: "follower without a due time", state: func() retry.State { s := followerState(); s.Due = time.Time{}; return s }(),
			header: retry.HeaderDue},
		{name: "dead-letter follower", state: func() retry.State { s := dltState(); s.Follower, s.Follows = true, 40; return s }(),
			header: retry.HeaderFollows},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			err := tt.state.Validate()
			var he *retry.DecodeError
			switch {
			case tt.header == "" && err != nil:
				t.Fatalf("Validate() = %v, want nil", err)
			case tt.header != "" && (!errors.As(err, &he) || he.Header != tt.header):
				t.Fatalf("Validate() = %v, want an error for %q", err, tt.header)
			}
		})
	}
}

func TestIsKretryHeader(t *testing.T) {
	t.Parallel()
	tests := []struct {
		key  string
		want bool
	}{
		{retry.HeaderAttempt, true},
		{retry.HeaderDue, true},
		{retry.HeaderOriginalTopic, true},
		{retry.HeaderOriginalPartition, true},
		{retry.HeaderOriginalOffset, true},
		{retry.HeaderOriginalTimestamp, true},
		{retry.HeaderFirstFailure, true},
		{retry.HeaderError, true},
		{retry.HeaderErrorType, true},
		{retry.HeaderReason, true},
		{retry.HeaderGroup, true},
		{retry.HeaderFollows, true},
		{retry.HeaderReplayRun, false},
		{retry.HeaderTraceOrigin, false},
		{"kretry-follow", false},
		{"kretry-followsx", false},
		{"", false},
		{"kretry-", false},
		{"kretry-future", false},
		{"KRETRY-ATTEMPT", false},
		{"kretry-attempt ", false},
		{"kafka_original-topic", false},
	}
	names := 0
	for _, tt := range tests {
		if got := retry.IsKretryHeader(tt.key); got != tt.want {
			t.Errorf("IsKretryHeader(%q) = %v, want %v", tt.key, got, tt.want)
		}
		if tt.want {
			names++
		}
	}
	// IsKretryHeader documents twelve names, and so does docs/headers.md.
	if names != 12 {
		t.Errorf("the table lists %d kretry header names, want the twelve IsKretryHeader documents", names)
	}
}

func TestUserHeaders(t *testing.T) {
	t.Parallel()
	binary := []byte{0x00, 0xff, 0xfe, 0x80}
	tests := []struct {
		name string
		in   []kgo.RecordHeader
		want []kgo.RecordHeader
	}{
		{name: "nil", in: nil, want: nil},
		{name: "only kretry", in: tierState().Append(nil, 0), want: nil},
		{
			name: "mixed, order and duplicates kept",
			in: append(append([]kgo.RecordHeader{
				header("trace", []byte("1")),
				header("bin", binary),
			}, tierState().Append(nil, 0)...),
				header("trace", []byte("2")),
				header("null", nil),
				header("empty", []byte{}),
				header("kretry-future", []byte("kept")),
			),
			want: []kgo.RecordHeader{
				header("trace", []byte("1")),
				header("bin", binary),
				header("trace", []byte("2")),
				header("null", nil),
				header("empty", []byte{}),
				header("kretry-future", []byte("kept")),
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			assertHeaders(t, retry.UserHeaders(tt.in), tt.want)
		})
	}
}

// assertHeaders checks got against want byte-exactly, distinguishing a nil
// value from an empty one.
func assertHeaders(t *testing.T, got, want []kgo.RecordHeader) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("got %d headers %q, want %d %q", len(got), got, len(want), want)
	}
	for i := range want {
		g, w := got[i], want[i]
		if g.Key != w.Key || !bytes.Equal(g.Value, w.Value) || (g.Value == nil) != (w.Value == nil) {
			t.Fatalf("header %d = %q: %#v, want %q: %#v", i, g.Key, g.Value, w.Key, w.Value)
		}
	}
}

func be32(v int32) []byte { return []byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)} }
func be64(v int64) []byte {
	return append(be32(int32(v>>32)), be32(int32(v))...)
}

// ExampleState_Append encodes a retry-tier State, shows the bytes on the
// wire, and decodes them again.
func ExampleState_Append() {
	failed := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	s := retry.State{
		Attempt:           2,
		Due:               failed.Add(1500*time.Millisecond + 1), // rounded up to the next ms
		OriginalTopic:     "orders",
		OriginalPartition: 0,
		OriginalOffset:    7,
		OriginalTimestamp: failed.Add(-time.Second),
		FirstFailure:      failed,
		Error:             "db: timeout",
		ErrorType:         "*net.OpError",
	}
	headers := s.Append(nil, 0)
	for _, h := range headers {
		if h.Key == retry.HeaderError || h.Key == retry.HeaderErrorType || h.Key == retry.HeaderOriginalTopic {
			fmt.Printf("%-26s %q\n", h.Key, h.Value)
		} else {
			fmt.Printf("%-26s % x\n", h.Key, h.Value)
		}
	}

	got, ok, err := retry.Decode(headers)
	fmt.Println(ok, err)
	fmt.Println(got.Attempt, got.Due.Format(time.RFC3339Nano), got.OriginalTopic)
	// Output:
	// kretry-attempt             00 00 00 02
	// kretry-due                 00 00 01 9b 76 da ad dd
	// kretry-original-topic      "orders"
	// kretry-original-partition  00 00 00 00
	// kretry-original-offset     00 00 00 00 00 00 00 07
	// kretry-original-timestamp  00 00 01 9b 76 da a4 18
	// kretry-first-failure       00 00 01 9b 76 da a8 00
	// kretry-error               "db: timeout"
	// kretry-error-type          "*net.OpError"
	// true <nil>
	// 2 2026-01-01T00:00:01.501Z orders
}

// ExampleDecode shows the error for a retry-topic record whose due time was
// cut short.
func ExampleDecode() {
	headers := []kgo.RecordHeader{
		{Key: "trace-id", Value: []byte("abc")},
		{Key: retry.HeaderAttempt, Value: []byte{0, 0, 0, 2}},
		{Key: retry.HeaderDue, Value: []byte{1, 2, 3}},
	}
	_, ok, err := retry.Decode(headers)
	fmt.Println(ok)
	fmt.Println(err)
	fmt.Println(errors.Is(err, retry.ErrCorruptHeader))
	// Output:
	// true
	// kretry: header "kretry-due": want 8 bytes, got 3
	// true
}

func TestReplayAppend(t *testing.T) {
	at := time.UnixMilli(1767225600123)
	hs := retry.Replay{Run: "fix-42", From: "orders-dlt/3/1042", At: at}.Append([]kgo.RecordHeader{{Key: "user", Value: []byte("u")}})
	want := []kgo.RecordHeader{
		{Key: "user", Value: []byte("u")},
		{Key: "kretry-replay-run", Value: []byte("fix-42")},
		{Key: "kretry-replayed-from", Value: []byte("orders-dlt/3/1042")},
		{Key: "kretry-replayed-at", Value: []byte{0, 0, 1, 0x9b, 0x76, 0xda, 0xa8, 0x7b}},
	}
	if len(hs) != len(want) {
		t.Fatalf("got %d headers, want %d", len(hs), len(want))
	}
	for i := range want {
		if hs[i].Key != want[i].Key || !bytes.Equal(hs[i].Value, want[i].Value) {
			t.Errorf("header %d: got %s=%x, want %s=%x", i, hs[i].Key, hs[i].Value, want[i].Key, want[i].Value)
		}
		if i > 0 && (!retry.IsReplayHeader(hs[i].Key) || retry.IsKretryHeader(hs[i].Key)) {
			t.Errorf("%s: IsReplayHeader %v, IsKretryHeader %v; want true, false", hs[i].Key, retry.IsReplayHeader(hs[i].Key), retry.IsKretryHeader(hs[i].Key))
		}
	}
	if retry.IsReplayHeader("user") {
		t.Error("IsReplayHeader(user) = true")
	}
}
