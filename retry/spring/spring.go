package spring

import (
	"encoding/binary"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/kretry/kretry/retry"
)

// This file is the only place in kretry where Spring Kafka's header names
// and encodings are defined. docs/interop-spring.md describes the same rules
// for users; keep the two in step.

// Mode says which way a listener translates Spring Kafka's retry headers.
// The zero value translates nothing: Spring's headers are user headers to
// kretry and are carried forward unchanged. Combine the constants with |.
type Mode uint8

const (
	// Read makes a listener decode Spring's headers on retry-tier and
	// dead-letter records, choosing between them and kretry's with
	// Resolve, so that it can take over topics a Spring service wrote.
	Read Mode = 1 << iota
	// Write makes a listener write Spring's headers, with Append, next to
	// its own on every record it forwards, so that a Spring service can
	// consume kretry's retry and dead-letter topics.
	Write
)

// Has reports whether m includes every bit of o.
func (m Mode) Has(o Mode) bool { return m&o == o }

// String returns "off", "read", "write" or "read|write", and "Mode(N)" for
// a value with other bits set.
func (m Mode) String() string {
	switch m {
	case 0:
		return "off"
	case Read:
		return "read"
	case Write:
		return "write"
	case Read | Write:
		return "read|write"
	}
	return "Mode(" + strconv.Itoa(int(m)) + ")"
}

// ReasonSpring is the retry.State Reason that DecodeDeadLetter reports:
// the record was dead-lettered by Spring Kafka, which does not record why.
// Error and ErrorType hold what Spring recorded about the last failure.
const ReasonSpring = "spring"

// MaxAttempts is the largest value of retry_topic-attempts that Spring
// Kafka accepts; it reads any other value as 1. Decode rejects values
// outside [1, MaxAttempts] and Append never writes one.
const MaxAttempts = 32767

// MaxStackTraceBytes bounds the kafka_exception-stacktrace value Append
// writes: one line in the form of Java's Throwable.toString, never a real
// stack trace.
const MaxStackTraceBytes = 1024

// Spring Kafka's header names (RetryTopicHeaders and KafkaHeaders). Indexes
// into headerName; the order is the order in which Decode checks them.
const (
	hAttempts           = iota // retry_topic-attempts
	hBackoff                   // retry_topic-backoff-timestamp
	hOrigTopic                 // kafka_original-topic
	hOrigPartition             // kafka_original-partition
	hOrigOffset                // kafka_original-offset
	hOrigTimestamp             // kafka_original-timestamp
	hDLTOrigTopic              // kafka_dlt-original-topic
	hDLTOrigPartition          // kafka_dlt-original-partition
	hDLTOrigOffset             // kafka_dlt-original-offset
	hDLTOrigTimestamp          // kafka_dlt-original-timestamp
	hRetryOrigTimestamp        // retry_topic-original-timestamp
	hExCauseFQCN               // kafka_exception-cause-fqcn
	hExFQCN                    // kafka_exception-fqcn
	hExMessage                 // kafka_exception-message
	hKeyExFQCN                 // kafka_key-exception-fqcn
	hKeyExMessage              // kafka_key-exception-message
	hDLTExCauseFQCN            // kafka_dlt-exception-cause-fqcn
	hDLTExFQCN                 // kafka_dlt-exception-fqcn
	hDLTExMessage              // kafka_dlt-exception-message
	hDLTKeyExFQCN              // kafka_dlt-key-exception-fqcn
	hDLTKeyExMessage           // kafka_dlt-key-exception-message
	// Headers below are recognised (IsSpringHeader, Strip, Append) but not
	// read.
	hOrigTimestampType    // kafka_original-timestamp-type
	hExStacktrace         // kafka_exception-stacktrace
	hKeyExStacktrace      // kafka_key-exception-stacktrace
	hDLTOrigTimestampType // kafka_dlt-original-timestamp-type
	hDLTOrigGroup         // kafka_dlt-original-consumer-group
	hDLTExStacktrace      // kafka_dlt-exception-stacktrace
	hDLTKeyExStacktrace   // kafka_dlt-key-exception-stacktrace
	numHeaders
)

