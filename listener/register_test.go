package listener_test

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/kretry/kretry/config"
	"github.com/kretry/kretry/dlt"
	"github.com/kretry/kretry/listener"
	"github.com/kretry/kretry/retry"
	"github.com/kretry/kretry/strategy"
)

// offlineSeeds for tests that build listeners without running them: New and
// Register connect to nothing.
var offlineSeeds = []string{"127.0.0.1:1"}

var (
	errRegValidation = errors.New("validation failed")
	errRegNotFound   = errors.New("not found")
	errRegTimeout    = errors.New("timeout")
	errRegAuth       = errors.New("unauthorized")

	mValidation = strategy.Is("validation", errRegValidation)
	mNotFound   = strategy.Is("notfound", errRegNotFound)
	mTimeout    = strategy.Is("timeout", errRegTimeout)
	mAuth       = strategy.Is("auth", errRegAuth)
)

func namedErrors(t testing.TB) *config.Registry {
	t.Helper()
	reg, err := config.NewRegistry(mValidation, mNotFound, mTimeout, mAuth)
	if err != nil {
		t.Fatal(err)
	}
	return reg
}

var nopHandler = listener.HandlerFunc(func(context.Context, *kgo.Record) error { return nil })

var regNopBatch = listener.BatchHandlerFunc(func(context.Context, []*kgo.Record) error { return nil })

// regBuild makes the listener of topic for h, a Handler (with New) or a
// BatchHandler (with NewBatch).
func regBuild(topic string, h any, opts ...listener.Opt) (*listener.Listener, error) {
	if b, ok := h.(listener.BatchHandler); ok {
		return listener.NewBatch(offlineSeeds, topic, b, opts...)
	}
	return listener.New(offlineSeeds, topic, h.(listener.Handler), opts...)
}

var nopDLTHandler = dlt.HandlerFunc(func(context.Context, *kgo.Record, retry.State) error { return nil })

// tf is one field of a struct built at run time, so tests can vary tags.
type tf struct {
	name  string
	tag   string // the kretry tag's value
	value any
}

// tagged returns a pointer to a new struct with the given fields, each
// tagged `kretry:"<tag>"` and set to its value.
func tagged(fields ...tf) any {
	sfs := make([]reflect.StructField, len(fields))
	for i, f := range fields {
		sfs[i] = reflect.StructField{Name: f.name, Type: reflect.TypeOf(f.value),
			Tag: reflect.StructTag(fmt.Sprintf(`kretry:%q`, f.tag))}
	}
	v := reflect.New(reflect.StructOf(sfs)).Elem()
	for i, f := range fields {
		v.Field(i).Set(reflect.ValueOf(f.value))
	}
	return v.Addr().Interface()
}

