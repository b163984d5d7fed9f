package retry

import (
	"errors"
	"math"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/twmb/franz-go/pkg/kgo"
)

// The fuzz input encodes a header list as a sequence of entries, read until
// the input ends; a trailing incomplete entry is ignored:
//
//	sel    1 byte. Below numHeaders it selects a kretry header name, in the
//	       order of the Header constants (0 = HeaderAttempt ... 11 =
//	       HeaderFollows), so the fuzzer reaches every name without guessing
//	       strings. From numHeaders up to fuzzUserKeys-1 it selects
//	       fuzzReservedKey, a name reserved for future kretry headers, which
//	       this version treats as a user header. Any value n from
//	       fuzzUserKeys on is followed by n-fuzzUserKeys bytes of arbitrary
//	       key (a user header).
//	vlen   2 bytes, big-endian: the value's length. 0xffff means a nil value.
//	value  vlen bytes.
//
// The selectors of user keys do not depend on numHeaders, so a new header
// (appended to the Header constants, as each must be) does not change what
// the stored corpus means. The seed corpora under testdata/fuzz/FuzzDecode
// and testdata/fuzz/FuzzHop use this encoding.

// fuzzUserKeys is the first selector of an arbitrary user key. It leaves
// room for twenty more kretry headers.
const fuzzUserKeys = 32

// fuzzReservedKey is the key of the selectors between numHeaders and
// fuzzUserKeys.
const fuzzReservedKey = "kretry-future"

// A new header past fuzzUserKeys would change the corpus's meaning: this
// fails to compile then.
var _ [fuzzUserKeys - numHeaders]struct{}

const fuzzNilValue = 0xffff

func decodeFuzzInput(b []byte) []kgo.RecordHeader {
	var headers []kgo.RecordHeader
	for len(b) > 0 {
		sel := int(b[0])
		b = b[1:]
		var key string
		switch {
		case sel < numHeaders:
			key = headerName(sel)
		case sel < fuzzUserKeys:
			key = fuzzReservedKey
		default:
			n := sel - fuzzUserKeys
			if len(b) < n {
				break
			}
			key, b = string(b[:n]), b[n:]
		}
		if len(b) < 2 {
			break
		}
		vlen := int(b[0])<<8 | int(b[1])
		b = b[2:]
		var value []byte
		if vlen != fuzzNilValue {
			if len(b) < vlen {
				break
			}
			value, b = b[:vlen:vlen], b[vlen:]
		}
		headers = append(headers, kgo.RecordHeader{Key: key, Value: value})
	}
	return headers
}

// encodeFuzzInput is the inverse of decodeFuzzInput for seeds. Keys longer
// than 223 bytes and values longer than 65534 bytes are not encodable.
func encodeFuzzInput(headers []kgo.RecordHeader) []byte {
	var b []byte
	for _, h := range headers {
		if i := headerIndex(h.Key); i >= 0 {
			b = append(b, byte(i))
		} else {
			b = append(b, byte(fuzzUserKeys+len(h.Key)))
			b = append(b, h.Key...)
		}
		if h.Value == nil {
			b = append(b, 0xff, 0xff)
			continue
		}
		b = append(b, byte(len(h.Value)>>8), byte(len(h.Value)))
		b = append(b, h.Value...)
	}
	return b
}

