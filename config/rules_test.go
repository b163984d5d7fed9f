package config

import (
	"errors"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/kretry/kretry/retry"
	"github.com/kretry/kretry/strategy"
)

// One rule for zero: every number and duration written as 0 in a tag or a
// policy file means the default, exactly as an unset field of the Go
// structs does, so the result is the default spec.
func TestZeroMeansTheDefault(t *testing.T) {
	reg := testRegistry(t)
	n := 0
	for _, f := range fields {
		if f.kind != kInt && f.kind != kFloat && f.kind != kDuration {
			continue
		}
		if f.key == "multiplier" {
			// No default: writing it chooses exponential backoff, which
			// needs a multiplier > 1 (checked below).
			continue
		}
		n++
		zero := "0"
		if f.kind == kDuration {
			zero = "0s"
		}
		// A setting of exactly-once mode or key order needs the mode on.
		def, tagCtx, yamlCtx := DefaultSpec("orders"), "", ""
		switch {
		case strings.HasPrefix(f.path, "ExactlyOnce."):
			def.ExactlyOnce.Enabled, tagCtx, yamlCtx = true, ",exactlyOnce=true", "\n    exactlyOnce: true"
		case strings.HasPrefix(f.path, "KeyOrder."):
			def.KeyOrder.Enabled, tagCtx, yamlCtx = true, ",keyOrder=true", "\n    keyOrder: true"
		}
		t.Run(f.key, func(t *testing.T) {
			fromTag, err := resolveTag(t, reg, "topic=orders,"+f.key+"="+zero+tagCtx)
			if err != nil {
				t.Fatalf("tag %s=%s: %v", f.key, zero, err)
			}
			mustEqual(t, fromTag, def)
			fromFile, err := resolveYAML(t, reg, "listeners:\n  - topic: orders\n    "+f.key+": "+zero+yamlCtx+"\n")
			if err != nil {
				t.Fatalf("file %s: %s: %v", f.key, zero, err)
			}
			mustEqual(t, fromFile, def)
			// The Go struct with that field zero is the default too.
			base := def
			fieldAt(reflect.ValueOf(&base).Elem(), f.path).SetZero()
			if !base.Equal(def) {
				t.Errorf("Go %s zero: %+v is not the default spec", f.path, base)
			}
		})
	}
	if n < 9 {
		t.Errorf("checked only %d numeric keys", n)
	}
	_, err := resolveTag(t, reg, "topic=orders,multiplier=0")
	wantLines(t, err, tagAt.String()+": multiplier: must be > 1 for exponential backoff, got 0")
}

