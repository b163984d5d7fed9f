package config

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/kretry/kretry/retry"
	"github.com/kretry/kretry/strategy"
)

var (
	errValidation = errors.New("validation failed")
	errNotFound   = errors.New("not found")
)

type authError struct{}

func (authError) Error() string { return "unauthorized" }

// testRegistry holds the names the tests use.
func testRegistry(t testing.TB) *Registry {
	t.Helper()
	reg, err := NewRegistry(
		strategy.Is("validation", errValidation),
		strategy.Is("notfound", errNotFound),
		strategy.As[authError]("auth"),
		strategy.Is("timeout", errors.New("timeout")),
	)
	if err != nil {
		t.Fatal(err)
	}
	return reg
}

// tagAt is the position the tag tests use.
var tagAt = Pos{Struct: "main.Handlers", Field: "Orders"}

// spec returns DefaultSpec("orders") changed by edit, normalized.
func spec(reg *Registry, edit func(s *Spec, m func(string) strategy.Matcher)) Spec {
	s := DefaultSpec("orders")
	if edit != nil {
		edit(&s, func(name string) strategy.Matcher {
			m, ok := reg.Lookup(name)
			if !ok {
				panic("test matcher " + name + " not registered")
			}
			return m
		})
	}
	s.Policy = s.Policy.Normalize()
	return s
}

// resolveTag parses tag and resolves it over DefaultSpec("orders").
func resolveTag(t testing.TB, reg *Registry, tag string) (Spec, error) {
	t.Helper()
	d, err := ParseTag(tag, tagAt)
	if err != nil {
		return Spec{}, err
	}
	return Resolve(DefaultSpec(d.Topic()), reg, d)
}

// resolveYAML parses a file and resolves its only listener.
func resolveYAML(t testing.TB, reg *Registry, doc string) (Spec, error) {
	t.Helper()
	f, err := Parse("policy.yaml", []byte(doc))
	if err != nil {
		return Spec{}, err
	}
	specs, err := f.Specs(reg)
	if err != nil {
		return Spec{}, err
	}
	if len(specs) != 1 {
		t.Fatalf("file has %d listeners, want 1", len(specs))
	}
	return specs[0], nil
}

// errLines splits a joined error into its lines.
func errLines(err error) []string {
	if err == nil {
		return nil
	}
	return strings.Split(err.Error(), "\n")
}

func wantLines(t *testing.T, err error, want ...string) {
	t.Helper()
	got := errLines(err)
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("errors:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// wantSameProblem checks that a bad value of key is reported with rule
// from a tag ("topic=orders," then tag), a policy file entry ("topic:
// orders" then the lines of yaml; fileAt is the value's "line:column") and
// Go (base, resolved with no declaration): the same key and rule, each at
// its own origin.
func wantSameProblem(t *testing.T, key, rule, tag, yaml, fileAt string, base Spec) {
	t.Helper()
	_, err := resolveTag(t, nil, "topic=orders,"+tag)
	wantLines(t, err, tagAt.String()+": "+key+": "+rule)
	_, err = resolveYAML(t, nil, "listeners:\n  - topic: orders\n    "+yaml+"\n")
	wantLines(t, err, "policy.yaml:"+fileAt+": listeners[0]."+key+": "+rule)
	_, err = Resolve(base, nil)
	wantLines(t, err, "Go options or defaults: "+key+": "+rule)
}

func mustEqual(t *testing.T, got, want Spec) {
	t.Helper()
	if !got.Equal(want) {
		t.Errorf("spec\n got  %+v\n want %+v", got, want)
	}
}

var _ = time.Second
var _ = retry.NoDLT