// headerName maps the indexes above to names. The array is built per call so
// that there is no mutable package state.
func headerName(i int) string {
	return [numHeaders]string{
		"retry_topic-attempts",
		"retry_topic-backoff-timestamp",
		"kafka_original-topic",
		"kafka_original-partition",
		"kafka_original-offset",
		"kafka_original-timestamp",
		"kafka_dlt-original-topic",
		"kafka_dlt-original-partition",
		"kafka_dlt-original-offset",
		"kafka_dlt-original-timestamp",
		"retry_topic-original-timestamp",
		"kafka_exception-cause-fqcn",
		"kafka_exception-fqcn",
		"kafka_exception-message",
		"kafka_key-exception-fqcn",
		"kafka_key-exception-message",
		"kafka_dlt-exception-cause-fqcn",
		"kafka_dlt-exception-fqcn",
		"kafka_dlt-exception-message",
		"kafka_dlt-key-exception-fqcn",
		"kafka_dlt-key-exception-message",
		"kafka_original-timestamp-type",
		"kafka_exception-stacktrace",
		"kafka_key-exception-stacktrace",
		"kafka_dlt-original-timestamp-type",
		"kafka_dlt-original-consumer-group",
		"kafka_dlt-exception-stacktrace",
		"kafka_dlt-key-exception-stacktrace",
	}[i]
}

func headerIndex(key string) int {
	// Every name starts with "k" or "r": a cheap test that lets most user
	// headers skip the switch.
	if len(key) < 20 || key[0] != 'k' && key[0] != 'r' {
		return -1
	}
	switch key {
	case "retry_topic-attempts":
		return hAttempts
	case "retry_topic-backoff-timestamp":
		return hBackoff
	case "kafka_original-topic":
		return hOrigTopic
	case "kafka_original-partition":
		return hOrigPartition
	case "kafka_original-offset":
		return hOrigOffset
	case "kafka_original-timestamp":
		return hOrigTimestamp
	case "kafka_dlt-original-topic":
		return hDLTOrigTopic
	case "kafka_dlt-original-partition":
		return hDLTOrigPartition
	case "kafka_dlt-original-offset":
		return hDLTOrigOffset
	case "kafka_dlt-original-timestamp":
		return hDLTOrigTimestamp
	case "retry_topic-original-timestamp":
		return hRetryOrigTimestamp
	case "kafka_exception-cause-fqcn":
		return hExCauseFQCN
	case "kafka_exception-fqcn":
		return hExFQCN
	case "kafka_exception-message":
		return hExMessage
	case "kafka_key-exception-fqcn":
		return hKeyExFQCN
	case "kafka_key-exception-message":
		return hKeyExMessage
	case "kafka_dlt-exception-cause-fqcn":
		return hDLTExCauseFQCN
	case "kafka_dlt-exception-fqcn":
		return hDLTExFQCN
	case "kafka_dlt-exception-message":
		return hDLTExMessage
	case "kafka_dlt-key-exception-fqcn":
		return hDLTKeyExFQCN
	case "kafka_dlt-key-exception-message":
		return hDLTKeyExMessage
	case "kafka_original-timestamp-type":
		return hOrigTimestampType
	case "kafka_exception-stacktrace":
		return hExStacktrace
	case "kafka_key-exception-stacktrace":
		return hKeyExStacktrace
	case "kafka_dlt-original-timestamp-type":
		return hDLTOrigTimestampType
	case "kafka_dlt-original-consumer-group":
		return hDLTOrigGroup
	case "kafka_dlt-exception-stacktrace":
		return hDLTExStacktrace
	case "kafka_dlt-key-exception-stacktrace":
		return hDLTKeyExStacktrace
	}
	return -1
}

// IsSpringHeader reports whether key is one of the retry and dead-letter
// headers Spring Kafka writes under its default names: the three
// retry_topic-* headers, and the kafka_original-*, kafka_exception-*,
// kafka_key-exception-* and kafka_dlt-* headers written by its
// DeadLetterPublishingRecoverer (see docs/interop-spring.md for the list).
// The match is exact and case-sensitive. Other kafka_* headers are not
// included.
func IsSpringHeader(key string) bool { return headerIndex(key) >= 0 }

