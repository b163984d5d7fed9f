package retry

import (
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/kretry/kretry/strategy"
)

// Equal compares every field of Policy: changing any leaf field (found by
// reflection, so a new field is covered) makes two policies unequal.
func TestPolicyEqualComparesEveryField(t *testing.T) {
	base := Policy{}.Normalize()
	if !base.Equal(Policy{}) {
		t.Fatal("a normalized zero Policy does not equal the zero Policy")
	}
	var visit func(v reflect.Value, path string)
	n := 0
	visit = func(v reflect.Value, path string) {
		for i := range v.NumField() {
			f, name := v.Field(i), path+v.Type().Field(i).Name
			if !v.Type().Field(i).IsExported() {
				continue
			}
			if f.Kind() == reflect.Struct {
				visit(f, name+".")
				continue
			}
			changed := base
			target := reflect.ValueOf(&changed).Elem()
			for _, part := range splitPath(name) {
				target = target.FieldByName(part)
			}
			switch target.Kind() {
			case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
				target.SetInt(target.Int() + 1)
			case reflect.Float32, reflect.Float64:
				target.SetFloat(target.Float() + 0.5)
			case reflect.String:
				target.SetString(target.String() + "x")
			case reflect.Bool:
				target.SetBool(!target.Bool())
			case reflect.Slice:
				target.Set(reflect.Append(target, reflect.Zero(target.Type().Elem())))
			default:
				t.Errorf("%s: no way to change a %s; extend this test", name, target.Kind())
				continue
			}
			n++
			if base.Equal(changed) || changed.Equal(base) {
				t.Errorf("Policy.Equal ignores %s", name)
			}
		}
	}
	visit(reflect.ValueOf(base), "")
	if n < 15 {
		t.Errorf("visited only %d fields", n)
	}
}

func splitPath(p string) []string {
	var out []string
	start := 0
	for i := 0; i < len(p); i++ {
		if p[i] == '.' {
			out = append(out, p[start:i])
			start = i + 1
		}
	}
	return append(out, p[start:])
}

// Matchers compare by name: the same names built by different code are
// equal policies.
func TestPolicyEqualMatchersByName(t *testing.T) {
	a := Policy{Classifier: strategy.Classifier{Exclude: []strategy.Matcher{strategy.Is("x", nil)}}}
	b := Policy{Classifier: strategy.Classifier{Exclude: []strategy.Matcher{{Name: "x", Match: func(error) bool { return true }}}}}
	if !a.Equal(b) {
		t.Error("policies with the same matcher names differ")
	}
}

func TestDLTStrategyUnmarshalText(t *testing.T) {
	for text, want := range map[string]DLTStrategy{
		"": DLTRetryOnError, "retry-on-error": DLTRetryOnError, "FAIL-ON-ERROR": DLTFailOnError, "none": NoDLT,
		"ALWAYS_RETRY_ON_ERROR": DLTRetryOnError, "fail_on_error": DLTFailOnError, "NO_DLT": NoDLT,
	} {
		var s DLTStrategy
		if err := s.UnmarshalText([]byte(text)); err != nil || s != want {
			t.Errorf("UnmarshalText(%q) = %v, %v; want %v", text, s, err, want)
		}
	}
	var s DLTStrategy
	if err := s.UnmarshalText([]byte("loop")); err == nil || err.Error() != `unrecognized DLT strategy: "loop" (want retry-on-error, fail-on-error or none)` {
		t.Errorf("UnmarshalText(loop): %v", err)
	}
}

// One rule for zero: every zero field is its documented default, so the
// policy with every field zero is the default policy and is valid.
func TestPolicyZeroIsTheDefault(t *testing.T) {
	zero := Policy{}
	if err := zero.Validate(); err != nil {
		t.Fatalf("zero Policy: %v", err)
	}
	n := zero.Normalize()
	if n.Attempts != DefaultAttempts || n.MaxErrorBytes != DefaultMaxErrorBytes || n.DLTHandlerAttempts != DefaultDLTHandlerAttempts ||
		n.DLTHandlerBackoff != DefaultDLTHandlerBackoff || n.Timeout != 0 || !n.Backoff.Equal(strategy.FixedBackoff(time.Second)) ||
		n.Naming.RetrySuffix != "-retry" || n.Naming.DLTSuffix != "-dlt" {
		t.Errorf("Policy{}.Normalize() = %+v", n)
	}
	// Validate judges the normalized policy, as the options do: a zero
	// field is never an error, whatever its rule for set values.
	for name, p := range map[string]Policy{
		"dltHandlerBackoff": {DLTHandlerBackoff: 0}, "maxErrorBytes": {MaxErrorBytes: 0},
		"dltHandlerAttempts": {DLTHandlerAttempts: 0}, "attempts": {Attempts: 0},
	} {
		if err := p.Validate(); err != nil {
			t.Errorf("%s 0: %v", name, err)
		}
	}
}

