package retry

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/kretry/kretry/strategy"
)

// DLTStrategy says what happens around the dead-letter topic.
type DLTStrategy int

const (
	// DLTRetryOnError (the default) publishes exhausted and non-retryable
	// records to the DLT and, when the DLT handler fails, calls it again
	// with backoff up to Policy.DLTHandlerAttempts times in all, then logs
	// and moves on. Unlike Spring Kafka's default, it never loops forever;
	// the record stays in the DLT topic either way.
	DLTRetryOnError DLTStrategy = iota
	// DLTFailOnError publishes to the DLT and calls the DLT handler once; a
	// failure is logged and the record is committed (it stays in the DLT
	// topic).
	DLTFailOnError
	// NoDLT publishes nothing: a record that is exhausted or not retryable
	// is logged and committed, and no DLT topic is created or consumed.
	NoDLT
)

var dltStrategyNames = [...]string{"retry-on-error", "fail-on-error", "none"}

// String returns "retry-on-error", "fail-on-error" or "none".
func (s DLTStrategy) String() string {
	if s < 0 || int(s) >= len(dltStrategyNames) {
		return fmt.Sprintf("DLTStrategy(%d)", int(s))
	}
	return dltStrategyNames[s]
}

// MarshalText implements encoding.TextMarshaler.
func (s DLTStrategy) MarshalText() ([]byte, error) {
	if s < 0 || int(s) >= len(dltStrategyNames) {
		return nil, fmt.Errorf("unrecognized DLT strategy: %d", int(s))
	}
	return []byte(s.String()), nil
}

// springDLTStrategyNames are Spring Kafka's DltStrategy constants, accepted
// by UnmarshalText so that Spring configuration can be reused.
var springDLTStrategyNames = [...]string{"always_retry_on_error", "fail_on_error", "no_dlt"}

// UnmarshalText implements encoding.TextUnmarshaler. It accepts the names
// String returns and Spring Kafka's "ALWAYS_RETRY_ON_ERROR",
// "FAIL_ON_ERROR" and "NO_DLT", in any letter case; empty text means the
// default, DLTRetryOnError. Anything else fails with
// `unrecognized DLT strategy: "x" (want retry-on-error, fail-on-error or none)`.
func (s *DLTStrategy) UnmarshalText(b []byte) error {
	text := string(b)
	if text == "" {
		*s = DLTRetryOnError
		return nil
	}
	for i, n := range dltStrategyNames {
		if strings.EqualFold(text, n) || strings.EqualFold(text, springDLTStrategyNames[i]) {
			*s = DLTStrategy(i)
			return nil
		}
	}
	return fmt.Errorf("unrecognized DLT strategy: %q (want retry-on-error, fail-on-error or none)", b)
}

