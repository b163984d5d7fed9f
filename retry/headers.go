package retry

import (
	"encoding/binary"
	"errors"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/kretry/kretry/strategy"
)

// This file is the only place where kretry header names and their byte
// encodings are defined. docs/headers.md is the user-facing reference for the
// same rules; keep the two in step.

// Header names written by kretry on retry-tier and dead-letter records.
//
// Fixed-width integers are big-endian two's complement. Times are Unix epoch
// milliseconds. Text is UTF-8. IsKretryHeader reports exactly these names.
const (
	// HeaderAttempt is, on a retry-tier record, the number of the delivery
	// the record is about to get: 2 on the first retry, 3 on the second,
	// and so on (>= 2). On a dead-letter record it is the number of
	// deliveries the record had before it was dead-lettered (>= 1): 1 for
	// a record that failed permanently on its first delivery. Encoding:
	// int32, 4 bytes. Required.
	HeaderAttempt = "kretry-attempt"

	// HeaderDue is the earliest time the record may be handed to the
	// handler. Encoding: int64, 8 bytes, epoch milliseconds. The encoder
	// rounds up to the next whole millisecond, so a decoded due time is
	// never earlier than the one that was encoded. Required on retry-tier
	// records; optional (normally absent) on dead-letter records.
	HeaderDue = "kretry-due"

	// HeaderOriginalTopic is the topic the record was first consumed from.
	// Encoding: UTF-8 text. Required; must not be empty.
	HeaderOriginalTopic = "kretry-original-topic"

	// HeaderOriginalPartition is the partition the record was first
	// consumed from. Encoding: int32, 4 bytes. Required.
	HeaderOriginalPartition = "kretry-original-partition"

	// HeaderOriginalOffset is the offset of the record in its original
	// partition. Encoding: int64, 8 bytes. Required.
	HeaderOriginalOffset = "kretry-original-offset"

	// HeaderOriginalTimestamp is the timestamp of the original record.
	// Encoding: int64, 8 bytes, epoch milliseconds. Required.
	HeaderOriginalTimestamp = "kretry-original-timestamp"

	// HeaderFirstFailure is when the handler first failed on the record.
	// Encoding: int64, 8 bytes, epoch milliseconds. Required.
	HeaderFirstFailure = "kretry-first-failure"

	// HeaderError is the text of the most recent handler error, replaced
	// on every hop and bounded by the maxErrorBytes argument of
	// State.Append (DefaultMaxErrorBytes by default). Encoding: UTF-8
	// text. Optional; omitted when empty.
	HeaderError = "kretry-error"

	// HeaderErrorType is a short name for the type of the most recent
	// handler error, replaced on every hop and bounded to
	// MaxErrorTypeBytes. Encoding: UTF-8 text. Optional; omitted when
	// empty.
	HeaderErrorType = "kretry-error-type"

	// HeaderReason says why a record was sent to a dead-letter topic; see
	// the Reason constants. Its presence is what marks a dead-letter
	// record. Encoding: UTF-8 text. Only on dead-letter records; must not
	// be empty when present.
	HeaderReason = "kretry-reason"

	// HeaderGroup is the consumer group of the listener that forwarded the
	// record: the service whose handler failed on it. A listener hands a
	// retry-tier or dead-letter record to its handler only when the
	// header is absent or names its own group, and skips (commits past and
	// counts) the records of other groups, so that several services
	// consuming one topic never handle each other's retries. Absent on
	// records written by Spring Kafka and by kretry before it was
	// introduced: such records belong to every group that reads them.
	// Encoding: UTF-8 text. Optional; written on every hop, replaced; must
	// not be empty when present.
	HeaderGroup = "kretry-group"

	// HeaderFollows marks a follower: a record that a key-ordered listener
	// (listener.KeyOrder) put in a retry tier without a handler call,
	// because an earlier record of its key was waiting in a tier. Its
	// value is the original offset of that earlier record, the one it
	// queued behind. A follower is never handed to the handler before the
	// earlier records of its key have an outcome. Encoding: int64, 8
	// bytes. Optional; only on retry-tier records. On a follower the
	// record has had no delivery yet when HeaderAttempt is 1, and
	// HeaderFirstFailure holds Go's zero time until a delivery fails.
	HeaderFollows = "kretry-follows"
)

