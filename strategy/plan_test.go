package strategy_test

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/kretry/kretry/strategy"
)

// Facts about Spring Kafka's naming, read from spring-kafka's main branch
// (4.x): DestinationTopicPropertiesFactory, DefaultDestinationTopicResolver,
// RetryTopicConfigurationBuilder, RetryTopicConstants, BackOffValuesGenerator,
// SuffixingRetryTopicNamesProviderFactory, the annotation classes
// RetryableTopic and BackOffFactory, their tests
// (DestinationTopicPropertiesFactoryTests, DefaultDestinationTopicResolverTests)
// and the reference page retrytopic/topic-naming.adoc; plus spring-core's
// ExponentialBackOff for the delay arithmetic.
//
//   - The backoff produces attempts-1 values in milliseconds; defaults are 3
//     attempts, a fixed 1000 ms delay, suffixes "-retry" and "-dlt",
//     suffixing by delay value and the single-topic reuse strategy.
//   - The names provider only appends a suffix to the main topic name.
//   - Index suffixes are used when the strategy says so or when the list has
//     more than one value and all values are equal.
//   - Under the single-topic strategy, the number of retry topics is the
//     number of values minus (occurrences of the last value - 1); when that
//     leaves exactly one topic its suffix is the bare retry suffix.
//   - A topic is the reusable kind when, under the single-topic strategy,
//     its delay occurs more than once. The resolver refuses a chain in which
//     a reusable topic is followed by anything but DLTs, so under the
//     single-topic strategy a delay repeated in the middle of the schedule
//     (or a last delay that also occurs earlier) fails at start-up.
//   - Under the multiple-topics strategy with delay suffixes, a delay that
//     occurs more than once gets "-<position - position of its first
//     occurrence>" appended: -2000-0, -2000-1, -2000-2 for a middle run, and
//     gaps in that count when the occurrences are not adjacent.
//   - A routed DLT is main + route suffix + DLT suffix.
//   - Exponential delays step as min((long)(current*multiplier), max) in
//     milliseconds, so fractional multipliers truncate at every step.
func TestNewPlanNaming(t *testing.T) {
	type tier struct {
		topic    string
		delay    time.Duration
		reusable bool
	}
	byIndex := strategy.Naming{Suffixing: strategy.SuffixByIndex}
	multiple := strategy.Naming{SameInterval: strategy.MultipleTopics}
	multipleByIndex := strategy.Naming{Suffixing: strategy.SuffixByIndex, SameInterval: strategy.MultipleTopics}
	capped := strategy.ExponentialBackoff(s, 2, 3*s)

	tests := []struct {
		name     string
		attempts int
		b        strategy.Backoff
		n        strategy.Naming
		tiers    []tier
		dlt      string
	}{
		{"defaults: one reusable bare topic", 3, strategy.Backoff{}, strategy.Naming{},
			[]tier{{"orders-retry", s, true}}, "orders-dlt"},
		{"spring docs example", 4, strategy.ExponentialBackoff(s, 2, 0), strategy.Naming{},
			[]tier{{"orders-retry-1000", s, false}, {"orders-retry-2000", 2 * s, false}, {"orders-retry-4000", 4 * s, false}}, "orders-dlt"},
		{"attempts 1: no tiers", 1, strategy.Backoff{}, strategy.Naming{}, nil, "orders-dlt"},
		{"attempts 1 multiple by index", 1, capped, multipleByIndex, nil, "orders-dlt"},

		// One retry: a single value is never "fixed" and never repeated.
		{"attempts 2 fixed single", 2, strategy.FixedBackoff(2 * s), strategy.Naming{},
			[]tier{{"orders-retry", 2 * s, false}}, "orders-dlt"},
		{"attempts 2 exponential single", 2, capped, strategy.Naming{},
			[]tier{{"orders-retry", s, false}}, "orders-dlt"},
		{"attempts 2 single by index", 2, capped, byIndex,
			[]tier{{"orders-retry", s, false}}, "orders-dlt"},
		{"attempts 2 multiple by delay", 2, strategy.FixedBackoff(2 * s), multiple,
			[]tier{{"orders-retry-2000", 2 * s, false}}, "orders-dlt"},
		{"attempts 2 multiple by index", 2, strategy.FixedBackoff(2 * s), multipleByIndex,
			[]tier{{"orders-retry-0", 2 * s, false}}, "orders-dlt"},

		// Fixed delays.
		{"fixed single (docs: 3000 ms, 5 attempts)", 5, strategy.FixedBackoff(3 * s), strategy.Naming{},
			[]tier{{"orders-retry", 3 * s, true}}, "orders-dlt"},
		{"fixed multiple uses index suffixes", 3, strategy.FixedBackoff(5 * s), multiple,
			[]tier{{"orders-retry-0", 5 * s, false}, {"orders-retry-1", 5 * s, false}}, "orders-dlt"},
		{"fixed multiple by index", 4, strategy.FixedBackoff(s), multipleByIndex,
			[]tier{{"orders-retry-0", s, false}, {"orders-retry-1", s, false}, {"orders-retry-2", s, false}}, "orders-dlt"},
		{"fixed single by index", 4, strategy.FixedBackoff(s), byIndex,
			[]tier{{"orders-retry", s, true}}, "orders-dlt"},
		{"exponential with max == delay behaves as fixed", 4, strategy.ExponentialBackoff(4*s, 2, 4*s), multiple,
			[]tier{{"orders-retry-0", 4 * s, false}, {"orders-retry-1", 4 * s, false}, {"orders-retry-2", 4 * s, false}}, "orders-dlt"},

		// Exponential capped by MaxDelay (spring tests: 1000 ms x2, max 3000, 5 attempts).
		{"capped single", 5, capped, strategy.Naming{},
			[]tier{{"orders-retry-1000", s, false}, {"orders-retry-2000", 2 * s, false}, {"orders-retry-3000", 3 * s, true}}, "orders-dlt"},
		{"capped multiple", 5, capped, multiple,
			[]tier{{"orders-retry-1000", s, false}, {"orders-retry-2000", 2 * s, false}, {"orders-retry-3000-0", 3 * s, false}, {"orders-retry-3000-1", 3 * s, false}}, "orders-dlt"},
		{"capped single by index", 5, capped, byIndex,
			[]tier{{"orders-retry-0", s, false}, {"orders-retry-1", 2 * s, false}, {"orders-retry-2", 3 * s, true}}, "orders-dlt"},
		{"capped multiple by index: no extra index", 5, capped, multipleByIndex,
			[]tier{{"orders-retry-0", s, false}, {"orders-retry-1", 2 * s, false}, {"orders-retry-2", 3 * s, false}, {"orders-retry-3", 3 * s, false}}, "orders-dlt"},
		{"capped but cap not reached", 3, capped, strategy.Naming{},
			[]tier{{"orders-retry-1000", s, false}, {"orders-retry-2000", 2 * s, false}}, "orders-dlt"},
		{"fractional multiplier names truncate like spring", 6, strategy.ExponentialBackoff(s, 1.5, 0), strategy.Naming{},
			[]tier{{"orders-retry-1000", s, false}, {"orders-retry-1500", 1500 * ms, false}, {"orders-retry-2250", 2250 * ms, false},
				{"orders-retry-3375", 3375 * ms, false}, {"orders-retry-5062", 5062 * ms, false}}, "orders-dlt"},

		// Lists.
		{"list repeats at end single", 5, strategy.ListBackoff(s, 2*s, 5*s, 5*s), strategy.Naming{},
			[]tier{{"orders-retry-1000", s, false}, {"orders-retry-2000", 2 * s, false}, {"orders-retry-5000", 5 * s, true}}, "orders-dlt"},
		{"list shorter than needed reuses last", 5, strategy.ListBackoff(s, 2*s), strategy.Naming{},
			[]tier{{"orders-retry-1000", s, false}, {"orders-retry-2000", 2 * s, true}}, "orders-dlt"},
		{"list repeats at end multiple", 5, strategy.ListBackoff(s, 2*s, 5*s, 5*s), multiple,
			[]tier{{"orders-retry-1000", s, false}, {"orders-retry-2000", 2 * s, false}, {"orders-retry-5000-0", 5 * s, false}, {"orders-retry-5000-1", 5 * s, false}}, "orders-dlt"},
		{"list repeats in middle multiple (spring test)", 6, strategy.ListBackoff(s, 2*s, 2*s, 2*s, 3*s), multiple,
			[]tier{{"orders-retry-1000", s, false}, {"orders-retry-2000-0", 2 * s, false}, {"orders-retry-2000-1", 2 * s, false},
				{"orders-retry-2000-2", 2 * s, false}, {"orders-retry-3000", 3 * s, false}}, "orders-dlt"},
		{"list non-adjacent repeats multiple leave a gap", 4, strategy.ListBackoff(s, 2*s, s), multiple,
			[]tier{{"orders-retry-1000-0", s, false}, {"orders-retry-2000", 2 * s, false}, {"orders-retry-1000-2", s, false}}, "orders-dlt"},
		{"list all equal single", 4, strategy.ListBackoff(2*s, 2*s, 2*s), strategy.Naming{},
			[]tier{{"orders-retry", 2 * s, true}}, "orders-dlt"},
		{"list all equal multiple", 4, strategy.ListBackoff(2*s, 2*s, 2*s), multiple,
			[]tier{{"orders-retry-0", 2 * s, false}, {"orders-retry-1", 2 * s, false}, {"orders-retry-2", 2 * s, false}}, "orders-dlt"},
		{"list zero delays (spring noBackoff)", 3, strategy.ListBackoff(0), strategy.Naming{},
			[]tier{{"orders-retry", 0, true}}, "orders-dlt"},
		{"list zero then one second", 3, strategy.ListBackoff(0, s), strategy.Naming{},
			[]tier{{"orders-retry-0", 0, false}, {"orders-retry-1000", s, false}}, "orders-dlt"},

		// Suffixes (docs: "-my-retry-suffix", "-my-dlt-suffix").
		{"custom suffixes", 3, strategy.ExponentialBackoff(s, 2, 0),
			strategy.Naming{RetrySuffix: "-my-retry-suffix", DLTSuffix: "-my-dlt-suffix"},
			[]tier{{"orders-my-retry-suffix-1000", s, false}, {"orders-my-retry-suffix-2000", 2 * s, false}}, "orders-my-dlt-suffix"},
		{"suffix without dash", 3, strategy.Backoff{}, strategy.Naming{RetrySuffix: ".retry", DLTSuffix: ".dlt"},
			[]tier{{"orders.retry", s, true}}, "orders.dlt"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := strategy.NewPlan("orders", tt.attempts, tt.b, tt.n)
			if err != nil {
				t.Fatalf("NewPlan: %v", err)
			}
			var got []tier
			for i, tr := range p.Tiers {
				if tr.Index != i {
					t.Errorf("tier %d has Index %d", i, tr.Index)
				}
				got = append(got, tier{tr.Topic, tr.Delay, tr.Reusable})
			}
			if !slices.Equal(got, tt.tiers) {
				t.Errorf("tiers:\n got  %v\n want %v", got, tt.tiers)
			}
			if p.DLT != tt.dlt || p.Main != "orders" || p.Attempts != tt.attempts {
				t.Errorf("plan = %+v, want main orders, attempts %d, DLT %s", p, tt.attempts, tt.dlt)
			}
			// Tier count: attempts-1, or fewer only when the last is reusable.
			if n := len(p.Tiers); n != tt.attempts-1 && (n == 0 || !p.Tiers[n-1].Reusable) {
				t.Errorf("%d tiers for %d attempts without a reusable last tier", n, tt.attempts)
			}
		})
	}
}

