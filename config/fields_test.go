package config

import (
	"encoding/json"
	"fmt"
	"os"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/kretry/kretry/retry"
	"github.com/kretry/kretry/strategy"
)

// leafPaths lists the settable leaves of t: fields of nested structs are
// followed, everything else (numbers, strings, slices, maps) is a leaf.
func leafPaths(t reflect.Type, prefix string) []string {
	var out []string
	for i := range t.NumField() {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		path := prefix + f.Name
		if f.Type.Kind() == reflect.Struct {
			out = append(out, leafPaths(f.Type, path+".")...)
			continue
		}
		out = append(out, path)
	}
	return out
}

// fieldAt returns the value at a dotted path of v.
func fieldAt(v reflect.Value, path string) reflect.Value {
	for _, name := range strings.Split(path, ".") {
		v = v.FieldByName(name)
	}
	return v
}

// Every leaf of Spec — so every field of retry.Policy, strategy.Backoff,
// strategy.Naming and strategy.Classifier — is set by exactly one key of
// the table, and every key sets a leaf. A new field without a key fails.
func TestFieldsCoverSpec(t *testing.T) {
	leaves := leafPaths(reflect.TypeFor[Spec](), "")
	var paths []string
	for _, f := range fields {
		paths = append(paths, f.path)
	}
	for _, l := range leaves {
		if !slices.Contains(paths, l) {
			t.Errorf("Spec field %s has no key in the fields table: add a row (tag and YAML key) in fields.go, a Go option, and docs", l)
		}
	}
	for _, f := range fields {
		if !slices.Contains(leaves, f.path) {
			t.Errorf("key %q sets %s, which is not a Spec field", f.key, f.path)
		}
	}
	if got := len(Fields()); got != len(fields) {
		t.Errorf("Fields() has %d entries, want %d", got, len(fields))
	}
}

// samples gives each key a non-default value in both syntaxes; context
// holds the other keys the value needs (multiplier for maxDelay).
var samples = map[string]struct{ tag, yaml string }{
	"topic":                 {"payments", "payments"},
	"group":                 {"billing", "billing"},
	"attempts":              {"7", "7"},
	"backoff":               {"exponential,multiplier=3", "exponential\n    multiplier: 3"},
	"delay":                 {"2s", "2s"},
	"multiplier":            {"1.5", "1.5"},
	"maxDelay":              {"10s,multiplier=2", "10s\n    multiplier: 2"},
	"jitter":                {"0.2", "0.2"},
	"delays":                {"1s|2s", "[1s, 2s]"},
	"retrySuffix":           {"-again", "-again"},
	"dltSuffix":             {"-dead", "-dead"},
	"suffixing":             {"index", "index"},
	"sameInterval":          {"multiple", "multiple"},
	"groupTopics":           {"true", "true"},
	"include":               {"timeout|auth", "[timeout, auth]"},
	"exclude":               {"validation", "[validation]"},
	"routes":                {"-v:validation|-a:auth", "[{suffix: -v, error: validation}, {suffix: -a, error: auth}]"},
	"timeout":               {"1h", "1h"},
	"maxErrorBytes":         {"512", "512"},
	"dltStrategy":           {"none", "none"},
	"dltHandlerAttempts":    {"9", "9"},
	"dltHandlerBackoff":     {"5s", "5s"},
	"createTopics":          {"false", "false"},
	"partitions":            {"12", "12"},
	"replicationFactor":     {"3", "3"},
	"topicConfigs":          {"retention.ms:1000|cleanup.policy:compact", "{retention.ms: 1000, cleanup.policy: compact}"},
	"batch":                 {"500", "500"},
	"batchWait":             {"20ms", "20ms"},
	"exactlyOnce":           {"true", "true"},
	"transactionalId":       {"orders-0,exactlyOnce=true", "orders-0\n    exactlyOnce: true"},
	"transactionInterval":   {"1s,exactlyOnce=true", "1s\n    exactlyOnce: true"},
	"keyOrder":              {"true", "true"},
	"followersOnDeadLetter": {"dead-letter,keyOrder=true", "dead-letter\n    keyOrder: true"},
	"maxKeysInRetry":        {"500,keyOrder=true", "500\n    keyOrder: true"},
}

