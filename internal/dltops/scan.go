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
	"github.com/twmb/franz-go/pkg/kgo"
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

// ListRanges returns the ranges that cover topics from their log start, or
// from the first offset at or after since when since is not zero, to their
// end offsets now. A topic that does not exist is an error naming it.
func ListRanges(ctx context.Context, adm *kadm.Client, topics []string, since time.Time) (Ranges, error) {
	ends, err := listOffsets(ctx, "end", topics, adm.ListEndOffsets)
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

// listOffsets calls list for topics and returns the offsets by topic and
// partition, or an error naming the first topic or partition that failed.
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
			errs = append(errs, fmt.Errorf("topic %s does not exist", o.Topic))
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
			errs = append(errs, fmt.Errorf("topic %s does not exist", t))
		}
	}
	if len(errs) > 0 {
		slices.SortFunc(errs, func(a, b error) int { return strings.Compare(a.Error(), b.Error()) })
		return nil, errors.Join(slices.CompactFunc(errs, func(a, b error) bool { return a.Error() == b.Error() })...)
	}
	return out, nil
}

// Scan reads the records of ranges with a direct consumer (no group, no
// commits) built from opts, and calls fn for each record in offset order
// within its partition, from one goroutine. It returns when every partition
// has reached the end of its range, when fn returns an error (which Scan
// returns), or when ctx ends (ctx.Err()).
//
// Ranges that start before the log start are read from the log start; empty
// ranges are not read. Records are read with isolation read_uncommitted, and
// transaction markers count towards reaching the end but are not passed to
// fn.
func Scan(ctx context.Context, opts []kgo.Opt, ranges Ranges, fn func(*kgo.Record) error) error {
	type tp struct {
		topic string
		p     int32
	}
	ends := map[tp]int64{}
	offsets := map[string]map[int32]kgo.Offset{}
	for topic, ps := range ranges {
		for p, r := range ps {
			if r.End <= r.Start {
				continue
			}
			ends[tp{topic, p}] = r.End
			if offsets[topic] == nil {
				offsets[topic] = map[int32]kgo.Offset{}
			}
			offsets[topic][p] = kgo.NewOffset().At(r.Start)
		}
	}
	if len(ends) == 0 {
		return nil
	}
	cl, err := kgo.NewClient(append(slices.Clip(opts),
		kgo.ConsumePartitions(offsets),
		kgo.FetchIsolationLevel(kgo.ReadUncommitted()),
		kgo.KeepControlRecords(),
		// An offset below the log start (retention deleted it) resumes at
		// the log start.
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
	)...)
	if err != nil {
		return err
	}
	defer cl.Close()
	if err := trimToLogStart(ctx, kadm.NewClient(cl), ranges, func(topic string, p int32) { delete(ends, tp{topic, p}) }); err != nil {
		return err
	}
	for len(ends) > 0 {
		fs := cl.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			return err
		}
		for _, fe := range fs.Errors() {
			var loss *kgo.ErrDataLoss
			if errors.As(fe.Err, &loss) {
				continue // informational: consumption goes on from the new offset
			}
			return fmt.Errorf("reading %s[%d]: %w", fe.Topic, fe.Partition, fe.Err)
		}
		var ferr error
		var done map[string][]int32
		fs.EachPartition(func(fp kgo.FetchTopicPartition) {
			key := tp{fp.Topic, fp.Partition}
			end, ok := ends[key]
			if !ok || ferr != nil {
				return
			}
			finished := false
			for _, r := range fp.Records {
				if r.Offset >= end {
					finished = true
					break
				}
				if !r.Attrs.IsControl() {
					if ferr = fn(r); ferr != nil {
						return
					}
				}
				if r.Offset == end-1 {
					finished = true
					break
				}
			}
			if finished {
				delete(ends, key)
				if done == nil {
					done = map[string][]int32{}
				}
				done[fp.Topic] = append(done[fp.Topic], fp.Partition)
			}
		})
		if ferr != nil {
			return ferr
		}
		if done != nil {
			cl.PauseFetchPartitions(done)
		}
	}
	return nil
}

// trimToLogStart drops (with drop) the ranges that retention has emptied:
// their log start is at or past their end, so no record would ever come.
func trimToLogStart(ctx context.Context, adm *kadm.Client, ranges Ranges, drop func(string, int32)) error {
	topics := make([]string, 0, len(ranges))
	for t := range ranges {
		topics = append(topics, t)
	}
	starts, err := listOffsets(ctx, "start", topics, adm.ListStartOffsets)
	if err != nil {
		return err
	}
	for topic, ps := range ranges {
		for p, r := range ps {
			if s, ok := starts[topic][p]; ok && s >= r.End {
				drop(topic, p)
			}
		}
	}
	return nil
}

// newAdmin returns an admin client made from opts and its close function.
func newAdmin(opts []kgo.Opt) (*kadm.Client, func(), error) {
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		return nil, nil, err
	}
	return kadm.NewClient(cl), cl.Close, nil
}
