package retry

import (
	"fmt"
	"math"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// This file builds the record for a record's next hop (a retry tier or a
// dead-letter topic) and the State it carries. Nothing here produces: the
// caller hands the result of Next to its own kgo client.
//
// The States are built in two steps: one that says which delivery comes next
// (First for a main-topic record, Advance for a retry-tier record) and one that
// says where it goes (a due time for a retry tier, DeadLetter for a DLT):
//
//	main topic -> tier:  First(rec, now).WithFailure(due, msg, typ)
//	tier -> tier:        s.Advance(due, msg, typ)
//	main topic -> DLT:   First(rec, now).WithFailure(time.Time{}, msg, typ).DeadLetter(reason)
//	tier -> DLT:         s.Advance(time.Time{}, msg, typ).DeadLetter(reason)
//	corrupt tier record: Corrupt(rec, now, decodeErr)

// Next returns a new record to produce to topic for src's next hop.
//
// The record has src's Key and Value (the same slices, shared and not copied:
// do not modify them while the produce is in flight), src's user headers (see
// UserHeaders) unchanged and in their original order, followed by the kretry
// headers for s written by s.Append(…, maxErrorBytes). Any kretry headers src
// carried are dropped rather than copied, so a record does not grow from hop
// to hop.
//
// Partition is set to partition. Pass -1 to leave the choice to the
// producer's partitioner; note that kgo's partitioners ignore Record.Partition
// except kgo.ManualPartitioner, with which -1 is invalid. Timestamp is left
// zero so the producer stamps the produce time, and Context is nil. Every
// other field is zero. src is not modified.
func Next(src *kgo.Record, topic string, partition int32, s State, maxErrorBytes int) *kgo.Record {
	return &kgo.Record{
		Key:       src.Key,
		Value:     src.Value,
		Headers:   NextHeaders(src, s, maxErrorBytes),
		Topic:     topic,
		Partition: partition,
	}
}

// NextHeaders returns the headers of the record Next builds: src's user
// headers (see UserHeaders), then s.Append's, in one new slice. It is Next
// for a caller that builds the record itself.
func NextHeaders(src *kgo.Record, s State, maxErrorBytes int) []kgo.RecordHeader {
	headers := make([]kgo.RecordHeader, 0, len(src.Headers)+numHeaders)
	for i := range src.Headers {
		if h := &src.Headers[i]; !IsKretryHeader(h.Key) {
			headers = append(headers, *h)
		}
	}
	return s.Append(headers, maxErrorBytes)
}

// First returns the State for the first failure of src, a record consumed
// from a main topic: Attempt 2, OriginalTopic, OriginalPartition,
// OriginalOffset and OriginalTimestamp taken from src, and FirstFailure set to
// now. Due, Error, ErrorType and Reason are empty: follow with WithFailure, and
// with DeadLetter if the record goes to a dead-letter topic.
//
// Times are truncated to the millisecond and converted to UTC, as Decode would
// return them. src must not be nil.
func First(src *kgo.Record, now time.Time) State {
	return State{
		Attempt:           2,
		OriginalTopic:     src.Topic,
		OriginalPartition: src.Partition,
		OriginalOffset:    src.Offset,
		OriginalTimestamp: normalize(src.Timestamp, false),
		FirstFailure:      normalize(now, false),
	}
}

// WithFailure returns s with Due set to due and Error and ErrorType replaced
// by errText and errType. Attempt and the original fields are kept. Use it on
// the State from First; for a record that already carries a State, use
// Advance, which also counts the delivery.
//
// A zero due leaves Due zero, as a dead-letter record wants. Any other due is
// rounded up to the millisecond and converted to UTC, as Decode would return
// it. errText and errType are stored whole; Append bounds them.
func (s State) WithFailure(due time.Time, errText, errType string) State {
	s.Due = normalize(due, true)
	s.Error = errText
	s.ErrorType = errType
	return s
}

// Advance returns the State for the next hop of a record that carried s and
// failed again: Attempt is incremented (saturating at math.MaxInt32), Reason
// and Follower are cleared, and Due, Error and ErrorType are set as by
// WithFailure. The original fields and FirstFailure are kept. Advance needs
// no current time: FirstFailure was fixed by First (a follower's first
// failure is its caller's to set: see HeaderFollows).
func (s State) Advance(due time.Time, errText, errType string) State {
	if s.Attempt < math.MaxInt32 {
		s.Attempt++
	}
	s.Reason = ""
	s.Follower, s.Follows = false, 0
	return s.WithFailure(due, errText, errType)
}

// DeadLetter returns s made into a dead-letter State: Reason is set to reason
// (ReasonUnspecified if reason is empty), Due and Follower are cleared, and Attempt, which
// on s numbers the delivery that would have come next, becomes the number
// of deliveries the record had (Attempt-1, at least 1). The error and the
// original fields are kept, so call it after First and WithFailure, or after
// Advance, which record the error.
func (s State) DeadLetter(reason string) State {
	if reason == "" {
		reason = ReasonUnspecified
	}
	s.Reason = reason
	s.Due = time.Time{}
	s.Attempt = max(1, s.Attempt-1)
	s.Follower, s.Follows = false, 0
	return s
}

// Corrupt returns the dead-letter State for src, a retry-topic record whose
// kretry headers Decode rejected with decodeErr. The rule is that such a
// record is never handed to the handler and never dropped: it goes to the
// dead-letter topic with Reason ReasonCorruptHeaders, Error set to
// decodeErr's text and ErrorType to its Go type.
//
// Corrupt keeps what it can from src's headers. Attempt and FirstFailure are
// kept when their own headers are well-formed (Attempt, after DeadLetter,
// is then one less than the header's value, and otherwise 1;
// FirstFailure otherwise now). The four original fields are kept only when
// all four headers are well-formed; otherwise all four are taken from src
// itself, so they name the retry-topic record rather than a mix of two
// records. Group is kept when its header is well-formed, so that a
// corrupt record stays with the group that wrote it. src must not be nil; a nil decodeErr is recorded as a generic message with
// no ErrorType.
func Corrupt(src *kgo.Record, now time.Time, decodeErr error) State {
	s := First(src, now)
	sc, _ := scanHeaders(src.Headers)
	ok := func(i int) bool { return sc.count[i] == 1 && sc.check(i, true) == nil }
	if ok(idxAttempt) {
		if a := sc.int32(idxAttempt); a >= 2 {
			s.Attempt = a
		}
	}
	if ok(idxFirstFailure) {
		s.FirstFailure = sc.time(idxFirstFailure)
	}
	if ok(idxGroup) {
		s.Group = sc.text(idxGroup)
	}
	if ok(idxOriginalTopic) && ok(idxOriginalPartition) && ok(idxOriginalOffset) && ok(idxOriginalTimestamp) {
		if topic := sc.text(idxOriginalTopic); topic != "" {
			s.OriginalTopic = topic
			s.OriginalPartition = sc.int32(idxOriginalPartition)
			s.OriginalOffset = sc.int64(idxOriginalOffset)
			s.OriginalTimestamp = sc.time(idxOriginalTimestamp)
		}
	}
	text, typ := "kretry: corrupt headers (no decode error given)", ""
	if decodeErr != nil {
		text, typ = decodeErr.Error(), fmt.Sprintf("%T", decodeErr)
	}
	return s.WithFailure(time.Time{}, text, typ).DeadLetter(ReasonCorruptHeaders)
}
