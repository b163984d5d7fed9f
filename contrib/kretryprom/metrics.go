package kretryprom

import (
	"errors"
	"fmt"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/plugin/kprom"

	"github.com/kretry/kretry/listener"
	"github.com/kretry/kretry/strategy"
)

// Metrics exports the metrics of kretry listeners to one Prometheus
// registry. It is a listener.Hook (give it to listener.Hooks); Watch adds
// the partition gauges of a listener and ClientMetrics the Kafka client's
// metrics. One Metrics serves any number of listeners; it is safe for
// concurrent use. Create it with New.
type Metrics struct {
	cfg cfg
	reg prometheus.Registerer

	records            *prometheus.CounterVec
	deadLettered       *prometheus.CounterVec
	dropped            *prometheus.CounterVec
	forwardFailures    *prometheus.CounterVec
	dltHandlerFailures *prometheus.CounterVec
	handlerDuration    *prometheus.HistogramVec
	lateness           *prometheus.HistogramVec
	batchRecords       *prometheus.HistogramVec
	batchDuration      *prometheus.HistogramVec
	batchInvalid       *prometheus.CounterVec
	transactions       *prometheus.CounterVec
	txnCommitted       prometheus.Counter
	txnAborted         prometheus.Counter

	sets    cowMap[setKey, *topicSet]
	watcher *watcher
}

var _ listener.Hook = (*Metrics)(nil)

// New creates the metrics and registers them with reg, which must not be
// nil: use a registry of your own (prometheus.NewRegistry) or
// prometheus.DefaultRegisterer. It fails when an option is invalid or when
// reg refuses a metric, for example because another Metrics with the same
// namespace is registered there already; nothing stays registered then.
func New(reg prometheus.Registerer, opts ...Opt) (*Metrics, error) {
	c := defaultCfg()
	for _, o := range opts {
		o.apply(&c)
	}
	err := c.validate()
	if reg == nil {
		err = errors.Join(errors.New("kretryprom: New: the registerer must not be nil (use prometheus.NewRegistry() or prometheus.DefaultRegisterer)"), err)
	}
	if err != nil {
		return nil, err
	}
	ns := c.namespace
	counter := func(name, help string, labels ...string) *prometheus.CounterVec {
		return prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Name: name, Help: help}, labels)
	}
	m := &Metrics{
		cfg: c,
		reg: reg,
		records: counter("records_total",
			"Records that reached an outcome, by the topic they were read from, its role in the plan (main, tier, dlt) "+
				"and the outcome: handled (the handler or DLT handler returned nil), retried (published to a retry tier), "+
				"dead_lettered (published to a DLT), dropped (ended without a DLT, or the DLT handler gave up), "+
				"skipped (a retry or DLT record of another consumer group, committed without a handler call) "+
				"or followed (key order: published to a retry tier behind an earlier record of its key, without a handler call).",
			"topic", "role", "outcome"),
		deadLettered: counter("dead_lettered_total",
			"Records published to a dead-letter topic, by source topic, its role, the DLT and the reason (exhausted, permanent, timeout, excluded:<matcher>, ...).",
			"topic", "role", "dlt", "reason"),
		dropped: counter("dropped_total",
			"Records that ended without being published to a DLT (no DLT configured, or the DLT handler gave up), by topic, role and reason.",
			"topic", "role", "reason"),
		forwardFailures: counter("forward_failures_total",
			"Publishes to a retry tier or DLT that failed; each is retried, and nothing is committed past it meanwhile.",
			"topic", "target"),
		dltHandlerFailures: counter("dlt_handler_failures_total",
			"DLT handler calls that returned an error, by DLT.",
			"topic"),
		handlerDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: ns, Name: "handler_duration_seconds",
			Help: "Run time of handler calls (role main and tier) and DLT handler calls (role dlt), successful or not; " +
				"batch handler calls are in batch_duration_seconds.",
			Buckets: c.handlerBuckets}, []string{"topic", "role"}),
		lateness: prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: ns, Name: "delivery_lateness_seconds",
			Help:    "How long after its due time a record from a retry tier was handed to the handler.",
			Buckets: c.latenessBuckets}, []string{"topic"}),
		batchRecords: prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: ns, Name: "batch_records",
			Help:    "Records given to each batch handler call, by the topic they were read from and its role (main, tier).",
			Buckets: c.batchBuckets}, []string{"topic", "role"}),
		batchDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: ns, Name: "batch_duration_seconds",
			Help:    "Run time of batch handler calls, successful or not, by topic and role (main, tier).",
			Buckets: c.handlerBuckets}, []string{"topic", "role"}),
		batchInvalid: counter("batch_errors_invalid_total",
			"Records that a batch handler's BatchErrors named wrongly: not in the batch, or named twice. A bug in the handler.",
			"topic", "role"),
		transactions: counter("transactions_total",
			"Exactly-once transactions ended, by outcome: committed, or aborted (a failed publish, a revoke or a lost partition; their records are delivered again).",
			"outcome"),
	}
	m.txnCommitted = m.transactions.WithLabelValues("committed")
	m.txnAborted = m.transactions.WithLabelValues("aborted")
	m.watcher = newWatcher(m)
	cols := []struct {
		name string
		col  prometheus.Collector
	}{
		{"records_total", m.records}, {"dead_lettered_total", m.deadLettered}, {"dropped_total", m.dropped},
		{"forward_failures_total", m.forwardFailures}, {"dlt_handler_failures_total", m.dltHandlerFailures},
		{"handler_duration_seconds", m.handlerDuration}, {"delivery_lateness_seconds", m.lateness},
		{"batch_records", m.batchRecords}, {"batch_duration_seconds", m.batchDuration},
		{"batch_errors_invalid_total", m.batchInvalid}, {"transactions_total", m.transactions},
		{"partition and tier gauges", m.watcher},
	}
	for i, c := range cols {
		if err := reg.Register(c.col); err != nil {
			for _, done := range cols[:i] {
				reg.Unregister(done.col)
			}
			return nil, fmt.Errorf("kretryprom: registering %s (namespace %q): %w", c.name, ns, err)
		}
	}
	return m, nil
}

