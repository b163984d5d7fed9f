package listener_test

// What the failure tests share: the fate of each key (crashloop_test.go,
// cluster_test.go, faults_test.go, storm_test.go), and the in-process
// ledger, its verdict and the commit watch of the cluster, fault and storm
// tests. The crash loop keeps its own ledger, a file its subprocesses
// append to.
//
// The verdict comes from an independent ledger: what the handler and the
// DLT handler saw, what the listener reported as acknowledged by Kafka
// (EventRetried, EventDeadLettered), and the tier and DLT topics read back
// with a plain client at the end. A commit watch samples the group's
// committed offsets during the run and flags any commit past a record
// whose outcome the ledger has not seen acknowledged; a false
// acknowledgement would still show as a record missing from Kafka.

import (
	"bytes"
	"context"
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/kretry/kretry/internal/kafkatest"
	"github.com/kretry/kretry/listener"
	"github.com/kretry/kretry/retry"
	"github.com/kretry/kretry/strategy"
)

// fate is what the handler does with one key. It depends only on the key
// and on the attempt number in the record's headers, never on how often
// the handler saw the key, so a redelivered or duplicated record meets the
// same fate.
type fate struct {
	fails     int  // deliveries failing with a retryable error, from the first
	permanent bool // the first delivery fails with strategy.Permanent
}

// fateMix spreads fates over key indexes, exactly per hundred keys: key i
// falls at i*step%100 (step coprime with 100), and the percentages below
// take their places in this order; the rest succeed at once.
type fateMix struct {
	step      int
	failing   []int // failing[n-1]: % failing n times, then succeeding
	permanent int   // % failing permanently
	exhausted int   // % failing every attempt
}

// of is the fate of key index i under a policy of attempts deliveries.
func (m fateMix) of(i, attempts int) fate {
	h := i * m.step % 100
	for n, pct := range m.failing {
		if h < pct {
			return fate{fails: n + 1}
		}
		h -= pct
	}
	switch {
	case h < m.permanent:
		return fate{permanent: true}
	case h < m.permanent+m.exhausted:
		return fate{fails: attempts}
	}
	return fate{}
}

func (f fate) err(key string, attempt int32) error {
	switch {
	case f.permanent:
		return strategy.Permanent(fmt.Errorf("%s: %w", key, errBoom))
	case int(attempt) <= f.fails:
		return fmt.Errorf("attempt %d of %s: %w", attempt, key, errBoom)
	}
	return nil
}

// last is the number of the key's last delivery.
func (f fate) last(attempts int) int32 {
	if f.permanent {
		return 1
	}
	return int32(min(f.fails+1, attempts))
}

// deadReason is the DLT reason the key must end with, or "" if it must end
// handled.
func (f fate) deadReason(attempts int) string {
	switch {
	case f.permanent:
		return retry.ReasonPermanent
	case f.fails >= attempts:
		return retry.ReasonExhausted
	}
	return ""
}

// koValuePrefix starts the value of a record of a key-order test, which
// names the record: "ko/<id>". Its Kafka key is the key it is ordered by,
// which several records share. Every other test record is named by its
// key.
const koValuePrefix = "ko/"

// recordID names a test record: the id in its value under key order, its
// key otherwise. The ledgers and the verdicts know records by it.
func recordID(rc *kgo.Record) string {
	if id, ok := bytes.CutPrefix(rc.Value, []byte(koValuePrefix)); ok {
		return string(id)
	}
	return string(rc.Key)
}

// recordRef names one record in Kafka.
type recordRef struct {
	topic     string
	partition int32
	offset    int64
}

func (r recordRef) String() string { return fmt.Sprintf("%s[%d]@%d", r.topic, r.partition, r.offset) }

// topicPartition names a partition.
type topicPartition struct {
	topic     string
	partition int32
}

// keyAttempt is a key and an attempt number.
type keyAttempt struct {
	key     string
	attempt int32
}

// ledgerCall is one handler or DLT handler call.
type ledgerCall struct {
	recordRef
	key     string
	attempt int32     // from the headers; 1 on the main topic
	due     time.Time // zero on the main topic and the DLT
	at      time.Time // when the call started
	ts      time.Time // the record's timestamp: it was fetched after it
	failed  bool
	reason  string // DLT calls: the kretry-reason header
}

