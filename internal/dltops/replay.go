package dltops

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// Errors of Replay. Each is wrapped with details; test with errors.Is.
var (
	// ErrInterrupted: ctx ended during the replay. What was sent has been
	// flushed and checkpointed; the same command resumes it.
	ErrInterrupted = errors.New("replay interrupted")
	// ErrSelectionChanged: a run's state file records a different
	// selection (DLTs, filters, --to) than the one given to resume it.
	ErrSelectionChanged = errors.New("the run was started with a different selection")
	// ErrLocked: another attempt of the same run holds its lock file.
	ErrLocked = errors.New("another attempt of this run is running")
	// ErrConfig: the ReplayConfig is invalid.
	ErrConfig = errors.New("invalid replay")
)

// Result statuses.
const (
	ResultDone        = "done"         // every selected record has been sent
	ResultAlreadyDone = "already-done" // the run had finished before; nothing was sent
	ResultInterrupted = "interrupted"  // ctx ended; resume with the same command
	ResultFailed      = "failed"       // an error stopped the replay; resume with the same command
	ResultDryRun      = "dry-run"      // nothing was sent or written
)

// Defaults of ReplayConfig.
const (
	DefaultCheckpointEvery    = 1000
	DefaultCheckpointInterval = 5 * time.Second
	DefaultFlushTimeout       = 30 * time.Second
)

// ReplayConfig says what Replay sends.
type ReplayConfig struct {
	// Run is the run ID: 1 to 100 letters, digits, '.', '_' or '-'. It
	// names the state file and goes into retry.HeaderReplayRun.
	Run string
	// DLTs are the topics to replay from; at least one.
	DLTs []string
	// Filter selects the records to replay.
	Filter Filter
	// To, when set, is the topic every record is sent to (by key), instead
	// of its original topic (to its original partition when the topic has
	// it, otherwise by key).
	To string
	// DryRun reads and counts what would be sent without sending anything
	// or writing the state file. An existing state file is honoured:
	// records an interrupted attempt sent count as already sent.
	DryRun bool
	// Rate limits the sends to Rate records per second; 0 (the default)
	// is unlimited.
	Rate float64
	// StateDir is the directory of the state file; default ".".
	StateDir string
	// CheckpointEvery is how many DLT records are read between
	// checkpoints, and CheckpointInterval the longest time between them;
	// defaults DefaultCheckpointEvery and DefaultCheckpointInterval.
	CheckpointEvery    int
	CheckpointInterval time.Duration
	// FlushTimeout bounds the wait for the cluster to acknowledge the
	// records sent, at a checkpoint; default DefaultFlushTimeout.
	FlushTimeout time.Duration
	// ClientOpts are the connection options of the clients Replay makes
	// (seeds, TLS, SASL).
	ClientOpts []kgo.Opt
	// Decoder decodes the DLT records; the zero Decoder reads kretry
	// headers only.
	Decoder Decoder
	// Progress is told where the replay stands; nil reports nothing.
	Progress Progress
	// Clock is the time source; nil is the system clock.
	Clock Clock

	hooks hooks
}

// hooks let tests stop a replay the way a crash would.
type hooks struct {
	// crash is called after each record; true stops the replay at once:
	// the producer is flushed (the records land), no checkpoint is
	// written, and Replay returns errCrash.
	crash func(read, sends int64) bool
}

var errCrash = errors.New("simulated crash")

// Result is what a replay did. Totals cover the run over all its attempts;
// the Attempt fields this attempt only.
type Result struct {
	Run       string `json:"run"`
	Status    string `json:"status"`
	StateFile string `json:"stateFile,omitempty"`
	// Attempts is the number of attempts of the run, this one included.
	Attempts int    `json:"attempts"`
	Totals   Totals `json:"totals"`
	// AttemptRead and AttemptSent count the DLT records read and sent by
	// this attempt; ResumeScanned the target offsets it read to find what
	// an interrupted attempt had sent.
	AttemptRead   int64 `json:"attemptRead"`
	AttemptSent   int64 `json:"attemptSent"`
	ResumeScanned int64 `json:"resumeScanned"`
	Checkpoints   int   `json:"checkpoints"`
	// Elapsed is the time this attempt took.
	Elapsed time.Duration `json:"elapsedNs"`
	// Finished is when the run finished (ResultDone, ResultAlreadyDone).
	Finished time.Time `json:"finished,omitzero"`
}

var runID = regexp.MustCompile(`^[A-Za-z0-9._-]{1,100}$`)

