package config

import (
	"errors"
	"testing"
	"time"

	"github.com/kretry/kretry/retry"
	"github.com/kretry/kretry/strategy"
)

// The tag from the issue resolves to Spring Kafka's documented example
// with a cap, a group and two excluded errors.
func TestParseTagIssueExample(t *testing.T) {
	reg := testRegistry(t)
	got, err := resolveTag(t, reg, "topic=orders,group=billing,attempts=4,delay=1s,multiplier=2,maxDelay=10s,exclude=validation|notfound")
	if err != nil {
		t.Fatal(err)
	}
	want := spec(reg, func(s *Spec, m func(string) strategy.Matcher) {
		s.Group = "billing"
		s.Policy.Attempts = 4
		s.Policy.Backoff = strategy.ExponentialBackoff(time.Second, 2, 10*time.Second)
		s.Policy.Classifier.Exclude = []strategy.Matcher{m("validation"), m("notfound")}
	})
	mustEqual(t, got, want)
	p, err := got.Plan()
	if err != nil {
		t.Fatal(err)
	}
	if got, want := p.String(), "orders\t-\norders-retry-1000\t1s\norders-retry-2000\t2s\norders-retry-4000\t4s\norders-dlt\t-\n"; got != want {
		t.Errorf("plan:\n%s\nwant:\n%s", got, want)
	}
}

func TestParseTagValues(t *testing.T) {
	reg := testRegistry(t)
	type edit = func(s *Spec, m func(string) strategy.Matcher)
	tests := []struct {
		name string
		tag  string
		edit edit
	}{
		{"topic only gives the defaults", "topic=orders", nil},
		{"spaces around keys, values and items", " topic = orders , attempts = 5 , exclude = validation | notfound ",
			func(s *Spec, m func(string) strategy.Matcher) {
				s.Policy.Attempts = 5
				s.Policy.Classifier.Exclude = []strategy.Matcher{m("validation"), m("notfound")}
			}},
		{"fixed delay", "topic=orders,delay=250ms", func(s *Spec, _ func(string) strategy.Matcher) {
			s.Policy.Backoff = strategy.FixedBackoff(250 * time.Millisecond)
		}},
		{"multiplier implies exponential", "topic=orders,multiplier=1.5", func(s *Spec, _ func(string) strategy.Matcher) {
			s.Policy.Backoff = strategy.ExponentialBackoff(time.Second, 1.5, 0)
		}},
		{"explicit exponential", "topic=orders,backoff=exponential,multiplier=3,delay=2s", func(s *Spec, _ func(string) strategy.Matcher) {
			s.Policy.Backoff = strategy.ExponentialBackoff(2*time.Second, 3, 0)
		}},
		{"delays imply list", "topic=orders,attempts=4,delays=1s|5s|30s", func(s *Spec, _ func(string) strategy.Matcher) {
			s.Policy.Attempts = 4
			s.Policy.Backoff = strategy.ListBackoff(time.Second, 5*time.Second, 30*time.Second)
		}},
		{"jitter", "topic=orders,jitter=0.25", func(s *Spec, _ func(string) strategy.Matcher) {
			s.Policy.Backoff.Jitter = 0.25
		}},
		{"naming", "topic=orders,retrySuffix=-again,dltSuffix=-dead,suffixing=index,sameInterval=multiple",
			func(s *Spec, _ func(string) strategy.Matcher) {
				s.Policy.Naming = strategy.Naming{RetrySuffix: "-again", DLTSuffix: "-dead", Suffixing: strategy.SuffixByIndex, SameInterval: strategy.MultipleTopics}
			}},
		{"Spring's enum names in any case", "topic=orders,suffixing=SUFFIX_WITH_INDEX_VALUE,sameInterval=Multiple_Topics,dltStrategy=NO_DLT",
			func(s *Spec, _ func(string) strategy.Matcher) {
				s.Policy.Naming.Suffixing = strategy.SuffixByIndex
				s.Policy.Naming.SameInterval = strategy.MultipleTopics
				s.Policy.DLT = retry.NoDLT
			}},
		{"include", "topic=orders,include=timeout", func(s *Spec, m func(string) strategy.Matcher) {
			s.Policy.Classifier.Include = []strategy.Matcher{m("timeout")}
		}},
		{"routes in order", "topic=orders,routes=-validation:validation|-auth:auth", func(s *Spec, m func(string) strategy.Matcher) {
			s.Policy.Classifier.Routes = []strategy.Route{{Suffix: "-validation", Matcher: m("validation")}, {Suffix: "-auth", Matcher: m("auth")}}
		}},
		{"empty list", "topic=orders,exclude=", nil},
		{"timeouts and DLT handler", "topic=orders,timeout=1m30s,maxErrorBytes=1024,dltStrategy=fail-on-error,dltHandlerAttempts=5,dltHandlerBackoff=250ms",
			func(s *Spec, _ func(string) strategy.Matcher) {
				s.Policy.Timeout = 90 * time.Second
				s.Policy.MaxErrorBytes = 1024
				s.Policy.DLT = retry.DLTFailOnError
				s.Policy.DLTHandlerAttempts = 5
				s.Policy.DLTHandlerBackoff = 250 * time.Millisecond
			}},
		{"topic creation", `topic=orders,createTopics=false,partitions=6,replicationFactor=3,topicConfigs=cleanup.policy:compact\,delete|retention.ms:60000`,
			func(s *Spec, _ func(string) strategy.Matcher) {
				s.Topics = TopicSettings{Create: false, Partitions: 6, ReplicationFactor: 3,
					Configs: map[string]*string{"cleanup.policy": new("compact,delete"), "retention.ms": new("60000")}}
			}},
		{"escapes", `topic=orders,group=a\=b\|c\:d\\e\,f`, func(s *Spec, _ func(string) strategy.Matcher) {
			s.Group = `a=b|c:d\e,f`
		}},
		{"a colon in a config value needs no escape after the first", `topic=orders,topicConfigs=x:a:b`,
			func(s *Spec, _ func(string) strategy.Matcher) {
				s.Topics.Configs = map[string]*string{"x": new("a:b")}
			}},
		{"an empty config value", `topic=orders,topicConfigs=x:`,
			func(s *Spec, _ func(string) strategy.Matcher) {
				s.Topics.Configs = map[string]*string{"x": new("")}
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := resolveTag(t, reg, tt.tag)
			if err != nil {
				t.Fatal(err)
			}
			mustEqual(t, got, spec(reg, tt.edit))
		})
	}
}