// Audit headers written by "kretry dlt replay" on every record it sends
// back from a dead-letter topic. They are not retry headers: IsKretryHeader
// reports false for them, so they travel with the record through later
// retry hops and into a DLT again, where they show that the record had been
// replayed. A new replay replaces them.
const (
	// HeaderReplayRun is the ID of the replay run that sent the record
	// (the --run flag of "kretry dlt replay"). Encoding: UTF-8 text.
	HeaderReplayRun = "kretry-replay-run"

	// HeaderReplayedFrom is where the replayed record was read, as
	// "TOPIC/PARTITION/OFFSET" of the dead-letter record, e.g.
	// "orders-dlt/3/1042". Encoding: UTF-8 text. (Kafka topic names
	// cannot contain "/".)
	HeaderReplayedFrom = "kretry-replayed-from"

	// HeaderReplayedAt is when the replay sent the record. Encoding:
	// int64, 8 bytes, epoch milliseconds.
	HeaderReplayedAt = "kretry-replayed-at"
)

// HeaderTraceOrigin is written by tracing integrations (the module
// github.com/kretry/kretry/contrib/kretryotel) on retry-tier and DLT
// records: the span context of the processing span of the record's
// main-topic delivery, as a W3C traceparent value
// ("00-<32 hex trace id>-<16 hex span id>-<2 hex flags>"), unchanged on
// every hop, so each later delivery can link straight back to it. Like the
// audit headers it is not a retry header (IsKretryHeader reports false) and
// hops carry it forward; readers treat a missing or malformed value as no
// origin. Encoding: UTF-8 text, 55 bytes.
const HeaderTraceOrigin = "kretry-trace-origin"

// Bounds applied by State.Append.
const (
	// DefaultMaxErrorBytes is the bound on the HeaderError value used when
	// State.Append or Next is given a maxErrorBytes <= 0.
	DefaultMaxErrorBytes = 4096

	// MaxErrorTypeBytes is the bound on the HeaderErrorType value. It is
	// not configurable.
	MaxErrorTypeBytes = 256

	// TruncationMarker ends a HeaderError or HeaderErrorType value that
	// was cut to fit its bound. Its 14 bytes count inside the bound.
	TruncationMarker = "\u2026(truncated)"
)

// Values of HeaderReason written by kretry: this block is the whole
// vocabulary (the classifier's three are defined in strategy, whose
// Decision.Reason they are, and named here too). Users may record other
// reasons with State.DeadLetter; readers should treat unknown values as
// opaque.
const (
	// ReasonExhausted: the last retry tier failed and no attempts remain.
	ReasonExhausted = "exhausted"

	// ReasonPermanent: the error was marked strategy.Permanent.
	ReasonPermanent = strategy.ReasonPermanent

	// ReasonExcludedPrefix is followed by the name of the exclusion rule
	// that matched, as in "excluded:validation".
	ReasonExcludedPrefix = strategy.ReasonExcluded

	// ReasonNotIncluded: the policy retries only the errors it includes,
	// and this one matched none of them.
	ReasonNotIncluded = strategy.ReasonNotIncluded

	// ReasonTimeout: the policy's time budget, measured from the original
	// record timestamp, ran out.
	ReasonTimeout = "timeout"

	// ReasonCorruptHeaders: a retry-topic record's kretry headers failed
	// to decode, so it was dead-lettered without reaching the handler.
	// See Corrupt.
	ReasonCorruptHeaders = "corrupt-headers"

	// ReasonRejected: the retry tier refused the record for good (too
	// large, invalid), so it was published to the DLT instead.
	ReasonRejected = "rejected"

	// ReasonFollower: a key-ordered listener whose followers share the
	// fate of the record they wait behind (config.FollowersDeadLetter)
	// dead-lettered this record, without a handler call, because an
	// earlier record of its key was dead-lettered while it waited behind
	// it. HeaderError names that record's original offset.
	ReasonFollower = "follower"

	// ReasonTooLarge: the DLT refused the dead-lettered record for good,
	// so a stub was published in its place: the kretry headers and the
	// key, without the value and the user headers; its HeaderError names
	// where the whole record still is.
	ReasonTooLarge = "too-large"

	// ReasonUnspecified is recorded by State.DeadLetter when it is given
	// an empty reason.
	ReasonUnspecified = "unspecified"
)

