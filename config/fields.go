package config

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"gopkg.in/yaml.v3"

	"github.com/kretry/kretry/retry"
	"github.com/kretry/kretry/strategy"
)

// Field describes one setting as it is written in struct tags, policy
// files and the CLI's flags.
type Field struct {
	// Key names the setting in struct tags and policy files, as in
	// "maxDelay". The CLI's flag is its kebab-case form, "--max-delay".
	Key string
	// Syntax says how a value is written, as in "duration" or
	// "name|name…" (the tag form of a list).
	Syntax string
	// Default is the value when nothing sets the field.
	Default string
	// Doc is a one-line description.
	Doc string
}

// Fields returns every setting, in the order of the documentation:
// identity, backoff, naming, errors, DLT, topic creation, batches,
// exactly once, key order. The same keys are
// accepted in struct tags and in policy files (where "topic" is allowed
// only in listener entries); struct tags also take "dlt" on DLT handler
// fields, which is not a setting and not listed.
func Fields() []Field {
	out := make([]Field, len(fields))
	for i, f := range fields {
		out[i] = Field{Key: f.key, Syntax: f.syntax, Default: f.def, Doc: f.doc}
	}
	return out
}

// kind is how a field's value is written and parsed.
type kind int

const (
	kString    kind = iota // text
	kEnum                  // one of a few names
	kInt                   // integer
	kFloat                 // number
	kDuration              // Go duration string
	kBool                  // true or false
	kDurations             // list of durations
	kNames                 // list of registered error names
	kRoutes                // list of suffix:name
	kConfigs               // name:value pairs
)

// field is one row of the table every surface shares.
type field struct {
	key    string
	kind   kind
	path   string // the Spec field it sets, for tests, e.g. "Policy.Backoff.Delay"
	syntax string
	def    string
	doc    string
	enum   func(string) (int64, error) // kEnum only
	check  func(v *value) error        // single-value rule; nil: none
	set    func(s *Spec, v *value)
}

// value is a parsed field value with the position it was written at.
type value struct {
	pos    Pos
	path   string // key path for errors, e.g. "listeners[1].delay"
	text   string // a scalar as written
	str    string
	num    int64
	flt    float64
	dur    time.Duration
	durs   []time.Duration
	names  []nameRef
	routes []routeRef
	kv     map[string]*string
	// matchers holds the resolved names (kNames, kRoutes), filled by Resolve.
	matchers []strategy.Matcher
}

type nameRef struct {
	name string
	pos  Pos
	path string
}

type routeRef struct {
	suffix string
	nameRef
}

