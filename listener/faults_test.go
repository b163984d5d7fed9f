package listener_test

// Broker-fault tests on kfake with three brokers: produce errors on the
// retry tiers and the DLT (rejected, retriable, and ambiguous ones that the
// broker answers with an error after appending), offset-commit failures
// while partitions change hands, and coordinator and partition-leader moves.
// They need kfake's fault injection and skip on a real broker.
//
// The verdict comes from the ledger, its verdict and the commit watch of
// ledger_test.go, shared with the storm test (storm_test.go) and the
// three-node tests (cluster_test.go). Here the ledger also learns of the
// client's rewinds after kfake's data-loss answers (faultResetLog), which
// explain records read again without a revocation.

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
	"github.com/kretry/kretry/strategy"
)

// faultWait bounds conditions that take a second or two when all is well.
const faultWait = 60 * time.Second

// faultFates spreads fates over the keys: 20% fail once, 15% twice, 5%
// fail permanently, 5% fail every attempt (exhausted), 55% succeed at once.
var faultFates = fateMix{step: 37, failing: []int{20, 15}, permanent: 5, exhausted: 5}

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

// faultRun is one fault test: a three-broker kfake cluster, a main topic,
// a ledger, and the records.
type faultRun struct {
	t     *testing.T
	f     fixture
	lg    *ledger
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
	return &faultRun{t: t, f: f, lg: newLedger(keys, faultAttempts, faultFates), recs: recs, start: time.Now()}
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

// watchCommits starts the commit watch on the plan's topics, sampling
// every 100 ms.
func (r *faultRun) watchCommits(plan strategy.Plan) *commitWatch {
	return watchCommits(r.t, r.f.c.Admin, r.f.group, plan.Topics(), r.lg, 100*time.Millisecond)
}

// finish waits until every key has its outcome, removes the faults, waits
// until the group has committed every record of every plan topic, stops
// the listeners and returns the verdict.
func (r *faultRun) finish(plan strategy.Plan, w *commitWatch, faults []*kfake.FaultHandle, stops []func() error, copies bool) verdict {
	t := r.t
	t.Helper()
	kafkatest.Eventually(t, faultWait, r.lg.done, "every record reaches its outcome: %s", lazyText(r.lg.missing))
	for _, h := range faults {
		h.Remove()
	}
	pollUntil(t, faultWait, 50*time.Millisecond, "the group commits every record", func() (bool, string) {
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
	return verifyLedger(t, r.f.c, plan, r.lg, w, copies)
}

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
			w := r.watchCommits(plan)
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
				tierDelays(plan), v, time.Since(r.start).Round(time.Millisecond))
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
	w := r.watchCommits(plan)

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
		strings.Join(hits, ", "), len(r.recs), faultPartitions, tierDelays(plan), v, time.Since(r.start).Round(time.Millisecond))
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
			w := r.watchCommits(plan)
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
				kind, seed, rehash, shuffle, move, len(r.recs), faultPartitions, tierDelays(plan), v, time.Since(r.start).Round(time.Millisecond))
		})
	}
}