// Policy is everything that decides what happens to a failed record: how
// many deliveries it gets, how long it waits between them, which errors are
// retried, where it goes in the end and what the topics are called. The
// zero value, after Normalize, is Spring Kafka's default: 3 attempts, fixed
// 1 s delay, one reusable "-retry" topic and a "-dlt" topic.
//
// One rule holds for every field, as for every kretry setting (Go options,
// struct tags and policy files alike): zero means unset, and unset means
// the documented default. A value that can never be valid (a negative
// count or duration, a count out of range) is an error that Validate
// reports, naming the setting. The entries of Backoff.Delays are values,
// not settings: a zero entry is a retry without wait.
//
// Policy is a plain value: options, struct tags and YAML files all build
// one, and two policies that compare equal with Equal behave identically.
type Policy struct {
	// Attempts is the total number of deliveries including the first.
	// Attempts-1 retries happen before the record goes to the DLT; 1
	// means no retry topics at all. At most strategy.MaxAttempts. Zero
	// means the default, DefaultAttempts (3).
	Attempts int
	// Backoff is the delay schedule between deliveries; a List backoff
	// has at most Attempts-1 delays. Default fixed 1 s (the zero
	// strategy.Backoff).
	Backoff strategy.Backoff
	// Naming holds the topic suffixes and naming strategies. Defaults
	// "-retry", "-dlt", suffix by delay, single topic for repeated
	// delays, topics shared by every consumer group (the zero
	// strategy.Naming).
	Naming strategy.Naming
	// Classifier decides which errors are retried and routes errors to
	// their own DLTs. Default: every error is retried except those marked
	// strategy.Permanent.
	Classifier strategy.Classifier
	// Timeout is an overall budget measured from the original record's
	// timestamp: a record failing after it has passed goes to the DLT with
	// reason "timeout". Zero means the default, no budget.
	Timeout time.Duration
	// MaxErrorBytes bounds the error text carried in headers; at least
	// MinMaxErrorBytes (64). Zero means the default, DefaultMaxErrorBytes
	// (4 KiB).
	MaxErrorBytes int
	// DLT chooses what happens around the dead-letter topic. Default
	// DLTRetryOnError.
	DLT DLTStrategy
	// DLTHandlerAttempts bounds how many times in all the DLT handler is
	// called for one record under DLTRetryOnError. Zero means the
	// default, DefaultDLTHandlerAttempts (3).
	DLTHandlerAttempts int
	// DLTHandlerBackoff is the delay between DLT handler attempts. Zero
	// means the default, DefaultDLTHandlerBackoff (1 s).
	DLTHandlerBackoff time.Duration
}

// Defaults applied by Normalize, and the bounds Validate checks.
const (
	DefaultAttempts           = 3
	DefaultDLTHandlerAttempts = 3
	DefaultDLTHandlerBackoff  = time.Second
	// MinMaxErrorBytes is the smallest MaxErrorBytes: room for an error
	// text that says something.
	MinMaxErrorBytes = 64
	// maxCount bounds MaxErrorBytes and DLTHandlerAttempts, as policy
	// files do (int32).
	maxCount = math.MaxInt32
)

// Normalize returns p with every unset (zero) field given its default.
func (p Policy) Normalize() Policy {
	if p.Attempts == 0 {
		p.Attempts = DefaultAttempts
	}
	p.Backoff = p.Backoff.Normalize()
	p.Naming = p.Naming.Normalize()
	if p.MaxErrorBytes == 0 {
		p.MaxErrorBytes = DefaultMaxErrorBytes
	}
	if p.DLTHandlerAttempts == 0 {
		p.DLTHandlerAttempts = DefaultDLTHandlerAttempts
	}
	if p.DLTHandlerBackoff == 0 {
		p.DLTHandlerBackoff = DefaultDLTHandlerBackoff
	}
	return p
}

// Validate reports every problem with p.Normalize() — unset fields are
// never errors — joined with errors.Join. Each is a
// *strategy.SettingError naming the setting as struct tags and policy
// files do, with the rule and the value, in the same words the policy
// file loader uses: "attempts: must be >= 1 and <= 32767, or 0 for the
// default, got -1". Besides each field's own rules, a List backoff may
// have at most Attempts-1 delays.
func (p Policy) Validate() error {
	p = p.Normalize()
	var errs []error
	bad := func(key, format string, args ...any) {
		errs = append(errs, &strategy.SettingError{Key: key, Err: fmt.Errorf(format, args...)})
	}
	each := func(err error) {
		if j, ok := err.(interface{ Unwrap() []error }); ok {
			errs = append(errs, j.Unwrap()...)
		} else if err != nil {
			errs = append(errs, err)
		}
	}
	attemptsOK := p.Attempts >= 1 && p.Attempts <= strategy.MaxAttempts
	if !attemptsOK {
		bad("attempts", "must be >= 1 and <= %d, or 0 for the default, got %d", strategy.MaxAttempts, p.Attempts)
	}
	if attemptsOK {
		each(p.Backoff.ValidateFor(p.Attempts))
	} else {
		each(p.Backoff.Validate())
	}
	each(p.Naming.Validate())
	each(p.Classifier.Validate())
	if p.Timeout < 0 {
		bad("timeout", "must be >= 0, got %v", p.Timeout)
	}
	if p.MaxErrorBytes < MinMaxErrorBytes || p.MaxErrorBytes > maxCount {
		bad("maxErrorBytes", "must be >= %d and <= %d, or 0 for the default, got %d", MinMaxErrorBytes, maxCount, p.MaxErrorBytes)
	}
	if p.DLT < DLTRetryOnError || p.DLT > NoDLT {
		bad("dltStrategy", "must be retry-on-error, fail-on-error or none, got %v", p.DLT)
	}
	if p.DLTHandlerAttempts < 1 || p.DLTHandlerAttempts > maxCount {
		bad("dltHandlerAttempts", "must be >= 1 and <= %d, or 0 for the default, got %d", maxCount, p.DLTHandlerAttempts)
	}
	if p.DLTHandlerBackoff < 0 {
		bad("dltHandlerBackoff", "must be >= 0, got %v", p.DLTHandlerBackoff)
	}
	return errors.Join(errs...)
}