func TestParseTagDLTHandler(t *testing.T) {
	d, err := ParseTag(" dlt = orders ", tagAt)
	if err != nil {
		t.Fatal(err)
	}
	if d.DLT() != "orders" || d.Topic() != "" || d.Pos() != tagAt {
		t.Errorf("DLT() = %q, Topic() = %q, Pos() = %v", d.DLT(), d.Topic(), d.Pos())
	}
}

// Each error names the struct type, the field, the tag key and the rule;
// every problem of a tag is reported at once.
func TestParseTagErrors(t *testing.T) {
	const at = "main.Handlers.Orders (kretry tag): "
	tests := []struct {
		tag  string
		want []string
	}{
		{"", []string{at + "empty kretry tag; want topic=<topic> on a handler or dlt=<topic> on a DLT handler"}},
		{"attempts=4", []string{at + "topic: must be set on a handler field (or use dlt=<topic> on a DLT handler field)"}},
		{"topic=orders,attempts=-1,delay=-1s,atempts=3", []string{
			at + "attempts: must be >= 1 and <= 32767, or 0 for the default, got -1",
			at + "delay: must be >= 0, got -1s",
			at + `atempts: unknown key "atempts"; did you mean "attempts"?`,
		}},
		{"topic=orders,attempts=40000", []string{at + "attempts: must be >= 1 and <= 32767, or 0 for the default, got 40000"}},
		{"topic=orders,attempts=four", []string{at + `attempts: want an integer, got "four"`}},
		{"topic=orders,delay=1000", []string{at + `delay: want a duration such as 1s or 500ms, got "1000"`}},
		{"topic=orders,delay=1500us", []string{at + "delay: must be a whole number of milliseconds (topic names carry milliseconds), got 1.5ms"}},
		{"topic=orders,multiplier=1,maxDelay=10s", []string{at + "multiplier: must be > 1 for exponential backoff, got 1"}},
		{"topic=orders,multiplier=NaN", []string{at + "multiplier: must be > 1 for exponential backoff, got NaN"}},
		{"topic=orders,jitter=2", []string{at + "jitter: must be within [0, 1], got 2"}},
		{"topic=orders,suffixing=random", []string{at + `suffixing: want delay|index, got "random"`}},
		{"topic=orders,sameInterval=some", []string{at + `sameInterval: want single|multiple, got "some"`}},
		{"topic=orders,dltStrategy=loop", []string{at + `dltStrategy: want retry-on-error|fail-on-error|none, got "loop"`}},
		{"topic=orders,backoff=linear", []string{at + `backoff: want fixed|exponential|list, got "linear"`}},
		{"topic=orders,createTopics=yes", []string{at + `createTopics: want true or false, got "yes"`}},
		{"topic=orders,partitions=-2", []string{at + "partitions: must be >= 1 and <= 2147483647, or -1 or 0 for the default, got -2"}},
		{"topic=orders,replicationFactor=40000", []string{at + "replicationFactor: must be >= 1 and <= 32767, or -1 or 0 for the default, got 40000"}},
		{"topic=orders,maxErrorBytes=10", []string{at + "maxErrorBytes: must be >= 64 and <= 2147483647, or 0 for the default, got 10"}},
		{"topic=orders,dltHandlerAttempts=-1", []string{at + "dltHandlerAttempts: must be >= 1 and <= 2147483647, or 0 for the default, got -1"}},
		{"topic=orders,timeout=-1s,dltHandlerBackoff=-1ms", []string{
			at + "timeout: must be >= 0, got -1s",
			at + "dltHandlerBackoff: must be >= 0, got -1ms",
		}},
		{"topic=orders/v2", []string{at + `topic: may contain only [a-zA-Z0-9._-], got "orders/v2" with "/" at byte 6`}},
		{"topic=..", []string{at + `topic: must not be ".."`}},
		{"topic=orders,retrySuffix=_r etry", []string{at + `retrySuffix: may contain only [a-zA-Z0-9._-], got "_r etry" with " " at byte 2`}},
		{"topic=orders,topic=payments", []string{at + `topic: duplicate key "topic"`}},
		{"topic=orders,,attempts=3", []string{at + `empty setting between commas in "topic=orders,,attempts=3"`}},
		{"topic=orders,attempts", []string{at + `setting "attempts" has no "="; want key=value`}},
		{"topic=orders,attempts=", []string{at + "attempts: must not be empty; want an integer"}},
		{"topic=orders,exclude=a||b", []string{at + `exclude: empty item 1 in "a||b"`}},
		{"topic=orders,exclude=validation|validation", []string{at + `exclude[1]: duplicate error name "validation", also exclude[0]`}},
		{"topic=orders,exclude=bad name", []string{at + `exclude[0]: error name may contain only [A-Za-z0-9._/-], got "bad name" with " " at byte 3`}},
		{"topic=orders,routes=validation", []string{at + `routes: item "validation" has no ":"; want suffix:name, as in -validation:validation`}},
		{"topic=orders,routes=-v:validation|-v:auth", []string{at + `routes[1].suffix: duplicate route suffix "-v", also routes[0]`}},
		{"topic=orders,routes=-a:auth|-b:auth", []string{at + `routes[1].error: duplicate error name "auth", also routes[0]`}},
		{"topic=orders,topicConfigs=retention.ms", []string{at + `topicConfigs: item "retention.ms" has no ":"; want name:value, as in retention.ms:86400000`}},
		{"topic=orders,topicConfigs=a:1|a:2", []string{at + `topicConfigs.a: duplicate topic config "a"`}},
		{`topic=orders,group=a\b`, []string{at + `group: "a\\b" has the unknown escape \b; a backslash escapes only \,|:=`}},
		{`topic=orders,group=ab\`, []string{at + `group: "ab\\" ends in a lone backslash`}},
		{"topic=orders,group=\xff", []string{at + `group: must be valid UTF-8, got "\xff"`}},
		{"topic=orders,delays=1s|x", []string{at + `delays[1]: want a duration such as 1s or 500ms, got "x"`}},
		{"topic=orders,delays=", []string{at + "delays: must list at least one delay"}},
		{"dlt=orders,attempts=3", []string{at + `attempts: a DLT handler's tag takes only dlt=<topic>; settings belong on the handler field of topic "orders"`}},
		{"dlt=", []string{at + "dlt: must not be empty"}},
	}
	for _, tt := range tests {
		t.Run(tt.tag, func(t *testing.T) {
			d, err := ParseTag(tt.tag, tagAt)
			if d != nil || err == nil {
				t.Fatalf("ParseTag(%q) = %v, nil; want an error", tt.tag, d)
			}
			wantLines(t, err, tt.want...)
			var e *Error
			if !errors.As(err, &e) || e.Pos != tagAt {
				t.Errorf("error is not an *Error at %v: %#v", tagAt, err)
			}
		})
	}
}

// Unknown keys and duplicates wrap their sentinels.
func TestParseTagSentinels(t *testing.T) {
	_, err := ParseTag("topic=orders,maxdelay=1s", tagAt)
	if !errors.Is(err, ErrUnknownKey) {
		t.Errorf("unknown key: %v does not wrap ErrUnknownKey", err)
	}
	_, err = ParseTag("topic=orders,delay=1s,delay=2s", tagAt)
	if !errors.Is(err, ErrDuplicate) {
		t.Errorf("duplicate key: %v does not wrap ErrDuplicate", err)
	}
}

func TestEscapeRoundTrip(t *testing.T) {
	for _, s := range []string{"", "plain", `a,b|c:d=e\f`, `\\`, `,,||`} {
		got, err := unescape(escape(s))
		if err != nil || got != s {
			t.Errorf("unescape(escape(%q)) = %q, %v", s, got, err)
		}
	}
}

func TestParseValues(t *testing.T) {
	reg := testRegistry(t)
	d, err := ParseValues(map[string]string{"topic": "orders", "attempts": "6", "delay": "1s", "multiplier": "2", "maxDelay": "4s", "exclude": "validation|notfound"}, Pos{File: "flags"})
	if err != nil {
		t.Fatal(err)
	}
	got, err := Resolve(DefaultSpec(d.Topic()), reg, d)
	if err != nil {
		t.Fatal(err)
	}
	want, err := resolveTag(t, reg, "topic=orders,attempts=6,delay=1s,multiplier=2,maxDelay=4s,exclude=validation|notfound")
	if err != nil {
		t.Fatal(err)
	}
	mustEqual(t, got, want)

	_, err = ParseValues(map[string]string{"topic": "orders", "atempts": "6", "delay": "x"}, Pos{File: "flags"})
	wantLines(t, err,
		`flags: atempts: unknown key "atempts"; did you mean "attempts"?`,
		`flags: delay: want a duration such as 1s or 500ms, got "x"`)
}
