package config

import (
	"errors"
	"testing"
	"time"

	"github.com/kretry/kretry/retry"
	"github.com/kretry/kretry/strategy"
)

func mustTag(t *testing.T, tag string) *Decl {
	t.Helper()
	d, err := ParseTag(tag, tagAt)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func mustFile(t *testing.T, doc string) *File {
	t.Helper()
	f, err := Parse("policy.yaml", []byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// The documented precedence, field by field: code defaults < tag < file
// defaults < file entry; each layer changes only what it sets.
func TestResolvePrecedence(t *testing.T) {
	reg := testRegistry(t)
	base := DefaultSpec("orders")
	base.Group = "from-code"
	base.Policy.Attempts = 2
	base.Policy.Timeout = time.Minute
	base.Policy.MaxErrorBytes = 100
	base.Topics.Partitions = 2

	tag := mustTag(t, "topic=orders,attempts=3,timeout=2m,partitions=3,jitter=0.3")
	file := mustFile(t, `
defaults:
  attempts: 4
  partitions: 4
  dltHandlerAttempts: 7
listeners:
  - topic: orders
    attempts: 5
`)
	layers := append([]*Decl{tag}, file.Layers("orders")...)
	tests := []struct {
		name   string
		layers []*Decl
		check  func(s Spec) bool
	}{
		{"code only", nil, func(s Spec) bool {
			return s.Group == "from-code" && s.Policy.Attempts == 2 && s.Policy.Timeout == time.Minute && s.Topics.Partitions == 2
		}},
		{"tag over code", layers[:1], func(s Spec) bool {
			return s.Group == "from-code" && s.Policy.Attempts == 3 && s.Policy.Timeout == 2*time.Minute && s.Topics.Partitions == 3 &&
				s.Policy.MaxErrorBytes == 100 && s.Policy.Backoff.Jitter == 0.3
		}},
		{"file defaults over tag", layers[:2], func(s Spec) bool {
			return s.Policy.Attempts == 4 && s.Topics.Partitions == 4 && s.Policy.Timeout == 2*time.Minute &&
				s.Policy.DLTHandlerAttempts == 7 && s.Policy.Backoff.Jitter == 0.3 && s.Group == "from-code"
		}},
		{"file entry over file defaults", layers, func(s Spec) bool {
			return s.Policy.Attempts == 5 && s.Topics.Partitions == 4 && s.Policy.Timeout == 2*time.Minute &&
				s.Policy.DLTHandlerAttempts == 7 && s.Policy.MaxErrorBytes == 100
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := Resolve(base, reg, tt.layers...)
			if err != nil {
				t.Fatal(err)
			}
			if !tt.check(s) {
				t.Errorf("resolved %+v", s)
			}
		})
	}
	// A second file applies over the first.
	second := mustFile(t, "defaults:\n  attempts: 6\n")
	s, err := Resolve(base, reg, append(layers, second.Layers("orders")...)...)
	if err != nil || s.Policy.Attempts != 6 {
		t.Errorf("second file: attempts %d, %v; want 6", s.Policy.Attempts, err)
	}
	// Resolve does not change base.
	if base.Policy.Attempts != 2 || base.Topics.Configs != nil {
		t.Errorf("base changed: %+v", base)
	}
}

// Choosing a backoff kind discards the lower layers' fields of other kinds;
// choosing include or exclude discards the other list.
func TestResolveChoicesDiscardLowerLayers(t *testing.T) {
	reg := testRegistry(t)
	tests := []struct {
		name  string
		base  func(*Spec)
		tag   string
		file  string
		check func(s Spec) bool
	}{
		{"exponential tag, list file", nil,
			"topic=orders,delay=2s,multiplier=2,maxDelay=10s",
			"listeners:\n  - topic: orders\n    delays: [1s, 3s]\n",
			func(s Spec) bool {
				return s.Policy.Backoff.Equal(strategy.ListBackoff(time.Second, 3*time.Second))
			}},
		{"exponential tag, fixed file keeps the delay", nil,
			"topic=orders,delay=2s,multiplier=2,maxDelay=10s",
			"listeners:\n  - topic: orders\n    backoff: fixed\n",
			func(s Spec) bool { return s.Policy.Backoff.Equal(strategy.FixedBackoff(2 * time.Second)) }},
		{"list code, multiplier in the tag", func(s *Spec) { s.Policy.Backoff = strategy.ListBackoff(time.Second) },
			"topic=orders,multiplier=3", "",
			func(s Spec) bool { return s.Policy.Backoff.Equal(strategy.ExponentialBackoff(time.Second, 3, 0)) }},
		{"exponential code, maxDelay in the file", func(s *Spec) { s.Policy.Backoff = strategy.ExponentialBackoff(time.Second, 2, 0) },
			"topic=orders", "defaults:\n  maxDelay: 8s\n",
			func(s Spec) bool {
				return s.Policy.Backoff.Equal(strategy.ExponentialBackoff(time.Second, 2, 8*time.Second))
			}},
		{"exclude tag, include file", nil,
			"topic=orders,exclude=validation", "defaults:\n  include: [timeout]\n",
			func(s Spec) bool {
				c := s.Policy.Classifier
				return len(c.Exclude) == 0 && len(c.Include) == 1 && c.Include[0].Name == "timeout"
			}},
		{"include code, exclude tag", func(s *Spec) { s.Policy.Classifier.Include = []strategy.Matcher{strategy.Is("x", errValidation)} },
			"topic=orders,exclude=validation", "",
			func(s Spec) bool {
				c := s.Policy.Classifier
				return len(c.Include) == 0 && len(c.Exclude) == 1
			}},
		{"an empty list clears", nil,
			"topic=orders,exclude=validation", "defaults:\n  exclude: []\n",
			func(s Spec) bool { return len(s.Policy.Classifier.Exclude) == 0 }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			base := DefaultSpec("orders")
			if tt.base != nil {
				tt.base(&base)
			}
			layers := []*Decl{mustTag(t, tt.tag)}
			if tt.file != "" {
				layers = append(layers, mustFile(t, tt.file).Layers("orders")...)
			}
			s, err := Resolve(base, reg, layers...)
			if err != nil {
				t.Fatal(err)
			}
			if !tt.check(s) {
				t.Errorf("resolved %+v", s.Policy)
			}
		})
	}
}

// Rules across fields are checked on the result of every layer; the errors
// say where each value involved came from.
func TestResolveCrossFieldErrors(t *testing.T) {
	reg := testRegistry(t)
	const tagPos = "main.Handlers.Orders (kretry tag)"
	tests := []struct {
		name string
		base func(*Spec)
		tag  string
		file string
		want []string
	}{
		{"maxDelay below delay in one tag", nil, "topic=orders,delay=2s,multiplier=2,maxDelay=1s", "",
			[]string{tagPos + ": maxDelay: must be 0s (no cap) or >= delay 2s, got 1s"}},
		{"maxDelay in the file below the tag's delay", nil, "topic=orders,delay=2s,multiplier=2",
			"listeners:\n  - topic: orders\n    maxDelay: 1s\n",
			[]string{"policy.yaml:3:15: listeners[0].maxDelay: must be 0s (no cap) or >= delay 2s (from " + tagPos + "), got 1s"}},
		{"maxDelay without multiplier", nil, "topic=orders,maxDelay=10s", "",
			[]string{tagPos + ": maxDelay: applies only to exponential backoff, but backoff is fixed (from Go options or defaults); set multiplier for exponential"}},
		{"multiplier with an explicit fixed backoff", nil, "topic=orders,backoff=fixed,multiplier=2", "",
			[]string{tagPos + ": multiplier: applies only to exponential backoff, but backoff is fixed"}},
		{"explicit exponential without multiplier", nil, "topic=orders,backoff=exponential", "",
			[]string{tagPos + ": backoff: exponential backoff needs a multiplier > 1; set multiplier"}},
		{"delay with list backoff", nil, "topic=orders,delay=1s,delays=1s|2s", "",
			[]string{tagPos + ": delay: applies only to fixed and exponential backoff, but backoff is list; list backoff uses delays"}},
		{"explicit list without delays", nil, "topic=orders,backoff=list", "",
			[]string{tagPos + ": backoff: list backoff needs delays"}},
		{"delays with an explicit other kind", nil, "topic=orders,backoff=fixed,delays=1s", "",
			[]string{tagPos + ": delays: applies only to list backoff, but backoff is fixed"}},
		{"multiplier and delays in one layer", nil, "topic=orders,multiplier=2,delays=1s", "",
			[]string{tagPos + ": multiplier: cannot be set with delays (multiplier implies exponential backoff, delays list backoff); set backoff to choose"}},
		{"include and exclude in one layer", nil, "topic=orders,include=timeout,exclude=validation", "",
			[]string{tagPos + ": exclude: must not be set with include; use one list"}},
		{"same suffixes", nil, "topic=orders,dltSuffix=-retry", "",
			[]string{tagPos + `: dltSuffix: retrySuffix and dltSuffix must differ, both are "-retry"`}},
		{"unregistered names", nil, "topic=orders,exclude=validation|notfund", "defaults:\n  routes: [{suffix: -x, error: nope}]\n",
			[]string{
				tagPos + `: exclude[1]: error "notfund" is not registered (registered: auth, notfound, timeout, validation); did you mean "notfound"?`,
				`policy.yaml:2:32: defaults.routes[0].error: error "nope" is not registered (registered: auth, notfound, timeout, validation)`,
			}},
		{"a delay repeated mid-schedule", nil, "topic=orders,delays=1s|2s|1s|3s,attempts=5", "",
			[]string{tagPos + `: listener of topic "orders": strategy: backoff delay 1s repeats before the end of the schedule (retry 1); sameInterval single can reuse a topic only for the final delay, use multiple`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			base := DefaultSpec("orders")
			if tt.base != nil {
				tt.base(&base)
			}
			layers := []*Decl{mustTag(t, tt.tag)}
			if tt.file != "" {
				layers = append(layers, mustFile(t, tt.file).Layers("orders")...)
			}
			_, err := Resolve(base, reg, layers...)
			wantLines(t, err, tt.want...)
		})
	}
}

func TestResolveNoRegistry(t *testing.T) {
	_, err := Resolve(DefaultSpec("orders"), nil, mustTag(t, "topic=orders,exclude=validation"))
	if !errors.Is(err, ErrNotRegistered) {
		t.Fatalf("err = %v, want ErrNotRegistered", err)
	}
	wantLines(t, err, `main.Handlers.Orders (kretry tag): exclude[0]: error "validation" is not registered: no named errors are registered (pass a config.Registry, e.g. with listener.NamedErrors)`)
}

func TestResolveTopicMismatch(t *testing.T) {
	_, err := Resolve(DefaultSpec("payments"), nil, mustTag(t, "topic=orders"))
	wantLines(t, err, `main.Handlers.Orders (kretry tag): topic: declaration for topic "orders" applied to the listener of topic "payments"`)
	_, err = Resolve(Spec{}, nil)
	wantLines(t, err, "Go options or defaults: topic: must be set")
}

// Go-side values that are invalid are reported too, as coming from the Go
// options or defaults.
func TestResolveInvalidBase(t *testing.T) {
	base := DefaultSpec("orders")
	base.Policy.Backoff = strategy.ExponentialBackoff(2*time.Second, 2, time.Second)
	_, err := Resolve(base, nil, mustTag(t, "topic=orders"))
	wantLines(t, err, "Go options or defaults: maxDelay: must be 0s (no cap) or >= delay 2s, got 1s")
	base = DefaultSpec("orders")
	base.Policy.DLT = retry.DLTStrategy(7)
	_, err = Resolve(base, nil)
	if err == nil {
		t.Fatal("an out-of-range DLT strategy resolved")
	}
}