// The Go side (retry.Policy.Validate, which listener.New reports) and the
// loaders word every problem alike: the same key, the same rule. Only where
// a value came from differs.
func TestGoAndFilesReportProblemsAlike(t *testing.T) {
	reg := testRegistry(t)
	s := time.Second
	tests := []struct {
		name   string
		policy retry.Policy
		yaml   string // the entry's settings after topic: orders
	}{
		{"attempts", retry.Policy{Attempts: -1}, "attempts: -1"},
		{"attempts too many", retry.Policy{Attempts: 40000}, "attempts: 40000"},
		{"negative delay", retry.Policy{Backoff: strategy.FixedBackoff(-s)}, "delay: -1s"},
		{"sub-millisecond delay", retry.Policy{Backoff: strategy.FixedBackoff(1500 * time.Microsecond)}, "delay: 1500us"},
		{"multiplier", retry.Policy{Backoff: strategy.ExponentialBackoff(s, 0.5, 0)}, "multiplier: 0.5"},
		{"maxDelay below delay", retry.Policy{Backoff: strategy.ExponentialBackoff(2*s, 2, s)}, "delay: 2s\n    multiplier: 2\n    maxDelay: 1s"},
		{"multiplier with fixed", retry.Policy{Backoff: strategy.Backoff{Multiplier: 2}}, "backoff: fixed\n    multiplier: 2"},
		{"jitter", retry.Policy{Backoff: strategy.Backoff{Jitter: 2}}, "jitter: 2"},
		{"negative list entry", retry.Policy{Backoff: strategy.ListBackoff(-s)}, "delays: [-1s]"},
		{"more delays than retries", retry.Policy{Backoff: strategy.ListBackoff(s, 2*s, 3*s, 4*s, 5*s)}, "delays: [1s, 2s, 3s, 4s, 5s]"},
		{"retry suffix", retry.Policy{Naming: strategy.Naming{RetrySuffix: "-r etry"}}, "retrySuffix: -r etry"},
		{"same suffixes", retry.Policy{Naming: strategy.Naming{DLTSuffix: "-retry"}}, "dltSuffix: -retry"},
		{"timeout", retry.Policy{Timeout: -s}, "timeout: -1s"},
		{"maxErrorBytes", retry.Policy{MaxErrorBytes: 10}, "maxErrorBytes: 10"},
		{"dltHandlerAttempts", retry.Policy{DLTHandlerAttempts: -1}, "dltHandlerAttempts: -1"},
		{"dltHandlerBackoff", retry.Policy{DLTHandlerBackoff: -time.Millisecond}, "dltHandlerBackoff: -1ms"},
	}
	where := regexp.MustCompile(`^policy\.yaml:\d+:\d+: listeners\[0\]\.`)
	origin := regexp.MustCompile(` \(from [^)]*\)`)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			goErr := tt.policy.Validate()
			if goErr == nil {
				t.Fatal("Validate accepted the policy")
			}
			_, fileErr := resolveYAML(t, reg, "listeners:\n  - topic: orders\n    "+tt.yaml+"\n")
			if fileErr == nil {
				t.Fatal("the policy file loaded")
			}
			var fromFile []string
			for _, l := range errLines(fileErr) {
				fromFile = append(fromFile, origin.ReplaceAllString(where.ReplaceAllString(l, ""), ""))
			}
			if got := errLines(goErr); !slices.Equal(got, fromFile) {
				t.Errorf("Go says:\n%s\nthe file loader says:\n%s", strings.Join(got, "\n"), strings.Join(fromFile, "\n"))
			}
		})
	}

	// Several problems at once: Go reports each that the loader does (the
	// loader checks single values before the rules across fields).
	goErr := retry.Policy{Attempts: -1, Backoff: strategy.ExponentialBackoff(1500*time.Microsecond, 0.5, time.Millisecond)}.Validate()
	_, fileErr := resolveYAML(t, reg, "listeners:\n  - topic: orders\n    attempts: -1\n    delay: 1500us\n    multiplier: 0.5\n    maxDelay: 1ms\n")
	wantLines(t, goErr,
		"attempts: must be >= 1 and <= 32767, or 0 for the default, got -1",
		"delay: must be a whole number of milliseconds (topic names carry milliseconds), got 1.5ms",
		"multiplier: must be > 1 for exponential backoff, got 0.5",
		"maxDelay: must be 0s (no cap) or >= delay 1.5ms, got 1ms")
	for _, l := range errLines(fileErr) {
		if l = where.ReplaceAllString(l, ""); !slices.Contains(errLines(goErr), l) {
			t.Errorf("the loader reports %q, Go does not", l)
		}
	}
}

// delays may hold at most attempts-1 entries, whichever layer set either;
// the message says where attempts came from.
func TestDelaysBeyondAttempts(t *testing.T) {
	reg := testRegistry(t)
	_, err := resolveTag(t, reg, "topic=orders,delays=1s|2s|3s|4s|5s")
	wantLines(t, err, tagAt.String()+": delays: has 5 entries but attempts 3 (from Go options or defaults) allows at most 2 (attempts - 1)")
	_, err = resolveTag(t, reg, "topic=orders,attempts=3,delays=1s|2s|3s|4s|5s")
	wantLines(t, err, tagAt.String()+": delays: has 5 entries but attempts 3 allows at most 2 (attempts - 1)")
	_, err = resolveYAML(t, reg, "defaults:\n  attempts: 2\nlisteners:\n  - topic: orders\n    delays: [1s, 2s]\n")
	wantLines(t, err, "policy.yaml:5:13: listeners[0].delays: has 2 entries but attempts 2 (from policy.yaml:2:13) allows at most 1 (attempts - 1)")
	// A higher layer raising attempts makes the list fit.
	if _, err := resolveYAML(t, reg, "defaults:\n  delays: [1s, 2s, 3s]\nlisteners:\n  - topic: orders\n    attempts: 4\n"); err != nil {
		t.Error(err)
	}
	// Go-side values are checked too.
	base := DefaultSpec("orders")
	base.Policy.Backoff = strategy.ListBackoff(time.Second, 2*time.Second, 3*time.Second)
	_, err = Resolve(base, reg)
	wantLines(t, err, "Go options or defaults: delays: has 3 entries but attempts 3 allows at most 2 (attempts - 1)")
}