func parsePolicy(t testing.TB, doc string) *config.File {
	t.Helper()
	f, err := config.Parse("policy.yaml", []byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// one registers handlers and returns the only listener.
func registerOne(t testing.TB, handlers any, opts ...listener.RegisterOpt) *listener.Listener {
	t.Helper()
	ls, err := listener.Register(offlineSeeds, handlers, opts...)
	if err != nil {
		t.Fatal(err)
	}
	if len(ls) != 1 {
		t.Fatalf("Register returned %d listeners, want 1", len(ls))
	}
	return ls[0]
}

// surfaces builds the listener of topic three ways: Go options to New, a
// struct tag, and a policy file over a tag that names only the topic.
func surfaces(t *testing.T, topic string, opts []listener.Opt, tag, doc string) (fromGo, fromTag, fromFile *listener.Listener) {
	t.Helper()
	return surfacesFor(t, topic, nopHandler, opts, tag, doc)
}

// surfacesFor is surfaces for h, a Handler or a BatchHandler (built with
// NewBatch).
func surfacesFor(t *testing.T, topic string, h any, opts []listener.Opt, tag, doc string) (fromGo, fromTag, fromFile *listener.Listener) {
	t.Helper()
	var err error
	fromGo, err = regBuild(topic, h, opts...)
	if err != nil {
		t.Fatalf("Go options: %v", err)
	}
	fromTag = registerOne(t, tagged(tf{"Handler", tag, h}), listener.NamedErrors(namedErrors(t)))
	fromFile = registerOne(t, tagged(tf{"Handler", "topic=" + topic, h}),
		listener.NamedErrors(namedErrors(t)), listener.PolicyFile(parsePolicy(t, doc)))
	return fromGo, fromTag, fromFile
}

func sameListener(t *testing.T, what string, got, want *listener.Listener) {
	t.Helper()
	if g, w := got.Spec(), want.Spec(); !g.Equal(w) {
		t.Errorf("%s: spec differs\n got  %+v\n want %+v", what, g, w)
	}
	if !got.Policy().Equal(want.Policy()) {
		t.Errorf("%s: Policy() differs", what)
	}
	if got.Group() != want.Group() {
		t.Errorf("%s: Group() = %q, want %q", what, got.Group(), want.Group())
	}
	if g, w := got.Plan(), want.Plan(); !reflect.DeepEqual(g, w) {
		t.Errorf("%s: plan differs\n got\n%s want\n%s", what, g, w)
	}
}

// The same policies stated through Go options, struct tags and policy
// files resolve to equal policies and equal topic plans.
func TestParityOfTheThreeSurfaces(t *testing.T) {
	tests := []struct {
		name string
		opts []listener.Opt
		tag  string
		yaml string
		plan string // the plan the three must give
	}{
		{"defaults", nil, "topic=orders", "listeners: [{topic: orders}]",
			"orders\t-\norders-retry\t1s\norders-dlt\t-\n"},
		{"the issue's example",
			[]listener.Opt{listener.Group("billing"), listener.Attempts(4),
				listener.Backoff(strategy.ExponentialBackoff(time.Second, 2, 10*time.Second)),
				listener.Exclude(mValidation, mNotFound)},
			"topic=orders,group=billing,attempts=4,delay=1s,multiplier=2,maxDelay=10s,exclude=validation|notfound",
			`
listeners:
  - topic: orders
    group: billing
    attempts: 4
    delay: 1s
    multiplier: 2
    maxDelay: 10s
    exclude: [validation, notfound]
`, "orders\t-\norders-retry-1000\t1s\norders-retry-2000\t2s\norders-retry-4000\t4s\norders-dlt\t-\n"},
		{"capped exponential, one topic per retry, by index",
			[]listener.Opt{listener.Attempts(6),
				listener.Backoff(strategy.ExponentialBackoff(time.Second, 2, 4*time.Second)),
				listener.Naming(strategy.Naming{Suffixing: strategy.SuffixByIndex, SameInterval: strategy.MultipleTopics})},
			"topic=orders,attempts=6,delay=1s,multiplier=2,maxDelay=4s,suffixing=index,sameInterval=multiple",
			"listeners: [{topic: orders, attempts: 6, delay: 1s, multiplier: 2, maxDelay: 4s, suffixing: index, sameInterval: multiple}]",
			"orders\t-\norders-retry-0\t1s\norders-retry-1\t2s\norders-retry-2\t4s\norders-retry-3\t4s\norders-retry-4\t4s\norders-dlt\t-\n"},
		{"list backoff with jitter, an allow-list and routes",
			[]listener.Opt{listener.Attempts(5),
				listener.Backoff(strategy.Backoff{Kind: strategy.List, Delays: []time.Duration{time.Second, 10 * time.Second, time.Minute}, Jitter: 0.2}),
				listener.Include(mTimeout, mAuth),
				listener.Route("-validation", mValidation), listener.Route("-auth", mAuth)},
			"topic=orders,attempts=5,delays=1s|10s|1m,jitter=0.2,include=timeout|auth,routes=-validation:validation|-auth:auth",
			`
listeners:
  - topic: orders
    attempts: 5
    delays: [1s, 10s, 1m]
    jitter: 0.2
    include: [timeout, auth]
    routes:
      - {suffix: -validation, error: validation}
      - {suffix: -auth, error: auth}
`, "orders\t-\norders-retry-1000\t1s\norders-retry-10000\t10s\norders-retry-60000\t1m0s\norders-dlt\t-\norders-validation-dlt\t-\norders-auth-dlt\t-\n"},
		{"naming, DLT strategy and handler, budgets",
			[]listener.Opt{listener.Attempts(2), listener.Backoff(strategy.FixedBackoff(250 * time.Millisecond)),
				listener.Naming(strategy.Naming{RetrySuffix: "-again", DLTSuffix: "-dead"}),
				listener.DLTStrategy(retry.DLTFailOnError), listener.DLTHandlerAttempts(5), listener.DLTHandlerBackoff(2 * time.Second),
				listener.Timeout(time.Hour), listener.MaxErrorBytes(512)},
			"topic=orders,attempts=2,delay=250ms,retrySuffix=-again,dltSuffix=-dead,dltStrategy=fail-on-error,dltHandlerAttempts=5,dltHandlerBackoff=2s,timeout=1h,maxErrorBytes=512",
			`
defaults:
  retrySuffix: -again
  dltSuffix: -dead
listeners:
  - topic: orders
    attempts: 2
    delay: 250ms
    dltStrategy: fail-on-error
    dltHandlerAttempts: 5
    dltHandlerBackoff: 2s
    timeout: 1h
    maxErrorBytes: 512
`, "orders\t-\norders-again\t250ms\norders-dead\t-\n"},
		{"no DLT, topic creation settings",
			[]listener.Opt{listener.DLTStrategy(retry.NoDLT), listener.CreateTopics(false), listener.TopicPartitions(6),
				listener.ReplicationFactor(3), listener.TopicConfigs(map[string]*string{"retention.ms": new("86400000"), "cleanup.policy": new("compact,delete")})},
			`topic=orders,dltStrategy=none,createTopics=false,partitions=6,replicationFactor=3,topicConfigs=retention.ms:86400000|cleanup.policy:compact\,delete`,
			`
listeners:
  - topic: orders
    dltStrategy: none
    createTopics: false
    partitions: 6
    replicationFactor: 3
    topicConfigs: {retention.ms: 86400000, cleanup.policy: "compact,delete"}
`, "orders\t-\norders-retry\t1s\norders-dlt\t-\n"},
		{"exactly once",
			[]listener.Opt{listener.Group("billing"), listener.ExactlyOnce("billing-0"), listener.TransactionInterval(250 * time.Millisecond)},
			"topic=orders,group=billing,exactlyOnce=true,transactionalId=billing-0,transactionInterval=250ms",
			`
defaults:
  transactionInterval: 250ms
listeners:
  - topic: orders
    group: billing
    exactlyOnce: true
    transactionalId: billing-0
`, "orders\t-\norders-retry\t1s\norders-dlt\t-\n"},
		{"key order",
			[]listener.Opt{listener.KeyOrder(), listener.FollowersOnDeadLetter(config.FollowersDeadLetter), listener.MaxKeysInRetry(500)},
			"topic=orders,keyOrder=true,followersOnDeadLetter=dead-letter,maxKeysInRetry=500",
			`
defaults:
  followersOnDeadLetter: dead-letter
listeners:
  - topic: orders
    keyOrder: true
    maxKeysInRetry: 500
`, "orders\t-\norders-retry\t1s\norders-dlt\t-\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fromGo, fromTag, fromFile := surfaces(t, "orders", tt.opts, tt.tag, tt.yaml)
			sameListener(t, "struct tag vs Go options", fromTag, fromGo)
			sameListener(t, "policy file vs Go options", fromFile, fromGo)
			if got := fromGo.Plan().String(); got != tt.plan {
				t.Errorf("plan:\n%s\nwant:\n%s", got, tt.plan)
			}
			// The policy file alone, as the CLI resolves it, agrees too.
			specs, err := parsePolicy(t, tt.yaml).Specs(namedErrors(t))
			if err != nil {
				t.Fatal(err)
			}
			if !specs[0].Equal(fromGo.Spec()) {
				t.Errorf("File.Specs differs from Go options:\n got  %+v\n want %+v", specs[0], fromGo.Spec())
			}
		})
	}
}

// leafPaths lists the settable leaves of a struct type, following nested
// structs (retry.Policy, strategy.Backoff, …).
func leafPaths(t reflect.Type, prefix string) []string {
	var out []string
	for i := range t.NumField() {
		f := t.Field(i)
		if f.IsExported() && f.Type.Kind() == reflect.Struct {
			out = append(out, leafPaths(f.Type, prefix+f.Name+".")...)
		} else if f.IsExported() {
			out = append(out, prefix+f.Name)
		}
	}
	return out
}

func valueAt(v any, path string) any {
	rv := reflect.ValueOf(v)
	for _, name := range strings.Split(path, ".") {
		rv = rv.FieldByName(name)
	}
	return rv.Interface()
}

// reach says how each surface sets one field to a non-default value.
// The fields of config.Spec.Batch apply to batch handlers: their rows are
// checked with one. Those of config.Spec.ExactlyOnce apply in exactly-once
// mode: their Go options are checked after ExactlyOnce(""); those of
// config.Spec.KeyOrder with key order, after KeyOrder().
type reach struct {
	opt  listener.Opt // nil for Topic, which is New's argument
	tag  string       // tag settings after topic=orders
	yaml string       // YAML settings of the entry, after topic: orders
}

// reachable must hold a row for every leaf field of config.Spec — every
// field of retry.Policy among them. A new policy field without a Go option,
// a tag key and a YAML key fails TestEveryPolicyFieldReachable.
var reachable = map[string]reach{
	"Topic":                      {},
	"Group":                      {listener.Group("billing"), "group=billing", "group: billing"},
	"Policy.Attempts":            {listener.Attempts(7), "attempts=7", "attempts: 7"},
	"Policy.Backoff.Kind":        {listener.Backoff(strategy.ExponentialBackoff(0, 3, 0)), "backoff=exponential,multiplier=3", "backoff: exponential\n    multiplier: 3"},
	"Policy.Backoff.Delay":       {listener.Backoff(strategy.FixedBackoff(2 * time.Second)), "delay=2s", "delay: 2s"},
	"Policy.Backoff.Multiplier":  {listener.Backoff(strategy.ExponentialBackoff(0, 1.5, 0)), "multiplier=1.5", "multiplier: 1.5"},
	"Policy.Backoff.MaxDelay":    {listener.Backoff(strategy.ExponentialBackoff(0, 2, 10*time.Second)), "multiplier=2,maxDelay=10s", "multiplier: 2\n    maxDelay: 10s"},
	"Policy.Backoff.Jitter":      {listener.Backoff(strategy.Backoff{Jitter: 0.2}), "jitter=0.2", "jitter: 0.2"},
	"Policy.Backoff.Delays":      {listener.Backoff(strategy.ListBackoff(time.Second, 2*time.Second)), "delays=1s|2s", "delays: [1s, 2s]"},
	"Policy.Naming.RetrySuffix":  {listener.Naming(strategy.Naming{RetrySuffix: "-again"}), "retrySuffix=-again", "retrySuffix: -again"},
	"Policy.Naming.DLTSuffix":    {listener.Naming(strategy.Naming{DLTSuffix: "-dead"}), "dltSuffix=-dead", "dltSuffix: -dead"},
	"Policy.Naming.Suffixing":    {listener.Naming(strategy.Naming{Suffixing: strategy.SuffixByIndex}), "suffixing=index", "suffixing: index"},
	"Policy.Naming.SameInterval": {listener.Naming(strategy.Naming{SameInterval: strategy.MultipleTopics}), "sameInterval=multiple", "sameInterval: multiple"},
	"Policy.Naming.GroupTopics":  {listener.Naming(strategy.Naming{GroupTopics: true}), "groupTopics=true", "groupTopics: true"},
	"Policy.Classifier.Include":  {listener.Include(mTimeout, mAuth), "include=timeout|auth", "include: [timeout, auth]"},
	"Policy.Classifier.Exclude":  {listener.Exclude(mValidation), "exclude=validation", "exclude: [validation]"},
	"Policy.Classifier.Routes":   {listener.Route("-v", mValidation), "routes=-v:validation", "routes: [{suffix: -v, error: validation}]"},
	"Policy.Timeout":             {listener.Timeout(time.Hour), "timeout=1h", "timeout: 1h"},
	"Policy.MaxErrorBytes":       {listener.MaxErrorBytes(512), "maxErrorBytes=512", "maxErrorBytes: 512"},
	"Policy.DLT":                 {listener.DLTStrategy(retry.NoDLT), "dltStrategy=none", "dltStrategy: none"},
	"Policy.DLTHandlerAttempts":  {listener.DLTHandlerAttempts(9), "dltHandlerAttempts=9", "dltHandlerAttempts: 9"},
	"Policy.DLTHandlerBackoff":   {listener.DLTHandlerBackoff(5 * time.Second), "dltHandlerBackoff=5s", "dltHandlerBackoff: 5s"},
	"Topics.Create":              {listener.CreateTopics(false), "createTopics=false", "createTopics: false"},
	"Topics.Partitions":          {listener.TopicPartitions(12), "partitions=12", "partitions: 12"},
	"Topics.ReplicationFactor":   {listener.ReplicationFactor(3), "replicationFactor=3", "replicationFactor: 3"},
	"Topics.Configs":             {listener.TopicConfigs(map[string]*string{"retention.ms": new("1000")}), "topicConfigs=retention.ms:1000", "topicConfigs: {retention.ms: \"1000\"}"},
	"Batch.Size":                 {listener.BatchSize(500), "batch=500", "batch: 500"},
	"Batch.Wait":                 {listener.BatchWait(20 * time.Millisecond), "batchWait=20ms", "batchWait: 20ms"},

	// Exactly-once settings: their Go options are checked after ExactlyOnce("").
	"ExactlyOnce.Enabled":         {listener.ExactlyOnce(""), "exactlyOnce=true", "exactlyOnce: true"},
	"ExactlyOnce.TransactionalID": {listener.ExactlyOnce("orders-0"), "exactlyOnce=true,transactionalId=orders-0", "exactlyOnce: true\n    transactionalId: orders-0"},
	"ExactlyOnce.Interval":        {listener.TransactionInterval(time.Second), "exactlyOnce=true,transactionInterval=1s", "exactlyOnce: true\n    transactionInterval: 1s"},

	// Key-order settings: their Go options are checked after KeyOrder().
	"KeyOrder.Enabled":      {listener.KeyOrder(), "keyOrder=true", "keyOrder: true"},
	"KeyOrder.OnDeadLetter": {listener.FollowersOnDeadLetter(config.FollowersDeadLetter), "keyOrder=true,followersOnDeadLetter=dead-letter", "keyOrder: true\n    followersOnDeadLetter: dead-letter"},
	"KeyOrder.MaxKeys":      {listener.MaxKeysInRetry(500), "keyOrder=true,maxKeysInRetry=500", "keyOrder: true\n    maxKeysInRetry: 500"},
}

// Every field of config.Spec (so every field of retry.Policy) can be set
// from Go options, struct tags and policy files, and the three agree; the
// batch settings for a batch handler (NewBatch, a BatchHandler field).
func TestEveryPolicyFieldReachable(t *testing.T) {
	leaves := leafPaths(reflect.TypeFor[config.Spec](), "")
	if len(leaves) < 20 {
		t.Fatalf("found only %d fields in config.Spec: %v", len(leaves), leaves)
	}
	for _, path := range leaves {
		t.Run(path, func(t *testing.T) {
			r, ok := reachable[path]
			if !ok {
				t.Fatalf("%s cannot be set from the three surfaces: add a Go option, a tag and YAML key (config/fields.go), docs, and a row to reachable", path)
			}
			if path == "Topic" {
				l := registerOne(t, tagged(tf{"Handler", "topic=payments", nopHandler}), listener.PolicyFile(parsePolicy(t, "listeners: [{topic: payments}]")))
				g, err := listener.New(offlineSeeds, "payments", nopHandler)
				if err != nil {
					t.Fatal(err)
				}
				if l.Spec().Topic != "payments" || g.Spec().Topic != "payments" {
					t.Errorf("topic not reached: %q, %q", l.Spec().Topic, g.Spec().Topic)
				}
				return
			}
			var h any = nopHandler
			opts := []listener.Opt{r.opt}
			switch {
			case strings.HasPrefix(path, "Batch."):
				h = regNopBatch
			case strings.HasPrefix(path, "ExactlyOnce."):
				opts = []listener.Opt{listener.ExactlyOnce(""), r.opt}
			case strings.HasPrefix(path, "KeyOrder."):
				opts = []listener.Opt{listener.KeyOrder(), r.opt}
			}
			fromGo, fromTag, fromFile := surfacesFor(t, "orders", h, opts,
				"topic=orders,"+r.tag, "listeners:\n  - topic: orders\n    "+r.yaml+"\n")
			sameListener(t, "struct tag vs Go options", fromTag, fromGo)
			sameListener(t, "policy file vs Go options", fromFile, fromGo)
			def := config.DefaultSpec("orders")
			got := fromGo.Spec()
			got.Policy = got.Policy.Normalize()
			if reflect.DeepEqual(valueAt(got, path), valueAt(def, path)) {
				t.Errorf("%s = %v, the default: the row does not reach the field", path, valueAt(got, path))
			}
		})
	}
	for path := range reachable {
		found := false
		for _, l := range leaves {
			found = found || l == path
		}
		if !found {
			t.Errorf("reachable has a row for %s, which is not a field of config.Spec", path)
		}
	}
}

// Go options < struct tag < each policy file's defaults < its entry.
func TestRegisterPrecedence(t *testing.T) {
	handlers := tagged(tf{"Orders", "topic=orders,attempts=3,timeout=2m,delay=2s", nopHandler})
	code := []listener.RegisterOpt{listener.Group("from-code"), listener.Attempts(2), listener.Timeout(time.Minute), listener.MaxErrorBytes(100)}
	file1 := parsePolicy(t, "defaults:\n  attempts: 4\n  partitions: 4\nlisteners:\n  - topic: orders\n    attempts: 5\n    multiplier: 2\n")
	file2 := parsePolicy(t, "defaults:\n  partitions: 8\n")

	l := registerOne(t, handlers, code...)
	if p := l.Policy(); p.Attempts != 3 || p.Timeout != 2*time.Minute || p.MaxErrorBytes != 100 || l.Group() != "from-code" {
		t.Errorf("tag over options: %+v, group %q", p, l.Group())
	}
	l = registerOne(t, handlers, append(code, listener.PolicyFile(file1))...)
	if p, s := l.Policy(), l.Spec(); p.Attempts != 5 || p.Timeout != 2*time.Minute || s.Topics.Partitions != 4 ||
		!p.Backoff.Equal(strategy.ExponentialBackoff(2*time.Second, 2, 0)) {
		t.Errorf("file over tag: %+v, %+v", p, s.Topics)
	}
	l = registerOne(t, handlers, append(code, listener.PolicyFile(file1), listener.PolicyFile(file2))...)
	if s := l.Spec(); s.Topics.Partitions != 8 || s.Policy.Attempts != 5 {
		t.Errorf("second file over first: partitions %d, attempts %d", s.Topics.Partitions, s.Policy.Attempts)
	}
	// Options given to Register apply below the tag whatever their order.
	l = registerOne(t, handlers, listener.PolicyFile(file2), listener.Attempts(9))
	if l.Policy().Attempts != 3 {
		t.Errorf("an option after PolicyFile overrode the tag: attempts %d", l.Policy().Attempts)
	}
}
