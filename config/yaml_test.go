package config

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kretry/kretry/retry"
	"github.com/kretry/kretry/strategy"
)

func TestLoadAllKeys(t *testing.T) {
	reg := testRegistry(t)
	f, err := Load(filepath.Join("testdata", "all-keys.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(f.Topics(), ","); got != "orders,payments" {
		t.Errorf("Topics() = %s", got)
	}
	if got := strings.Join(f.ErrorNames(), ","); got != "auth,notfound,timeout,validation" {
		t.Errorf("ErrorNames() = %s", got)
	}
	specs, err := f.Specs(reg)
	if err != nil {
		t.Fatal(err)
	}
	orders := spec(reg, func(s *Spec, m func(string) strategy.Matcher) {
		s.Group = "billing"
		s.Policy = retry.Policy{
			Attempts:           4,
			Backoff:            strategy.Backoff{Kind: strategy.Exponential, Delay: time.Second, Multiplier: 2, MaxDelay: 10 * time.Second, Jitter: 0.1},
			Naming:             strategy.Naming{RetrySuffix: "-again", DLTSuffix: "-dead", Suffixing: strategy.SuffixByIndex, SameInterval: strategy.MultipleTopics, GroupTopics: true},
			Classifier:         strategy.Classifier{Exclude: []strategy.Matcher{m("validation"), m("notfound")}, Routes: []strategy.Route{{Suffix: "-auth", Matcher: m("auth")}}},
			Timeout:            10 * time.Minute,
			MaxErrorBytes:      1024,
			DLT:                retry.DLTFailOnError,
			DLTHandlerAttempts: 5,
			DLTHandlerBackoff:  250 * time.Millisecond,
		}
		s.Topics = TopicSettings{Create: false, Partitions: 6, ReplicationFactor: 3,
			Configs: map[string]*string{"retention.ms": new("604800000"), "cleanup.policy": new("compact,delete")}}
		s.Batch = BatchSettings{Size: 500, Wait: 20 * time.Millisecond}
		s.ExactlyOnce = ExactlyOnceSettings{Enabled: true, TransactionalID: "orders-0", Interval: 250 * time.Millisecond}
	})
	payments := DefaultSpec("payments")
	payments.Group = "payments"
	payments.Policy.Attempts = 5
	payments.Policy.Backoff = strategy.Backoff{Kind: strategy.List, Delays: []time.Duration{time.Second, 5 * time.Second, 30 * time.Second}, Jitter: 0.1}
	payments.Policy.Timeout = 10 * time.Minute
	payments.Batch.Wait = 5 * time.Millisecond
	payments.KeyOrder = KeyOrderSettings{Enabled: true, OnDeadLetter: FollowersDeadLetter, MaxKeys: 2000}
	m, _ := reg.Lookup("timeout")
	payments.Policy.Classifier.Include = []strategy.Matcher{m}
	if len(specs) != 2 {
		t.Fatalf("got %d specs", len(specs))
	}
	mustEqual(t, specs[0], orders)
	mustEqual(t, specs[1], payments)
}

func TestParseEmpty(t *testing.T) {
	for _, doc := range []string{"", "# nothing\n", "---\n", "{}\n", "version: 1\n", "defaults:\nlisteners:\n", "listeners: []\n"} {
		f, err := Parse("policy.yaml", []byte(doc))
		if err != nil {
			t.Errorf("Parse(%q): %v", doc, err)
			continue
		}
		if len(f.Listeners) != 0 || f.Defaults != nil {
			t.Errorf("Parse(%q) declares something: %+v", doc, f)
		}
	}
}

// Anchors and aliases work wherever a value goes.
func TestParseAliases(t *testing.T) {
	reg := testRegistry(t)
	f, err := Parse("policy.yaml", []byte(`
listeners:
  - &orders
    topic: orders
    exclude: &excluded [validation, notfound]
    delay: &d 2s
  - topic: payments
    exclude: *excluded
    delay: *d
`))
	if err != nil {
		t.Fatal(err)
	}
	specs, err := f.Specs(reg)
	if err != nil {
		t.Fatal(err)
	}
	if !specs[0].Policy.Equal(specs[1].Policy) || specs[1].Policy.Backoff.Delay != 2*time.Second {
		t.Errorf("aliased values differ: %+v vs %+v", specs[0].Policy, specs[1].Policy)
	}
}

// Errors name the file, line and column, the key's path and the rule;
// every problem of a file is reported at once.
func TestParseErrors(t *testing.T) {
	tests := []struct {
		name string
		doc  string
		want []string
	}{
		{"syntax", "listeners:\n  - topic: orders\n   attempts: 3\n", []string{
			"policy.yaml:1: invalid YAML: did not find expected '-' indicator"}},
		{"tabs", "defaults:\n\tattempts: 3\n", []string{
			"policy.yaml:2: invalid YAML: found character that cannot start any token"}},
		{"not a mapping", "- topic: orders\n", []string{
			"policy.yaml:1:1: want a mapping with version, defaults and listeners, got a list"}},
		{"unknown top-level key", "version: 1\nlistener:\n  - topic: orders\n", []string{
			`policy.yaml:2:1: listener: unknown key "listener"; did you mean "listeners"?`}},
		{"setting at the top level", "attempts: 3\n", []string{
			"policy.yaml:1:1: attempts: unknown key at the top level; settings go under defaults: or in a listeners entry"}},
		{"version", "version: 2\n", []string{"policy.yaml:1:10: version: must be 1, got integer 2"}},
		{"second document", "version: 1\n---\nversion: 1\n", []string{
			"policy.yaml:2:1: a policy file holds one YAML document; found a second"}},
		{"wrong types", `
defaults:
  attempts: "4"
  delay: 1000
  multiplier: two
  createTopics: yes
  exclude: validation
  routes: -validation
  topicConfigs: [a]
  jitter: [0.5]
`, []string{
			`policy.yaml:3:13: defaults.attempts: want an integer, got string "4"`,
			`policy.yaml:4:10: defaults.delay: want a duration such as 1s or 500ms, got integer 1000`,
			`policy.yaml:5:15: defaults.multiplier: want a number, got string "two"`,
			`policy.yaml:6:17: defaults.createTopics: want true or false, got string "yes"`,
			`policy.yaml:7:12: defaults.exclude: want a list (e.g. [validation, notfound]), got string "validation"`,
			`policy.yaml:8:11: defaults.routes: want a list of {suffix, error} mappings, got string "-validation"`,
			`policy.yaml:9:17: defaults.topicConfigs: want a mapping of config names to values, got a list`,
			`policy.yaml:10:11: defaults.jitter: want a scalar, got a list`,
		}},
		{"invalid values", `
listeners:
  - topic: orders
    attempts: -1
    delay: -1s
    maxDelay: 1500us
    suffixing: sideways
    dltStrategy: loop
    partitions: -2
    delays: [1s, later]
    attempts2: 3
`, []string{
			"policy.yaml:4:15: listeners[0].attempts: must be >= 1 and <= 32767, or 0 for the default, got -1",
			"policy.yaml:5:12: listeners[0].delay: must be >= 0, got -1s",
			"policy.yaml:6:15: listeners[0].maxDelay: must be a whole number of milliseconds (topic names carry milliseconds), got 1.5ms",
			`policy.yaml:7:16: listeners[0].suffixing: want delay|index, got string "sideways"`,
			`policy.yaml:8:18: listeners[0].dltStrategy: want retry-on-error|fail-on-error|none, got string "loop"`,
			"policy.yaml:9:17: listeners[0].partitions: must be >= 1 and <= 2147483647, or -1 or 0 for the default, got -2",
			`policy.yaml:10:18: listeners[0].delays[1]: want a duration such as 1s or 500ms, got string "later"`,
			`policy.yaml:11:5: listeners[0].attempts2: unknown key "attempts2"; did you mean "attempts"?`,
		}},
		{"nulls", "defaults:\n  delay:\n  group: ~\n", []string{
			"policy.yaml:2:9: defaults.delay: want a duration such as 1s or 500ms, got null",
			"policy.yaml:3:10: defaults.group: want a string, got null",
		}},
		{"unquoted non-strings", "defaults:\n  group: true\nlisteners:\n  - topic: 123\n", []string{
			`policy.yaml:2:10: defaults.group: want a string, got bool "true"; quote it`,
			`policy.yaml:4:12: listeners[0].topic: want a string, got int "123"; quote it`,
		}},
		{"topic rules", `
defaults:
  topic: orders
listeners:
  - attempts: 3
  - topic: orders
  - topic: orders
  - topic: bad topic
  - just a string
`, []string{
			"policy.yaml:3:3: defaults.topic: not allowed in defaults; give each listener its own entry under listeners",
			"policy.yaml:5:5: listeners[0]: topic must be set in a listener entry",
			`policy.yaml:7:12: listeners[2].topic: duplicate topic "orders": listener entries must have distinct topics (first at line 6)`,
			`policy.yaml:8:12: listeners[3].topic: may contain only [a-zA-Z0-9._-], got "bad topic" with " " at byte 3`,
			`policy.yaml:9:5: listeners[4]: want a mapping with topic and settings, got string "just a string"`,
		}},
		{"duplicate keys", "defaults:\n  attempts: 3\n  attempts: 4\n", []string{
			`policy.yaml:3:3: defaults.attempts: duplicate key "attempts" (first at line 2)`}},
		{"merge keys", "defaults: &d\n  attempts: 3\nlisteners:\n  - topic: orders\n    <<: *d\n", []string{
			"policy.yaml:5:5: listeners[0]: YAML merge keys (<<) are not supported; repeat the settings or put them in defaults"}},
		{"dlt key", "listeners:\n  - topic: orders\n    dlt: orders\n", []string{
			"policy.yaml:3:5: listeners[0].dlt: unknown key: dlt belongs in a DLT handler field's struct tag, not in a policy file"}},
		{"routes", `
listeners:
  - topic: orders
    routes:
      - suffix: -validation
      - error: auth
        name: x
      - {suffix: -v, error: auth}
      - {suffix: -v, error: validation}
      - [x]
`, []string{
			"policy.yaml:5:9: listeners[0].routes[0].error: must be set",
			`policy.yaml:7:9: listeners[0].routes[1].name: unknown key "name" (known keys: suffix, error)`,
			"policy.yaml:6:9: listeners[0].routes[1].suffix: must be set",
			"policy.yaml:10:9: listeners[0].routes[4]: want a mapping with suffix and error, got a list",
		}},
		{"route values", `
listeners:
  - topic: orders
    routes:
      - {suffix: -v, error: auth}
      - {suffix: -v, error: auth}
      - {suffix: "bad suffix", error: "bad name"}
`, []string{
			`policy.yaml:6:18: listeners[0].routes[1].suffix: duplicate route suffix "-v", also listeners[0].routes[0]`,
			`policy.yaml:6:29: listeners[0].routes[1].error: duplicate error name "auth", also listeners[0].routes[0]`,
			`policy.yaml:7:18: listeners[0].routes[2].suffix: may contain only [a-zA-Z0-9._-], got "bad suffix" with " " at byte 3`,
			`policy.yaml:7:39: listeners[0].routes[2].error: error name may contain only [A-Za-z0-9._/-], got "bad name" with " " at byte 3`,
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, err := Parse("policy.yaml", []byte(tt.doc))
			if f != nil || err == nil {
				t.Fatalf("Parse = %+v, nil; want errors", f)
			}
			wantLines(t, err, tt.want...)
			var e *Error
			if !errors.As(err, &e) || e.Pos.File != "policy.yaml" {
				t.Errorf("error is not an *Error in policy.yaml: %#v", err)
			}
		})
	}
}

func TestLoadMissingFile(t *testing.T) {
	_, err := Load(filepath.Join(t.TempDir(), "nope.yaml"))
	if !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Load of a missing file: %v, want os.ErrNotExist", err)
	}
}