// Invalid values given in Go are reported as such, each once, by key.
func TestResolveReportsGoProblemsByKey(t *testing.T) {
	base := DefaultSpec("orders")
	base.Policy.Attempts = -1
	base.Policy.MaxErrorBytes = 10
	base.Policy.Classifier.Routes = []strategy.Route{{Suffix: "a b", Matcher: strategy.Is("x", errors.New("x"))}}
	_, err := Resolve(base, nil, mustTag(t, "topic=orders,dltHandlerAttempts=4"))
	wantLines(t, err,
		"Go options or defaults: attempts: must be >= 1 and <= 32767, or 0 for the default, got -1",
		`Go options or defaults: routes[0].suffix: may contain only [a-zA-Z0-9._-], got "a b" with " " at byte 1`,
		"Go options or defaults: maxErrorBytes: must be >= 64 and <= 2147483647, or 0 for the default, got 10")
}

// groupTopics is a setting like any other; the plan of a spec takes its
// group.
func TestGroupTopics(t *testing.T) {
	reg := testRegistry(t)
	s, err := resolveYAML(t, reg, "listeners:\n  - topic: orders\n    group: billing\n    groupTopics: true\n    attempts: 3\n    multiplier: 2\n")
	if err != nil {
		t.Fatal(err)
	}
	if !s.Policy.Naming.GroupTopics {
		t.Fatal("groupTopics not set")
	}
	plan, err := s.Plan()
	if err != nil {
		t.Fatal(err)
	}
	if got, want := plan.String(), "orders\t-\norders-billing-retry-1000\t1s\norders-billing-retry-2000\t2s\norders-billing-dlt\t-\n"; got != want {
		t.Errorf("plan:\n%s\nwant:\n%s", got, want)
	}
	// The default group names topics too.
	s, err = resolveTag(t, reg, "topic=orders,groupTopics=true")
	if err != nil {
		t.Fatal(err)
	}
	if plan, _ := s.Plan(); plan.DLT != "orders-kretry-orders-dlt" {
		t.Errorf("DLT = %q, want orders-kretry-orders-dlt", plan.DLT)
	}
	// A group that cannot be part of a topic name is an error naming it.
	_, err = resolveYAML(t, reg, "listeners:\n  - topic: orders\n    group: billing/eu\n    groupTopics: true\n")
	wantLines(t, err, `policy.yaml:3:12: listeners[0].group: cannot be part of topic names (naming.groupTopics): may contain only [a-zA-Z0-9._-], got "billing/eu" with "/" at byte 7`)
	// Without groupTopics that group is fine: it names no topic.
	if _, err := resolveYAML(t, reg, "listeners:\n  - topic: orders\n    group: billing/eu\n"); err != nil {
		t.Error(err)
	}
	// Written only when true, so that files stay readable by versions
	// before it.
	out, err := MarshalYAML(DefaultSpec("orders"))
	if err != nil || strings.Contains(string(out), "groupTopics") {
		t.Errorf("default spec marshals groupTopics: %v\n%s", err, out)
	}
	g := DefaultSpec("orders")
	g.Policy.Naming.GroupTopics = true
	for name, marshal := range map[string]func(...Spec) ([]byte, error){"yaml": MarshalYAML, "json": MarshalJSON} {
		out, err := marshal(g)
		if err != nil || !strings.Contains(string(out), "groupTopics") {
			t.Errorf("%s: groupTopics missing: %v\n%s", name, err, out)
		}
	}
}
