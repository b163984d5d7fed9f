package console

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/kretry/kretry/internal/dltops"
)

// maxJobs bounds the jobs the console remembers; the oldest finished ones
// are forgotten first.
const maxJobs = 100

// job is one replay or dry run started from the replay form. It runs
// dltops.Replay, the engine of "kretry dlt replay", and is its Progress.
type job struct {
	ID      string
	Run     string
	DryRun  bool
	Topic   string
	Values  url.Values // the filters as given
	Filter  dltops.Filter
	To      string
	Rate    float64
	Tiers   map[dltops.ListenerKey]string
	Started time.Time
	// DryRunID is, for a replay, the dry run it was confirmed from.
	DryRunID string

	cancel context.CancelFunc

	mu        sync.Mutex // guards what follows
	snap      dltops.Snapshot
	done      bool
	res       *dltops.Result
	err       error
	waitUntil time.Time
	waitWhy   string
	ended     time.Time
}

// Update records where the replay stands.
func (j *job) Update(s dltops.Snapshot) {
	j.mu.Lock()
	j.snap = s
	j.mu.Unlock()
}

// Finish records the last snapshot.
func (j *job) Finish(s dltops.Snapshot) { j.Update(s) }

func (j *job) onWait(until time.Time, why string) {
	j.mu.Lock()
	j.waitUntil, j.waitWhy = until, why
	j.mu.Unlock()
}

func newID() string {
	var b [12]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// replayForm is the data of the replay form.
type replayForm struct {
	Topic    string
	Values   url.Values
	Run      string
	To       string
	Rate     string
	Problems []string
	Params   []string
}

func (s *Server) handleReplayForm(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	f := replayForm{Topic: q.Get("topic"), Values: url.Values{}, Run: q.Get("run"), To: q.Get("to"), Rate: q.Get("rate"),
		Params: filterParams}
	for _, p := range filterParams {
		f.Values[p] = q[p]
	}
	if f.Run == "" {
		f.Run = "console-" + s.now().UTC().Format("20060102-150405")
	}
	s.render(w, r, http.StatusOK, "replay", "Replay", f)
}

// errStatus is an error with the HTTP status to answer it with.
type errStatus struct {
	code int
	err  error
}

func (e *errStatus) Error() string { return e.err.Error() }
func (e *errStatus) Unwrap() error { return e.err }

func badRequest(format string, args ...any) error {
	return &errStatus{http.StatusBadRequest, fmt.Errorf(format, args...)}
}

// handleReplayStart starts a dry run (action=dry-run), or the replay a
// finished dry run shows (action=replay, with dry_run naming it and the
// run ID typed again in confirm), and redirects to its job page.
func (s *Server) handleReplayStart(w http.ResponseWriter, r *http.Request) {
	var j *job
	var err error
	switch a := r.PostForm.Get("action"); a {
	case "dry-run":
		j, err = s.dryRunJob(r)
	case "replay":
		j, err = s.replayJob(r)
	default:
		err = badRequest("field action: want dry-run or replay, got %q", a)
	}
	if err != nil {
		code := http.StatusBadRequest
		var es *errStatus
		if errors.As(err, &es) {
			code = es.code
		}
		s.fail(w, r, code, err)
		return
	}
	s.start(j)
	http.Redirect(w, r, "/jobs/"+j.ID, http.StatusSeeOther)
}

// dryRunJob makes the dry run of the form's selection.
func (s *Server) dryRunJob(r *http.Request) (*job, error) {
	form := r.PostForm
	now := s.now()
	q, err := parseDLTQuery(form, now)
	if err != nil {
		return nil, badRequest("%v", err)
	}
	if form.Get("page") != "" {
		return nil, badRequest("field page: not a replay filter")
	}
	run := strings.TrimSpace(form.Get("run"))
	if err := dltops.ValidRunID(run); err != nil {
		return nil, badRequest("field run: %v", err)
	}
	j := &job{ID: newID(), Run: run, DryRun: true, Topic: q.Topic, Values: q.Values, Filter: q.Filter,
		To: strings.TrimSpace(form.Get("to")), Started: now}
	if j.To == q.Topic {
		return nil, badRequest("field to: %s is the DLT being replayed", j.To)
	}
	if rs := form.Get("rate"); rs != "" {
		if j.Rate, err = strconv.ParseFloat(rs, 64); err != nil || j.Rate < 0 {
			return nil, badRequest("field rate: want records per second >= 0 (0: no limit), got %q", rs)
		}
	}
	return j, nil
}

// replayJob makes the replay of a finished dry run, once confirmed.
func (s *Server) replayJob(r *http.Request) (*job, error) {
	if !s.cfg.AllowReplay {
		return nil, &errStatus{http.StatusForbidden, ErrReadOnly}
	}
	s.mu.Lock()
	dry := s.jobs[r.PostForm.Get("dry_run")]
	s.mu.Unlock()
	if dry == nil || !dry.DryRun {
		return nil, badRequest("field dry_run: no such dry run; run a dry run first, then confirm its replay")
	}
	dry.mu.Lock()
	ok := dry.done && dry.err == nil && dry.res != nil && dry.res.Status == dltops.ResultDryRun
	tiers := dry.Tiers
	dry.mu.Unlock()
	if !ok {
		return nil, badRequest("field dry_run: dry run %s has not finished without error; its page says how it stands", dry.ID)
	}
	if got := r.PostForm.Get("confirm"); got != dry.Run {
		return nil, badRequest("field confirm: type the run ID %q exactly to confirm the replay, got %q", dry.Run, got)
	}
	j := &job{ID: newID(), Run: dry.Run, Topic: dry.Topic, Values: dry.Values, Filter: dry.Filter, To: dry.To,
		Rate: dry.Rate, Tiers: tiers, Started: s.now(), DryRunID: dry.ID}
	return j, nil
}

// start registers j and runs it until it ends or the console closes.
func (s *Server) start(j *job) {
	ctx, cancel := context.WithCancel(s.ctx)
	j.cancel = cancel
	s.mu.Lock()
	if len(s.jobs) >= maxJobs {
		s.forgetOldestLocked()
	}
	s.jobs[j.ID] = j
	s.mu.Unlock()
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		defer cancel()
		res, err := s.runJob(ctx, j)
		j.mu.Lock()
		j.res, j.err, j.done, j.ended = res, err, true, time.Now()
		j.mu.Unlock()
		level := "replay finished"
		if err != nil {
			level = "replay stopped"
		}
		attrs := []any{"job", j.ID, "run", j.Run, "dry_run", j.DryRun, "dlt", j.Topic}
		if res != nil {
			attrs = append(attrs, "status", res.Status, "sent", res.Totals.Sent)
		}
		if err != nil {
			attrs = append(attrs, "error", err.Error())
		}
		s.cfg.Logger.Info(level, attrs...)
	}()
}

