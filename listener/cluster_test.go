package listener_test

// Failure tests on a real three-node KRaft cluster: a partition leader is
// killed, or the whole cluster is stopped and started again, while records
// wait in retry tiers and are being forwarded. They need a cluster started
// by `scripts/kafka.sh start cluster --dir DIR` and KRETRY_CLUSTER_DIR=DIR,
// KRETRY_CLUSTER_BROKERS=<the brokers it printed>; see kafkatest.NewNodes.
//
// The verdict comes from an independent ledger: what the handler and the
// DLT handler saw, plus the tier and DLT topics read back with a plain
// client at the end. The listener's events only time the fault, explain
// duplicates and tell the commit watch when a publish was acknowledged; a
// false acknowledgement would still show as a record missing from Kafka.

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

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/kretry/kretry/internal/kafkatest"
	"github.com/kretry/kretry/listener"
	"github.com/kretry/kretry/retry"
	"github.com/kretry/kretry/strategy"
)

const (
	clusterRecords    = 2000 // half before the listener starts, half after the fault
	clusterPartitions = 6
	clusterAttempts   = 3   // deliveries: main, tier 300 ms, tier 600 ms
	clusterTrigger    = 100 // tier publishes acknowledged before the fault
)

var clusterBackoff = strategy.ExponentialBackoff(300*time.Millisecond, 2, 0)

// clusterFate is what the handler does with one key. It depends only on the
// attempt number from the record's headers, never on how often the
// handler saw the key, so a redelivered record meets the same fate.
type clusterFate struct {
	fails     int  // deliveries failing with a retryable error, from the first
	permanent bool // the first delivery fails with strategy.Permanent
}

// clusterFateOf spreads fates over the keys: 15% fail once, 15% twice (then
// succeed), 3% fail permanently, 2% fail every attempt (exhausted), 65%
// succeed at once.
func clusterFateOf(i int) clusterFate {
	switch h := i * 37 % 100; {
	case h < 15:
		return clusterFate{fails: 1}
	case h < 30:
		return clusterFate{fails: 2}
	case h < 33:
		return clusterFate{permanent: true}
	case h < 35:
		return clusterFate{fails: clusterAttempts}
	}
	return clusterFate{}
}

func (f clusterFate) err(key string, attempt int32) error {
	switch {
	case f.permanent:
		return strategy.Permanent(fmt.Errorf("%s: %w", key, errBoom))
	case int(attempt) <= f.fails:
		return fmt.Errorf("attempt %d of %s: %w", attempt, key, errBoom)
	}
	return nil
}

// attempts is how many distinct deliveries (attempt numbers) the key gets.
func (f clusterFate) attempts() int32 {
	if f.permanent {
		return 1
	}
	return int32(min(f.fails+1, clusterAttempts))
}

// deadReason is the DLT reason the key must end with, or "" if it must end
// handled.
func (f clusterFate) deadReason() string {
	switch {
	case f.permanent:
		return retry.ReasonPermanent
	case f.fails >= clusterAttempts:
		return retry.ReasonExhausted
	}
	return ""
}

// recordRef names one record in Kafka.
type recordRef struct {
	topic     string
	partition int32
	offset    int64
}

// clusterTP names a partition.
type clusterTP struct {
	topic     string
	partition int32
}

// ledgerCall is one handler or DLT handler call.
type ledgerCall struct {
	recordRef
	key     string
	attempt int32     // from the headers; 1 on the main topic
	due     time.Time // zero on the main topic and the DLT
	at      time.Time // when the call started
	failed  bool
	reason  string // DLT calls: the kretry-reason header
}