// ErrNeedsGroup is returned by Plan for a policy whose Naming.GroupTopics
// puts the consumer group in topic names: such a plan needs PlanFor.
var ErrNeedsGroup = errors.New("retry: naming.groupTopics needs the consumer group: use PlanFor")

// Plan normalizes and validates p and returns the topic plan for main. It
// fails with ErrNeedsGroup when p.Naming.GroupTopics is set: use PlanFor.
func (p Policy) Plan(main string) (strategy.Plan, error) {
	if p.Naming.GroupTopics {
		return strategy.Plan{}, ErrNeedsGroup
	}
	return p.PlanFor(main, "")
}

// PlanFor normalizes and validates p and returns the topic plan of main as
// consumed by the consumer group group. Without p.Naming.GroupTopics the
// group plays no part and the plan is Plan's (Spring Kafka's names). With
// it, every retry and dead-letter topic carries the group:
// "<main>-<group><retrySuffix>…" and "<main>-<group><dltSuffix>"
// (orders-billing-retry-1000, orders-billing-dlt); group must then be a
// valid topic-name fragment ([a-zA-Z0-9._-]) and the names must fit
// strategy.MaxTopicLength (see strategy.NewPlanFor). A validation failure
// reports every problem, as Validate does.
func (p Policy) PlanFor(main, group string) (strategy.Plan, error) {
	p = p.Normalize()
	if err := p.Validate(); err != nil {
		return strategy.Plan{}, err
	}
	routes := make([]string, 0, len(p.Classifier.Routes))
	for _, r := range p.Classifier.Routes {
		routes = append(routes, r.Suffix)
	}
	return strategy.NewPlanFor(main, group, p.Attempts, p.Backoff, p.Naming, routes...)
}

// Equal reports whether p and o describe the same policy once normalized.
// Matchers compare by Name, as policies identify them (strategy.Matcher),
// so two policies built from the same names by different surfaces (Go
// options, struct tags, policy files) are equal; routes compare by suffix
// and matcher name, in order.
func (p Policy) Equal(o Policy) bool {
	p, o = p.Normalize(), o.Normalize()
	return p.Attempts == o.Attempts && p.Backoff.Equal(o.Backoff) && p.Naming == o.Naming &&
		matchersEqual(p.Classifier.Include, o.Classifier.Include) &&
		matchersEqual(p.Classifier.Exclude, o.Classifier.Exclude) &&
		slices.EqualFunc(p.Classifier.Routes, o.Classifier.Routes, func(a, b strategy.Route) bool {
			return a.Suffix == b.Suffix && a.Matcher.Name == b.Matcher.Name
		}) &&
		p.Timeout == o.Timeout && p.MaxErrorBytes == o.MaxErrorBytes && p.DLT == o.DLT &&
		p.DLTHandlerAttempts == o.DLTHandlerAttempts && p.DLTHandlerBackoff == o.DLTHandlerBackoff
}

func matchersEqual(a, b []strategy.Matcher) bool {
	return slices.EqualFunc(a, b, func(x, y strategy.Matcher) bool { return x.Name == y.Name })
}