func (s *Server) forgetOldestLocked() {
	var oldest *job
	for _, j := range s.jobs {
		j.mu.Lock()
		done := j.done
		j.mu.Unlock()
		if done && (oldest == nil || j.Started.Before(oldest.Started)) {
			oldest = j
		}
	}
	if oldest != nil {
		delete(s.jobs, oldest.ID)
	}
}

// runJob runs j's replay. A dry run first finds the first retry tier of
// every listener its records came from (firstTiers); the replay uses the
// tiers its dry run found, so that it sends what the dry run showed.
func (s *Server) runJob(ctx context.Context, j *job) (*dltops.Result, error) {
	if j.DryRun && j.To == "" {
		tiers, err := s.replayTiers(ctx, j)
		if err != nil {
			return nil, err
		}
		j.mu.Lock()
		j.Tiers = tiers
		j.mu.Unlock()
	}
	stateDir := s.cfg.StateDir
	return dltops.Replay(ctx, dltops.ReplayConfig{Run: j.Run, DLTs: []string{j.Topic}, Filter: j.Filter, To: j.To,
		FirstTiers: j.Tiers, DryRun: j.DryRun, Rate: j.Rate, StateDir: stateDir, ClientOpts: s.readerOpts(),
		Decoder: s.cfg.Decoder, Progress: j, OnWait: j.onWait})
}

// replayTiers returns the first retry tiers of the listeners whose
// records j selects, by the plans found on the cluster.
func (s *Server) replayTiers(ctx context.Context, j *job) (map[dltops.ListenerKey]string, error) {
	listed, err := s.adm.ListTopics(ctx)
	if err != nil {
		return nil, fmt.Errorf("listing the topics: %w", err)
	}
	plans := findPlans(listed.Names(), s.cfg.Naming)
	rep, err := dltops.Inspect(ctx, dltops.InspectConfig{DLTs: []string{j.Topic}, Filter: j.Filter,
		Decoder: s.cfg.Decoder, ClientOpts: s.readerOpts()})
	if err != nil {
		return nil, fmt.Errorf("reading %s for the groups of its records: %w", j.Topic, err)
	}
	var keys []dltops.ListenerKey
	for _, g := range rep.Groups {
		if g.ConsumerGroup != dltops.LabelNone && g.ConsumerGroup != dltops.LabelUnknown {
			keys = append(keys, dltops.ListenerKey{Topic: g.OriginalTopic, Group: g.ConsumerGroup})
		}
	}
	return firstTiers(plans, keys), nil
}