// Sentinel errors wrapped by every *DecodeError, so that callers can test them
// with errors.Is. They surface from Decode and State.Validate, and in the
// error text of records dead-lettered with ReasonCorruptHeaders; they are
// never returned bare.
var (
	// ErrMissingHeader: a header required on this kind of record (retry
	// tier or dead letter) is absent.
	ErrMissingHeader = errors.New("kretry: required header missing")

	// ErrCorruptHeader: a kretry header is present but breaks a rule: it
	// appears more than once, has the wrong length, or holds a value out of
	// range.
	ErrCorruptHeader = errors.New("kretry: corrupt header")
)

// DecodeError reports one kretry header that breaks a decoding rule. Its
// message names the header and the rule, for example
//
//	kretry: header "kretry-due": want 8 bytes, got 3
//	kretry: header "kretry-attempt" appears 2 times
//	kretry: header "kretry-original-topic" missing
//
// errors.Is(err, ErrMissingHeader) or errors.Is(err, ErrCorruptHeader)
// tells the two kinds apart.
type DecodeError struct {
	// Header is the name of the offending header, one of the Header
	// constants (or, with Family "Spring", one of Spring Kafka's).
	Header string
	// Err is ErrMissingHeader or ErrCorruptHeader.
	Err error
	// Family names whose header Header is, in the message: "" for
	// kretry's own, "Spring" for Spring Kafka's (package retry/spring).
	Family string

	rule string // what went wrong, with its leading separator
}

// Error returns the message described on DecodeError. A DecodeError built
// outside this package, without a rule, reports e.Err instead.
func (e *DecodeError) Error() string {
	rule := e.rule
	if rule == "" && e.Err != nil {
		rule = ": " + e.Err.Error()
	}
	family := "header "
	if e.Family != "" {
		family = e.Family + " header "
	}
	return "kretry: " + family + strconv.Quote(e.Header) + rule
}

// NewDecodeError returns a *DecodeError for header that wraps sentinel
// (ErrMissingHeader or ErrCorruptHeader) and whose message goes on after
// the quoted header name with rule, which starts with its own separator:
// NewDecodeError(HeaderDue, ErrCorruptHeader, ": is 3h0m0s ahead")
// reports `kretry: header "kretry-due": is 3h0m0s ahead`, and
// NewDecodeError(HeaderAttempt, ErrMissingHeader, " missing")
// `kretry: header "kretry-attempt" missing`. Readers that check more than
// Decode does (a due time too far ahead, a retry topic record with no
// kretry header) and other header codecs (retry/spring, which sets Family)
// use it, so that every header problem is a *DecodeError.
func NewDecodeError(header string, sentinel error, rule string) *DecodeError {
	return &DecodeError{Header: header, Err: sentinel, rule: rule}
}

// Unwrap returns e.Err, so that errors.Is matches the sentinels.
func (e *DecodeError) Unwrap() error { return e.Err }