// The reference page's long example: 1000 ms x2 capped at 16000 ms.
func TestNewPlanSpringLongExponential(t *testing.T) {
	b := strategy.ExponentialBackoff(s, 2, 16*s)
	p, err := strategy.NewPlan("t", 229, b, strategy.Naming{})
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, tr := range p.Tiers {
		names = append(names, tr.Topic)
	}
	want := []string{"t-retry-1000", "t-retry-2000", "t-retry-4000", "t-retry-8000", "t-retry-16000"}
	if !slices.Equal(names, want) || !p.Tiers[4].Reusable {
		t.Errorf("single: tiers %v (last reusable %v), want %v", names, p.Tiers[len(p.Tiers)-1].Reusable, want)
	}

	p, err = strategy.NewPlan("t", 230, b, strategy.Naming{SameInterval: strategy.MultipleTopics})
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Tiers) != 229 {
		t.Fatalf("multiple: %d tiers, want 229", len(p.Tiers))
	}
	if got := p.Tiers[4].Topic; got != "t-retry-16000-0" {
		t.Errorf("tier 4 = %s, want t-retry-16000-0", got)
	}
	if got := p.Tiers[228].Topic; got != "t-retry-16000-224" {
		t.Errorf("last tier = %s, want t-retry-16000-224", got)
	}
}