// fields is the table: one row per setting, in documentation order.
var fields = []*field{
	{key: "topic", kind: kString, path: "Topic", syntax: "topic", def: "none, required",
		doc:   "main topic the handler consumes; identifies the listener",
		check: func(v *value) error { return checkTopic(v.str) },
		set:   func(s *Spec, v *value) { s.Topic = v.str }},
	{key: "group", kind: kString, path: "Group", syntax: "text", def: "kretry-<topic>",
		doc: "consumer group for the main topic, its retry topics and DLTs",
		set: func(s *Spec, v *value) { s.Group = v.str }},
	{key: "attempts", kind: kInt, path: "Policy.Attempts", syntax: "integer", def: "3",
		doc:   "deliveries in all, the first included; 1 means no retries",
		check: countOrDefault(1, strategy.MaxAttempts),
		set:   func(s *Spec, v *value) { s.Policy.Attempts = int(v.num) }},
	{key: "backoff", kind: kEnum, path: "Policy.Backoff.Kind", syntax: "fixed|exponential|list",
		def: "fixed (exponential when multiplier is set, list when delays is set)",
		doc: "how delays grow",
		enum: func(s string) (int64, error) {
			var k strategy.BackoffKind
			err := k.UnmarshalText([]byte(s))
			return int64(k), err
		},
		set: func(s *Spec, v *value) { s.Policy.Backoff.Kind = strategy.BackoffKind(v.num) }},
	{key: "delay", kind: kDuration, path: "Policy.Backoff.Delay", syntax: "duration", def: "1s",
		doc:   "fixed delay, or the first exponential delay; whole milliseconds",
		check: topicDelay,
		set:   func(s *Spec, v *value) { s.Policy.Backoff.Delay = v.dur }},
	{key: "multiplier", kind: kFloat, path: "Policy.Backoff.Multiplier", syntax: "number > 1", def: "none (fixed backoff)",
		doc: "factor from one exponential delay to the next; implies backoff exponential",
		check: func(v *value) error {
			if math.IsNaN(v.flt) || math.IsInf(v.flt, 0) || v.flt <= 1 {
				return fmt.Errorf("must be > 1 for exponential backoff, got %v", v.flt)
			}
			return nil
		},
		set: func(s *Spec, v *value) { s.Policy.Backoff.Multiplier = v.flt }},
	{key: "maxDelay", kind: kDuration, path: "Policy.Backoff.MaxDelay", syntax: "duration", def: "0s (no cap)",
		doc:   "cap on exponential delays; 0s for none; whole milliseconds",
		check: topicDelay,
		set:   func(s *Spec, v *value) { s.Policy.Backoff.MaxDelay = v.dur }},
	{key: "jitter", kind: kFloat, path: "Policy.Backoff.Jitter", syntax: "number in [0, 1]", def: "0",
		doc: "randomization of each actual wait (never of topic names)",
		check: func(v *value) error {
			if math.IsNaN(v.flt) || v.flt < 0 || v.flt > 1 {
				return fmt.Errorf("must be within [0, 1], got %v", v.flt)
			}
			return nil
		},
		set: func(s *Spec, v *value) { s.Policy.Backoff.Jitter = v.flt }},
	{key: "delays", kind: kDurations, path: "Policy.Backoff.Delays", syntax: "duration|duration…", def: "none",
		doc: "explicit delay per retry (at most attempts - 1), the last reused; implies backoff list",
		check: func(v *value) error {
			if len(v.durs) == 0 {
				return fmt.Errorf("must list at least one delay")
			}
			return nil
		},
		set: func(s *Spec, v *value) { s.Policy.Backoff.Delays = append([]time.Duration(nil), v.durs...) }},
	{key: "retrySuffix", kind: kString, path: "Policy.Naming.RetrySuffix", syntax: "topic fragment", def: strategy.DefaultRetrySuffix,
		doc:   "suffix that starts every retry topic's name",
		check: func(v *value) error { return checkFragment(v.str) },
		set:   func(s *Spec, v *value) { s.Policy.Naming.RetrySuffix = v.str }},
	{key: "dltSuffix", kind: kString, path: "Policy.Naming.DLTSuffix", syntax: "topic fragment", def: strategy.DefaultDLTSuffix,
		doc:   "suffix of every dead-letter topic's name",
		check: func(v *value) error { return checkFragment(v.str) },
		set:   func(s *Spec, v *value) { s.Policy.Naming.DLTSuffix = v.str }},
	{key: "suffixing", kind: kEnum, path: "Policy.Naming.Suffixing", syntax: "delay|index", def: "delay",
		doc: "retry topics named by delay (orders-retry-1000) or index (orders-retry-0)",
		enum: func(s string) (int64, error) {
			var x strategy.Suffixing
			err := x.UnmarshalText([]byte(s))
			return int64(x), err
		},
		set: func(s *Spec, v *value) { s.Policy.Naming.Suffixing = strategy.Suffixing(v.num) }},
	{key: "sameInterval", kind: kEnum, path: "Policy.Naming.SameInterval", syntax: "single|multiple", def: "single",
		doc: "retries with the same delay share one topic, or get one each",
		enum: func(s string) (int64, error) {
			var x strategy.SameInterval
			err := x.UnmarshalText([]byte(s))
			return int64(x), err
		},
		set: func(s *Spec, v *value) { s.Policy.Naming.SameInterval = strategy.SameInterval(v.num) }},
	{key: "groupTopics", kind: kBool, path: "Policy.Naming.GroupTopics", syntax: "true|false", def: "false",
		doc: "name retry topics and DLTs after the consumer group too (orders-billing-retry-1000), so each group has its own",
		set: func(s *Spec, v *value) { s.Policy.Naming.GroupTopics = v.num != 0 }},
	{key: "include", kind: kNames, path: "Policy.Classifier.Include", syntax: "name|name…", def: "none (retry every error)",
		doc: "retry only these named errors; others go to the DLT; replaces exclude",
		set: func(s *Spec, v *value) { s.Policy.Classifier.Include = v.matchers }},
	{key: "exclude", kind: kNames, path: "Policy.Classifier.Exclude", syntax: "name|name…", def: "none",
		doc: "never retry these named errors; they go to the DLT; replaces include",
		set: func(s *Spec, v *value) { s.Policy.Classifier.Exclude = v.matchers }},
	{key: "routes", kind: kRoutes, path: "Policy.Classifier.Routes", syntax: "suffix:name|…", def: "none",
		doc: "send named errors to their own DLT, <topic><suffix><dltSuffix>; first match wins",
		set: func(s *Spec, v *value) {
			rs := make([]strategy.Route, len(v.routes))
			for i, r := range v.routes {
				rs[i] = strategy.Route{Suffix: r.suffix, Matcher: v.matchers[i]}
			}
			s.Policy.Classifier.Routes = rs
		}},
	{key: "timeout", kind: kDuration, path: "Policy.Timeout", syntax: "duration", def: "0s (none)",
		doc:   "budget from the original record's timestamp; past it a failure goes to the DLT",
		check: nonNegative,
		set:   func(s *Spec, v *value) { s.Policy.Timeout = v.dur }},
	{key: "maxErrorBytes", kind: kInt, path: "Policy.MaxErrorBytes", syntax: "integer >= 64", def: strconv.Itoa(retry.DefaultMaxErrorBytes),
		doc:   "bound on the error text carried in the kretry-error header",
		check: countOrDefault(retry.MinMaxErrorBytes, math.MaxInt32),
		set:   func(s *Spec, v *value) { s.Policy.MaxErrorBytes = int(v.num) }},
	{key: "dltStrategy", kind: kEnum, path: "Policy.DLT", syntax: "retry-on-error|fail-on-error|none", def: "retry-on-error",
		doc: "what happens around the DLT: bounded DLT handler retries, one call, or no DLT",
		enum: func(s string) (int64, error) {
			var x retry.DLTStrategy
			err := x.UnmarshalText([]byte(s))
			return int64(x), err
		},
		set: func(s *Spec, v *value) { s.Policy.DLT = retry.DLTStrategy(v.num) }},
	{key: "dltHandlerAttempts", kind: kInt, path: "Policy.DLTHandlerAttempts", syntax: "integer >= 1", def: strconv.Itoa(retry.DefaultDLTHandlerAttempts),
		doc:   "DLT handler calls per record under retry-on-error, the first included",
		check: countOrDefault(1, math.MaxInt32),
		set:   func(s *Spec, v *value) { s.Policy.DLTHandlerAttempts = int(v.num) }},
	{key: "dltHandlerBackoff", kind: kDuration, path: "Policy.DLTHandlerBackoff", syntax: "duration", def: retry.DefaultDLTHandlerBackoff.String(),
		doc:   "wait between DLT handler calls for one record",
		check: nonNegative,
		set:   func(s *Spec, v *value) { s.Policy.DLTHandlerBackoff = v.dur }},
	{key: "createTopics", kind: kBool, path: "Topics.Create", syntax: "true|false", def: "true",
		doc: "create missing retry and DLT topics at start-up",
		set: func(s *Spec, v *value) { s.Topics.Create = v.num != 0 }},
	{key: "partitions", kind: kInt, path: "Topics.Partitions", syntax: "integer >= 1, or -1", def: "-1 (the main topic's count)",
		doc:   "partitions of created topics",
		check: intOrMinusOne(math.MaxInt32),
		set:   func(s *Spec, v *value) { s.Topics.Partitions = int32(v.num) }},
	{key: "replicationFactor", kind: kInt, path: "Topics.ReplicationFactor", syntax: "integer >= 1, or -1", def: "-1 (the broker's default)",
		doc:   "replication factor of created topics",
		check: intOrMinusOne(math.MaxInt16),
		set:   func(s *Spec, v *value) { s.Topics.ReplicationFactor = int16(v.num) }},
	{key: "topicConfigs", kind: kConfigs, path: "Topics.Configs", syntax: "name:value|…", def: "none (broker defaults)",
		doc: "topic configs of created topics, e.g. retention.ms",
		set: func(s *Spec, v *value) {
			c := make(map[string]*string, len(v.kv))
			for k, x := range v.kv {
				if x != nil {
					x = new(*x)
				}
				c[k] = x
			}
			s.Topics.Configs = c
		}},
	{key: "batch", kind: kInt, path: "Batch.Size", syntax: "integer >= 1", def: strconv.Itoa(DefaultBatchSize),
		doc:   "most records a batch handler is given at once; batch handlers only",
		check: atLeastOrDefault(1),
		set:   func(s *Spec, v *value) { s.Batch.Size = int(v.num) }},
	{key: "batchWait", kind: kDuration, path: "Batch.Wait", syntax: "duration", def: "0s (no wait)",
		doc:   "how long a partition's records may wait for a batch to fill; batch handlers only",
		check: nonNegative,
		set:   func(s *Spec, v *value) { s.Batch.Wait = v.dur }},
	{key: "exactlyOnce", kind: kBool, path: "ExactlyOnce.Enabled", syntax: "true|false", def: "false (at least once)",
		doc: "commit forwards, handler outputs and offsets in Kafka transactions",
		set: func(s *Spec, v *value) { s.ExactlyOnce.Enabled = v.num != 0 }},
	{key: "transactionalId", kind: kString, path: "ExactlyOnce.TransactionalID", syntax: "text", def: "<group>-<topic>-<host name>",
		doc:   "the exactly-once producer's ID, unique per running instance and stable across its restarts; exactlyOnce only",
		check: func(v *value) error { return CheckTransactionalID(v.str) },
		set:   func(s *Spec, v *value) { s.ExactlyOnce.TransactionalID = v.str }},
	{key: "transactionInterval", kind: kDuration, path: "ExactlyOnce.Interval", syntax: "duration", def: DefaultTransactionInterval.String(),
		doc:   "how often an exactly-once listener commits its transaction; exactlyOnce only",
		check: nonNegative,
		set:   func(s *Spec, v *value) { s.ExactlyOnce.Interval = v.dur }},
	{key: "keyOrder", kind: kBool, path: "KeyOrder.Enabled", syntax: "true|false", def: "false",
		doc: "keep each key's records in order through retries: a record waits behind an earlier one of its key in retry; single-record handlers only",
		set: func(s *Spec, v *value) { s.KeyOrder.Enabled = v.num != 0 }},
	{key: "followersOnDeadLetter", kind: kString, path: "KeyOrder.OnDeadLetter", syntax: FollowersRelease + "|" + FollowersDeadLetter, def: FollowersRelease,
		doc:   "what happens to the records waiting behind a dead-lettered record of their key: handled in order, or dead-lettered too; keyOrder only",
		check: func(v *value) error { return CheckFollowersOnDeadLetter(v.str) },
		set:   func(s *Spec, v *value) { s.KeyOrder.OnDeadLetter = v.str }},
	{key: "maxKeysInRetry", kind: kInt, path: "KeyOrder.MaxKeys", syntax: "integer >= 1", def: strconv.Itoa(DefaultMaxKeysInRetry),
		doc:   "most keys a key-ordered listener holds in retry at once; at the bound a partition waits; keyOrder only",
		check: atLeastOrDefault(1),
		set:   func(s *Spec, v *value) { s.KeyOrder.MaxKeys = int(v.num) }},
}

