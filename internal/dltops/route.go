package dltops

import (
	"cmp"
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/kretry/kretry/retry"
)

// ListenerKey names a kretry listener by its main topic and consumer
// group: the key of ReplayConfig.FirstTiers.
type ListenerKey struct {
	Topic string
	Group string
}

// String returns "TOPIC (group GROUP)".
func (k ListenerKey) String() string { return k.Topic + " (group " + k.Group + ")" }

// Target kinds: how a replay chose a record's target topic (route.kind).
const (
	kindTo   = "to"   // --to: every record
	kindMain = "main" // the original topic: every group reading it sees the record
	kindTier = "tier" // the first retry tier of the record's group: only that group handles it
)

// route is where a replay sends one DLT record.
type route struct {
	topic string
	from  string // SkippedRecord.TargetFrom: a header name, "--to" or "policy of group G"
	kind  string
	group string // the record's consumer group (retry.State.Group), "" when none
	// partition is the partition asked for: the original one, or -1 (by
	// key) with --to.
	partition int32
	// skip, when set, is why the record cannot be routed (kind "").
	skip string
}

// route decides where info's record goes: with To, to To by key;
// otherwise a record that carries a consumer group to the first retry tier
// of that group's listener of its original topic (FirstTiers; to the
// original topic when that plan has no retry tier), and a record without a
// group to its original topic, where every group reading the topic sees
// it.
func (r *replayer) route(info Info) route {
	if r.cfg.To != "" {
		return route{topic: r.cfg.To, from: "--to", kind: kindTo, group: info.owner(), partition: -1}
	}
	orig := info.target()
	if orig == "" {
		return route{skip: SkipNoTopic}
	}
	rt := route{topic: orig, from: retry.HeaderOriginalTopic, kind: kindMain, group: info.owner(),
		partition: info.State.OriginalPartition}
	if info.Kind == KindFallback {
		rt.from = "kafka_original-topic"
	}
	if rt.group == "" {
		return rt
	}
	tier, ok := r.cfg.FirstTiers[ListenerKey{Topic: orig, Group: rt.group}]
	switch {
	case !ok:
		return route{group: rt.group, skip: SkipNoListener}
	case tier == "": // the plan has no retry tier (attempts 1)
		return rt
	}
	rt.topic, rt.from, rt.kind = tier, "policy of group "+rt.group, kindTier
	return rt
}

// TierRecord returns the record a replay of run sends for src, a DLT
// record of consumer group st.Group, into the first retry tier topic of
// that group's plan: what ReplayRecord returns, with the retry headers of
// st (retry.State.Append) between the user headers and the audit headers.
// Topic is topic, Partition is partition (-1: by key), Timestamp is now.
func TierRecord(src *kgo.Record, topic string, partition int32, st retry.State, run string, now time.Time) *kgo.Record {
	return replayRecord(src, topic, partition, &st, run, now)
}

// tierState is the retry state of a replayed record in its group's first
// retry tier: the second delivery (the lowest attempt a tier record may
// carry), due now, from its original topic, partition and offset, with its
// original timestamp and first failure now, so that the policy's time
// budget starts again, as for a record replayed to its main topic. The
// times are now's millisecond, the record's timestamp.
func tierState(info Info, group string, now time.Time) retry.State {
	at := time.UnixMilli(now.UnixMilli()).UTC()
	return retry.State{Attempt: 2, Due: at, OriginalTopic: info.State.OriginalTopic,
		OriginalPartition: info.State.OriginalPartition, OriginalOffset: info.State.OriginalOffset,
		OriginalTimestamp: at, FirstFailure: at, Group: group}
}

// countSent counts a record sent (or, in a dry run, that would be sent) to
// rt; the caller holds r.mu where produce callbacks may run.
func (t *Totals) countSent(rt route) {
	t.SentTo[rt.topic]++
	if rt.kind != kindTier {
		return
	}
	if t.TierGroups == nil {
		t.TierGroups = map[string][]string{}
	}
	if gs := t.TierGroups[rt.topic]; !slices.Contains(gs, rt.group) {
		gs = append(slices.Clip(gs), rt.group) // a new array: copies of Totals share the old one
		slices.Sort(gs)
		t.TierGroups[rt.topic] = gs
	}
}

// chose notes a target a record goes to, for readers.
func (r *replayer) chose(rt route) {
	if rt.kind != kindTier {
		r.topicTargets[rt.topic] = true
	}
}

// readers fills the Result's Readers: for each target that is not a retry
// tier (an original topic, or --to), the consumer groups that have
// committed offsets on it, which all see what the replay sends there. A
// failure to list them is reported in ReadersError, never as the replay's
// error.
func (r *replayer) readers(ctx context.Context) {
	topics := slices.Collect(maps.Keys(r.topicTargets))
	r.mu.Lock()
	for t := range r.st.Totals.SentTo { // by earlier attempts too
		if _, tier := r.st.Totals.TierGroups[t]; !tier && !r.topicTargets[t] {
			topics = append(topics, t)
		}
	}
	r.mu.Unlock()
	slices.Sort(topics)
	if len(topics) == 0 || ctx.Err() != nil {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, r.cfg.FlushTimeout)
	defer cancel()
	readers, err := Readers(ctx, r.adm, topics)
	if err != nil {
		r.res.ReadersError = err.Error()
	}
	r.res.Readers = readers
}

// Readers returns, for each topic, the consumer groups that have committed
// an offset on it, sorted: the groups that see a record written to it (a
// group that has not committed yet, or whose offsets expired, would see it
// too). Every topic is in the result, with an empty list when no group has
// committed on it. When the offsets of some groups cannot be fetched, the
// others are returned with an error naming those groups.
func Readers(ctx context.Context, adm *kadm.Client, topics []string) (map[string][]string, error) {
	listed, err := adm.ListGroups(ctx)
	if err != nil {
		return nil, fmt.Errorf("listing the consumer groups: %w", err)
	}
	out := map[string][]string{}
	for _, t := range topics {
		out[t] = []string{}
	}
	groups := listed.Groups()
	if len(groups) == 0 {
		return out, nil
	}
	fetched := adm.FetchManyOffsets(ctx, groups...)
	var failed []string
	var firstErr error
	for _, g := range slices.Sorted(maps.Keys(fetched)) {
		resp := fetched[g]
		if resp.Err != nil {
			failed = append(failed, g)
			firstErr = cmp.Or(firstErr, resp.Err)
			continue
		}
		for _, t := range topics {
			for _, o := range resp.Fetched[t] {
				if o.Err == nil && o.At >= 0 {
					out[t] = append(out[t], g)
					break
				}
			}
		}
	}
	if len(failed) > 0 {
		return out, fmt.Errorf("fetching the committed offsets of groups %s: %w", strings.Join(failed, ", "), firstErr)
	}
	return out, nil
}
