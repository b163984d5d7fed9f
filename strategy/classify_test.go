package strategy_test

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/kretry/kretry/strategy"
)

var (
	errTimeout   = errors.New("timeout")
	errBadInput  = errors.New("bad input")
	errForbidden = errors.New("forbidden")
)

type validationError struct{ field string }

func (e *validationError) Error() string { return "invalid " + e.field }

type codeError int

func (e codeError) Error() string { return fmt.Sprintf("code %d", int(e)) }

func TestPermanent(t *testing.T) {
	if strategy.Permanent(nil) != nil {
		t.Error("Permanent(nil) != nil")
	}
	if strategy.IsPermanent(nil) {
		t.Error("IsPermanent(nil)")
	}
	base := &validationError{"name"}
	p := strategy.Permanent(base)
	if p.Error() != base.Error() {
		t.Errorf("message %q, want the cause's %q", p, base)
	}
	if !errors.Is(p, base) || errors.Unwrap(p) != base {
		t.Error("Permanent does not unwrap to its cause")
	}
	if _, ok := errors.AsType[*validationError](p); !ok {
		t.Error("errors.As does not see the cause")
	}
	tests := []struct {
		name string
		err  error
		want bool
	}{
		{"plain", errTimeout, false},
		{"direct", p, true},
		{"wrapped by fmt", fmt.Errorf("handler: %w", p), true},
		{"twice wrapped", fmt.Errorf("a: %w", fmt.Errorf("b: %w", p)), true},
		{"in join", errors.Join(errTimeout, p), true},
		{"in nested join", errors.Join(errTimeout, fmt.Errorf("x: %w", errors.Join(io.EOF, p))), true},
		{"in multi-%w", fmt.Errorf("%w and %w", errTimeout, p), true},
		{"under RetryAfter", strategy.RetryAfter(p, s), true},
		{"message only (no %w)", fmt.Errorf("handler: %v", p), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := strategy.IsPermanent(tt.err); got != tt.want {
				t.Errorf("IsPermanent(%v) = %v, want %v", tt.err, got, tt.want)
			}
		})
	}
}

func TestRetryAfter(t *testing.T) {
	if strategy.RetryAfter(nil, s) != nil {
		t.Error("RetryAfter(nil) != nil")
	}
	ra := strategy.RetryAfter(errTimeout, 30*s)
	if ra.Error() != "timeout" || !errors.Is(ra, errTimeout) {
		t.Errorf("RetryAfter is not transparent: %q", ra)
	}
	tests := []struct {
		name string
		err  error
		want time.Duration
		ok   bool
	}{
		{"nil", nil, 0, false},
		{"none", errTimeout, 0, false},
		{"direct", ra, 30 * s, true},
		{"zero", strategy.RetryAfter(errTimeout, 0), 0, true},
		{"negative counts as zero", strategy.RetryAfter(errTimeout, -s), 0, true},
		{"wrapped", fmt.Errorf("call: %w", ra), 30 * s, true},
		{"outermost wins", strategy.RetryAfter(fmt.Errorf("x: %w", strategy.RetryAfter(errTimeout, s)), 2*s), 2 * s, true},
		{"join: first wins", errors.Join(io.EOF, strategy.RetryAfter(errTimeout, s), strategy.RetryAfter(errTimeout, 2*s)), s, true},
		{"under Permanent", strategy.Permanent(ra), 30 * s, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, ok := strategy.RequestedDelay(tt.err)
			if d != tt.want || ok != tt.ok {
				t.Errorf("RequestedDelay = %v, %v; want %v, %v", d, ok, tt.want, tt.ok)
			}
		})
	}
}

