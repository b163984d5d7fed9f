package config

import (
	"errors"
	"strconv"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/kretry/kretry/strategy"
)

// anyNames returns a registry holding every name in names, matching
// nothing.
func anyNames(t testing.TB, names []string) *Registry {
	ms := make([]strategy.Matcher, len(names))
	for i, n := range names {
		ms[i] = strategy.Matcher{Name: n, Match: func(error) bool { return false }}
	}
	reg, err := NewRegistry(ms...)
	if err != nil {
		t.Fatalf("names from a parsed declaration do not register: %v", err)
	}
	return reg
}

// checkErrors fails unless every problem in err is an *Error.
func checkErrors(t *testing.T, err error, where func(Pos) bool) {
	t.Helper()
	var errs []error
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		errs = j.Unwrap()
	} else {
		errs = []error{err}
	}
	for _, e := range errs {
		var ce *Error
		if !errors.As(e, &ce) || !where(ce.Pos) {
			t.Fatalf("problem %q is not an *Error at the expected place (%#v)", e, e)
		}
	}
}

// roundTrip checks that specs survive MarshalYAML and Parse.
func roundTrip(t *testing.T, reg *Registry, specs []Spec) {
	t.Helper()
	out, err := MarshalYAML(specs...)
	if err != nil {
		t.Fatalf("MarshalYAML: %v", err)
	}
	f, err := Parse("out.yaml", out)
	if err != nil {
		t.Fatalf("Parse(MarshalYAML): %v\n%s", err, out)
	}
	back, err := f.Specs(reg)
	if err != nil {
		t.Fatalf("Specs(MarshalYAML): %v\n%s", err, out)
	}
	if len(back) != len(specs) {
		t.Fatalf("round trip: %d specs, want %d", len(back), len(specs))
	}
	for i := range specs {
		if !back[i].Equal(specs[i]) {
			t.Fatalf("round trip changed the spec:\n got  %+v\n want %+v\n%s", back[i], specs[i], out)
		}
	}
}

