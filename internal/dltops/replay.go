package dltops

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// replayer is one attempt of a replay run.
type replayer struct {
	cfg     ReplayConfig
	filter  Filter
	path    string
	st      *State
	prod    *kgo.Client
	adm     *kadm.Client
	pctx    context.Context // of the sends: not canceled by an interrupt
	limiter *Limiter
	ahead   map[string]struct{} // sources sent by an earlier attempt, not yet passed
	missing map[string]bool     // target topics found not to exist
	known   map[string]bool     // target topics found to exist
	// topicTargets are the targets this attempt chose that are not retry
	// tiers (original topics, --to): every group reading them sees the
	// records (Result.Readers).
	topicTargets map[string]bool

	res     Result
	started time.Time
	done    int64 // offsets behind Next, over all sources
	doneAt0 int64

	// Checkpoints and the hand-over lease (see AttemptEnd).
	lastCkpt     time.Time
	sinceCk      int
	bound        time.Duration // this attempt's AttemptEnd.DeliveryBound
	lease        time.Duration
	handOverBy   time.Time
	lastHandOver time.Time
	ending       bool // the final checkpoint: the attempt ends cleanly
	closeOnce    sync.Once

	maxInFlight int
	space       chan struct{} // a send was answered

	mu       sync.Mutex // guards what the produce callbacks touch
	prodErr  error      // the first failed send
	sends    int64      // records handed over
	answered int64      // sends answered: acknowledged or failed
	acked    int64      // sends acknowledged
	refused  int64      // sends refused for the record itself (rejection)
	rejected []rejectedSend
}

// Replay sends the DLT records that cfg selects back to their original
// topics (or cfg.To), resumably: see the package documentation for the
// state it keeps and the guarantee it gives. It returns what it did, also
// with an error: ErrInterrupted when ctx ended, ErrSelectionChanged,
// ErrLocked, ErrConfig, ErrUnverifiable, or the cluster's error.
func Replay(ctx context.Context, cfg ReplayConfig) (*Result, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	// A dry run needs no state directory: without one, there is no state.
	if fi, err := os.Stat(cfg.StateDir); (err != nil || !fi.IsDir()) && !(cfg.DryRun && errors.Is(err, os.ErrNotExist)) {
		return nil, fmt.Errorf("%w: state directory %s: not a directory", ErrConfig, cfg.StateDir)
	}
	path, err := filepath.Abs(StatePath(cfg.StateDir, cfg.Run))
	if err != nil {
		return nil, fmt.Errorf("%w: state directory %s: %w", ErrConfig, cfg.StateDir, err)
	}
	r := &replayer{cfg: cfg, filter: cfg.Filter, path: path, missing: map[string]bool{}, known: map[string]bool{},
		lease: 2 * cfg.CheckpointInterval, maxInFlight: defaultMaxInFlight, space: make(chan struct{}, 1),
		topicTargets: map[string]bool{}}
	if cfg.hooks.maxInFlight > 0 {
		r.maxInFlight = cfg.hooks.maxInFlight
	}
	r.res.Run = cfg.Run
	r.started = cfg.Clock.Now()
	defer func() { r.res.Elapsed = cfg.Clock.Now().Sub(r.started) }()
	if !cfg.DryRun {
		unlock, err := lock(filepath.Join(filepath.Dir(path), "kretry-replay-"+cfg.Run+".lock"))
		if err != nil {
			return nil, err
		}
		defer unlock()
		r.res.StateFile = path
	}
	st, err := LoadState(path)
	if err != nil {
		return nil, err
	}
	sel := selectionOf(cfg.DLTs, cfg.To, &cfg.Filter, cfg.FirstTiers)
	if st != nil {
		if st.Run != cfg.Run {
			return nil, fmt.Errorf("state file %s is of run %q, not %q", path, st.Run, cfg.Run)
		}
		if d := st.Selection.diff(sel); len(d) > 0 || st.Fingerprint != sel.Fingerprint() {
			return nil, fmt.Errorf("%w (state file %s): %s; give the same DLTs and flags, or use a new --run ID",
				ErrSelectionChanged, path, joinDiff(d))
		}
		if st.Status == StatusDone {
			r.res.Status, r.res.Attempts, r.res.Totals, r.res.Finished = ResultAlreadyDone, st.Attempts, st.Totals, st.Updated
			r.res.Clean = true
			return &r.res, nil
		}
		r.filter.Since.At, r.filter.Until.At = st.SinceAt, st.UntilAt
	}

	cl, err := kgo.NewClient(r.producerOpts()...)
	if err != nil {
		return nil, err
	}
	defer r.closeProducer()
	r.prod, r.adm = cl, kadm.NewClient(cl)
	if g, _ := cl.OptValue(kgo.ConsumerGroup).(string); g != "" {
		return nil, fmt.Errorf("%w: %w: group %q", ErrConfig, ErrClientGroup, g)
	}
	r.bound = deliveryBound(cl)
	r.pctx = context.WithoutCancel(ctx)
	r.limiter = NewLimiter(cfg.Rate, cfg.Clock)

	if st == nil {
		if st, err = r.newState(ctx, sel); err != nil {
			return nil, err
		}
	} else {
		st.Attempts++
	}
	r.st = st
	r.res.Attempts = st.Attempts
	r.res.Totals = st.Totals
	ranges := Ranges{}
	for topic, ps := range st.Sources {
		for p, pos := range ps {
			r.done += pos.Next - pos.Start
			ranges.set(topic, p, Range{Start: pos.Next, End: pos.End})
		}
	}
	r.doneAt0 = r.done
	if err := r.resume(ctx); err != nil {
		// No checkpoint: it would move the targets' end offsets past
		// records not searched yet, and the state still describes the
		// attempt that must be waited for.
		r.res.Status = ResultFailed
		if ctx.Err() != nil {
			r.res.Status = ResultInterrupted
			err = fmt.Errorf("%w: %w", ErrInterrupted, err)
		}
		r.res.Clean = r.st.Last.Clean
		return &r.res, err
	}
	if !cfg.DryRun {
		// Pins the run's scope (the source end offsets) on the first
		// attempt, and on every attempt records that it runs and the
		// lease of its hand-overs, before any of them.
		if err := r.checkpoint(ctx, ""); err != nil {
			return r.finish(ctx, err)
		}
	}
	err = Scan(ctx, cfg.ClientOpts, ranges, ScanOptions{ReadCommitted: true, Lost: r.lost, IdleTimeout: cfg.IdleTimeout}, r.handle(ctx))
	if errors.Is(err, errCrash) {
		return nil, err
	}
	r.readers(ctx)
	return r.finish(ctx, err)
}