// ValidRunID reports whether run can be a run ID, and why not.
func ValidRunID(run string) error {
	if !runID.MatchString(run) || run == "." || run == ".." {
		return fmt.Errorf("run ID %q: want 1 to 100 letters, digits, '.', '_' or '-'", run)
	}
	return nil
}

func (c *ReplayConfig) validate() error {
	var errs []error
	if err := ValidRunID(c.Run); err != nil {
		errs = append(errs, err)
	}
	if len(c.DLTs) == 0 {
		errs = append(errs, errors.New("want at least one DLT"))
	}
	if c.To != "" && slices.Contains(c.DLTs, c.To) {
		errs = append(errs, fmt.Errorf("--to %s is one of the DLTs being replayed", c.To))
	}
	if c.Rate < 0 {
		errs = append(errs, fmt.Errorf("rate must be >= 0, got %v", c.Rate))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("%w: %w", ErrConfig, err)
	}
	if c.StateDir == "" {
		c.StateDir = "."
	}
	if c.CheckpointEvery <= 0 {
		c.CheckpointEvery = DefaultCheckpointEvery
	}
	if c.CheckpointInterval <= 0 {
		c.CheckpointInterval = DefaultCheckpointInterval
	}
	if c.FlushTimeout <= 0 {
		c.FlushTimeout = DefaultFlushTimeout
	}
	if c.Clock == nil {
		c.Clock = RealClock()
	}
	if c.Progress == nil {
		c.Progress = NoProgress{}
	}
	return nil
}

// replayer is one attempt of a replay run.
type replayer struct {
	cfg      ReplayConfig
	filter   Filter
	path     string
	st       *State
	prod     *kgo.Client
	adm      *kadm.Client
	pctx     context.Context // of the sends: not canceled by an interrupt
	limiter  *Limiter
	ahead    map[string]struct{} // sources sent by an earlier attempt, not yet passed
	res      Result
	started  time.Time
	lastCkpt time.Time
	sinceCk  int
	done     int64 // offsets behind Next, over all sources
	doneAt0  int64

	mu      sync.Mutex // guards what the produce callbacks touch
	prodErr error      // the first failed send
	sends   int64
}

