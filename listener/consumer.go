package listener

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/kretry/kretry/internal/due"
	"github.com/kretry/kretry/internal/hop"
)

// consumer is the state of one run of a Listener: the client, the poll
// loop's bookkeeping, the workers' run queue, the due timers, the pauser,
// the parts of the partitions it owns and the publish retries in flight.
// Listener.Run builds it and it lives until Run returns; the Listener it
// embeds holds the settings New fixed, which nothing here changes.
//
// Locks, in the order they may be taken (never the other way round):
// consumer.partsMu, then part.mu, then the pauser's, the run queue's and
// the due timers' own (the timers fire outside theirs). The client's rebalance callbacks run with the client's locks held
// and take partsMu, so nothing may call into the client while holding
// partsMu or a part's mu, except to mark offsets (markCommit, which takes
// none of the locks the callbacks hold). Hooks, tracers and
// handlers are never called with any of these locks held.
type consumer struct {
	*Listener

	// batchMax, when set (by setup), caps the producer's batch size per
	// topic at the max.message.bytes of the tier or DLT, so a batch is
	// never refused for its combined size.
	batchMax func(topic string) int32

	client     *kgo.Client
	pauser     *pauser
	runq       *runq
	timers     *due.Timers[*part]
	stopping   atomic.Bool
	stopBy     atomic.Int64    // UnixNano deadline of the shutdown, once stopping
	handlerCtx context.Context // canceled when the shutdown timeout runs out
	produceCtx context.Context // likewise, for publishes

	partsMu sync.Mutex
	parts   map[topicPartition]*part
	removed map[topicPartition]*part // the last removed part of each partition, until reassigned

	// held counts polled records of unpaused partitions not yet taken by a
	// worker; the poll loop stops polling while it is at maxHeld, leaving
	// further records in the client's buffers (nothing is refetched).
	held    atomic.Int64
	drained chan struct{} // signaled when held drops
	// extra is how many records past maxHeld the poll loop may take
	// because the client buffered them when the limit was reached (see
	// room); 0 while under the limit. The poll loop alone uses it.
	extra int64

	// fwd makes the outcomes of failed records durable (see forwarder).
	fwd forwarder

	// eos is the exactly-once state (ExactlyOnce); nil at least once.
	eos *eos

	// keys is the key-order state (KeyOrder); nil without it.
	keys *keyOrder
}

func newConsumer(l *Listener) *consumer {
	c := &consumer{Listener: l,
		parts: make(map[topicPartition]*part), removed: make(map[topicPartition]*part),
		drained: make(chan struct{}, 1),
	}
	if l.cfg.keyOrder {
		c.keys = newKeyOrder(&l.cfg)
	}
	return c
}

// markCommit marks rec for the next commit. It reads the client when it
// marks, not when a part is made: the client may assign partitions (and so
// make parts) before Run has stored it. Only a part's commit ledger calls
// it (commits.mark).
func (c *consumer) markCommit(rec *kgo.Record) { c.client.MarkCommitRecords(rec) }

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
	// Produce finds the consumer in every handler's context.
	c.handlerCtx = context.WithValue(c.handlerCtx, consumerKey{}, c)
	c.produceCtx, cancelProduce = context.WithCancel(context.WithoutCancel(ctx))
	defer shutdownCancel()
	defer cancelProduce()

	c.pauser = newPauser() // before the client: its callbacks use it
	var client *kgo.Client
	if c.cfg.eos {
		id, err := c.transactionalID()
		if err != nil {
			return err
		}
		c.eos = &eos{c: c, id: id} // before the session: its callbacks make parts
		sess, err := kgo.NewGroupTransactSession(append(c.clientOpts(),
			kgo.TransactionalID(id), kgo.FetchIsolationLevel(kgo.ReadCommitted()))...)
		if err != nil {
			return fmt.Errorf("listener: creating the exactly-once session: %w", err)
		}
		c.eos.sess, client = sess, sess.Client()
		c.eos.timeout, _ = client.OptValue(kgo.TransactionTimeout).(time.Duration)
		if c.eos.timeout <= 0 {
			c.eos.timeout = 40 * time.Second // kgo's default
		}
	} else {
		var err error
		client, err = kgo.NewClient(c.clientOpts()...)
		if err != nil {
			return fmt.Errorf("listener: creating client: %w", err)
		}
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
	if c.eos != nil {
		if err := c.eos.sess.Begin(); err != nil {
			client.Close()
			return fmt.Errorf("listener: exactly-once: beginning the first transaction of %q: %w", c.eos.id, err)
		}
		c.eos.started = time.Now() // nothing else runs yet
	}
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
	if c.eos != nil {
		if err := c.eos.commit(flushCtx, true); err != nil {
			c.log.Warn("kretry: final transaction not committed; its records will be redelivered", "error", err)
			runErr = errors.Join(runErr, err)
		}
	} else {
		c.partsMu.Lock()
		for _, p := range c.parts {
			p.markDone()
		}
		c.partsMu.Unlock()
		if err := client.CommitMarkedOffsets(flushCtx); err != nil {
			c.log.Warn("kretry: final commit failed; records after the last commit will be redelivered", "error", err)
		}
	}
	cancelFlush()
	c.timers.Stop()
	c.partsMu.Lock()
	for _, p := range c.parts {
		p.stop()
	}
	c.partsMu.Unlock()
	if c.keys != nil {
		c.keys.close()
	}
	c.live.Store(nil)
	if c.eos != nil {
		c.eos.sess.Close()
	} else {
		client.Close()
	}
	c.pauser.close()
	shutdownCancel()
	return runErr
}

// setup validates the plan against the cluster: the main topic must exist;
// missing tiers and DLTs are created when allowed.
func (c *consumer) setup(ctx context.Context) error {
	admCl, err := kgo.NewClient(c.connOpts()...)
	if err != nil {
		return fmt.Errorf("listener: creating admin client: %w", err)
	}
	defer admCl.Close()
	if c.cfg.eos {
		// The admin client has the user's producer options: the
		// transaction timeout is the one the listener's client gets.
		timeout, _ := admCl.OptValue(kgo.TransactionTimeout).(time.Duration)
		if timeout > 0 && 3*c.cfg.txnInterval > timeout {
			return fmt.Errorf("listener: TransactionInterval %v must be at most a third of the client's kgo.TransactionTimeout %v, or the broker may abort a transaction still open; lower it or raise the timeout", c.cfg.txnInterval, timeout)
		}
	}
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

// connOpts are the options of the listener's side clients (the admin
// client, key order's rebuilds): the user's connection options (SASL,
// TLS, dialer, …) but none of the consumer or group ones, which need a
// group or would start fetching.
func (c *consumer) connOpts() []kgo.Opt {
	opts := []kgo.Opt{kgo.SeedBrokers(c.cfg.seeds...)}
	for _, o := range c.cfg.clientOpts {
		_, consumer := o.(kgo.ConsumerOpt)
		_, group := o.(kgo.GroupOpt)
		if !consumer && !group {
			opts = append(opts, o)
		}
	}
	return opts
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
	opts = append(opts,
		kgo.ConsumerGroup(c.cfg.group),
		kgo.ConsumeTopics(c.consumedTopics()...),
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
	if !c.cfg.eos {
		// Exactly once, the transaction commits the offsets (see eos).
		opts = append(opts, kgo.AutoCommitMarks())
	}
	if c.keys != nil {
		// A lane (partition n of the main topic and of every tier) has
		// one owner, which knows every key of it in retry.
		opts = append(opts, kgo.Balancers(laneBalancer{}))
	}
	return opts
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
