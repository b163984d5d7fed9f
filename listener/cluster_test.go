package listener_test

// Failure tests on a real three-node KRaft cluster: a partition leader is
// killed, or the whole cluster is stopped and started again, while records
// wait in retry tiers and are being forwarded. They need a cluster started
// by `scripts/kafka.sh start cluster --dir DIR` and KRETRY_CLUSTER_DIR=DIR,
// KRETRY_CLUSTER_BROKERS=<the brokers it printed>; see kafkatest.NewNodes.
//
// The verdict comes from the independent ledger of ledger_test.go (shared
// with the fault and storm tests): what the handler and the DLT handler
// saw, plus the tier and DLT topics read back with a plain client at the
// end. The listener's events only time the fault, explain duplicates and
// tell the commit watch when a publish was acknowledged; a false
// acknowledgement would still show as a record missing from Kafka.

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/kretry/kretry/internal/kafkatest"
	"github.com/kretry/kretry/listener"
	"github.com/kretry/kretry/strategy"
)

const (
	clusterRecords    = 2000 // half before the listener starts, half after the fault
	clusterPartitions = 6
	clusterAttempts   = 3   // deliveries: main, tier 300 ms, tier 600 ms
	clusterTrigger    = 100 // tier publishes acknowledged before the fault
)

var clusterBackoff = strategy.ExponentialBackoff(300*time.Millisecond, 2, 0)

// clusterFates spreads fates over the keys: 15% fail once, 15% twice (then
// succeed), 3% fail permanently, 2% fail every attempt (exhausted), 65%
// succeed at once.
var clusterFates = fateMix{step: 37, failing: []int{15, 15}, permanent: 3, exhausted: 2}

// clusterLedger is the handler, DLT handler and hook of the cluster tests:
// the shared ledger, which also times the fault.
type clusterLedger struct {
	*ledger
	tiers   map[string]bool // read-only once running
	trigger int
	// closed once the fault may go in: records wait in a tier while
	// others are being forwarded (ready), and also a tier partition is
	// paused on a record's due time (held)
	ready, held chan struct{}

	// guarded by ledger.mu
	paused map[topicPartition]time.Time // tier partitions waiting for a due time
	// records acknowledged into each tier partition and not yet delivered
	// from it (the listener keeps a record's partition number across hops)
	inTier            map[topicPartition]int
	failedN           int // handler calls that failed
	didReady, didHold bool
	// a tier partition that held waiting records when ready was closed
	firstWaiting topicPartition
}

func newClusterLedger(keys []string) *clusterLedger {
	lg := &clusterLedger{ledger: newLedger(keys, clusterAttempts, clusterFates), tiers: map[string]bool{}, trigger: clusterTrigger,
		ready: make(chan struct{}), held: make(chan struct{}), paused: map[topicPartition]time.Time{}, inTier: map[topicPartition]int{}}
	lg.onCall, lg.onEvent = lg.call, lg.event
	return lg
}

// call follows a handler call: a retry leaves its tier partition.
func (lg *clusterLedger) call(c ledgerCall) {
	if c.attempt > 1 {
		lg.inTier[topicPartition{c.topic, c.partition}]--
	}
	if c.failed {
		lg.failedN++
	}
}

// event follows the tier partitions and closes ready and held.
func (lg *clusterLedger) event(e listener.Event) {
	k := topicPartition{e.Topic, e.Partition}
	switch e.Kind {
	case listener.EventRetried:
		lg.inTier[topicPartition{e.Target, e.Partition}]++
	case listener.EventPaused:
		if lg.tiers[e.Topic] {
			lg.paused[k] = e.Due
		}
	case listener.EventResumed, listener.EventRevoked:
		delete(lg.paused, k)
	}
	// The fault goes in while records wait in a tier and others are still
	// being forwarded.
	if lg.retried >= lg.trigger && lg.failedN > lg.retried+lg.dead {
		if w, ok := lg.waitingLocked(); ok && !lg.didReady {
			lg.didReady = true
			lg.firstWaiting = w
			close(lg.ready)
		}
		if len(lg.paused) > 0 && !lg.didHold {
			lg.didHold = true
			close(lg.held)
		}
	}
}

// waitingLocked picks a tier partition holding records that wait for their
// due time: a paused one if any (the listener holds its head record),
// otherwise the one with the most records acknowledged but not delivered.
func (lg *clusterLedger) waitingLocked() (topicPartition, bool) {
	var best topicPartition
	most := 0
	for k := range lg.paused {
		if n := lg.inTier[k]; n > most || most == 0 {
			best, most = k, max(n, 1)
		}
	}
	if most > 0 {
		return best, true
	}
	for k, n := range lg.inTier {
		if n > most {
			best, most = k, n
		}
	}
	return best, most > 0
}