// BatchKeys returns the keys of the settings that size a batch handler's
// batches (Spec.Batch), in table order: "batch" and "batchWait". They
// apply to batch handlers only, so listener.Register refuses them in the
// tag or policy file entry of a single-record handler.
func BatchKeys() []string { return keysUnder("Batch.") }

// ExactlyOnceKeys returns the keys of the exactly-once settings
// (Spec.ExactlyOnce), in table order: "exactlyOnce", "transactionalId"
// and "transactionInterval". They change how a program's listener
// commits, not its topics.
func ExactlyOnceKeys() []string { return keysUnder("ExactlyOnce.") }

// KeyOrderKeys returns the keys of the key-order settings
// (Spec.KeyOrder), in table order: "keyOrder", "followersOnDeadLetter"
// and "maxKeysInRetry". They change how a program's listener orders the
// records of a key, not its topics, and apply to single-record handlers
// only, so listener.Register refuses them in the tag or policy file entry
// of a batch handler.
func KeyOrderKeys() []string { return keysUnder("KeyOrder.") }

// keysUnder returns the keys of the fields whose Spec path starts with
// prefix, in table order.
func keysUnder(prefix string) []string {
	var keys []string
	for _, f := range fields {
		if strings.HasPrefix(f.path, prefix) {
			keys = append(keys, f.key)
		}
	}
	return keys
}

