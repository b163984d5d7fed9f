package dltops

import (
	"cmp"
	"context"
	"encoding/hex"
	"slices"
	"time"
	"unicode/utf8"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/kretry/kretry/retry"
)

// Age buckets of a DLT record, by the age of its timestamp.
const (
	AgeHour  = "<1h"
	AgeDay   = "1h-1d"
	AgeWeek  = "1d-7d"
	AgeOlder = ">7d"
)

// AgeBucket returns the bucket of a record age. A negative age (a
// timestamp ahead of this clock) is AgeHour.
func AgeBucket(age time.Duration) string {
	switch {
	case age < time.Hour:
		return AgeHour
	case age < 24*time.Hour:
		return AgeDay
	case age < 7*24*time.Hour:
		return AgeWeek
	}
	return AgeOlder
}

func ageRank(bucket string) int {
	return slices.Index([]string{AgeHour, AgeDay, AgeWeek, AgeOlder}, bucket)
}

// GroupKey is what records are grouped by.
type GroupKey struct {
	ErrorType     string `json:"errorType"`
	OriginalTopic string `json:"originalTopic"`
	// ConsumerGroup is the group that dead-lettered the records, as
	// Info.Group gives it (LabelNone when they carry none).
	ConsumerGroup string `json:"group"`
	Age           string `json:"age"`
}

// Group counts the records of one GroupKey.
type Group struct {
	GroupKey
	Count int64 `json:"count"`
	// FirstSeen and LastSeen are the oldest and newest DLT record
	// timestamps.
	FirstSeen time.Time `json:"firstSeen"`
	LastSeen  time.Time `json:"lastSeen"`
	// FirstFailure is the earliest first failure the records' headers
	// give (zero when none does).
	FirstFailure time.Time `json:"firstFailure,omitzero"`
	// Reasons counts the records by Info.Reason.
	Reasons map[string]int64 `json:"reasons"`
}

// Sample is one record shown by --show-records.
type Sample struct {
	Source            string    `json:"source"` // TOPIC/PARTITION/OFFSET
	Timestamp         time.Time `json:"timestamp"`
	Key               string    `json:"key,omitempty"`    // the key when it is valid UTF-8
	KeyHex            string    `json:"keyHex,omitempty"` // the key in hex otherwise
	ErrorType         string    `json:"errorType"`
	Reason            string    `json:"reason"`
	OriginalTopic     string    `json:"originalTopic"`
	OriginalPartition *int32    `json:"originalPartition,omitempty"`
	OriginalOffset    *int64    `json:"originalOffset,omitempty"`
	Group             string    `json:"group"` // as Info.Group gives it
	// Attempt is the number of deliveries the record had: omitted (0) for
	// corrupt headers and for a follower dead-lettered with reason
	// retry.ReasonFollower, which the handler never saw (its header says
	// 1, the least a dead-letter record may say).
	Attempt int32  `json:"attempt,omitempty"`
	Error   string `json:"error,omitempty"`
	// NeverHandled marks a follower dead-lettered with reason
	// retry.ReasonFollower: a key-ordered listener dead-lettered it without
	// a handler call because the record it waited behind, which Error
	// names, was dead-lettered.
	NeverHandled bool `json:"neverHandled,omitempty"`
}

// Report is the result of Inspect.
type Report struct {
	DLTs []string `json:"dlts"`
	// Now is the time ages are measured from.
	Now time.Time `json:"now"`
	// Read counts the records read, Matched those the filter selected,
	// Corrupt those of them whose headers do not decode. Records of
	// aborted transactions are not read.
	Read    int64 `json:"read"`
	Matched int64 `json:"matched"`
	Corrupt int64 `json:"corrupt"`
	// Lost counts the offsets that were deleted (retention, DeleteRecords)
	// before they were read: their records are not counted.
	Lost int64 `json:"lost"`
	// Groups are sorted by error type, original topic, consumer group,
	// then age (youngest first).
	Groups []Group `json:"groups"`
	// Samples are the first matched records, up to the sample limit.
	Samples []Sample `json:"samples,omitempty"`
}

// Aggregator builds a Report one record at a time. Its zero value is not
// usable; use NewAggregator.
type Aggregator struct {
	report  Report
	groups  map[GroupKey]*Group
	samples int
}

// NewAggregator returns an Aggregator measuring ages from now that keeps
// up to samples samples.
func NewAggregator(dlts []string, now time.Time, samples int) *Aggregator {
	return &Aggregator{report: Report{DLTs: dlts, Now: now.UTC(), Groups: []Group{}},
		groups: map[GroupKey]*Group{}, samples: samples}
}