// waitingTier is waitingLocked for the test goroutine; it falls back to
// the partition chosen when the fault was triggered.
func (lg *clusterLedger) waitingTier() topicPartition {
	lg.mu.Lock()
	defer lg.mu.Unlock()
	if w, ok := lg.waitingLocked(); ok {
		return w
	}
	return lg.firstWaiting
}

// faultSnapshot describes the pipeline at the moment of the fault.
type faultSnapshot struct {
	retried, dead, firstDone, failed, inFlight, inTiers int
	paused                                              []topicPartition
}

func (lg *clusterLedger) snapshot() faultSnapshot {
	lg.mu.Lock()
	defer lg.mu.Unlock()
	s := faultSnapshot{retried: lg.retried, dead: lg.dead}
	for _, c := range lg.calls {
		if c.attempt == 1 {
			s.firstDone++
		}
		if c.failed {
			s.failed++
		}
	}
	s.inFlight = s.failed - s.retried - s.dead
	for _, n := range lg.inTier {
		s.inTiers += max(n, 0)
	}
	for k := range lg.paused {
		s.paused = append(s.paused, k)
	}
	slices.SortFunc(s.paused, func(a, b topicPartition) int {
		if c := strings.Compare(a.topic, b.topic); c != 0 {
			return c
		}
		return int(a.partition - b.partition)
	})
	return s
}

// warnCounter counts the listener's warnings and errors by message.
type warnCounter struct {
	slog.Handler
	mu   *sync.Mutex
	msgs map[string]int
	n    *atomic.Int64
}

func newWarnCounter(h slog.Handler) warnCounter {
	return warnCounter{Handler: h, mu: new(sync.Mutex), msgs: map[string]int{}, n: new(atomic.Int64)}
}

func (h warnCounter) Handle(ctx context.Context, r slog.Record) error {
	if r.Level >= slog.LevelWarn {
		h.n.Add(1)
		h.mu.Lock()
		h.msgs[r.Level.String()+" "+r.Message]++
		h.mu.Unlock()
	}
	return h.Handler.Handle(ctx, r)
}

func (h warnCounter) WithAttrs(as []slog.Attr) slog.Handler {
	h.Handler = h.Handler.WithAttrs(as)
	return h
}

func (h warnCounter) WithGroup(name string) slog.Handler {
	h.Handler = h.Handler.WithGroup(name)
	return h
}

func (h warnCounter) String() string {
	h.mu.Lock()
	defer h.mu.Unlock()
	var parts []string
	for m, n := range h.msgs {
		parts = append(parts, fmt.Sprintf("%d× %q", n, m))
	}
	sort.Strings(parts)
	return fmt.Sprintf("%d warnings/errors: %s", h.n.Load(), strings.Join(parts, ", "))
}

// kgoLog counts what the listener's franz-go client logs at warning level
// and above, by message: failed autocommits and group errors show up only
// there.
type kgoLog struct {
	mu   sync.Mutex
	msgs map[string]int
	last string // the last failed commit
}

func (k *kgoLog) Level() kgo.LogLevel { return kgo.LogLevelWarn }

func (k *kgoLog) Log(level kgo.LogLevel, msg string, keyvals ...any) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.msgs == nil {
		k.msgs = map[string]int{}
	}
	k.msgs[level.String()+" "+msg]++
	if strings.Contains(msg, "commit") {
		k.last = fmt.Sprintf("%s %s %v", time.Now().Format(time.StampMilli), msg, keyvals)
	}
}

func (k *kgoLog) String() string {
	k.mu.Lock()
	defer k.mu.Unlock()
	var parts []string
	for m, n := range k.msgs {
		parts = append(parts, fmt.Sprintf("%d× %q", n, m))
	}
	sort.Strings(parts)
	out := fmt.Sprintf("franz-go logged %d kinds of warnings/errors: %s", len(parts), strings.Join(parts, ", "))
	if k.last != "" {
		out += "; last commit failure: " + k.last
	}
	return out
}

// clusterRun is one failure test: the cluster, a main topic with RF 3 and
// min ISR 2, a listener wired to a ledger, and the records.
type clusterRun struct {
	t      *testing.T
	nodes  *kafkatest.Nodes
	f      fixture
	lg     *clusterLedger
	l      *listener.Listener
	logs   warnCounter
	kgoLog *kgoLog
	recs   []*kgo.Record

	start   time.Time // the run's start
	faultAt time.Time // the kill or stop began
	doneAt  time.Time // every record had its outcome

	commits *commitWatch
}