// FuzzParseTag: no tag makes ParseTag or Resolve panic; problems are
// *Errors at the field; and a tag that parses means the same as the policy
// file that states its values (the parity of the two surfaces), and its
// resolved spec survives MarshalYAML.
func FuzzParseTag(f *testing.F) {
	for _, s := range []string{
		"topic=orders,group=billing,attempts=4,delay=1s,multiplier=2,maxDelay=10s,exclude=validation|notfound",
		"dlt=orders",
		"topic=orders,delays=1s|5s|30s,jitter=0.5",
		`topic=orders,routes=-validation:validation,topicConfigs=cleanup.policy:compact\,delete`,
		"topic=orders,backoff=exponential,multiplier=1.5,suffixing=index,sameInterval=multiple",
		"topic=orders,createTopics=false,partitions=3,replicationFactor=-1,dltStrategy=none",
		`topic=orders,group=a\=b\|c`,
		"topic=orders,attempts=0,delay=-1s",
		"topic=orders,batch=500,batchWait=20ms",
		"topic=orders,batch=-1,batchWait=-1s",
		"topic=orders,exactlyOnce=true,transactionalId=orders-0,transactionInterval=250ms",
		"topic=orders,transactionalId=orders-0,transactionInterval=-1s",
		"topic=orders,keyOrder=true,followersOnDeadLetter=dead-letter,maxKeysInRetry=500",
		"topic=orders,followersOnDeadLetter=drop,maxKeysInRetry=-1,keyOrder=true,exactlyOnce=true",
		"topic=orders,,=",
		`topic=orders,group=\`,
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, tag string) {
		d, err := ParseTag(tag, tagAt)
		if err != nil {
			if d != nil {
				t.Fatal("ParseTag returned a declaration and an error")
			}
			checkErrors(t, err, func(p Pos) bool { return p == tagAt })
			return
		}
		if d.DLT() != "" {
			return
		}
		reg := anyNames(t, d.ErrorNames())
		fromTag, tagErr := Resolve(DefaultSpec(d.Topic()), reg, d)
		if tagErr != nil {
			checkErrors(t, tagErr, func(p Pos) bool { return p == tagAt || p.IsZero() })
		}

		doc := declYAML(t, d)
		file, err := Parse("tag.yaml", doc)
		if err != nil {
			t.Fatalf("the tag's values do not parse as a policy file: %v\n%s", err, doc)
		}
		specs, fileErr := file.Specs(reg)
		if (tagErr == nil) != (fileErr == nil) {
			t.Fatalf("tag and file disagree:\ntag: %v\nfile: %v\n%s", tagErr, fileErr, doc)
		}
		if tagErr != nil {
			return
		}
		if !specs[0].Equal(fromTag) {
			t.Fatalf("tag and file resolve differently:\ntag  %+v\nfile %+v\n%s", fromTag, specs[0], doc)
		}
		roundTrip(t, reg, specs)
	})
}

// FuzzParse: no input makes Parse or File.Specs panic; problems are
// *Errors in the file; and a file that resolves survives MarshalYAML and
// MarshalJSON.
func FuzzParse(f *testing.F) {
	for _, s := range []string{
		"",
		"version: 1\ndefaults:\n  attempts: 4\n  delay: 1s\nlisteners:\n  - topic: orders\n    multiplier: 2\n    maxDelay: 10s\n    exclude: [validation, notfound]\n",
		"listeners:\n  - topic: orders\n    delays: [1s, 5s]\n    routes: [{suffix: -v, error: validation}]\n    topicConfigs: {retention.ms: 1000}\n",
		"listeners:\n  - &a\n    topic: orders\n    exclude: &x [a, b]\n  - topic: payments\n    include: *x\n",
		"defaults: &d\n  attempts: 3\nlisteners:\n  - topic: orders\n    <<: *d\n",
		"listeners:\n  - topic: orders\n    attempts: 0\n    maxDelay: 1s\n    delay: 2s\n    multiplier: 2\n",
		"{version: 1, listeners: [{topic: orders, backoff: list, delays: [1s]}]}",
		"a: &a [*a]\n",
		"version: 1\n---\nversion: 1\n",
		"listeners: [{topic: orders, group: \"\\u00e9\", jitter: 1.0, createTopics: true}]\n",
		"defaults:\n  batchWait: 20ms\nlisteners:\n  - topic: orders\n    batch: 1\n  - topic: payments\n    batch: 0\n",
		"defaults:\n  transactionInterval: 1s\nlisteners:\n  - topic: orders\n    exactlyOnce: true\n    transactionalId: orders-0\n  - topic: payments\n    transactionalId: \"\\u0007\"\n",
		"defaults:\n  followersOnDeadLetter: dead-letter\nlisteners:\n  - topic: orders\n    keyOrder: true\n    maxKeysInRetry: 0\n  - topic: payments\n    maxKeysInRetry: 5\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		file, err := Parse("fuzz.yaml", data)
		if err != nil {
			if file != nil {
				t.Fatal("Parse returned a file and an error")
			}
			checkErrors(t, err, func(p Pos) bool { return p.File == "fuzz.yaml" })
			return
		}
		reg := anyNames(t, file.ErrorNames())
		specs, err := file.Specs(reg)
		if err != nil {
			checkErrors(t, err, func(p Pos) bool { return p.File == "fuzz.yaml" })
			return
		}
		roundTrip(t, reg, specs)
		out, err := MarshalJSON(specs...)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := Parse("out.json", out); err != nil {
			t.Fatalf("Parse(MarshalJSON): %v\n%s", err, out)
		}
	})
}

// declYAML writes the values of a parsed tag as a policy file with one
// listener entry, using the values as parsed (not as written).
func declYAML(t *testing.T, d *Decl) []byte {
	str := func(s string) *yaml.Node { return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: s} }
	entry := &yaml.Node{Kind: yaml.MappingNode}
	add := func(key string, v *yaml.Node) { entry.Content = append(entry.Content, str(key), v) }
	add("topic", str(d.Topic()))
	for _, f := range fields {
		v, ok := d.vals[f.key]
		if !ok {
			continue
		}
		var n *yaml.Node
		switch f.kind {
		case kString, kEnum:
			n = str(v.text)
		case kInt:
			n = &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!int", Value: strconv.FormatInt(v.num, 10)}
		case kFloat:
			n = &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!float", Value: strconv.FormatFloat(v.flt, 'g', -1, 64)}
		case kDuration:
			n = str(v.dur.String())
		case kBool:
			n = &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!bool", Value: strconv.FormatBool(v.num != 0)}
		case kDurations:
			n = &yaml.Node{Kind: yaml.SequenceNode}
			for _, x := range v.durs {
				n.Content = append(n.Content, str(x.String()))
			}
		case kNames:
			n = &yaml.Node{Kind: yaml.SequenceNode}
			for _, x := range v.names {
				n.Content = append(n.Content, str(x.name))
			}
		case kRoutes:
			n = &yaml.Node{Kind: yaml.SequenceNode}
			for _, r := range v.routes {
				n.Content = append(n.Content, &yaml.Node{Kind: yaml.MappingNode, Content: []*yaml.Node{
					str("suffix"), str(r.suffix), str("error"), str(r.name)}})
			}
		case kConfigs:
			n = &yaml.Node{Kind: yaml.MappingNode}
			for k, x := range v.kv {
				n.Content = append(n.Content, str(k), str(*x))
			}
		}
		add(f.key, n)
	}
	doc := &yaml.Node{Kind: yaml.MappingNode, Content: []*yaml.Node{
		str("listeners"), {Kind: yaml.SequenceNode, Content: []*yaml.Node{entry}}}}
	out, err := yaml.Marshal(doc)
	if err != nil {
		t.Fatalf("writing the tag's values as YAML: %v", err)
	}
	return out
}