// Add counts rec, decoded as info, as read and, when matched, in its
// group.
func (a *Aggregator) Add(rec *kgo.Record, info Info, matched bool) {
	a.report.Read++
	if !matched {
		return
	}
	a.report.Matched++
	if info.Kind == KindCorrupt {
		a.report.Corrupt++
	}
	ts := rec.Timestamp.UTC()
	k := GroupKey{ErrorType: info.ErrorType(), OriginalTopic: info.OriginalTopic(), ConsumerGroup: info.Group(),
		Age: AgeBucket(a.report.Now.Sub(ts))}
	g := a.groups[k]
	if g == nil {
		g = &Group{GroupKey: k, FirstSeen: ts, LastSeen: ts, Reasons: map[string]int64{}}
		a.groups[k] = g
	}
	g.Count++
	g.Reasons[info.Reason()]++
	if ts.Before(g.FirstSeen) {
		g.FirstSeen = ts
	}
	if ts.After(g.LastSeen) {
		g.LastSeen = ts
	}
	if ff := info.State.FirstFailure; !ff.IsZero() && (g.FirstFailure.IsZero() || ff.Before(g.FirstFailure)) {
		g.FirstFailure = ff
	}
	if len(a.report.Samples) < a.samples {
		a.report.Samples = append(a.report.Samples, sampleOf(rec, info))
	}
}

func sampleOf(rec *kgo.Record, info Info) Sample {
	s := Sample{Source: SourceOf(rec), Timestamp: rec.Timestamp.UTC(),
		ErrorType: info.ErrorType(), Reason: info.Reason(), OriginalTopic: info.OriginalTopic(), Group: info.Group()}
	if utf8.Valid(rec.Key) {
		s.Key = string(rec.Key)
	} else {
		s.KeyHex = hex.EncodeToString(rec.Key)
	}
	switch {
	case info.Kind == KindCorrupt:
		s.Error = info.Err.Error()
	case info.Kind != KindNone:
		s.Attempt, s.Error = info.State.Attempt, info.State.Error
		if info.Kind == KindKretry && info.State.Reason == retry.ReasonFollower {
			s.Attempt, s.NeverHandled = 0, true
		}
	}
	if info.target() != "" {
		p, o := info.State.OriginalPartition, info.State.OriginalOffset
		s.OriginalPartition, s.OriginalOffset = &p, &o
	}
	return s
}

// Report returns the report so far, its groups sorted.
func (a *Aggregator) Report() Report {
	r := a.report
	r.Groups = make([]Group, 0, len(a.groups))
	for _, g := range a.groups {
		r.Groups = append(r.Groups, *g)
	}
	slices.SortFunc(r.Groups, func(x, y Group) int {
		return cmp.Or(cmp.Compare(x.ErrorType, y.ErrorType), cmp.Compare(x.OriginalTopic, y.OriginalTopic),
			cmp.Compare(x.ConsumerGroup, y.ConsumerGroup), cmp.Compare(ageRank(x.Age), ageRank(y.Age)))
	})
	return r
}

// InspectConfig says what Inspect reads.
type InspectConfig struct {
	// DLTs are the topics to read; at least one.
	DLTs []string
	// Filter selects the records counted in groups.
	Filter Filter
	// Decoder decodes the records; the zero Decoder reads kretry headers.
	Decoder Decoder
	// ClientOpts are the connection options of the clients Inspect makes
	// (seeds, TLS, SASL).
	ClientOpts []kgo.Opt
	// Samples is how many matched records the report keeps; default 0.
	Samples int
	// Now is the time ages are measured from; default time.Now().
	Now time.Time
	// IdleTimeout is how long the read may go without progress on a
	// partition before it fails naming it; default DefaultIdleTimeout.
	IdleTimeout time.Duration
}

// Inspect reads cfg.DLTs from their start (or the first offset at or after
// cfg.Filter.Since) to their last stable offsets when it starts, with a
// direct read_committed consumer that joins no group and commits nothing
// (the records of aborted transactions are not counted), and groups the
// matched records. Offsets deleted before they were read are counted in
// Report.Lost.
func Inspect(ctx context.Context, cfg InspectConfig) (Report, error) {
	now := cfg.Now
	if now.IsZero() {
		now = time.Now()
	}
	adm, closeAdm, err := newAdmin(cfg.ClientOpts)
	if err != nil {
		return Report{}, err
	}
	defer closeAdm()
	ranges, err := ListRanges(ctx, adm, cfg.DLTs, cfg.Filter.Since.At)
	if err != nil {
		return Report{}, err
	}
	agg := NewAggregator(cfg.DLTs, now, cfg.Samples)
	so := ScanOptions{ReadCommitted: true, IdleTimeout: cfg.IdleTimeout,
		Lost: func(_ string, _ int32, from, to int64) { agg.report.Lost += to - from }}
	err = Scan(ctx, cfg.ClientOpts, ranges, so, func(rec *kgo.Record) error {
		info := cfg.Decoder.Decode(rec)
		agg.Add(rec, info, cfg.Filter.Match(rec, info))
		return nil
	})
	return agg.Report(), err
}
