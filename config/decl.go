package config

import (
	"errors"
	"maps"
	"slices"
	"strings"

	"github.com/kretry/kretry/strategy"
)

// Decl is one declaration: the settings one source gives — a struct tag,
// a policy file's defaults, or one of its listener entries. It holds only
// the fields the source names; the others are unset and leave lower layers
// alone when the declaration is applied (Resolve). Build one with ParseTag,
// ParseValues or Parse; a Decl is immutable and safe for concurrent use.
type Decl struct {
	pos    Pos    // where the declaration starts
	prefix string // key path prefix for errors: "", "defaults." or "listeners[1]."
	topic  string // the "topic" key; "" when unset
	tpos   Pos    // where topic was written
	dlt    string // the "dlt" key of a DLT handler tag; "" otherwise
	vals   map[string]value
}

// Topic returns the main topic the declaration names, or "" (a file's
// defaults, a DLT handler's tag).
func (d *Decl) Topic() string { return d.topic }

// DLT returns the main topic whose dead-letter records a DLT handler tag
// ("dlt=orders") serves, or "" for every other declaration.
func (d *Decl) DLT() string { return d.dlt }

// Pos returns where the declaration is: the tagged struct field, or the
// position of the defaults or listener entry in its file.
func (d *Decl) Pos() Pos { return d.pos }

// Setting reports whether the declaration sets key (a Field key other
// than "topic"), and if so where: the position of its value and its key
// path for errors, as in "batch" for a tag or "listeners[1].batch" for a
// policy file entry.
func (d *Decl) Setting(key string) (at Pos, path string, ok bool) {
	v, ok := d.vals[key]
	return v.pos, v.path, ok
}

// Without returns d without the settings of keys: d itself when it sets
// none of them, a copy otherwise (d is not changed). listener.Register
// uses it to keep the key-order settings of a policy file from a batch
// handler, to which they do not apply.
func (d *Decl) Without(keys ...string) *Decl {
	if !slices.ContainsFunc(keys, func(k string) bool { _, ok := d.vals[k]; return ok }) {
		return d
	}
	c := *d
	c.vals = maps.Clone(d.vals)
	for _, k := range keys {
		delete(c.vals, k)
	}
	return &c
}

// ErrorNames returns the error names the declaration uses in include,
// exclude and routes, sorted, each once.
func (d *Decl) ErrorNames() []string {
	set := map[string]bool{}
	for _, v := range d.vals {
		for _, n := range v.names {
			set[n.name] = true
		}
		for _, r := range v.routes {
			set[r.name] = true
		}
	}
	return slices.Sorted(maps.Keys(set))
}

// origin is where a resolved field's value came from.
type origin struct {
	pos  Pos
	path string
	// shared: from a declaration without a topic (a policy file's
	// defaults), which applies to every listener.
	shared bool
}

// String names the origin for messages.
func (o origin) String() string {
	if o.pos.IsZero() {
		return "Go options or defaults"
	}
	return o.pos.String()
}