// fieldByKey indexes fields.
var fieldByKey = func() map[string]*field {
	m := make(map[string]*field, len(fields))
	for _, f := range fields {
		m[f.key] = f
	}
	return m
}()

// keyDLT is the struct-tag key of a DLT handler field; it is not a setting.
const keyDLT = "dlt"

func allKeys() []string {
	keys := make([]string, 0, len(fields)+1)
	for _, f := range fields {
		keys = append(keys, f.key)
	}
	return keys
}

// unknownKey builds the error for a key that is not in candidates.
func unknownKey(key string, candidates []string) error {
	if s := closestName(key, candidates); s != "" {
		return fmt.Errorf("%w %q; did you mean %q?", ErrUnknownKey, key, s)
	}
	return fmt.Errorf("%w %q (known keys: %s)", ErrUnknownKey, key, strings.Join(candidates, ", "))
}

// atom is one scalar as written: in a tag (node nil) or a YAML scalar.
type atom struct {
	text string
	pos  Pos
	node *yaml.Node
}

// pair is a key:value item (routes, topicConfigs).
type pair struct{ key, val atom }

// raw is a field's value before parsing: one scalar, list items, or pairs.
type raw struct {
	path  string
	pos   Pos
	one   atom
	items []atom
	pairs []pair
}