// ledger is the handler, DLT handler and hook of the cluster, fault and
// storm tests. fates, onCall and onEvent are read-only once the listeners
// run.
type ledger struct {
	attempts int
	fates    map[string]fate
	// keyOrder: the listeners are key-ordered (KeyOrder), the records
	// share keys and are named by their values (recordID). A record's
	// first delivery may then come from a tier, as a follower.
	keyOrder bool
	// onCall and onEvent, if set, extend the bookkeeping of a handler call
	// of a known key and of an event; they run with mu held.
	onCall  func(ledgerCall)
	onEvent func(listener.Event)

	mu        sync.Mutex
	calls     []ledgerCall
	dltCalls  []ledgerCall
	unknown   []string
	final     map[string]bool // keys that reached a terminal outcome
	finalN    int
	settled   map[recordRef]bool // records whose outcome is acknowledged
	fwdFailed map[recordRef]int
	followed  map[recordRef]int // key order: follower publishes acknowledged (EventFollowed), by source record
	revokes   map[topicPartition][]time.Time
	resets    map[topicPartition][]time.Time // the client rewound the partition (kgo.ErrDataLoss)
	assigns   int
	stopping  time.Time // the listeners were told to stop: later revocations are theirs
	retried   int
	dead      int
	dropped   int
}

// newLedger gives keys their fates from mix under a policy of attempts
// deliveries.
func newLedger(keys []string, attempts int, mix fateMix) *ledger {
	lg := &ledger{attempts: attempts, fates: map[string]fate{}, final: map[string]bool{},
		settled: map[recordRef]bool{}, fwdFailed: map[recordRef]int{}, followed: map[recordRef]int{}, revokes: map[topicPartition][]time.Time{},
		resets: map[topicPartition][]time.Time{}}
	for i, k := range keys {
		lg.fates[k] = mix.of(i, attempts)
	}
	return lg
}

func (lg *ledger) Handle(ctx context.Context, rec *kgo.Record) error {
	at := time.Now()
	st, retried := retry.FromContext(ctx)
	attempt := int32(1)
	if retried {
		attempt = st.Attempt
	}
	key := recordID(rec)
	f, ok := lg.fates[key]
	var err error
	if ok {
		err = f.err(key, attempt)
	} else {
		err = strategy.Permanent(fmt.Errorf("unknown key %q", key))
	}
	ref := recordRef{rec.Topic, rec.Partition, rec.Offset}
	lg.mu.Lock()
	defer lg.mu.Unlock()
	if !ok {
		lg.unknown = append(lg.unknown, key)
		return err
	}
	c := ledgerCall{recordRef: ref, key: key, attempt: attempt, due: st.Due, at: at, ts: rec.Timestamp, failed: err != nil}
	lg.calls = append(lg.calls, c)
	if lg.onCall != nil {
		lg.onCall(c)
	}
	if err == nil {
		// Before returning: the listener marks the record only after.
		lg.finalLocked(key)
		lg.settled[ref] = true
	}
	return err
}

func (lg *ledger) HandleDLT(_ context.Context, rec *kgo.Record, st retry.State) error {
	at := time.Now()
	ref := recordRef{rec.Topic, rec.Partition, rec.Offset}
	lg.mu.Lock()
	defer lg.mu.Unlock()
	key := recordID(rec)
	lg.dltCalls = append(lg.dltCalls, ledgerCall{recordRef: ref, key: key, attempt: st.Attempt, at: at, ts: rec.Timestamp, reason: st.Reason})
	lg.finalLocked(key)
	lg.settled[ref] = true
	return nil
}

// stop notes that the listeners are being stopped.
func (lg *ledger) stop() {
	lg.mu.Lock()
	lg.stopping = time.Now()
	lg.mu.Unlock()
}

func (lg *ledger) finalLocked(key string) {
	if !lg.final[key] {
		lg.final[key] = true
		lg.finalN++
	}
}

func (lg *ledger) OnEvent(e listener.Event) {
	lg.mu.Lock()
	defer lg.mu.Unlock()
	ref := recordRef{e.Topic, e.Partition, e.Offset}
	switch e.Kind {
	case listener.EventRetried:
		lg.retried++
		lg.settled[ref] = true
	case listener.EventDeadLettered:
		lg.dead++
		lg.settled[ref] = true
	case listener.EventDropped:
		lg.dropped++
		lg.settled[ref] = true
	case listener.EventForwardFailed:
		lg.fwdFailed[ref]++
	case listener.EventFollowed:
		lg.followed[ref]++
		lg.settled[ref] = true
	case listener.EventRevoked:
		tp := topicPartition{e.Topic, e.Partition}
		lg.revokes[tp] = append(lg.revokes[tp], time.Now())
	case listener.EventAssigned:
		lg.assigns++
	}
	if lg.onEvent != nil {
		lg.onEvent(e)
	}
}