// clusterLedger is the handler, DLT handler and hook of the cluster tests.
type clusterLedger struct {
	fates   map[string]clusterFate // read-only once running
	tiers   map[string]bool        // read-only once running
	trigger int
	// closed once the fault may go in: records wait in a tier while
	// others are being forwarded (ready), and also a tier partition is
	// paused on a record's due time (held)
	ready, held chan struct{}

	mu        sync.Mutex
	calls     []ledgerCall
	dltCalls  []ledgerCall
	unknown   []string
	final     map[string]bool // keys that reached a terminal outcome
	finalN    int
	retried   int
	dead      int
	fwdFailed map[recordRef]int
	// records with an acknowledged outcome: handled, or their publish
	// acknowledged, or read back from the DLT. Each is set before the
	// listener can mark the record for commit.
	settled map[recordRef]bool
	revokes map[clusterTP][]time.Time
	assigns int
	paused  map[clusterTP]time.Time // tier partitions waiting for a due time
	// records acknowledged into each tier partition and not yet delivered
	// from it (the listener keeps a record's partition number across hops)
	inTier            map[clusterTP]int
	failedN           int // handler calls that failed
	didReady, didHold bool
	// a tier partition that held waiting records when ready was closed
	firstWaiting clusterTP
}

func newClusterLedger(keys []string) *clusterLedger {
	lg := &clusterLedger{fates: map[string]clusterFate{}, tiers: map[string]bool{}, trigger: clusterTrigger,
		ready: make(chan struct{}), held: make(chan struct{}), final: map[string]bool{}, fwdFailed: map[recordRef]int{}, settled: map[recordRef]bool{},
		revokes: map[clusterTP][]time.Time{}, paused: map[clusterTP]time.Time{}, inTier: map[clusterTP]int{}}
	for i, k := range keys {
		lg.fates[k] = clusterFateOf(i)
	}
	return lg
}

func (lg *clusterLedger) Handle(ctx context.Context, rec *kgo.Record) error {
	at := time.Now()
	st, retried := retry.FromContext(ctx)
	attempt := int32(1)
	if retried {
		attempt = st.Attempt
	}
	key := string(rec.Key)
	f, ok := lg.fates[key]
	var err error
	if ok {
		err = f.err(key, attempt)
	} else {
		err = strategy.Permanent(fmt.Errorf("unknown key %q", key))
	}
	lg.mu.Lock()
	defer lg.mu.Unlock()
	if !ok {
		lg.unknown = append(lg.unknown, key)
		return err
	}
	lg.calls = append(lg.calls, ledgerCall{recordRef: recordRef{rec.Topic, rec.Partition, rec.Offset}, key: key,
		attempt: attempt, due: st.Due, at: at, failed: err != nil})
	if attempt > 1 {
		lg.inTier[clusterTP{rec.Topic, rec.Partition}]--
	}
	if err != nil {
		lg.failedN++
	}
	if err == nil {
		lg.finalLocked(key)
		lg.settled[recordRef{rec.Topic, rec.Partition, rec.Offset}] = true
	}
	return err
}

func (lg *clusterLedger) HandleDLT(_ context.Context, rec *kgo.Record, st retry.State) error {
	at := time.Now()
	lg.mu.Lock()
	defer lg.mu.Unlock()
	key := string(rec.Key)
	lg.dltCalls = append(lg.dltCalls, ledgerCall{recordRef: recordRef{rec.Topic, rec.Partition, rec.Offset}, key: key,
		attempt: st.Attempt, at: at, reason: st.Reason})
	lg.finalLocked(key)
	lg.settled[recordRef{rec.Topic, rec.Partition, rec.Offset}] = true
	return nil
}

func (lg *clusterLedger) finalLocked(key string) {
	if !lg.final[key] {
		lg.final[key] = true
		lg.finalN++
	}
}

