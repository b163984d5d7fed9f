package strategy_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/kretry/kretry/strategy"
)

// wantProblems checks that err holds exactly the problems want, in order,
// each a *strategy.SettingError.
func wantProblems(t *testing.T, err error, want ...string) {
	t.Helper()
	if err == nil {
		t.Fatalf("no error, want:\n%s", strings.Join(want, "\n"))
	}
	if got := err.Error(); got != strings.Join(want, "\n") {
		t.Fatalf("error:\n%s\nwant:\n%s", got, strings.Join(want, "\n"))
	}
	var errs []error
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		errs = j.Unwrap()
	} else {
		errs = []error{err}
	}
	for _, e := range errs {
		var se *strategy.SettingError
		if !errors.As(e, &se) || se.Key == "" {
			t.Errorf("problem %q is not a *strategy.SettingError with a key", e)
		}
	}
}

// Validate reports every problem, not only the first.
func TestValidateReportsEveryProblem(t *testing.T) {
	wantProblems(t, strategy.ExponentialBackoff(1500*time.Microsecond, 0.5, time.Millisecond).Validate(),
		"delay: must be a whole number of milliseconds (topic names carry milliseconds), got 1.5ms",
		"multiplier: must be > 1 for exponential backoff, got 0.5",
		"maxDelay: must be 0s (no cap) or >= delay 1.5ms, got 1ms")
	wantProblems(t, strategy.Backoff{Kind: strategy.List, Delay: s, Delays: []time.Duration{-s, time.Microsecond}, Multiplier: 2, Jitter: 2}.Validate(),
		"jitter: must be within [0, 1], got 2",
		"delay: applies only to fixed and exponential backoff, but backoff is list; list backoff uses delays",
		"delays[0]: must be >= 0, got -1s",
		"delays[1]: must be a whole number of milliseconds (topic names carry milliseconds), got 1µs",
		"multiplier: applies only to exponential backoff, but backoff is list")
	wantProblems(t, strategy.Naming{RetrySuffix: "a b", DLTSuffix: "c/d", Suffixing: 3}.Validate(),
		`retrySuffix: may contain only [a-zA-Z0-9._-], got "a b" with " " at byte 1`,
		`dltSuffix: may contain only [a-zA-Z0-9._-], got "c/d" with "/" at byte 1`,
		"suffixing: must be delay or index, got Suffixing(3)")
	ok := strategy.Is("timeout", errTimeout)
	wantProblems(t, strategy.Classifier{Include: []strategy.Matcher{ok}, Exclude: []strategy.Matcher{{Name: "x"}},
		Routes: []strategy.Route{{Suffix: "", Matcher: ok}, {Suffix: "-a", Matcher: ok}}}.Validate(),
		"exclude: must not be set with include; use one list",
		`exclude[0].match: must not be nil (matcher "x")`,
		"routes[0].suffix: must not be empty",
		`routes[1].matcher.name: must be unique, "timeout" is also routes[0].matcher.name`)
	// NewPlan reports them all too, with the attempts.
	_, err := strategy.NewPlan("orders", 0, strategy.ExponentialBackoff(1500*time.Microsecond, 0.5, 0), strategy.Naming{DLTSuffix: "-retry"})
	wantProblems(t, err,
		"attempts: must be >= 1 and <= 32767, got 0",
		"delay: must be a whole number of milliseconds (topic names carry milliseconds), got 1.5ms",
		"multiplier: must be > 1 for exponential backoff, got 0.5",
		`dltSuffix: retrySuffix and dltSuffix must differ, both are "-retry"`)
}

