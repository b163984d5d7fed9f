package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// FileVersion is the policy file format version this package reads and
// writes.
const FileVersion = 1

// File is a parsed policy file: defaults for every listener, and entries
// for listeners by main topic. The format, in YAML:
//
//	version: 1              # optional; 1 is the only version
//	defaults:               # optional; any setting but topic
//	  attempts: 4
//	  delay: 1s
//	listeners:              # optional; one entry per main topic
//	  - topic: orders       # required in an entry
//	    multiplier: 2
//	    maxDelay: 10s
//	    exclude: [validation, notfound]
//	    routes:
//	      - {suffix: -validation, error: validation}
//	    topicConfigs: {retention.ms: "604800000"}
//
// The keys are the Field keys, spelled as in struct tags. Durations are Go
// duration strings; lists are YAML sequences; routes are mappings with
// suffix and error; topicConfigs is a mapping of strings. The JSON Schema
// docs/policy.schema.json describes the same format for editors.
//
// A File is immutable and safe for concurrent use.
type File struct {
	// Name is the file's name as given to Parse or Load; positions in
	// errors start with it.
	Name string
	// Defaults holds the defaults section; nil when the file has none.
	Defaults *Decl
	// Listeners holds the listener entries in file order; their topics
	// are unique.
	Listeners []*Decl
}

// Load reads and parses the policy file at path (see Parse).
func Load(path string) (*File, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	return Parse(path, data)
}

// Parse parses a policy file; name is used in positions. It is strict:
// unknown keys, values of the wrong type, invalid values, duplicate keys or
// topics, YAML merge keys ("<<") and a second YAML document are errors.
// Every problem is reported, joined, as an *Error at file:line:column with
// the key's path and the rule; Parse never panics. An empty file is valid
// and declares nothing.
//
// Parse checks each value on its own; rules that involve several fields
// (maxDelay >= delay, include or exclude, named errors being registered,
// the topic plan) are checked when the declarations are resolved
// (File.Specs, Resolve, listener.Register).
func Parse(name string, data []byte) (*File, error) {
	f := &File{Name: name}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := decodeNode(name, dec, &doc); err != nil {
		if errors.Is(err, io.EOF) {
			return f, nil
		}
		return nil, err
	}
	var extra yaml.Node
	switch err := decodeNode(name, dec, &extra); {
	case errors.Is(err, io.EOF):
	case err != nil:
		return nil, err
	default:
		return nil, joinErrors([]*Error{errorf(Pos{File: name, Line: extra.Line, Column: extra.Column}, "",
			"a policy file holds one YAML document; found a second")})
	}
	p := &fileParser{file: name, f: f}
	p.root(&doc)
	if err := joinErrors(p.errs); err != nil {
		return nil, err
	}
	return f, nil
}

// decodeNode reads the next document. Only the YAML library runs under
// recover, turning a panic of its own on hostile input into an error; a
// panic in kretry's code is a bug and must stay visible (to the fuzzers,
// above all). io.EOF is returned as is.
func decodeNode(name string, dec *yaml.Decoder, n *yaml.Node) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = joinErrors([]*Error{errorf(Pos{File: name}, "", "unreadable YAML: %v", r)})
		}
	}()
	if err := dec.Decode(n); err != nil {
		if errors.Is(err, io.EOF) {
			return err
		}
		return syntaxError(name, err)
	}
	return nil
}

var yamlLine = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)

// syntaxError turns the YAML library's error into an *Error at its line.
func syntaxError(name string, err error) error {
	pos, msg := Pos{File: name}, err.Error()
	if m := yamlLine.FindStringSubmatch(msg); m != nil {
		pos.Line, _ = strconv.Atoi(m[1])
		msg = m[2]
	}
	return joinErrors([]*Error{errorf(pos, "", "invalid YAML: %s", msg)})
}

// Listener returns the entry for topic, or nil.
func (f *File) Listener(topic string) *Decl {
	for _, d := range f.Listeners {
		if d.topic == topic {
			return d
		}
	}
	return nil
}

// Topics returns the topics of the listener entries in file order.
func (f *File) Topics() []string {
	ts := make([]string, len(f.Listeners))
	for i, d := range f.Listeners {
		ts[i] = d.topic
	}
	return ts
}

// Layers returns the file's declarations for topic in increasing
// precedence: the defaults, then topic's entry, leaving out the ones the
// file does not have.
func (f *File) Layers(topic string) []*Decl {
	var ds []*Decl
	if f.Defaults != nil {
		ds = append(ds, f.Defaults)
	}
	if d := f.Listener(topic); d != nil {
		ds = append(ds, d)
	}
	return ds
}

// ErrorNames returns the error names the file uses in include, exclude and
// routes, sorted, each once: the names the program's Registry must hold.
func (f *File) ErrorNames() []string {
	set := map[string]bool{}
	for _, d := range append([]*Decl{f.Defaults}, f.Listeners...) {
		if d != nil {
			for _, n := range d.ErrorNames() {
				set[n] = true
			}
		}
	}
	return slices.Sorted(maps.Keys(set))
}

