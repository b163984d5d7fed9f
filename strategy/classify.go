package strategy

import (
	"errors"
	"fmt"
	"reflect"
	"time"
)

// Matcher recognises a class of errors. Name identifies it in
// configuration, logs and Decision.Reason; policies compare matchers by
// Name, so it must be non-empty and unique within a list. Match is called
// with the handler's error, never nil, and should look through the whole
// wrap chain (errors.Is and errors.As do).
type Matcher struct {
	// Name identifies the matcher. No default; required.
	Name string
	// Match reports whether err belongs to the class. No default; required.
	Match func(error) bool
}

// Is returns a Matcher named name that matches errors for which
// errors.Is(err, target) holds, anywhere in the chain, errors.Join included.
func Is(name string, target error) Matcher {
	return Matcher{Name: name, Match: func(err error) bool { return errors.Is(err, target) }}
}

// As returns a Matcher named name that matches errors for which
// errors.As(err, new(T)) holds: an error of type T (or one whose As method
// accepts *T) anywhere in the chain, errors.Join included.
func As[T error](name string) Matcher {
	return Matcher{Name: name, Match: func(err error) bool {
		_, ok := errors.AsType[T](err)
		return ok
	}}
}

// permanentError marks its cause as not retryable.
type permanentError struct{ err error }

func (e *permanentError) Error() string { return e.err.Error() }
func (e *permanentError) Unwrap() error { return e.err }

// Permanent marks err as not retryable: a record whose handler returns it
// goes straight to a dead-letter topic, whatever the Classifier's lists say.
// The result has err's message and unwraps to err, so errors.Is and
// errors.As still see the cause. Permanent(nil) is nil.
func Permanent(err error) error {
	if err == nil {
		return nil
	}
	return &permanentError{err: err}
}

// IsPermanent reports whether err, or any error in its chain (errors.Join
// included), was marked by Permanent.
func IsPermanent(err error) bool {
	_, ok := errors.AsType[*permanentError](err)
	return ok
}

// retryAfterError carries the delay a handler asked for.
type retryAfterError struct {
	err   error
	delay time.Duration
}

func (e *retryAfterError) Error() string { return e.err.Error() }
func (e *retryAfterError) Unwrap() error { return e.err }

// RetryAfter asks for the next retry of the record to wait d instead of the
// tier's nominal delay, for example because a downstream service said to
// come back in 30 seconds. It does not make err retryable: Classify still
// decides that. A negative d counts as 0. The result has err's message and
// unwraps to err. RetryAfter(nil, d) is nil.
func RetryAfter(err error, d time.Duration) error {
	if err == nil {
		return nil
	}
	return &retryAfterError{err: err, delay: max(d, 0)}
}

// RequestedDelay returns the delay of the first RetryAfter found in err's
// chain, in errors.As order (depth first, joined errors left to right), and
// whether there was one.
func RequestedDelay(err error) (time.Duration, bool) {
	if e, ok := errors.AsType[*retryAfterError](err); ok {
		return e.delay, true
	}
	return 0, false
}

// Route sends matching errors to their own dead-letter topic,
// <main><Suffix><DLTSuffix>, such as "orders-validation-dlt" for Suffix
// "-validation".
type Route struct {
	// Suffix goes between the main topic and the DLT suffix. No default;
	// required, [a-zA-Z0-9._-] only.
	Suffix string
	// Matcher selects the errors. No default; required.
	Matcher Matcher
}

// Classifier decides whether a failed record is retried, and which
// dead-letter topic it goes to when it is not or when its attempts run out.
// The zero value retries every error except those marked Permanent and
// dead-letters to the default topic, like Spring Kafka's default.
type Classifier struct {
	// Include, when non-empty, limits retries to errors matching one of its
	// matchers (an allow-list). Default empty: every error is retried.
	Include []Matcher
	// Exclude lists errors that are never retried (a deny-list); they go
	// straight to a dead-letter topic. Default empty.
	Exclude []Matcher
	// Routes pick the dead-letter topic: the first matching route wins and
	// an error matching none goes to the default one. Default empty.
	Routes []Route
}