// State is the retry bookkeeping that kretry carries in the headers of
// retry-tier and dead-letter records. A State with an empty Reason describes a
// retry-tier record; a non-empty Reason describes a dead-letter record.
//
// The zero State is not a valid record state: see State.Validate. Build one
// with First, State.WithFailure, State.Advance, State.DeadLetter or Corrupt,
// or obtain one from Decode.
//
// Times travel as whole Unix milliseconds. Decode returns them in UTC, and the
// constructors in this package normalise them the same way, so that
// Decode(Append(s)) == s for any s they return.
type State struct {
	// Attempt is, on a retry-tier state, the number of the delivery the
	// record is about to get (2 for the first retry; >= 2). On a
	// dead-letter state (Reason set) it is the number of deliveries the
	// record had (>= 1).
	Attempt int32
	// Due is the earliest time the record may be handled. Required for a
	// retry-tier record; zero (and its header absent) on dead-letter
	// records.
	Due time.Time
	// OriginalTopic is the topic the record was first consumed from. It
	// must not be empty.
	OriginalTopic string
	// OriginalPartition is the partition the record was first consumed
	// from.
	OriginalPartition int32
	// OriginalOffset is the record's offset in OriginalPartition.
	OriginalOffset int64
	// OriginalTimestamp is the original record's timestamp.
	OriginalTimestamp time.Time
	// FirstFailure is when the handler first failed on the record.
	FirstFailure time.Time
	// Error is the text of the most recent handler error. Empty means the
	// header is omitted.
	Error string
	// ErrorType is a short name for the most recent error's type. Empty
	// means the header is omitted.
	ErrorType string
	// Reason is why the record was dead-lettered; empty on retry-tier
	// records, in which case the header is omitted.
	Reason string
	// Group is the consumer group of the listener that forwarded the
	// record (HeaderGroup). Empty means the header is omitted: the record
	// belongs to every group that reads it.
	Group string
	// Follower marks a retry-tier record that a key-ordered listener
	// queued behind an earlier record of its key (HeaderFollows); Follows
	// is that record's original offset. False means the header is
	// omitted. A follower's Attempt may be 1: it has had no delivery.
	Follower bool
	Follows  int64
}

// IsDeadLetter reports whether s describes a dead-letter record, that is,
// whether s.Reason is non-empty.
func (s State) IsDeadLetter() bool { return s.Reason != "" }

// IsKretryHeader reports whether key is one of the twelve header names
// defined in this package (HeaderAttempt through HeaderFollows). The match is exact and
// case-sensitive. Other names beginning with "kretry-" are reserved for future
// versions, but this version treats them as user headers: Decode ignores them
// and UserHeaders and Next carry them forward unchanged.
func IsKretryHeader(key string) bool { return headerIndex(key) >= 0 }

// Indexes of the headers in the order Append writes them and Decode checks
// them.
const (
	idxAttempt = iota
	idxDue
	idxOriginalTopic
	idxOriginalPartition
	idxOriginalOffset
	idxOriginalTimestamp
	idxFirstFailure
	idxError
	idxErrorType
	idxReason
	idxGroup
	idxFollows
	numHeaders
)

// headerName maps the indexes above to names. The array is a value built on
// each call rather than a package variable, so there is no mutable global.
func headerName(i int) string {
	return [numHeaders]string{
		HeaderAttempt,
		HeaderDue,
		HeaderOriginalTopic,
		HeaderOriginalPartition,
		HeaderOriginalOffset,
		HeaderOriginalTimestamp,
		HeaderFirstFailure,
		HeaderError,
		HeaderErrorType,
		HeaderReason,
		HeaderGroup,
		HeaderFollows,
	}[i]
}

func headerIndex(key string) int {
	// Every name starts with "kretry-": a user header is told apart by its
	// first bytes, not by twelve comparisons.
	if len(key) < len("kretry-due") || key[:len("kretry-")] != "kretry-" {
		return -1
	}
	switch key {
	case HeaderAttempt:
		return idxAttempt
	case HeaderDue:
		return idxDue
	case HeaderOriginalTopic:
		return idxOriginalTopic
	case HeaderOriginalPartition:
		return idxOriginalPartition
	case HeaderOriginalOffset:
		return idxOriginalOffset
	case HeaderOriginalTimestamp:
		return idxOriginalTimestamp
	case HeaderFirstFailure:
		return idxFirstFailure
	case HeaderError:
		return idxError
	case HeaderErrorType:
		return idxErrorType
	case HeaderReason:
		return idxReason
	case HeaderGroup:
		return idxGroup
	case HeaderFollows:
		return idxFollows
	}
	return -1
}