// ClientMetrics returns franz-go's Kafka client metrics (package kprom),
// registered with the registerer and namespace of m when the client is
// created: connections, bytes and errors per broker, bytes fetched and
// produced per topic, buffered records (kprom's defaults; add
// kprom.FetchAndProduceDetail for record and batch counts, or
// kprom.Histograms for request latencies). Give it to one listener with
// listener.ClientOpts(kgo.WithHooks(m.ClientMetrics())). opts are kprom's
// options and come last, so they can change the registerer, namespace,
// buckets or labels.
//
// The result serves one client at a time (a listener's client, or before it
// the short-lived admin client Run uses to check topics): kprom registers
// its metrics when a client is created and unregisters them when it is
// closed, and panics if they are registered already. Two listeners in one
// process therefore need a ClientMetrics each, told apart by a label
// given to both, for example
// kprom.WithStaticLabel(prometheus.Labels{"listener": "orders"}).
func (m *Metrics) ClientMetrics(opts ...kprom.Opt) *kprom.Metrics {
	base := []kprom.Opt{kprom.Registerer(m.reg)}
	if g, ok := m.reg.(prometheus.Gatherer); ok {
		base = append(base, kprom.Gatherer(g))
	}
	return kprom.NewMetrics(m.cfg.namespace, append(base, opts...)...)
}

// Outcome label values of kretry_records_total.
const (
	outcomeHandled      = "handled"
	outcomeRetried      = "retried"
	outcomeDeadLettered = "dead_lettered"
	outcomeDropped      = "dropped"
	outcomeSkipped      = "skipped"
	outcomeFollowed     = "followed"
)

// maxReasons bounds the label values of reasons, DLTs and publish targets
// kept per topic; further ones are counted under reasonOther. kretry's
// reasons are a small set and matcher names come from configuration, so
// this only guards against a future reason that carries free text.
const (
	maxReasons  = 64
	reasonOther = "other"
)

