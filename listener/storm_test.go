package listener_test

// The rebalance storm: three or four members of one group join and leave
// every few hundred milliseconds while records wait in the retry tiers.
// It runs on kfake and, with KRETRY_BROKERS set, on a real broker.
// KRETRY_SOAK=1 runs it longer, with more records.

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kretry/kretry/internal/kafkatest"
	"github.com/kretry/kretry/listener"
	"github.com/kretry/kretry/strategy"
)

// stormMember is one listener of the storm, running in its own goroutine
// with its own context.
type stormMember struct {
	id     int
	l      *listener.Listener
	cancel context.CancelFunc
	done   chan error
}

// stormBad says what is wrong with one partition's state, or "". now is
// when the snapshot was taken.
//
// A partition the listener does not own must not be paused in its client;
// an owned one may be paused only while it waits for its head record's due
// time (Due set) or works off a backlog (Full). A due time more than a
// second past means the wake-up was missed: the partition would wait for
// nothing.
func stormBad(ps listener.PartitionState, now time.Time) string {
	switch {
	case !ps.Owned && ps.Paused:
		return "paused in the client but not owned"
	case ps.Paused && ps.Due.IsZero() && !ps.Full:
		return "paused with no due record and not full"
	case ps.Paused && !ps.Due.IsZero() && now.Sub(ps.Due) > time.Second:
		return fmt.Sprintf("paused on a due time %v past", now.Sub(ps.Due).Round(time.Millisecond))
	}
	return ""
}

// stormKey names one partition of one member.
type stormKey struct {
	member    int
	topic     string
	partition int32
}

// stormSeen is a violation seen in consecutive snapshots.
type stormSeen struct {
	first    time.Time
	n        int
	what     string
	state    listener.PartitionState
	reported bool
}

// stormInvariant checks Partitions() of the live members repeatedly. A
// snapshot is not atomic (the client's pause state is read before the
// listener's), so a mismatch fails the test only when it persists: in five
// consecutive snapshots or more, over a second or more.
type stormInvariant struct {
	open      map[stormKey]*stormSeen
	snapshots int // Partitions() calls
	states    int // partition states examined
	paused    int // of which paused
	transient int // mismatches that cleared by themselves
	failures  []string
}

func (s *stormInvariant) sample(live []*stormMember) {
	cur := map[stormKey]listener.PartitionState{}
	what := map[stormKey]string{}
	for _, m := range live {
		ps := m.l.Partitions()
		now := time.Now()
		s.snapshots++
		for _, p := range ps {
			s.states++
			if p.Paused {
				s.paused++
			}
			if w := stormBad(p, now); w != "" {
				k := stormKey{m.id, p.Topic, p.Partition}
				cur[k], what[k] = p, w
			}
		}
	}
	now := time.Now()
	for k, p := range cur {
		seen := s.open[k]
		if seen == nil || seen.what != what[k] {
			seen = &stormSeen{first: now}
			s.open[k] = seen
		}
		seen.n++
		seen.what, seen.state = what[k], p
		if !seen.reported && seen.n >= 5 && now.Sub(seen.first) >= time.Second {
			seen.reported = true
			s.failures = append(s.failures, fmt.Sprintf("member %d, %s[%d]: %s for %v (%d snapshots): %+v",
				k.member, k.topic, k.partition, seen.what, now.Sub(seen.first).Round(time.Millisecond), seen.n, p))
		}
	}
	for k, seen := range s.open {
		if _, ok := cur[k]; !ok {
			if !seen.reported {
				s.transient++
			}
			delete(s.open, k)
		}
	}
}

// TestStormMembersJoinAndLeaveWhileRecordsWaitInTiers proves that a
// rebalance storm loses nothing and hands nothing out early: between one and
// four members of one group join and leave every 150–450 ms while records
// are produced in waves and wait in the tiers (400 ms, 800 ms). Every key
// reaches exactly the outcome its fate calls for; no retry is handled
// before its due time; no commit passes an unacknowledged outcome; every
// record handled again follows a revocation of its partition. Throughout,
// Partitions() of every live member shows no partition paused without a
// reason that persists (see stormBad and stormInvariant), and at the end,
// when the group is settled and everything is committed, every plan
// partition is owned by exactly one member and none is paused, holds
// records or awaits an acknowledgement.
func TestStormMembersJoinAndLeaveWhileRecordsWaitInTiers(t *testing.T) {
	runStorm(t, false)
}