func TestNewPlanJitterNeverChangesNames(t *testing.T) {
	for _, b := range []strategy.Backoff{
		{},
		strategy.ExponentialBackoff(s, 2, 10*s),
		strategy.ExponentialBackoff(700*ms, 1.3, 0),
		strategy.ListBackoff(s, 5*s),
	} {
		want, err := strategy.NewPlan("orders", 7, b, strategy.Naming{})
		if err != nil {
			t.Fatal(err)
		}
		b.Jitter = 1
		got, err := strategy.NewPlan("orders", 7, b, strategy.Naming{})
		if err != nil {
			t.Fatal(err)
		}
		if got.String() != want.String() {
			t.Errorf("jitter changed the plan:\n%s\nvs\n%s", got, want)
		}
	}
}

func TestNewPlanRoutes(t *testing.T) {
	p, err := strategy.NewPlan("orders", 3, strategy.Backoff{}, strategy.Naming{}, "-validation", ".auth")
	if err != nil {
		t.Fatal(err)
	}
	want := []strategy.RouteTopic{{Suffix: "-validation", Topic: "orders-validation-dlt"}, {Suffix: ".auth", Topic: "orders.auth-dlt"}}
	if !slices.Equal(p.Routes, want) {
		t.Errorf("Routes = %v, want %v", p.Routes, want)
	}
	for _, tt := range []struct {
		route string
		topic string
		ok    bool
	}{
		{"", "orders-dlt", true},
		{"-validation", "orders-validation-dlt", true},
		{".auth", "orders.auth-dlt", true},
		{"-nope", "orders-dlt", false},
	} {
		if topic, ok := p.DLTFor(tt.route); topic != tt.topic || ok != tt.ok {
			t.Errorf("DLTFor(%q) = %s, %v; want %s, %v", tt.route, topic, ok, tt.topic, tt.ok)
		}
	}
}