// Validate reports every problem with c, joined with errors.Join; each is
// a *SettingError naming the setting as policy files do ("exclude",
// "include[1].name", "routes[0].suffix"). The rules: not both Include and
// Exclude (Spring Kafka rejects that combination too); every matcher has a
// Name and a Match, and a Name at most once in each list; every route has
// a Suffix of [a-zA-Z0-9._-], each Suffix at most once.
func (c Classifier) Validate() error {
	var ps problems
	c.validate(&ps)
	return ps.join()
}

func (c Classifier) validate(ps *problems) {
	if len(c.Include) > 0 && len(c.Exclude) > 0 {
		ps.add("exclude", "must not be set with include; use one list")
	}
	checkMatchers(ps, "include", c.Include)
	checkMatchers(ps, "exclude", c.Exclude)
	suffixes := make(map[string]int, len(c.Routes))
	names := make(map[string]int, len(c.Routes))
	for i, r := range c.Routes {
		key := fmt.Sprintf("routes[%d]", i)
		if fragmentProblem(ps, key+".suffix", r.Suffix) {
			if j, dup := suffixes[r.Suffix]; dup {
				ps.add(key+".suffix", "must be unique, %q is also routes[%d].suffix", r.Suffix, j)
			} else {
				suffixes[r.Suffix] = i
			}
		}
		if checkMatcher(ps, key+".matcher", r.Matcher) {
			if j, dup := names[r.Matcher.Name]; dup {
				ps.add(key+".matcher.name", "must be unique, %q is also routes[%d].matcher.name", r.Matcher.Name, j)
			} else {
				names[r.Matcher.Name] = i
			}
		}
	}
}

func checkMatchers(ps *problems, list string, ms []Matcher) {
	names := make(map[string]int, len(ms))
	for i, m := range ms {
		key := fmt.Sprintf("%s[%d]", list, i)
		if !checkMatcher(ps, key, m) {
			continue
		}
		if j, dup := names[m.Name]; dup {
			ps.add(key+".name", "must be unique, %q is also %s[%d].name", m.Name, list, j)
			continue
		}
		names[m.Name] = i
	}
}

// checkMatcher adds m's problems and reports whether it has none.
func checkMatcher(ps *problems, key string, m Matcher) bool {
	ok := true
	if m.Name == "" {
		ps.add(key+".name", "must not be empty")
		ok = false
	}
	if m.Match == nil {
		ps.add(key+".match", "must not be nil (matcher %q)", m.Name)
		ok = false
	}
	return ok
}

// Verdict is what should happen to a failed record. The zero value is
// VerdictRetry.
type Verdict int

const (
	// VerdictRetry sends the record to its next retry tier, or to a
	// dead-letter topic when its attempts have run out.
	VerdictRetry Verdict = iota
	// VerdictDeadLetter sends the record to a dead-letter topic now.
	VerdictDeadLetter
)

// String returns "retry" or "dead-letter", and "Verdict(N)" for any other
// value.
func (v Verdict) String() string {
	switch v {
	case VerdictRetry:
		return "retry"
	case VerdictDeadLetter:
		return "dead-letter"
	}
	return fmt.Sprintf("Verdict(%d)", int(v))
}

// Reasons Classify gives, for logs and headers. An excluded error's reason
// is ReasonExcluded followed by the matcher's Name.
const (
	ReasonRetryable   = "retryable"
	ReasonNil         = "nil"
	ReasonPermanent   = "permanent"
	ReasonExcluded    = "excluded:"
	ReasonNotIncluded = "not-included"
)