// faultResetLog is a franz-go logger that tells the ledger when the client
// rewinds a partition after detecting data loss (kgo.ErrDataLoss): on kfake,
// every leader move makes the client's leader-epoch check (OffsetForLeaderEpoch)
// answer that the log diverged, and the client resets the partition to an
// earlier offset, so records are read again without any revocation. A real
// broker keeps its leader-epoch history and does not do this.
type faultResetLog struct{ lg *ledger }

func (faultResetLog) Level() kgo.LogLevel { return kgo.LogLevelInfo }

func (r faultResetLog) Log(_ kgo.LogLevel, _ string, keyvals ...any) {
	for _, kv := range keyvals {
		if dl, ok := kv.(*kgo.ErrDataLoss); ok {
			r.lg.mu.Lock()
			tp := topicPartition{dl.Topic, dl.Partition}
			r.lg.resets[tp] = append(r.lg.resets[tp], time.Now())
			r.lg.mu.Unlock()
		}
	}
}

// finals is how many keys reached a terminal outcome.
func (lg *ledger) finals() int {
	lg.mu.Lock()
	defer lg.mu.Unlock()
	return lg.finalN
}

func (lg *ledger) done() bool { return lg.finals() == len(lg.fates) }

// missing describes keys without a terminal outcome, for failure messages.
func (lg *ledger) missing() string {
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

// commitWatch samples the group's committed offsets while a test runs and
// checks each against the ledger: the listener may commit past a record
// only once its outcome is acknowledged (handled, its publish to a tier or
// DLT acknowledged, or read back from the DLT). The ledger learns of each
// outcome before the listener can mark the record, so a commit seen ahead
// of the ledger is a commit ahead of an outcome.
type commitWatch struct {
	adm    *kadm.Client
	group  string
	topics map[string]bool
	lg     *ledger
	cancel context.CancelFunc
	done   chan struct{}

	mu         sync.Mutex
	checked    map[topicPartition]int64 // every offset below is settled
	samples    int
	violations map[recordRef]string
}

// watchCommits samples the commits of group on topics every interval
// until stop.
func watchCommits(t *testing.T, adm *kadm.Client, group string, topics []string, lg *ledger, every time.Duration) *commitWatch {
	ctx, cancel := context.WithCancel(context.Background())
	w := &commitWatch{adm: adm, group: group, topics: map[string]bool{}, lg: lg, cancel: cancel,
		done: make(chan struct{}), checked: map[topicPartition]int64{}, violations: map[recordRef]string{}}
	for _, tp := range topics {
		w.topics[tp] = true
	}
	go func() {
		defer close(w.done)
		tick := time.NewTicker(every)
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
			w.check()
		}
	}()
	t.Cleanup(w.stop)
	return w
}

func (w *commitWatch) stop() {
	w.cancel()
	<-w.done
}

