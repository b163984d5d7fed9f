package spring

import (
	"errors"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/kretry/kretry/retry"
)

func hasKretry(headers []kgo.RecordHeader) bool {
	for _, h := range headers {
		if retry.IsKretryHeader(h.Key) {
			return true
		}
	}
	return false
}

// The fuzz input encodes a header list as a sequence of entries, read until
// the input ends; a trailing incomplete entry is ignored:
//
//	sel    1 byte. Below numHeaders it selects a Spring header name, in the
//	       order of the h* constants (0 = retry_topic-attempts), so the
//	       fuzzer reaches every name without guessing strings. Any other
//	       value n is followed by n-numHeaders bytes of arbitrary key (a
//	       user header, or a near miss of a Spring name).
//	vlen   2 bytes, big-endian: the value's length. 0xffff means a nil value.
//	value  vlen bytes.
//
// The seed corpus under testdata/fuzz/FuzzDecode uses the same encoding.

const fuzzNilValue = 0xffff

func decodeFuzzInput(b []byte) []kgo.RecordHeader {
	var headers []kgo.RecordHeader
	for len(b) > 0 {
		sel := int(b[0])
		b = b[1:]
		var key string
		if sel < numHeaders {
			key = headerName(sel)
		} else {
			n := sel - numHeaders
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

// encodeFuzzInput is the inverse of decodeFuzzInput, for seeds.
func encodeFuzzInput(headers []kgo.RecordHeader) []byte {
	var b []byte
	for _, h := range headers {
		if i := headerIndex(h.Key); i >= 0 {
			b = append(b, byte(i))
		} else {
			b = append(b, byte(numHeaders+len(h.Key)))
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

// FuzzDecode checks, for any header list, that Decode and DecodeDeadLetter
// do not panic; that a State they return without error validates, has its
// text within kretry's bounds, and survives Append and Decode again (with
// FirstFailure becoming OriginalTimestamp, which is all Spring can carry),
// also when appended over the very headers it came from; and that every
// error is a *DecodeError naming a Spring header. Resolve must agree with
// them when there are no kretry headers and never return an invalid State.
func FuzzDecode(f *testing.F) {
	f.Add(encodeFuzzInput(springTierHeaders()))
	f.Add(encodeFuzzInput(springDLTHeaders()))
	f.Add(encodeFuzzInput(Append(nil, springTierState(), 0)))
	// A kretry follower (key order) written with Write on: Spring's
	// attempts are 1, which Decode rejects on a tier and Resolve leaves
	// to kretry's headers.
	fol := springTierState()
	fol.Attempt, fol.FirstFailure, fol.Follower, fol.Follows = 1, time.Time{}, true, 40
	f.Add(encodeFuzzInput(Append(fol.Append(nil, 0), fol, 0)))
	f.Fuzz(func(t *testing.T, in []byte) {
		headers := decodeFuzzInput(in)
		spring := false
		for _, h := range headers {
			spring = spring || IsSpringHeader(h.Key)
		}
		for _, dlt := range []bool{false, true} {
			decode := Decode
			if dlt {
				decode = DecodeDeadLetter
			}
			st, ok, err := decode(headers)
			// Without kretry headers (the fuzzer rarely spells one),
			// Resolve is the Spring decoder.
			rst, rok, rerr := Resolve(headers, dlt)
			if !hasKretry(headers) && (rst != st || rok != ok || (rerr == nil) != (err == nil)) {
				t.Fatalf("dlt %v: Resolve = %+v, %v, %v; decode = %+v, %v, %v", dlt, rst, rok, rerr, st, ok, err)
			}
			if rok && rerr == nil {
				if verr := rst.Validate(); verr != nil {
					t.Fatalf("dlt %v: resolved state %+v does not validate: %v", dlt, rst, verr)
				}
			}
			if ok != spring {
				t.Fatalf("dlt %v: ok = %v with Spring headers %v", dlt, ok, spring)
			}
			if err != nil {
				var de *DecodeError
				if st != (retry.State{}) || !errors.As(err, &de) || !IsSpringHeader(de.Header) ||
					!errors.Is(err, retry.ErrCorruptHeader) && !errors.Is(err, retry.ErrMissingHeader) {
					t.Fatalf("dlt %v: bad error %#v with state %+v", dlt, err, st)
				}
				continue
			}
			if !ok {
				if st != (retry.State{}) {
					t.Fatalf("dlt %v: state %+v without Spring headers", dlt, st)
				}
				continue
			}
			if verr := st.Validate(); verr != nil {
				t.Fatalf("dlt %v: decoded state %+v does not validate: %v", dlt, st, verr)
			}
			if st.IsDeadLetter() != dlt || dlt && st.Reason != ReasonSpring {
				t.Fatalf("dlt %v: Reason %q", dlt, st.Reason)
			}
			if len(st.Error) > retry.DefaultMaxErrorBytes || len(st.ErrorType) > retry.MaxErrorTypeBytes ||
				!utf8.ValidString(st.Error) || !utf8.ValidString(st.ErrorType) || !utf8.ValidString(st.OriginalTopic) {
				t.Fatalf("dlt %v: text out of bounds or invalid: %+v", dlt, st)
			}
			want := st
			want.FirstFailure = st.OriginalTimestamp
			for _, dst := range [][]kgo.RecordHeader{nil, headers} {
				back, ok, err := decode(Append(dst, st, 0))
				if err != nil || !ok || back != want {
					t.Fatalf("dlt %v: Decode(Append(%d headers, st)):\n got %+v, %v, %v\nwant %+v",
						dlt, len(dst), back, ok, err, want)
				}
			}
		}
	})
}