// parse turns r into f's value, or returns every problem found.
func (f *field) parse(r raw) (value, []*Error) {
	v := value{pos: r.pos, path: r.path}
	var errs []*Error
	fail := func(pos Pos, path string, err error) { errs = append(errs, &Error{Pos: pos, Key: path, Err: err}) }
	switch f.kind {
	case kDurations:
		v.durs = make([]time.Duration, 0, len(r.items))
		for i, it := range r.items {
			path := fmt.Sprintf("%s[%d]", r.path, i)
			d, err := parseDuration(it)
			if err == nil {
				err = topicDelay(&value{dur: d})
			}
			if err != nil {
				fail(it.pos, path, err)
				continue
			}
			v.durs = append(v.durs, d)
		}
	case kNames:
		seen := map[string]int{}
		for i, it := range r.items {
			path := fmt.Sprintf("%s[%d]", r.path, i)
			name, err := parseName(it)
			if err == nil {
				if j, dup := seen[name]; dup {
					err = fmt.Errorf("%w error name %q, also %s[%d]", ErrDuplicate, name, r.path, j)
				}
			}
			if err != nil {
				fail(it.pos, path, err)
				continue
			}
			seen[name] = i
			v.names = append(v.names, nameRef{name: name, pos: it.pos, path: path})
		}
	case kRoutes:
		suffixes, names := map[string]int{}, map[string]int{}
		for i, p := range r.pairs {
			path := fmt.Sprintf("%s[%d]", r.path, i)
			suffix, name := p.key.text, ""
			err := checkFragment(suffix)
			if err != nil {
				fail(p.key.pos, path+".suffix", err)
			} else if j, dup := suffixes[suffix]; dup {
				fail(p.key.pos, path+".suffix", fmt.Errorf("%w route suffix %q, also %s[%d]", ErrDuplicate, suffix, r.path, j))
				err = ErrDuplicate
			}
			name, nerr := parseName(p.val)
			if nerr == nil {
				if j, dup := names[name]; dup {
					nerr = fmt.Errorf("%w error name %q, also %s[%d]", ErrDuplicate, name, r.path, j)
				}
			}
			if nerr != nil {
				fail(p.val.pos, path+".error", nerr)
			}
			if err != nil || nerr != nil {
				continue
			}
			suffixes[suffix], names[name] = i, i
			v.routes = append(v.routes, routeRef{suffix: suffix, nameRef: nameRef{name: name, pos: p.val.pos, path: path + ".error"}})
		}
	case kConfigs:
		v.kv = make(map[string]*string, len(r.pairs))
		for _, p := range r.pairs {
			path := r.path + "." + p.key.text
			switch {
			case p.key.text == "":
				fail(p.key.pos, r.path, fmt.Errorf("config names must not be empty"))
				continue
			}
			if err := firstErr(checkText(p.key.text), checkText(p.val.text)); err != nil {
				fail(p.key.pos, path, err)
				continue
			}
			if _, dup := v.kv[p.key.text]; dup {
				fail(p.key.pos, path, fmt.Errorf("%w topic config %q", ErrDuplicate, p.key.text))
				continue
			}
			if p.val.node != nil && p.val.node.Tag == "!!null" {
				v.kv[p.key.text] = nil
				continue
			}
			v.kv[p.key.text] = new(p.val.text)
		}
	default:
		v.text = r.one.text
		if err := f.parseScalar(&v, r.one); err != nil {
			fail(r.one.pos, r.path, err)
		}
	}
	if len(errs) == 0 && f.check != nil {
		if err := f.check(&v); err != nil {
			fail(r.pos, r.path, err)
		}
	}
	return v, errs
}