// TestStormKeyOrderMembersJoinAndLeaveWhileRecordsWaitInTiers is the same
// storm with key-ordered members (KeyOrder, which every member of the
// group must use: the lane assignor). The 600 records share 60 keys, ten
// each (stormOrderKey), and the verdict adds the order check
// (checkKeyOrder): per key, first successes in main-topic offset order,
// and no record handed to the handler before every earlier record of its
// key had its outcome, through every rebalance.
//
// The lane assignor is eager: every rebalance revokes every lane of every
// member, and each lane's next owner rebuilds its keys in retry from the
// tiers before its partitions take a record. The storm's checks hold as
// they are for it: the partition-state invariant (a lane waiting for its
// rebuild takes no record, and its partitions are paused only as any
// partition is: full, or with a due time; a main partition at
// MaxKeysInRetry waits with a due time), the quiet group at the end, the
// commit watch (a follower publish acknowledged settles its record) and
// the duplicate rule (a record read again follows a revocation of its
// partition, which every rebalance now is).
func TestStormKeyOrderMembersJoinAndLeaveWhileRecordsWaitInTiers(t *testing.T) {
	runStorm(t, true)
}

// stormOrderFates are the fates of the key-order storm, per record: 20%
// fail once or twice, then succeed; 2% fail permanently and 2% every
// attempt.
var stormOrderFates = fateMix{step: 37, failing: []int{10, 10}, permanent: 2, exhausted: 2}

// stormOrderKey is, in the key-order storm, the Kafka key of record i:
// each block of 300 records (ten waves) shares 30 keys, each getting two
// consecutive records every 60 (two waves).
func stormOrderKey(i int) string { return fmt.Sprintf("g%04d", (i/2)%30+30*(i/300)) }

