package dltops

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"time"
)

// Result is what a replay did. Totals cover the run over all its attempts;
// the Attempt fields this attempt only.
type Result struct {
	Run    string `json:"run"`
	Status string `json:"status"`
	// StateFile is the absolute path of the state file (not with DryRun).
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
	// AttemptWouldSend counts what this dry run would send (records sent
	// by earlier attempts excluded), WouldSendTo the same by target topic.
	AttemptWouldSend int64            `json:"attemptWouldSend,omitempty"`
	WouldSendTo      map[string]int64 `json:"wouldSendTo,omitempty"`
	// Readers lists, for each target that is not a retry tier (see
	// Totals.TierGroups: an original topic, or --to), the consumer groups
	// with committed offsets on it when the replay ended: every one of them
	// sees the records sent there. ReadersError says why the list is
	// missing or incomplete.
	Readers      map[string][]string `json:"readers,omitempty"`
	ReadersError string              `json:"readersError,omitempty"`

	Checkpoints int `json:"checkpoints"`
	// Clean reports that every record this attempt handed to the producer
	// was acknowledged (or refused, and skipped) and the state file says
	// so: nothing of this attempt can land later, and a resume starts at
	// once. Otherwise Unacked records may still land until ResumeAfter,
	// and a resume waits until then before it searches the targets.
	Clean       bool      `json:"clean"`
	Unacked     int64     `json:"unacked,omitempty"`
	ResumeAfter time.Time `json:"resumeAfter,omitzero"`
	// Unsettled reports a dry run on a state whose latest attempt did not
	// end cleanly: records it had on their way may land after the dry run
	// searched the targets, so "would send" may count them.
	Unsettled bool `json:"unsettled,omitempty"`
	// Waited is how long this attempt waited for the records of the
	// previous one (see ReplayConfig.OnWait).
	Waited time.Duration `json:"waitedNs,omitempty"`
	// Elapsed is the time this attempt took.
	Elapsed time.Duration `json:"elapsedNs"`
	// Finished is when the run finished (ResultDone, ResultAlreadyDone).
	Finished time.Time `json:"finished,omitzero"`
}

// Incomplete reports whether the run finished without replaying every
// record it selected: some were skipped or lost.
func (res *Result) Incomplete() bool { return res.Totals.SkippedTotal() > 0 || res.Totals.Lost > 0 }

// finish ends the attempt after Scan returned err. It settles the
// producer within FlushTimeout (also after an interrupt). Settled, it
// writes a last checkpoint (status done when err is nil) that says the
// attempt ended cleanly. Not settled, it closes the producer, so that
// nothing more is written, and records in the state file when the last
// record was handed over, for the resume's wait. It reports the final
// progress and returns the Result with the error to report.
func (r *replayer) finish(ctx context.Context, err error) (*Result, error) {
	interrupted := err != nil && ctx.Err() != nil && errors.Is(err, ctx.Err())
	if r.cfg.DryRun {
		r.res.Status = ResultDryRun
		if err != nil {
			r.res.Status = ResultFailed
		}
		if interrupted {
			r.res.Status = ResultInterrupted
		}
		return r.result(err, interrupted)
	}
	bg, cancel := context.WithTimeout(r.pctx, r.cfg.FlushTimeout)
	defer cancel()
	serr := r.settle(bg)
	clean := serr == nil
	if clean {
		if err == nil {
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
		}
		r.ending = true
		if cerr := r.checkpoint(bg, ""); cerr != nil {
			r.st.Status = StatusRunning
			clean, serr = false, cerr
		}
		r.ending = false
	}
	if !clean {
		r.closeProducer()
		unacked := r.unacked()
		if werr := r.writeExit(unacked); werr != nil {
			serr = errors.Join(serr, werr)
		}
		r.res.Unacked = unacked
		if unacked > 0 && !r.lastHandOver.IsZero() {
			r.res.ResumeAfter = r.lastHandOver.Add(r.bound + r.cfg.ReplicationMargin)
		}
	}
	r.res.Clean = clean
	switch {
	case err == nil && clean:
		r.res.Status, r.res.Finished = ResultDone, r.st.Updated
	case interrupted:
		r.res.Status = ResultInterrupted
	default:
		r.res.Status = ResultFailed
	}
	if serr != nil && (err == nil || serr.Error() != err.Error()) {
		err = errors.Join(err, serr)
	}
	return r.result(err, interrupted)
}

// result reports the final progress and returns the Result and err.
func (r *replayer) result(err error, interrupted bool) (*Result, error) {
	r.cfg.Progress.Finish(r.snapshot())
	r.res.Elapsed = r.cfg.Clock.Now().Sub(r.started)
	r.mu.Lock()
	r.res.Totals = r.totalsLocked()
	res := r.res
	r.mu.Unlock()
	if interrupted {
		err = fmt.Errorf("%w: %w", ErrInterrupted, err)
	}
	return &res, err
}

// totalsLocked returns a copy of the run's totals that shares nothing
// with them; r.mu must be held, so that no produce callback writes them
// meanwhile.
func (r *replayer) totalsLocked() Totals {
	t := r.st.Totals
	t.SentTo = maps.Clone(t.SentTo)
	t.TierGroups = maps.Clone(t.TierGroups)
	t.Skipped = maps.Clone(t.Skipped)
	t.SkippedRecords = slices.Clone(t.SkippedRecords)
	t.LostRanges = slices.Clone(t.LostRanges)
	return t
}

// closeProducer closes the producer once: records it still holds fail
// (kgo.ErrClientClosed) and no request is written any more.
func (r *replayer) closeProducer() {
	r.closeOnce.Do(func() {
		if r.prod != nil {
			r.prod.Close()
		}
	})
}

func (r *replayer) snapshot() Snapshot {
	var total int64
	for _, ps := range r.st.Sources {
		for _, pos := range ps {
			total += pos.End - pos.Start
		}
	}
	elapsed := r.cfg.Clock.Now().Sub(r.started)
	s := Snapshot{Done: r.done, Total: total, Elapsed: elapsed}
	if elapsed > 0 {
		s.Rate = float64(r.done-r.doneAt0) / elapsed.Seconds()
	}
	r.mu.Lock()
	s.Sent, s.AlreadySent, s.Skipped = r.st.Totals.Sent, r.st.Totals.AlreadySent, r.st.Totals.SkippedTotal()
	r.mu.Unlock()
	return s
}