func TestMatchers(t *testing.T) {
	isTimeout := strategy.Is("timeout", errTimeout)
	asValidation := strategy.As[*validationError]("validation")
	asCode := strategy.As[codeError]("code")
	tests := []struct {
		name string
		m    strategy.Matcher
		err  error
		want bool
	}{
		{"is direct", isTimeout, errTimeout, true},
		{"is wrapped", isTimeout, fmt.Errorf("a: %w", fmt.Errorf("b: %w", errTimeout)), true},
		{"is in join", isTimeout, errors.Join(io.EOF, errTimeout), true},
		{"is under Permanent", isTimeout, strategy.Permanent(errTimeout), true},
		{"is other", isTimeout, io.EOF, false},
		{"is same text, other value", isTimeout, errors.New("timeout"), false},
		{"as pointer direct", asValidation, &validationError{"x"}, true},
		{"as pointer wrapped", asValidation, fmt.Errorf("a: %w", &validationError{"x"}), true},
		{"as pointer in join", asValidation, errors.Join(io.EOF, fmt.Errorf("a: %w", &validationError{"x"})), true},
		{"as pointer other", asValidation, io.EOF, false},
		{"as value type", asCode, fmt.Errorf("a: %w", codeError(3)), true},
		{"as value type other", asCode, errTimeout, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.m.Match(tt.err); got != tt.want {
				t.Errorf("%s.Match(%v) = %v, want %v", tt.m.Name, tt.err, got, tt.want)
			}
		})
	}
	if isTimeout.Name != "timeout" || asValidation.Name != "validation" {
		t.Error("matcher names not kept")
	}
}

func TestClassifierClassify(t *testing.T) {
	exclude := strategy.Classifier{
		Exclude: []strategy.Matcher{strategy.Is("bad-input", errBadInput), strategy.As[*validationError]("validation")},
	}
	include := strategy.Classifier{
		Include: []strategy.Matcher{strategy.Is("timeout", errTimeout), strategy.As[codeError]("code")},
	}
	routed := strategy.Classifier{
		Exclude: []strategy.Matcher{strategy.Is("bad-input", errBadInput)},
		Routes: []strategy.Route{
			{Suffix: "-validation", Matcher: strategy.As[*validationError]("validation")},
			{Suffix: "-auth", Matcher: strategy.Is("forbidden", errForbidden)},
			{Suffix: "-any-bad", Matcher: strategy.Is("bad-input", errBadInput)},
		},
	}
	// Both lists set is invalid, but Classify still answers deterministically.
	both := strategy.Classifier{
		Include: []strategy.Matcher{strategy.Is("timeout", errTimeout)},
		Exclude: []strategy.Matcher{strategy.Is("timeout", errTimeout)},
	}
	nilMatch := strategy.Classifier{
		Include: []strategy.Matcher{{Name: "broken"}, strategy.Is("timeout", errTimeout)},
		Exclude: []strategy.Matcher{{Name: "broken"}},
		Routes:  []strategy.Route{{Suffix: "-x", Matcher: strategy.Matcher{Name: "broken"}}},
	}

	retry := func(reason string) strategy.Decision {
		return strategy.Decision{Verdict: strategy.VerdictRetry, Reason: reason}
	}
	dead := func(reason, route string) strategy.Decision {
		return strategy.Decision{Verdict: strategy.VerdictDeadLetter, Reason: reason, Route: route}
	}
	tests := []struct {
		name string
		c    strategy.Classifier
		err  error
		want strategy.Decision
	}{
		{"zero: nil", strategy.Classifier{}, nil, retry("nil")},
		{"zero: plain error retried", strategy.Classifier{}, errTimeout, retry("retryable")},
		{"zero: permanent", strategy.Classifier{}, strategy.Permanent(errTimeout), dead("permanent", "")},
		{"zero: permanent in join", strategy.Classifier{}, errors.Join(errTimeout, strategy.Permanent(io.EOF)), dead("permanent", "")},
		{"zero: permanent wrapped", strategy.Classifier{}, fmt.Errorf("h: %w", strategy.Permanent(io.EOF)), dead("permanent", "")},
		{"zero: retry after", strategy.Classifier{}, fmt.Errorf("h: %w", strategy.RetryAfter(errTimeout, 30*s)),
			strategy.Decision{Verdict: strategy.VerdictRetry, Reason: "retryable", Delay: 30 * s, HasDelay: true}},
		{"zero: permanent beats retry after", strategy.Classifier{}, strategy.RetryAfter(strategy.Permanent(errTimeout), s), dead("permanent", "")},

		{"exclude: match", exclude, errBadInput, dead("excluded:bad-input", "")},
		{"exclude: wrapped match", exclude, fmt.Errorf("parse: %w", errBadInput), dead("excluded:bad-input", "")},
		{"exclude: match by type in join", exclude, errors.Join(io.EOF, &validationError{"x"}), dead("excluded:validation", "")},
		{"exclude: first matching name", exclude, errors.Join(&validationError{"x"}, errBadInput), dead("excluded:bad-input", "")},
		{"exclude: other retried", exclude, errTimeout, retry("retryable")},
		{"exclude: permanent first", exclude, strategy.Permanent(errBadInput), dead("permanent", "")},
		{"exclude: retry after does not override", exclude, strategy.RetryAfter(errBadInput, s), dead("excluded:bad-input", "")},

		{"include: match", include, errTimeout, retry("retryable")},
		{"include: match through chain", include, fmt.Errorf("a: %w", fmt.Errorf("b: %w", codeError(503))), retry("retryable")},
		{"include: match in join", include, errors.Join(io.EOF, errTimeout), retry("retryable")},
		{"include: no match", include, io.EOF, dead("not-included", "")},
		{"include: permanent beats include", include, strategy.Permanent(errTimeout), dead("permanent", "")},
		{"include: retry after kept", include, strategy.RetryAfter(errTimeout, 5*s),
			strategy.Decision{Verdict: strategy.VerdictRetry, Reason: "retryable", Delay: 5 * s, HasDelay: true}},
		{"include: retry after not included", include, strategy.RetryAfter(io.EOF, 5*s), dead("not-included", "")},

		{"both: exclude wins", both, errTimeout, dead("excluded:timeout", "")},

		{"route: excluded error gets its route", routed, errBadInput, dead("excluded:bad-input", "-any-bad")},
		{"route: retried error still carries route", routed, fmt.Errorf("x: %w", &validationError{"x"}),
			strategy.Decision{Verdict: strategy.VerdictRetry, Reason: "retryable", Route: "-validation"}},
		{"route: first matching route wins", routed, errors.Join(errForbidden, &validationError{"x"}),
			strategy.Decision{Verdict: strategy.VerdictRetry, Reason: "retryable", Route: "-validation"}},
		{"route: permanent routed", routed, strategy.Permanent(fmt.Errorf("auth: %w", errForbidden)), dead("permanent", "-auth")},
		{"route: none matches", routed, errTimeout, retry("retryable")},

		{"nil Match skipped: include", nilMatch, errTimeout, retry("retryable")},
		{"nil Match skipped: not included", nilMatch, io.EOF, dead("not-included", "")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.c.Classify(tt.err); got != tt.want {
				t.Errorf("Classify(%v) = %+v, want %+v", tt.err, got, tt.want)
			}
		})
	}
}

