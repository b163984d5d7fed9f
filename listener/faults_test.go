package listener_test

// Broker-fault tests on kfake with three brokers: produce errors on the
// retry tiers and the DLT (rejected, retriable, and ambiguous ones that the
// broker answers with an error after appending), offset-commit failures
// while partitions change hands, and coordinator and partition-leader moves.
// They need kfake's fault injection and skip on a real broker.
//
// The verdict comes from an independent ledger (faultLedger): what the
// handler and the DLT handler saw, what the listener reported as
// acknowledged by Kafka (EventRetried, EventDeadLettered), and the tier and
// DLT topics read back with a plain client at the end. A commit watch
// samples the group's committed offsets during the run and flags any commit
// past a record whose outcome the ledger has not seen acknowledged.
//
// The ledger, its verdict and the commit watch are shared with the storm
// test (storm_test.go).

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kretry/kretry/internal/kafkatest"
	"github.com/kretry/kretry/listener"
	"github.com/kretry/kretry/retry"
	"github.com/kretry/kretry/strategy"
)

// faultWait bounds conditions that take a second or two when all is well.
const faultWait = 60 * time.Second

// faultFate is what the handler does with one key. It depends only on the
// attempt number in the record's headers, never on how often the handler
// saw the key, so a redelivered or duplicated record meets the same fate.
type faultFate struct {
	fails     int  // deliveries failing with a retryable error, from the first
	permanent bool // the first delivery fails with strategy.Permanent
}

// faultFateOf spreads fates over the keys: 20% fail once, 15% twice, 5%
// fail permanently, 5% fail every attempt (exhausted), 55% succeed at once.
func faultFateOf(i, attempts int) faultFate {
	switch h := i * 37 % 100; {
	case h < 20:
		return faultFate{fails: 1}
	case h < 35:
		return faultFate{fails: 2}
	case h < 40:
		return faultFate{permanent: true}
	case h < 45:
		return faultFate{fails: attempts}
	}
	return faultFate{}
}

func (f faultFate) err(key string, attempt int32) error {
	switch {
	case f.permanent:
		return strategy.Permanent(fmt.Errorf("%s: %w", key, errBoom))
	case int(attempt) <= f.fails:
		return fmt.Errorf("attempt %d of %s: %w", attempt, key, errBoom)
	}
	return nil
}

// last is the number of the key's last delivery.
func (f faultFate) last(attempts int) int32 {
	if f.permanent {
		return 1
	}
	return int32(min(f.fails+1, attempts))
}

// deadReason is the DLT reason the key must end with, or "" if it must end
// handled.
func (f faultFate) deadReason(attempts int) string {
	switch {
	case f.permanent:
		return retry.ReasonPermanent
	case f.fails >= attempts:
		return retry.ReasonExhausted
	}
	return ""
}

// faultRef names one record in Kafka.
type faultRef struct {
	topic     string
	partition int32
	offset    int64
}

// faultTP names a partition.
type faultTP struct {
	topic     string
	partition int32
}

// faultCall is one handler or DLT handler call.
type faultCall struct {
	faultRef
	key     string
	attempt int32     // from the headers; 1 on the main topic
	due     time.Time // zero on the main topic and the DLT
	at      time.Time // when the call started
	ts      time.Time // the record's timestamp: it was fetched after it
	failed  bool
	reason  string // DLT calls: the kretry-reason header
}

// faultLedger is the handler, DLT handler and hook of the fault and storm
// tests. fates is read-only once the listeners run.
type faultLedger struct {
	attempts int
	fates    map[string]faultFate

	mu        sync.Mutex
	calls     []faultCall
	dltCalls  []faultCall
	unknown   []string
	final     map[string]bool // keys that reached a terminal outcome
	finalN    int
	settled   map[faultRef]bool // records whose outcome is acknowledged
	fwdFailed map[faultRef]int
	revokes   map[faultTP][]time.Time
	resets    map[faultTP][]time.Time // the client rewound the partition (kgo.ErrDataLoss)
	assigns   int
	stopping  time.Time // the listeners were told to stop: later revocations are theirs
	retried   int
	dead      int
	dropped   int
}

// newFaultLedger gives keys their fates under a policy of attempts
// deliveries.
func newFaultLedger(keys []string, attempts int) *faultLedger {
	lg := &faultLedger{attempts: attempts, fates: map[string]faultFate{}, final: map[string]bool{},
		settled: map[faultRef]bool{}, fwdFailed: map[faultRef]int{}, revokes: map[faultTP][]time.Time{},
		resets: map[faultTP][]time.Time{}}
	for i, k := range keys {
		lg.fates[k] = faultFateOf(i, attempts)
	}
	return lg
}

