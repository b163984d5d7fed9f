package kretryprom

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/kretry/kretry/internal/tierlag"
)

// States of kretry_tier_records_waiting. They split the records waiting in
// a tier (its end offsets minus the group's committed offsets), so their
// sum is the tier's lag.
const (
	stateNotDue  = "not_due" // due later; the listener delivers them then
	stateOverdue = "overdue" // due already; the listener should have delivered them
	stateCorrupt = "corrupt" // kretry headers that do not decode; they will be dead-lettered
	stateUnread  = "unread"  // not read (no reader options, TierLagMaxRead, a read error), or offsets without a record
)

// tierLag measures the retry tiers of the watched listeners' groups and
// keeps each measurement for the configured interval.
type tierLag struct {
	cfg     cfg
	waiting *prometheus.Desc
	oldest  *prometheus.Desc
	errDesc *prometheus.Desc
	errs    atomic.Uint64

	mu    sync.Mutex
	cache map[lagKey]*lagEntry
}

// lagKey identifies one measurement: a group and the tiers it consumes.
// Listeners that share both (members of one group) share the measurement.
type lagKey struct {
	group  string
	topics string // the tier topics, joined with "\x00"
}

type lagEntry struct {
	group  string
	topics []string

	mu  sync.Mutex
	at  time.Time // when rep was measured; zero before the first time
	rep *tierlag.Report
}

func newTierLag(c cfg, desc func(name, help string, labels ...string) *prometheus.Desc) *tierLag {
	return &tierLag{cfg: c, cache: map[lagKey]*lagEntry{},
		waiting: desc("tier_records_waiting",
			"Records the listener's group has not yet consumed from a retry tier (end offset minus committed offset), "+
				"by state: not_due (due later), overdue (due already), corrupt (undecodable kretry headers) "+
				"or unread (not read to find out, or offsets without a record). As of the last measurement.",
			"group", "topic", "state"),
		oldest: desc("tier_oldest_overdue_seconds",
			"How long the most overdue record of a retry tier had been due at the last measurement; 0 when none is overdue.",
			"group", "topic"),
		errDesc: desc("tier_lag_errors_total",
			"Tier lag measurements that failed or were incomplete (a topic or partition could not be listed)."),
	}
}

func (t *tierLag) describe(ch chan<- *prometheus.Desc) {
	ch <- t.waiting
	ch <- t.oldest
	ch <- t.errDesc
}

// collect measures what needs measuring, in parallel, and sends the
// metrics of every group of ls that has retry tiers.
func (t *tierLag) collect(ch chan<- prometheus.Metric, ls []*watched) {
	var entries []*lagEntry
	t.mu.Lock()
	keep := map[lagKey]bool{}
	for _, x := range ls {
		var topics []string
		for _, tier := range x.plan.Tiers {
			topics = append(topics, tier.Topic)
		}
		if len(topics) == 0 {
			continue
		}
		k := lagKey{x.group, strings.Join(topics, "\x00")}
		if keep[k] {
			continue
		}
		keep[k] = true
		e := t.cache[k]
		if e == nil {
			e = &lagEntry{group: x.group, topics: topics}
			t.cache[k] = e
		}
		entries = append(entries, e)
	}
	for k := range t.cache {
		if !keep[k] {
			delete(t.cache, k)
		}
	}
	t.mu.Unlock()

	reps := make([]*tierlag.Report, len(entries))
	var wg sync.WaitGroup
	for i, e := range entries {
		wg.Go(func() { reps[i] = t.measure(e) })
	}
	wg.Wait()

	for _, rep := range reps {
		if rep == nil {
			continue
		}
		for _, tl := range rep.Topics {
			if !listed(tl) {
				continue // absent rather than under-reported
			}
			c := tl.Total()
			unread := max(c.Waiting-c.NotDue-c.Overdue-c.Corrupt, 0)
			for _, s := range []struct {
				state string
				n     int64
			}{{stateNotDue, c.NotDue}, {stateOverdue, c.Overdue}, {stateCorrupt, c.Corrupt}, {stateUnread, unread}} {
				ch <- prometheus.MustNewConstMetric(t.waiting, prometheus.GaugeValue, float64(s.n), rep.Group, tl.Topic, s.state)
			}
			ch <- prometheus.MustNewConstMetric(t.oldest, prometheus.GaugeValue,
				c.OldestOverdue(rep.Now).Seconds(), rep.Group, tl.Topic)
		}
	}
	ch <- prometheus.MustNewConstMetric(t.errDesc, prometheus.CounterValue, float64(t.errs.Load()))
}

// measure returns e's measurement, measuring anew when it is older than
// the interval. It returns nil when the last measurement failed.
func (t *tierLag) measure(e *lagEntry) *tierlag.Report {
	e.mu.Lock()
	defer e.mu.Unlock()
	if !e.at.IsZero() && time.Since(e.at) < t.cfg.lagInterval {
		return e.rep
	}
	ctx, cancel := context.WithTimeout(context.Background(), t.cfg.lagTimeout)
	defer cancel()
	rep, err := tierlag.Measure(ctx, t.cfg.lagAdmin, e.group, e.topics, tierlag.Options{
		ReaderOpts: t.cfg.lagReader,
		MaxRead:    t.cfg.lagMaxRead,
		// Reading gives up before the measurement's deadline, so that
		// the offsets listed are still reported.
		IdleTimeout: t.cfg.lagTimeout / 2,
	})
	// Only a complete measurement is kept for the interval: after a
	// failure, or while a tier does not exist yet, the next gather
	// measures again.
	e.at, e.rep = time.Time{}, nil
	if err != nil {
		t.errs.Add(1)
		return nil
	}
	if incomplete(rep) {
		t.errs.Add(1)
	}
	if complete := !slices.ContainsFunc(rep.Topics, func(tl tierlag.TopicLag) bool { return !listed(tl) }); complete {
		e.at, e.rep = time.Now(), &rep
	}
	return &rep
}

// listed reports whether the offsets of every partition of tl were
// listed, so that its waiting records can be reported. A record that could
// not be read (a read error) is reported as unread.
func listed(tl tierlag.TopicLag) bool {
	if tl.Err != nil {
		return false
	}
	for _, p := range tl.Partitions {
		if p.Err != nil && p.Stopped != tierlag.StopError {
			return false
		}
	}
	return true
}

// incomplete reports whether a topic or partition of rep could not be
// measured. A tier that does not exist yet (the listener creates it when
// it starts) is not an error; it has no metrics.
func incomplete(rep tierlag.Report) bool {
	for _, tl := range rep.Topics {
		if tl.Err != nil && !errors.Is(tl.Err, kerr.UnknownTopicOrPartition) {
			return true
		}
		for _, p := range tl.Partitions {
			if p.Err != nil {
				return true
			}
		}
	}
	return false
}