// check takes one sample; it skips samples the cluster cannot answer.
func (w *commitWatch) check() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	resp, err := w.adm.FetchOffsets(ctx, w.group)
	if err != nil {
		return
	}
	lg := w.lg
	lg.mu.Lock()
	defer lg.mu.Unlock()
	w.mu.Lock()
	defer w.mu.Unlock()
	w.samples++
	resp.Each(func(o kadm.OffsetResponse) {
		if !w.topics[o.Topic] || o.Err != nil {
			return
		}
		k := topicPartition{o.Topic, o.Partition}
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

// copyOf is a tier or DLT record read back from Kafka.
type copyOf struct {
	key      string    // its recordID
	attempt  int32     // a tier record: the attempt it is for; a DLT record: deliveries it had
	reason   string    // DLT records
	original string    // its kretry-original-topic
	ts       time.Time // the record's timestamp, stamped by the producer that forwarded it
	follower bool      // a tier record: a key-order follower (retry.HeaderFollows)
}

// readBack is what Kafka holds of a plan's topics, read with a plain
// client that joins no group: the verdicts of the fault, storm, cluster
// and crash-loop tests are built on it, never on the listener's own state.
type readBack struct {
	mainKey    map[recordRef]string // main-topic records: their recordID
	mainGroup  map[recordRef]string // main-topic records: their Kafka key (key order: what they are ordered by)
	mainCopies map[string]int       // per key
	tier       map[recordRef]copyOf // every record of every tier topic
	tierCopies map[keyAttempt]int   // tier copies, followers (key order) left out
	tierStamps map[keyAttempt][]time.Time
	followers  map[keyAttempt]int // the tier copies that are key-order followers
	dlt        map[recordRef]copyOf
	dltByKey   map[string][]recordRef
	// bad lists the tier and DLT records whose kretry headers did not
	// decode (a tier record without them too).
	bad []string
}

// readPlan reads every record of plan's main topic, tiers (each reused
// tier topic once) and DLT.
func readPlan(c *kafkatest.Cluster, plan strategy.Plan, committed bool) readBack {
	read := c.ReadAll
	if committed {
		read = c.ReadCommitted
	}
	rb := readBack{mainKey: map[recordRef]string{}, mainGroup: map[recordRef]string{}, mainCopies: map[string]int{},
		tier: map[recordRef]copyOf{}, tierCopies: map[keyAttempt]int{}, tierStamps: map[keyAttempt][]time.Time{},
		followers: map[keyAttempt]int{}, dlt: map[recordRef]copyOf{}, dltByKey: map[string][]recordRef{}}
	for _, rc := range read(plan.Main) {
		ref := recordRef{rc.Topic, rc.Partition, rc.Offset}
		rb.mainKey[ref], rb.mainGroup[ref] = recordID(rc), string(rc.Key)
		rb.mainCopies[recordID(rc)]++
	}
	seen := map[string]bool{}
	for _, tt := range plan.Tiers {
		if seen[tt.Topic] {
			continue // a reused tier topic
		}
		seen[tt.Topic] = true
		for _, rc := range read(tt.Topic) {
			ref := recordRef{rc.Topic, rc.Partition, rc.Offset}
			st, ok, err := retry.Decode(rc.Headers)
			if !ok || err != nil {
				rb.bad = append(rb.bad, fmt.Sprintf("%v: kretry headers present %v, %v", ref, ok, err))
				continue
			}
			k := keyAttempt{recordID(rc), st.Attempt}
			rb.tier[ref] = copyOf{key: k.key, attempt: st.Attempt, original: st.OriginalTopic, ts: rc.Timestamp, follower: st.Follower}
			if st.Follower {
				rb.followers[k]++
				continue
			}
			rb.tierCopies[k]++
			rb.tierStamps[k] = append(rb.tierStamps[k], rc.Timestamp)
		}
	}
	for _, rc := range read(plan.DLT) {
		ref := recordRef{rc.Topic, rc.Partition, rc.Offset}
		st, _, err := retry.Decode(rc.Headers)
		if err != nil {
			rb.bad = append(rb.bad, fmt.Sprintf("DLT %v: kretry headers: %v", ref, err))
		}
		k := recordID(rc)
		rb.dlt[ref] = copyOf{key: k, attempt: st.Attempt, reason: st.Reason, original: st.OriginalTopic, ts: rc.Timestamp}
		rb.dltByKey[k] = append(rb.dltByKey[k], ref)
	}
	return rb
}

// verdict holds the figures of a verified run. Its String is the fault and
// storm tests' summary; the cluster tests print theirs (clusterVerdict).
type verdict struct {
	keys, handled, firstTry, afterRetries, dlt, permanent, exhausted int
	calls, dltCalls, dupCalls, rereads, extraCopiesRead              int
	extraTierCopies, extraDLTCopies, dupDLTCalls                     int
	revokes, resets, fwdFailed, early, commitSamples, commitAhead    int
	maxLate, p99Late                                                 time.Duration
	follows, followerCopies                                          int // key order: acknowledged follower publishes, follower copies in the tiers
}

func (v verdict) String() string {
	return fmt.Sprintf("%d keys: %d handled (%d first try, %d after retries), %d dead-lettered (%d permanent, %d exhausted); "+
		"%d handler calls, %d DLT handler calls; duplicates: %d handler calls (%d re-reads after a revoke or rewind, %d reads of an extra copy), "+
		"%d DLT handler calls; extra copies in Kafka: %d in tiers, %d in the DLT; %d revocations before the shutdown, %d client rewinds after kfake's data-loss answers, %d failed publishes retried by kretry; "+
		"%d early (max lateness %v); %d commit samples, %d commits ahead of an outcome",
		v.keys, v.handled, v.firstTry, v.afterRetries, v.dlt, v.permanent, v.exhausted,
		v.calls, v.dltCalls, v.dupCalls, v.rereads, v.extraCopiesRead, v.dupDLTCalls,
		v.extraTierCopies, v.extraDLTCopies, v.revokes, v.resets, v.fwdFailed, v.early, v.maxLate.Round(time.Millisecond),
		v.commitSamples, v.commitAhead)
}

// verifyLedger checks the ledger against what Kafka holds: every key
// reached exactly the outcome its fate calls for, every delivery it should
// get happened, no retry was handled before its due time, no commit ran
// ahead of an outcome (if w is set), no record was dropped, and every
// duplicate is explained. A handler call repeating one record must follow
// a revocation of that record's partition, or a rewind of it by the client
// (faultResetLog); a copy in a tier or the DLT beyond the first must come
// from a failed delivery or a failed publish of its source, unless copies
// is set: then extra copies are counted, not checked (a non-idempotent
// producer retrying an ambiguous produce writes them). Call it after the
// listeners stopped.
func verifyLedger(t *testing.T, c *kafkatest.Cluster, plan strategy.Plan, lg *ledger, w *commitWatch, copies bool) verdict {
	t.Helper()
	attempts := lg.attempts
	rb := readPlan(c, plan, false)
	for _, b := range rb.bad {
		t.Error(b)
	}
	main, tierCopies := rb.mainCopies, rb.tierCopies
	inKafka := map[recordRef]keyAttempt{} // every tier and DLT record: its key and attempt
	for ref, cp := range rb.tier {
		inKafka[ref] = keyAttempt{cp.key, cp.attempt}
	}
	for ref, cp := range rb.dlt {
		inKafka[ref] = keyAttempt{cp.key, cp.attempt}
	}

	lg.mu.Lock()
	defer lg.mu.Unlock()
	var v verdict
	v.keys = len(lg.fates)
	if len(lg.unknown) > 0 {
		t.Errorf("handler saw %d unknown keys, e.g. %q", len(lg.unknown), lg.unknown[0])
	}
	if lg.dropped > 0 {
		t.Errorf("%d records dropped; none should be", lg.dropped)
	}
	v.calls, v.dltCalls = len(lg.calls), len(lg.dltCalls)
	if w != nil {
		w.mu.Lock()
		v.commitSamples, v.commitAhead = w.samples, len(w.violations)
		for _, msg := range w.violations {
			t.Error(msg)
		}
		w.mu.Unlock()
	}
	for _, ts := range lg.revokes {
		for _, at := range ts {
			if lg.stopping.IsZero() || at.Before(lg.stopping) {
				v.revokes++
			}
		}
	}
	for _, ts := range lg.resets {
		v.resets += len(ts)
	}
	for _, n := range lg.fwdFailed {
		v.fwdFailed += n
	}

	byKA := map[keyAttempt][]ledgerCall{}
	whose := map[recordRef]keyAttempt{} // source record of a forward -> its key and attempt
	var lates []time.Duration
	for _, cl := range lg.calls {
		k := keyAttempt{cl.key, cl.attempt}
		byKA[k] = append(byKA[k], cl)
		whose[cl.recordRef] = k
		if cl.attempt > 1 {
			switch {
			case cl.due.IsZero():
				t.Errorf("%s attempt %d from %s[%d]@%d had no due time", cl.key, cl.attempt, cl.topic, cl.partition, cl.offset)
			case cl.at.Before(cl.due):
				v.early++
				t.Errorf("EARLY: %s attempt %d handled %v before its due time", cl.key, cl.attempt, cl.due.Sub(cl.at))
			default:
				lates = append(lates, cl.at.Sub(cl.due))
			}
		}
	}
	if len(lates) > 0 {
		slices.Sort(lates)
		v.maxLate, v.p99Late = lates[len(lates)-1], lates[len(lates)*99/100]
	}
	dltByKey := map[string][]ledgerCall{}
	for _, cl := range lg.dltCalls {
		dltByKey[cl.key] = append(dltByKey[cl.key], cl)
	}
	// sources: failing deliveries of (key, attempt) plus their failed
	// publishes, each of which may have left a copy in the next topic.
	sources := func(k keyAttempt) int {
		n := 0
		for _, cl := range byKA[k] {
			if cl.failed {
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
	// attempt, and each re-read of a record must follow a revocation or a
	// rewind of its partition.
	explained := func(what string, cs []ledgerCall, want keyAttempt, mainTopic bool) (dups, rereads, extra int) {
		byRef := map[recordRef][]ledgerCall{}
		for _, cl := range cs {
			byRef[cl.recordRef] = append(byRef[cl.recordRef], cl)
		}
		mainRefs := 0
		for rf, rcs := range byRef {
			if rf.topic == plan.Main {
				mainRefs++
			}
			// A first delivery is of the main-topic record, or under key
			// order of a follower copy in a tier.
			fromTier := !mainTopic || rf.topic != plan.Main
			if fromTier && mainTopic && !lg.keyOrder {
				t.Errorf("%s: first delivery read from %s, not the main topic", what, rf.topic)
			} else if got, ok := inKafka[rf]; fromTier && (!ok || got != want) {
				t.Errorf("%s: read %s[%d]@%d, which Kafka holds as %+v (found %v)", what, rf.topic, rf.partition, rf.offset, got, ok)
			}
			for i := 1; i < len(rcs); i++ {
				// A revocation drops what the listener holds: it must come
				// after the previous read. A rewind makes the client fetch
				// the record again while the listener may still hold the
				// copy it fetched before: it must come after the record was
				// written (its timestamp, in ms) and before the second read.
				revoked := func(at time.Time) bool { return at.After(rcs[i-1].at) && at.Before(rcs[i].at) }
				rewound := func(at time.Time) bool {
					return at.After(rcs[i].ts.Add(-time.Millisecond)) && at.Before(rcs[i].at)
				}
				tp := topicPartition{rf.topic, rf.partition}
				if !slices.ContainsFunc(lg.revokes[tp], revoked) && !slices.ContainsFunc(lg.resets[tp], rewound) {
					t.Errorf("UNEXPLAINED DUPLICATE: %s: %s[%d]@%d read again with no revocation or rewind of its partition in between (%v, then %v)",
						what, rf.topic, rf.partition, rf.offset, rcs[i-1].at.Format(time.StampMicro), rcs[i].at.Format(time.StampMicro))
				}
			}
			rereads += len(rcs) - 1
		}
		if mainRefs > 1 {
			t.Errorf("UNEXPLAINED DUPLICATE: %s: %d distinct main-topic records", what, mainRefs)
		}
		return len(cs) - 1, rereads, len(byRef) - 1
	}

	for key, f := range lg.fates {
		if main[key] != 1 {
			t.Errorf("%s: the main topic holds %d copies, want 1", key, main[key])
		}
		last := f.last(attempts)
		for a := int32(1); a <= last; a++ {
			k := keyAttempt{key, a}
			cs := byKA[k]
			if len(cs) == 0 {
				t.Errorf("MISSING: %s (%+v) never got delivery %d", key, f, a)
				continue
			}
			dups, rereads, extra := explained(fmt.Sprintf("%s attempt %d", key, a), cs, k, a == 1)
			v.dupCalls += dups
			v.rereads += rereads
			v.extraCopiesRead += extra
			if a > 1 {
				if n, allowed := tierCopies[k], sources(keyAttempt{key, a - 1}); n > allowed && !copies {
					t.Errorf("UNEXPLAINED DUPLICATE: %s attempt %d: %d copies in the tiers, from %d failed deliveries and publishes of attempt %d",
						key, a, n, allowed, a-1)
				}
				v.extraTierCopies += max(0, tierCopies[k]-1)
			}
		}
		for k := range byKA {
			if k.key == key && (k.attempt < 1 || k.attempt > last) {
				t.Errorf("%s (%+v): delivered as attempt %d; it should get attempts 1..%d", key, f, k.attempt, last)
			}
		}
		handled := slices.ContainsFunc(byKA[keyAttempt{key, last}], func(cl ledgerCall) bool { return !cl.failed })
		dcopies, dcalls := rb.dltByKey[key], dltByKey[key]
		switch reason := f.deadReason(attempts); {
		case reason == "" && handled && len(dcopies) == 0 && len(dcalls) == 0:
			v.handled++
			if last == 1 {
				v.firstTry++
			} else {
				v.afterRetries++
			}
		case reason != "" && !handled && len(dcopies) > 0 && len(dcalls) > 0:
			v.dlt++
			if reason == retry.ReasonPermanent {
				v.permanent++
			} else {
				v.exhausted++
			}
			for _, ref := range dcopies {
				if cp := rb.dlt[ref]; cp.reason != reason || cp.attempt != last || cp.original != plan.Main {
					t.Errorf("%s: DLT record reason %q attempt %d original topic %q, want %q, %d, %q",
						key, cp.reason, cp.attempt, cp.original, reason, last, plan.Main)
				}
			}
			if n, allowed := len(dcopies), sources(keyAttempt{key, last}); n > allowed && !copies {
				t.Errorf("UNEXPLAINED DUPLICATE: %s: %d copies in the DLT, from %d failed deliveries and publishes", key, n, allowed)
			}
			v.extraDLTCopies += len(dcopies) - 1
			dups, _, _ := explained(key+" in the DLT", dcalls, keyAttempt{key, last}, false)
			v.dupDLTCalls += dups
		default:
			t.Errorf("%s (%+v): not exactly one terminal outcome: handled %v, %d DLT copies, %d DLT handler calls",
				key, f, handled, len(dcopies), len(dcalls))
		}
	}
	if lg.keyOrder {
		// Every follower copy in a tier comes from an acknowledged follower
		// publish of that record and attempt (EventFollowed, by its source:
		// the main-topic record, attempt 1, or a tier copy), or from a
		// publish kretry retried after a failure.
		acked := map[keyAttempt]int{}
		for src, n := range lg.followed {
			v.follows += n
			if id, ok := rb.mainKey[src]; ok {
				acked[keyAttempt{id, 1}] += n + lg.fwdFailed[src]
			} else if cp, ok := rb.tier[src]; ok {
				acked[keyAttempt{cp.key, cp.attempt}] += n + lg.fwdFailed[src]
			} else {
				t.Errorf("a follower publish of %v, which is neither on the main topic nor in a tier", src)
			}
		}
		for k, n := range rb.followers {
			v.followerCopies += n
			if n > acked[k] && !copies {
				t.Errorf("UNEXPLAINED DUPLICATE: %s attempt %d: %d follower copies in the tiers, from %d acknowledged follower publishes and failed publishes",
					k.key, k.attempt, n, acked[k])
			}
		}
	}
	return v
}

// pollUntil waits until cond reports true, asking every interval, and fails
// the test with what and cond's last status if it has not by timeout.
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

// lazyText defers a costly description until it is printed.
type lazyText func() string

func (f lazyText) String() string { return f() }

// tierDelays lists the delays of a plan's tiers.
func tierDelays(p strategy.Plan) []time.Duration {
	var ds []time.Duration
	for _, t := range p.Tiers {
		ds = append(ds, t.Delay)
	}
	return ds
}

// checkOrder runs checkKeyOrder over the ledger's handler calls and fails
// t for each violation. Call it after the listeners stopped.
func (lg *ledger) checkOrder(t *testing.T, c *kafkatest.Cluster, plan strategy.Plan) keyOrderFigures {
	t.Helper()
	rb := readPlan(c, plan, false)
	lg.mu.Lock()
	defer lg.mu.Unlock()
	calls := make([]orderCall, 0, len(lg.calls))
	for _, cl := range lg.calls {
		f := lg.fates[cl.key]
		calls = append(calls, orderCall{id: cl.key, ok: !cl.failed,
			terminal: !cl.failed || f.deadReason(lg.attempts) != "" && cl.attempt == f.last(lg.attempts),
			what:     fmt.Sprintf("attempt %d from %v at %s", cl.attempt, cl.recordRef, cl.at.Format(time.StampMicro))})
	}
	return checkKeyOrder(rb, calls, func(kind, format string, args ...any) {
		t.Errorf(kind+": "+format, args...)
	})
}

// orderCall is one handler call for the key-order check, in the order the
// calls were made.
type orderCall struct {
	id       string // the record's recordID
	ok       bool   // the handler returned nil
	terminal bool   // the call decided the record's outcome: ok, or a failure its fate dead-letters
	what     string // where and when, for messages
}

// checkKeyOrder is the order check of the key-order reliability tests
// (the model is keyorder_test.go's orderChecker). rb.mainGroup is the key
// each main-topic record is ordered by; calls are every handler call of
// the run, in call order. For each key, its records taken in main-topic
// offset order:
//
//   - their first successful calls are in that order (OUT OF ORDER);
//   - no record is handed to the handler before every earlier record of
//     its key had its outcome: a successful call, or the failed call that
//     dead-lettered it (CALL AHEAD OF ITS KEY). Under config.FollowersRelease
//     the records behind a dead-lettered one are handled after it.
//
// At least once, a record may be handed to the handler again after a
// later record of its key was: a killed consumer re-reads what it had not
// committed, or a revoked partition's next owner does. That is allowed
// only once the record had its outcome (the second rule), and counted as
// laterReread. fail reports a violation.
func checkKeyOrder(rb readBack, calls []orderCall, fail func(kind, format string, args ...any)) keyOrderFigures {
	var f keyOrderFigures
	type keyed struct {
		ref recordRef
		id  string
	}
	byKey := map[string][]keyed{}
	for ref, id := range rb.mainKey {
		byKey[rb.mainGroup[ref]] = append(byKey[rb.mainGroup[ref]], keyed{ref, id})
	}
	byID := map[string][]int{} // call indexes
	firstOK, term := map[string]int{}, map[string]int{}
	for i, c := range calls {
		byID[c.id] = append(byID[c.id], i)
		if _, seen := firstOK[c.id]; c.ok && !seen {
			firstOK[c.id] = i
		}
		if _, seen := term[c.id]; c.terminal && !seen {
			term[c.id] = i
		}
	}
	f.keys = len(byKey)
	group := map[string]string{}
	for ref, id := range rb.mainKey {
		group[id] = rb.mainGroup[ref]
	}
	followedKeys := map[string]bool{}
	for _, cp := range rb.tier {
		if cp.follower {
			f.followerCopies++
			followedKeys[group[cp.key]] = true
		}
	}
	f.keysFollowed = len(followedKeys)
	for key, rs := range byKey {
		slices.SortFunc(rs, func(a, b keyed) int {
			if a.ref.partition != b.ref.partition {
				return int(a.ref.partition - b.ref.partition)
			}
			return int(a.ref.offset - b.ref.offset)
		})
		f.perKeyMax = max(f.perKeyMax, len(rs))
		if rs[0].ref.partition != rs[len(rs)-1].ref.partition {
			f.twoPartitions++
			fail("KEY ON TWO PARTITIONS", "key %s: records on main partitions %d and %d", key, rs[0].ref.partition, rs[len(rs)-1].ref.partition)
			continue
		}
		rank := map[string]int{}
		prevTerm, prevFirst := -1, -1 // the latest terminal call, and first success, of the earlier records
		var prevTermID, prevFirstID, missing string
		dead := false // an earlier record was dead-lettered
		for n, r := range rs {
			rank[r.id] = n
			if cs := byID[r.id]; len(cs) > 0 {
				switch c := calls[cs[0]]; {
				case missing != "":
					f.callsAhead++
					fail("CALL AHEAD OF ITS KEY", "key %s: %s at %v handed to the handler (%s), but the earlier %s never had its outcome",
						key, r.id, r.ref, c.what, missing)
				case cs[0] < prevTerm:
					f.callsAhead++
					fail("CALL AHEAD OF ITS KEY", "key %s: %s at %v handed to the handler (%s) before the earlier %s had its outcome (%s)",
						key, r.id, r.ref, c.what, prevTermID, calls[prevTerm].what)
				}
			}
			if first, ok := firstOK[r.id]; ok {
				if first < prevFirst {
					f.outOfOrder++
					fail("OUT OF ORDER", "key %s: %s at %v first handled (%s) before the earlier %s (%s)",
						key, r.id, r.ref, calls[first].what, prevFirstID, calls[prevFirst].what)
				}
				if dead {
					f.released++
				}
				if first > prevFirst {
					prevFirst, prevFirstID = first, r.id
				}
			}
			t, ok := term[r.id]
			switch {
			case !ok:
				if missing == "" {
					missing = r.id
					f.unordered++
				}
			case t > prevTerm:
				prevTerm, prevTermID = t, r.id
			}
			if ok && !calls[t].ok {
				dead = true
			}
		}
		// Calls that went back to an earlier record of the key.
		var ids []int
		for _, r := range rs {
			ids = append(ids, byID[r.id]...)
		}
		slices.Sort(ids)
		top := -1
		for _, i := range ids {
			if rk := rank[calls[i].id]; rk < top {
				f.laterReread++
			} else {
				top = rk
			}
		}
	}
	return f
}