// Replay sends the DLT records that cfg selects back to their original
// topics (or cfg.To), resumably: see the package documentation for the
// state it keeps and the guarantee it gives. It returns what it did, also
// with an error: ErrInterrupted when ctx ended, ErrSelectionChanged,
// ErrLocked, ErrConfig, or the cluster's error.
func Replay(ctx context.Context, cfg ReplayConfig) (*Result, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	r := &replayer{cfg: cfg, filter: cfg.Filter, path: StatePath(cfg.StateDir, cfg.Run)}
	r.res.Run = cfg.Run
	r.started = cfg.Clock.Now()
	defer func() { r.res.Elapsed = cfg.Clock.Now().Sub(r.started) }()
	if fi, err := os.Stat(cfg.StateDir); err != nil || !fi.IsDir() {
		return nil, fmt.Errorf("%w: state directory %s: not a directory", ErrConfig, cfg.StateDir)
	}
	if !cfg.DryRun {
		unlock, err := lock(filepath.Join(cfg.StateDir, "kretry-replay-"+cfg.Run+".lock"))
		if err != nil {
			return nil, err
		}
		defer unlock()
		r.res.StateFile = r.path
	}
	st, err := LoadState(r.path)
	if err != nil {
		return nil, err
	}
	sel := selectionOf(cfg.DLTs, cfg.To, &cfg.Filter)
	if st != nil {
		if st.Run != cfg.Run {
			return nil, fmt.Errorf("state file %s is of run %q, not %q", r.path, st.Run, cfg.Run)
		}
		if d := st.Selection.diff(sel); len(d) > 0 || st.Fingerprint != sel.Fingerprint() {
			return nil, fmt.Errorf("%w (state file %s): %s; give the same DLTs and flags, or use a new --run ID",
				ErrSelectionChanged, r.path, joinDiff(d))
		}
		if st.Status == StatusDone {
			r.res.Status, r.res.Attempts, r.res.Totals, r.res.Finished = ResultAlreadyDone, st.Attempts, st.Totals, st.Updated
			return &r.res, nil
		}
		r.filter.Since.At, r.filter.Until.At = st.SinceAt, st.UntilAt
	}

	cl, err := kgo.NewClient(append(slices.Clip(cfg.ClientOpts), kgo.RecordPartitioner(partitioner()))...)
	if err != nil {
		return nil, err
	}
	defer cl.Close()
	r.prod, r.adm = cl, kadm.NewClient(cl)
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
	ranges := Ranges{}
	for topic, ps := range st.Sources {
		for p, pos := range ps {
			r.done += pos.Next - pos.Start
			ranges.set(topic, p, Range{Start: pos.Next, End: pos.End})
		}
	}
	r.doneAt0 = r.done
	if err := r.findSent(ctx); err != nil {
		// No checkpoint: it would move the targets' end offsets past
		// records not searched yet.
		r.res.Status = ResultFailed
		if ctx.Err() != nil {
			r.res.Status = ResultInterrupted
			err = fmt.Errorf("%w: %w", ErrInterrupted, err)
		}
		r.res.Totals = st.Totals
		return &r.res, fmt.Errorf("reading the target topics for records sent by an earlier attempt: %w", err)
	}
	if !cfg.DryRun && st.Attempts == 1 {
		// Pins the run's scope: the source end offsets.
		if err := r.checkpoint(ctx, ""); err != nil {
			return r.result(ctx, err)
		}
	}
	err = Scan(ctx, cfg.ClientOpts, ranges, r.handle(ctx))
	if errors.Is(err, errCrash) {
		return nil, err
	}
	return r.result(ctx, err)
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
// the start (or --since) to their end offsets now.
func (r *replayer) newState(ctx context.Context, sel Selection) (*State, error) {
	ranges, err := ListRanges(ctx, r.adm, r.cfg.DLTs, r.filter.Since.At)
	if err != nil {
		return nil, err
	}
	now := r.cfg.Clock.Now().UTC()
	st := &State{Version: stateVersion, Run: r.cfg.Run, Status: StatusRunning, Selection: sel,
		Fingerprint: sel.Fingerprint(), SinceAt: r.filter.Since.At, UntilAt: r.filter.Until.At,
		Started: now, Updated: now, Attempts: 1,
		Sources: map[string]map[int32]SourcePos{}, Targets: map[string]map[int32]int64{}}
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
		return nil
	}
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
	target := r.cfg.To
	if target == "" {
		target = info.target()
	}
	if _, ok := r.ahead[src]; ok {
		delete(r.ahead, src)
		t.Read++
		t.Matched++
		r.mu.Lock()
		t.AlreadySent++
		t.SentTo[target]++
		r.mu.Unlock()
		return nil
	}
	if target == "" {
		t.Read++
		t.Matched++
		r.skip(rec, info, SkipNoTopic)
		return nil
	}
	if r.cfg.DryRun {
		t.Read++
		t.Matched++
		t.SentTo[target]++
		return nil
	}
	if _, ok := r.st.Targets[target]; !ok {
		// Before the first send to a new target, record its end offsets:
		// a resume reads it from there.
		if err := r.checkpoint(ctx, target); err != nil {
			return err
		}
	}
	if err := r.limiter.Wait(ctx); err != nil {
		return err
	}
	partition := int32(-1)
	if r.cfg.To == "" {
		partition = info.State.OriginalPartition
	}
	out := ReplayRecord(rec, target, partition, r.cfg.Run, r.cfg.Clock.Now())
	t.Read++
	t.Matched++
	r.mu.Lock()
	r.sends++
	r.mu.Unlock()
	r.prod.Produce(r.pctx, out, r.acked)
	return nil
}

func (r *replayer) skip(rec *kgo.Record, info Info, reason string) {
	t := &r.st.Totals
	t.Skipped[reason]++
	if len(t.SkippedRecords) < maxSkippedRecords {
		s := SkippedRecord{Source: SourceOf(rec), Reason: reason}
		if info.Err != nil {
			s.Error = info.Err.Error()
		}
		t.SkippedRecords = append(t.SkippedRecords, s)
	}
}

// acked is the produce callback.
func (r *replayer) acked(rec *kgo.Record, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if err != nil {
		if r.prodErr == nil {
			from := ""
			if n := len(rec.Headers); n >= 2 {
				from = string(rec.Headers[n-2].Value)
			}
			r.prodErr = fmt.Errorf("sending %s to %s: %w", from, rec.Topic, err)
		}
		return
	}
	r.st.Totals.Sent++
	r.st.Totals.SentTo[rec.Topic]++
	r.res.AttemptSent++
}

func (r *replayer) failed() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.prodErr
}

func (r *replayer) sendCount() int64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.sends
}