func fuzzSeeds() [][]kgo.RecordHeader {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	tier := State{
		Attempt: 2, Due: t0.Add(time.Second), OriginalTopic: "orders",
		OriginalPartition: 1, OriginalOffset: 2, OriginalTimestamp: t0, FirstFailure: t0,
		Error: "boom", ErrorType: "*errors.errorString",
	}
	dlt := tier.Advance(time.Time{}, "boom \xff", "T").DeadLetter(ReasonExhausted)
	user := []kgo.RecordHeader{{Key: "trace", Value: []byte{0, 1}}, {Key: "kretry-future", Value: nil}}
	// A follower: no delivery yet, queued behind offset 1 of its key.
	follower := State{
		Attempt: 1, Due: t0.Add(time.Second), OriginalTopic: "orders",
		OriginalPartition: 1, OriginalOffset: 2, OriginalTimestamp: t0, Group: "billing",
		Follower: true, Follows: 1,
	}
	return [][]kgo.RecordHeader{
		nil,
		user,
		tier.Append(nil, 0),
		dlt.Append(append([]kgo.RecordHeader(nil), user...), 0),
		append(tier.Append(nil, 0), kgo.RecordHeader{Key: HeaderAttempt, Value: be32(3)}),
		{{Key: HeaderDue, Value: []byte{1, 2, 3}}},
		follower.Append(append([]kgo.RecordHeader(nil), user...), 0),
		append(dlt.Append(nil, 0), kgo.RecordHeader{Key: HeaderFollows, Value: be64(1)}),
		append(tier.Append(nil, 0), kgo.RecordHeader{Key: HeaderFollows, Value: be32(1)}),
	}
}

// FuzzDecode checks that Decode never panics, that a successful decode
// round-trips through Append, and that a failed decode yields a sentinel error
// and a State from Corrupt that does decode.
func FuzzDecode(f *testing.F) {
	for _, seed := range fuzzSeeds() {
		f.Add(encodeFuzzInput(seed))
	}
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, input []byte) {
		headers := decodeFuzzInput(input)
		_, anyKretry := scanHeaders(headers)

		s, ok, err := Decode(headers)
		if ok != anyKretry {
			t.Fatalf("ok = %v, but kretry headers present = %v", ok, anyKretry)
		}
		if err != nil {
			if !errors.Is(err, ErrMissingHeader) && !errors.Is(err, ErrCorruptHeader) {
				t.Fatalf("error %v wraps neither sentinel", err)
			}
			if s != (State{}) || !ok {
				t.Fatalf("failed Decode returned %+v, %v", s, ok)
			}
			src := &kgo.Record{Topic: "orders-retry", Offset: 5, Timestamp: now, Headers: headers}
			c := Corrupt(src, now, err)
			if verr := c.Validate(); verr != nil || c.Reason != ReasonCorruptHeaders {
				t.Fatalf("Corrupt = %+v, Validate() = %v", c, verr)
			}
			return
		}
		if !ok {
			if s != (State{}) {
				t.Fatalf("no kretry headers but State %+v", s)
			}
			return
		}
		if verr := s.Validate(); verr != nil {
			t.Fatalf("decoded State fails Validate: %v", verr)
		}
		for _, text := range []string{s.OriginalTopic, s.Error, s.ErrorType, s.Reason, s.Group} {
			if !utf8.ValidString(text) {
				t.Fatalf("decoded text %q is not valid UTF-8", text)
			}
		}
		// Only a retry-tier record may be a follower, and only a follower
		// or a dead letter has attempt 1.
		switch {
		case s.Follower && s.IsDeadLetter():
			t.Fatalf("a dead-letter State is a follower: %+v", s)
		case !s.Follower && s.Follows != 0:
			t.Fatalf("Follows %d without Follower", s.Follows)
		case s.Attempt < 1 || s.Attempt < 2 && !s.Follower && !s.IsDeadLetter():
			t.Fatalf("attempt %d on %+v", s.Attempt, s)
		}

		// Append with no error bound; ErrorType is always bounded.
		want := s
		want.ErrorType = truncate(s.ErrorType, MaxErrorTypeBytes)
		again := append(UserHeaders(headers), s.Append(nil, math.MaxInt)...)
		got, ok, err := Decode(again)
		if err != nil || !ok {
			t.Fatalf("Decode(Append(%+v)) = _, %v, %v", s, ok, err)
		}
		if got != want {
			t.Fatalf("round trip:\n got %+v\nwant %+v", got, want)
		}

		// With the default bound the error text is cut, within the bound.
		bounded, _, err := Decode(s.Append(nil, 0))
		if err != nil {
			t.Fatal(err)
		}
		if n := len(bounded.Error); n > DefaultMaxErrorBytes || (len(s.Error) <= DefaultMaxErrorBytes && bounded.Error != s.Error) {
			t.Fatalf("bounded error is %d bytes from %d", n, len(s.Error))
		}
	})
}