// parseScalar parses a scalar kind. A YAML scalar must have a matching
// type: integers for kInt, numbers for kFloat, booleans for kBool, and no
// null anywhere.
func (f *field) parseScalar(v *value, a atom) error {
	if a.node != nil && a.node.Tag == "!!null" {
		return fmt.Errorf("want %s, got null", want(f))
	}
	if a.text == "" {
		return fmt.Errorf("must not be empty; want %s", want(f))
	}
	switch f.kind {
	case kString:
		if err := checkText(a.text); err != nil {
			return err
		}
		v.str = a.text
	case kEnum:
		n, err := f.enum(a.text)
		if err != nil {
			return fmt.Errorf("want %s, got %s", f.syntax, describe(a))
		}
		v.num = n
	case kInt:
		var err error
		if a.node != nil {
			if a.node.Tag != "!!int" {
				return fmt.Errorf("want an integer, got %s", describe(a))
			}
			err = a.node.Decode(&v.num)
		} else {
			v.num, err = strconv.ParseInt(a.text, 10, 64)
		}
		if err != nil {
			return fmt.Errorf("want an integer, got %s", describe(a))
		}
	case kFloat:
		var err error
		if a.node != nil {
			if a.node.Tag != "!!int" && a.node.Tag != "!!float" {
				return fmt.Errorf("want a number, got %s", describe(a))
			}
			err = a.node.Decode(&v.flt)
		} else {
			v.flt, err = strconv.ParseFloat(a.text, 64)
		}
		if err != nil {
			return fmt.Errorf("want a number, got %s", describe(a))
		}
	case kDuration:
		d, err := parseDuration(a)
		if err != nil {
			return err
		}
		v.dur = d
	case kBool:
		switch {
		case a.node != nil && a.node.Tag == "!!bool":
			var b bool
			if err := a.node.Decode(&b); err != nil {
				return fmt.Errorf("want true or false, got %s", describe(a))
			}
			v.num = boolNum(b)
		case a.node == nil && (a.text == "true" || a.text == "false"):
			v.num = boolNum(a.text == "true")
		default:
			return fmt.Errorf("want true or false, got %s", describe(a))
		}
	}
	return nil
}

