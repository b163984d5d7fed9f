package config

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/kretry/kretry/internal/suggest"
	"github.com/kretry/kretry/strategy"
)

// Registry maps the error names used in struct tags and policy files
// (include, exclude and routes) to the strategy.Matcher each stands for.
// There is no global registry: a program builds one and passes it where
// declarations are resolved (listener.NamedErrors, File.Specs, Resolve).
//
// A Registry is immutable once built and safe for concurrent use. A nil
// *Registry holds no names.
type Registry struct {
	byName map[string]strategy.Matcher
}

// NewRegistry returns a Registry holding ms under their names. It fails,
// naming the matcher, when a Name is empty, uses a character other than
// [A-Za-z0-9._/-] (so that names never need escaping in tags), appears
// twice, or its Match is nil.
func NewRegistry(ms ...strategy.Matcher) (*Registry, error) {
	r := &Registry{byName: make(map[string]strategy.Matcher, len(ms))}
	var errs []error
	for i, m := range ms {
		switch err := checkName(m.Name); {
		case err != nil:
			errs = append(errs, fmt.Errorf("config: NewRegistry: matcher %d: name %w", i, err))
		case m.Match == nil:
			errs = append(errs, fmt.Errorf("config: NewRegistry: matcher %d (%q): Match must not be nil", i, m.Name))
		default:
			if _, dup := r.byName[m.Name]; dup {
				errs = append(errs, fmt.Errorf("config: NewRegistry: matcher %d: %w name %q", i, ErrDuplicate, m.Name))
				continue
			}
			r.byName[m.Name] = m
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return r, nil
}

// Lookup returns the matcher registered under name.
func (r *Registry) Lookup(name string) (strategy.Matcher, bool) {
	if r == nil {
		return strategy.Matcher{}, false
	}
	m, ok := r.byName[name]
	return m, ok
}

// Names returns the registered names, sorted.
func (r *Registry) Names() []string {
	if r == nil {
		return nil
	}
	names := make([]string, 0, len(r.byName))
	for n := range r.byName {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}

// lookupErr explains a failed Lookup.
func (r *Registry) lookupErr(name string) error {
	names := r.Names()
	if len(names) == 0 {
		return fmt.Errorf("error %q is %w: no named errors are registered (pass a config.Registry, e.g. with listener.NamedErrors)", name, ErrNotRegistered)
	}
	hint := ""
	if s := closestName(name, names); s != "" {
		hint = fmt.Sprintf("; did you mean %q?", s)
	}
	return fmt.Errorf("error %q is %w (registered: %s)%s", name, ErrNotRegistered, strings.Join(names, ", "), hint)
}

// checkName applies the rule for error names: 1 to 249 of [A-Za-z0-9._/-].
func checkName(name string) error {
	if name == "" {
		return fmt.Errorf("must not be empty")
	}
	if len(name) > 249 {
		return fmt.Errorf("must be at most 249 characters, got %d", len(name))
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if !(isTopicByte(c) || c == '/') {
			return fmt.Errorf("may contain only [A-Za-z0-9._/-], got %q with %q at byte %d", name, name[i:i+1], i)
		}
	}
	return nil
}

func isTopicByte(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-'
}

// closestName returns the candidate closest to s when it is close enough to be
// a likely typo (same letters ignoring case, or an edit distance of at most
// 2, a swap of neighbouring letters counting as one edit), or "".
func closestName(s string, candidates []string) string {
	best, bestDist := "", 3
	for _, c := range candidates {
		if strings.EqualFold(s, c) {
			return c
		}
		// Keys and error names are short; a long input is no typo of one.
		if len(s) > 64 || len(c) > 64 {
			continue
		}
		if d := suggest.Distance(strings.ToLower(s), strings.ToLower(c)); d < bestDist {
			best, bestDist = c, d
		}
	}
	return best
}