// Resolve applies decls, in increasing order of precedence, to base and
// returns the resulting Spec with its policy normalized. Each declaration
// changes only the fields it sets, so a field keeps the value of the
// highest-precedence declaration that sets it, or base's.
//
// Two settings are one choice each, so setting them also discards what
// lower layers said: a declaration that sets the backoff kind (with
// "backoff", or implicitly with "multiplier" for exponential or "delays"
// for list) discards the lower layers' fields that do not apply to the new
// kind (multiplier, maxDelay, delays, delay); one that sets "include"
// discards the lower layers' "exclude", and the other way round. Lists and
// maps (delays, include, exclude, routes, topicConfigs) are replaced, not
// merged.
//
// Named errors are looked up in reg. base.Topic must be set; a declaration
// naming another topic is an error. Resolve returns every problem found,
// joined, each an *Error naming where the value came from.
func Resolve(base Spec, reg *Registry, decls ...*Decl) (Spec, error) {
	s := base.clone()
	var errs []*Error
	// Problems of the listener as a whole are reported at the most
	// specific declaration that names its topic.
	where, whereKey := Pos{}, ""
	for _, d := range decls {
		if d != nil && d.topic != "" {
			where, whereKey = d.pos, strings.TrimSuffix(d.prefix, ".")
		}
	}
	if s.Topic == "" {
		return Spec{}, joinErrors([]*Error{errorf(where, "topic", "must be set")})
	}
	if err := checkTopic(s.Topic); err != nil {
		return Spec{}, joinErrors([]*Error{errorf(where, "topic", "%w", err)})
	}
	org := map[string]origin{}
	for _, d := range decls {
		if d == nil {
			continue
		}
		if d.topic != "" && d.topic != s.Topic {
			errs = append(errs, errorf(d.pos, d.prefix+"topic", "declaration for topic %q applied to the listener of topic %q", d.topic, s.Topic))
			continue
		}
		errs = append(errs, d.applyTo(&s, reg, org)...)
	}
	errs = append(errs, crossCheck(&s, org)...)
	errs = append(errs, goValueProblems(s, org)...)
	s.Policy = s.Policy.Normalize()
	s.Topics = s.Topics.normalize()
	s.Batch = s.Batch.normalize()
	s.ExactlyOnce = s.ExactlyOnce.normalize()
	s.KeyOrder = s.KeyOrder.normalize()
	if len(errs) == 0 {
		// What the layers' rules cannot see, such as an invalid value
		// given in Go, is reported where the value came from.
		errs = append(errs, policyProblems(s.Policy.Validate(), org)...)
	}
	if len(errs) == 0 {
		if _, err := s.Plan(); err != nil {
			var se *strategy.SettingError
			if errors.As(err, &se) { // a setting the plan cannot use, such as the group
				errs = append(errs, policyProblems(err, org)...)
			} else {
				errs = append(errs, errorf(where, whereKey, "listener of topic %q: %w", s.Topic, err))
			}
		}
	}
	if err := joinErrors(errs); err != nil {
		return Spec{}, err
	}
	return s, nil
}

// applyTo applies one layer.
func (d *Decl) applyTo(s *Spec, reg *Registry, org map[string]origin) []*Error {
	var errs []*Error
	skip := map[string]bool{} // keys not applied because of an error reported here
	b := &s.Policy.Backoff

	// The backoff kind: explicit, or implied by multiplier or delays.
	kindAt, kindSet := origin{}, false
	kind := b.Kind
	mul, hasMul := d.vals["multiplier"]
	dls, hasDelays := d.vals["delays"]
	if v, ok := d.vals["backoff"]; ok {
		kind, kindAt, kindSet = strategy.BackoffKind(v.num), origin{pos: v.pos, path: v.path}, true
	} else if hasMul && hasDelays {
		errs = append(errs, errorf(mul.pos, mul.path, "cannot be set with %s (multiplier implies exponential backoff, delays list backoff); set backoff to choose", dls.path))
		skip["multiplier"], skip["delays"] = true, true
	} else if hasMul {
		kind, kindAt, kindSet = strategy.Exponential, origin{pos: mul.pos, path: mul.path}, true
	} else if hasDelays {
		kind, kindAt, kindSet = strategy.List, origin{pos: dls.pos, path: dls.path}, true
	}
	if kindSet {
		if kind != b.Kind {
			// Lower layers' fields that do not apply to the new kind go.
			if kind != strategy.Exponential {
				b.Multiplier, b.MaxDelay = 0, 0
				delete(org, "multiplier")
				delete(org, "maxDelay")
			}
			if kind != strategy.List {
				b.Delays = nil
				delete(org, "delays")
			} else {
				b.Delay = 0
				delete(org, "delay")
			}
		}
		b.Kind = kind
		org["backoff"] = kindAt
	}

	// include and exclude are one choice.
	inc, hasInc := d.vals["include"]
	exc, hasExc := d.vals["exclude"]
	switch {
	case hasInc && hasExc && len(inc.names) > 0 && len(exc.names) > 0:
		errs = append(errs, errorf(exc.pos, exc.path, "must not be set with %s; use one list", inc.path))
		skip["include"], skip["exclude"] = true, true
	case hasInc:
		s.Policy.Classifier.Exclude = nil
		delete(org, "exclude")
	case hasExc:
		s.Policy.Classifier.Include = nil
		delete(org, "include")
	}

	for _, f := range fields {
		v, ok := d.vals[f.key]
		if !ok || f.key == "backoff" || skip[f.key] {
			continue
		}
		if f.kind == kNames || f.kind == kRoutes {
			refs := v.names
			if f.kind == kRoutes {
				refs = make([]nameRef, len(v.routes))
				for i, r := range v.routes {
					refs[i] = r.nameRef
				}
			}
			v.matchers = make([]strategy.Matcher, 0, len(refs))
			bad := false
			for _, r := range refs {
				m, ok := reg.Lookup(r.name)
				if !ok {
					errs = append(errs, &Error{Pos: r.pos, Key: r.path, Err: reg.lookupErr(r.name)})
					bad = true
					continue
				}
				v.matchers = append(v.matchers, m)
			}
			if bad {
				continue
			}
		}
		f.set(s, &v)
		org[f.key] = origin{pos: v.pos, path: v.path, shared: d.topic == ""}
	}
	return errs
}