func newClusterRun(t *testing.T) *clusterRun {
	t.Helper()
	nodes := kafkatest.NewNodes(t)
	minISR := map[string]*string{"min.insync.replicas": new("2")}
	f := fixture{c: nodes.Cluster, topic: nodes.Name("orders"), group: nodes.Name("group")}
	nodes.CreateReplicatedTopic(f.topic, clusterPartitions, 3, minISR)
	var keys []string
	var recs []*kgo.Record
	for i := range clusterRecords {
		k := fmt.Sprintf("c%04d", i)
		keys = append(keys, k)
		recs = append(recs, rec(f.topic, k))
	}
	lg := newClusterLedger(keys)
	logs := newWarnCounter(quiet(t).Handler())
	kl := new(kgoLog)
	l := f.listener(t, lg, listener.DLTHandler(lg), listener.Hooks(lg), listener.Logger(slog.New(logs)),
		listener.Attempts(clusterAttempts), listener.Backoff(clusterBackoff),
		listener.ReplicationFactor(3), listener.TopicConfigs(minISR),
		// A revoke during a failover waits out the leader election (about
		// 9 s, broker.session.timeout.ms) for the publishes of the
		// revoked partitions, well under the 60 s rebalance timeout.
		listener.RevokeTimeout(15*time.Second),
		// The listener is stopped on a healthy cluster; 20 s leaves room
		// for a slow commit on a loaded machine.
		listener.ShutdownTimeout(20*time.Second),
		// React to leader changes within a quarter second (default 5 s).
		// The retry budgets stay franz-go's: produce and fetch retry
		// forever, the group rejoins forever, and a commit gives up after
		// 30 s and is tried again on the next tick. A longer RetryTimeout
		// would not help the listener survive: franz-go serializes
		// commits, so one commit retrying for minutes would hold back
		// every later one.
		listener.ClientOpts(kgo.MetadataMinAge(250*time.Millisecond),
			// The listener reports no autocommit failures; franz-go logs them.
			kgo.WithLogger(kl)))
	for _, tier := range l.Plan().Tiers {
		lg.tiers[tier.Topic] = true
	}
	// Every partition left on the cluster lengthens the next restart's
	// wait for full ISR. Runs after the listener has stopped.
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if _, err := nodes.Admin.DeleteTopics(ctx, l.Plan().Topics()...); err != nil {
			t.Logf("deleting the test's topics: %v", err)
		}
	})
	return &clusterRun{t: t, nodes: nodes, f: f, lg: lg, l: l, logs: logs, kgoLog: kl, recs: recs, start: time.Now()}
}

func (r *clusterRun) produce(recs []*kgo.Record, within time.Duration) {
	r.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), within)
	defer cancel()
	if err := r.nodes.ProduceContext(ctx, recs...); err != nil {
		r.t.Fatalf("producing %d records: %v", len(recs), err)
	}
}

// awaitFault waits for the moment to inject the fault and describes it:
// records wait in a tier while others are being forwarded, preferably
// while the listener holds a tier partition paused on a due time. On a
// loaded machine tier records can be overdue by the time they are polled,
// and are never paused on; after a few seconds the test goes ahead.
func (r *clusterRun) awaitFault() faultSnapshot {
	r.t.Helper()
	select {
	case <-r.lg.ready:
	case <-time.After(90 * time.Second):
		s := r.lg.snapshot()
		r.t.Fatalf("no moment within 90s with %d tier publishes acknowledged, others in flight and records waiting in a tier: %+v (an error of the listener's Run, if any, follows)", clusterTrigger, s)
	}
	select {
	case <-r.lg.held:
	case <-time.After(5 * time.Second):
		r.t.Log("no tier partition paused on a due time while publishes were in flight; injecting the fault anyway")
	}
	return r.lg.snapshot()
}

// finish waits until every key has its outcome and the group has committed
// every record of every plan topic, so no duplicate is still on its way.
func (r *clusterRun) finish(within time.Duration) {
	r.t.Helper()
	kafkatest.Eventually(r.t, within, r.lg.done, "every record reaches its outcome: %s", lazyText(r.lg.missing))
	r.doneAt = time.Now()
	topics := r.l.Plan().Topics()
	pollUntil(r.t, 90*time.Second, 200*time.Millisecond, "the group commits every record", func() (bool, string) {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		lag, err := r.nodes.Lag(ctx, r.f.group, topics...)
		if err != nil {
			return false, err.Error()
		}
		return len(lag) == 0, r.describeLag(lag) + "\n" + r.kgoLog.String()
	})
}