func TestNewPlanErrors(t *testing.T) {
	long := strings.Repeat("a", 249)
	tests := []struct {
		name     string
		main     string
		attempts int
		b        strategy.Backoff
		n        strategy.Naming
		routes   []string
		want     string
	}{
		{"max length main is fine", long[:240], 2, strategy.Backoff{}, strategy.Naming{}, nil, ""},
		{"empty main", "", 3, strategy.Backoff{}, strategy.Naming{}, nil, "strategy: main topic must not be empty"},
		{"dot main", ".", 3, strategy.Backoff{}, strategy.Naming{}, nil, `strategy: main topic must not be "."`},
		{"dot dot main", "..", 3, strategy.Backoff{}, strategy.Naming{}, nil, `main topic must not be ".."`},
		{"main with space", "my topic", 3, strategy.Backoff{}, strategy.Naming{}, nil, "main topic may contain only [a-zA-Z0-9._-]"},
		{"main with slash", "a/b", 3, strategy.Backoff{}, strategy.Naming{}, nil, `main topic may contain only [a-zA-Z0-9._-], got "a/b" with "/" at byte 1`},
		{"main too long", long + "a", 3, strategy.Backoff{}, strategy.Naming{}, nil, "main topic must be at most 249 characters, got 250"},
		{"attempts zero", "orders", 0, strategy.Backoff{}, strategy.Naming{}, nil, "attempts: must be >= 1 and <= 32767, got 0"},
		{"attempts negative", "orders", -1, strategy.Backoff{}, strategy.Naming{}, nil, "attempts: must be >= 1"},
		{"attempts too many", "orders", 32768, strategy.Backoff{}, strategy.Naming{}, nil, "attempts: must be >= 1 and <= 32767, got 32768"},
		{"bad backoff", "orders", 3, strategy.ExponentialBackoff(s, 0.5, 0), strategy.Naming{}, nil, "multiplier: must be > 1"},
		{"bad naming", "orders", 3, strategy.Backoff{}, strategy.Naming{RetrySuffix: "-dlt"}, nil, "retrySuffix and dltSuffix must differ"},
		{"empty route", "orders", 3, strategy.Backoff{}, strategy.Naming{}, []string{""}, "strategy: route suffix 0 must not be empty"},
		{"illegal route", "orders", 3, strategy.Backoff{}, strategy.Naming{}, []string{"-ok", "-a b"}, "route suffix 1 may contain only"},
		{"duplicate route", "orders", 3, strategy.Backoff{}, strategy.Naming{}, []string{"-x", "-y", "-x"}, `strategy: route suffix 2 must be unique, "-x" is also route suffix 0`},
		{"generated retry name too long", long[:240], 3, strategy.ExponentialBackoff(s, 2, 0), strategy.Naming{}, nil,
			"retry tier 0 name must be at most 249 characters, got 251"},
		{"generated dlt name too long", long[:246], 1, strategy.Backoff{}, strategy.Naming{}, nil,
			"dead-letter topic name must be at most 249 characters, got 250"},
		{"generated route name too long", long[:240], 1, strategy.Backoff{}, strategy.Naming{}, []string{"-validation"},
			"route \"-validation\" name must be at most 249 characters"},
		{"tier collides with dlt", "orders", 3, strategy.ExponentialBackoff(s, 2, 0),
			strategy.Naming{RetrySuffix: "-x", DLTSuffix: "-x-1", Suffixing: strategy.SuffixByIndex}, nil,
			`strategy: generated topic "orders-x-1" is both the retry tier 1 and the dead-letter topic`},
		{"route collides with tier", "orders", 3, strategy.ExponentialBackoff(s, 2, 0),
			strategy.Naming{RetrySuffix: "-r", DLTSuffix: "-1000"}, []string{"-r"},
			`strategy: generated topic "orders-r-1000" is both the retry tier 0 and the dead-letter topic of route "-r"`},
		{"middle repeat single (spring rejects)", "orders", 6, strategy.ListBackoff(s, 2*s, 2*s, 2*s, 3*s), strategy.Naming{}, nil,
			"strategy: backoff delay 2s repeats before the end of the schedule (retry 2); sameInterval single can reuse a topic only for the final delay"},
		{"last delay also earlier single", "orders", 4, strategy.ListBackoff(2*s, s, 2*s), strategy.Naming{}, nil,
			"backoff delay 2s repeats before the end of the schedule (retry 1)"},
		{"middle repeat single by index", "orders", 5, strategy.ListBackoff(s, 2*s, 2*s, 3*s), strategy.Naming{Suffixing: strategy.SuffixByIndex}, nil,
			"repeats before the end of the schedule"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := strategy.NewPlan(tt.main, tt.attempts, tt.b, tt.n, tt.routes...)
			assertErr(t, err, tt.want)
			if err != nil && (p.Main != "" || p.Tiers != nil) {
				t.Errorf("failed NewPlan returned a non-zero plan %+v", p)
			}
		})
	}
}

