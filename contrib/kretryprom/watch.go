package kretryprom

import (
	"sync"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/kretry/kretry/listener"
	"github.com/kretry/kretry/strategy"
)

// Watch adds l's partitions to the gauges: each gather of the registry
// reads l.Partitions() and, with the TierLag option, measures l's retry
// tiers (at most once per TierLagInterval). Every topic of l's plan is
// reported, with zeros while l is not running. It also creates l's
// counters at zero, so that they exist before the first event.
//
// Watch may be called before or after l.Run starts. The function it
// returns stops watching l; a listener that has finished running reports
// zeros until then. Listeners watched together add up: two members of one
// group in one process report the sum of their partitions.
func (m *Metrics) Watch(l *listener.Listener) (unwatch func()) {
	plan := l.Plan()
	for _, t := range plan.Topics() {
		role, _ := plan.Lookup(t)
		s := m.set(t, role)
		if role == strategy.RoleDLT {
			s.dltFailure()
		}
	}
	w := &watched{l: l, plan: plan, group: l.Group()}
	m.watcher.add(w)
	var once sync.Once
	return func() { once.Do(func() { m.watcher.remove(w) }) }
}

// watched is one listener given to Watch.
type watched struct {
	l     *listener.Listener
	plan  strategy.Plan
	group string
}

// watcher is the collector of the gauges: it reads the watched listeners
// when the registry is gathered.
type watcher struct {
	m     *Metrics
	owned *prometheus.Desc
	pause *prometheus.Desc
	held  *prometheus.Desc
	unack *prometheus.Desc
	lag   *tierLag // nil without the TierLag option

	mu sync.Mutex
	ls []*watched
}

func newWatcher(m *Metrics) *watcher {
	ns := m.cfg.namespace
	desc := func(name, help string, labels ...string) *prometheus.Desc {
		return prometheus.NewDesc(prometheus.BuildFQName(ns, "", name), help, labels, nil)
	}
	w := &watcher{m: m,
		owned: desc("partitions_owned", "Partitions the watched listeners own, by topic and role.", "topic", "role"),
		pause: desc("partitions_paused",
			"Partitions paused in the listeners' Kafka clients: retry tiers waiting for their head record's due time, "+
				"partitions working off a backlog, and DLT partitions between handler attempts.", "topic", "role"),
		held: desc("records_held", "Records fetched by the listeners and not yet handled.", "topic", "role"),
		unack: desc("publishes_unacked",
			"Publishes to retry tiers and DLTs that Kafka has not yet acknowledged; nothing is committed past them.", "topic", "role"),
	}
	if m.cfg.lagAdmin != nil {
		w.lag = newTierLag(m.cfg, desc)
	}
	return w
}

func (w *watcher) add(l *watched) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.ls = append(w.ls, l)
}

func (w *watcher) remove(l *watched) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for i, x := range w.ls {
		if x == l {
			w.ls = append(w.ls[:i:i], w.ls[i+1:]...)
			return
		}
	}
}

func (w *watcher) snapshot() []*watched {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]*watched(nil), w.ls...)
}

// Describe implements prometheus.Collector.
func (w *watcher) Describe(ch chan<- *prometheus.Desc) {
	ch <- w.owned
	ch <- w.pause
	ch <- w.held
	ch <- w.unack
	if w.lag != nil {
		w.lag.describe(ch)
	}
}

// Collect implements prometheus.Collector.
func (w *watcher) Collect(ch chan<- prometheus.Metric) {
	type counts struct{ owned, paused, held, unacked int }
	ls := w.snapshot()
	sums := map[setKey]*counts{}
	var keys []setKey // in plan order, for a stable output
	at := func(k setKey) *counts {
		c := sums[k]
		if c == nil {
			c = &counts{}
			sums[k] = c
			keys = append(keys, k)
		}
		return c
	}
	for _, x := range ls {
		for _, t := range x.plan.Topics() {
			role, _ := x.plan.Lookup(t)
			at(setKey{t, role})
		}
		for _, p := range x.l.Partitions() {
			c := at(setKey{p.Topic, p.Role})
			if p.Owned {
				c.owned++
				c.held += p.Held
				c.unacked += p.Unacked
			}
			if p.Paused {
				c.paused++
			}
		}
	}
	for _, k := range keys {
		c, role := sums[k], k.role.String()
		ch <- prometheus.MustNewConstMetric(w.owned, prometheus.GaugeValue, float64(c.owned), k.topic, role)
		ch <- prometheus.MustNewConstMetric(w.pause, prometheus.GaugeValue, float64(c.paused), k.topic, role)
		ch <- prometheus.MustNewConstMetric(w.held, prometheus.GaugeValue, float64(c.held), k.topic, role)
		ch <- prometheus.MustNewConstMetric(w.unack, prometheus.GaugeValue, float64(c.unacked), k.topic, role)
	}
	if w.lag != nil {
		w.lag.collect(ch, ls)
	}
}
