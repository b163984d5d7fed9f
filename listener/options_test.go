package listener_test

import (
	"context"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kretry/kretry/config"
	"github.com/kretry/kretry/internal/kafkatest"
	"github.com/kretry/kretry/listener"
	"github.com/kretry/kretry/retry"
	"github.com/kretry/kretry/strategy"
)

// newErrLines returns New's error, one problem a line.
func newErrLines(t *testing.T, opts ...listener.Opt) []string {
	t.Helper()
	l, err := listener.New(offlineSeeds, "orders", nopHandler, opts...)
	if err == nil {
		t.Fatalf("New succeeded: %+v", l.Spec())
	}
	return strings.Split(err.Error(), "\n")
}

// One rule for zero: every option given 0 means its default, as the same
// setting written 0 in a tag or a policy file does.
func TestZeroOptionsMeanTheDefault(t *testing.T) {
	l, err := listener.New(offlineSeeds, "orders", nopHandler,
		listener.Attempts(0), listener.Backoff(strategy.FixedBackoff(0)), listener.Timeout(0),
		listener.MaxErrorBytes(0), listener.DLTHandlerAttempts(0), listener.DLTHandlerBackoff(0),
		listener.TopicPartitions(0), listener.ReplicationFactor(0),
		listener.Concurrency(0), listener.MaxPollRecords(0), listener.HandlerTimeout(0),
		listener.MaxRequestedDelay(0), listener.ShutdownTimeout(0), listener.RevokeTimeout(0), listener.FetchMaxWait(0))
	if err != nil {
		t.Fatal(err)
	}
	if s, def := l.Spec(), config.DefaultSpec("orders"); !s.Equal(def) || s.Topics.Partitions != -1 || s.Topics.ReplicationFactor != -1 {
		t.Errorf("spec %+v, want the default %+v", s, def)
	}
	p := l.Policy()
	if p.Attempts != retry.DefaultAttempts || p.MaxErrorBytes != retry.DefaultMaxErrorBytes ||
		p.DLTHandlerAttempts != retry.DefaultDLTHandlerAttempts || p.DLTHandlerBackoff != retry.DefaultDLTHandlerBackoff ||
		p.Backoff.Delay != strategy.DefaultDelay {
		t.Errorf("policy %+v is not the default", p)
	}

	// The three surfaces agree on zero.
	for _, tc := range []struct {
		opt        listener.Opt
		tag, yaml  string
		wantPolicy func(retry.Policy) bool
	}{
		{listener.Attempts(0), "attempts=0", "attempts: 0", func(p retry.Policy) bool { return p.Attempts == 3 }},
		{listener.DLTHandlerAttempts(0), "dltHandlerAttempts=0", "dltHandlerAttempts: 0", func(p retry.Policy) bool { return p.DLTHandlerAttempts == 3 }},
		{listener.DLTHandlerBackoff(0), "dltHandlerBackoff=0s", "dltHandlerBackoff: 0s", func(p retry.Policy) bool { return p.DLTHandlerBackoff == time.Second }},
		{listener.MaxErrorBytes(0), "maxErrorBytes=0", "maxErrorBytes: 0", func(p retry.Policy) bool { return p.MaxErrorBytes == 4096 }},
		{listener.Backoff(strategy.FixedBackoff(0)), "delay=0s", "delay: 0s", func(p retry.Policy) bool { return p.Backoff.Delay == time.Second }},
		{listener.TopicPartitions(0), "partitions=0", "partitions: 0", func(retry.Policy) bool { return true }},
	} {
		fromGo, fromTag, fromFile := surfaces(t, "orders", []listener.Opt{tc.opt}, "topic=orders,"+tc.tag, "listeners:\n  - topic: orders\n    "+tc.yaml+"\n")
		sameListener(t, tc.tag+" (tag vs Go)", fromTag, fromGo)
		sameListener(t, tc.yaml+" (file vs Go)", fromFile, fromGo)
		if !tc.wantPolicy(fromGo.Policy()) {
			t.Errorf("%s: policy %+v", tc.tag, fromGo.Policy())
		}
		if p := fromGo.Spec().Topics.Partitions; p != -1 {
			t.Errorf("%s: partitions %d, want -1", tc.tag, p)
		}
	}

	// A zero-delay tier is a list entry, which means what it says.
	l, err = listener.New(offlineSeeds, "orders", nopHandler, listener.Attempts(2), listener.Backoff(strategy.ListBackoff(0)))
	if err != nil || l.Plan().Tiers[0].Delay != 0 {
		t.Errorf("ListBackoff(0): %v, %+v", err, l.Plan())
	}
}