// FuzzHop checks that the record built for a retry record's next hops,
// whatever headers it arrived with, decodes, keeps the user headers byte
// for byte, and does not grow from hop to hop: a record that fails the
// same way again and again stays the same size, so hostile or corrupt
// headers cannot make it grow until a broker refuses it. It uses the
// input encoding of FuzzDecode (corpus: testdata/fuzz/FuzzHop).
func FuzzHop(f *testing.F) {
	for _, seed := range fuzzSeeds() {
		f.Add(encodeFuzzInput(seed), "boom")
	}
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, input []byte, errText string) {
		headers := decodeFuzzInput(input)
		src := &kgo.Record{Topic: "orders-retry", Offset: 9, Timestamp: now, Headers: headers,
			Key: []byte("k"), Value: []byte("v")}
		users := UserHeaders(headers)

		// The first hop: a decodable retry record advances, anything else
		// is dead-lettered as corrupt.
		var st State
		s, ok, err := Decode(headers)
		switch {
		case err == nil && ok && s.Reason == "":
			st = s.Advance(now.Add(time.Second), errText, "T")
		default:
			st = Corrupt(src, now, err)
		}
		hop := Next(src, "orders-retry", 0, st, 0)
		sizes := []int{headerBytes(hop.Headers)}
		for range 3 { // later hops, failing the same way
			got, ok, err := Decode(hop.Headers)
			if err != nil || !ok {
				t.Fatalf("hop does not decode: %v (ok %v)\nstate %+v", err, ok, st)
			}
			if got.Follower {
				t.Fatalf("a hop after a failure is still a follower: %+v", got)
			}
			next := got
			if got.Reason == "" {
				next = got.Advance(now.Add(2*time.Second), errText, "T")
			}
			hop = Next(hop, "orders-retry", 0, next, 0)
			sizes = append(sizes, headerBytes(hop.Headers))
		}
		// The first later hop may differ from the first (the first may
		// carry a longer error from a corrupt decode), the rest may not.
		for i := 2; i < len(sizes); i++ {
			if sizes[i] != sizes[1] {
				t.Fatalf("header bytes grow from hop to hop: %v", sizes)
			}
		}
		if sizes[1] > headerBytes(users)+kretryHeaderBound(st) {
			t.Fatalf("hop headers %d bytes, over user %d + kretry bound %d", sizes[1], headerBytes(users), kretryHeaderBound(st))
		}
		if got := UserHeaders(hop.Headers); len(got) != len(users) {
			t.Fatalf("user headers %d after hops, want %d", len(got), len(users))
		} else {
			for i := range got {
				if got[i].Key != users[i].Key || string(got[i].Value) != string(users[i].Value) {
					t.Fatalf("user header %d changed: %q=%q, want %q=%q", i, got[i].Key, got[i].Value, users[i].Key, users[i].Value)
				}
			}
		}
	})
}

func headerBytes(hs []kgo.RecordHeader) int {
	n := 0
	for _, h := range hs {
		n += len(h.Key) + len(h.Value)
	}
	return n
}

// kretryHeaderBound is the most bytes the kretry headers for a record
// whose original topic and reason are those of s can take: fixed-width
// fields (HeaderFollows's included), the bounded error text and type, and the unbounded but copied
// (never grown) original topic and reason. U+FFFD replacement can make a
// text up to three times longer than its invalid input.
func kretryHeaderBound(s State) int {
	n := 0
	for i := range numHeaders {
		n += len(headerName(i))
	}
	return n + 4 + 8 + 4 + 8 + 8 + 8 + 8 + DefaultMaxErrorBytes + MaxErrorTypeBytes +
		3*len(s.OriginalTopic) + 3*len(s.Reason)
}