func boolNum(b bool) int64 {
	if b {
		return 1
	}
	return 0
}

// want names what a scalar field expects, for messages.
func want(f *field) string {
	switch f.kind {
	case kInt:
		return "an integer"
	case kFloat:
		return "a number"
	case kDuration:
		return "a duration such as 1s or 500ms"
	case kBool:
		return "true or false"
	case kEnum:
		return f.syntax
	}
	return "a string"
}

// describe shows a scalar in messages: quoted text for a tag, and the YAML
// type and text for a file.
func describe(a atom) string {
	if a.node == nil {
		return strconv.Quote(a.text)
	}
	switch a.node.Tag {
	case "!!str":
		return "string " + strconv.Quote(a.text)
	case "!!int":
		return "integer " + a.text
	case "!!float":
		return "number " + a.text
	case "!!bool":
		return "boolean " + a.text
	case "!!null":
		return "null"
	}
	return a.node.Tag + " " + strconv.Quote(a.text)
}

func parseDuration(a atom) (time.Duration, error) {
	if a.node != nil && a.node.Tag == "!!null" {
		return 0, fmt.Errorf("want a duration such as 1s or 500ms, got null")
	}
	d, err := time.ParseDuration(a.text)
	if err != nil {
		return 0, fmt.Errorf("want a duration such as 1s or 500ms, got %s", describe(a))
	}
	return d, nil
}

func parseName(a atom) (string, error) {
	if a.node != nil && a.node.Tag == "!!null" {
		return "", fmt.Errorf("want an error name, got null")
	}
	if err := checkName(a.text); err != nil {
		return "", fmt.Errorf("error name %w", err)
	}
	return a.text, nil
}

// countOrDefault is the rule for a count with a default: 0 is unset and
// means the default (the one rule for zero), anything else must be within
// [lo, hi]. The words are retry.Policy.Validate's.
func countOrDefault(lo, hi int64) func(v *value) error {
	return func(v *value) error {
		if v.num != 0 && (v.num < lo || v.num > hi) {
			return fmt.Errorf("must be >= %d and <= %d, or 0 for the default, got %d", lo, hi, v.num)
		}
		return nil
	}
}

// atLeastOrDefault is the rule for a count with a default and no upper
// bound but a Go int's: 0 is unset and means the default, anything else
// must be >= lo. The words are the listener options' (BatchSize).
func atLeastOrDefault(lo int64) func(v *value) error {
	return func(v *value) error {
		switch {
		case v.num != 0 && v.num < lo:
			return fmt.Errorf("must be >= %d, or 0 for the default, got %d", lo, v.num)
		case int64(int(v.num)) != v.num: // only where an int has 32 bits
			return fmt.Errorf("must be <= %d, got %d", math.MaxInt, v.num)
		}
		return nil
	}
}

// intOrMinusOne is the rule for partitions and replicationFactor: -1 is
// the default, written out, and 0 (unset) means it too.
func intOrMinusOne(hi int64) func(v *value) error {
	return func(v *value) error {
		if v.num != -1 && v.num != 0 && (v.num < 1 || v.num > hi) {
			return fmt.Errorf("must be >= 1 and <= %d, or -1 or 0 for the default, got %d", hi, v.num)
		}
		return nil
	}
}