// Strip returns a new slice holding the headers for which IsSpringHeader is
// false, in their original order, or nil if there are none. Header values
// are shared with headers, not copied. A replay tool that resets a record's
// retry history strips both families:
//
//	hs := spring.Strip(retry.UserHeaders(rec.Headers))
func Strip(headers []kgo.RecordHeader) []kgo.RecordHeader {
	var out []kgo.RecordHeader
	for _, h := range headers {
		if !IsSpringHeader(h.Key) {
			out = append(out, h)
		}
	}
	return out
}

// DecodeError reports one Spring header that breaks a decoding rule: it
// is retry.DecodeError, with Family "Spring". Its message names the
// header and the rule, for example
//
//	kretry: Spring header "retry_topic-attempts": want 1 or 4 bytes, got 2
//	kretry: Spring header "kafka_original-topic" missing
//
// Err is retry.ErrMissingHeader or retry.ErrCorruptHeader, so errors.Is
// tells the kinds apart exactly as for kretry's own headers.
type DecodeError = retry.DecodeError

// family is the retry.DecodeError Family of Spring's headers.
const family = "Spring"

func corrupt(i int, rule string) *DecodeError {
	e := retry.NewDecodeError(headerName(i), retry.ErrCorruptHeader, rule)
	e.Family = family
	return e
}

func missing(i int) *DecodeError {
	e := retry.NewDecodeError(headerName(i), retry.ErrMissingHeader, " missing")
	e.Family = family
	return e
}

// scan holds the last value of each Spring header in a header list.
type scan struct {
	present uint32 // bit i set when header i was seen
	value   [numHeaders][]byte
}

func (sc *scan) has(i int) bool { return sc.present&(1<<i) != 0 }

func (sc *scan) read(headers []kgo.RecordHeader) {
	for i := range headers {
		if j := headerIndex(headers[i].Key); j >= 0 {
			sc.present |= 1 << j
			sc.value[j] = headers[i].Value // the last one wins, as in Spring
		}
	}
}

// fixed reads header i as a big-endian integer of exactly width bytes.
func (sc *scan) fixed(i, width int) (int64, *DecodeError) {
	b := sc.value[i]
	if len(b) != width {
		return 0, corrupt(i, ": want "+strconv.Itoa(width)+" bytes, got "+strconv.Itoa(len(b)))
	}
	if width == 4 {
		return int64(int32(binary.BigEndian.Uint32(b))), nil
	}
	return int64(binary.BigEndian.Uint64(b)), nil
}

// minimal reads header i as Java's BigInteger.toByteArray of a long: big-endian
// two's complement in 1 to 8 bytes, sign-extended. Spring's readers accept
// any length in that range, so a non-minimal encoding is accepted too.
func (sc *scan) minimal(i int) (int64, *DecodeError) {
	b := sc.value[i]
	if len(b) < 1 || len(b) > 8 {
		return 0, corrupt(i, ": want 1 to 8 bytes, got "+strconv.Itoa(len(b)))
	}
	return decodeMinimal(b), nil
}

func decodeMinimal(b []byte) int64 {
	v := int64(int8(b[0]))
	for _, c := range b[1:] {
		v = v<<8 | int64(c)
	}
	return v
}

// appendMinimal appends v as BigInteger.valueOf(v).toByteArray() does: the
// shortest big-endian two's complement form that keeps the sign, 1 to 8
// bytes. A positive value whose top byte has its high bit set gets a
// leading 0x00, a negative one whose top byte has it clear a leading 0xff.
func appendMinimal(dst []byte, v int64) []byte {
	n := 8
	for n > 1 {
		top, next := byte(v>>(8*(n-1))), byte(v>>(8*(n-2)))
		if top == 0x00 && next&0x80 == 0 || top == 0xff && next&0x80 != 0 {
			n--
			continue
		}
		break
	}
	for i := n - 1; i >= 0; i-- {
		dst = append(dst, byte(v>>(8*i)))
	}
	return dst
}