// setKey identifies the label-resolved metrics of one topic.
type setKey struct {
	topic string
	role  strategy.TopicRole
}

// topicSet holds the metrics of one topic with their label values
// resolved, so that an event costs a map read and atomic adds.
type topicSet struct {
	m     *Metrics
	topic string
	role  string

	handled, retried, deadLettered, dropped prometheus.Counter
	skipped                                 prometheus.Counter // tier and DLT topics only
	followed                                prometheus.Counter // resolved on first use: key order only
	duration                                prometheus.Observer
	lateness                                prometheus.Observer // tier topics only

	once        sync.Once
	dltFailures prometheus.Counter // resolved on first use: DLTs only

	// Resolved on the first batch event, so that topics read one record at
	// a time get no batch series.
	batchOnce               sync.Once
	batchRecords, batchTime prometheus.Observer
	batchInvalid            prometheus.Counter

	dead  cowMap[dltReason, prometheus.Counter]
	drops cowMap[string, prometheus.Counter]
	fwd   cowMap[string, prometheus.Counter]
}

type dltReason struct{ dlt, reason string }

func (m *Metrics) newSet(k setKey) *topicSet {
	role := k.role.String()
	s := &topicSet{m: m, topic: k.topic, role: role,
		handled:  m.records.WithLabelValues(k.topic, role, outcomeHandled),
		dropped:  m.records.WithLabelValues(k.topic, role, outcomeDropped),
		duration: m.handlerDuration.WithLabelValues(k.topic, role),
	}
	// Only the outcomes a role can have get a series; DLT records are
	// never retried nor dead-lettered again.
	if k.role != strategy.RoleDLT {
		s.retried = m.records.WithLabelValues(k.topic, role, outcomeRetried)
		s.deadLettered = m.records.WithLabelValues(k.topic, role, outcomeDeadLettered)
	}
	if k.role == strategy.RoleTier {
		s.lateness = m.lateness.WithLabelValues(k.topic)
	}
	// Records of other groups are only ever found on the shared tiers and
	// DLTs.
	if k.role != strategy.RoleMain {
		s.skipped = m.records.WithLabelValues(k.topic, role, outcomeSkipped)
	}
	return s
}

// set returns the metrics of topic in role, creating them on first use.
func (m *Metrics) set(topic string, role strategy.TopicRole) *topicSet {
	return m.sets.get(setKey{topic, role}, m.newSet)
}

func (s *topicSet) counter(c *prometheus.Counter, outcome string) prometheus.Counter {
	if *c == nil { // an outcome the role should not have: count it anyway
		return s.m.records.WithLabelValues(s.topic, s.role, outcome)
	}
	return *c
}

func (s *topicSet) deadLetter(dlt, reason string) prometheus.Counter {
	return bounded(&s.dead, dltReason{dlt, reason}, dltReason{reasonOther, reasonOther}, maxReasons,
		func(k dltReason) prometheus.Counter {
			return s.m.deadLettered.WithLabelValues(s.topic, s.role, k.dlt, k.reason)
		})
}

func (s *topicSet) drop(reason string) prometheus.Counter {
	return bounded(&s.drops, reason, reasonOther, maxReasons, func(r string) prometheus.Counter {
		return s.m.dropped.WithLabelValues(s.topic, s.role, r)
	})
}

func (s *topicSet) forwardFailure(target string) prometheus.Counter {
	return bounded(&s.fwd, target, reasonOther, maxReasons, func(t string) prometheus.Counter {
		return s.m.forwardFailures.WithLabelValues(s.topic, t)
	})
}

func (s *topicSet) dltFailure() prometheus.Counter {
	s.once.Do(func() { s.dltFailures = s.m.dltHandlerFailures.WithLabelValues(s.topic) })
	return s.dltFailures
}