// flush waits until every record sent so far is acknowledged, or
// FlushTimeout passes, and returns the first failed send.
func (r *replayer) flush() error {
	fctx, cancel := context.WithTimeout(r.pctx, r.cfg.FlushTimeout)
	defer cancel()
	err := r.prod.Flush(fctx)
	if perr := r.failed(); perr != nil {
		return perr
	}
	if err != nil {
		return fmt.Errorf("waiting for the cluster to acknowledge the records sent: %w", err)
	}
	return nil
}

// checkpoint flushes the producer and writes the state file with the next
// source offsets, the end offsets of every target topic (and of
// newTarget, if set), and the sources sent ahead that are not yet passed.
// It writes nothing when a send has failed: the previous checkpoint stays.
func (r *replayer) checkpoint(ctx context.Context, newTarget string) error {
	if err := r.flush(); err != nil {
		return err
	}
	topics := make([]string, 0, len(r.st.Targets)+1)
	for t := range r.st.Targets {
		topics = append(topics, t)
	}
	if newTarget != "" {
		topics = append(topics, newTarget)
	}
	if len(topics) > 0 {
		ends, err := listOffsets(ctx, "end", topics, r.adm.ListEndOffsets)
		if err != nil {
			if newTarget != "" {
				return fmt.Errorf("cannot send to %s: %w", newTarget, err)
			}
			return err
		}
		r.st.Targets = ends
	}
	r.st.SentAhead = r.st.SentAhead[:0]
	for src := range r.ahead {
		r.st.SentAhead = append(r.st.SentAhead, src)
	}
	slices.Sort(r.st.SentAhead)
	now := r.cfg.Clock.Now()
	r.st.Updated = now.UTC()
	r.mu.Lock()
	err := r.st.save(r.path)
	r.mu.Unlock()
	if err != nil {
		return err
	}
	r.sinceCk, r.lastCkpt = 0, now
	r.res.Checkpoints++
	return nil
}

func (r *replayer) snapshot() Snapshot {
	var total int64
	for _, ps := range r.st.Sources {
		for _, pos := range ps {
			total += pos.End - pos.Start
		}
	}
	elapsed := r.cfg.Clock.Now().Sub(r.started)
	s := Snapshot{Done: r.done, Total: total, Elapsed: elapsed, Skipped: r.st.Totals.SkippedTotal()}
	if elapsed > 0 {
		s.Rate = float64(r.done-r.doneAt0) / elapsed.Seconds()
	}
	r.mu.Lock()
	s.Sent, s.AlreadySent = r.st.Totals.Sent, r.st.Totals.AlreadySent
	r.mu.Unlock()
	return s
}

// result ends the attempt after Scan returned err: it flushes, writes the
// last checkpoint (status done when err is nil), reports the final
// progress, and returns the Result with the error to report.
func (r *replayer) result(ctx context.Context, err error) (*Result, error) {
	bg, cancel := context.WithTimeout(r.pctx, r.cfg.FlushTimeout)
	defer cancel()
	interrupted := err != nil && ctx.Err() != nil && errors.Is(err, ctx.Err())
	switch {
	case r.cfg.DryRun:
		r.res.Status = ResultDryRun
		if interrupted {
			r.res.Status = ResultInterrupted
		}
	case err == nil:
		for topic, ps := range r.st.Sources {
			for p, pos := range ps {
				r.done += pos.End - pos.Next
				pos.Next = pos.End
				ps[p] = pos
			}
			r.st.Sources[topic] = ps
		}
		r.ahead = nil
		r.st.Status = StatusDone
		if err = r.checkpoint(bg, ""); err != nil {
			r.st.Status = StatusRunning
			r.res.Status = ResultFailed
		} else {
			r.res.Status, r.res.Finished = ResultDone, r.st.Updated
		}
	case r.failed() != nil:
		// A send failed: no checkpoint may pass it. The last one stands,
		// and a resume finds in the targets what was sent since.
		_ = r.prod.Flush(bg)
		r.res.Status = ResultFailed
		err = r.failed()
	default:
		if cerr := r.checkpoint(bg, ""); cerr != nil {
			err = errors.Join(err, cerr)
		}
		r.res.Status = ResultFailed
		if interrupted {
			r.res.Status = ResultInterrupted
		}
	}
	r.cfg.Progress.Finish(r.snapshot())
	r.mu.Lock()
	r.res.Totals = r.st.Totals
	r.mu.Unlock()
	r.res.Totals.SentTo = maps.Clone(r.res.Totals.SentTo)
	r.res.Totals.Skipped = maps.Clone(r.res.Totals.Skipped)
	if interrupted {
		err = fmt.Errorf("%w: %w", ErrInterrupted, err)
	}
	return &r.res, err
}