func TestClassifierValidate(t *testing.T) {
	ok := strategy.Is("timeout", errTimeout)
	tests := []struct {
		name string
		c    strategy.Classifier
		want string
	}{
		{"zero", strategy.Classifier{}, ""},
		{"include only", strategy.Classifier{Include: []strategy.Matcher{ok}}, ""},
		{"exclude and routes", strategy.Classifier{
			Exclude: []strategy.Matcher{ok},
			Routes:  []strategy.Route{{Suffix: "-a", Matcher: ok}, {Suffix: "-b", Matcher: strategy.Is("eof", io.EOF)}},
		}, ""},
		{"both lists", strategy.Classifier{Include: []strategy.Matcher{ok}, Exclude: []strategy.Matcher{ok}},
			"exclude: must not be set with include; use one list"},
		{"unnamed include", strategy.Classifier{Include: []strategy.Matcher{ok, {Match: ok.Match}}},
			"include[1].name: must not be empty"},
		{"nil match exclude", strategy.Classifier{Exclude: []strategy.Matcher{{Name: "x"}}},
			`exclude[0].match: must not be nil (matcher "x")`},
		{"duplicate names", strategy.Classifier{Exclude: []strategy.Matcher{ok, strategy.Is("timeout", io.EOF)}},
			`exclude[1].name: must be unique, "timeout" is also exclude[0].name`},
		{"empty route suffix", strategy.Classifier{Routes: []strategy.Route{{Matcher: ok}}},
			"routes[0].suffix: must not be empty"},
		{"illegal route suffix", strategy.Classifier{Routes: []strategy.Route{{Suffix: "-a/b", Matcher: ok}}},
			"routes[0].suffix: may contain only [a-zA-Z0-9._-]"},
		{"duplicate route suffix", strategy.Classifier{Routes: []strategy.Route{{Suffix: "-a", Matcher: ok}, {Suffix: "-a", Matcher: strategy.Is("eof", io.EOF)}}},
			`routes[1].suffix: must be unique, "-a" is also routes[0].suffix`},
		{"route matcher unnamed", strategy.Classifier{Routes: []strategy.Route{{Suffix: "-a", Matcher: strategy.Matcher{Match: ok.Match}}}},
			"routes[0].matcher.name: must not be empty"},
		{"route matcher nil", strategy.Classifier{Routes: []strategy.Route{{Suffix: "-a", Matcher: strategy.Matcher{Name: "n"}}}},
			"routes[0].matcher.match: must not be nil"},
		{"route matcher names repeat", strategy.Classifier{Routes: []strategy.Route{{Suffix: "-a", Matcher: ok}, {Suffix: "-b", Matcher: ok}}},
			`routes[1].matcher.name: must be unique, "timeout" is also routes[0].matcher.name`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assertErr(t, tt.c.Validate(), tt.want)
		})
	}
}

