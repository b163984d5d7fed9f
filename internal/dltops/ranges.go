package dltops

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
)

// Range is the offsets [Start, End) of one partition to read.
type Range struct {
	Start int64 `json:"start"`
	End   int64 `json:"end"`
}

// Ranges are the ranges to read, by topic and partition.
type Ranges map[string]map[int32]Range

// Total returns the number of offsets the ranges cover.
func (rs Ranges) Total() int64 {
	var n int64
	for _, ps := range rs {
		for _, r := range ps {
			n += max(0, r.End-r.Start)
		}
	}
	return n
}

func (rs Ranges) set(topic string, p int32, r Range) {
	if rs[topic] == nil {
		rs[topic] = map[int32]Range{}
	}
	rs[topic][p] = r
}

// ListRanges returns the ranges that cover the DLTs topics from their log
// start, or from the first offset at or after since when since is not
// zero, to their last stable offsets now (kadm ListCommittedOffsets): the
// end of what a read_committed reader sees, so that a transaction still
// open is left out and Scan with ReadCommitted ends. A topic that does not
// exist is an error naming it.
func ListRanges(ctx context.Context, adm *kadm.Client, topics []string, since time.Time) (Ranges, error) {
	ends, err := listOffsets(ctx, "last stable", topics, adm.ListCommittedOffsets)
	if err != nil {
		return nil, err
	}
	var starts map[string]map[int32]int64
	if since.IsZero() {
		starts, err = listOffsets(ctx, "start", topics, adm.ListStartOffsets)
	} else {
		starts, err = listOffsets(ctx, "first after --since", topics,
			func(ctx context.Context, ts ...string) (kadm.ListedOffsets, error) {
				return adm.ListOffsetsAfterMilli(ctx, since.UnixMilli(), ts...)
			})
	}
	if err != nil {
		return nil, err
	}
	rs := Ranges{}
	for topic, ps := range ends {
		for p, end := range ps {
			start, ok := starts[topic][p]
			if !ok || start < 0 || start > end {
				start = end
			}
			rs.set(topic, p, Range{Start: start, End: end})
		}
	}
	return rs, nil
}

// errNoSuchTopic is wrapped by listOffsets for a topic that does not exist.
var errNoSuchTopic = errors.New("topic does not exist")

// noSuchTopic is the error of listOffsets for a topic that does not exist.
type noSuchTopic string

func (t noSuchTopic) Error() string { return "topic " + string(t) + " does not exist" }
func (t noSuchTopic) Unwrap() error { return errNoSuchTopic }

// listOffsets calls list for topics and returns the offsets by topic and
// partition, or an error naming the first topic or partition that failed
// (a topic that does not exist is a noSuchTopic).
func listOffsets(ctx context.Context, what string, topics []string,
	list func(context.Context, ...string) (kadm.ListedOffsets, error)) (map[string]map[int32]int64, error) {
	listed, err := list(ctx, topics...)
	if err != nil {
		return nil, fmt.Errorf("listing %s offsets of %s: %w", what, strings.Join(topics, ", "), err)
	}
	out := map[string]map[int32]int64{}
	var errs []error
	listed.Each(func(o kadm.ListedOffset) {
		switch {
		case errors.Is(o.Err, kerr.UnknownTopicOrPartition):
			errs = append(errs, noSuchTopic(o.Topic))
		case o.Err != nil:
			errs = append(errs, fmt.Errorf("listing %s offsets of %s[%d]: %w", what, o.Topic, o.Partition, o.Err))
		default:
			if out[o.Topic] == nil {
				out[o.Topic] = map[int32]int64{}
			}
			out[o.Topic][o.Partition] = o.Offset
		}
	})
	for _, t := range topics {
		if _, ok := out[t]; !ok && len(errs) == 0 {
			errs = append(errs, noSuchTopic(t))
		}
	}
	if len(errs) > 0 {
		slices.SortFunc(errs, func(a, b error) int { return strings.Compare(a.Error(), b.Error()) })
		return nil, errors.Join(slices.CompactFunc(errs, func(a, b error) bool { return a.Error() == b.Error() })...)
	}
	return out, nil
}

// missingTopics returns the topics err (from listOffsets) says do not
// exist, and whether every error it joins is one of those.
func missingTopics(err error) (topics []string, only bool) {
	errs := []error{err}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		errs = j.Unwrap()
	}
	only = true
	for _, e := range errs {
		var t noSuchTopic
		if errors.As(e, &t) {
			topics = append(topics, string(t))
		} else {
			only = false
		}
	}
	return topics, only
}