func (lg *clusterLedger) OnEvent(e listener.Event) {
	lg.mu.Lock()
	defer lg.mu.Unlock()
	k := clusterTP{e.Topic, e.Partition}
	switch e.Kind {
	case listener.EventRetried:
		lg.retried++
		lg.inTier[clusterTP{e.Target, e.Partition}]++
		lg.settled[recordRef{e.Topic, e.Partition, e.Offset}] = true
	case listener.EventDeadLettered:
		lg.dead++
		lg.settled[recordRef{e.Topic, e.Partition, e.Offset}] = true
	case listener.EventForwardFailed:
		lg.fwdFailed[recordRef{e.Topic, e.Partition, e.Offset}]++
	case listener.EventPaused:
		if lg.tiers[e.Topic] {
			lg.paused[k] = e.Due
		}
	case listener.EventResumed:
		delete(lg.paused, k)
	case listener.EventRevoked:
		delete(lg.paused, k)
		lg.revokes[k] = append(lg.revokes[k], time.Now())
	case listener.EventAssigned:
		lg.assigns++
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
func (lg *clusterLedger) waitingLocked() (clusterTP, bool) {
	var best clusterTP
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
func (lg *clusterLedger) waitingTier() clusterTP {
	lg.mu.Lock()
	defer lg.mu.Unlock()
	if w, ok := lg.waitingLocked(); ok {
		return w
	}
	return lg.firstWaiting
}

func (lg *clusterLedger) done() bool {
	lg.mu.Lock()
	defer lg.mu.Unlock()
	return lg.finalN == len(lg.fates)
}

// missing describes keys without a terminal outcome, for failure messages.
func (lg *clusterLedger) missing() string {
	lg.mu.Lock()
	defer lg.mu.Unlock()
	var ks []string
	for k := range lg.fates {
		if !lg.final[k] {
			ks = append(ks, k)
		}
	}
	sort.Strings(ks)
	last := map[string]ledgerCall{}
	for _, c := range lg.calls {
		last[c.key] = c
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%d of %d keys without an outcome", len(ks), len(lg.fates))
	for _, k := range ks[:min(len(ks), 10)] {
		c, ok := last[k]
		if !ok {
			fmt.Fprintf(&b, "; %s: never delivered", k)
			continue
		}
		fmt.Fprintf(&b, "; %s (%+v): last delivery attempt %d from %s[%d]@%d", k, lg.fates[k], c.attempt, c.topic, c.partition, c.offset)
	}
	return b.String()
}

// faultSnapshot describes the pipeline at the moment of the fault.
type faultSnapshot struct {
	retried, dead, firstDone, failed, inFlight, inTiers int
	paused                                              []clusterTP
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
	slices.SortFunc(s.paused, func(a, b clusterTP) int {
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

	start    time.Time // the run's start
	faultAt  time.Time // the kill or stop began
	doneAt   time.Time // every record had its outcome
	stopping time.Time // the listener was told to stop

	commits commitWatch
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

// pollUntil waits until cond reports true, asking every interval, and fails the
// test with what and cond's last status if it has not by timeout.
func pollUntil(t *testing.T, timeout, interval time.Duration, what string, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for {
		ok, status := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("after %v: %s: %s", timeout, what, status)
		}
		<-tick.C
	}
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

// commitWatch samples the group's committed offsets while the test runs
// and checks each against the ledger: the listener may commit past a record
// only once its outcome is acknowledged (handled, its publish to a tier or
// DLT acknowledged, or read back from the DLT). The ledger learns of each
// outcome before the listener can mark the record, so a commit seen ahead
// of the ledger is a commit ahead of an outcome.
type commitWatch struct {
	cancel context.CancelFunc
	done   chan struct{}

	mu         sync.Mutex
	checked    map[clusterTP]int64 // every offset below is settled
	samples    int
	violations map[recordRef]string
}

// watchCommits starts sampling every 250 ms until commits.stop.
func (r *clusterRun) watchCommits() {
	w := &r.commits
	ctx, cancel := context.WithCancel(context.Background())
	w.cancel, w.done = cancel, make(chan struct{})
	w.checked, w.violations = map[clusterTP]int64{}, map[recordRef]string{}
	go func() {
		defer close(w.done)
		tick := time.NewTicker(250 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
			w.check(r)
		}
	}()
	r.t.Cleanup(w.stop)
}

func (w *commitWatch) stop() {
	if w.cancel != nil {
		w.cancel()
		<-w.done
	}
}

// check takes one sample; it skips samples the cluster cannot answer.
func (w *commitWatch) check(r *clusterRun) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	resp, err := r.nodes.Admin.FetchOffsets(ctx, r.f.group)
	if err != nil {
		return
	}
	topics := map[string]bool{}
	for _, t := range r.l.Plan().Topics() {
		topics[t] = true
	}
	lg := r.lg
	lg.mu.Lock()
	defer lg.mu.Unlock()
	w.mu.Lock()
	defer w.mu.Unlock()
	w.samples++
	resp.Each(func(o kadm.OffsetResponse) {
		if !topics[o.Topic] || o.Err != nil {
			return
		}
		k := clusterTP{o.Topic, o.Partition}
		for off := w.checked[k]; off < o.At; off++ {
			ref := recordRef{o.Topic, o.Partition, off}
			if !lg.settled[ref] {
				if _, seen := w.violations[ref]; !seen {
					w.violations[ref] = fmt.Sprintf("COMMIT AHEAD: %s[%d] committed at %d while offset %d had no acknowledged outcome (%s)",
						o.Topic, o.Partition, o.At, off, time.Now().Format(time.StampMilli))
				}
				return
			}
			w.checked[k] = off + 1
		}
	})
}

// lazyText defers a costly description until it is printed.
type lazyText func() string

func (f lazyText) String() string { return f() }

// clusterVerdict holds the figures of a verified run.
type clusterVerdict struct {
	handled, firstTry, afterRetries, dlt, permanent, exhausted int
	calls, dltCalls, dupCalls, rereads, extraCopiesRead        int
	extraTierCopies, extraDLTCopies, dupDLTCalls               int
	revokes, fwdFailed, early, commitSamples, commitAhead      int
	maxLate, p99Late                                           time.Duration
}

func (v clusterVerdict) String() string {
	return fmt.Sprintf("outcomes: %d handled (%d first try, %d after retries), %d dead-lettered (%d permanent, %d exhausted); "+
		"%d handler calls, %d DLT handler calls; duplicates: %d handler calls (%d re-reads of a record after a revoke, "+
		"%d reads of an extra copy), %d DLT handler calls, extra copies in Kafka: %d in tiers, %d in the DLT; "+
		"%d partitions revoked or lost before the shutdown, %d failed publishes retried; lateness of retries p99 %v, max %v; %d early; %d samples of the committed offsets, %d commits ahead of an outcome",
		v.handled, v.firstTry, v.afterRetries, v.dlt, v.permanent, v.exhausted,
		v.calls, v.dltCalls, v.dupCalls, v.rereads, v.extraCopiesRead, v.dupDLTCalls,
		v.extraTierCopies, v.extraDLTCopies, v.revokes, v.fwdFailed, v.p99Late.Round(time.Millisecond), v.maxLate.Round(time.Millisecond), v.early, v.commitSamples, v.commitAhead)
}

func (r *clusterRun) verify() clusterVerdict {
	t := r.t
	t.Helper()
	plan := r.l.Plan()
	r.checkTopicSettings()

	// What Kafka holds, read with a plain client.
	main := map[string]int{}
	for _, rc := range r.f.c.ReadAll(plan.Main) {
		main[string(rc.Key)]++
	}
	type ka struct {
		key     string
		attempt int32
	}
	inKafka := map[recordRef]ka{} // every tier and DLT record: its key and attempt
	tierCopies := map[ka]int{}
	for _, tier := range plan.Tiers {
		for _, rc := range r.f.c.ReadAll(tier.Topic) {
			st, ok, err := retry.Decode(rc.Headers)
			if !ok || err != nil {
				t.Errorf("%s[%d]@%d: kretry headers: %v (present %v)", rc.Topic, rc.Partition, rc.Offset, err, ok)
				continue
			}
			k := ka{string(rc.Key), st.Attempt}
			inKafka[recordRef{rc.Topic, rc.Partition, rc.Offset}] = k
			tierCopies[k]++
		}
	}
	dltCopies := map[string][]retry.State{}
	for _, rc := range r.f.c.ReadAll(plan.DLT) {
		st, _, err := retry.Decode(rc.Headers)
		if err != nil {
			t.Errorf("DLT %s[%d]@%d: kretry headers: %v", rc.Topic, rc.Partition, rc.Offset, err)
		}
		inKafka[recordRef{rc.Topic, rc.Partition, rc.Offset}] = ka{string(rc.Key), st.Attempt}
		dltCopies[string(rc.Key)] = append(dltCopies[string(rc.Key)], st)
	}

	lg := r.lg
	lg.mu.Lock()
	defer lg.mu.Unlock()
	if len(lg.unknown) > 0 {
		t.Errorf("handler saw %d unknown keys, e.g. %q", len(lg.unknown), lg.unknown[0])
	}
	var v clusterVerdict
	v.calls, v.dltCalls = len(lg.calls), len(lg.dltCalls)
	r.commits.mu.Lock()
	v.commitSamples, v.commitAhead = r.commits.samples, len(r.commits.violations)
	for _, msg := range r.commits.violations {
		t.Error(msg)
	}
	r.commits.mu.Unlock()
	for _, ts := range lg.revokes {
		for _, at := range ts {
			if at.Before(r.stopping) { // not the listener's own shutdown
				v.revokes++
			}
		}
	}
	for _, n := range lg.fwdFailed {
		v.fwdFailed += n
	}

	byKA := map[ka][]ledgerCall{}
	whose := map[recordRef]ka{} // source record of a forward -> its key and attempt
	var lates []time.Duration
	for _, c := range lg.calls {
		k := ka{c.key, c.attempt}
		byKA[k] = append(byKA[k], c)
		whose[c.recordRef] = k
		if c.attempt > 1 {
			if c.due.IsZero() {
				t.Errorf("%s attempt %d from %s[%d]@%d had no due time", c.key, c.attempt, c.topic, c.partition, c.offset)
			} else if c.at.Before(c.due) {
				v.early++
				t.Errorf("EARLY: %s attempt %d handled %v before its due time", c.key, c.attempt, c.due.Sub(c.at))
			} else {
				lates = append(lates, c.at.Sub(c.due))
			}
		}
	}
	if len(lates) > 0 {
		slices.Sort(lates)
		v.maxLate, v.p99Late = lates[len(lates)-1], lates[len(lates)*99/100]
	}
	dltByKey := map[string][]ledgerCall{}
	for _, c := range lg.dltCalls {
		dltByKey[c.key] = append(dltByKey[c.key], c)
	}
	// sources: failing deliveries of (key, attempt) plus their failed
	// publishes, each of which may have left a copy in the next topic.
	sources := func(k ka) int {
		n := 0
		for _, c := range byKA[k] {
			if c.failed {
				n++
			}
		}
		for src, fails := range lg.fwdFailed {
			if whose[src] == k {
				n += fails
			}
		}
		return n
	}
	// explained checks the calls of one (key, attempt) or of one key's DLT
	// records: each record read must exist in Kafka with that key and
	// attempt, and each re-read of a record must follow a revocation of its
	// partition after the previous read.
	explained := func(what string, cs []ledgerCall, want ka, mainTopic bool) (dups, rereads, copies int) {
		byRef := map[recordRef][]ledgerCall{}
		for _, c := range cs {
			byRef[c.recordRef] = append(byRef[c.recordRef], c)
		}
		for rf, rcs := range byRef {
			if mainTopic {
				if rf.topic != plan.Main {
					t.Errorf("%s: first delivery read from %s, not the main topic", what, rf.topic)
				}
			} else if got, ok := inKafka[rf]; !ok || got != want {
				t.Errorf("%s: read %s[%d]@%d, which Kafka holds as %+v (found %v)", what, rf.topic, rf.partition, rf.offset, got, ok)
			}
			for i := 1; i < len(rcs); i++ {
				revoked := slices.ContainsFunc(lg.revokes[clusterTP{rf.topic, rf.partition}], func(at time.Time) bool {
					return at.After(rcs[i-1].at) && at.Before(rcs[i].at)
				})
				if !revoked {
					t.Errorf("UNEXPLAINED DUPLICATE: %s: %s[%d]@%d read again with no revocation of its partition in between (%v, then %v)",
						what, rf.topic, rf.partition, rf.offset, rcs[i-1].at.Format(time.StampMicro), rcs[i].at.Format(time.StampMicro))
				}
			}
			rereads += len(rcs) - 1
		}
		if mainTopic && len(byRef) > 1 {
			t.Errorf("UNEXPLAINED DUPLICATE: %s: %d distinct main-topic records", what, len(byRef))
		}
		return len(cs) - 1, rereads, len(byRef) - 1
	}

	for key, f := range lg.fates {
		if main[key] != 1 {
			t.Errorf("%s: the main topic holds %d copies, want 1", key, main[key])
		}
		last := f.attempts()
		for a := int32(1); a <= last; a++ {
			k := ka{key, a}
			cs := byKA[k]
			if len(cs) == 0 {
				t.Errorf("MISSING: %s (%+v) never got delivery %d", key, f, a)
				continue
			}
			what := fmt.Sprintf("%s attempt %d", key, a)
			dups, rereads, copies := explained(what, cs, k, a == 1)
			v.dupCalls += dups
			v.rereads += rereads
			v.extraCopiesRead += copies
			if a > 1 {
				if n, allowed := tierCopies[k], sources(ka{key, a - 1}); n > allowed {
					t.Errorf("UNEXPLAINED DUPLICATE: %s: %d copies in the tiers, from %d failed deliveries and publishes of attempt %d",
						what, n, allowed, a-1)
				}
				v.extraTierCopies += max(0, tierCopies[k]-1)
			}
		}
		for k := range byKA {
			if k.key == key && (k.attempt < 1 || k.attempt > last) {
				t.Errorf("%s (%+v): delivered as attempt %d; it should get attempts 1..%d", key, f, k.attempt, last)
			}
		}
		handled := slices.ContainsFunc(byKA[ka{key, last}], func(c ledgerCall) bool { return !c.failed })
		copies, dcalls := dltCopies[key], dltByKey[key]
		switch reason := f.deadReason(); {
		case reason == "" && handled && len(copies) == 0 && len(dcalls) == 0:
			v.handled++
			if last == 1 {
				v.firstTry++
			} else {
				v.afterRetries++
			}
		case reason != "" && !handled && len(copies) > 0 && len(dcalls) > 0:
			v.dlt++
			if reason == retry.ReasonPermanent {
				v.permanent++
			} else {
				v.exhausted++
			}
			for _, st := range copies {
				if st.Reason != reason || st.Attempt != last || st.OriginalTopic != plan.Main {
					t.Errorf("%s: DLT record reason %q attempt %d original topic %q, want %q, %d, %q",
						key, st.Reason, st.Attempt, st.OriginalTopic, reason, last, plan.Main)
				}
			}
			if n, allowed := len(copies), sources(ka{key, last}); n > allowed {
				t.Errorf("UNEXPLAINED DUPLICATE: %s: %d copies in the DLT, from %d failed deliveries and publishes", key, n, allowed)
			}
			v.extraDLTCopies += len(copies) - 1
			dups, _, _ := explained(key+" in the DLT", dcalls, ka{key, last}, false)
			v.dupDLTCalls += dups
		default:
			t.Errorf("%s (%+v): not exactly one terminal outcome: handled %v, %d DLT copies, %d DLT handler calls",
				key, f, handled, len(copies), len(dcalls))
		}
	}
	return v
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
	r.stopping = time.Now()
	if err := stop(); err != nil {
		t.Fatalf("Run: %v", err)
	}
	r.commits.stop()
	r.commits.check(r) // the shutdown's final commit
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

func tierDelays(p strategy.Plan) []time.Duration {
	var ds []time.Duration
	for _, t := range p.Tiers {
		ds = append(ds, t.Delay)
	}
	return ds
}