func (lg *faultLedger) Handle(ctx context.Context, rec *kgo.Record) error {
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
	ref := faultRef{rec.Topic, rec.Partition, rec.Offset}
	lg.mu.Lock()
	defer lg.mu.Unlock()
	if !ok {
		lg.unknown = append(lg.unknown, key)
		return err
	}
	lg.calls = append(lg.calls, faultCall{faultRef: ref, key: key, attempt: attempt, due: st.Due, at: at, ts: rec.Timestamp, failed: err != nil})
	if err == nil {
		// Before returning: the listener marks the record only after.
		lg.finalLocked(key)
		lg.settled[ref] = true
	}
	return err
}

func (lg *faultLedger) HandleDLT(_ context.Context, rec *kgo.Record, st retry.State) error {
	at := time.Now()
	ref := faultRef{rec.Topic, rec.Partition, rec.Offset}
	lg.mu.Lock()
	defer lg.mu.Unlock()
	key := string(rec.Key)
	lg.dltCalls = append(lg.dltCalls, faultCall{faultRef: ref, key: key, attempt: st.Attempt, at: at, ts: rec.Timestamp, reason: st.Reason})
	lg.finalLocked(key)
	lg.settled[ref] = true
	return nil
}

// stop notes that the listeners are being stopped.
func (lg *faultLedger) stop() {
	lg.mu.Lock()
	lg.stopping = time.Now()
	lg.mu.Unlock()
}

func (lg *faultLedger) finalLocked(key string) {
	if !lg.final[key] {
		lg.final[key] = true
		lg.finalN++
	}
}

func (lg *faultLedger) OnEvent(e listener.Event) {
	lg.mu.Lock()
	defer lg.mu.Unlock()
	ref := faultRef{e.Topic, e.Partition, e.Offset}
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
	case listener.EventRevoked:
		tp := faultTP{e.Topic, e.Partition}
		lg.revokes[tp] = append(lg.revokes[tp], time.Now())
	case listener.EventAssigned:
		lg.assigns++
	}
}

// faultResetLog is a franz-go logger that tells the ledger when the client
// rewinds a partition after detecting data loss (kgo.ErrDataLoss): on kfake,
// every leader move makes the client's leader-epoch check (OffsetForLeaderEpoch)
// answer that the log diverged, and the client resets the partition to an
// earlier offset, so records are read again without any revocation. A real
// broker keeps its leader-epoch history and does not do this.
type faultResetLog struct{ lg *faultLedger }

func (faultResetLog) Level() kgo.LogLevel { return kgo.LogLevelInfo }

func (r faultResetLog) Log(_ kgo.LogLevel, _ string, keyvals ...any) {
	for _, kv := range keyvals {
		if dl, ok := kv.(*kgo.ErrDataLoss); ok {
			r.lg.mu.Lock()
			tp := faultTP{dl.Topic, dl.Partition}
			r.lg.resets[tp] = append(r.lg.resets[tp], time.Now())
			r.lg.mu.Unlock()
		}
	}
}

// finals is how many keys reached a terminal outcome.
func (lg *faultLedger) finals() int {
	lg.mu.Lock()
	defer lg.mu.Unlock()
	return lg.finalN
}

func (lg *faultLedger) done() bool { return lg.finals() == len(lg.fates) }