// policyProblems turns the problems retry.Policy.Validate reports into
// *Errors at the origin of each setting (Go options or defaults when no
// declaration set it).
func policyProblems(err error, org map[string]origin) []*Error {
	if err == nil {
		return nil
	}
	list := []error{err}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		list = j.Unwrap()
	}
	var errs []*Error
	for _, e := range list {
		var se *strategy.SettingError
		if !errors.As(e, &se) {
			errs = append(errs, &Error{Err: e})
			continue
		}
		top, rest := se.Key, ""
		if i := strings.IndexAny(top, "[."); i >= 0 {
			top, rest = top[:i], top[i:]
		}
		o, ok := org[top]
		if !ok {
			errs = append(errs, &Error{Key: se.Key, Err: se.Err})
			continue
		}
		errs = append(errs, &Error{Pos: o.pos, Key: o.path + rest, Err: se.Err})
	}
	return errs
}

// goValueProblems checks the batch, exactly-once and key-order settings
// no declaration set, as given in Go, by the rules of their keys (a declared
// value was checked when it was parsed; the policy's are checked by
// retry.Policy.Validate).
func goValueProblems(s Spec, org map[string]origin) []*Error {
	var errs []*Error
	check := func(key string, v value) {
		if _, declared := org[key]; !declared {
			if err := fieldByKey[key].check(&v); err != nil {
				errs = append(errs, &Error{Key: key, Err: err})
			}
		}
	}
	check("batch", value{num: int64(s.Batch.Size)})
	check("batchWait", value{dur: s.Batch.Wait})
	check("transactionalId", value{str: s.ExactlyOnce.TransactionalID})
	check("transactionInterval", value{dur: s.ExactlyOnce.Interval})
	check("followersOnDeadLetter", value{str: s.KeyOrder.OnDeadLetter})
	check("maxKeysInRetry", value{num: int64(s.KeyOrder.MaxKeys)})
	return errs
}

