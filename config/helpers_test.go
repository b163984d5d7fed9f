package config

import (
	"errors"
	"fmt"
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

// needsMode describes, for testNeedsMode, the rule that the settings of a
// mode (exactly once, key order) need the mode on.
type needsMode struct {
	mode, what string         // the mode's boolean key; its name in messages
	keys       [2]string      // two of its settings
	vals       [2]string      // non-default values of keys, as written in a tag and a file
	def1       string         // keys[1]'s default, as written in a file
	get        func(Spec) any // the mode's settings of a spec
	setGo      func(*Spec)    // sets keys to vals in Go, the mode off
	want       any            // get with the mode on and keys at vals
}

// testNeedsMode checks m's rule: set by a listener's own declaration
// without the mode, the settings are errors naming both keys and where
// the mode came from; from the layers every listener shares (a file's
// defaults, Go-side values) they are dropped for a listener without it.
func testNeedsMode(t *testing.T, m needsMode) {
	t.Helper()
	rule := "applies only to " + m.what + ", but " + m.mode + " is false"
	fix := func(key string) string { return "; set " + m.mode + " to true, or remove " + key }
	k0, k1 := m.keys[0], m.keys[1]
	_, err := resolveTag(t, nil, "topic=orders,"+k0+"="+m.vals[0]+","+k1+"="+m.vals[1])
	wantLines(t, err,
		tagAt.String()+": "+k0+": "+rule+" (from Go options or defaults)"+fix(k0),
		tagAt.String()+": "+k1+": "+rule+" (from Go options or defaults)"+fix(k1))
	// Both in one declaration: no "from".
	_, err = resolveTag(t, nil, "topic=orders,"+m.mode+"=false,"+k0+"="+m.vals[0])
	wantLines(t, err, tagAt.String()+": "+k0+": "+rule+fix(k0))
	// In a file's entry, with the mode turned off by the defaults; even at
	// its default value, a setting there is an error.
	_, err = resolveYAML(t, nil, "defaults:\n  "+m.mode+": false\nlisteners:\n  - topic: orders\n    "+k1+": "+m.def1+"\n")
	wantLines(t, err, fmt.Sprintf("policy.yaml:5:%d: listeners[0].%s: %s (from policy.yaml:2:%d)%s",
		len("    "+k1+": ")+1, k1, rule, len("  "+m.mode+": ")+1, fix(k1)))

	// A file's defaults apply to the entries with the mode on only.
	f := mustFile(t, "defaults:\n  "+k0+": "+m.vals[0]+"\n  "+k1+": "+m.vals[1]+"\nlisteners:\n  - topic: orders\n    "+m.mode+": true\n  - topic: payments\n")
	specs, err := f.Specs(nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := m.get(specs[0]); got != m.want {
		t.Errorf("entry with %s: %+v, want %+v", m.mode, got, m.want)
	}
	mustEqual(t, specs[1], DefaultSpec("payments"))
	if got, def := m.get(specs[1]), m.get(DefaultSpec("payments")); got != def {
		t.Errorf("entry without %s: %+v, want the defaults %+v", m.mode, got, def)
	}

	// So do Go-side values.
	base := DefaultSpec("orders")
	m.setGo(&base)
	s, err := Resolve(base, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got, def := m.get(s), m.get(DefaultSpec("orders")); got != def {
		t.Errorf("Go-side values without %s: %+v, want the defaults %+v", m.mode, got, def)
	}
	s, err = Resolve(base, nil, mustTag(t, "topic=orders,"+m.mode+"=true"))
	if err != nil {
		t.Fatal(err)
	}
	if got := m.get(s); got != m.want {
		t.Errorf("Go-side values under %s=true: %+v, want %+v", m.mode, got, m.want)
	}
}
