package listener

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kretry/kretry/dlt"
	"github.com/kretry/kretry/internal/due"
	"github.com/kretry/kretry/internal/hop"
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
	handler    Handler
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
	c := defaultCfg(seeds, topic)
	for _, o := range opts {
		o.apply(&c)
	}
	c.normalize()
	var errs []error
	if h == nil {
		errs = append(errs, errors.New("listener: handler must not be nil"))
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
	log := c.logger
	if log == nil {
		log = slog.Default()
	}
	dh := c.dltHandler
	if dh == nil {
		if both, ok := h.(dlt.Handler); ok {
			dh = both // the handler has HandleDLT too: see DLTHandler
		} else {
			dh = dlt.LogHandler(log)
		}
	}
	return &Listener{
		cfg: c, policy: pol, plan: plan, handler: h, dltHandler: dh, log: log, observed: len(c.hooks) > 0,
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

// run is Run's one run: it sets up, consumes until ctx ends or a fatal
// error, and shuts down.
func (c *consumer) run(ctx context.Context) error {
	if err := c.setup(ctx); err != nil {
		if ctx.Err() != nil {
			return nil // canceled before it started: nothing consumed, nothing to commit
		}
		return err
	}
	var shutdownCancel context.CancelFunc
	var cancelProduce context.CancelFunc
	c.handlerCtx, shutdownCancel = context.WithCancel(context.WithoutCancel(ctx))
	c.produceCtx, cancelProduce = context.WithCancel(context.WithoutCancel(ctx))
	defer shutdownCancel()
	defer cancelProduce()

	c.pauser = newPauser() // before the client: its callbacks use it
	client, err := kgo.NewClient(c.clientOpts()...)
	if err != nil {
		return fmt.Errorf("listener: creating client: %w", err)
	}
	for _, bad := range []struct {
		opt  any
		name string
		why  string
	}{
		{kgo.ManualFlushing, "kgo.ManualFlushing", "would keep publishes from ever being acknowledged"},
	} {
		if v, _ := client.OptValue(bad.opt).(bool); v {
			client.Close()
			return fmt.Errorf("listener: ClientOpts: %s %s; remove it", bad.name, bad.why)
		}
	}
	c.client = client
	c.fwd = &asyncForwarder{c: c}
	c.pauser.start(client)
	c.live.Store(c)
	c.runq = newRunq()
	c.timers = due.New((*part).wake)

	var workers sync.WaitGroup
	for range c.cfg.concurrency {
		workers.Go(func() {
			for p := c.runq.pop(); p != nil; p = c.runq.pop() {
				p.run()
			}
		})
	}

	runErr := c.poll(ctx)

	// Shutdown: finish what is in progress, flush, commit, leave, all by
	// the deadline. Handlers get all of it but its last third or its last
	// 5 s, whichever is shorter (25 s of the default 30 s); the rest is for
	// publishes and the commit.
	timeout := c.cfg.shutdownTimeout
	deadline := time.Now().Add(timeout)
	c.stopBy.Store(deadline.UnixNano())
	c.stopping.Store(true)
	c.runq.close()
	if !waitTimeout(&workers, timeout-min(timeout/3, 5*time.Second)) {
		c.log.Warn("kretry: handlers still running at the shutdown timeout; canceling their contexts; their records stay uncommitted")
		shutdownCancel()
	}
	flushCtx, cancelFlush := context.WithDeadline(context.Background(), deadline)
	if err := c.fwd.flush(flushCtx); err != nil {
		c.log.Warn("kretry: publishes not acknowledged by the shutdown timeout; their source records stay uncommitted", "error", err)
	}
	cancelProduce()
	c.fwd.stop()
	c.partsMu.Lock()
	for _, p := range c.parts {
		p.markDone()
	}
	c.partsMu.Unlock()
	if err := client.CommitMarkedOffsets(flushCtx); err != nil {
		c.log.Warn("kretry: final commit failed; records after the last commit will be redelivered", "error", err)
	}
	cancelFlush()
	c.timers.Stop()
	c.partsMu.Lock()
	for _, p := range c.parts {
		p.stop()
	}
	c.partsMu.Unlock()
	c.live.Store(nil)
	client.Close()
	c.pauser.close()
	shutdownCancel()
	return runErr
}

// setup validates the plan against the cluster: the main topic must exist;
// missing tiers and DLTs are created when allowed.
func (c *consumer) setup(ctx context.Context) error {
	// The admin client takes the user's connection options (SASL, TLS,
	// dialer, …) but none of the consumer or group ones, which need a group
	// or would start fetching.
	opts := []kgo.Opt{kgo.SeedBrokers(c.cfg.seeds...)}
	for _, o := range c.cfg.clientOpts {
		_, consumer := o.(kgo.ConsumerOpt)
		_, group := o.(kgo.GroupOpt)
		if !consumer && !group {
			opts = append(opts, o)
		}
	}
	admCl, err := kgo.NewClient(opts...)
	if err != nil {
		return fmt.Errorf("listener: creating admin client: %w", err)
	}
	defer admCl.Close()
	adm := kadm.NewClient(admCl)
	if err := c.ensureTopics(ctx, adm); err != nil {
		return err
	}
	// The admin client has the user's producer options too: its batch
	// sizes are the ones the listener's client would get.
	if limits := c.publishLimits(ctx, adm); len(limits) > 0 {
		user, _ := admCl.OptValue(kgo.ProducerBatchMaxBytesFn).(func(string) int32)
		c.batchMax = func(topic string) int32 {
			n := int32(1000012) // kgo's default
			if user != nil {
				n = user(topic)
			}
			if lim, ok := limits[topic]; ok && lim < n {
				return lim
			}
			return n
		}
	}
	return nil
}

func (c *consumer) clientOpts() []kgo.Opt {
	opts := []kgo.Opt{
		kgo.SeedBrokers(c.cfg.seeds...),
		kgo.FetchMaxWait(c.cfg.fetchMaxWait),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
	}
	opts = append(opts, c.cfg.clientOpts...)
	if c.batchMax != nil {
		opts = append(opts, kgo.ProducerBatchMaxBytesFn(c.batchMax))
	}
	// What the listener's guarantees depend on comes last, so it wins.
	return append(opts,
		kgo.ConsumerGroup(c.cfg.group),
		kgo.ConsumeTopics(c.consumedTopics()...),
		kgo.AutoCommitMarks(),
		kgo.BlockRebalanceOnPoll(),
		kgo.OnPartitionsAssigned(c.assigned),
		kgo.OnPartitionsRevoked(c.revoked),
		kgo.OnPartitionsLost(c.lost),
		kgo.AutoCommitCallback(c.committed),
		kgo.RecordPartitioner(hop.Partitioner()),
		// An acknowledged publish must be durable: it is what lets the
		// source record be committed.
		kgo.RequiredAcks(kgo.AllISRAcks()),
	)
}

// poll is the only goroutine that polls. It hands records to their
// partitions and returns on ctx cancel (nil) or a fatal error.
func (c *consumer) poll(ctx context.Context) error {
	for {
		fetches := c.client.PollRecords(ctx, c.cfg.maxPollRecords)
		if fetches.IsClientClosed() || ctx.Err() != nil {
			c.client.AllowRebalance()
			return nil
		}
		var fatal error
		fetches.EachError(func(t string, p int32, err error) {
			if errors.Is(err, context.Canceled) {
				return
			}
			if isFatal(err) {
				if t == "" { // a group error, not a partition's
					fatal = fmt.Errorf("listener: consumer group %q: %w", c.cfg.group, err)
				} else {
					fatal = fmt.Errorf("listener: consuming %s[%d]: %w", t, p, err)
				}
				return
			}
			if t == "" {
				c.log.Warn("kretry: consumer group error; the client retries", "group", c.cfg.group, "error", err)
				return
			}
			c.log.Warn("kretry: fetch error; the client retries", "topic", t, "partition", p, "error", err)
		})
		if fatal != nil {
			c.client.AllowRebalance()
			return fatal
		}
		c.partsMu.Lock()
		for _, f := range fetches {
			// A poll returns one Fetch per broker, and within it a
			// partition's records only once the client has given out
			// all it buffered of the partitions before it: a partition
			// followed by another has nothing left in the client.
			var prev *part
			for _, t := range f.Topics {
				for _, fp := range t.Partitions {
					if len(fp.Records) == 0 {
						continue
					}
					if prev != nil {
						prev.exhausted()
					}
					prev = c.parts[topicPartition{t.Topic, fp.Partition}]
					if prev != nil {
						prev.add(fp.Records)
					}
				}
			}
		}
		c.partsMu.Unlock()
		// Pauses asked for since the last poll (by add, or by workers
		// whose head must wait) reach the client before it is polled
		// again, so a paused partition's records stop coming at once.
		c.pauser.apply()
		c.client.AllowRebalance()
		if !c.waitForRoom(ctx) {
			return nil
		}
	}
}

// hogDelay is how long the poll loop waits at its limit before it pauses
// the partitions that hold the most records.
const hogDelay = 50 * time.Millisecond

// waitForRoom blocks the poll loop while the records held for unpaused
// partitions are at the limit. When that lasts, the partitions holding at
// least a poll's worth are paused so the rest can be polled again. It
// returns false when ctx is canceled. Rebalances are allowed meanwhile.
func (c *consumer) waitForRoom(ctx context.Context) bool {
	if c.held.Load() < int64(c.cfg.maxHeld) {
		return true
	}
	t := time.NewTimer(hogDelay)
	defer t.Stop()
	for c.held.Load() >= int64(c.cfg.maxHeld) {
		select {
		case <-c.drained:
		case <-t.C:
			c.partsMu.Lock()
			for _, p := range c.parts {
				p.pauseIfHog(c.cfg.maxPollRecords)
			}
			c.partsMu.Unlock()
			t.Reset(hogDelay)
		case <-ctx.Done():
			return false
		}
	}
	return true
}

// signalDrained wakes the poll loop if it waits for room.
func (c *consumer) signalDrained() {
	select {
	case c.drained <- struct{}{}:
	default:
	}
}

// isFatal reports errors that retrying cannot fix: bad credentials and
// missing authorizations.
func isFatal(err error) bool {
	for _, fatal := range []error{
		kerr.SaslAuthenticationFailed, kerr.TopicAuthorizationFailed,
		kerr.GroupAuthorizationFailed, kerr.ClusterAuthorizationFailed,
		kerr.UnsupportedSaslMechanism, kerr.IllegalSaslState,
	} {
		if errors.Is(err, fatal) {
			return true
		}
	}
	return false
}

func (c *consumer) assigned(_ context.Context, cl *kgo.Client, assigned map[string][]int32) {
	c.partsMu.Lock()
	for topic, ps := range assigned {
		role, _ := c.plan.Lookup(topic)
		for _, pn := range ps {
			k := topicPartition{topic, pn}
			if old := c.parts[k]; old != nil {
				old.stop() // not expected: franz-go revokes before it reassigns
				c.removed[k] = old
			}
			np := newPart(c, topic, pn, role)
			if old := c.removed[k]; old != nil {
				np.follow(old)
				delete(c.removed, k)
			}
			c.parts[k] = np
		}
	}
	c.partsMu.Unlock()
	for topic, ps := range assigned {
		for _, pn := range ps {
			c.emit(Event{Kind: EventAssigned, Topic: topic, Partition: pn, Offset: -1})
		}
	}
	// franz-go keeps pause state across rebalances; a newly assigned
	// partition starts unpaused, whatever happened to it before.
	c.pauser.resumeNow(cl, assigned)
}

func (c *consumer) revoked(ctx context.Context, cl *kgo.Client, revoked map[string][]int32) {
	c.release(ctx, cl, revoked, true)
}

func (c *consumer) lost(ctx context.Context, cl *kgo.Client, lost map[string][]int32) {
	c.release(ctx, cl, lost, false)
}

// release forgets partitions that are no longer ours. When they were
// revoked (not lost) it first waits, up to RevokeTimeout, for their
// handler calls and publishes, then commits what is done.
func (c *consumer) release(ctx context.Context, cl *kgo.Client, tps map[string][]int32, commit bool) {
	var ps []*part
	c.partsMu.Lock()
	for topic, pns := range tps {
		for _, pn := range pns {
			k := topicPartition{topic, pn}
			if p := c.parts[k]; p != nil {
				ps = append(ps, p)
				delete(c.parts, k)
				c.removed[k] = p
			}
		}
	}
	c.partsMu.Unlock()
	for _, p := range ps {
		p.stop()
		c.emit(Event{Kind: EventRevoked, Topic: p.topic, Partition: p.partition, Offset: -1})
	}
	// When the listener is stopping, Run has already waited for handlers
	// and flushed publishes: what is unfinished now stays unfinished.
	if commit && !c.stopping.Load() {
		deadline := time.Now().Add(c.cfg.revokeTimeout)
		for _, p := range ps {
			if !p.waitIdle(deadline, true) {
				c.log.Warn("kretry: revoked partition still busy at the revoke timeout; its unfinished records will be redelivered to the new owner",
					"topic", p.topic, "partition", p.partition)
			}
		}
	}
	if commit {
		for _, p := range ps {
			p.markDone()
		}
		deadline := time.Now().Add(c.cfg.revokeTimeout)
		if c.stopping.Load() {
			deadline = time.Unix(0, c.stopBy.Load())
		}
		cctx, cancel := context.WithDeadline(ctx, deadline)
		if err := cl.CommitMarkedOffsets(cctx); err != nil {
			c.log.Warn("kretry: commit on revoke failed; records after the last commit will be redelivered", "error", err)
		}
		cancel()
	}
	c.pauser.resumeNow(cl, tps)
}

// committed reports failed background commits; records after the last
// successful commit are redelivered if the partition moves or the process
// stops before a later commit succeeds.
func (c *consumer) committed(_ *kgo.Client, _ *kmsg.OffsetCommitRequest, resp *kmsg.OffsetCommitResponse, err error) {
	if err == nil && resp != nil {
	resp:
		for _, t := range resp.Topics {
			for _, p := range t.Partitions {
				if err = kerr.ErrorForCode(p.ErrorCode); err != nil {
					err = fmt.Errorf("%s[%d]: %w", t.Topic, p.Partition, err)
					break resp
				}
			}
		}
	}
	if err != nil && !errors.Is(err, context.Canceled) {
		c.log.Warn("kretry: commit failed; it is retried with the next commit, and uncommitted records are redelivered if the partition moves",
			"group", c.cfg.group, "error", err)
	}
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

// waitTimeout waits for wg up to d and reports whether it finished.
func waitTimeout(wg *sync.WaitGroup, d time.Duration) bool {
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-done:
		return true
	case <-t.C:
		return false
	}
}
