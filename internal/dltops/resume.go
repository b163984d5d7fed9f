package dltops

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// resume prepares an attempt after an earlier one: it waits until the
// records the latest attempt may still have on their way have landed or
// can no longer land (quietAt), then finds what it sent after its last
// checkpoint (findSent). A dry run does not wait (Result.Unsettled).
func (r *replayer) resume(ctx context.Context) error {
	now := r.cfg.Clock.Now()
	if until, why := r.quietAt(now); until.After(now) {
		if r.cfg.DryRun {
			r.res.Unsettled = true
		} else {
			r.cfg.OnWait(until, why)
			select {
			case <-ctx.Done():
				return fmt.Errorf("waiting until %s for the records of the previous attempt: %w",
					until.UTC().Format(time.RFC3339), ctx.Err())
			case <-r.cfg.Clock.After(until.Sub(now)):
			}
			r.res.Waited = until.Sub(now)
		}
	}
	return r.findSent(ctx)
}

// quietAt returns when no record of the latest attempt can land any more,
// and why, or the zero time when none can already. An attempt that ended
// cleanly has nothing on its way. One that ended with records
// unacknowledged wrote its last hand-over; one that did not end (a crash
// or a kill) handed none over at or after HandOverBy, as every hand-over
// is preceded by a checkpoint whose lease covers it. Each such record is
// appended, if ever, within the attempt's delivery bound of its hand-over;
// once appended beyond the high watermark, within ReplicationMargin it is
// replicated or truncated. A state without HandOverBy (version 1) gives
// no bound: the wait counts from now.
func (r *replayer) quietAt(now time.Time) (time.Time, string) {
	last := r.st.Last
	if last.Clean {
		return time.Time{}, ""
	}
	bound := last.DeliveryBound
	if bound <= 0 {
		bound = r.bound
	}
	tail := fmt.Sprintf("plus its delivery bound %v (record delivery timeout and produce request timeout) and the replication margin %v (replica.lag.time.max.ms): "+
		"by then each of its records has landed below the high watermark, where this attempt finds it, or can no longer land",
		bound, r.cfg.ReplicationMargin)
	var anchor time.Time
	var why string
	switch {
	case last.Ended && last.LastHandOver.IsZero():
		return time.Time{}, ""
	case last.Ended:
		anchor = last.LastHandOver
		why = fmt.Sprintf("the previous attempt ended with %d records unacknowledged; it handed its last record over at %s, ",
			last.Unacked, last.LastHandOver.UTC().Format(time.RFC3339))
	case !last.HandOverBy.IsZero():
		anchor = last.HandOverBy
		why = fmt.Sprintf("the previous attempt did not end (crashed or killed); it handed no record over after %s, ",
			last.HandOverBy.UTC().Format(time.RFC3339))
	default:
		anchor = now
		why = "the previous attempt did not end, and its state file (version 1) does not say when it last handed a record over; from now, "
	}
	return anchor.Add(bound + r.cfg.ReplicationMargin), why + tail
}

// findSent fills r.ahead with the DLT records an earlier attempt of the run
// sent after its last checkpoint: those the state lists as sent ahead and,
// unless the latest attempt ended cleanly, those found in the target
// partitions from the end offsets of the last checkpoint to their end
// offsets now (a partition the checkpoint does not list is read from
// offset 0). Only sources at or after their partition's next offset are
// kept: the others are behind the checkpoint already. A target partition
// whose records after the checkpoint may be gone fails with
// ErrUnverifiable.
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
	if len(r.st.Targets) == 0 || r.st.Last.Clean {
		return nil
	}
	ranges, err := r.targetRanges(ctx)
	if err != nil {
		return err
	}
	r.res.ResumeScanned = ranges.Total()
	so := ScanOptions{IdleTimeout: r.cfg.IdleTimeout, Lost: func(topic string, p int32, from, to int64) {
		if err == nil {
			err = unverifiable(topic, p, fmt.Sprintf("offsets %d to %d were deleted while they were read", from, to-1))
		}
	}}
	serr := Scan(ctx, r.cfg.ClientOpts, ranges, so, func(rec *kgo.Record) error {
		if err != nil {
			return err
		}
		if src := replayedBy(rec, r.cfg.Run); src != "" {
			keep(src)
		}
		return nil
	})
	if err != nil {
		return err
	}
	return serr
}

// targetRanges returns the offsets of the targets to search: from the end
// offset each partition had at the last checkpoint to its end offset (high
// watermark) now. A target topic that no longer exists holds nothing to
// find, and nothing can land in it. A partition whose log start has passed
// the checkpointed end offset, or whose end offset is below it (the log
// was truncated, or the topic recreated), may have lost records sent after
// the checkpoint: ErrUnverifiable.
func (r *replayer) targetRanges(ctx context.Context) (Ranges, error) {
	var topics []string
	for t := range r.st.Targets {
		topics = append(topics, t)
	}
	slices.Sort(topics)
	list := func(l func(context.Context, ...string) (map[string]map[int32]int64, error)) (map[string]map[int32]int64, error) {
		for {
			out, err := l(ctx, topics...)
			if err == nil || len(topics) == 0 {
				return out, err
			}
			missing, only := missingTopics(err)
			if !only {
				return nil, fmt.Errorf("reading the target topics for records sent by an earlier attempt: %w", err)
			}
			topics = slices.DeleteFunc(topics, func(t string) bool { return slices.Contains(missing, t) })
			if len(topics) == 0 {
				return map[string]map[int32]int64{}, nil
			}
		}
	}
	ends, err := list(func(ctx context.Context, ts ...string) (map[string]map[int32]int64, error) {
		return listOffsets(ctx, "end", ts, r.adm.ListEndOffsets)
	})
	if err != nil {
		return nil, err
	}
	starts, err := list(func(ctx context.Context, ts ...string) (map[string]map[int32]int64, error) {
		return listOffsets(ctx, "start", ts, r.adm.ListStartOffsets)
	})
	if err != nil {
		return nil, err
	}
	ranges := Ranges{}
	for _, topic := range topics {
		for p, ck := range r.st.Targets[topic] {
			if _, ok := ends[topic][p]; !ok {
				return nil, unverifiable(topic, p, fmt.Sprintf("the partition is gone (the checkpoint recorded its end offset %d)", ck))
			}
		}
		for p, end := range ends[topic] {
			ck := r.st.Targets[topic][p]
			start, ok := starts[topic][p]
			switch {
			case end < ck:
				return nil, unverifiable(topic, p, fmt.Sprintf("its end offset %d is below the %d recorded at the last checkpoint (the log was truncated, or the topic recreated)", end, ck))
			case ok && start > ck:
				return nil, unverifiable(topic, p, fmt.Sprintf("its log start %d has passed the end offset %d recorded at the last checkpoint (retention or DeleteRecords removed records sent after it)", start, ck))
			case end > ck:
				ranges.set(topic, p, Range{Start: ck, End: end})
			}
		}
	}
	return ranges, nil
}

func unverifiable(topic string, p int32, what string) error {
	return fmt.Errorf("%w after its last checkpoint: target %s[%d]: %s. "+
		"Resuming could send some DLT records twice, so this run cannot go on; the state file is unchanged. "+
		"To replay again, start a new run with a new --run ID (it replays the whole selection; narrow it with the filters, e.g. --since)",
		ErrUnverifiable, topic, p, what)
}