// attempts reads retry_topic-attempts: 4 bytes (Spring 2.7.9 and later) or
// 1 unsigned byte (earlier versions), within [1, MaxAttempts].
func (sc *scan) attempts() (int32, *DecodeError) {
	var v int64
	switch b := sc.value[hAttempts]; len(b) {
	case 1:
		v = int64(b[0])
	case 4:
		v = int64(int32(binary.BigEndian.Uint32(b)))
	default:
		return 0, corrupt(hAttempts, ": want 1 or 4 bytes, got "+strconv.Itoa(len(b)))
	}
	if v < 1 || v > MaxAttempts {
		return 0, corrupt(hAttempts, ": want 1 to "+strconv.Itoa(MaxAttempts)+", got "+strconv.FormatInt(v, 10))
	}
	return int32(v), nil
}

// zeroTimeMillis is time.Time{}.UnixMilli(), which retry.State uses for "no
// due time".
const zeroTimeMillis = -62135596800000

// Decode reads the Spring Kafka retry-topic headers in headers into the
// retry.State kretry would have written for the same record on a retry
// tier, ignoring every other header. Use DecodeDeadLetter for a record read
// from a dead-letter topic: Spring stamps its dead-letter records with the
// same headers, so the headers alone do not tell the two apart.
//
// With no header for which IsSpringHeader is true, Decode returns the zero
// State, false and nil. Otherwise the bool is true and the fields come from:
//
//   - Attempt: retry_topic-attempts, 4 bytes or (older Spring) 1 unsigned
//     byte. It must be within [2, MaxAttempts] on a retry tier.
//   - Due: retry_topic-backoff-timestamp, epoch milliseconds in Java's
//     BigInteger form (two's complement, 1 to 8 bytes). Required, and must
//     not be -62135596800000 (Go's zero time).
//   - OriginalTopic, OriginalPartition, OriginalOffset, OriginalTimestamp:
//     kafka_original-topic (text, not empty), -partition (4 bytes),
//     -offset (8 bytes) and -timestamp (8 bytes), all required except the
//     timestamp, for which retry_topic-original-timestamp stands in. When
//     kafka_original-topic is absent, the kafka_dlt-original-* headers of a
//     plain DeadLetterPublishingRecoverer are read instead.
//   - FirstFailure: Spring does not record it. Decode uses
//     retry_topic-original-timestamp (BigInteger form), else
//     OriginalTimestamp: the original record's timestamp, a lower bound on
//     the first failure. kretry measures its timeout from OriginalTimestamp,
//     as Spring does, so this choice does not change any decision.
//   - Error: kafka_exception-message, else kafka_key-exception-message,
//     kafka_dlt-exception-message, kafka_dlt-key-exception-message; the
//     first that is present and not empty.
//   - ErrorType: kafka_exception-cause-fqcn, else kafka_exception-fqcn,
//     kafka_key-exception-fqcn, then the kafka_dlt-* forms in the same
//     order; the first that is present and not empty. The cause comes
//     first because Spring's listener container wraps every listener
//     exception in a ListenerExecutionFailedException, whose name says
//     nothing.
//
// A header that appears more than once is read from its last copy, as
// Spring's readers do (Headers.lastHeader): Spring appends a new
// retry_topic-attempts, -backoff-timestamp and -original-timestamp on every
// hop.
//
// Text is made valid UTF-8 (each invalid run becomes U+FFFD) and Error and
// ErrorType are cut to retry.DefaultMaxErrorBytes and
// retry.MaxErrorTypeBytes, ending in retry.TruncationMarker when cut, as
// retry.State.Append would cut them. Times are UTC with millisecond
// precision.
//
// Decode is stricter than Spring, which reads a malformed or out-of-range
// attempts header as 1 and ignores a malformed timestamp: a header of the
// wrong length or out of range is an error here, so that the listener can
// dead-letter the record instead of restarting its retries. The first
// problem, in the order of the list above, is returned as a *DecodeError
// with the zero State. A State returned without error passes
// retry.State.Validate.
func Decode(headers []kgo.RecordHeader) (retry.State, bool, error) {
	var sc scan
	sc.read(headers)
	if sc.present == 0 {
		return retry.State{}, false, nil
	}
	st, err := sc.decode(false)
	if err != nil {
		return retry.State{}, true, err
	}
	return st, true, nil
}