func TestPlanTierForAttempt(t *testing.T) {
	capped, err := strategy.NewPlan("o", 6, strategy.ExponentialBackoff(s, 2, 2*s), strategy.Naming{})
	if err != nil {
		t.Fatal(err)
	}
	multiple, err := strategy.NewPlan("o", 4, strategy.ExponentialBackoff(s, 2, 2*s), strategy.Naming{SameInterval: strategy.MultipleTopics})
	if err != nil {
		t.Fatal(err)
	}
	fixed, err := strategy.NewPlan("o", 3, strategy.Backoff{}, strategy.Naming{})
	if err != nil {
		t.Fatal(err)
	}
	none, err := strategy.NewPlan("o", 1, strategy.Backoff{}, strategy.Naming{})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		p       strategy.Plan
		attempt int
		topic   string // "" means no tier
	}{
		{"first delivery", capped, 1, ""},
		{"zero", capped, 0, ""},
		{"negative", capped, -4, ""},
		{"second delivery", capped, 2, "o-retry-1000"},
		{"third delivery", capped, 3, "o-retry-2000"},
		{"reusable carries the rest", capped, 4, "o-retry-2000"},
		{"reusable carries the last", capped, 6, "o-retry-2000"},
		{"past attempts", capped, 7, ""},
		{"multiple 4", multiple, 4, "o-retry-2000-1"},
		{"multiple 5", multiple, 5, ""},
		{"fixed 2", fixed, 2, "o-retry"},
		{"fixed 3", fixed, 3, "o-retry"},
		{"fixed 4", fixed, 4, ""},
		{"no tiers", none, 2, ""},
		{"zero plan", strategy.Plan{}, 2, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tier, ok := tt.p.TierForAttempt(tt.attempt)
			if ok != (tt.topic != "") || tier.Topic != tt.topic {
				t.Errorf("TierForAttempt(%d) = %+v, %v; want topic %q", tt.attempt, tier, ok, tt.topic)
			}
		})
	}
}

