package spring

import (
	"bytes"
	"encoding/hex"
	"errors"
	"math"
	"math/big"
	"slices"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/kretry/kretry/retry"
)

// The byte vectors below are derived by hand from the Java that writes them
// in Spring Kafka, never from this package's encoder:
//
//   - ints:  ByteBuffer.allocate(4).putInt(v).array() — 4 bytes, big-endian
//   - longs: ByteBuffer.allocate(8).putLong(v).array() — 8 bytes, big-endian
//   - BigInteger.valueOf(v).toByteArray() — the shortest big-endian two's
//     complement form that keeps the sign (a 0x00 in front of a positive
//     value whose top byte has its high bit set)
//   - text:  s.getBytes(StandardCharsets.UTF_8)
//
// The record is the one docs/headers.md describes: "orders", partition 3,
// offset 42, produced at 2025-12-31T23:59:59Z (1767225599000 ms =
// 0x019b_76da_a418), due again at 2026-01-01T00:00:01.5Z (1767225601500 ms =
// 0x019b_76da_addc).

const (
	tsOriginal = 1767225599000 // 2025-12-31T23:59:59Z
	tsDue      = 1767225601500 // 2026-01-01T00:00:01.5Z
)

func ms(v int64) time.Time { return time.UnixMilli(v).UTC() }

// h builds a header from a key and a value in hex, spaces allowed. A value
// starting with a double quote is taken as text instead.
func h(key, value string) kgo.RecordHeader {
	if strings.HasPrefix(value, `"`) {
		return kgo.RecordHeader{Key: key, Value: []byte(strings.Trim(value, `"`))}
	}
	b, err := hex.DecodeString(strings.ReplaceAll(value, " ", ""))
	if err != nil {
		panic(err)
	}
	return kgo.RecordHeader{Key: key, Value: b}
}

// springTierHeaders are the headers Spring Kafka 4.x puts on the record above
// when it forwards it to orders-retry after the first failure
// (DeadLetterPublishingRecovererFactory with its default header names, and
// DeadLetterRecordManager adding exception headers first, then the
// kafka_original-* headers, then the retry_topic-* headers), behind a user
// header.
func springTierHeaders() []kgo.RecordHeader {
	return []kgo.RecordHeader{
		h("trace-id", `"abc"`),
		h("kafka_exception-fqcn", `"org.springframework.kafka.listener.ListenerExecutionFailedException"`),
		h("kafka_exception-cause-fqcn", `"java.lang.IllegalStateException"`),
		h("kafka_exception-message", `"Listener failed; db: timeout"`),
		h("kafka_exception-stacktrace", "\"org.springframework.kafka.listener.ListenerExecutionFailedException: Listener failed\n\tat x.y(Z.java:1)\""),
		h("kafka_original-topic", `"orders"`),
		h("kafka_original-partition", "00 00 00 03"),             // putInt(3)
		h("kafka_original-offset", "00 00 00 00 00 00 00 2a"),    // putLong(42)
		h("kafka_original-timestamp", "00 00 01 9b 76 da a4 18"), // putLong(1767225599000)
		h("kafka_original-timestamp-type", `"CREATE_TIME"`),
		h("kafka_dlt-original-consumer-group", `"billing"`),
		h("retry_topic-original-timestamp", "01 9b 76 da a4 18"), // BigInteger 1767225599000: 6 bytes, top 0x01
		h("retry_topic-attempts", "00 00 00 02"),                 // putInt(1 + 1)
		h("retry_topic-backoff-timestamp", "01 9b 76 da ad dc"),  // BigInteger 1767225601500
	}
}

func springTierState() retry.State {
	return retry.State{
		Attempt:           2,
		Due:               ms(tsDue),
		OriginalTopic:     "orders",
		OriginalPartition: 3,
		OriginalOffset:    42,
		OriginalTimestamp: ms(tsOriginal),
		FirstFailure:      ms(tsOriginal),
		Error:             "Listener failed; db: timeout",
		ErrorType:         "java.lang.IllegalStateException",
	}
}

// with returns headers with every header named key removed and hs appended.
func with(headers []kgo.RecordHeader, key string, hs ...kgo.RecordHeader) []kgo.RecordHeader {
	out := slices.DeleteFunc(slices.Clone(headers), func(x kgo.RecordHeader) bool { return x.Key == key })
	return append(out, hs...)
}

func without(headers []kgo.RecordHeader, key string) []kgo.RecordHeader {
	return with(headers, key)
}

func TestDecodeSpringTierRecord(t *testing.T) {
	t.Parallel()
	st, ok, err := Decode(springTierHeaders())
	if err != nil || !ok {
		t.Fatalf("Decode: ok %v, err %v", ok, err)
	}
	if want := springTierState(); st != want {
		t.Fatalf("Decode:\n got %+v\nwant %+v", st, want)
	}
	if err := st.Validate(); err != nil {
		t.Fatalf("decoded state does not validate: %v", err)
	}
}

func TestDecodeNoSpringHeaders(t *testing.T) {
	t.Parallel()
	kretryOnly := retry.State{Attempt: 2, Due: ms(tsDue), OriginalTopic: "orders", OriginalTimestamp: ms(tsOriginal), FirstFailure: ms(tsOriginal)}.
		Append([]kgo.RecordHeader{h("trace-id", `"abc"`)}, 0)
	for name, hs := range map[string][]kgo.RecordHeader{
		"nil":               nil,
		"user headers only": {h("trace-id", `"abc"`), h("kafka_other", `"x"`), h("retry_topic-other", `"x"`)},
		"kretry headers":    kretryOnly,
		"case differs":      {h("Retry_topic-attempts", "00 00 00 02")},
	} {
		for _, dec := range []func([]kgo.RecordHeader) (retry.State, bool, error){Decode, DecodeDeadLetter} {
			st, ok, err := dec(hs)
			if ok || err != nil || st != (retry.State{}) {
				t.Errorf("%s: got %+v, %v, %v; want zero, false, nil", name, st, ok, err)
			}
		}
	}
}