func TestErrorType(t *testing.T) {
	pathErr := &fs.PathError{Op: "open", Path: "/x", Err: syscall.ENOENT}
	tests := []struct {
		name string
		err  error
		want string
	}{
		{"nil", nil, ""},
		{"errors.New", errTimeout, "*errors.errorString"},
		{"fmt.Errorf without %w", fmt.Errorf("x %d", 1), "*errors.errorString"},
		{"informative wrapper stops", pathErr, "*fs.PathError"},
		{"%w looked through", fmt.Errorf("load: %w", pathErr), "*fs.PathError"},
		{"nested %w", fmt.Errorf("a: %w", fmt.Errorf("b: %w", pathErr)), "*fs.PathError"},
		{"%w of a plain error", fmt.Errorf("a: %w", errTimeout), "*errors.errorString"},
		{"multi %w: first", fmt.Errorf("%w; %w", codeError(1), pathErr), "strategy_test.codeError"},
		{"join: first", errors.Join(pathErr, codeError(1)), "*fs.PathError"},
		{"join skips nothing but nils", errors.Join(nil, codeError(1)), "strategy_test.codeError"},
		{"Permanent looked through", strategy.Permanent(pathErr), "*fs.PathError"},
		{"RetryAfter looked through", strategy.RetryAfter(fmt.Errorf("x: %w", &validationError{"a"}), s), "*strategy_test.validationError"},
		{"all wrappers", fmt.Errorf("h: %w", strategy.Permanent(strategy.RetryAfter(errors.Join(fmt.Errorf("c: %w", syscall.ECONNRESET)), s))), "syscall.Errno"},
		{"%w with nil operand", fmt.Errorf("x: %w", nil), "*fmt.wrapError"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := strategy.ErrorType(tt.err); got != tt.want {
				t.Errorf("ErrorType(%v) = %q, want %q", tt.err, got, tt.want)
			}
		})
	}
}

func TestVerdictString(t *testing.T) {
	for v, want := range map[strategy.Verdict]string{
		strategy.VerdictRetry: "retry", strategy.VerdictDeadLetter: "dead-letter", 5: "Verdict(5)",
	} {
		if got := v.String(); got != want {
			t.Errorf("Verdict(%d).String() = %q, want %q", int(v), got, want)
		}
	}
	if !strings.HasPrefix(strategy.ReasonExcluded+"x", "excluded:") {
		t.Error("ReasonExcluded changed")
	}
}
