package listener_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"slices"
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

// service is one consumer group's listener on the shared main topic.
type service struct {
	name  string
	group string
	s     *script
	l     *listener.Listener
}

func newService(t *testing.T, f fixture, name string, fails map[string]int, opts ...listener.Opt) *service {
	t.Helper()
	sv := &service{name: name, group: f.group + "-" + name, s: newScript(failTimes(fails))}
	base := []listener.Opt{listener.Group(sv.group), listener.Attempts(3),
		listener.Backoff(strategy.FixedBackoff(50 * time.Millisecond))}
	sv.l = f.listener(t, sv.s, append(base, opts...)...)
	return sv
}

// caughtUp reports whether group has committed every record of topics.
func caughtUp(t *testing.T, c *kafkatest.Cluster, group string, topics ...string) bool {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ends, err := c.Admin.ListEndOffsets(ctx, topics...)
	if err != nil {
		return false
	}
	committed, err := c.Admin.FetchOffsets(ctx, group)
	if err != nil {
		return false
	}
	ok := true
	ends.Each(func(o kadm.ListedOffset) {
		if o.Offset == 0 {
			return
		}
		at, found := committed.Lookup(o.Topic, o.Partition)
		if !found || at.At < o.Offset {
			ok = false
		}
	})
	return ok
}

// deliveriesByKey counts a service's handler calls per key, and the groups
// named by the retry state of its tier deliveries.
func deliveriesByKey(s *script) (map[string]int, []string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := map[string]int{}
	var groups []string
	for _, d := range s.deliveries {
		n[d.key]++
		if d.retried {
			groups = append(groups, d.state.Group)
		}
	}
	return n, groups
}

func dltKeys(s *script) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var keys []string
	for _, d := range s.dlt {
		keys = append(keys, d.key+"@"+d.state.Group)
	}
	slices.Sort(keys)
	return keys
}

// Two services consume one topic with the default (Spring Kafka) names,
// so they share its retry topic and DLT. Each handler sees each record
// once per its own attempts, never the other service's retries or dead
// letters, and each skips exactly the records the other forwarded.
func TestGroupsShareTopicWithoutCrossDelivery(t *testing.T) {
	t.Parallel()
	f := newFixture(t, 2)
	// billing: b-once fails once, b-dead always (3 attempts, then its DLT),
	// both fails once. shipping: s-perm fails permanently, both fails once.
	billing := newService(t, f, "billing", map[string]int{"b-once": 1, "b-dead": 99, "both": 1})
	shipping := newService(t, f, "shipping", nil)
	shipping.s.plan = func(key string, n int) error {
		if key == "s-perm" {
			return strategy.Permanent(fmt.Errorf("s-perm is malformed"))
		}
		return failTimes(map[string]int{"both": 1})(key, n)
	}
	if billing.l.Plan().Tiers[0].Topic != shipping.l.Plan().Tiers[0].Topic || billing.l.Plan().DLT != shipping.l.Plan().DLT {
		t.Fatalf("the services should share their topics: %v / %v", billing.l.Plan(), shipping.l.Plan())
	}
	keys := []string{"ok", "b-once", "b-dead", "s-perm", "both"}
	var rs []*kgo.Record
	for _, k := range keys {
		rs = append(rs, rec(f.topic, k))
	}
	f.c.Produce(rs...)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- listener.RunAll(ctx, billing.l, shipping.l) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("RunAll: %v", err)
		}
	})

	plan := billing.l.Plan()
	topics := plan.Topics()
	wantBilling := map[string]int{"ok": 1, "b-once": 2, "b-dead": 3, "s-perm": 1, "both": 2}
	wantShipping := map[string]int{"ok": 1, "b-once": 1, "b-dead": 1, "s-perm": 1, "both": 2}
	kafkatest.Eventually(t, 60*time.Second, func() bool {
		b, _ := deliveriesByKey(billing.s)
		s, _ := deliveriesByKey(shipping.s)
		return maps.Equal(b, wantBilling) && maps.Equal(s, wantShipping) &&
			len(dltKeys(billing.s)) == 1 && len(dltKeys(shipping.s)) == 1 &&
			caughtUp(t, f.c, billing.group, topics...) && caughtUp(t, f.c, shipping.group, topics...)
	}, "%v", lazy(func() string {
		b, _ := deliveriesByKey(billing.s)
		s, _ := deliveriesByKey(shipping.s)
		return fmt.Sprintf("deliveries: billing %v, shipping %v; DLT billing %v, shipping %v", b, s, dltKeys(billing.s), dltKeys(shipping.s))
	}))

	for _, sv := range []*service{billing, shipping} {
		_, groups := deliveriesByKey(sv.s)
		for _, g := range groups {
			if g != sv.group {
				t.Errorf("%s handled a retry of group %q", sv.name, g)
			}
		}
	}
	if got, want := dltKeys(billing.s), []string{"b-dead@" + billing.group}; !slices.Equal(got, want) {
		t.Errorf("billing's DLT handler saw %v, want %v", got, want)
	}
	if got, want := dltKeys(shipping.s), []string{"s-perm@" + shipping.group}; !slices.Equal(got, want) {
		t.Errorf("shipping's DLT handler saw %v, want %v", got, want)
	}
	// billing forwarded b-once, both and b-dead twice to the retry topic
	// and b-dead to the DLT; shipping forwarded both to the retry topic
	// and s-perm to the DLT. Each skips exactly the other's.
	skips := func(sv *service) map[string]int {
		out := map[string]int{}
		for _, e := range sv.s.eventsOf(listener.EventSkipped) {
			if e.Reason != listener.ReasonOtherGroup {
				t.Errorf("%s: skip reason %q", sv.name, e.Reason)
			}
			out[e.Topic+" of "+e.Group]++
		}
		return out
	}
	tier := plan.Tiers[0].Topic
	if got, want := skips(shipping), map[string]int{tier + " of " + billing.group: 4, plan.DLT + " of " + billing.group: 1}; !maps.Equal(got, want) {
		t.Errorf("shipping skipped %v, want %v", got, want)
	}
	if got, want := skips(billing), map[string]int{tier + " of " + shipping.group: 1, plan.DLT + " of " + shipping.group: 1}; !maps.Equal(got, want) {
		t.Errorf("billing skipped %v, want %v", got, want)
	}
}