// missing describes keys without a terminal outcome, for failure messages.
func (lg *faultLedger) missing() string {
	lg.mu.Lock()
	defer lg.mu.Unlock()
	var ks []string
	for k := range lg.fates {
		if !lg.final[k] {
			ks = append(ks, k)
		}
	}
	sort.Strings(ks)
	last := map[string]faultCall{}
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

// faultKeys returns n keys with prefix and the main-topic records carrying
// them, spread over the topic's partitions by key.
func faultKeys(topic, prefix string, n int) ([]string, []*kgo.Record) {
	var keys []string
	var recs []*kgo.Record
	for i := range n {
		k := fmt.Sprintf("%s%05d", prefix, i)
		keys = append(keys, k)
		recs = append(recs, rec(topic, k))
	}
	return keys, recs
}

// faultCommitWatch samples the group's committed offsets while a test runs
// and checks each against the ledger: the listener may commit past a record
// only once its outcome is acknowledged (handled, its publish to a tier or
// DLT acknowledged, or read back from the DLT). The ledger learns of each
// outcome before the listener can mark the record, so a commit seen ahead
// of the ledger is a commit ahead of an outcome.
type faultCommitWatch struct {
	adm    *kadm.Client
	group  string
	topics map[string]bool
	lg     *faultLedger
	cancel context.CancelFunc
	done   chan struct{}

	mu         sync.Mutex
	checked    map[faultTP]int64 // every offset below is settled
	samples    int
	violations map[faultRef]string
}

// watchFaultCommits samples every 100 ms until stop.
func watchFaultCommits(t *testing.T, adm *kadm.Client, group string, topics []string, lg *faultLedger) *faultCommitWatch {
	ctx, cancel := context.WithCancel(context.Background())
	w := &faultCommitWatch{adm: adm, group: group, topics: map[string]bool{}, lg: lg, cancel: cancel,
		done: make(chan struct{}), checked: map[faultTP]int64{}, violations: map[faultRef]string{}}
	for _, tp := range topics {
		w.topics[tp] = true
	}
	go func() {
		defer close(w.done)
		tick := time.NewTicker(100 * time.Millisecond)
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

func (w *faultCommitWatch) stop() {
	w.cancel()
	<-w.done
}

// check takes one sample; it skips samples the cluster cannot answer.
func (w *faultCommitWatch) check() {
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
		k := faultTP{o.Topic, o.Partition}
		for off := w.checked[k]; off < o.At; off++ {
			ref := faultRef{o.Topic, o.Partition, off}
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

// faultPoll waits until cond reports true, asking every interval, and fails
// t with what and cond's last status if it has not by timeout.
func faultPoll(t *testing.T, timeout, interval time.Duration, what string, cond func() (bool, string)) {
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

// faultLag reports whether group has committed every record of topics and,
// if not, which partitions lag.
func faultLag(adm *kadm.Client, group string, topics []string) (bool, string) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	ends, err := adm.ListEndOffsets(ctx, topics...)
	if err == nil {
		err = ends.Error()
	}
	if err != nil {
		return false, err.Error()
	}
	resp, err := adm.FetchOffsets(ctx, group)
	if err != nil {
		return false, err.Error()
	}
	var lag []string
	ends.Each(func(o kadm.ListedOffset) {
		if o.Offset == 0 {
			return
		}
		c, ok := resp.Lookup(o.Topic, o.Partition)
		if !ok || c.Err != nil || c.At != o.Offset {
			lag = append(lag, fmt.Sprintf("%s[%d] committed %d of %d", o.Topic, o.Partition, c.At, o.Offset))
		}
	})
	sort.Strings(lag)
	return len(lag) == 0, strings.Join(lag, ", ")
}

// faultVerdict holds the figures of a verified run.
type faultVerdict struct {
	keys, handled, firstTry, afterRetries, dlt, permanent, exhausted int
	calls, dltCalls, dupCalls, rereads, extraCopiesRead              int
	extraTierCopies, extraDLTCopies, dupDLTCalls                     int
	revokes, resets, fwdFailed, early, commitSamples, commitAhead    int
	maxLate                                                          time.Duration
}

func (v faultVerdict) String() string {
	return fmt.Sprintf("%d keys: %d handled (%d first try, %d after retries), %d dead-lettered (%d permanent, %d exhausted); "+
		"%d handler calls, %d DLT handler calls; duplicates: %d handler calls (%d re-reads after a revoke or rewind, %d reads of an extra copy), "+
		"%d DLT handler calls; extra copies in Kafka: %d in tiers, %d in the DLT; %d revocations before the shutdown, %d client rewinds after kfake's data-loss answers, %d failed publishes retried by kretry; "+
		"%d early (max lateness %v); %d commit samples, %d commits ahead of an outcome",
		v.keys, v.handled, v.firstTry, v.afterRetries, v.dlt, v.permanent, v.exhausted,
		v.calls, v.dltCalls, v.dupCalls, v.rereads, v.extraCopiesRead, v.dupDLTCalls,
		v.extraTierCopies, v.extraDLTCopies, v.revokes, v.resets, v.fwdFailed, v.early, v.maxLate.Round(time.Millisecond),
		v.commitSamples, v.commitAhead)
}

// faultVerify checks the ledger against what Kafka holds: every key reached
// exactly the outcome its fate calls for, every delivery it should get
// happened, no retry was handled before its due time, no commit ran ahead
// of an outcome, and every duplicate is explained. A handler call repeating
// one record must follow a revocation of that record's partition; a copy in
// a tier or the DLT beyond the first must come from a failed delivery or a
// failed publish of its source, unless copies is set: then extra copies
// are counted, not checked (a non-idempotent producer retrying an ambiguous
// produce writes them). Call it after the listeners stopped.
func faultVerify(t *testing.T, c *kafkatest.Cluster, plan strategy.Plan, lg *faultLedger, w *faultCommitWatch, copies bool) faultVerdict {
	t.Helper()
	attempts := lg.attempts
	main := map[string]int{}
	for _, rc := range c.ReadAll(plan.Main) {
		main[string(rc.Key)]++
	}
	type ka struct {
		key     string
		attempt int32
	}
	inKafka := map[faultRef]ka{}
	tierCopies := map[ka]int{}
	seenTier := map[string]bool{}
	for _, tier := range plan.Tiers {
		if seenTier[tier.Topic] {
			continue // a reused tier topic
		}
		seenTier[tier.Topic] = true
		for _, rc := range c.ReadAll(tier.Topic) {
			st, ok, err := retry.Decode(rc.Headers)
			if !ok || err != nil {
				t.Errorf("%s[%d]@%d: kretry headers: %v (present %v)", rc.Topic, rc.Partition, rc.Offset, err, ok)
				continue
			}
			k := ka{string(rc.Key), st.Attempt}
			inKafka[faultRef{rc.Topic, rc.Partition, rc.Offset}] = k
			tierCopies[k]++
		}
	}
	dltCopies := map[string][]retry.State{}
	for _, rc := range c.ReadAll(plan.DLT) {
		st, _, err := retry.Decode(rc.Headers)
		if err != nil {
			t.Errorf("DLT %s[%d]@%d: kretry headers: %v", rc.Topic, rc.Partition, rc.Offset, err)
		}
		inKafka[faultRef{rc.Topic, rc.Partition, rc.Offset}] = ka{string(rc.Key), st.Attempt}
		dltCopies[string(rc.Key)] = append(dltCopies[string(rc.Key)], st)
	}

	lg.mu.Lock()
	defer lg.mu.Unlock()
	var v faultVerdict
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

	byKA := map[ka][]faultCall{}
	whose := map[faultRef]ka{} // source record of a forward -> its key and attempt
	for _, cl := range lg.calls {
		k := ka{cl.key, cl.attempt}
		byKA[k] = append(byKA[k], cl)
		whose[cl.faultRef] = k
		if cl.attempt > 1 {
			switch {
			case cl.due.IsZero():
				t.Errorf("%s attempt %d from %s[%d]@%d had no due time", cl.key, cl.attempt, cl.topic, cl.partition, cl.offset)
			case cl.at.Before(cl.due):
				v.early++
				t.Errorf("EARLY: %s attempt %d handled %v before its due time", cl.key, cl.attempt, cl.due.Sub(cl.at))
			default:
				v.maxLate = max(v.maxLate, cl.at.Sub(cl.due))
			}
		}
	}
	dltByKey := map[string][]faultCall{}
	for _, cl := range lg.dltCalls {
		dltByKey[cl.key] = append(dltByKey[cl.key], cl)
	}
	// sources: failing deliveries of (key, attempt) plus their failed
	// publishes, each of which may have left a copy in the next topic.
	sources := func(k ka) int {
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
	explained := func(what string, cs []faultCall, want ka, mainTopic bool) (dups, rereads, extra int) {
		byRef := map[faultRef][]faultCall{}
		for _, cl := range cs {
			byRef[cl.faultRef] = append(byRef[cl.faultRef], cl)
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
				// A revocation drops what the listener holds: it must come
				// after the previous read. A rewind makes the client fetch
				// the record again while the listener may still hold the
				// copy it fetched before: it must come after the record was
				// written (its timestamp, in ms) and before the second read.
				revoked := func(at time.Time) bool { return at.After(rcs[i-1].at) && at.Before(rcs[i].at) }
				rewound := func(at time.Time) bool {
					return at.After(rcs[i].ts.Add(-time.Millisecond)) && at.Before(rcs[i].at)
				}
				tp := faultTP{rf.topic, rf.partition}
				if !slices.ContainsFunc(lg.revokes[tp], revoked) && !slices.ContainsFunc(lg.resets[tp], rewound) {
					t.Errorf("UNEXPLAINED DUPLICATE: %s: %s[%d]@%d read again with no revocation or rewind of its partition in between (%v, then %v)",
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
		last := f.last(attempts)
		for a := int32(1); a <= last; a++ {
			k := ka{key, a}
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
				if n, allowed := tierCopies[k], sources(ka{key, a - 1}); n > allowed && !copies {
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
		handled := slices.ContainsFunc(byKA[ka{key, last}], func(cl faultCall) bool { return !cl.failed })
		dcopies, dcalls := dltCopies[key], dltByKey[key]
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
			for _, st := range dcopies {
				if st.Reason != reason || st.Attempt != last || st.OriginalTopic != plan.Main {
					t.Errorf("%s: DLT record reason %q attempt %d original topic %q, want %q, %d, %q",
						key, st.Reason, st.Attempt, st.OriginalTopic, reason, last, plan.Main)
				}
			}
			if n, allowed := len(dcopies), sources(ka{key, last}); n > allowed && !copies {
				t.Errorf("UNEXPLAINED DUPLICATE: %s: %d copies in the DLT, from %d failed deliveries and publishes", key, n, allowed)
			}
			v.extraDLTCopies += len(dcopies) - 1
			dups, _, _ := explained(key+" in the DLT", dcalls, ka{key, last}, false)
			v.dupDLTCalls += dups
		default:
			t.Errorf("%s (%+v): not exactly one terminal outcome: handled %v, %d DLT copies, %d DLT handler calls",
				key, f, handled, len(dcopies), len(dcalls))
		}
	}
	return v
}

// faultRun is one fault test: a three-broker kfake cluster, a main topic,
// a ledger, and the records.
type faultRun struct {
	t     *testing.T
	f     fixture
	lg    *faultLedger
	recs  []*kgo.Record
	start time.Time
}

const (
	faultAttempts   = 3
	faultPartitions = 4
)

// faultBackoff makes tiers of 100 ms and 200 ms.
var faultBackoff = strategy.ExponentialBackoff(100*time.Millisecond, 2, 0)

// faultKfakeOnly skips t on a real broker: fault injection is kfake's.
func faultKfakeOnly(t *testing.T) {
	t.Helper()
	if kafkatest.Real() {
		t.Skipf("needs kfake fault injection; %s is set, so this test runs on kfake only", kafkatest.EnvBrokers)
	}
}

// newFaultRun skips t on a real broker.
func newFaultRun(t *testing.T, n int) *faultRun {
	t.Helper()
	faultKfakeOnly(t)
	c := kafkatest.New(t, kfake.NumBrokers(3))
	if c.Fake == nil {
		t.Skip("needs kfake fault injection")
	}
	f := fixture{c: c, topic: c.Name("orders"), group: c.Name("group")}
	c.CreateTopic(f.topic, faultPartitions)
	keys, recs := faultKeys(f.topic, "f", n)
	return &faultRun{t: t, f: f, lg: newFaultLedger(keys, faultAttempts), recs: recs, start: time.Now()}
}

// listener returns a listener wired to the ledger.
func (r *faultRun) listener(opts ...listener.Opt) *listener.Listener {
	r.t.Helper()
	base := []listener.Opt{listener.DLTHandler(r.lg), listener.Hooks(r.lg),
		listener.Attempts(faultAttempts), listener.Backoff(faultBackoff),
		listener.RevokeTimeout(5 * time.Second),
		// React to leader moves quickly (franz-go's default is 5 s).
		listener.ClientOpts(kgo.MetadataMinAge(100*time.Millisecond), kgo.WithLogger(faultResetLog{r.lg}))}
	return r.f.listener(r.t, r.lg, append(base, opts...)...)
}

// finish waits until every key has its outcome, removes the faults, waits
// until the group has committed every record of every plan topic, stops
// the listeners and returns the verdict.
func (r *faultRun) finish(plan strategy.Plan, w *faultCommitWatch, faults []*kfake.FaultHandle, stops []func() error, copies bool) faultVerdict {
	t := r.t
	t.Helper()
	kafkatest.Eventually(t, faultWait, r.lg.done, "every record reaches its outcome: %s", lazyFault(r.lg.missing))
	for _, h := range faults {
		h.Remove()
	}
	faultPoll(t, faultWait, 50*time.Millisecond, "the group commits every record", func() (bool, string) {
		return faultLag(r.f.c.Admin, r.f.group, plan.Topics())
	})
	r.lg.stop()
	for _, stop := range stops {
		if err := stop(); err != nil {
			t.Errorf("Run: %v", err)
		}
	}
	w.stop()
	w.check() // the shutdown's final commit
	return faultVerify(t, r.f.c, plan, r.lg, w, copies)
}

// lazyFault defers a costly description until it is printed.
type lazyFault func() string

func (f lazyFault) String() string { return f() }

// faultEveryOther returns a kfake Fault.When that faults every other
// request (the first, the third, …). kfake asks When once per entity of a
// request; the decision is per request.
func faultEveryOther() func(kmsg.Request) bool {
	var mu sync.Mutex
	var last kmsg.Request
	var n int
	var decision bool
	return func(req kmsg.Request) bool {
		mu.Lock()
		defer mu.Unlock()
		if req != last {
			last, n = req, n+1
			decision = n%2 == 1
		}
		return decision
	}
}

// faultTargets names the plan's tier topics (each once) and its DLT, with
// short labels for the figures.
func faultTargets(plan strategy.Plan) (topics, labels []string) {
	for _, tier := range plan.Tiers {
		if !slices.Contains(topics, tier.Topic) {
			topics = append(topics, tier.Topic)
			labels = append(labels, fmt.Sprintf("tier %v", tier.Delay))
		}
	}
	return append(topics, plan.DLT), append(labels, "DLT")
}

// Produce errors on both retry tiers and the DLT, on every other produce
// request until each fault has answered 15. Whatever the error — one
// franz-go gives up on (the publish fails and kretry retries it), one
// franz-go retries itself, or an ambiguous one the broker answers after
// appending — no record is lost, none is handled early, and no commit
// passes a record whose publish was not acknowledged. Duplicates are
// counted, not assumed: with franz-go's idempotent producer (the default)
// the broker deduplicates the client's retries of an ambiguous produce;
// the non-idempotent case is the control that shows the ambiguous produce
// really appended (its retries leave extra copies, which the listener
// handles like any other record, and which the ledger must see).
func TestFaultProduceErrorsOnTiersAndDLT(t *testing.T) {
	faultKfakeOnly(t)
	for _, tc := range []struct {
		name string
		err  *kerr.Error
		opts []kgo.Opt
		// the error reaches kretry (franz-go does not retry it), so
		// kretry's own publish retry must show
		wantForwardFailed bool
		// an ambiguous produce: extra copies are allowed and counted
		ambiguous bool
		// extra copies must show (non-idempotent producer)
		wantCopies bool
	}{
		{name: "rejected-TOPIC_AUTHORIZATION_FAILED", err: kerr.TopicAuthorizationFailed, wantForwardFailed: true},
		{name: "retriable-NOT_ENOUGH_REPLICAS", err: kerr.NotEnoughReplicas},
		{name: "ambiguous-REQUEST_TIMED_OUT", err: kerr.RequestTimedOut, ambiguous: true},
		{name: "ambiguous-NOT_ENOUGH_REPLICAS_AFTER_APPEND", err: kerr.NotEnoughReplicasAfterAppend, ambiguous: true},
		{name: "ambiguous-REQUEST_TIMED_OUT-non-idempotent", err: kerr.RequestTimedOut, ambiguous: true, wantCopies: true,
			opts: []kgo.Opt{kgo.DisableIdempotentWrite()}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := newFaultRun(t, 300)
			l := r.listener(listener.ClientOpts(tc.opts...))
			plan := l.Plan()
			targets, labels := faultTargets(plan)
			var faults []*kfake.FaultHandle
			for _, topic := range targets {
				faults = append(faults, r.f.c.Fake.Fault(kfake.Fault{Keys: []kmsg.Key{kmsg.Produce}, Topic: topic,
					Err: tc.err, Count: 15, When: faultEveryOther()}))
			}
			r.f.c.Produce(r.recs...)
			stop := started(t, l)
			w := watchFaultCommits(t, r.f.c.Admin, r.f.group, plan.Topics(), r.lg)
			v := r.finish(plan, w, faults, []func() error{stop}, tc.ambiguous)

			var hits []string
			for i, h := range faults {
				hits = append(hits, fmt.Sprintf("%s %d", labels[i], h.Hits()))
				if h.Hits() == 0 {
					t.Errorf("the fault on %s never hit: the test proves nothing about it", targets[i])
				}
			}
			if tc.wantForwardFailed && v.fwdFailed == 0 {
				t.Errorf("%s reached no publish callback: kretry's publish retry was not exercised", tc.err.Message)
			}
			if tc.wantCopies && v.extraTierCopies+v.extraDLTCopies == 0 {
				t.Errorf("no extra copies with a non-idempotent producer: the ambiguous produce did not append, or the ledger misses them")
			}
			idem := "idempotent producer"
			if tc.wantCopies {
				idem = "non-idempotent producer"
			}
			t.Logf("FIGURES produce fault %s (%s) on every other produce request to each tier and the DLT, up to 15 each; hits: %s; "+
				"%d records on %d partitions, %d attempts, tiers %v; %s; wall %v",
				tc.err.Message, idem, strings.Join(hits, ", "), len(r.recs), faultPartitions, faultAttempts,
				faultTiers(plan), v, time.Since(r.start).Round(time.Millisecond))
		})
	}
}

// Offset commits fail — three of every four OffsetCommit requests, answered
// in turn with COORDINATOR_NOT_AVAILABLE and REQUEST_TIMED_OUT (both
// retried by franz-go; the broker applies the second before it answers)
// and UNKNOWN_SERVER_ERROR (which fails the commit) — while a second member
// joins, takes partitions, handles records and leaves, so partitions change
// hands twice with their commits failing. Nothing is lost or early, no
// commit passes an unacknowledged outcome, and every record handled again
// is handled after its partition was revoked (the redelivery a failed
// commit causes).
func TestFaultCommitFailuresWhilePartitionsMove(t *testing.T) {
	r := newFaultRun(t, 400)
	// Commit as often as franz-go allows, so many commits meet the faults,
	// and keep records in the tiers (300 ms, 600 ms) while members move.
	opts := []listener.Opt{listener.ClientOpts(kgo.AutoCommitInterval(100 * time.Millisecond)),
		listener.Backoff(strategy.ExponentialBackoff(300*time.Millisecond, 2, 0))}
	a := r.listener(opts...)
	plan := a.Plan()
	// Faults are checked in order and the first match answers: the three
	// share one request counter, so each request meets at most one.
	var mu sync.Mutex
	var last kmsg.Request
	n := 0
	pick := func(i int) func(kmsg.Request) bool {
		return func(req kmsg.Request) bool {
			mu.Lock()
			defer mu.Unlock()
			if req != last {
				last, n = req, n+1
			}
			return n%4 == i+1
		}
	}
	errs := []*kerr.Error{kerr.CoordinatorNotAvailable, kerr.RequestTimedOut, kerr.UnknownServerError}
	var faults []*kfake.FaultHandle
	for i, e := range errs {
		faults = append(faults, r.f.c.Fake.Fault(kfake.Fault{Keys: []kmsg.Key{kmsg.OffsetCommit}, Group: r.f.group,
			Err: e, Count: -1, When: pick(i)}))
	}
	r.f.c.Produce(r.recs[:len(r.recs)/2]...)
	stopA := started(t, a)
	w := watchFaultCommits(t, r.f.c.Admin, r.f.group, plan.Topics(), r.lg)

	// A second member joins while records flow and wait in the tiers; once
	// it owns partitions and has finished records of its own, it leaves.
	kafkatest.Eventually(t, faultWait, func() bool {
		r.lg.mu.Lock()
		defer r.lg.mu.Unlock()
		return r.lg.retried >= 20
	}, "20 records published to the tiers")
	var bMu sync.Mutex
	var bAssigned, bOutcomes int
	bHook := listener.HookFunc(func(e listener.Event) {
		bMu.Lock()
		defer bMu.Unlock()
		switch e.Kind {
		case listener.EventAssigned:
			bAssigned++
		case listener.EventHandled, listener.EventRetried, listener.EventDeadLettered:
			bOutcomes++
		}
	})
	b := r.listener(append(opts, listener.Hooks(bHook))...)
	stopB := started(t, b)
	kafkatest.Eventually(t, faultWait, func() bool {
		bMu.Lock()
		defer bMu.Unlock()
		return bAssigned > 0
	}, "the second member owns partitions")
	r.f.c.Produce(r.recs[len(r.recs)/2:]...)
	kafkatest.Eventually(t, faultWait, func() bool {
		bMu.Lock()
		defer bMu.Unlock()
		return bOutcomes >= 50
	}, "the second member finished 50 records")
	if err := stopB(); err != nil {
		t.Errorf("Run of the second member: %v", err)
	}
	v := r.finish(plan, w, faults, []func() error{stopA}, false)
	var hits []string
	for i, h := range faults {
		hits = append(hits, fmt.Sprintf("%s %d", errs[i].Message, h.Hits()))
		if h.Hits() == 0 {
			t.Errorf("no commit met %s: the test proves nothing about it", errs[i].Message)
		}
	}
	if v.revokes == 0 {
		t.Error("no partition was revoked: the join and leave did not move partitions")
	}
	t.Logf("FIGURES commit faults on 3 of every 4 OffsetCommit requests (hits: %s); 1 member joined, took partitions and left; "+
		"%d records on %d partitions, tiers %v; %s; wall %v",
		strings.Join(hits, ", "), len(r.recs), faultPartitions, faultTiers(plan), v, time.Since(r.start).Round(time.Millisecond))
}

// The group coordinator, or the partition leaders, move while records flow
// through the tiers, every 50 ms until every record has its outcome (and at
// least 20 times). coordinator: kfake's RehashCoordinators. leaders: in
// turn ShufflePartitionLeaders (every partition) and MoveTopicPartition of
// a random tier or DLT partition to another of the three brokers. Nothing is
// lost or early and no commit passes an unacknowledged outcome.
//
// On kfake every leader move makes the client's leader-epoch check answer
// that the log diverged, and the client rewinds the partition (see
// faultResetLog): the records read again are duplicates explained by those
// rewinds, and the figures count them. A real broker would not rewind.
func TestFaultCoordinatorAndLeaderMoves(t *testing.T) {
	faultKfakeOnly(t)
	for _, kind := range []string{"coordinator", "leaders"} {
		t.Run(kind, func(t *testing.T) {
			r := newFaultRun(t, 300)
			l := r.listener()
			plan := l.Plan()
			targets, _ := faultTargets(plan)
			r.f.c.Produce(r.recs...)
			stop := started(t, l)
			w := watchFaultCommits(t, r.f.c.Admin, r.f.group, plan.Topics(), r.lg)
			// Every plan topic exists (Run creates the tiers and the DLT)
			// once the listener owns all their partitions.
			kafkatest.Eventually(t, faultWait, func() bool {
				r.lg.mu.Lock()
				defer r.lg.mu.Unlock()
				return r.lg.assigns >= len(plan.Topics())*faultPartitions
			}, "the listener owns every partition")
			seed := uint64(time.Now().UnixNano())
			rng := rand.New(rand.NewPCG(seed, 1))
			var rehash, shuffle, move int
			tick := time.NewTicker(50 * time.Millisecond)
			defer tick.Stop()
			deadline := time.Now().Add(faultWait)
			// The moves are the workload, not a wait.
			for i := 0; !r.lg.done() || i < 20; i++ {
				if time.Now().After(deadline) {
					t.Fatalf("after %v: %s", faultWait, r.lg.missing())
				}
				<-tick.C
				switch {
				case kind == "coordinator":
					r.f.c.Fake.RehashCoordinators()
					rehash++
				case i%2 == 0:
					r.f.c.Fake.ShufflePartitionLeaders()
					shuffle++
				default:
					topic := targets[rng.IntN(len(targets))]
					p := rng.Int32N(faultPartitions)
					to := (r.f.c.Fake.LeaderFor(topic, p) + 1 + rng.Int32N(2)) % 3
					if err := r.f.c.Fake.MoveTopicPartition(topic, p, to); err != nil {
						t.Fatalf("moving %s[%d] to node %d: %v", topic, p, to, err)
					}
					move++
				}
			}
			tick.Stop()
			v := r.finish(plan, w, nil, []func() error{stop}, false)
			if kind == "coordinator" && v.resets > 0 {
				// Not a kretry failure; the figures would mislead.
				t.Logf("the client rewound partitions %d times without a leader move", v.resets)
			}
			t.Logf("FIGURES %s moves on 3 brokers every 50 ms (seed %d): %d coordinator rehashes, %d leader shuffles, %d single partition moves; "+
				"%d records on %d partitions, tiers %v; %s; wall %v",
				kind, seed, rehash, shuffle, move, len(r.recs), faultPartitions, faultTiers(plan), v, time.Since(r.start).Round(time.Millisecond))
		})
	}
}

func faultTiers(p strategy.Plan) []time.Duration {
	var ds []time.Duration
	for _, t := range p.Tiers {
		ds = append(ds, t.Delay)
	}
	return ds
}