func TestDecodeAttempts(t *testing.T) {
	t.Parallel()
	base := springTierHeaders()
	tests := []struct {
		name    string
		values  []string // retry_topic-attempts values, in order
		want    int32
		wantErr string
	}{
		// ByteBuffer.wrap(new byte[4]).putInt(2): Spring 2.7.9 and later.
		{name: "4 bytes", values: []string{"00 00 00 02"}, want: 2},
		// BigInteger.valueOf(3).toByteArray() = {3}: Spring 2.7.0-2.7.8.
		{name: "1 byte", values: []string{"03"}, want: 3},
		// Spring reads the 1-byte form unsigned (Byte.toUnsignedInt), so
		// 0x80 is 128, not -128.
		{name: "1 byte high bit is unsigned", values: []string{"80"}, want: 128},
		{name: "4 bytes max", values: []string{"00 00 7f ff"}, want: 32767},
		// Spring appends one per hop; readers take the last.
		{name: "repeated, last wins", values: []string{"00 00 00 02", "00 00 00 03", "00 00 00 04"}, want: 4},
		{name: "repeated, last wins even when smaller", values: []string{"00 00 00 05", "02"}, want: 2},
		{name: "repeated, a bad earlier copy is ignored", values: []string{"00 00", "00 00 00 03"}, want: 3},
		{name: "repeated, a bad last copy is an error", values: []string{"00 00 00 03", "00 03"},
			wantErr: `kretry: Spring header "retry_topic-attempts": want 1 or 4 bytes, got 2`},
		{name: "empty", values: []string{""},
			wantErr: `kretry: Spring header "retry_topic-attempts": want 1 or 4 bytes, got 0`},
		// BigInteger.valueOf(128).toByteArray() = {0x00, 0x80}: current
		// Spring reads a 2-byte value as 1.
		{name: "2 bytes", values: []string{"00 80"},
			wantErr: `kretry: Spring header "retry_topic-attempts": want 1 or 4 bytes, got 2`},
		{name: "8 bytes", values: []string{"00 00 00 00 00 00 00 02"},
			wantErr: `kretry: Spring header "retry_topic-attempts": want 1 or 4 bytes, got 8`},
		// putInt(-1)
		{name: "negative", values: []string{"ff ff ff ff"},
			wantErr: `kretry: Spring header "retry_topic-attempts": want 1 to 32767, got -1`},
		{name: "zero", values: []string{"00 00 00 00"},
			wantErr: `kretry: Spring header "retry_topic-attempts": want 1 to 32767, got 0`},
		{name: "1 byte zero", values: []string{"00"},
			wantErr: `kretry: Spring header "retry_topic-attempts": want 1 to 32767, got 0`},
		// putInt(32768): above Spring's ATTEMPTS_HARD_CAP (Short.MAX_VALUE).
		{name: "above cap", values: []string{"00 00 80 00"},
			wantErr: `kretry: Spring header "retry_topic-attempts": want 1 to 32767, got 32768`},
		{name: "int max", values: []string{"7f ff ff ff"},
			wantErr: `kretry: Spring header "retry_topic-attempts": want 1 to 32767, got 2147483647`},
		{name: "1 on a retry tier", values: []string{"00 00 00 01"},
			wantErr: `kretry: Spring header "retry_topic-attempts": want >= 2 on a retry-tier record, got 1`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var hs []kgo.RecordHeader
			for _, v := range tt.values {
				hs = append(hs, h("retry_topic-attempts", v))
			}
			st, ok, err := Decode(with(base, "retry_topic-attempts", hs...))
			if !ok {
				t.Fatal("ok = false")
			}
			if tt.wantErr != "" {
				if err == nil || err.Error() != tt.wantErr {
					t.Fatalf("err = %v, want %s", err, tt.wantErr)
				}
				if !errors.Is(err, retry.ErrCorruptHeader) {
					t.Errorf("err does not wrap retry.ErrCorruptHeader")
				}
				var de *DecodeError
				if !errors.As(err, &de) || de.Header != "retry_topic-attempts" {
					t.Errorf("err is not a *DecodeError for retry_topic-attempts: %#v", err)
				}
				if st != (retry.State{}) {
					t.Errorf("state with an error = %+v, want zero", st)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if st.Attempt != tt.want {
				t.Fatalf("Attempt = %d, want %d", st.Attempt, tt.want)
			}
		})
	}
}

// TestMinimalEncoding checks the BigInteger form against hand-derived
// BigInteger.valueOf(v).toByteArray() results of every length, in both
// directions.
func TestMinimalEncoding(t *testing.T) {
	t.Parallel()
	tests := []struct {
		v    int64
		want string
	}{
		{0, "00"},                // 1 byte: zero is {0}
		{1, "01"},                //
		{127, "7f"},              // largest 1-byte positive
		{-1, "ff"},               //
		{-128, "80"},             // smallest 1-byte negative
		{128, "00 80"},           // top bit set: a 0x00 sign byte in front
		{255, "00 ff"},           //
		{-129, "ff 7f"},          // top bit clear on a negative: 0xff in front
		{32767, "7f ff"},         // largest 2-byte positive
		{32768, "00 80 00"},      // 3 bytes, leading 0x00
		{-32769, "ff 7f ff"},     //
		{8388608, "00 80 00 00"}, // 0x800000: 4 bytes, leading 0x00
		{math.MaxInt32, "7f ff ff ff"},
		{1 << 31, "00 80 00 00 00"},               // 5 bytes, leading 0x00
		{549755813888, "00 80 00 00 00 00"},       // 0x80_0000_0000 ms, 1987-06-03: 6 bytes, leading 0x00
		{tsDue, "01 9b 76 da ad dc"},              // today's epoch ms: 6 bytes
		{140737488355328, "00 80 00 00 00 00 00"}, // 0x8000_0000_0000: 7 bytes, leading 0x00
		{36028797018963968, "00 80 00 00 00 00 00 00"},  // 0x80_0000_0000_0000: 8 bytes, leading 0x00
		{math.MaxInt64, "7f ff ff ff ff ff ff ff"},      // 8 bytes
		{math.MinInt64, "80 00 00 00 00 00 00 00"},      // 8 bytes
		{-62135596800000, "c7 7c ed d3 28 00"},          // Go's zero time: 6 bytes, 0xc7 keeps the sign
		{-549755813889, "ff 7f ff ff ff ff"},            // -(0x80_0000_0000)-1: 6 bytes, leading 0xff
		{-36028797018963969, "ff 7f ff ff ff ff ff ff"}, // 8 bytes, leading 0xff
		{0x0102030405, "01 02 03 04 05"},                //
		{-0x0102030405, "fe fd fc fb fb"},               // two's complement of the above
		{1 << 55, "00 80 00 00 00 00 00 00"},            // same as 0x80_0000_0000_0000
		{(1 << 55) - 1, "7f ff ff ff ff ff ff"},         // largest 7-byte positive
		{-(1 << 55), "80 00 00 00 00 00 00"},            // smallest 7-byte negative
		{-(1 << 55) - 1, "ff 7f ff ff ff ff ff ff"},     // one less needs 8 bytes
		{1767225599000, "01 9b 76 da a4 18"},            //
		{1767225600000, "01 9b 76 da a8 00"},            //
		{0x7fffffffffff, "7f ff ff ff ff ff"},           // largest 6-byte positive
		{0x7fffffffff, "7f ff ff ff ff"},                // largest 5-byte positive
	}
	for _, tt := range tests {
		want, _ := hex.DecodeString(strings.ReplaceAll(tt.want, " ", ""))
		if got := appendMinimal(nil, tt.v); !bytes.Equal(got, want) {
			t.Errorf("appendMinimal(%d) = % x, want % x", tt.v, got, want)
		}
		if got := decodeMinimal(want); got != tt.v {
			t.Errorf("decodeMinimal(% x) = %d, want %d", want, got, tt.v)
		}
	}
	// Cross-check against math/big, whose two's complement rule is Java's:
	// the length is bitLength/8 + 1, where bitLength excludes the sign.
	for _, v := range []int64{0, 1, -1, 127, 128, -128, -129, 1 << 40, -(1 << 40), math.MaxInt64, math.MinInt64 + 1} {
		bits := big.NewInt(v).BitLen()
		if v < 0 {
			bits = big.NewInt(-v - 1).BitLen() // Java's bitLength for negatives
		}
		if got, want := len(appendMinimal(nil, v)), bits/8+1; got != want {
			t.Errorf("len(appendMinimal(%d)) = %d, want %d (Java bitLength %d)", v, got, want, bits)
		}
	}
}

func TestDecodeBackoffTimestamp(t *testing.T) {
	t.Parallel()
	base := springTierHeaders()
	tests := []struct {
		name    string
		values  []string
		want    int64
		wantErr string
	}{
		{name: "1 byte", values: []string{"7f"}, want: 127},
		{name: "2 bytes leading zero", values: []string{"00 80"}, want: 128},
		{name: "3 bytes leading zero", values: []string{"00 80 00"}, want: 32768},
		{name: "4 bytes leading zero", values: []string{"00 80 00 00"}, want: 8388608},
		{name: "5 bytes leading zero", values: []string{"00 80 00 00 00"}, want: 1 << 31},
		{name: "6 bytes leading zero", values: []string{"00 80 00 00 00 00"}, want: 549755813888},
		{name: "6 bytes today", values: []string{"01 9b 76 da ad dc"}, want: tsDue},
		{name: "7 bytes leading zero", values: []string{"00 80 00 00 00 00 00"}, want: 140737488355328},
		{name: "8 bytes leading zero", values: []string{"00 80 00 00 00 00 00 00"}, want: 36028797018963968},
		{name: "8 bytes max", values: []string{"7f ff ff ff ff ff ff ff"}, want: math.MaxInt64},
		// Spring's reader accepts any length from 1 to 8 (new BigInteger(b)
		// sign-extends), so a padded 8-byte value, as kretry writes its own
		// due time, is read as well.
		{name: "8 bytes not minimal", values: []string{"00 00 01 9b 76 da ad dc"}, want: tsDue},
		{name: "negative", values: []string{"ff"}, want: -1},
		{name: "before 1970", values: []string{"ff 7f ff ff ff ff"}, want: -549755813889},
		{name: "repeated, last wins", values: []string{"01 9b 76 da a8 00", "01 9b 76 da ad dc"}, want: tsDue},
		{name: "repeated, a bad earlier copy is ignored", values: []string{"", "01 9b 76 da ad dc"}, want: tsDue},
		{name: "empty", values: []string{""},
			wantErr: `kretry: Spring header "retry_topic-backoff-timestamp": want 1 to 8 bytes, got 0`},
		// BigInteger.valueOf(Long.MAX_VALUE).add(ONE).toByteArray(): does
		// not fit a long; Spring ignores it.
		{name: "9 bytes", values: []string{"00 80 00 00 00 00 00 00 00"},
			wantErr: `kretry: Spring header "retry_topic-backoff-timestamp": want 1 to 8 bytes, got 9`},
		{name: "zero time", values: []string{"c7 7c ed d3 28 00"},
			wantErr: `kretry: Spring header "retry_topic-backoff-timestamp": value -62135596800000 is Go's zero time, which kretry reserves for no due time`},
		{name: "zero time, 8 bytes", values: []string{"ff ff c7 7c ed d3 28 00"},
			wantErr: `kretry: Spring header "retry_topic-backoff-timestamp": value -62135596800000 is Go's zero time, which kretry reserves for no due time`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var hs []kgo.RecordHeader
			for _, v := range tt.values {
				hs = append(hs, h("retry_topic-backoff-timestamp", v))
			}
			st, ok, err := Decode(with(base, "retry_topic-backoff-timestamp", hs...))
			if !ok {
				t.Fatal("ok = false")
			}
			if tt.wantErr != "" {
				if err == nil || err.Error() != tt.wantErr || !errors.Is(err, retry.ErrCorruptHeader) {
					t.Fatalf("err = %v, want %s wrapping ErrCorruptHeader", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !st.Due.Equal(ms(tt.want)) || st.Due.Location() != time.UTC {
				t.Fatalf("Due = %v, want %v UTC", st.Due, ms(tt.want))
			}
			if err := st.Validate(); err != nil {
				t.Fatalf("Validate: %v", err)
			}
		})
	}
}

func TestDecodeOriginalHeaders(t *testing.T) {
	t.Parallel()
	base := springTierHeaders()
	tests := []struct {
		name    string
		headers []kgo.RecordHeader
		check   func(retry.State) bool
		wantErr string
		missing bool // wantErr wraps ErrMissingHeader rather than ErrCorruptHeader
	}{
		{name: "topic missing", headers: without(base, "kafka_original-topic"),
			wantErr: `kretry: Spring header "kafka_original-topic" missing`, missing: true},
		{name: "topic empty", headers: with(base, "kafka_original-topic", h("kafka_original-topic", "")),
			wantErr: `kretry: Spring header "kafka_original-topic": must not be empty`},
		{name: "topic invalid UTF-8", headers: with(base, "kafka_original-topic", h("kafka_original-topic", "6f ff 72")),
			check: func(s retry.State) bool { return s.OriginalTopic == "o\uFFFDr" }},
		{name: "partition missing", headers: without(base, "kafka_original-partition"),
			wantErr: `kretry: Spring header "kafka_original-partition" missing`, missing: true},
		{name: "partition 8 bytes", headers: with(base, "kafka_original-partition", h("kafka_original-partition", "00 00 00 00 00 00 00 03")),
			wantErr: `kretry: Spring header "kafka_original-partition": want 4 bytes, got 8`},
		{name: "partition negative", headers: with(base, "kafka_original-partition", h("kafka_original-partition", "ff ff ff ff")),
			check: func(s retry.State) bool { return s.OriginalPartition == -1 }},
		{name: "offset missing", headers: without(base, "kafka_original-offset"),
			wantErr: `kretry: Spring header "kafka_original-offset" missing`, missing: true},
		{name: "offset minimal form", headers: with(base, "kafka_original-offset", h("kafka_original-offset", "2a")),
			wantErr: `kretry: Spring header "kafka_original-offset": want 8 bytes, got 1`},
		{name: "timestamp 4 bytes", headers: with(base, "kafka_original-timestamp", h("kafka_original-timestamp", "00 00 00 01")),
			wantErr: `kretry: Spring header "kafka_original-timestamp": want 8 bytes, got 4`},
		{name: "timestamp from retry_topic-original-timestamp", headers: with(without(base, "kafka_original-timestamp"),
			"retry_topic-original-timestamp", h("retry_topic-original-timestamp", "01 9b 76 da a4 18")),
			check: func(s retry.State) bool {
				return s.OriginalTimestamp.Equal(ms(tsOriginal)) && s.FirstFailure.Equal(ms(tsOriginal))
			}},
		{name: "both timestamps missing", headers: without(without(base, "kafka_original-timestamp"), "retry_topic-original-timestamp"),
			wantErr: `kretry: Spring header "kafka_original-timestamp" missing`, missing: true},
		{name: "first failure from kafka_original-timestamp", headers: without(base, "retry_topic-original-timestamp"),
			check: func(s retry.State) bool { return s.FirstFailure.Equal(ms(tsOriginal)) }},
		// retry_topic-original-timestamp wins for FirstFailure when the two
		// differ (a record that already carried one on the main topic).
		{name: "first failure from retry_topic-original-timestamp", headers: with(base, "retry_topic-original-timestamp",
			h("retry_topic-original-timestamp", "01 9b 76 da a8 00")), // BigInteger 1767225600000
			check: func(s retry.State) bool {
				return s.FirstFailure.Equal(ms(1767225600000)) && s.OriginalTimestamp.Equal(ms(tsOriginal))
			}},
		{name: "retry_topic-original-timestamp 9 bytes", headers: with(base, "retry_topic-original-timestamp",
			h("retry_topic-original-timestamp", "00 00 00 01 9b 76 da a4 18")),
			wantErr: `kretry: Spring header "retry_topic-original-timestamp": want 1 to 8 bytes, got 9`},
		{name: "repeated original headers, last wins", headers: append(slices.Clone(base),
			h("kafka_original-topic", `"payments"`), h("kafka_original-partition", "00 00 00 07")),
			check: func(s retry.State) bool { return s.OriginalTopic == "payments" && s.OriginalPartition == 7 }},
		// A plain DeadLetterPublishingRecoverer's names stand in when
		// kafka_original-topic is absent; the families are never mixed.
		{name: "kafka_dlt-original family", headers: append(
			without(without(without(without(base, "kafka_original-topic"), "kafka_original-partition"), "kafka_original-offset"), "kafka_original-timestamp"),
			h("kafka_dlt-original-topic", `"payments"`),
			h("kafka_dlt-original-partition", "00 00 00 01"),
			h("kafka_dlt-original-offset", "00 00 00 00 00 00 00 07"),
			h("kafka_dlt-original-timestamp", "00 00 01 9b 76 da a8 00"), // putLong(1767225600000)
		),
			check: func(s retry.State) bool {
				return s.OriginalTopic == "payments" && s.OriginalPartition == 1 && s.OriginalOffset == 7 &&
					s.OriginalTimestamp.Equal(ms(1767225600000))
			}},
		{name: "kafka_original family wins over kafka_dlt-original", headers: append(slices.Clone(base),
			h("kafka_dlt-original-topic", `"payments"`), h("kafka_dlt-original-partition", `"bad"`)),
			check: func(s retry.State) bool { return s.OriginalTopic == "orders" && s.OriginalPartition == 3 }},
		{name: "kafka_dlt-original family is not mixed", headers: append(without(base, "kafka_original-topic"),
			h("kafka_dlt-original-topic", `"payments"`)),
			wantErr: `kretry: Spring header "kafka_dlt-original-partition" missing`, missing: true},
		{name: "backoff timestamp missing", headers: without(base, "retry_topic-backoff-timestamp"),
			wantErr: `kretry: Spring header "retry_topic-backoff-timestamp" missing`, missing: true},
		{name: "attempts missing", headers: without(base, "retry_topic-attempts"),
			wantErr: `kretry: Spring header "retry_topic-attempts" missing`, missing: true},
		{name: "only an exception header", headers: []kgo.RecordHeader{h("kafka_exception-message", `"boom"`)},
			wantErr: `kretry: Spring header "retry_topic-attempts" missing`, missing: true},
		{name: "null values", headers: with(base, "kafka_original-topic", kgo.RecordHeader{Key: "kafka_original-topic"}),
			wantErr: `kretry: Spring header "kafka_original-topic": must not be empty`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			st, ok, err := Decode(tt.headers)
			if !ok {
				t.Fatal("ok = false")
			}
			if tt.wantErr != "" {
				sentinel := retry.ErrCorruptHeader
				if tt.missing {
					sentinel = retry.ErrMissingHeader
				}
				if err == nil || err.Error() != tt.wantErr || !errors.Is(err, sentinel) {
					t.Fatalf("err = %v, want %s wrapping %v", err, tt.wantErr, sentinel)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !tt.check(st) {
				t.Fatalf("unexpected state %+v", st)
			}
			if err := st.Validate(); err != nil {
				t.Fatalf("Validate: %v", err)
			}
		})
	}
}

func TestDecodeErrorText(t *testing.T) {
	t.Parallel()
	base := springTierHeaders()
	long := strings.Repeat("é", retry.DefaultMaxErrorBytes) // 2 bytes a rune
	tests := []struct {
		name      string
		headers   []kgo.RecordHeader
		wantError string
		wantType  string
	}{
		{name: "cause type first", headers: base,
			wantError: "Listener failed; db: timeout", wantType: "java.lang.IllegalStateException"},
		{name: "fqcn without a cause", headers: without(base, "kafka_exception-cause-fqcn"),
			wantError: "Listener failed; db: timeout", wantType: "org.springframework.kafka.listener.ListenerExecutionFailedException"},
		{name: "empty cause falls through", headers: with(base, "kafka_exception-cause-fqcn", h("kafka_exception-cause-fqcn", "")),
			wantError: "Listener failed; db: timeout", wantType: "org.springframework.kafka.listener.ListenerExecutionFailedException"},
		{name: "no exception headers", headers: without(without(without(base, "kafka_exception-cause-fqcn"), "kafka_exception-fqcn"), "kafka_exception-message")},
		{name: "key deserialization", headers: append(without(without(without(base, "kafka_exception-cause-fqcn"), "kafka_exception-fqcn"), "kafka_exception-message"),
			h("kafka_key-exception-fqcn", `"org.springframework.kafka.support.serializer.DeserializationException"`),
			h("kafka_key-exception-message", `"failed to deserialize"`)),
			wantError: "failed to deserialize", wantType: "org.springframework.kafka.support.serializer.DeserializationException"},
		{name: "kafka_dlt-exception family", headers: append(without(without(without(base, "kafka_exception-cause-fqcn"), "kafka_exception-fqcn"), "kafka_exception-message"),
			h("kafka_dlt-exception-fqcn", `"org.springframework.kafka.listener.ListenerExecutionFailedException"`),
			h("kafka_dlt-exception-cause-fqcn", `"java.io.IOException"`),
			h("kafka_dlt-exception-message", `"disk full"`)),
			wantError: "disk full", wantType: "java.io.IOException"},
		{name: "repeated message, last wins", headers: append(slices.Clone(base), h("kafka_exception-message", `"second"`)),
			wantError: "second", wantType: "java.lang.IllegalStateException"},
		{name: "invalid UTF-8", headers: with(base, "kafka_exception-message", h("kafka_exception-message", "61 ff fe 62")),
			wantError: "a\uFFFDb", wantType: "java.lang.IllegalStateException"},
		{name: "long message is cut", headers: with(base, "kafka_exception-message", h("kafka_exception-message", `"`+long+`"`)),
			// 4096 bytes: 4082 for text, cut back to a rune boundary (4082
			// is even, so 2041 runes), then the 14-byte marker.
			wantError: strings.Repeat("é", 2041) + retry.TruncationMarker, wantType: "java.lang.IllegalStateException"},
		{name: "long type is cut", headers: with(base, "kafka_exception-cause-fqcn", h("kafka_exception-cause-fqcn", `"`+strings.Repeat("x", 300)+`"`)),
			wantError: "Listener failed; db: timeout", wantType: strings.Repeat("x", 242) + retry.TruncationMarker},
		{name: "long invalid message is cut", headers: with(base, "kafka_exception-message",
			kgo.RecordHeader{Key: "kafka_exception-message", Value: bytes.Repeat([]byte("a\xff"), 5000)}),
			// each "a\xff" becomes "a\uFFFD", 4 bytes (a run of invalid
			// bytes becomes one U+FFFD): the 4082 bytes left for text end
			// inside the 1021st U+FFFD, so the cut falls before it.
			wantError: strings.Repeat("a\uFFFD", 1020) + "a" + retry.TruncationMarker, wantType: "java.lang.IllegalStateException"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			st, _, err := Decode(tt.headers)
			if err != nil {
				t.Fatal(err)
			}
			if st.Error != tt.wantError || st.ErrorType != tt.wantType {
				t.Fatalf("Error, ErrorType = %.60q (%d bytes), %.60q; want %.60q (%d bytes), %.60q",
					st.Error, len(st.Error), st.ErrorType, tt.wantError, len(tt.wantError), tt.wantType)
			}
			if len(st.Error) > retry.DefaultMaxErrorBytes || len(st.ErrorType) > retry.MaxErrorTypeBytes ||
				!utf8.ValidString(st.Error) || !utf8.ValidString(st.ErrorType) {
				t.Fatalf("text out of bounds or invalid: %d, %d bytes", len(st.Error), len(st.ErrorType))
			}
		})
	}
}

// springDLTHeaders are the headers Spring Kafka 4.x puts on the record when
// its second delivery (from orders-retry) fails and, with attempts = 2, it
// goes to orders-dlt: the exception headers replaced, the
// kafka_original-* headers kept from the first hop (appendOriginalHeaders
// false), and a second set of retry_topic-* headers appended
// (retainAllRetryHeaderValues true). The DLT's delay is 0, so the backoff
// timestamp is the failure time.
func springDLTHeaders() []kgo.RecordHeader {
	hs := with(springTierHeaders(), "kafka_exception-message", h("kafka_exception-message", `"Listener failed; db: down"`))
	return append(hs,
		h("retry_topic-original-timestamp", "01 9b 76 da a4 18"), // BigInteger 1767225599000, copied
		h("retry_topic-attempts", "00 00 00 03"),                 // putInt(2 + 1)
		h("retry_topic-backoff-timestamp", "01 9b 76 da b2 be"),  // BigInteger 1767225602750 + 0
	)
}

func TestDecodeDeadLetter(t *testing.T) {
	t.Parallel()
	t.Run("retry-topic DLT", func(t *testing.T) {
		t.Parallel()
		st, ok, err := DecodeDeadLetter(springDLTHeaders())
		if err != nil || !ok {
			t.Fatalf("ok %v, err %v", ok, err)
		}
		want := springTierState()
		want.Attempt = 2 // deliveries: one less than retry_topic-attempts
		want.Due = time.Time{}
		want.Error = "Listener failed; db: down"
		want.Reason = ReasonSpring
		if st != want {
			t.Fatalf("got  %+v\nwant %+v", st, want)
		}
		if err := st.Validate(); err != nil {
			t.Fatal(err)
		}
		if !st.IsDeadLetter() {
			t.Fatal("not a dead-letter state")
		}
	})
	t.Run("fatal on first delivery", func(t *testing.T) {
		t.Parallel()
		// A fatal exception on the main topic goes straight to the DLT with
		// retry_topic-attempts putInt(1 + 1).
		st, _, err := DecodeDeadLetter(springTierHeaders())
		if err != nil || st.Attempt != 1 {
			t.Fatalf("Attempt %d, err %v; want 1, nil", st.Attempt, err)
		}
	})
	t.Run("attempts 1", func(t *testing.T) {
		t.Parallel()
		st, _, err := DecodeDeadLetter(with(springTierHeaders(), "retry_topic-attempts", h("retry_topic-attempts", "01")))
		if err != nil || st.Attempt != 1 {
			t.Fatalf("Attempt %d, err %v; want 1, nil", st.Attempt, err)
		}
	})
	t.Run("bad attempts", func(t *testing.T) {
		t.Parallel()
		_, ok, err := DecodeDeadLetter(with(springTierHeaders(), "retry_topic-attempts", h("retry_topic-attempts", "00 00 00 00")))
		if !ok || err == nil || !strings.Contains(err.Error(), `"retry_topic-attempts": want 1 to 32767, got 0`) {
			t.Fatalf("ok %v, err %v", ok, err)
		}
	})
	t.Run("backoff timestamp ignored", func(t *testing.T) {
		t.Parallel()
		st, _, err := DecodeDeadLetter(with(springTierHeaders(), "retry_topic-backoff-timestamp", h("retry_topic-backoff-timestamp", "")))
		if err != nil || !st.Due.IsZero() {
			t.Fatalf("Due %v, err %v", st.Due, err)
		}
	})
	t.Run("plain DeadLetterPublishingRecoverer", func(t *testing.T) {
		t.Parallel()
		// DefaultErrorHandler + DeadLetterPublishingRecoverer: kafka_dlt-*
		// names, no retry_topic-* headers.
		st, ok, err := DecodeDeadLetter([]kgo.RecordHeader{
			h("kafka_dlt-exception-fqcn", `"org.springframework.kafka.listener.ListenerExecutionFailedException"`),
			h("kafka_dlt-exception-cause-fqcn", `"java.lang.IllegalStateException"`),
			h("kafka_dlt-exception-message", `"Listener failed; db: timeout"`),
			h("kafka_dlt-exception-stacktrace", `"..."`),
			h("kafka_dlt-original-topic", `"orders"`),
			h("kafka_dlt-original-partition", "00 00 00 03"),
			h("kafka_dlt-original-offset", "00 00 00 00 00 00 00 2a"),
			h("kafka_dlt-original-timestamp", "00 00 01 9b 76 da a4 18"),
			h("kafka_dlt-original-timestamp-type", `"CREATE_TIME"`),
			h("kafka_dlt-original-consumer-group", `"billing"`),
		})
		want := springTierState()
		want.Attempt = 1
		want.Due = time.Time{}
		want.Reason = ReasonSpring
		if err != nil || !ok || st != want {
			t.Fatalf("got %+v, %v, %v\nwant %+v", st, ok, err, want)
		}
	})
	t.Run("original topic missing", func(t *testing.T) {
		t.Parallel()
		_, _, err := DecodeDeadLetter(without(springDLTHeaders(), "kafka_original-topic"))
		if !errors.Is(err, retry.ErrMissingHeader) {
			t.Fatalf("err = %v", err)
		}
	})
}

// TestAppendVectors pins the exact bytes Append writes, against the
// hand-derived Java encodings.
func TestAppendVectors(t *testing.T) {
	t.Parallel()
	tier := springTierState()
	tier.Due = ms(tsDue).Add(100 * time.Microsecond) // rounded up to ...501
	tier.ErrorType = "*net.OpError"
	tier.Error = "db: timeout"
	got := Append([]kgo.RecordHeader{h("trace-id", `"abc"`)}, tier, 0)
	want := []kgo.RecordHeader{
		h("trace-id", `"abc"`),
		h("kafka_exception-fqcn", `"*net.OpError"`),
		h("kafka_exception-cause-fqcn", `"*net.OpError"`),
		h("kafka_exception-message", `"db: timeout"`),
		h("kafka_exception-stacktrace", `"*net.OpError: db: timeout"`),
		h("kafka_original-topic", `"orders"`),
		h("kafka_original-partition", "00 00 00 03"),             // putInt(3)
		h("kafka_original-offset", "00 00 00 00 00 00 00 2a"),    // putLong(42)
		h("kafka_original-timestamp", "00 00 01 9b 76 da a4 18"), // putLong(1767225599000)
		h("kafka_original-timestamp-type", `"CREATE_TIME"`),      // TimestampType.CREATE_TIME.toString()
		h("retry_topic-original-timestamp", "01 9b 76 da a4 18"), // BigInteger 1767225599000
		h("retry_topic-attempts", "00 00 00 02"),                 // putInt(2)
		h("retry_topic-backoff-timestamp", "01 9b 76 da ad dd"),  // BigInteger 1767225601501
	}
	assertHeaders(t, "tier", got, want)

	dead := tier.DeadLetter(retry.ReasonExhausted) // Attempt 1: one delivery
	dead.Error, dead.ErrorType = "", ""
	got = Append(nil, dead, 0)
	want = []kgo.RecordHeader{
		h("kafka_original-topic", `"orders"`),
		h("kafka_original-partition", "00 00 00 03"),
		h("kafka_original-offset", "00 00 00 00 00 00 00 2a"),
		h("kafka_original-timestamp", "00 00 01 9b 76 da a4 18"),
		h("kafka_original-timestamp-type", `"CREATE_TIME"`),
		h("retry_topic-original-timestamp", "01 9b 76 da a4 18"),
		h("retry_topic-attempts", "00 00 00 02"), // putInt(1 + 1): Spring counts the next delivery on a DLT too
	}
	assertHeaders(t, "dead letter", got, want)

	// An original timestamp in 1987 needs a 0x00 sign byte in the
	// BigInteger form; negative partition and offset are written as they are.
	odd := tier
	odd.OriginalTimestamp = ms(549755813888)
	odd.OriginalPartition, odd.OriginalOffset = -1, -2
	odd.Error, odd.ErrorType = "only text", ""
	got = Append(nil, odd, 0)
	for _, w := range []kgo.RecordHeader{
		h("kafka_exception-stacktrace", `"only text"`),
		h("kafka_original-partition", "ff ff ff ff"),
		h("kafka_original-offset", "ff ff ff ff ff ff ff fe"),
		h("kafka_original-timestamp", "00 00 00 80 00 00 00 00"),
		h("retry_topic-original-timestamp", "00 80 00 00 00 00"),
	} {
		if i := slices.IndexFunc(got, func(x kgo.RecordHeader) bool { return x.Key == w.Key }); i < 0 || !bytes.Equal(got[i].Value, w.Value) {
			t.Errorf("odd: header %s = %v, want % x", w.Key, got, w.Value)
		}
	}
	if slices.ContainsFunc(got, func(x kgo.RecordHeader) bool { return x.Key == "kafka_exception-fqcn" }) {
		t.Errorf("odd: kafka_exception-fqcn written for an empty ErrorType")
	}
}

func assertHeaders(t *testing.T, name string, got, want []kgo.RecordHeader) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %d headers, want %d:\n%v", name, len(got), len(want), got)
	}
	for i := range want {
		if got[i].Key != want[i].Key || !bytes.Equal(got[i].Value, want[i].Value) {
			t.Errorf("%s: header %d = %s % x, want %s % x", name, i, got[i].Key, got[i].Value, want[i].Key, want[i].Value)
		}
	}
}

func TestAppendBoundsAndClamps(t *testing.T) {
	t.Parallel()
	st := springTierState()
	st.Error = strings.Repeat("e", 10_000)
	st.ErrorType = strings.Repeat("t", 1000)
	st.Attempt = math.MaxInt32
	hs := Append(nil, st, 100)
	value := func(key string) []byte {
		i := slices.IndexFunc(hs, func(x kgo.RecordHeader) bool { return x.Key == key })
		if i < 0 {
			t.Fatalf("%s not written", key)
		}
		return hs[i].Value
	}
	if n := len(value("kafka_exception-message")); n != 100 {
		t.Errorf("message %d bytes, want 100", n)
	}
	if v := value("kafka_exception-fqcn"); len(v) != retry.MaxErrorTypeBytes || !bytes.HasSuffix(v, []byte(retry.TruncationMarker)) {
		t.Errorf("fqcn %d bytes, want %d ending in the marker", len(v), retry.MaxErrorTypeBytes)
	}
	if n := len(value("kafka_exception-stacktrace")); n != 256+2+100 {
		t.Errorf("stack trace %d bytes, want %d", n, 256+2+100)
	}
	hs = Append(nil, st, 0)
	if v := value("kafka_exception-stacktrace"); len(v) != MaxStackTraceBytes || !bytes.HasPrefix(v, []byte("ttt")) {
		t.Errorf("stack trace %d bytes, want %d", len(v), MaxStackTraceBytes)
	}
	if v := value("retry_topic-attempts"); !bytes.Equal(v, []byte{0, 0, 0x7f, 0xff}) {
		t.Errorf("attempts % x, want clamped to 32767", v)
	}
	st.Attempt = 0
	if v := Append(nil, st, 0); !bytes.Equal(v[len(v)-2].Value, []byte{0, 0, 0, 1}) {
		t.Errorf("attempts for Attempt 0 = % x, want 1", v[len(v)-2].Value)
	}
	st.Error = "a\xffb"
	st.OriginalTopic = "o\xff"
	hs = Append(nil, st, 0)
	if v := string(value("kafka_exception-message")); v != "a\uFFFDb" {
		t.Errorf("message %q, want invalid UTF-8 replaced", v)
	}
	if v := string(value("kafka_original-topic")); v != "o\uFFFD" {
		t.Errorf("topic %q, want invalid UTF-8 replaced", v)
	}
}

func TestAppendReplacesStaleHeaders(t *testing.T) {
	t.Parallel()
	// A Spring DLT record, read back and forwarded again: every Spring
	// header in it is stale, including repeated retry_topic-* copies and
	// a plain recoverer's kafka_dlt-* ones; user headers stay, in order.
	src := append([]kgo.RecordHeader{h("a", `"1"`)}, springDLTHeaders()...)
	src = append(src, h("kafka_dlt-exception-message", `"old"`), h("b", `"2"`), h("a", `"3"`))
	orig := slices.Clone(src)

	st := springTierState()
	st.Attempt = 4
	got := Append(src, st, 0)

	var users []string
	count := map[string]int{}
	for _, x := range got {
		if IsSpringHeader(x.Key) {
			count[x.Key]++
		} else {
			users = append(users, x.Key+"="+string(x.Value))
		}
	}
	if want := []string{"a=1", "trace-id=abc", "b=2", "a=3"}; !slices.Equal(users, want) {
		t.Errorf("user headers %v, want %v", users, want)
	}
	for k, n := range count {
		if n != 1 {
			t.Errorf("%s appears %d times", k, n)
		}
	}
	if count["kafka_dlt-exception-message"] != 0 || count["kafka_dlt-original-consumer-group"] != 0 {
		t.Errorf("stale kafka_dlt-* headers kept: %v", count)
	}
	back, _, err := Decode(got)
	if err != nil || back != st {
		t.Fatalf("Decode after Append: %+v, %v\nwant %+v", back, err, st)
	}
	for i := range orig {
		if src[i].Key != orig[i].Key || !bytes.Equal(src[i].Value, orig[i].Value) {
			t.Fatalf("Append modified dst's elements at %d", i)
		}
	}
}

func TestRoundTrip(t *testing.T) {
	t.Parallel()
	tier := springTierState()
	tier.Attempt = 5
	dead := tier.DeadLetter(retry.ReasonExhausted)
	tests := []struct {
		name   string
		in     retry.State
		decode func([]kgo.RecordHeader) (retry.State, bool, error)
		want   retry.State
	}{
		{name: "tier", in: tier, decode: Decode, want: tier},
		{name: "tier without error", in: func() retry.State { s := tier; s.Error, s.ErrorType = "", ""; return s }(), decode: Decode,
			want: func() retry.State { s := tier; s.Error, s.ErrorType = "", ""; return s }()},
		// Spring has no first-failure header: it comes back as the
		// original timestamp.
		{name: "first failure is not carried", in: func() retry.State { s := tier; s.FirstFailure = ms(tsDue - 500); return s }(),
			decode: Decode, want: tier},
		// Spring records no reason: it comes back as ReasonSpring.
		{name: "dead letter", in: dead, decode: DecodeDeadLetter,
			want: func() retry.State { s := dead; s.Reason = ReasonSpring; return s }()},
		{name: "dead letter, max attempts", in: func() retry.State { s := dead; s.Attempt = MaxAttempts - 1; return s }(), decode: DecodeDeadLetter,
			want: func() retry.State { s := dead; s.Attempt = MaxAttempts - 1; s.Reason = ReasonSpring; return s }()},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if err := tt.in.Validate(); err != nil {
				t.Fatalf("input does not validate: %v", err)
			}
			got, ok, err := tt.decode(Append(nil, tt.in, 0))
			if err != nil || !ok || got != tt.want {
				t.Fatalf("got  %+v, %v, %v\nwant %+v", got, ok, err, tt.want)
			}
		})
	}
}

