package listener

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"sync/atomic"
	"time"

	"github.com/kretry/kretry/dlt"
	"github.com/kretry/kretry/retry"
	"github.com/kretry/kretry/strategy"
)

// Listener consumes one main topic, its retry tiers and its dead-letter
// topics in one consumer group, and drives each record to exactly one
// acknowledged outcome: handled, published to its next retry tier, or
// published to a DLT. Construct it with New and start it with Run. A
// Listener runs once.
type Listener struct {
	cfg        cfg
	policy     retry.Policy
	plan       strategy.Plan
	handler    Handler      // nil for a batch listener
	batch      BatchHandler // nil for a single-record listener
	dltHandler dlt.Handler
	log        *slog.Logger
	observed   bool // hooks are installed: time handler calls, emit events
	// dueLimit: a retry record due further ahead than this is corrupt.
	dueLimit time.Duration

	// Everything above is fixed by New. Run builds a consumer for the
	// state of its one run; these two only guard it and expose it.
	started atomic.Bool
	live    atomic.Pointer[consumer] // the consumer while it consumes, for Partitions
}

type topicPartition struct {
	topic     string
	partition int32
}

// Errors Run (and so RunAll) returns for failures a caller may branch on.
// Each is found with errors.Is in the error returned; the message is the
// specific one ("listener: main topic "orders": not found; …"), which
// names the topics. Other failures wrap their cause, such as a
// github.com/twmb/franz-go/pkg/kerr error.
var (
	// ErrAlreadyRun is returned by Run when the Listener has been run
	// before (or is running): a Listener runs once; build another with
	// New.
	ErrAlreadyRun = errors.New("listener: Run called twice; a Listener runs once")
	// ErrMainTopicMissing is in the error Run returns at start-up when the
	// main topic does not exist; kretry creates only retry and DLT topics.
	ErrMainTopicMissing = errors.New("listener: main topic missing")
	// ErrTopicsMissing is in the error Run returns at start-up when retry
	// or DLT topics of the plan do not exist and CreateTopics(false)
	// forbids creating them.
	ErrTopicsMissing = errors.New("listener: retry or DLT topics missing")
)

// kindError lets errors.Is find kind in err without changing err's
// message, which stays the specific one.
type kindError struct{ kind, err error }

func (e *kindError) Error() string   { return e.err.Error() }
func (e *kindError) Unwrap() []error { return []error{e.kind, e.err} }

// withKind marks err as a failure of kind (one of the sentinel errors).
func withKind(kind, err error) error { return &kindError{kind: kind, err: err} }

// New returns a Listener for topic whose records are handled by h. seeds
// are the brokers to bootstrap from ("host:port"). The policy starts at
// Spring Kafka's defaults (3 attempts, fixed 1 s, topics "<topic>-retry" and
// "<topic>-dlt") and is changed by opts; its topics are named by
// retry.Policy.PlanFor(topic, group). New validates everything and
// connects to nothing; Run does the rest. It reports every problem, each
// once: a policy problem as `listener: topic "orders": KEY: RULE`, in the
// words policy files get for the same mistake.
func New(seeds []string, topic string, h Handler, opts ...Opt) (*Listener, error) {
	return newListener(seeds, topic, false, h, nil, opts)
}

// newListener is New with a Handler h, or, with batch, NewBatch with a
// BatchHandler bh.
func newListener(seeds []string, topic string, batch bool, h Handler, bh BatchHandler, opts []Opt) (*Listener, error) {
	c := defaultCfg(seeds, topic)
	for _, o := range opts {
		o.apply(&c)
	}
	c.normalize()
	var errs []error
	switch {
	case batch && bh == nil:
		errs = append(errs, errors.New("listener: NewBatch: handler must not be nil"))
	case !batch && h == nil:
		errs = append(errs, errors.New("listener: handler must not be nil"))
	case !batch && c.batchSet:
		errs = append(errs, errors.New("listener: BatchSize and BatchWait apply to batch handlers: use NewBatch with a BatchHandler, or remove them"))
	case batch && c.keyOrder:
		errs = append(errs, errors.New("listener: KeyOrder does not work with batch handlers yet: use New with a Handler, or remove KeyOrder"))
	}
	if err := c.validate(); err != nil {
		errs = append(errs, err)
	}
	pol := c.policy.Normalize()
	plan, err := pol.PlanFor(topic, c.group)
	if err != nil {
		list := []error{err}
		if j, ok := err.(interface{ Unwrap() []error }); ok {
			list = j.Unwrap()
		}
		for _, e := range list {
			errs = append(errs, fmt.Errorf("listener: topic %q: %w", topic, e))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	if batch {
		// Room for every worker's batch and the next one behind it.
		c.maxHeld = max(c.maxHeld, 2*c.concurrency*c.batchSize)
	}
	log := c.logger
	if log == nil {
		log = slog.Default()
	}
	var primary any = h
	if batch {
		primary = bh
	}
	dh := c.dltHandler
	if dh == nil {
		if both, ok := primary.(dlt.Handler); ok {
			dh = both // the handler has HandleDLT too: see DLTHandler
		} else {
			dh = dlt.LogHandler(log)
		}
	}
	return &Listener{
		cfg: c, policy: pol, plan: plan, handler: h, batch: bh, dltHandler: dh, log: log, observed: len(c.hooks) > 0,
		dueLimit: dueLimit(plan, pol.Backoff.Jitter, c.maxRequested),
	}, nil
}

// dueLimit returns how far ahead a retry record's due time may be before
// it counts as corrupt: the longest delay the listener can set (its longest
// tier delay with full jitter, or the largest requested delay) plus
// DueAllowance, saturating instead of overflowing.
func dueLimit(plan strategy.Plan, jitter float64, maxRequested time.Duration) time.Duration {
	var longest time.Duration
	for _, t := range plan.Tiers {
		longest = max(longest, t.Delay)
	}
	jittered := float64(longest) * (1 + min(max(jitter, 0), 1))
	if jittered >= math.MaxInt64 {
		return math.MaxInt64
	}
	d := max(time.Duration(jittered), maxRequested)
	if d > math.MaxInt64-DueAllowance {
		return math.MaxInt64
	}
	return d + DueAllowance
}

// Plan returns the topic plan the listener consumes and publishes to.
func (l *Listener) Plan() strategy.Plan { return l.plan }

// Policy returns the listener's normalized retry policy.
func (l *Listener) Policy() retry.Policy { return l.policy }

// Group returns the listener's consumer group.
func (l *Listener) Group() string { return l.cfg.group }

// Run checks and creates the plan's topics, joins the consumer group and
// handles records until ctx is canceled or a fatal error occurs. Its
// errors can be told apart with errors.Is: ErrAlreadyRun,
// ErrMainTopicMissing, ErrTopicsMissing, or the cause they wrap. On cancel
// it stops taking new records, lets handler calls in progress finish,
// waits for publishes to be acknowledged, commits, and leaves the group,
// all within the ShutdownTimeout; it then returns nil. Records not finished
// by then are left uncommitted and are redelivered later, to this group.
func (l *Listener) Run(ctx context.Context) error {
	if !l.started.CompareAndSwap(false, true) {
		return ErrAlreadyRun
	}
	return newConsumer(l).run(ctx)
}

func (l *Listener) emit(e Event) {
	if !l.observed {
		return
	}
	if e.Role == strategy.RoleUnknown {
		e.Role, _ = l.plan.Lookup(e.Topic)
	}
	for _, h := range l.cfg.hooks {
		h.OnEvent(e)
	}
}