// describeLag says, for partitions the group has not committed to the
// end, what the ledger knows of the first uncommitted record.
func (r *clusterRun) describeLag(lag []kafkatest.PartitionLag) string {
	lg := r.lg
	lg.mu.Lock()
	defer lg.mu.Unlock()
	var parts []string
	for _, pl := range lag {
		ref := recordRef{pl.Topic, pl.Partition, pl.Committed}
		var calls []string
		for _, c := range lg.calls {
			if c.recordRef == ref {
				calls = append(calls, fmt.Sprintf("%s attempt %d failed=%v at %s", c.key, c.attempt, c.failed, c.at.Format(time.StampMilli)))
			}
		}
		for _, c := range lg.dltCalls {
			if c.recordRef == ref {
				calls = append(calls, fmt.Sprintf("DLT handler: %s at %s", c.key, c.at.Format(time.StampMilli)))
			}
		}
		parts = append(parts, fmt.Sprintf("%s[%d] committed %d of %d; offset %d settled=%v, calls: %v",
			pl.Topic, pl.Partition, pl.Committed, pl.End, pl.Committed, lg.settled[ref], calls))
	}
	return strings.Join(parts, "\n")
}

// watchCommits starts the commit watch (see commitWatch) on the plan's
// topics, sampling every 250 ms.
func (r *clusterRun) watchCommits() {
	r.commits = watchCommits(r.t, r.nodes.Admin, r.f.group, r.l.Plan().Topics(), r.lg.ledger, 250*time.Millisecond)
}

// clusterVerdict is the verdict of a cluster test, with its own summary.
type clusterVerdict verdict

func (v clusterVerdict) String() string {
	return fmt.Sprintf("outcomes: %d handled (%d first try, %d after retries), %d dead-lettered (%d permanent, %d exhausted); "+
		"%d handler calls, %d DLT handler calls; duplicates: %d handler calls (%d re-reads of a record after a revoke, "+
		"%d reads of an extra copy), %d DLT handler calls, extra copies in Kafka: %d in tiers, %d in the DLT; "+
		"%d partitions revoked or lost before the shutdown, %d failed publishes retried; lateness of retries p99 %v, max %v; %d early; %d samples of the committed offsets, %d commits ahead of an outcome",
		v.handled, v.firstTry, v.afterRetries, v.dlt, v.permanent, v.exhausted,
		v.calls, v.dltCalls, v.dupCalls, v.rereads, v.extraCopiesRead, v.dupDLTCalls,
		v.extraTierCopies, v.extraDLTCopies, v.revokes, v.fwdFailed, v.p99Late.Round(time.Millisecond), v.maxLate.Round(time.Millisecond), v.early, v.commitSamples, v.commitAhead)
}

// verify checks the topic settings and the ledger (see verifyLedger).
func (r *clusterRun) verify() clusterVerdict {
	r.t.Helper()
	plan := r.l.Plan()
	r.checkTopicSettings()
	return clusterVerdict(verifyLedger(r.t, r.f.c, plan, r.lg.ledger, r.commits, false))
}

// checkTopicSettings checks that the listener created its tiers and DLT
// with replication factor 3 and min ISR 2.
func (r *clusterRun) checkTopicSettings() {
	r.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	topics := r.l.Plan().Topics()
	md, err := r.nodes.Admin.Metadata(ctx, topics...)
	if err != nil {
		r.t.Fatalf("metadata: %v", err)
	}
	for _, topic := range topics {
		for _, p := range md.Topics[topic].Partitions {
			if len(p.Replicas) != 3 {
				r.t.Errorf("%s[%d] has replicas %v, want 3", topic, p.Partition, p.Replicas)
			}
		}
	}
	rcs, err := r.nodes.Admin.DescribeTopicConfigs(ctx, topics...)
	if err != nil {
		r.t.Fatalf("describe configs: %v", err)
	}
	for _, rc := range rcs {
		for _, c := range rc.Configs {
			if c.Key == "min.insync.replicas" && c.MaybeValue() != "2" {
				r.t.Errorf("%s: min.insync.replicas %q, want 2", rc.Name, c.MaybeValue())
			}
		}
	}
}