// TestNextThenAppend is the listener's write path: a Spring tier record taken
// over by kretry, failing again, forwarded with retry.Next (which copies the
// stale Spring headers as user headers) and then Append.
func TestNextThenAppend(t *testing.T) {
	t.Parallel()
	src := &kgo.Record{Topic: "orders-retry", Partition: 3, Offset: 9, Headers: springTierHeaders()}
	st, _, err := Decode(src.Headers)
	if err != nil {
		t.Fatal(err)
	}
	next := st.Advance(ms(tsDue+2000), "db: still down", "*net.OpError")
	out := retry.Next(src, "orders-retry", src.Partition, next, 0)
	out.Headers = Append(out.Headers, next, 0)

	k, ok, err := retry.Decode(out.Headers)
	if err != nil || !ok || k != next {
		t.Fatalf("retry.Decode: %+v, %v, %v\nwant %+v", k, ok, err, next)
	}
	s, ok, err := Decode(out.Headers)
	if err != nil || !ok || s != next {
		t.Fatalf("spring.Decode: %+v, %v, %v\nwant %+v", s, ok, err, next)
	}
	n := 0
	for _, x := range out.Headers {
		if x.Key == "retry_topic-attempts" {
			n++
		}
	}
	if n != 1 {
		t.Fatalf("retry_topic-attempts appears %d times, want 1", n)
	}
	if out.Headers[0].Key != "trace-id" {
		t.Fatalf("user header not first: %v", out.Headers[0])
	}
}