// batch resolves the batch metrics of the topic on first use.
func (s *topicSet) batch() *topicSet {
	s.batchOnce.Do(func() {
		s.batchRecords = s.m.batchRecords.WithLabelValues(s.topic, s.role)
		s.batchTime = s.m.batchDuration.WithLabelValues(s.topic, s.role)
		s.batchInvalid = s.m.batchInvalid.WithLabelValues(s.topic, s.role)
	})
	return s
}

// OnEvent counts e; it implements listener.Hook. It is called on the
// listener's goroutines and does not allocate once its topic (and its
// reason or target) has been seen.
//
// Handler run time (Event.Latency) is observed for handled, retried and
// DLT-handler-failed events, and for dead-lettered or dropped ones that
// carry it; lateness (Event.Late) for every delivery from a retry tier.
// Partition events (assigned, revoked, paused, resumed) are not counted:
// Watch reads the partitions' state instead. Exactly-once transactions
// (EventTransactionCommitted, EventTransactionAborted) are counted in
// kretry_transactions_total by outcome.
//
// A batch handler call (EventBatch) is observed once, in
// kretry_batch_records and kretry_batch_duration_seconds. The outcome
// events of the records of a batch (Event.Batch > 0) count each record's
// outcome and lateness as for any record, but not its run time: that is
// the batch's, observed once already, and counting it again for every
// record would weigh kretry_handler_duration_seconds by batch size.
func (m *Metrics) OnEvent(e listener.Event) {
	switch e.Kind {
	case listener.EventTransactionCommitted:
		m.txnCommitted.Inc()
		return
	case listener.EventTransactionAborted:
		m.txnAborted.Inc()
		return
	case listener.EventHandled, listener.EventRetried, listener.EventDeadLettered,
		listener.EventDropped, listener.EventForwardFailed, listener.EventDLTHandlerFailed, listener.EventSkipped,
		listener.EventBatch, listener.EventBatchErrorsInvalid, listener.EventFollowed:
	default:
		return
	}
	s := m.set(e.Topic, e.Role)
	switch e.Kind {
	case listener.EventBatch:
		s.batch().batchRecords.Observe(float64(e.Batch))
		s.batchTime.Observe(e.Latency.Seconds())
	case listener.EventBatchErrorsInvalid:
		s.batch().batchInvalid.Inc()
	case listener.EventHandled:
		s.handled.Inc()
		s.delivered(e, true)
	case listener.EventRetried:
		s.counter(&s.retried, outcomeRetried).Inc()
		s.delivered(e, true)
	case listener.EventDeadLettered:
		s.counter(&s.deadLettered, outcomeDeadLettered).Inc()
		s.deadLetter(e.Target, e.Reason).Inc()
		// A record dead-lettered for corrupt headers never reached the
		// handler: it has neither run time nor lateness.
		s.delivered(e, e.Latency > 0 || e.Late > 0)
	case listener.EventDropped:
		s.dropped.Inc()
		s.drop(e.Reason).Inc()
		// A DLT record dropped because its handler gave up was timed by
		// its EventDLTHandlerFailed already.
		s.delivered(e, e.Role != strategy.RoleDLT && (e.Latency > 0 || e.Late > 0))
	case listener.EventForwardFailed:
		s.forwardFailure(e.Target).Inc()
	case listener.EventDLTHandlerFailed:
		s.dltFailure().Inc()
		s.duration.Observe(e.Latency.Seconds())
	case listener.EventSkipped:
		s.counter(&s.skipped, outcomeSkipped).Inc()
	case listener.EventFollowed:
		s.counter(&s.followed, outcomeFollowed).Inc()
	}
}

// delivered observes the run time and lateness of a delivery that reached
// the handler.
func (s *topicSet) delivered(e listener.Event, ran bool) {
	if !ran {
		return
	}
	if e.Batch == 0 && (e.Latency > 0 || e.Kind == listener.EventHandled || e.Kind == listener.EventRetried) {
		s.duration.Observe(e.Latency.Seconds())
	}
	if s.lateness != nil {
		s.lateness.Observe(e.Late.Seconds())
	}
}