// zeroTimeMillis is time.Time{}.UnixMilli(): the epoch-millisecond value that
// decodes to the zero time.Time.
const zeroTimeMillis = -62135596800000

// scan is the result of one pass over a header list.
type scan struct {
	count [numHeaders]int
	value [numHeaders][]byte // value of the first occurrence
}

// scanHeaders counts the kretry headers in headers and reports whether there
// were any.
func scanHeaders(headers []kgo.RecordHeader) (sc scan, found bool) {
	for j := range headers {
		h := &headers[j] // not copied: this runs for every header of every tier record
		if i := headerIndex(h.Key); i >= 0 {
			sc.count[i]++
			if sc.count[i] == 1 {
				sc.value[i] = h.Value
			}
			found = true
		}
	}
	return sc, found
}

func corrupt(i int, rule string) *DecodeError {
	return &DecodeError{Header: headerName(i), Err: ErrCorruptHeader, rule: rule}
}

// check returns the error, if any, for header i: duplicated, missing while
// required, or of the wrong length for a fixed-width header.
func (sc *scan) check(i int, required bool) *DecodeError {
	switch n := sc.count[i]; {
	case n > 1:
		return corrupt(i, " appears "+strconv.Itoa(n)+" times")
	case n == 0 && required:
		return &DecodeError{Header: headerName(i), Err: ErrMissingHeader, rule: " missing"}
	case n == 0:
		return nil
	}
	want := 0
	switch i {
	case idxAttempt, idxOriginalPartition:
		want = 4
	case idxDue, idxOriginalOffset, idxOriginalTimestamp, idxFirstFailure, idxFollows:
		want = 8
	}
	if got := len(sc.value[i]); want > 0 && got != want {
		return corrupt(i, ": want "+strconv.Itoa(want)+" bytes, got "+strconv.Itoa(got))
	}
	return nil
}

func (sc *scan) int32(i int) int32 { return int32(binary.BigEndian.Uint32(sc.value[i])) }
func (sc *scan) int64(i int) int64 { return int64(binary.BigEndian.Uint64(sc.value[i])) }
func (sc *scan) time(i int) time.Time {
	return time.UnixMilli(sc.int64(i)).UTC()
}
func (sc *scan) text(i int) string { return toValidUTF8(sc.value[i]) }

// textValues holds the values of a header list's text headers in one
// string, so that decoding them costs one allocation, not one each.
type textValues struct {
	all string
	off [numHeaders]int
	n   [numHeaders]int
}

// texts gathers the first value of each text header present.
func (sc *scan) texts() textValues {
	var tv textValues
	total := 0
	for _, i := range [...]int{idxOriginalTopic, idxError, idxErrorType, idxReason, idxGroup} {
		total += len(sc.value[i])
	}
	var b strings.Builder
	b.Grow(total)
	for _, i := range [...]int{idxOriginalTopic, idxError, idxErrorType, idxReason, idxGroup} {
		tv.off[i], tv.n[i] = b.Len(), len(sc.value[i])
		b.Write(sc.value[i])
	}
	tv.all = b.String()
	return tv
}

// of returns text header i's value as valid UTF-8 (see toValidUTF8).
func (tv *textValues) of(i int) string {
	return toValidUTF8String(tv.all[tv.off[i] : tv.off[i]+tv.n[i]])
}