// Validate reports every problem, once each, in the words the policy file
// loader uses, each a *strategy.SettingError.
func TestPolicyValidateReportsEveryProblem(t *testing.T) {
	p := Policy{
		Attempts:           -1,
		Backoff:            strategy.ExponentialBackoff(1500*time.Microsecond, 0.5, time.Millisecond),
		Naming:             strategy.Naming{RetrySuffix: "-x", DLTSuffix: "-x"},
		Timeout:            -time.Second,
		MaxErrorBytes:      10,
		DLT:                DLTStrategy(7),
		DLTHandlerAttempts: -2,
		DLTHandlerBackoff:  -time.Second,
	}
	want := []string{
		"attempts: must be >= 1 and <= 32767, or 0 for the default, got -1",
		"delay: must be a whole number of milliseconds (topic names carry milliseconds), got 1.5ms",
		"multiplier: must be > 1 for exponential backoff, got 0.5",
		"maxDelay: must be 0s (no cap) or >= delay 1.5ms, got 1ms",
		`dltSuffix: retrySuffix and dltSuffix must differ, both are "-x"`,
		"timeout: must be >= 0, got -1s",
		"maxErrorBytes: must be >= 64 and <= 2147483647, or 0 for the default, got 10",
		"dltStrategy: must be retry-on-error, fail-on-error or none, got DLTStrategy(7)",
		"dltHandlerAttempts: must be >= 1 and <= 2147483647, or 0 for the default, got -2",
		"dltHandlerBackoff: must be >= 0, got -1s",
	}
	err := p.Validate()
	if err == nil || err.Error() != strings.Join(want, "\n") {
		t.Fatalf("Validate:\n%v\nwant:\n%s", err, strings.Join(want, "\n"))
	}
	for _, e := range err.(interface{ Unwrap() []error }).Unwrap() {
		var se *strategy.SettingError
		if !errors.As(e, &se) {
			t.Errorf("%q is not a *strategy.SettingError", e)
		}
	}
	if _, perr := p.Plan("orders"); perr == nil || perr.Error() != err.Error() {
		t.Errorf("Plan reports other problems than Validate: %v", perr)
	}
}

// A list backoff has at most attempts-1 delays; attempts is normalized
// first, so the default 3 allows two.
func TestPolicyDelaysBeyondAttempts(t *testing.T) {
	three := strategy.ListBackoff(time.Second, 2*time.Second, 3*time.Second)
	err := Policy{Backoff: three}.Validate()
	if err == nil || err.Error() != "delays: has 3 entries but attempts 3 allows at most 2 (attempts - 1)" {
		t.Errorf("default attempts: %v", err)
	}
	if err := (Policy{Attempts: 4, Backoff: three}).Validate(); err != nil {
		t.Errorf("attempts 4: %v", err)
	}
	// With attempts itself invalid, only attempts is reported.
	err = Policy{Attempts: -1, Backoff: three}.Validate()
	if err == nil || err.Error() != "attempts: must be >= 1 and <= 32767, or 0 for the default, got -1" {
		t.Errorf("invalid attempts: %v", err)
	}
}

// Plan keeps Spring's names; with GroupTopics it needs the group, which
// PlanFor takes.
func TestPolicyPlanFor(t *testing.T) {
	p := Policy{Attempts: 3, Backoff: strategy.ExponentialBackoff(time.Second, 2, 0)}
	plain, err := p.Plan("orders")
	if err != nil {
		t.Fatal(err)
	}
	forGroup, err := p.PlanFor("orders", "billing")
	if err != nil || forGroup.String() != plain.String() {
		t.Errorf("PlanFor without GroupTopics differs from Plan: %v\n%s\n%s", err, forGroup, plain)
	}
	if got, want := plain.String(), "orders\t-\norders-retry-1000\t1s\norders-retry-2000\t2s\norders-dlt\t-\n"; got != want {
		t.Errorf("Plan:\n%s\nwant:\n%s", got, want)
	}

	p.Naming.GroupTopics = true
	p.Classifier.Routes = []strategy.Route{{Suffix: "-validation", Matcher: strategy.Is("validation", errors.New("v"))}}
	if _, err := p.Plan("orders"); !errors.Is(err, ErrNeedsGroup) || err.Error() != "retry: naming.groupTopics needs the consumer group: use PlanFor" {
		t.Errorf("Plan with GroupTopics: %v", err)
	}
	grouped, err := p.PlanFor("orders", "billing")
	if err != nil {
		t.Fatal(err)
	}
	want := "orders\t-\norders-billing-retry-1000\t1s\norders-billing-retry-2000\t2s\norders-billing-dlt\t-\norders-billing-validation-dlt\t-\n"
	if got := grouped.String(); got != want {
		t.Errorf("PlanFor with GroupTopics:\n%s\nwant:\n%s", got, want)
	}
	if _, err := p.PlanFor("orders", "billing service"); err == nil ||
		err.Error() != `group: cannot be part of topic names (naming.groupTopics): may contain only [a-zA-Z0-9._-], got "billing service" with " " at byte 7` {
		t.Errorf("PlanFor with an illegal group: %v", err)
	}
}
