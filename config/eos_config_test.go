package config

import (
	"slices"
	"strings"
	"testing"
	"time"
)

// exactlyOnce, transactionalId and transactionInterval are settings like
// any other: tags and files set them, zero is the default, and Resolve
// returns them normalized.
func TestExactlyOnceSettings(t *testing.T) {
	if got := ExactlyOnceKeys(); !slices.Equal(got, []string{"exactlyOnce", "transactionalId", "transactionInterval"}) {
		t.Errorf("ExactlyOnceKeys() = %v", got)
	}
	if got := DefaultSpec("orders").ExactlyOnce; got != (ExactlyOnceSettings{Interval: DefaultTransactionInterval}) {
		t.Errorf("DefaultSpec: ExactlyOnce = %+v", got)
	}
	s, err := resolveTag(t, nil, "topic=orders,exactlyOnce=true,transactionalId=orders-0,transactionInterval=250ms")
	if err != nil {
		t.Fatal(err)
	}
	if want := (ExactlyOnceSettings{Enabled: true, TransactionalID: "orders-0", Interval: 250 * time.Millisecond}); s.ExactlyOnce != want {
		t.Errorf("tag: ExactlyOnce = %+v, want %+v", s.ExactlyOnce, want)
	}
	// transactionInterval=0s is the default, and the resolved spec says so.
	s, err = resolveTag(t, nil, "topic=orders,exactlyOnce=true,transactionInterval=0s")
	if err != nil {
		t.Fatal(err)
	}
	if want := (ExactlyOnceSettings{Enabled: true, Interval: DefaultTransactionInterval}); s.ExactlyOnce != want {
		t.Errorf("transactionInterval=0s: ExactlyOnce = %+v, want %+v", s.ExactlyOnce, want)
	}
	// A file's entry over its defaults over the tag, field by field.
	f := mustFile(t, "defaults:\n  exactlyOnce: true\n  transactionInterval: 1s\nlisteners:\n  - topic: orders\n    transactionalId: pod-0\n")
	s, err = Resolve(DefaultSpec("orders"), nil, append([]*Decl{mustTag(t, "topic=orders,transactionalId=x,exactlyOnce=true")}, f.Layers("orders")...)...)
	if err != nil {
		t.Fatal(err)
	}
	if want := (ExactlyOnceSettings{Enabled: true, TransactionalID: "pod-0", Interval: time.Second}); s.ExactlyOnce != want {
		t.Errorf("tag < defaults < entry: ExactlyOnce = %+v, want %+v", s.ExactlyOnce, want)
	}
}

// transactionalId and transactionInterval need exactlyOnce: set by a
// listener's own declaration without it, they are errors naming both keys
// and where exactlyOnce came from; from the layers every listener shares
// (a file's defaults, Go-side values) they are dropped for a listener that
// is not exactly once.
func TestExactlyOnceRule(t *testing.T) {
	testNeedsMode(t, needsMode{mode: "exactlyOnce", what: "exactly-once mode",
		keys: [2]string{"transactionalId", "transactionInterval"}, vals: [2]string{"pod-0", "1s"}, def1: "100ms",
		get:   func(s Spec) any { return s.ExactlyOnce },
		setGo: func(s *Spec) { s.ExactlyOnce = ExactlyOnceSettings{TransactionalID: "pod-0", Interval: time.Second} },
		want:  ExactlyOnceSettings{Enabled: true, TransactionalID: "pod-0", Interval: time.Second}})
}

// A bad exactly-once value is reported in the same words from a tag, a
// file and Go (a Spec's value, as listener options give it): the key and
// the rule, which are CheckTransactionalID's and the listener options'.
func TestExactlyOnceProblemsAlike(t *testing.T) {
	long := strings.Repeat("x", MaxTransactionalIDLength+1)
	tests := []struct {
		key, tag, yaml string
		col            string // of the value in the file
		goSpec         ExactlyOnceSettings
		rule           string
	}{
		{"transactionalId", `a\|b` + "\x07", `"a|b\a"`, "22", ExactlyOnceSettings{Enabled: true, TransactionalID: "a|b\x07"},
			`must not contain control characters, got "a|b\a" with U+0007 at byte 3`},
		{"transactionalId", long, long, "22", ExactlyOnceSettings{Enabled: true, TransactionalID: long},
			"must be at most 32767 bytes, got 32768"},
		{"transactionInterval", "-1s", "-1s", "26", ExactlyOnceSettings{Enabled: true, Interval: -time.Second},
			"must be >= 0, got -1s"},
	}
	for _, tt := range tests {
		t.Run(tt.key, func(t *testing.T) {
			base := DefaultSpec("orders")
			base.ExactlyOnce = tt.goSpec
			wantSameProblem(t, tt.key, tt.rule, "exactlyOnce=true,"+tt.key+"="+tt.tag, "exactlyOnce: true\n    "+tt.key+": "+tt.yaml, "4:"+tt.col, base)
			if got := CheckTransactionalID(tt.goSpec.TransactionalID); tt.key == "transactionalId" && (got == nil || got.Error() != tt.rule) {
				t.Errorf("CheckTransactionalID: %v, want %s", got, tt.rule)
			}
		})
	}
	if err := CheckTransactionalID(""); err != nil {
		t.Errorf(`CheckTransactionalID(""): %v, want nil (the derived default)`, err)
	}
}

// The exactly-once settings are written for an exactly-once listener only,
// its interval explicit; they read back.
func TestMarshalExactlyOnce(t *testing.T) {
	out, err := MarshalYAML(DefaultSpec("orders"))
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(out), "exactlyOnce") || strings.Contains(string(out), "transaction") {
		t.Errorf("default spec marshals exactly-once settings:\n%s", out)
	}
	s := DefaultSpec("orders")
	s.ExactlyOnce = ExactlyOnceSettings{Enabled: true, TransactionalID: "orders-0", Interval: 250 * time.Millisecond}
	derived := DefaultSpec("derived")
	derived.ExactlyOnce = ExactlyOnceSettings{Enabled: true}
	for name, marshal := range map[string]func(...Spec) ([]byte, error){"yaml": MarshalYAML, "json": MarshalJSON} {
		out, err := marshal(s, derived)
		if err != nil {
			t.Fatal(err)
		}
		for key, n := range map[string]int{"exactlyOnce": 2, "transactionalId": 1, "transactionInterval": 2} {
			if got := strings.Count(string(out), key); got != n {
				t.Errorf("%s: %s written %d times, want %d:\n%s", name, key, got, n, out)
			}
		}
	}
	roundTrip(t, nil, []Spec{s, derived})

	// A spec that is not exactly once but has an ID is written as it is,
	// so that reading it back reports the mistake.
	bad := DefaultSpec("orders")
	bad.ExactlyOnce.TransactionalID = "orders-0"
	wantReadBackError(t, bad, "transactionalId: applies only to exactly-once mode")
}

// wantReadBackError checks that s, marshaled and read back, gives an error
// that contains want.
func wantReadBackError(t *testing.T, s Spec, want string) {
	t.Helper()
	out, err := MarshalYAML(s)
	if err != nil {
		t.Fatal(err)
	}
	f, err := Parse("out.yaml", out)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Specs(nil); err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("reading back %+v: %v, want an error with %q", s, err, want)
	}
}
