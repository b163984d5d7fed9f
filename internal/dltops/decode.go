package dltops

import (
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/kretry/kretry/retry"
)

// Kind says how a DLT record's retry headers were read.
type Kind uint8

const (
	// KindKretry: retry.Decode read a valid set of kretry headers.
	KindKretry Kind = iota
	// KindFallback: the record had no kretry header and the fallback
	// decoder (Spring Kafka's headers, for instance) read it.
	KindFallback
	// KindCorrupt: retry headers are present but do not decode.
	KindCorrupt
	// KindNone: the record carries no retry header at all.
	KindNone
)

// Labels used in place of an empty or unknown value in groups and filters.
// A filter matches them like any other value, so --error-type
// "(corrupt headers)" selects the records whose headers do not decode.
const (
	LabelCorrupt   = "(corrupt headers)"
	LabelNoHeaders = "(no retry headers)"
	LabelNone      = "(none)"
	LabelUnknown   = "(unknown)"
)

// FallbackDecoder reads a record's headers when they carry no kretry
// header, with the contract of retry.Decode: ok reports whether any header
// it knows was present, and err whether they failed to decode. Spring
// Kafka's DLT headers are the intended use.
type FallbackDecoder func(headers []kgo.RecordHeader) (st retry.State, ok bool, err error)

// Info is what Decode learned from one DLT record.
type Info struct {
	Kind Kind
	// State is the decoded retry state (KindKretry, KindFallback). For
	// KindCorrupt only the four original fields may be set, when their
	// headers were all well-formed (see Salvaged).
	State retry.State
	// Salvaged reports, for KindCorrupt, that State's original fields were
	// read from the corrupt set.
	Salvaged bool
	// Err is the decode error (KindCorrupt).
	Err error
}

// Decoder decodes DLT records. The zero Decoder reads kretry headers only.
type Decoder struct {
	// Fallback, when set, reads records that carry no kretry header.
	Fallback FallbackDecoder
}

// Decode reads rec's retry headers. It never fails: a record whose headers
// do not decode comes back as KindCorrupt with the error.
func (d Decoder) Decode(rec *kgo.Record) Info {
	st, ok, err := retry.Decode(rec.Headers)
	switch {
	case err != nil:
		return corruptInfo(rec, err)
	case ok:
		return Info{Kind: KindKretry, State: st}
	case d.Fallback != nil:
		st, ok, err = d.Fallback(rec.Headers)
		if err != nil {
			return Info{Kind: KindCorrupt, Err: err}
		}
		if ok {
			return Info{Kind: KindFallback, State: st}
		}
	}
	return Info{Kind: KindNone}
}

// corruptInfo keeps the original topic and partition of a record with
// corrupt kretry headers when retry.Corrupt can read them (it keeps the four
// original fields only when all four headers are well-formed, and otherwise
// names the record itself).
func corruptInfo(rec *kgo.Record, err error) Info {
	info := Info{Kind: KindCorrupt, Err: err}
	c := retry.Corrupt(rec, time.Time{}, err)
	if c.OriginalTopic != rec.Topic || c.OriginalPartition != rec.Partition || c.OriginalOffset != rec.Offset {
		info.Salvaged = true
		info.State = retry.State{OriginalTopic: c.OriginalTopic, OriginalPartition: c.OriginalPartition,
			OriginalOffset: c.OriginalOffset, OriginalTimestamp: c.OriginalTimestamp}
	}
	return info
}

// ErrorType is the record's error type as grouped and filtered:
// State.ErrorType, or LabelCorrupt, LabelNoHeaders or LabelNone.
func (i Info) ErrorType() string {
	switch {
	case i.Kind == KindCorrupt:
		return LabelCorrupt
	case i.Kind == KindNone:
		return LabelNoHeaders
	case i.State.ErrorType == "":
		return LabelNone
	}
	return i.State.ErrorType
}

// Reason is the record's dead-letter reason as grouped and filtered:
// State.Reason, LabelUnknown when the headers do not say, or LabelNone.
func (i Info) Reason() string {
	switch {
	case i.Kind == KindCorrupt || i.Kind == KindNone:
		return LabelUnknown
	case i.State.Reason == "":
		return LabelNone
	}
	return i.State.Reason
}

// OriginalTopic is the record's original topic, or LabelUnknown.
func (i Info) OriginalTopic() string {
	if t := i.target(); t != "" {
		return t
	}
	return LabelUnknown
}

// Group is the consumer group that dead-lettered the record
// (retry.State.Group), as grouped and filtered: LabelNone when the record
// carries none (Spring Kafka's, or kretry's before the kretry-group
// header), LabelUnknown when its headers do not decode.
func (i Info) Group() string {
	switch {
	case i.Kind == KindCorrupt:
		return LabelUnknown
	case i.State.Group == "":
		return LabelNone
	}
	return i.State.Group
}

// owner is the consumer group a replay returns the record to: the group
// in its kretry headers, or "" when it has none (the record then goes to
// its original topic, for every group).
func (i Info) owner() string {
	if i.Kind == KindKretry {
		return i.State.Group
	}
	return ""
}

// target is the topic a replay sends the record to without --to: its
// original topic, or "" when unknown.
func (i Info) target() string {
	if i.Kind == KindKretry || i.Kind == KindFallback || i.Salvaged {
		return i.State.OriginalTopic
	}
	return ""
}