func joinDiff(d []string) string {
	if len(d) == 0 {
		return "the selection's fingerprint differs"
	}
	out := d[0]
	for _, s := range d[1:] {
		out += "; " + s
	}
	return out
}

// newState returns the state of a new run: its sources cover the DLTs from
// the start (or --since) to their last stable offsets now.
func (r *replayer) newState(ctx context.Context, sel Selection) (*State, error) {
	ranges, err := ListRanges(ctx, r.adm, r.cfg.DLTs, r.filter.Since.At)
	if err != nil {
		return nil, err
	}
	now := r.cfg.Clock.Now().UTC()
	st := &State{Version: stateVersion, Run: r.cfg.Run, Status: StatusRunning, Selection: sel,
		Fingerprint: sel.Fingerprint(), SinceAt: r.filter.Since.At, UntilAt: r.filter.Until.At,
		Started: now, Updated: now, Attempts: 1,
		Sources: map[string]map[int32]SourcePos{}, Targets: map[string]map[int32]int64{},
		Last: AttemptEnd{Ended: true, Clean: true}} // no attempt before this one
	st.Totals.init()
	for topic, ps := range ranges {
		st.Sources[topic] = map[int32]SourcePos{}
		for p, rg := range ps {
			st.Sources[topic][p] = SourcePos{Start: rg.Start, Next: rg.Start, End: rg.End}
		}
	}
	return st, nil
}

// handle returns the Scan callback: it handles one DLT record, advances its
// partition's next offset, and checkpoints when due.
func (r *replayer) handle(ctx context.Context) func(*kgo.Record) error {
	return func(rec *kgo.Record) error {
		if err := r.failed(); err != nil {
			return err
		}
		pos, ok := r.st.Sources[rec.Topic][rec.Partition]
		if !ok || rec.Offset < pos.Next || rec.Offset >= pos.End {
			return nil
		}
		if err := r.one(ctx, rec); err != nil {
			return err
		}
		r.done += rec.Offset + 1 - pos.Next
		pos.Next = rec.Offset + 1
		r.st.Sources[rec.Topic][rec.Partition] = pos
		r.res.AttemptRead++
		r.sinceCk++
		if !r.cfg.DryRun && (r.sinceCk >= r.cfg.CheckpointEvery || r.cfg.Clock.Now().Sub(r.lastCkpt) >= r.cfg.CheckpointInterval) {
			if err := r.checkpoint(ctx, ""); err != nil {
				return err
			}
		}
		r.cfg.Progress.Update(r.snapshot())
		if h := r.cfg.hooks.crash; h != nil && h(r.res.AttemptRead, r.sendCount()) {
			_ = r.prod.Flush(r.pctx)
			return errCrash
		}
		if h := r.cfg.hooks.crashNoFlush; h != nil && h(r.res.AttemptRead, r.sendCount()) {
			r.closeProducer()
			return errCrash
		}
		return nil
	}
}