// DecodeDeadLetter reads Spring Kafka's headers on a record consumed from a
// dead-letter topic into the dead-letter retry.State kretry would have
// written for it. It reads the same headers as Decode, with these
// differences:
//
//   - Reason is ReasonSpring, since Spring does not record why it
//     dead-lettered a record.
//   - Attempt is the number of deliveries the record had: one less than
//     retry_topic-attempts, which Spring writes as the number of the
//     delivery that would have come next, and at least 1. Without that
//     header (a plain DeadLetterPublishingRecoverer, which retries in
//     memory and does not count on the wire) it is 1.
//   - retry_topic-backoff-timestamp is ignored and Due is zero: Spring
//     writes the time of the failure there, since a dead-letter topic has
//     no delay.
//
// With no Spring header it returns the zero State, false and nil. A State
// returned without error passes retry.State.Validate.
func DecodeDeadLetter(headers []kgo.RecordHeader) (retry.State, bool, error) {
	var sc scan
	sc.read(headers)
	if sc.present == 0 {
		return retry.State{}, false, nil
	}
	st, err := sc.decode(true)
	if err != nil {
		return retry.State{}, true, err
	}
	return st, true, nil
}

func (sc *scan) decode(dlt bool) (retry.State, *DecodeError) {
	var st retry.State
	switch {
	case sc.has(hAttempts):
		a, err := sc.attempts()
		if err != nil {
			return st, err
		}
		st.Attempt = a
		if dlt {
			st.Attempt = max(1, a-1)
		} else if a < 2 {
			return st, corrupt(hAttempts, ": want >= 2 on a retry-tier record, got "+strconv.Itoa(int(a)))
		}
	case dlt:
		st.Attempt = 1
	default:
		return st, missing(hAttempts)
	}

	if dlt {
		st.Reason = ReasonSpring
	} else {
		if !sc.has(hBackoff) {
			return st, missing(hBackoff)
		}
		due, err := sc.minimal(hBackoff)
		if err != nil {
			return st, err
		}
		if due == zeroTimeMillis {
			return st, corrupt(hBackoff, ": value "+strconv.FormatInt(due, 10)+" is Go's zero time, which kretry reserves for no due time")
		}
		st.Due = time.UnixMilli(due).UTC()
	}

	// The original-record headers: Spring's retry topics write
	// kafka_original-*; a plain DeadLetterPublishingRecoverer writes
	// kafka_dlt-original-*. One family is read, never a mix.
	topic, part, off, ts := hOrigTopic, hOrigPartition, hOrigOffset, hOrigTimestamp
	if !sc.has(hOrigTopic) && sc.has(hDLTOrigTopic) {
		topic, part, off, ts = hDLTOrigTopic, hDLTOrigPartition, hDLTOrigOffset, hDLTOrigTimestamp
	}
	if !sc.has(topic) {
		return st, missing(topic)
	}
	if st.OriginalTopic = text(sc.value[topic], -1); st.OriginalTopic == "" {
		return st, corrupt(topic, ": must not be empty")
	}
	if !sc.has(part) {
		return st, missing(part)
	}
	p, err := sc.fixed(part, 4)
	if err != nil {
		return st, err
	}
	st.OriginalPartition = int32(p)
	if !sc.has(off) {
		return st, missing(off)
	}
	if st.OriginalOffset, err = sc.fixed(off, 8); err != nil {
		return st, err
	}
	var retryTS int64
	hasRetryTS := sc.has(hRetryOrigTimestamp)
	if hasRetryTS {
		if retryTS, err = sc.minimal(hRetryOrigTimestamp); err != nil {
			return st, err
		}
	}
	switch {
	case sc.has(ts):
		v, err := sc.fixed(ts, 8)
		if err != nil {
			return st, err
		}
		st.OriginalTimestamp = time.UnixMilli(v).UTC()
	case hasRetryTS:
		st.OriginalTimestamp = time.UnixMilli(retryTS).UTC()
	default:
		return st, missing(ts)
	}
	st.FirstFailure = st.OriginalTimestamp
	if hasRetryTS {
		st.FirstFailure = time.UnixMilli(retryTS).UTC()
	}

	for _, i := range [...]int{hExMessage, hKeyExMessage, hDLTExMessage, hDLTKeyExMessage} {
		if len(sc.value[i]) > 0 {
			st.Error = text(sc.value[i], retry.DefaultMaxErrorBytes)
			break
		}
	}
	for _, i := range [...]int{hExCauseFQCN, hExFQCN, hKeyExFQCN, hDLTExCauseFQCN, hDLTExFQCN, hDLTKeyExFQCN} {
		if len(sc.value[i]) > 0 {
			st.ErrorType = text(sc.value[i], retry.MaxErrorTypeBytes)
			break
		}
	}
	return st, nil
}