func TestIsSpringHeaderAndStrip(t *testing.T) {
	t.Parallel()
	names := []string{
		"retry_topic-attempts", "retry_topic-backoff-timestamp", "retry_topic-original-timestamp",
		"kafka_original-topic", "kafka_original-partition", "kafka_original-offset",
		"kafka_original-timestamp", "kafka_original-timestamp-type",
		"kafka_exception-fqcn", "kafka_exception-cause-fqcn", "kafka_exception-message", "kafka_exception-stacktrace",
		"kafka_key-exception-fqcn", "kafka_key-exception-message", "kafka_key-exception-stacktrace",
		"kafka_dlt-original-topic", "kafka_dlt-original-partition", "kafka_dlt-original-offset",
		"kafka_dlt-original-timestamp", "kafka_dlt-original-timestamp-type", "kafka_dlt-original-consumer-group",
		"kafka_dlt-exception-fqcn", "kafka_dlt-exception-cause-fqcn", "kafka_dlt-exception-message", "kafka_dlt-exception-stacktrace",
		"kafka_dlt-key-exception-fqcn", "kafka_dlt-key-exception-message", "kafka_dlt-key-exception-stacktrace",
	}
	if len(names) != numHeaders {
		t.Fatalf("test lists %d names, package has %d", len(names), numHeaders)
	}
	if numHeaders > 32 {
		t.Fatal("scan.present is a uint32 bit set")
	}
	for _, n := range names {
		if !IsSpringHeader(n) {
			t.Errorf("IsSpringHeader(%q) = false", n)
		}
		if headerName(headerIndex(n)) != n {
			t.Errorf("headerName(headerIndex(%q)) mismatch", n)
		}
	}
	for _, n := range []string{"", "kafka_", "kafka_receivedTopic", "kafka_deliveryAttempt", "retry_topic-", "kretry-attempt",
		"kretry-follows", "kretry-group", "RETRY_TOPIC-ATTEMPTS", "kafka_original-topic ", "springDeserializerExceptionValue"} {
		if IsSpringHeader(n) {
			t.Errorf("IsSpringHeader(%q) = true", n)
		}
	}

	in := append([]kgo.RecordHeader{h("a", `"1"`)}, springDLTHeaders()...)
	in = append(in, kgo.RecordHeader{Key: "b"}, h("a", `"2"`))
	got := Strip(in)
	assertHeaders(t, "Strip", got, []kgo.RecordHeader{h("a", `"1"`), h("trace-id", `"abc"`), {Key: "b"}, h("a", `"2"`)})
	if Strip(springDLTHeaders()[1:]) != nil {
		t.Errorf("Strip of Spring headers only is not nil")
	}
}