func TestPlanTopicsLookupString(t *testing.T) {
	p, err := strategy.NewPlan("orders", 5, strategy.ExponentialBackoff(s, 2, 3*s), strategy.Naming{}, "-validation")
	if err != nil {
		t.Fatal(err)
	}
	wantTopics := []string{"orders", "orders-retry-1000", "orders-retry-2000", "orders-retry-3000", "orders-dlt", "orders-validation-dlt"}
	if got := p.Topics(); !slices.Equal(got, wantTopics) {
		t.Errorf("Topics() = %v, want %v", got, wantTopics)
	}

	lookups := []struct {
		topic string
		role  strategy.TopicRole
		index int
	}{
		{"orders", strategy.RoleMain, -1},
		{"orders-retry-1000", strategy.RoleTier, 0},
		{"orders-retry-3000", strategy.RoleTier, 2},
		{"orders-dlt", strategy.RoleDLT, -1},
		{"orders-validation-dlt", strategy.RoleDLT, -1},
		{"orders-retry", strategy.RoleUnknown, -1},
		{"", strategy.RoleUnknown, -1},
	}
	for _, tt := range lookups {
		if role, index := p.Lookup(tt.topic); role != tt.role || index != tt.index {
			t.Errorf("Lookup(%q) = %v, %d; want %v, %d", tt.topic, role, index, tt.role, tt.index)
		}
	}

	wantString := "orders\t-\n" +
		"orders-retry-1000\t1s\n" +
		"orders-retry-2000\t2s\n" +
		"orders-retry-3000\t3s\n" +
		"orders-dlt\t-\n" +
		"orders-validation-dlt\t-\n"
	if got := p.String(); got != wantString {
		t.Errorf("String() =\n%s\nwant\n%s", got, wantString)
	}

	var zero strategy.Plan
	if got := zero.Topics(); len(got) != 0 {
		t.Errorf("zero Plan Topics() = %v", got)
	}
	if got := zero.String(); got != "" {
		t.Errorf("zero Plan String() = %q", got)
	}
	if role, index := zero.Lookup("x"); role != strategy.RoleUnknown || index != -1 {
		t.Errorf("zero Plan Lookup = %v, %d", role, index)
	}

	for role, want := range map[strategy.TopicRole]string{
		strategy.RoleUnknown: "unknown", strategy.RoleMain: "main", strategy.RoleTier: "tier", strategy.RoleDLT: "dlt", 9: "TopicRole(9)",
	} {
		if got := role.String(); got != want {
			t.Errorf("TopicRole(%d).String() = %q, want %q", int(role), got, want)
		}
	}
}

func TestPlanTopicsAreUniqueAndLegal(t *testing.T) {
	// Every valid combination yields distinct, legal names.
	backoffs := []strategy.Backoff{
		{}, strategy.FixedBackoff(2 * s), strategy.ExponentialBackoff(s, 2, 0), strategy.ExponentialBackoff(s, 2, 4*s),
		strategy.ListBackoff(s, 2*s), strategy.ListBackoff(0, s, s),
	}
	for _, b := range backoffs {
		for _, suf := range []strategy.Suffixing{strategy.SuffixByDelay, strategy.SuffixByIndex} {
			for _, same := range []strategy.SameInterval{strategy.SingleTopic, strategy.MultipleTopics} {
				for attempts := 1; attempts <= 9; attempts++ {
					n := strategy.Naming{Suffixing: suf, SameInterval: same}
					p, err := strategy.NewPlan("t", attempts, b, n, "-a")
					if b.Kind == strategy.List && len(b.Delays) > attempts-1 {
						// More delays than retries: an error, never a
						// silent truncation.
						assertErr(t, err, fmt.Sprintf("delays: has %d entries but attempts %d allows at most %d (attempts - 1)", len(b.Delays), attempts, attempts-1))
						continue
					}
					if err != nil {
						t.Fatalf("%v %v %v attempts %d: %v", b, suf, same, attempts, err)
					}
					topics := p.Topics()
					if want := 1 + len(p.Tiers) + 2; len(topics) != want {
						t.Fatalf("%v: %d topics, want %d: %v", p, len(topics), want, topics)
					}
					for i, tr := range p.Tiers {
						if role, idx := p.Lookup(tr.Topic); role != strategy.RoleTier || idx != i {
							t.Fatalf("Lookup(%s) = %v, %d", tr.Topic, role, idx)
						}
					}
					for a := 2; a <= attempts; a++ {
						tier, ok := p.TierForAttempt(a)
						if !ok {
							t.Fatalf("no tier for attempt %d of %s", a, fmt.Sprint(p))
						}
						if want := b.Schedule(attempts - 1)[a-2]; tier.Delay != want {
							t.Fatalf("attempt %d: tier delay %v, schedule says %v", a, tier.Delay, want)
						}
					}
				}
			}
		}
	}
}