// Specs resolves every listener entry of the file, in file order, over
// the built-in defaults: DefaultSpec(topic) < defaults < the entry.
// Named errors are looked up in reg. It returns every problem found,
// joined.
func (f *File) Specs(reg *Registry) ([]Spec, error) {
	specs := make([]Spec, 0, len(f.Listeners))
	var errs []error
	for _, d := range f.Listeners {
		s, err := Resolve(DefaultSpec(d.topic), reg, f.Layers(d.topic)...)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		specs = append(specs, s)
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return specs, nil
}

// fileParser walks a document, collecting errors.
type fileParser struct {
	file string
	f    *File
	errs []*Error
}

func (p *fileParser) pos(n *yaml.Node) Pos {
	return Pos{File: p.file, Line: n.Line, Column: n.Column}
}

func (p *fileParser) fail(n *yaml.Node, key, format string, args ...any) {
	p.errs = append(p.errs, errorf(p.pos(n), key, format, args...))
}

// deref follows aliases.
func deref(n *yaml.Node) *yaml.Node {
	for i := 0; n != nil && n.Kind == yaml.AliasNode && i < 100; i++ {
		n = n.Alias
	}
	return n
}

// shape names a node's kind for messages.
func shape(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		if n.Tag == "!!null" {
			return "null"
		}
		return describe(atom{text: n.Value, node: n})
	}
	return "an unexpected YAML node"
}