// Values that can never be valid fail, each reported once, naming the
// option or setting and the rule.
func TestOptionErrorsReportEachProblemOnce(t *testing.T) {
	got := newErrLines(t, listener.Attempts(-1))
	want := []string{`listener: topic "orders": attempts: must be >= 1 and <= 32767, or 0 for the default, got -1`}
	if !slices.Equal(got, want) {
		t.Errorf("Attempts(-1):\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}

	got = newErrLines(t, listener.Backoff(strategy.ExponentialBackoff(1500*time.Microsecond, 0.5, time.Millisecond)))
	want = []string{
		`listener: topic "orders": delay: must be a whole number of milliseconds (topic names carry milliseconds), got 1.5ms`,
		`listener: topic "orders": multiplier: must be > 1 for exponential backoff, got 0.5`,
		`listener: topic "orders": maxDelay: must be 0s (no cap) or >= delay 1.5ms, got 1ms`,
	}
	if !slices.Equal(got, want) {
		t.Errorf("ExponentialBackoff(1.5ms, 0.5, 1ms):\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}

	got = newErrLines(t, listener.MaxErrorBytes(10), listener.DLTHandlerAttempts(-1), listener.DLTHandlerBackoff(-time.Second),
		listener.Timeout(-time.Second), listener.Concurrency(-1), listener.MaxPollRecords(-1), listener.HandlerTimeout(-time.Second),
		listener.ShutdownTimeout(-time.Second), listener.RevokeTimeout(-time.Second), listener.MaxRequestedDelay(-time.Second),
		listener.FetchMaxWait(-time.Second), listener.TopicPartitions(-2), listener.ReplicationFactor(-2))
	want = []string{
		"listener: Concurrency must be >= 1, or 0 for the default, got -1",
		"listener: MaxPollRecords must be >= 1, or 0 for the default, got -1",
		"listener: HandlerTimeout must be >= 0, got -1s",
		"listener: ShutdownTimeout must be >= 0, got -1s",
		"listener: RevokeTimeout must be >= 0, got -1s",
		"listener: MaxRequestedDelay must be >= 0, got -1s",
		"listener: FetchMaxWait must be >= 0, got -1s",
		"listener: TopicPartitions must be >= 1, or -1 or 0 for the default, got -2",
		"listener: ReplicationFactor must be >= 1, or -1 or 0 for the default, got -2",
		`listener: topic "orders": timeout: must be >= 0, got -1s`,
		`listener: topic "orders": maxErrorBytes: must be >= 64 and <= 2147483647, or 0 for the default, got 10`,
		`listener: topic "orders": dltHandlerAttempts: must be >= 1 and <= 2147483647, or 0 for the default, got -1`,
		`listener: topic "orders": dltHandlerBackoff: must be >= 0, got -1s`,
	}
	if !slices.Equal(got, want) {
		t.Errorf("negative options:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// For the same mistakes, Go options and a policy file name the same keys
// and the same rules.
func TestOptionErrorsWordedAsPolicyFiles(t *testing.T) {
	goPrefix := regexp.MustCompile(`^listener: topic "orders": `)
	filePrefix := regexp.MustCompile(`^policy\.yaml:\d+:\d+: listeners\[0\]\.`)
	origin := regexp.MustCompile(` \(from [^)]*\)`) // where another value came from: Go has no positions
	for _, tc := range []struct {
		opts []listener.Opt
		yaml string
	}{
		{[]listener.Opt{listener.Attempts(-1)}, "attempts: -1"},
		{[]listener.Opt{listener.Backoff(strategy.ExponentialBackoff(time.Second, 0.5, 0))}, "multiplier: 0.5"},
		{[]listener.Opt{listener.Backoff(strategy.FixedBackoff(1500 * time.Microsecond))}, "delay: 1500us"},
		{[]listener.Opt{listener.Backoff(strategy.ExponentialBackoff(2*time.Second, 2, time.Second))}, "delay: 2s\n    multiplier: 2\n    maxDelay: 1s"},
		{[]listener.Opt{listener.Attempts(3), listener.Backoff(strategy.ListBackoff(time.Second, 2*time.Second, 3*time.Second, 4*time.Second, 5*time.Second))},
			"attempts: 3\n    delays: [1s, 2s, 3s, 4s, 5s]"},
		{[]listener.Opt{listener.MaxErrorBytes(10)}, "maxErrorBytes: 10"},
		{[]listener.Opt{listener.DLTHandlerAttempts(-1)}, "dltHandlerAttempts: -1"},
		{[]listener.Opt{listener.DLTHandlerBackoff(-time.Second)}, "dltHandlerBackoff: -1s"},
		{[]listener.Opt{listener.Naming(strategy.Naming{DLTSuffix: "-retry"})}, "dltSuffix: -retry"},
	} {
		var fromGo []string
		for _, l := range newErrLines(t, tc.opts...) {
			fromGo = append(fromGo, goPrefix.ReplaceAllString(l, ""))
		}
		// Single values are checked when the file is parsed, the rules
		// across fields when it is registered.
		f, err := config.Parse("policy.yaml", []byte("listeners:\n  - topic: orders\n    "+tc.yaml+"\n"))
		if err == nil {
			_, err = listener.Register(offlineSeeds, tagged(tf{"Orders", "topic=orders", nopHandler}), listener.PolicyFile(f))
		}
		if err == nil {
			t.Fatalf("%s: Register succeeded", tc.yaml)
		}
		var fromFile []string
		for _, l := range strings.Split(err.Error(), "\n") {
			fromFile = append(fromFile, origin.ReplaceAllString(filePrefix.ReplaceAllString(l, ""), ""))
		}
		if !slices.Equal(fromGo, fromFile) {
			t.Errorf("Go options say:\n%s\nthe policy file gets:\n%s", strings.Join(fromGo, "\n"), strings.Join(fromFile, "\n"))
		}
	}
}

// A list backoff with more delays than retries is an error on every
// surface, naming the field and the rule.
func TestDelaysBeyondAttemptsFail(t *testing.T) {
	five := strategy.ListBackoff(time.Second, 2*time.Second, 3*time.Second, 4*time.Second, 5*time.Second)
	got := newErrLines(t, listener.Attempts(3), listener.Backoff(five))
	want := []string{`listener: topic "orders": delays: has 5 entries but attempts 3 allows at most 2 (attempts - 1)`}
	if !slices.Equal(got, want) {
		t.Errorf("Go options:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	_, err := listener.Register(offlineSeeds, tagged(tf{"Orders", "topic=orders,delays=1s|2s|3s", nopHandler}))
	wantErrLines(t, err, `struct {…}.Orders (kretry tag): delays: has 3 entries but attempts 3 (from Go options or defaults) allows at most 2 (attempts - 1)`)
	// Enough attempts, and the list is used in full.
	l, err := listener.New(offlineSeeds, "orders", nopHandler, listener.Attempts(6), listener.Backoff(five))
	if err != nil {
		t.Fatal(err)
	}
	if n := len(l.Plan().Tiers); n != 5 {
		t.Errorf("%d tiers, want 5", n)
	}
}

// GroupTopics names the tiers and DLTs after the listener's group; without
// it the names are Spring Kafka's whatever the group.
func TestGroupTopicsNaming(t *testing.T) {
	grouped := listener.Naming(strategy.Naming{GroupTopics: true})
	l, err := listener.New(offlineSeeds, "orders", nopHandler, listener.Group("billing"), grouped,
		listener.Backoff(strategy.ExponentialBackoff(time.Second, 2, 0)), listener.Route("-validation", mValidation))
	if err != nil {
		t.Fatal(err)
	}
	want := "orders\t-\norders-billing-retry-1000\t1s\norders-billing-retry-2000\t2s\norders-billing-dlt\t-\norders-billing-validation-dlt\t-\n"
	if got := l.Plan().String(); got != want {
		t.Errorf("plan:\n%s\nwant:\n%s", got, want)
	}
	// The same from a tag and a policy file.
	fromGo, fromTag, fromFile := surfaces(t, "orders", []listener.Opt{listener.Group("billing"), grouped},
		"topic=orders,group=billing,groupTopics=true", "listeners:\n  - topic: orders\n    group: billing\n    groupTopics: true\n")
	sameListener(t, "tag vs Go", fromTag, fromGo)
	sameListener(t, "file vs Go", fromFile, fromGo)
	if got, want := fromGo.Plan().DLT, "orders-billing-dlt"; got != want {
		t.Errorf("DLT %q, want %q", got, want)
	}
	// The default group is kretry-<topic>.
	l, err = listener.New(offlineSeeds, "orders", nopHandler, grouped)
	if err != nil {
		t.Fatal(err)
	}
	if got := l.Plan().DLT; got != "orders-kretry-orders-dlt" {
		t.Errorf("DLT with the default group: %q", got)
	}
	// Without GroupTopics, the group names nothing.
	l, err = listener.New(offlineSeeds, "orders", nopHandler, listener.Group("billing"))
	if err != nil {
		t.Fatal(err)
	}
	if got := l.Plan().String(); got != "orders\t-\norders-retry\t1s\norders-dlt\t-\n" {
		t.Errorf("plan without GroupTopics:\n%s", got)
	}
	// A group that cannot be part of a topic name.
	got := newErrLines(t, listener.Group("billing/eu"), grouped)
	if want := []string{`listener: topic "orders": group: cannot be part of topic names (naming.groupTopics): may contain only [a-zA-Z0-9._-], got "billing/eu" with "/" at byte 7`}; !slices.Equal(got, want) {
		t.Errorf("invalid group:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	// Two listeners of one topic in different groups do not share topics.
	a, errA := listener.New(offlineSeeds, "orders", nopHandler, listener.Group("billing"), grouped)
	b, errB := listener.New(offlineSeeds, "orders", nopHandler, listener.Group("shipping"), grouped)
	if errA != nil || errB != nil {
		t.Fatal(errA, errB)
	}
	for _, topic := range a.Plan().Topics()[1:] {
		if slices.Contains(b.Plan().Topics(), topic) {
			t.Errorf("groups billing and shipping share %s", topic)
		}
	}
}

func TestMaxRequestedDelayMustBePositive(t *testing.T) {
	_, err := listener.New([]string{"localhost:9092"}, "orders", listener.HandlerFunc(nil),
		listener.MaxRequestedDelay(-time.Second))
	if err == nil || !strings.Contains(err.Error(), "MaxRequestedDelay must be >= 0") {
		t.Errorf("err = %v, want one naming MaxRequestedDelay", err)
	}
}

// Consumer and group options given through ClientOpts do not break the
// admin client Run uses, and options that would break the commit guarantee
// are refused with their name.
func TestClientOptsAreFilteredAndChecked(t *testing.T) {
	f := newFixture(t, 1)
	s := newScript(failTimes(nil))
	l := f.listener(t, s, listener.ClientOpts(
		kgo.AutoCommitCallback(func(*kgo.Client, *kmsg.OffsetCommitRequest, *kmsg.OffsetCommitResponse, error) {}),
		kgo.FetchMaxBytes(1<<20)))
	f.c.Produce(rec(f.topic, "a"))
	started(t, l)
	kafkatest.Eventually(t, waitFor, func() bool { return s.count("a") == 1 }, "handled with group options in ClientOpts")

	bad := f.listener(t, s, listener.ClientOpts(kgo.GreedyAutoCommit()))
	err := bad.Run(context.Background())
	if err == nil || !strings.Contains(err.Error(), "greedy") {
		t.Fatalf("Run with GreedyAutoCommit: %v, want an error naming greedy autocommitting", err)
	}
	bad = f.listener(t, s, listener.ClientOpts(kgo.ManualFlushing()))
	if err := bad.Run(context.Background()); err == nil || !strings.Contains(err.Error(), "kgo.ManualFlushing") {
		t.Fatalf("Run with ManualFlushing: %v, want an error naming it", err)
	}
}