// crossCheck applies the rules that involve several fields, after every
// layer, naming where each value came from.
func crossCheck(s *Spec, org map[string]origin) []*Error {
	var errs []*Error
	at := func(key string) (Pos, string) {
		o, ok := org[key]
		if !ok {
			return Pos{}, key
		}
		return o.pos, o.path
	}
	bad := func(key, format string, args ...any) {
		pos, path := at(key)
		errs = append(errs, errorf(pos, path, format, args...))
	}
	// from says where another key's value came from, unless it is the
	// same place as key's.
	from := func(other, key string) string {
		o, ok := org[other]
		_, keySet := org[key]
		switch {
		case !ok && !keySet, ok && keySet && o.pos == org[key].pos:
			return ""
		case !ok:
			return " (from Go options or defaults)"
		}
		return " (from " + o.String() + ")"
	}
	b := s.Policy.Backoff.Normalize()
	if b.Kind != strategy.Exponential {
		if b.Multiplier != 0 {
			bad("multiplier", "applies only to exponential backoff, but backoff is %v%s", b.Kind, from("backoff", "multiplier"))
		}
		if b.MaxDelay != 0 {
			bad("maxDelay", "applies only to exponential backoff, but backoff is %v%s; set multiplier for exponential", b.Kind, from("backoff", "maxDelay"))
		}
	}
	if b.Kind != strategy.List && len(b.Delays) > 0 {
		bad("delays", "applies only to list backoff, but backoff is %v%s", b.Kind, from("backoff", "delays"))
	}
	if b.Kind == strategy.List {
		if b.Delay != 0 {
			bad("delay", "applies only to fixed and exponential backoff, but backoff is list%s; list backoff uses delays", from("backoff", "delay"))
		}
		if len(b.Delays) == 0 {
			bad("backoff", "list backoff needs delays")
		}
		attempts := s.Policy.Normalize().Attempts
		if attempts >= 1 && len(b.Delays) > attempts-1 {
			bad("delays", "has %d entries but attempts %d%s allows at most %d (attempts - 1)",
				len(b.Delays), attempts, from("attempts", "delays"), attempts-1)
		}
	}
	if b.Kind == strategy.Exponential {
		_, mulSet := org["multiplier"]
		switch {
		case b.Multiplier == 0 && !mulSet:
			bad("backoff", "exponential backoff needs a multiplier > 1; set multiplier")
		case b.Multiplier <= 1:
			bad("multiplier", "must be > 1 for exponential backoff%s, got %v", from("backoff", "multiplier"), b.Multiplier)
		}
		if b.MaxDelay != 0 && b.MaxDelay < b.Delay {
			bad("maxDelay", "must be 0s (no cap) or >= delay %v%s, got %v", b.Delay, from("delay", "maxDelay"), b.MaxDelay)
		}
	}
	c := s.Policy.Classifier
	if len(c.Include) > 0 && len(c.Exclude) > 0 {
		bad("exclude", "must not be set with include%s; use one list", from("include", "exclude"))
	}
	errs = append(errs, modeRule(s.ExactlyOnce.Enabled, "exactlyOnce", "exactly-once mode", org, from, "transactionalId", "transactionInterval")...)
	if !s.ExactlyOnce.Enabled {
		s.ExactlyOnce = ExactlyOnceSettings{}
	}
	errs = append(errs, modeRule(s.KeyOrder.Enabled, "keyOrder", "key-ordered retries", org, from, "followersOnDeadLetter", "maxKeysInRetry")...)
	if !s.KeyOrder.Enabled {
		s.KeyOrder = KeyOrderSettings{}
	}
	if s.KeyOrder.Enabled && s.ExactlyOnce.Enabled {
		// Reported at the key a declaration set, keyOrder if both or
		// neither.
		key, other := "keyOrder", "exactlyOnce"
		_, koSet := org[key]
		if _, eosSet := org[other]; eosSet && !koSet {
			key, other = other, key
		}
		bad(key, "key order does not work with exactly-once mode yet, but %s is true%s; set keyOrder or exactlyOnce to false", other, from(other, key))
	}
	n := s.Policy.Naming.Normalize()
	if n.RetrySuffix == n.DLTSuffix {
		key := "dltSuffix"
		if _, ok := org[key]; !ok {
			key = "retrySuffix"
		}
		bad(key, "retrySuffix and dltSuffix must differ, both are %q", n.RetrySuffix)
	}
	return errs
}

// modeRule applies the rule that keys are settings of a mode the boolean
// key mode turns on (what names the mode): for a listener whose mode is
// off, a value its own declaration (tag, policy file entry) sets is an
// error, and a value from the layers every listener shares (base, a
// file's defaults) is dropped, as the batch settings of those layers are
// for a single-record handler. The caller resets the mode's settings. from
// is crossCheck's.
func modeRule(on bool, mode, what string, org map[string]origin, from func(other, key string) string, keys ...string) []*Error {
	if on {
		return nil
	}
	var errs []*Error
	for _, key := range keys {
		if o, ok := org[key]; ok && !o.shared {
			errs = append(errs, errorf(o.pos, o.path, "applies only to %s, but %s is false%s; set %s to true, or remove %s",
				what, mode, from(mode, key), mode, key))
		}
		delete(org, key)
	}
	return errs
}