// pairs yields a mapping's key/value pairs, reporting non-string keys,
// merge keys and duplicates; path is the mapping's key path.
func (p *fileParser) pairs(m *yaml.Node, path string, each func(key string, k, v *yaml.Node)) {
	seen := map[string]*yaml.Node{}
	for i := 0; i+1 < len(m.Content); i += 2 {
		k, v := deref(m.Content[i]), deref(m.Content[i+1])
		if k == nil || v == nil {
			continue
		}
		switch {
		case k.Kind != yaml.ScalarNode:
			p.fail(k, path, "keys must be strings, got %s", shape(k))
			continue
		case k.Tag == "!!merge":
			p.fail(k, path, "YAML merge keys (<<) are not supported; repeat the settings or put them in defaults")
			continue
		}
		if first, dup := seen[k.Value]; dup {
			p.fail(k, join(path, k.Value), "%w key %q (first at line %d)", ErrDuplicate, k.Value, first.Line)
			continue
		}
		seen[k.Value] = k
		each(k.Value, k, v)
	}
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

var fileKeys = []string{"version", "defaults", "listeners"}

func (p *fileParser) root(doc *yaml.Node) {
	if doc.Kind != yaml.DocumentNode || len(doc.Content) == 0 {
		return
	}
	root := deref(doc.Content[0])
	if root == nil || root.Kind == yaml.ScalarNode && root.Tag == "!!null" {
		return // an empty document
	}
	if root.Kind != yaml.MappingNode {
		p.fail(root, "", "want a mapping with version, defaults and listeners, got %s", shape(root))
		return
	}
	topics := map[string]*yaml.Node{}
	p.pairs(root, "", func(key string, k, v *yaml.Node) {
		switch key {
		case "version":
			var n int64
			if v.Kind != yaml.ScalarNode || v.Tag != "!!int" || v.Decode(&n) != nil || n != FileVersion {
				p.fail(v, key, "must be %d, got %s", FileVersion, shape(v))
			}
		case "defaults":
			if v.Kind == yaml.ScalarNode && v.Tag == "!!null" {
				return // "defaults:" with nothing under it
			}
			if d, ok := p.decl(v, "defaults", false); ok {
				p.f.Defaults = d
			}
		case "listeners":
			if v.Kind == yaml.ScalarNode && v.Tag == "!!null" {
				return
			}
			if v.Kind != yaml.SequenceNode {
				p.fail(v, key, "want a list of listener entries, got %s", shape(v))
				return
			}
			for i, e := range v.Content {
				e = deref(e)
				path := fmt.Sprintf("listeners[%d]", i)
				d, ok := p.decl(e, path, true)
				if d == nil || d.topic == "" {
					continue
				}
				if first, dup := topics[d.topic]; dup {
					p.errs = append(p.errs, errorf(d.tpos, path+".topic", "%w topic %q: listener entries must have distinct topics (first at line %d)", ErrDuplicate, d.topic, first.Line))
					continue
				}
				topics[d.topic] = e
				if ok {
					p.f.Listeners = append(p.f.Listeners, d)
				}
			}
		default:
			if _, isField := fieldByKey[key]; isField {
				p.fail(k, key, "%w at the top level; settings go under defaults: or in a listeners entry", ErrUnknownKey)
				return
			}
			p.fail(k, key, "%w", unknownKey(key, fileKeys))
		}
	})
}

// decl parses a defaults section (entry false) or a listener entry. ok is
// false when it has problems; d is still returned (when the node is a
// mapping) so that its topic can be checked for duplicates.
func (p *fileParser) decl(m *yaml.Node, path string, entry bool) (d *Decl, ok bool) {
	if m == nil {
		return nil, false
	}
	if m.Kind != yaml.MappingNode {
		want := "a mapping of settings"
		if entry {
			want = "a mapping with topic and settings"
		}
		p.fail(m, path, "want %s, got %s", want, shape(m))
		return nil, false
	}
	d = &Decl{pos: p.pos(m), prefix: path + ".", vals: map[string]value{}}
	before := len(p.errs)
	p.pairs(m, path, func(key string, k, v *yaml.Node) {
		kp := path + "." + key
		f, ok := fieldByKey[key]
		switch {
		case key == keyDLT:
			p.fail(k, kp, "%w: dlt belongs in a DLT handler field's struct tag, not in a policy file", ErrUnknownKey)
			return
		case !ok:
			p.fail(k, kp, "%w", unknownKey(key, allKeys()))
			return
		case key == "topic" && !entry:
			p.fail(k, kp, "not allowed in defaults; give each listener its own entry under listeners")
			return
		}
		r, ok := p.raw(f, v, kp)
		if !ok {
			return
		}
		val, errs := f.parse(r)
		if len(errs) > 0 {
			p.errs = append(p.errs, errs...)
			return
		}
		if key == "topic" {
			d.topic, d.tpos = val.str, val.pos
			return
		}
		d.vals[key] = val
	})
	if entry && d.topic == "" && len(p.errs) == before {
		p.fail(m, path, "topic must be set in a listener entry")
	}
	return d, len(p.errs) == before
}

// raw shapes a node into f's raw value, checking its YAML kind.
func (p *fileParser) raw(f *field, v *yaml.Node, path string) (raw, bool) {
	r := raw{path: path, pos: p.pos(v)}
	scalar := func(n *yaml.Node) (atom, bool) {
		n = deref(n)
		if n == nil || n.Kind != yaml.ScalarNode {
			if n != nil {
				p.fail(n, path, "want a scalar, got %s", shape(n))
			}
			return atom{}, false
		}
		return atom{text: n.Value, pos: p.pos(n), node: n}, true
	}
	switch f.kind {
	case kDurations, kNames:
		if v.Kind != yaml.SequenceNode {
			p.fail(v, path, "want a list (e.g. [%s]), got %s", example(f), shape(v))
			return r, false
		}
		ok := true
		for i, it := range v.Content {
			it = deref(it)
			if it == nil || it.Kind != yaml.ScalarNode {
				if it != nil {
					p.fail(it, fmt.Sprintf("%s[%d]", path, i), "want a scalar, got %s", shape(it))
				}
				ok = false
				continue
			}
			r.items = append(r.items, atom{text: it.Value, pos: p.pos(it), node: it})
		}
		return r, ok
	case kRoutes:
		if v.Kind != yaml.SequenceNode {
			p.fail(v, path, "want a list of {suffix, error} mappings, got %s", shape(v))
			return r, false
		}
		ok := true
		for i, it := range v.Content {
			it = deref(it)
			ip := fmt.Sprintf("%s[%d]", path, i)
			if it == nil || it.Kind != yaml.MappingNode {
				if it != nil {
					p.fail(it, ip, "want a mapping with suffix and error, got %s", shape(it))
				}
				ok = false
				continue
			}
			var pr pair
			var haveSuffix, haveError bool
			p.pairs(it, ip, func(key string, k, val *yaml.Node) {
				a, good := scalar(val)
				switch key {
				case "suffix":
					pr.key, haveSuffix = a, good
				case "error":
					pr.val, haveError = a, good
				default:
					p.fail(k, ip+"."+key, "%w", unknownKey(key, []string{"suffix", "error"}))
					ok = false
				}
			})
			if !haveSuffix || !haveError {
				if !haveSuffix {
					p.fail(it, ip+".suffix", "must be set")
				}
				if !haveError {
					p.fail(it, ip+".error", "must be set")
				}
				ok = false
				continue
			}
			r.pairs = append(r.pairs, pr)
		}
		return r, ok
	case kConfigs:
		if v.Kind != yaml.MappingNode {
			p.fail(v, path, "want a mapping of config names to values, got %s", shape(v))
			return r, false
		}
		ok := true
		p.pairs(v, path, func(key string, k, val *yaml.Node) {
			a, good := scalar(val)
			if !good {
				ok = false
				return
			}
			r.pairs = append(r.pairs, pair{key: atom{text: key, pos: p.pos(k), node: k}, val: a})
		})
		return r, ok
	}
	a, ok := scalar(v)
	if ok && f.kind == kString && (a.node.Tag == "!!int" || a.node.Tag == "!!float" || a.node.Tag == "!!bool") {
		// topic: 123 or group: true would be read as text otherwise; the
		// schema says string, and so does the loader.
		p.fail(a.node, path, "want a string, got %s %q; quote it", strings.TrimPrefix(a.node.Tag, "!!"), a.text)
		return r, false
	}
	r.one = a
	return r, ok
}

// example shows a list's items for messages.
func example(f *field) string {
	if f.kind == kDurations {
		return "1s, 5s"
	}
	return "validation, notfound"
}