// A list backoff may not list more delays than there are retries: the rest
// would be dropped without a word.
func TestListBackoffWithMoreDelaysThanRetries(t *testing.T) {
	five := strategy.ListBackoff(s, 2*s, 3*s, 4*s, 5*s)
	const want = "delays: has 5 entries but attempts 3 allows at most 2 (attempts - 1)"
	wantProblems(t, five.ValidateFor(3), want)
	_, err := strategy.NewPlan("orders", 3, five, strategy.Naming{})
	wantProblems(t, err, want)
	for _, attempts := range []int{6, 9} {
		if err := five.ValidateFor(attempts); err != nil {
			t.Errorf("ValidateFor(%d): %v", attempts, err)
		}
		if _, err := strategy.NewPlan("orders", attempts, five, strategy.Naming{}); err != nil {
			t.Errorf("NewPlan with attempts %d: %v", attempts, err)
		}
	}
	wantProblems(t, strategy.ListBackoff(0).ValidateFor(1), "delays: has 1 entries but attempts 1 allows at most 0 (attempts - 1)")
	if err := five.Validate(); err != nil {
		t.Errorf("Validate, which knows no attempts: %v", err)
	}
	// Other kinds have no list to check.
	if err := strategy.FixedBackoff(s).ValidateFor(1); err != nil {
		t.Errorf("fixed: %v", err)
	}
}

// With GroupTopics every retry and dead-letter topic carries the group;
// without it the group plays no part.
func TestNewPlanForGroupTopics(t *testing.T) {
	b := strategy.ExponentialBackoff(s, 2, 0)
	grouped := strategy.Naming{GroupTopics: true}
	p, err := strategy.NewPlanFor("orders", "billing", 4, b, grouped, "-validation")
	if err != nil {
		t.Fatal(err)
	}
	want := "orders\t-\norders-billing-retry-1000\t1s\norders-billing-retry-2000\t2s\norders-billing-retry-4000\t4s\n" +
		"orders-billing-dlt\t-\norders-billing-validation-dlt\t-\n"
	if got := p.String(); got != want {
		t.Errorf("plan:\n%s\nwant:\n%s", got, want)
	}
	if p.Main != "orders" {
		t.Errorf("Main = %q", p.Main)
	}
	if role, _ := p.Lookup("orders-billing-dlt"); role != strategy.RoleDLT {
		t.Errorf("Lookup(orders-billing-dlt) = %v", role)
	}
	// Index suffixes and a single reusable topic take the group too.
	p, err = strategy.NewPlanFor("orders", "shipping.eu_1", 3, strategy.Backoff{}, strategy.Naming{GroupTopics: true, DLTSuffix: ".dead"})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := p.String(), "orders\t-\norders-shipping.eu_1-retry\t1s\norders-shipping.eu_1.dead\t-\n"; got != want {
		t.Errorf("plan:\n%s\nwant:\n%s", got, want)
	}

	// Without GroupTopics the names are Spring's, whatever the group.
	plain, err := strategy.NewPlan("orders", 4, b, strategy.Naming{}, "-validation")
	if err != nil {
		t.Fatal(err)
	}
	for _, group := range []string{"billing", "", "not a fragment"} {
		p, err := strategy.NewPlanFor("orders", group, 4, b, strategy.Naming{}, "-validation")
		if err != nil || p.String() != plain.String() {
			t.Errorf("group %q without GroupTopics: %v\n%s", group, err, p)
		}
	}

	// NewPlan cannot name grouped topics.
	_, err = strategy.NewPlan("orders", 4, b, grouped)
	assertErr(t, err, "strategy: naming.groupTopics needs the consumer group: use NewPlanFor")

	tests := []struct {
		name, main, group, want string
	}{
		{"empty group", "orders", "", `group: cannot be part of topic names (naming.groupTopics): must not be empty`},
		{"group with a slash", "orders", "billing/eu", `group: cannot be part of topic names (naming.groupTopics): may contain only [a-zA-Z0-9._-], got "billing/eu" with "/" at byte 7`},
		{"group with a space", "orders", "a b", `group: cannot be part of topic names (naming.groupTopics): may contain only [a-zA-Z0-9._-], got "a b" with " " at byte 1`},
		{"names too long", strings.Repeat("o", 200), strings.Repeat("g", 40),
			`retry tier 0 name must be at most 249 characters, got 252`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := strategy.NewPlanFor(tt.main, tt.group, 4, b, grouped)
			assertErr(t, err, tt.want)
			var se *strategy.SettingError
			if tt.name != "names too long" && (!errors.As(err, &se) || se.Key != "group") {
				t.Errorf("error is not a *SettingError for group: %#v", err)
			}
			if tt.name == "names too long" && !strings.Contains(err.Error(), "with naming.groupTopics the names include the consumer group") {
				t.Errorf("error does not name the group as the cause: %v", err)
			}
		})
	}
}