// jobPage is the data of a job's page.
type jobPage struct {
	ID, Run, Topic, To string
	DryRun             bool
	DryRunID           string
	Filters            []string
	Rate               float64
	Tiers              []string
	Started            time.Time
	Ended              time.Time
	Done               bool
	Snap               dltops.Snapshot
	Percent            int64
	Res                *dltops.Result
	Err                string
	Interrupted        bool
	WaitUntil          time.Time
	WaitWhy            string
	Targets            []target
	Skipped            []string
	CanReplay          bool
}

// target is one target topic of a summary.
type target struct {
	Topic   string
	Count   int64
	Readers string
}

// job returns the job of the request's {id}, or answers 404 and returns
// nil.
func (s *Server) job(w http.ResponseWriter, r *http.Request) *job {
	s.mu.Lock()
	j := s.jobs[r.PathValue("id")]
	s.mu.Unlock()
	if j == nil {
		s.fail(w, r, http.StatusNotFound, errors.New("no such job (the console forgets its jobs when it restarts)"))
	}
	return j
}

func (s *Server) handleJob(w http.ResponseWriter, r *http.Request) {
	j := s.job(w, r)
	if j == nil {
		return
	}
	p := jobPage{ID: j.ID, Run: j.Run, Topic: j.Topic, To: j.To, DryRun: j.DryRun, DryRunID: j.DryRunID, Rate: j.Rate,
		Started: j.Started}
	for k, vs := range j.Values {
		p.Filters = append(p.Filters, k+" = "+strings.Join(vs, ", "))
	}
	slices.Sort(p.Filters)
	j.mu.Lock()
	p.Done, p.Snap, p.Res, p.Ended, p.WaitUntil, p.WaitWhy = j.done, j.snap, j.res, j.ended, j.waitUntil, j.waitWhy
	for _, k := range slices.SortedFunc(maps.Keys(j.Tiers), compareKeys) {
		t := j.Tiers[k]
		if t == "" {
			t = k.Topic + " (its plan has no retry tier)"
		}
		p.Tiers = append(p.Tiers, k.String()+" → "+t)
	}
	if j.err != nil {
		p.Err = j.err.Error()
		p.Interrupted = errors.Is(j.err, dltops.ErrInterrupted)
	}
	j.mu.Unlock()
	p.Percent = percent(p.Snap.Done, p.Snap.Total)
	if res := p.Res; res != nil {
		counts := res.Totals.SentTo
		if p.DryRun {
			counts = res.WouldSendTo
		}
		for _, t := range slices.Sorted(maps.Keys(counts)) {
			p.Targets = append(p.Targets, target{Topic: t, Count: counts[t], Readers: readers(res, t)})
		}
		for _, reason := range slices.Sorted(maps.Keys(res.Totals.Skipped)) {
			p.Skipped = append(p.Skipped, fmt.Sprintf("%s: %d", reason, res.Totals.Skipped[reason]))
		}
		p.CanReplay = p.DryRun && p.Err == "" && res.Status == dltops.ResultDryRun
	}
	s.render(w, r, http.StatusOK, "job", "Replay "+j.Run, p)
}

func compareKeys(a, b dltops.ListenerKey) int {
	if c := strings.Compare(a.Topic, b.Topic); c != 0 {
		return c
	}
	return strings.Compare(a.Group, b.Group)
}

// readers says which consumer groups see the records sent to topic.
func readers(res *dltops.Result, topic string) string {
	if gs, ok := res.Totals.TierGroups[topic]; ok {
		return "only group " + strings.Join(gs, ", ") + " (its first retry tier)"
	}
	gs := res.Readers[topic]
	out := "every group reading " + topic
	if len(gs) > 0 {
		out += ": " + strings.Join(gs, ", ")
	}
	if res.ReadersError != "" {
		out += " (could not list them all: " + res.ReadersError + ")"
	}
	return out
}

func (s *Server) handleJobCancel(w http.ResponseWriter, r *http.Request) {
	j := s.job(w, r)
	if j == nil {
		return
	}
	j.cancel()
	http.Redirect(w, r, "/jobs/"+j.ID, http.StatusSeeOther)
}