// text returns b as valid UTF-8 cut to max bytes as retry.State.Append cuts
// text (no bound when max < 0), copying b's bytes only once when they are
// already valid.
func text(b []byte, max int) string {
	if !utf8.Valid(b) {
		return bound(strings.ToValidUTF8(string(b), "\uFFFD"), max)
	}
	if max < 0 || len(b) <= max {
		return string(b)
	}
	keep, marker := cut(b, max)
	return string(b[:keep]) + marker
}

// bound cuts valid UTF-8 s to at most max bytes (no bound when max < 0):
// on a rune boundary, followed by retry.TruncationMarker, whose bytes count
// inside the bound; a bound smaller than the marker cuts without it.
func bound(s string, max int) string {
	if max < 0 || len(s) <= max {
		return s
	}
	keep, marker := cut([]byte(s), max)
	return s[:keep] + marker
}

func cut(b []byte, max int) (int, string) {
	marker := retry.TruncationMarker
	keep := max - len(marker)
	if keep < 0 {
		marker, keep = "", max
	}
	for keep > 0 && !utf8.RuneStart(b[keep]) {
		keep--
	}
	return keep, marker
}

// Append appends Spring Kafka's retry-topic headers for st to dst and
// returns the result, so that a Spring service can consume the record from
// a kretry retry tier or dead-letter topic. Call it on the header list of
// the record retry.Next built, which already holds kretry's own headers.
//
// Any Spring headers already in dst (see IsSpringHeader) are removed first:
// kretry carries user headers forward byte for byte, and to kretry Spring's
// headers are user headers, so the copies from the previous hop would
// otherwise be read by Spring as current. When there are any, Append
// returns a new slice and leaves dst's contents unchanged; otherwise it
// appends to dst as the built-in append does.
//
// It writes, in the order Spring does:
//
//   - kafka_exception-fqcn and kafka_exception-cause-fqcn: both st.ErrorType,
//     cut to retry.MaxErrorTypeBytes; omitted when it is empty.
//   - kafka_exception-message: st.Error cut to maxErrorBytes
//     (retry.DefaultMaxErrorBytes when <= 0); omitted when empty.
//   - kafka_exception-stacktrace: not a stack trace, which kretry does not
//     have, but the one line Java prints first, "<ErrorType>: <Error>", cut
//     to MaxStackTraceBytes; omitted when both are empty. Spring's DLT
//     handlers often bind this header as required.
//   - kafka_original-topic, -partition (4 bytes), -offset (8 bytes),
//     -timestamp (8 bytes) from st, and -timestamp-type "CREATE_TIME".
//   - retry_topic-original-timestamp: st.OriginalTimestamp in BigInteger
//     form, from which Spring measures its timeout, as kretry does.
//   - retry_topic-attempts, 4 bytes: st.Attempt on a retry-tier state;
//     st.Attempt+1 on a dead-letter state, since Spring counts the delivery
//     that would come next there too. Clamped to [1, MaxAttempts].
//   - retry_topic-backoff-timestamp: st.Due rounded up to the millisecond,
//     in BigInteger form; omitted on a dead-letter state or a zero Due.
//     Spring ignores a due time more than one day ahead and handles such a
//     record at once.
//
// st.FirstFailure and st.Reason have no Spring header and are not written;
// kretry's own headers keep them. Text is written as valid UTF-8.
func Append(dst []kgo.RecordHeader, st retry.State, maxErrorBytes int) []kgo.RecordHeader {
	if maxErrorBytes <= 0 {
		maxErrorBytes = retry.DefaultMaxErrorBytes
	}
	if slices.ContainsFunc(dst, func(h kgo.RecordHeader) bool { return IsSpringHeader(h.Key) }) {
		kept := make([]kgo.RecordHeader, 0, len(dst)+appendedHeaders)
		for _, h := range dst {
			if !IsSpringHeader(h.Key) {
				kept = append(kept, h)
			}
		}
		dst = kept
	}

	put := func(i int, v []byte) { dst = append(dst, kgo.RecordHeader{Key: headerName(i), Value: v}) }
	errType := bound(valid(st.ErrorType), retry.MaxErrorTypeBytes)
	errText := bound(valid(st.Error), maxErrorBytes)
	if errType != "" {
		put(hExFQCN, []byte(errType))
		put(hExCauseFQCN, []byte(errType))
	}
	if errText != "" {
		put(hExMessage, []byte(errText))
	}
	if line := stackLine(errType, errText); line != "" {
		put(hExStacktrace, []byte(bound(line, MaxStackTraceBytes)))
	}

	put(hOrigTopic, []byte(valid(st.OriginalTopic)))
	put(hOrigPartition, binary.BigEndian.AppendUint32(nil, uint32(st.OriginalPartition)))
	put(hOrigOffset, binary.BigEndian.AppendUint64(nil, uint64(st.OriginalOffset)))
	put(hOrigTimestamp, binary.BigEndian.AppendUint64(nil, uint64(st.OriginalTimestamp.UnixMilli())))
	put(hOrigTimestampType, []byte("CREATE_TIME"))

	put(hRetryOrigTimestamp, appendMinimal(nil, st.OriginalTimestamp.UnixMilli()))
	attempts := int64(st.Attempt)
	if st.IsDeadLetter() {
		attempts++
	}
	attempts = min(max(attempts, 1), MaxAttempts)
	put(hAttempts, binary.BigEndian.AppendUint32(nil, uint32(attempts)))
	if !st.IsDeadLetter() && !st.Due.IsZero() {
		put(hBackoff, appendMinimal(nil, ceilMillis(st.Due)))
	}
	return dst
}