func TestDecodeErrorMessage(t *testing.T) {
	t.Parallel()
	// DecodeError is retry.DecodeError; one built by hand names its family.
	e := &DecodeError{Header: "retry_topic-attempts", Err: retry.ErrMissingHeader, Family: "Spring"}
	if got, want := e.Error(), `kretry: Spring header "retry_topic-attempts": kretry: required header missing`; got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
	if !errors.Is(e, retry.ErrMissingHeader) {
		t.Error("errors.Is does not see the sentinel")
	}
}

func TestMode(t *testing.T) {
	t.Parallel()
	for m, want := range map[Mode]string{0: "off", Read: "read", Write: "write", Read | Write: "read|write", 4: "Mode(4)"} {
		if got := m.String(); got != want {
			t.Errorf("Mode(%d).String() = %q, want %q", uint8(m), got, want)
		}
	}
	if !(Read | Write).Has(Read) || Write.Has(Read) || !Write.Has(0) {
		t.Error("Has")
	}
}

// TestDecodeAllocations holds Decode to the strings it must return: the
// original topic, the error text and the error type.
func TestDecodeAllocations(t *testing.T) {
	hs := springTierHeaders()
	allocs := testing.AllocsPerRun(100, func() {
		if _, _, err := Decode(hs); err != nil {
			t.Fatal(err)
		}
	})
	if allocs > 3 {
		t.Fatalf("Decode allocates %v times per call, want <= 3", allocs)
	}
	none := []kgo.RecordHeader{h("trace-id", `"abc"`), h("kretry-attempt", "00 00 00 02")}
	if allocs := testing.AllocsPerRun(100, func() { Decode(none) }); allocs != 0 {
		t.Fatalf("Decode without Spring headers allocates %v times, want 0", allocs)
	}
}