// Decode reads the kretry headers from headers, ignoring every other header.
//
// The bool reports whether any kretry header (see IsKretryHeader) was
// present. With none present Decode returns the zero State, false and nil: the
// record has not failed before. Otherwise the headers must form a valid State
// and Decode is strict:
//
//   - Every kretry header may appear at most once, whether required or not.
//   - On a retry-tier record (no HeaderReason) HeaderAttempt, HeaderDue,
//     HeaderOriginalTopic, HeaderOriginalPartition, HeaderOriginalOffset,
//     HeaderOriginalTimestamp and HeaderFirstFailure are required.
//   - On a dead-letter record (HeaderReason present) the same headers are
//     required except HeaderDue, which is optional.
//   - HeaderError, HeaderErrorType and HeaderGroup are always optional;
//     absent means "". HeaderFollows is optional on a retry-tier record
//     and not allowed on a dead-letter record.
//   - Fixed-width headers must have exactly their width (4 or 8 bytes).
//   - HeaderAttempt must be >= 2 on a retry-tier record (>= 1 on a
//     follower, which carries HeaderFollows) and >= 1 on a dead-letter
//     record; HeaderOriginalTopic, HeaderReason and
//     HeaderGroup must not be empty; HeaderDue must not hold -62135596800000, the value of
//     Go's zero time, which means "no due time" and is written by omitting
//     the header.
//
// Other values are not range-checked: a negative partition or offset decodes
// as is. The headers are checked in the order of the Header constants and the
// first problem is returned as a *DecodeError wrapping ErrMissingHeader or
// ErrCorruptHeader, together with the zero State.
//
// Text headers are never an error because of their bytes: each run of invalid
// UTF-8 is replaced with U+FFFD, so that a record cannot become undeliverable
// because of the text of an error. Text values longer than the bounds applied
// by State.Append are accepted as they are.
//
// Times are returned in UTC with millisecond precision.
func Decode(headers []kgo.RecordHeader) (State, bool, error) {
	sc, found := scanHeaders(headers)
	if !found {
		return State{}, false, nil
	}
	dlt := sc.count[idxReason] > 0
	texts := sc.texts()
	var s State
	for i := range numHeaders {
		required := i < idxError && (i != idxDue || !dlt)
		if i == idxGroup || i == idxFollows {
			required = false
		}
		if err := sc.check(i, required); err != nil {
			return State{}, true, err
		}
		if sc.count[i] == 0 {
			continue
		}
		switch i {
		case idxAttempt:
			minAttempt := int32(2)
			if dlt || sc.count[idxFollows] > 0 {
				minAttempt = 1
			}
			if s.Attempt = sc.int32(i); s.Attempt < minAttempt {
				return State{}, true, corrupt(i, ": want >= "+strconv.Itoa(int(minAttempt))+", got "+strconv.Itoa(int(s.Attempt)))
			}
		case idxDue:
			if v := sc.int64(i); v == zeroTimeMillis {
				return State{}, true, corrupt(i, ": value "+strconv.FormatInt(v, 10)+
					" is Go's zero time, which is written by omitting the header")
			}
			s.Due = sc.time(i)
		case idxOriginalTopic:
			if s.OriginalTopic = texts.of(i); s.OriginalTopic == "" {
				return State{}, true, corrupt(i, ": must not be empty")
			}
		case idxOriginalPartition:
			s.OriginalPartition = sc.int32(i)
		case idxOriginalOffset:
			s.OriginalOffset = sc.int64(i)
		case idxOriginalTimestamp:
			s.OriginalTimestamp = sc.time(i)
		case idxFirstFailure:
			s.FirstFailure = sc.time(i)
		case idxError:
			s.Error = texts.of(i)
		case idxErrorType:
			s.ErrorType = texts.of(i)
		case idxReason:
			if s.Reason = texts.of(i); s.Reason == "" {
				return State{}, true, corrupt(i, ": must not be empty")
			}
		case idxGroup:
			if s.Group = texts.of(i); s.Group == "" {
				return State{}, true, corrupt(i, ": must not be empty")
			}
		case idxFollows:
			if dlt {
				return State{}, true, corrupt(i, ": only a retry-tier record may be a follower, and this one has "+HeaderReason)
			}
			s.Follower, s.Follows = true, sc.int64(i)
		}
	}
	return s, true, nil
}

// Validate reports whether Decode would accept the headers that s.Append
// writes, returning the error Decode would return: it requires Attempt >= 2
// (>= 1 on a dead-letter state or a follower; a dead-letter state is no
// follower),
// a non-empty OriginalTopic, and a non-zero Due unless s is a dead-letter
// state (Reason non-empty).
func (s State) Validate() error {
	_, _, err := Decode(s.Append(nil, math.MaxInt))
	return err
}