// Decision is the outcome of Classify.
type Decision struct {
	// Verdict says whether the record is retried.
	Verdict Verdict
	// Reason is short and machine-friendly: "retryable", "nil",
	// "permanent", "excluded:<matcher name>" or "not-included".
	Reason string
	// Route is the suffix of the first matching Route, for whichever
	// dead-letter topic the record reaches, now or once its attempts run
	// out; "" means the default dead-letter topic.
	Route string
	// Delay is the delay the handler asked for with RetryAfter; meaningful
	// only when HasDelay.
	Delay time.Duration
	// HasDelay is true when Verdict is VerdictRetry and the error carries
	// a RetryAfter request.
	HasDelay bool
}

// Classify decides what happens to a record whose handler returned err.
// Precedence, first match wins:
//
//  1. an error marked Permanent anywhere in its chain: dead-letter, "permanent";
//  2. an error matching an Exclude matcher: dead-letter, "excluded:<name>";
//  3. with a non-empty Include, an error matching none of it: dead-letter,
//     "not-included";
//  4. anything else: retry, "retryable", with the RetryAfter delay if any.
//
// Route is computed for every error, retried or not. Matchers see the error
// as returned, so errors.Is and errors.As look through fmt.Errorf %w chains
// and errors.Join. A nil err (the handler succeeded; there is nothing to
// classify) yields VerdictRetry with Reason "nil". Matchers with a nil Match
// are skipped, so Classify never panics on its own; call Validate to reject
// them up front.
func (c Classifier) Classify(err error) Decision {
	if err == nil {
		return Decision{Verdict: VerdictRetry, Reason: ReasonNil}
	}
	d := Decision{Verdict: VerdictDeadLetter}
	for _, r := range c.Routes {
		if matches(r.Matcher, err) {
			d.Route = r.Suffix
			break
		}
	}
	if IsPermanent(err) {
		d.Reason = ReasonPermanent
		return d
	}
	for _, m := range c.Exclude {
		if matches(m, err) {
			d.Reason = ReasonExcluded + m.Name
			return d
		}
	}
	if len(c.Include) > 0 {
		included := false
		for _, m := range c.Include {
			if matches(m, err) {
				included = true
				break
			}
		}
		if !included {
			d.Reason = ReasonNotIncluded
			return d
		}
	}
	d.Verdict, d.Reason = VerdictRetry, ReasonRetryable
	d.Delay, d.HasDelay = RequestedDelay(err)
	return d
}

func matches(m Matcher, err error) bool {
	return m.Match != nil && m.Match(err)
}

// ErrorType returns a stable short name for err's type, for headers and
// logs, as formatted by %T (for example "*fs.PathError"), or "" for nil.
//
// The rule: wrappers that add only context are looked through, and the
// first error that is not such a wrapper names the type. The wrappers looked
// through are those made by Permanent and RetryAfter, by fmt.Errorf with %w
// (with several %w, the first), and by errors.Join (its first error). Every
// other error stops the search, even if it has an Unwrap method, because its
// type says something itself: a *fs.PathError wrapping syscall.ENOENT is
// reported as "*fs.PathError".
func ErrorType(err error) string {
	if err == nil {
		return ""
	}
	// The bound guards against a pathological Unwrap cycle.
	for range 100 {
		next := lookThrough(err)
		if next == nil {
			break
		}
		err = next
	}
	return typeName(err)
}

// typeName is fmt's %T of a non-nil err, without fmt's formatting
// machinery and without allocating: it runs once per failed delivery.
func typeName(err error) string { return reflect.TypeOf(err).String() }

// lookThrough returns the error a context-only wrapper holds, or nil when
// err is not such a wrapper.
func lookThrough(err error) error {
	switch e := err.(type) {
	case *permanentError:
		return e.err
	case *retryAfterError:
		return e.err
	}
	switch typeName(err) {
	case "*fmt.wrapError":
		return errors.Unwrap(err)
	case "*fmt.wrapErrors", "*errors.joinError":
		if u, ok := err.(interface{ Unwrap() []error }); ok {
			for _, e := range u.Unwrap() {
				if e != nil {
					return e
				}
			}
		}
	}
	return nil
}