// A record another group forwarded is skipped at once, even when it is
// not due for an hour: this group's tier partition is never paused for it
// and the records behind it are handled on time. A record without a
// group (Spring Kafka's, or older kretry's) belongs to every group.
func TestGroupSkipsOtherGroupsRecordsBeforeTheirDueTime(t *testing.T) {
	t.Parallel()
	f := newFixture(t, 1)
	sv := newService(t, f, "shipping", nil)
	tier := sv.l.Plan().Tiers[0].Topic
	f.c.CreateTopic(tier, 1)
	stamp := func(key, group string, due time.Time) *kgo.Record {
		st := retry.First(&kgo.Record{Topic: f.topic, Timestamp: time.Now()}, time.Now()).WithFailure(due, "e", "T")
		st.Group = group
		return retry.Next(rec(f.topic, key), tier, 0, st, 0)
	}
	f.c.Produce(
		stamp("theirs-later", "billing", time.Now().Add(time.Hour)),
		stamp("ownerless", "", time.Now()),
		stamp("mine", sv.group, time.Now()),
	)
	stop := started(t, sv.l)
	kafkatest.Eventually(t, 30*time.Second, func() bool {
		return sv.s.count("ownerless") == 1 && sv.s.count("mine") == 1 && caughtUp(t, f.c, sv.group, tier)
	}, "%v", lazy(func() string {
		return fmt.Sprintf("ownerless %d, mine %d handled", sv.s.count("ownerless"), sv.s.count("mine"))
	}))
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	if n := sv.s.count("theirs-later"); n != 0 {
		t.Errorf("billing's record handled %d times by shipping", n)
	}
	if n := len(sv.s.eventsOf(listener.EventPaused)); n != 0 {
		t.Errorf("the tier partition was paused %d times for another group's record", n)
	}
	if sk := sv.s.eventsOf(listener.EventSkipped); len(sk) != 1 || sk[0].Group != "billing" {
		t.Errorf("skipped %+v, want billing's record once", sk)
	}
}

// A corrupt retry record is dead-lettered by the group it names and
// skipped by the others; one naming no group is dead-lettered by every
// group that reads it, each into its own share of the DLT.
func TestGroupCorruptRecordsStayWithTheirGroup(t *testing.T) {
	t.Parallel()
	f := newFixture(t, 1)
	billing := newService(t, f, "billing", nil)
	shipping := newService(t, f, "shipping", nil)
	tier := billing.l.Plan().Tiers[0].Topic
	f.c.CreateTopic(tier, 1)
	corrupt := func(key, group string) *kgo.Record {
		r := rec(tier, key)
		r.Headers = []kgo.RecordHeader{{Key: retry.HeaderAttempt, Value: []byte{0, 0, 0, 2}}}
		if group != "" {
			r.Headers = append(r.Headers, kgo.RecordHeader{Key: retry.HeaderGroup, Value: []byte(group)})
		}
		return r
	}
	f.c.Produce(corrupt("billing-bad", billing.group), corrupt("anyone-bad", ""))
	started(t, billing.l)
	started(t, shipping.l)
	kafkatest.Eventually(t, 30*time.Second, func() bool {
		return len(dltKeys(billing.s)) == 2 && len(dltKeys(shipping.s)) == 1 &&
			caughtUp(t, f.c, billing.group, tier) && caughtUp(t, f.c, shipping.group, tier)
	}, "%v", lazy(func() string {
		return fmt.Sprintf("DLT billing %v, shipping %v", dltKeys(billing.s), dltKeys(shipping.s))
	}))
	if got, want := dltKeys(billing.s), []string{"anyone-bad@" + billing.group, "billing-bad@" + billing.group}; !slices.Equal(got, want) {
		t.Errorf("billing's DLT handler saw %v, want %v", got, want)
	}
	if got, want := dltKeys(shipping.s), []string{"anyone-bad@" + shipping.group}; !slices.Equal(got, want) {
		t.Errorf("shipping's DLT handler saw %v, want %v", got, want)
	}
	for _, d := range billing.s.dltOf("billing-bad") {
		if d.state.Reason != retry.ReasonCorruptHeaders {
			t.Errorf("reason %q, want %q", d.state.Reason, retry.ReasonCorruptHeaders)
		}
	}
}