// Append appends the kretry headers for s to dst and returns the extended
// slice. It never returns an error; use State.Validate to check that the
// result will decode.
//
// Headers are written in the order of the Header constants. HeaderDue is
// omitted when s.Due is zero, HeaderError, HeaderErrorType,
// HeaderReason and HeaderGroup when their text is empty, and
// HeaderFollows unless s.Follower is set. Due is rounded up to the
// next whole millisecond; the other times are truncated to the millisecond.
//
// Text is written as valid UTF-8: each run of invalid bytes becomes U+FFFD.
// s.Error is then cut to at most maxErrorBytes bytes (DefaultMaxErrorBytes if
// maxErrorBytes <= 0) and s.ErrorType to MaxErrorTypeBytes. A cut text ends
// on a rune boundary followed by TruncationMarker, whose bytes count inside
// the bound; a bound smaller than the marker cuts without the marker.
// OriginalTopic, Reason and Group are not bounded.
func (s State) Append(dst []kgo.RecordHeader, maxErrorBytes int) []kgo.RecordHeader {
	if maxErrorBytes <= 0 {
		maxErrorBytes = DefaultMaxErrorBytes
	}
	topic := toValidUTF8String(s.OriginalTopic)
	errText := truncate(s.Error, maxErrorBytes)
	errType := truncate(s.ErrorType, MaxErrorTypeBytes)
	reason := toValidUTF8String(s.Reason)
	group := toValidUTF8String(s.Group)
	// Every value goes into one buffer, each header's slice capped at its
	// own end, and dst grows once: two allocations for all the headers
	// (none for dst when it has room), not one per value.
	hw := headerWriter{
		dst: slices.Grow(dst, numHeaders),
		buf: make([]byte, 0, 4+8+len(topic)+4+8+8+8+len(errText)+len(errType)+len(reason)+len(group)+8),
	}
	hw.u32(HeaderAttempt, s.Attempt)
	if !s.Due.IsZero() {
		hw.u64(HeaderDue, ceilMillis(s.Due))
	}
	hw.text(HeaderOriginalTopic, topic)
	hw.u32(HeaderOriginalPartition, s.OriginalPartition)
	hw.u64(HeaderOriginalOffset, s.OriginalOffset)
	hw.u64(HeaderOriginalTimestamp, s.OriginalTimestamp.UnixMilli())
	hw.u64(HeaderFirstFailure, s.FirstFailure.UnixMilli())
	hw.text(HeaderError, errText)
	hw.text(HeaderErrorType, errType)
	hw.text(HeaderReason, reason)
	hw.text(HeaderGroup, group)
	if s.Follower {
		hw.u64(HeaderFollows, s.Follows)
	}
	return hw.dst
}

// headerWriter appends headers to dst whose values it writes into buf,
// which must have room for all of them (so no value moves once written).
type headerWriter struct {
	dst []kgo.RecordHeader
	buf []byte
}

// add appends the header key whose value is buf from start on.
func (w *headerWriter) add(key string, start int) {
	w.dst = append(w.dst, kgo.RecordHeader{Key: key, Value: w.buf[start:len(w.buf):len(w.buf)]})
}

func (w *headerWriter) u32(key string, v int32) {
	n := len(w.buf)
	w.buf = binary.BigEndian.AppendUint32(w.buf, uint32(v))
	w.add(key, n)
}

func (w *headerWriter) u64(key string, v int64) {
	n := len(w.buf)
	w.buf = binary.BigEndian.AppendUint64(w.buf, uint64(v))
	w.add(key, n)
}

// text appends a text header, or nothing when v is empty.
func (w *headerWriter) text(key, v string) {
	if v == "" {
		return
	}
	n := len(w.buf)
	w.buf = append(w.buf, v...)
	w.add(key, n)
}