func runStorm(t *testing.T, keyOrder bool) {
	start := time.Now()
	stormFor, records, waves := 10*time.Second, 600, 20
	if os.Getenv("KRETRY_SOAK") == "1" {
		stormFor, records, waves = 60*time.Second, 6000, 120
	}
	const (
		partitions = 6
		attempts   = 3
		maxMembers = 4
	)
	c := kafkatest.New(t)
	f := fixture{c: c, topic: c.Name("orders"), group: c.Name("group")}
	c.CreateTopic(f.topic, partitions)
	keys, recs := faultKeys(f.topic, "s", records)
	mix := faultFates
	if keyOrder {
		mix = stormOrderFates
		for i, rc := range recs {
			rc.Key, rc.Value = []byte(stormOrderKey(i)), []byte(koValuePrefix+keys[i])
		}
	}
	lg := newLedger(keys, attempts, mix)
	lg.keyOrder = keyOrder
	opts := []listener.Opt{listener.DLTHandler(lg), listener.Hooks(lg),
		listener.Attempts(attempts), listener.Backoff(strategy.ExponentialBackoff(400*time.Millisecond, 2, 0)),
		listener.Concurrency(4), listener.RevokeTimeout(5 * time.Second), listener.ShutdownTimeout(10 * time.Second),
		// Members notice a rebalance within 300 ms (franz-go's default
		// heartbeat is 3 s), which matters on a real broker.
		listener.ClientOpts(kgo.HeartbeatInterval(300*time.Millisecond), kgo.WithLogger(faultResetLog{lg}))}
	mode := ""
	if keyOrder {
		opts = append(opts, listener.KeyOrder())
		mode = "key-order "
	}
	plan := f.listener(t, lg, opts...).Plan()

	seed := uint64(time.Now().UnixNano())
	rng := rand.New(rand.NewPCG(seed, 2))
	var live, leaving []*stormMember
	nextID, joins, leaves, peak := 0, 0, 0, 0
	join := func() {
		ctx, cancel := context.WithCancel(context.Background())
		m := &stormMember{id: nextID, l: f.listener(t, lg, opts...), cancel: cancel, done: make(chan error, 1)}
		nextID++
		go func() { m.done <- m.l.Run(ctx) }()
		live = append(live, m)
		joins++
		peak = max(peak, len(live))
	}
	leave := func(i int) {
		m := live[i]
		live = append(live[:i], live[i+1:]...)
		m.cancel() // Run returns in the background; collected at the end
		leaving = append(leaving, m)
		leaves++
	}
	// Every member stops, whatever happens to the test.
	stopAll := func() {
		for len(live) > 0 {
			leave(0)
		}
		for _, m := range leaving {
			select {
			case err := <-m.done:
				if err != nil {
					// Including a cancel while Run still checks the topics:
					// Run returns nil then too (see
					// TestStormMemberCanceledDuringSetupReturnsNil).
					t.Errorf("Run of member %d: %v", m.id, err)
				}
			case <-time.After(60 * time.Second):
				t.Errorf("Run of member %d did not return within 60 s of its cancel", m.id)
			}
		}
		leaving = nil
	}
	t.Cleanup(stopAll)

	inv := &stormInvariant{open: map[stormKey]*stormSeen{}}
	watch := watchCommits(t, c.Admin, f.group, plan.Topics(), lg, 100*time.Millisecond)
	// The first member creates the tiers and the DLT; the storm starts
	// once the main topic has its owner.
	join()
	kafkatest.Eventually(t, faultWait, func() bool {
		lg.mu.Lock()
		defer lg.mu.Unlock()
		return lg.assigns > 0
	}, "the first member joins the group")
	join()

	// The storm. The timers are the workload: when the next member joins or
	// leaves, when the next wave is produced, when the invariant is checked.
	perWave := (len(recs) + waves - 1) / waves
	produced := 0
	churn := time.NewTimer(0)
	defer churn.Stop()
	produce := time.NewTicker(stormFor * 8 / 10 / time.Duration(waves))
	defer produce.Stop()
	check := time.NewTicker(100 * time.Millisecond)
	defer check.Stop()
	stormEnd := time.Now().Add(stormFor)
	for time.Now().Before(stormEnd) {
		select {
		case <-churn.C:
			switch {
			case len(live) <= 1:
				join()
			case len(live) >= maxMembers:
				leave(rng.IntN(len(live)))
			case rng.IntN(2) == 0:
				join()
			default:
				leave(rng.IntN(len(live)))
			}
			churn.Reset(150*time.Millisecond + time.Duration(rng.Int64N(int64(300*time.Millisecond))))
		case <-produce.C:
			if produced < len(recs) {
				n := min(perWave, len(recs)-produced)
				c.Produce(recs[produced : produced+n]...)
				produced += n
			}
		case <-check.C:
			inv.sample(live)
		}
	}
	churn.Stop()
	stormJoins, stormLeaves := joins, leaves
	if produced < len(recs) {
		c.Produce(recs[produced:]...)
	}
	lg.mu.Lock()
	inTiers := lg.retried
	lg.mu.Unlock()

	// After the storm: the members left keep going until every record has
	// its outcome and the group has committed everything, still checked.
	settleStart := time.Now()
	deadline := settleStart.Add(faultWait)
	var lagState string
	lastLag := time.Time{}
	for {
		if lg.done() && time.Since(lastLag) >= 200*time.Millisecond {
			lastLag = time.Now()
			var ok bool
			if ok, lagState = faultLag(c.Admin, f.group, plan.Topics()); ok {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("after the storm, %v: %s; lag: %s", faultWait, lg.missing(), lagState)
		}
		<-check.C
		inv.sample(live)
	}
	// Quiet: the group settles on the members left, each plan partition
	// owned by exactly one of them.
	all := map[topicPartition]bool{}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	md, err := c.Admin.Metadata(ctx, plan.Topics()...)
	cancel()
	if err != nil {
		t.Fatalf("metadata: %v", err)
	}
	for _, topic := range plan.Topics() {
		for _, p := range md.Topics[topic].Partitions {
			all[topicPartition{topic, p.Partition}] = true
		}
	}
	var owners map[topicPartition][]int
	var final []listener.PartitionState
	pollUntil(t, faultWait, 100*time.Millisecond, "the group settles: every partition owned by exactly one member", func() (bool, string) {
		inv.sample(live)
		owners, final = map[topicPartition][]int{}, nil
		for _, m := range live {
			for _, ps := range m.l.Partitions() {
				final = append(final, ps)
				if ps.Owned {
					tp := topicPartition{ps.Topic, ps.Partition}
					owners[tp] = append(owners[tp], m.id)
				}
			}
		}
		var wrong []string
		for tp := range all {
			if len(owners[tp]) != 1 {
				wrong = append(wrong, fmt.Sprintf("%s[%d] owned by %v", tp.topic, tp.partition, owners[tp]))
			}
		}
		sort.Strings(wrong)
		return len(wrong) == 0 && len(owners) == len(all), strings.Join(wrong, ", ")
	})
	settled := time.Since(settleStart)
	// Strictly, in one snapshot of a quiet group: nothing paused, held or
	// unacknowledged, and no state the invariant rejects.
	now := time.Now()
	for _, ps := range final {
		if w := stormBad(ps, now); w != "" || ps.Paused || ps.Held != 0 || ps.Unacked != 0 {
			t.Errorf("QUIET GROUP, partition not idle: %+v %s", ps, w)
		}
	}
	for _, msg := range inv.failures {
		t.Error("INVARIANT: " + msg)
	}

	lg.stop()
	stopAll()
	watch.stop()
	watch.check() // the last members' final commit
	v := verifyLedger(t, c, plan, lg, watch, false)
	orderFigures := ""
	if keyOrder {
		ko := lg.checkOrder(t, c, plan)
		ko.follows = v.follows
		if ko.follows == 0 {
			t.Errorf("no record followed its key: the key-order storm lost its point")
		}
		orderFigures = ko.String() + "; "
	}
	if inv.snapshots == 0 || inv.paused == 0 {
		t.Errorf("the invariant saw %d snapshots with %d paused partitions: it checked nothing", inv.snapshots, inv.paused)
	}
	broker := "kfake"
	if kafkatest.Real() {
		broker = "real broker"
	}
	t.Logf("FIGURES %sstorm on %s (seed %d): %d records on %d partitions in %d waves, %d attempts, tiers %v; %d members joined and %d left during the storm "+
		"(at most %d at once) in a %v storm; %d tier publishes acknowledged by its end; group settled %v after it; "+
		"invariant: %d snapshots, %d partition states (%d paused), %d transient mismatches, %d persistent; %s%s; wall %v",
		mode, broker, seed, len(recs), partitions, waves, attempts, tierDelays(plan), stormJoins, stormLeaves, peak, stormFor, inTiers,
		settled.Round(time.Millisecond), inv.snapshots, inv.states, inv.paused, inv.transient, len(inv.failures),
		orderFigures, v, time.Since(start).Round(time.Millisecond))
}

// A member that leaves while Run is still checking the plan's topics (the
// storm does this when a member joins and leaves within a few hundred
// milliseconds) is canceled like any other: Run returns nil, as its
// documentation says of a cancel, not an error blaming the seed brokers and
// credentials. before-Run: the context is canceled before Run is called.
// during-setup (kfake only): it is canceled when the listener's first
// Metadata request, which lists the topics, reaches the broker.
func TestStormMemberCanceledDuringSetupReturnsNil(t *testing.T) {
	for _, when := range []string{"before-Run", "during-setup"} {
		t.Run(when, func(t *testing.T) {
			f := newFixture(t, 1)
			l := f.listener(t, newScript(failTimes(nil)))
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			switch when {
			case "before-Run":
				cancel()
			case "during-setup":
				if f.c.Fake == nil {
					t.Skip("needs kfake's request control")
				}
				f.c.Fake.ControlKey(int16(kmsg.Metadata), func(kmsg.Request) (kmsg.Response, error, bool) {
					cancel()
					return nil, nil, false // answered as usual
				})
			}
			done := make(chan error, 1)
			go func() { done <- l.Run(ctx) }()
			select {
			case err := <-done:
				if err != nil {
					t.Errorf("Run canceled during its setup returned %v, want nil", err)
				}
			case <-time.After(30 * time.Second):
				t.Fatal("Run did not return within 30 s of its cancel")
			}
		})
	}
}