func BenchmarkDecode(b *testing.B) {
	hs := springTierHeaders()
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := Decode(hs); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkAppend(b *testing.B) {
	st := springTierState()
	dst := make([]kgo.RecordHeader, 0, 16)
	b.ReportAllocs()
	for b.Loop() {
		Append(dst[:0], st, 0)
	}
}

func TestResolve(t *testing.T) {
	t.Parallel()
	// kretryTier is what kretry writes with Write on: both families, equal
	// attempts. Its FirstFailure differs from OriginalTimestamp, so the
	// result shows which family won.
	kst := springTierState()
	kst.FirstFailure = ms(tsOriginal + 700)
	src := &kgo.Record{Topic: "orders", Partition: 3, Offset: 42, Headers: []kgo.RecordHeader{h("trace-id", `"abc"`)}}
	// written is what kretry writes for st to topic with Write on.
	written := func(topic string, st retry.State) []kgo.RecordHeader {
		return Append(retry.Next(src, topic, 3, st, 0).Headers, st, 0)
	}
	kretryTier := func() []kgo.RecordHeader { return written("orders-retry", kst) }
	kdead := kst.Advance(time.Time{}, "db: down", "*net.OpError").DeadLetter(retry.ReasonExhausted)
	kretryDLT := func() []kgo.RecordHeader { return written("orders-dlt", kdead) }
	// springForwarded is kretryTier after a Spring consumer failed it
	// again: Spring copies every header and appends its own.
	springForwarded := append(kretryTier(),
		h("retry_topic-original-timestamp", "01 9b 76 da a4 18"),
		h("retry_topic-attempts", "00 00 00 03"),
		h("retry_topic-backoff-timestamp", "01 9b 76 da b2 be"), // BigInteger 1767225602750
	)
	// kretryFollower is a follower (key order) written with Write on: its
	// Spring attempts are 1, which Spring's decoder rejects on a tier, so
	// kretry's headers, which allow it, must win.
	kfol := kst
	kfol.Attempt, kfol.FirstFailure, kfol.Follower, kfol.Follows = 1, time.Time{}, true, 40
	kretryFollower := func() []kgo.RecordHeader { return written("orders-retry", kfol) }
	// springForwardedFollower is kretryFollower after a Spring consumer,
	// which knows nothing of key order, handled it and failed: it is no
	// follower any more.
	springForwardedFollower := append(kretryFollower(),
		h("retry_topic-attempts", "00 00 00 02"),
		h("retry_topic-backoff-timestamp", "01 9b 76 da b2 be"),
	)
	corruptKretry := with(kretryTier(), "kretry-due", h("kretry-due", "00 01"))
	corruptSpring := with(kretryTier(), "retry_topic-attempts", h("retry_topic-attempts", "00 01"))

	springState := func(attempt int32, due int64) retry.State {
		s := kst
		s.Attempt, s.Due, s.FirstFailure = attempt, ms(due), s.OriginalTimestamp
		return s
	}
	tests := []struct {
		name       string
		headers    []kgo.RecordHeader
		deadLetter bool
		want       retry.State
		wantOK     bool
		wantErr    string
	}{
		{name: "neither", headers: []kgo.RecordHeader{h("a", `"b"`)}},
		{name: "kretry only", headers: retry.Next(src, "orders-retry", 3, kst, 0).Headers, want: kst, wantOK: true},
		{name: "kretry only, corrupt", headers: []kgo.RecordHeader{h("kretry-attempt", "02")}, wantOK: true,
			wantErr: `kretry: header "kretry-attempt": want 4 bytes, got 1`},
		{name: "Spring only", headers: springTierHeaders(), want: springTierState(), wantOK: true},
		{name: "Spring only, dead letter", headers: springDLTHeaders(), deadLetter: true, wantOK: true,
			want: func() retry.State {
				s := springTierState()
				s.Due, s.Attempt, s.Error, s.Reason = time.Time{}, 2, "Listener failed; db: down", ReasonSpring
				return s
			}()},
		{name: "Spring only, corrupt", headers: corruptSpring[len(corruptSpring)-1:], wantOK: true,
			wantErr: `kretry: Spring header "retry_topic-attempts": want 1 or 4 bytes, got 2`},
		{name: "written by kretry", headers: kretryTier(), want: kst, wantOK: true},
		{name: "written by kretry, dead letter", headers: kretryDLT(), deadLetter: true, want: kdead, wantOK: true},
		{name: "forwarded by Spring", headers: springForwarded, want: springState(3, 1767225602750), wantOK: true},
		{name: "written by kretry, follower", headers: kretryFollower(), want: kfol, wantOK: true},
		{name: "follower forwarded by Spring", headers: springForwardedFollower, want: springState(2, 1767225602750), wantOK: true},
		{name: "dead-lettered by Spring", headers: springForwarded, deadLetter: true, wantOK: true,
			want: func() retry.State {
				s := springState(2, 0)
				s.Due, s.Reason = time.Time{}, ReasonSpring
				return s
			}()},
		{name: "kretry corrupt, Spring valid", headers: corruptKretry, want: springState(2, tsDue), wantOK: true},
		{name: "kretry valid, Spring corrupt", headers: corruptSpring, want: kst, wantOK: true},
		{name: "both corrupt", headers: with(corruptKretry, "retry_topic-attempts", h("retry_topic-attempts", "00 01")), wantOK: true,
			wantErr: `kretry: header "kretry-due": want 8 bytes, got 2`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			st, ok, err := Resolve(tt.headers, tt.deadLetter)
			if ok != tt.wantOK {
				t.Fatalf("ok = %v, want %v", ok, tt.wantOK)
			}
			if tt.wantErr != "" {
				if err == nil || err.Error() != tt.wantErr {
					t.Fatalf("err = %v, want %s", err, tt.wantErr)
				}
				return
			}
			if err != nil || st != tt.want {
				t.Fatalf("got  %+v, %v\nwant %+v", st, err, tt.want)
			}
		})
	}
}