// A registered handler whose type also has HandleDLT is its topic's DLT
// handler; with a "dlt=" field for the same topic as well, Register
// refuses, saying what to write.
func TestRegisterHandlerWithBothMethods(t *testing.T) {
	t.Parallel()
	f := newFixture(t, 1)
	s := newScript(func(key string, _ int) error { return strategy.Permanent(fmt.Errorf("bad %s", key)) })
	ls, err := listener.Register(f.c.Seeds, tagged(tf{"Orders", "topic=" + f.topic + ",group=" + f.group, s}),
		listener.Logger(quiet(t)), listener.FetchMaxWait(20*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	f.c.Produce(rec(f.topic, "k"))
	started(t, ls[0])
	kafkatest.Eventually(t, 30*time.Second, func() bool { return len(s.dltOf("k")) == 1 },
		"the handler's HandleDLT never saw the dead letter")

	_, err = listener.Register(offlineSeeds, tagged(
		tf{"Orders", "topic=orders", s},
		tf{"OrdersDLT", "dlt=orders", func(context.Context, *kgo.Record, retry.State) error { return nil }},
	))
	if err == nil || !strings.Contains(err.Error(), "has a HandleDLT method") ||
		!strings.Contains(err.Error(), "remove the OrdersDLT field, or register only the Handle method here (listener.HandlerFunc(x.Handle))") {
		t.Fatalf("Register with two DLT handlers for one topic: %v", err)
	}
}

// RunAll refuses two listeners of one group on one topic before starting
// anything, and warns when two groups share retry and DLT topics.
func TestRunAllSharedTopics(t *testing.T) {
	t.Parallel()
	h := listener.HandlerFunc(func(context.Context, *kgo.Record) error { return nil })
	var logs strings.Builder
	var mu sync.Mutex
	logger := slog.New(slog.NewTextHandler(lockedWriter{&mu, &logs}, nil))
	mk := func(group string, opts ...listener.Opt) *listener.Listener {
		l, err := listener.New(offlineSeeds, "orders", h, append([]listener.Opt{listener.Group(group), listener.Logger(logger)}, opts...)...)
		if err != nil {
			t.Fatal(err)
		}
		return l
	}
	err := listener.RunAll(context.Background(), mk("billing"), mk("billing", listener.Attempts(4)))
	if !errors.Is(err, listener.ErrSharedTopic) || !strings.Contains(err.Error(), `group "billing": topic "orders" is the main topic of "orders"`) {
		t.Fatalf("RunAll, one group twice: %v", err)
	}

	ctx, cancel := context.WithCancel(context.Background())
	cancel() // nothing runs: only the check is under test
	if err := listener.RunAll(ctx, mk("billing"), mk("shipping")); err != nil {
		t.Fatalf("RunAll, two groups: %v", err)
	}
	mu.Lock()
	defer mu.Unlock()
	if !strings.Contains(logs.String(), "listeners of two groups share retry or DLT topics") ||
		!strings.Contains(logs.String(), `topics="orders-retry, orders-dlt"`) {
		t.Fatalf("no warning about the shared topics; logs:\n%s", logs.String())
	}
}

type lockedWriter struct {
	mu *sync.Mutex
	w  io.Writer
}

func (w lockedWriter) Write(b []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.w.Write(b)
}

// New, like Register, takes a handler that also has HandleDLT as the DLT
// handler when no DLTHandler option is given.
func TestNewHandlerWithBothMethodsIsTheDLTHandler(t *testing.T) {
	t.Parallel()
	f := newFixture(t, 1)
	s := newScript(func(key string, _ int) error { return strategy.Permanent(fmt.Errorf("bad %s", key)) })
	l, err := listener.New(f.c.Seeds, f.topic, s, listener.Group(f.group), listener.Logger(quiet(t)))
	if err != nil {
		t.Fatal(err)
	}
	f.c.Produce(rec(f.topic, "k"))
	started(t, l)
	kafkatest.Eventually(t, 30*time.Second, func() bool { return len(s.dltOf("k")) == 1 },
		"the handler's HandleDLT never saw the dead letter")
}