// UserHeaders returns a new slice holding the headers for which IsKretryHeader
// is false, in their original order, or nil if there are none. Duplicate keys
// are kept. The header values are shared with headers, not copied, so the
// bytes are carried forward exactly.
func UserHeaders(headers []kgo.RecordHeader) []kgo.RecordHeader {
	var out []kgo.RecordHeader
	for _, h := range headers {
		if !IsKretryHeader(h.Key) {
			out = append(out, h)
		}
	}
	return out
}

func be32(v int32) []byte { return binary.BigEndian.AppendUint32(nil, uint32(v)) }
func be64(v int64) []byte { return binary.BigEndian.AppendUint64(nil, uint64(v)) }

// ceilMillis returns t as Unix milliseconds, rounded up.
func ceilMillis(t time.Time) int64 {
	ms := t.UnixMilli()
	if t.Nanosecond()%int(time.Millisecond) != 0 {
		ms++
	}
	return ms
}

// normalize returns t as Decode would return it after Append wrote it with
// the given rounding, keeping the zero time zero.
func normalize(t time.Time, up bool) time.Time {
	if t.IsZero() {
		return time.Time{}
	}
	ms := t.UnixMilli()
	if up {
		ms = ceilMillis(t)
	}
	return time.UnixMilli(ms).UTC()
}

func toValidUTF8(b []byte) string { return toValidUTF8String(string(b)) }

func toValidUTF8String(s string) string {
	if utf8.ValidString(s) { // checks ASCII eight bytes at a time
		return s
	}
	return strings.ToValidUTF8(s, "\uFFFD")
}

// truncate makes s valid UTF-8 and cuts it to at most max bytes as described
// on State.Append.
func truncate(s string, max int) string {
	s = toValidUTF8String(s)
	if len(s) <= max {
		return s
	}
	marker := TruncationMarker
	keep := max - len(marker)
	if keep < 0 {
		marker, keep = "", max
	}
	for keep > 0 && !utf8.RuneStart(s[keep]) {
		keep--
	}
	return s[:keep] + marker
}

// Replay is the audit trail "kretry dlt replay" stamps on each record it
// sends back from a dead-letter topic (HeaderReplayRun, HeaderReplayedFrom,
// HeaderReplayedAt).
type Replay struct {
	Run  string    // the replay run's ID
	From string    // the dead-letter record, as "TOPIC/PARTITION/OFFSET"
	At   time.Time // when the replay sent it
}

// Append appends r's audit headers to dst, At as 8-byte epoch
// milliseconds, and returns the extended slice. It does not remove older
// audit headers: the caller drops them first.
func (r Replay) Append(dst []kgo.RecordHeader) []kgo.RecordHeader {
	return append(dst,
		kgo.RecordHeader{Key: HeaderReplayRun, Value: []byte(r.Run)},
		kgo.RecordHeader{Key: HeaderReplayedFrom, Value: []byte(r.From)},
		kgo.RecordHeader{Key: HeaderReplayedAt, Value: be64(r.At.UnixMilli())},
	)
}

// IsReplayHeader reports whether key is one of the replay audit headers.
func IsReplayHeader(key string) bool {
	return key == HeaderReplayRun || key == HeaderReplayedFrom || key == HeaderReplayedAt
}

// ForeignGroup reports whether headers belong to a consumer group other
// than group: whether they hold exactly one HeaderGroup, not empty and
// not equal to group. owner is that group. It decodes nothing else and
// allocates only for a foreign owner, so a listener can pass over the
// records of other groups sharing its topics before decoding them. A
// record whose HeaderGroup is missing, empty or duplicated is not foreign:
// Decode decides what it is.
func ForeignGroup(headers []kgo.RecordHeader, group string) (owner string, foreign bool) {
	var v []byte
	n := 0
	for _, h := range headers {
		if h.Key == HeaderGroup {
			v = h.Value
			n++
		}
	}
	if n != 1 || len(v) == 0 || string(v) == group {
		return "", false
	}
	return toValidUTF8(v), true
}
