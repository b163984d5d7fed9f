package dltops

import (
	"context"

	"github.com/twmb/franz-go/pkg/kgo"
)

// findSent fills r.ahead with the DLT records an earlier attempt of the run
// sent after its last checkpoint: those the state lists as sent ahead, and
// those found in the target partitions from the end offsets of the last
// checkpoint to their end offsets now (a partition the checkpoint does not
// list is read from its start). Only sources at or after their partition's
// next offset are kept: the others are behind the checkpoint already.
func (r *replayer) findSent(ctx context.Context) error {
	r.ahead = map[string]struct{}{}
	keep := func(src string) {
		topic, p, off, err := parseSource(src)
		if err != nil {
			return
		}
		if pos, ok := r.st.Sources[topic][p]; ok && off >= pos.Next && off < pos.End {
			r.ahead[src] = struct{}{}
		}
	}
	for _, src := range r.st.SentAhead {
		keep(src)
	}
	if len(r.st.Targets) == 0 {
		return nil
	}
	topics := make([]string, 0, len(r.st.Targets))
	for t := range r.st.Targets {
		topics = append(topics, t)
	}
	ends, err := listOffsets(ctx, "end", topics, r.adm.ListEndOffsets)
	if err != nil {
		return err
	}
	ranges := Ranges{}
	for topic, ps := range ends {
		for p, end := range ps {
			if start := r.st.Targets[topic][p]; end > start {
				ranges.set(topic, p, Range{Start: start, End: end})
			}
		}
	}
	r.res.ResumeScanned = ranges.Total()
	return Scan(ctx, r.cfg.ClientOpts, ranges, func(rec *kgo.Record) error {
		if src := replayedBy(rec, r.cfg.Run); src != "" {
			keep(src)
		}
		return nil
	})
}