// lost is Scan's Lost: the offsets [from, to) of a DLT partition were
// deleted before they were read. They are counted, and the partition's
// next offset moves past them.
func (r *replayer) lost(topic string, p int32, from, to int64) {
	pos, ok := r.st.Sources[topic][p]
	if !ok {
		return
	}
	from, to = max(from, pos.Next), min(to, pos.End)
	if to <= from {
		return
	}
	r.mu.Lock()
	r.st.Totals.addLost(topic, p, from, to)
	r.mu.Unlock()
	r.done += to - pos.Next
	pos.Next = to
	r.st.Sources[topic][p] = pos
}

// one handles a DLT record. It changes the totals only once it cannot
// fail any more, so that a record it returns an error for is handled again
// by the next attempt, and counted once.
func (r *replayer) one(ctx context.Context, rec *kgo.Record) error {
	t := &r.st.Totals
	info := r.cfg.Decoder.Decode(rec)
	if !r.filter.Match(rec, info) {
		t.Read++
		return nil
	}
	src := SourceOf(rec)
	rt := r.route(info)
	if _, ok := r.ahead[src]; ok && rt.topic != "" {
		delete(r.ahead, src)
		r.chose(rt)
		t.Read++
		t.Matched++
		r.mu.Lock()
		t.AlreadySent++
		t.countSent(rt)
		r.mu.Unlock()
		return nil
	}
	if rt.topic == "" {
		t.Read++
		t.Matched++
		r.skip(SkippedRecord{Source: src, Reason: rt.skip, Group: rt.group}, info.Err)
		return nil
	}
	exists, err := r.targetExists(ctx, rt.topic)
	if err != nil {
		return err
	}
	if !exists {
		if rt.kind == kindTo {
			return fmt.Errorf("--to %w", noSuchTopic(rt.topic))
		}
		reason := SkipNoSuchTopic
		if rt.kind == kindTier {
			reason = SkipNoSuchTier
		}
		t.Read++
		t.Matched++
		r.skip(SkippedRecord{Source: src, Reason: reason, Target: rt.topic, TargetFrom: rt.from, Group: rt.group}, nil)
		return nil
	}
	r.chose(rt)
	if r.cfg.DryRun {
		t.Read++
		t.Matched++
		t.countSent(rt)
		r.res.AttemptWouldSend++
		if r.res.WouldSendTo == nil {
			r.res.WouldSendTo = map[string]int64{}
		}
		r.res.WouldSendTo[rt.topic]++
		return nil
	}
	if err := r.limiter.Wait(ctx); err != nil {
		return err
	}
	if err := r.waitSpace(ctx); err != nil {
		return err
	}
	now := r.cfg.Clock.Now()
	if !now.Before(r.handOverBy) {
		if err := r.extendLease(now); err != nil {
			return err
		}
	}
	t.Read++
	t.Matched++
	r.send(sendOf(rec, info, rt), r.cfg.Run, now)
	return nil
}

// targetExists reports whether target exists. A target not yet in the
// state is added by a checkpoint that lists its end offsets (a resume
// reads it from there); in a dry run its offsets are only listed. A topic
// found missing is remembered for the attempt.
func (r *replayer) targetExists(ctx context.Context, target string) (bool, error) {
	if r.missing[target] {
		return false, nil
	}
	if _, ok := r.st.Targets[target]; ok || r.known[target] {
		return true, nil
	}
	var err error
	if r.cfg.DryRun {
		if _, err = listOffsets(ctx, "end", []string{target}, r.adm.ListEndOffsets); err != nil {
			err = fmt.Errorf("cannot send to %s: %w", target, err)
		}
	} else {
		err = r.checkpoint(ctx, target)
	}
	if m, only := missingTopics(err); err != nil && only && slices.Contains(m, target) {
		r.missing[target] = true
		return false, nil
	}
	if err != nil {
		return false, err
	}
	r.known[target] = true
	return true, nil
}

// skip counts a matched record that cannot be replayed and lists it.
func (r *replayer) skip(s SkippedRecord, cause error) {
	if cause != nil && s.Error == "" {
		s.Error = cause.Error()
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	t := &r.st.Totals
	t.Skipped[s.Reason]++
	if len(t.SkippedRecords) < maxSkippedRecords {
		t.SkippedRecords = append(t.SkippedRecords, s)
	}
}