// Every key reaches its field from a struct tag and from a policy file,
// and both give the same spec.
func TestEveryFieldFromTagAndFile(t *testing.T) {
	reg := testRegistry(t)
	for _, f := range fields {
		t.Run(f.key, func(t *testing.T) {
			smp, ok := samples[f.key]
			if !ok {
				t.Fatalf("no sample value for key %q: add one to samples", f.key)
			}
			topic := "orders"
			tag, doc := "topic=orders,"+f.key+"="+smp.tag, "listeners:\n  - topic: orders\n    "+f.key+": "+smp.yaml+"\n"
			if f.key == "topic" {
				topic = smp.tag
				tag, doc = "topic="+smp.tag, "listeners:\n  - topic: "+smp.yaml+"\n"
			}
			fromTag, err := resolveTag(t, reg, tag)
			if err != nil {
				t.Fatalf("tag %q: %v", tag, err)
			}
			fromFile, err := resolveYAML(t, reg, doc)
			if err != nil {
				t.Fatalf("file:\n%s%v", doc, err)
			}
			mustEqual(t, fromFile, fromTag)
			def := DefaultSpec(topic)
			if f.key == "topic" {
				def = DefaultSpec("orders")
			}
			got, base := fieldAt(reflect.ValueOf(fromTag), f.path), fieldAt(reflect.ValueOf(def), f.path)
			if reflect.DeepEqual(got.Interface(), base.Interface()) {
				t.Errorf("%s = %v, the default: the sample does not reach the field", f.path, got)
			}
		})
	}
}

// docs/configuration.md has a table row for every key, and
// docs/policy.schema.json a property for every key, with the enums the
// parser accepts.
func TestDocsAndSchemaListEveryKey(t *testing.T) {
	doc, err := os.ReadFile("../docs/configuration.md")
	if err != nil {
		t.Fatal(err)
	}
	rowKey := regexp.MustCompile("(?m)^\\| `([A-Za-z]+)` \\|")
	var documented []string
	for _, m := range rowKey.FindAllStringSubmatch(string(doc), -1) {
		documented = append(documented, m[1])
	}
	for _, f := range fields {
		if !slices.Contains(documented, f.key) {
			t.Errorf("docs/configuration.md has no table row for %q", f.key)
		}
	}

	raw, err := os.ReadFile("../docs/policy.schema.json")
	if err != nil {
		t.Fatal(err)
	}
	var schema struct {
		Properties map[string]json.RawMessage `json:"properties"`
		Defs       map[string]struct {
			Properties map[string]struct {
				Enum []string `json:"enum"`
			} `json:"properties"`
			Required []string `json:"required"`
		} `json:"$defs"`
	}
	if err := json.Unmarshal(raw, &schema); err != nil {
		t.Fatalf("docs/policy.schema.json: %v", err)
	}
	for _, k := range fileKeys {
		if _, ok := schema.Properties[k]; !ok {
			t.Errorf("schema: top-level property %q missing", k)
		}
	}
	entry, defaults := schema.Defs["listener"], schema.Defs["defaults"]
	for _, f := range fields {
		if _, ok := entry.Properties[f.key]; !ok {
			t.Errorf("schema: $defs.listener has no property %q", f.key)
		}
		_, inDefaults := defaults.Properties[f.key]
		if inDefaults == (f.key == "topic") {
			t.Errorf("schema: $defs.defaults property %q: present %v", f.key, inDefaults)
		}
	}
	if len(entry.Properties) != len(fields) {
		t.Errorf("schema: $defs.listener has %d properties, want %d", len(entry.Properties), len(fields))
	}
	if !slices.Equal(entry.Required, []string{"topic"}) {
		t.Errorf("schema: $defs.listener requires %v, want [topic]", entry.Required)
	}
	enums := map[string][]string{
		"backoff":      names3[strategy.BackoffKind](),
		"suffixing":    names3[strategy.Suffixing](),
		"sameInterval": names3[strategy.SameInterval](),
		"dltStrategy":  names3[retry.DLTStrategy](),
	}
	// followersOnDeadLetter is text with a rule of its own: the schema's
	// enum is exactly what the rule accepts.
	if got, want := entry.Properties["followersOnDeadLetter"].Enum, []string{FollowersRelease, FollowersDeadLetter}; !slices.Equal(got, want) {
		t.Errorf("schema: followersOnDeadLetter enum %v, want %v", got, want)
	}
	for _, g := range entry.Properties["followersOnDeadLetter"].Enum {
		if err := CheckFollowersOnDeadLetter(g); err != nil {
			t.Errorf("schema: followersOnDeadLetter enum has %q, which the rule rejects: %v", g, err)
		}
	}
	for key, want := range enums {
		got := entry.Properties[key].Enum
		for _, w := range want {
			if !slices.Contains(got, w) {
				t.Errorf("schema: %s enum %v lacks %q", key, got, w)
			}
		}
		for _, g := range got {
			if _, err := fieldByKey[key].enum(g); err != nil {
				t.Errorf("schema: %s enum has %q, which the parser rejects", key, g)
			}
		}
	}
}

// names3 lists the names of an enum's first values, as MarshalText writes
// them.
func names3[E interface {
	~int
	MarshalText() ([]byte, error)
}]() []string {
	var out []string
	for i := range 10 {
		b, err := E(i).MarshalText()
		if err != nil {
			break
		}
		out = append(out, string(b))
	}
	return out
}

var _ = fmt.Sprint