// appendedHeaders is the most headers Append writes.
const appendedHeaders = 12

func stackLine(errType, errText string) string {
	switch {
	case errType == "":
		return errText
	case errText == "":
		return errType
	}
	return errType + ": " + errText
}

func valid(s string) string { return strings.ToValidUTF8(s, "\uFFFD") }

// ceilMillis returns t as Unix milliseconds, rounded up, as kretry writes
// due times: never earlier than asked.
func ceilMillis(t time.Time) int64 {
	ms := t.UnixMilli()
	if t.Nanosecond()%int(time.Millisecond) != 0 {
		ms++
	}
	return ms
}

// Resolve returns the retry state of a record read from a retry tier
// (deadLetter false) or a dead-letter topic (deadLetter true) that may carry
// kretry's headers, Spring's, or both, as a listener reading Spring headers
// needs it. The bool is false, with the zero State and a nil error, when
// the record carries neither family.
//
// With one family it is decoded: retry.Decode for kretry's, Decode or
// DecodeDeadLetter for Spring's. With both, kretry's headers win when they
// decode, describe the right kind of record (a dead-letter State on a
// dead-letter topic, a retry-tier State on a tier) and count at least as
// many attempts as Spring's, which is the case on every record kretry wrote
// with Append. Otherwise Spring's win if they decode: typically Spring
// forwarded the record after kretry wrote it, copying every header,
// kretry's included, and adding its own, so kretry's are stale. When
// Spring's do not decode either, retry.Decode's result is returned.
func Resolve(headers []kgo.RecordHeader, deadLetter bool) (retry.State, bool, error) {
	var sc scan
	sc.read(headers)
	k, kok, kerr := retry.Decode(headers)
	if sc.present == 0 {
		return k, kok, kerr
	}
	s, serr := sc.decode(deadLetter)
	if serr != nil {
		if kok {
			return k, true, kerr
		}
		return retry.State{}, true, serr
	}
	if kok && kerr == nil && k.IsDeadLetter() == deadLetter && k.Attempt >= s.Attempt {
		return k, true, nil
	}
	return s, true, nil
}