func nonNegative(v *value) error {
	if v.dur < 0 {
		return fmt.Errorf("must be >= 0, got %v", v.dur)
	}
	return nil
}

// topicDelay is the rule for delays that name topics.
func topicDelay(v *value) error {
	if err := nonNegative(v); err != nil {
		return err
	}
	if v.dur%time.Millisecond != 0 {
		return fmt.Errorf("must be a whole number of milliseconds (topic names carry milliseconds), got %v", v.dur)
	}
	return nil
}

// checkText applies the rule for free text (groups, topic configs): valid
// UTF-8 without control characters (or the two non-characters YAML
// cannot hold), so that every value can be written back to a policy file.
func checkText(s string) error {
	if !utf8.ValidString(s) {
		return fmt.Errorf("must be valid UTF-8, got %q", s)
	}
	for i, r := range s {
		if unicode.IsControl(r) || r == 0xFFFE || r == 0xFFFF {
			return fmt.Errorf("must not contain control characters, got %q with %U at byte %d", s, r, i)
		}
	}
	return nil
}

// MaxTransactionalIDLength is the longest transactional ID, in bytes, that
// Kafka's protocol carries (a string with a 16-bit length).
const MaxTransactionalIDLength = math.MaxInt16

// CheckTransactionalID applies the rule for a transactional ID
// (ExactlyOnceSettings.TransactionalID, the key transactionalId,
// listener.ExactlyOnce): valid UTF-8 without control characters, as for
// all free text, and at most MaxTransactionalIDLength bytes. Kafka sets
// no other rule. The empty ID passes: it means the default, one derived
// from the group and the host name. The error states the rule and the
// value, as in "must be at most 32767 bytes, got 40000".
func CheckTransactionalID(id string) error {
	if len(id) > MaxTransactionalIDLength {
		return fmt.Errorf("must be at most %d bytes, got %d", MaxTransactionalIDLength, len(id))
	}
	return checkText(id)
}

// CheckFollowersOnDeadLetter applies the rule for what happens to the
// followers of a dead-lettered record (KeyOrderSettings.OnDeadLetter, the
// key followersOnDeadLetter, listener.FollowersOnDeadLetter): it must be
// FollowersRelease or FollowersDeadLetter. The empty policy passes: it
// means the default, FollowersRelease. The error states the rule and the
// value, as in `must be "release" or "dead-letter", got "drop"`.
func CheckFollowersOnDeadLetter(policy string) error {
	switch policy {
	case "", FollowersRelease, FollowersDeadLetter:
		return nil
	}
	return fmt.Errorf("must be %q or %q, got %q", FollowersRelease, FollowersDeadLetter, policy)
}

// checkTopic applies Kafka's rules for a topic name.
func checkTopic(name string) error {
	switch {
	case name == "":
		return fmt.Errorf("must not be empty")
	case name == "." || name == "..":
		return fmt.Errorf("must not be %q", name)
	case len(name) > strategy.MaxTopicLength:
		return fmt.Errorf("must be at most %d characters, got %d", strategy.MaxTopicLength, len(name))
	}
	for i := 0; i < len(name); i++ {
		if !isTopicByte(name[i]) {
			return fmt.Errorf("may contain only [a-zA-Z0-9._-], got %q with %q at byte %d", name, name[i:i+1], i)
		}
	}
	return nil
}

// checkFragment applies the rule for topic-name suffixes.
func checkFragment(s string) error {
	if s == "" {
		return fmt.Errorf("must not be empty")
	}
	if len(s) >= strategy.MaxTopicLength {
		return fmt.Errorf("must be at most %d characters, got %d", strategy.MaxTopicLength-1, len(s))
	}
	for i := 0; i < len(s); i++ {
		if !isTopicByte(s[i]) {
			return fmt.Errorf("may contain only [a-zA-Z0-9._-], got %q with %q at byte %d", s, s[i:i+1], i)
		}
	}
	return nil
}