func TestClusterLeaderKilledWhileRecordsWaitAndForward(t *testing.T) {
	r := newClusterRun(t)
	half := len(r.recs) / 2
	r.produce(r.recs[:half], time.Minute)
	stop := started(t, r.l)
	r.watchCommits()

	s := r.awaitFault()
	target := r.lg.waitingTier()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	victim, err := r.nodes.Leader(ctx, target.topic, target.partition)
	if err != nil || victim < 1 {
		t.Fatalf("leader of %s[%d]: %d, %v", target.topic, target.partition, victim, err)
	}
	killed := time.Now()
	r.faultAt = killed
	r.nodes.Kill(victim)
	t.Logf("killed node %d, leader of waiting tier partition %s[%d], %v after start: %d tier publishes acknowledged, "+
		"%d dead-lettered, %d publishes in flight, %d acknowledged tier records not yet delivered, %d tier partitions paused on a due time, %d of %d first deliveries done",
		victim, target.topic, target.partition, killed.Sub(r.start).Round(time.Millisecond),
		s.retried, s.dead, s.inFlight, s.inTiers, len(s.paused), s.firstDone, half)

	// The second half is produced through the failover.
	r.produce(r.recs[half:], 2*time.Minute)
	pollUntil(t, time.Minute, 100*time.Millisecond, "a new leader for the tier partition", func() (bool, string) {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		l, err := r.nodes.Leader(ctx, target.topic, target.partition)
		return err == nil && l > 0 && l != victim, fmt.Sprintf("leader %d, %v", l, err)
	})
	failover := time.Since(killed)

	// Restart the node while the listener works on two.
	restarted := make(chan error, 1)
	restartAt := time.Now()
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
		defer cancel()
		restarted <- r.nodes.RestartNode(ctx, victim)
	}()
	r.finish(2 * time.Minute)
	select {
	case err := <-restarted:
		if err != nil {
			t.Fatalf("restart of node %d: %v", victim, err)
		}
	case <-time.After(3 * time.Minute):
		t.Fatalf("restart of node %d did not return within 3 minutes", victim)
	}
	r.report(stop, fmt.Sprintf("1 kill (node %d); new leader after %v; node back in full ISR %v after its restart began",
		victim, failover.Round(100*time.Millisecond), time.Since(restartAt).Round(100*time.Millisecond)))
}

func TestClusterFullRestartMidRun(t *testing.T) {
	r := newClusterRun(t)
	half := len(r.recs) / 2
	r.produce(r.recs[:half], time.Minute)
	stop := started(t, r.l)
	r.watchCommits()

	s := r.awaitFault()
	down := time.Now()
	r.faultAt = down
	r.nodes.Stop()
	stopped := time.Since(down)
	t.Logf("stopped all 3 nodes (SIGTERM) in %v, %v after start: %d tier publishes acknowledged, %d dead-lettered, "+
		"%d publishes in flight, %d acknowledged tier records not yet delivered, %d tier partitions paused on a due time, %d of %d first deliveries done",
		stopped.Round(100*time.Millisecond), down.Sub(r.start).Round(time.Millisecond),
		s.retried, s.dead, s.inFlight, s.inTiers, len(s.paused), s.firstDone, half)

	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	if err := r.nodes.RestartAll(ctx); err != nil {
		t.Fatalf("restarting the cluster: %v", err)
	}
	outage := time.Since(down)
	t.Logf("cluster back (3 nodes, full ISR) %v after the stop", outage.Round(100*time.Millisecond))
	r.produce(r.recs[half:], time.Minute)
	r.finish(2 * time.Minute)
	r.report(stop, fmt.Sprintf("all 3 nodes stopped (SIGTERM) and restarted on their storage; outage %v, of which stopping %v",
		outage.Round(100*time.Millisecond), stopped.Round(100*time.Millisecond)))
}

// report stops the listener (which ran through the fault), verifies the
// ledger and logs the figures.
func (r *clusterRun) report(stop func() error, fault string) {
	t := r.t
	t.Helper()
	r.lg.stop()
	if err := stop(); err != nil {
		t.Fatalf("Run: %v", err)
	}
	r.commits.stop()
	r.commits.check() // the shutdown's final commit
	took := time.Since(r.start)
	v := r.verify()
	lg := r.lg
	lg.mu.Lock()
	reassigned := lg.assigns - len(r.l.Plan().Topics())*clusterPartitions
	lg.mu.Unlock()
	t.Logf("%d records on %d partitions (%d attempts, tiers %v); fault: %s; every outcome reached %v after the fault began; "+
		"%s; %d partitions assigned again; listener logged %v; %v; run took %v",
		len(r.recs), clusterPartitions, clusterAttempts, tierDelays(r.l.Plan()), fault,
		r.doneAt.Sub(r.faultAt).Round(100*time.Millisecond), v, reassigned, r.logs, r.kgoLog, took.Round(100*time.Millisecond))
}
