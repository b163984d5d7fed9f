package config

import (
	"slices"
	"strings"
	"testing"
)

// keyOrder, followersOnDeadLetter and maxKeysInRetry are settings like any
// other: tags and files set them, zero is the default, and Resolve returns
// them normalized.
func TestKeyOrderSettings(t *testing.T) {
	if got := KeyOrderKeys(); !slices.Equal(got, []string{"keyOrder", "followersOnDeadLetter", "maxKeysInRetry"}) {
		t.Errorf("KeyOrderKeys() = %v", got)
	}
	def := KeyOrderSettings{OnDeadLetter: FollowersRelease, MaxKeys: DefaultMaxKeysInRetry}
	if got := DefaultSpec("orders").KeyOrder; got != def {
		t.Errorf("DefaultSpec: KeyOrder = %+v, want %+v", got, def)
	}
	s, err := resolveTag(t, nil, "topic=orders,keyOrder=true,followersOnDeadLetter=dead-letter,maxKeysInRetry=500")
	if err != nil {
		t.Fatal(err)
	}
	if want := (KeyOrderSettings{Enabled: true, OnDeadLetter: FollowersDeadLetter, MaxKeys: 500}); s.KeyOrder != want {
		t.Errorf("tag: KeyOrder = %+v, want %+v", s.KeyOrder, want)
	}
	// maxKeysInRetry=0 is the default, and the resolved spec says so.
	s, err = resolveTag(t, nil, "topic=orders,keyOrder=true,followersOnDeadLetter=release,maxKeysInRetry=0")
	if err != nil {
		t.Fatal(err)
	}
	if want := (KeyOrderSettings{Enabled: true, OnDeadLetter: FollowersRelease, MaxKeys: DefaultMaxKeysInRetry}); s.KeyOrder != want {
		t.Errorf("maxKeysInRetry=0: KeyOrder = %+v, want %+v", s.KeyOrder, want)
	}
	// A file's entry over its defaults over the tag, field by field.
	f := mustFile(t, "defaults:\n  keyOrder: true\n  maxKeysInRetry: 7\nlisteners:\n  - topic: orders\n    followersOnDeadLetter: dead-letter\n")
	s, err = Resolve(DefaultSpec("orders"), nil, append([]*Decl{mustTag(t, "topic=orders,maxKeysInRetry=3,keyOrder=false,followersOnDeadLetter=release")}, f.Layers("orders")...)...)
	if err != nil {
		t.Fatal(err)
	}
	if want := (KeyOrderSettings{Enabled: true, OnDeadLetter: FollowersDeadLetter, MaxKeys: 7}); s.KeyOrder != want {
		t.Errorf("tag < defaults < entry: KeyOrder = %+v, want %+v", s.KeyOrder, want)
	}
}

// followersOnDeadLetter and maxKeysInRetry need keyOrder: set by a
// listener's own declaration without it, they are errors naming both keys
// and where keyOrder came from; from the layers every listener shares (a
// file's defaults, Go-side values) they are dropped for a listener that is
// not key-ordered.
func TestKeyOrderRule(t *testing.T) {
	on := KeyOrderSettings{Enabled: true, OnDeadLetter: FollowersDeadLetter, MaxKeys: 9}
	testNeedsMode(t, needsMode{mode: "keyOrder", what: "key-ordered retries",
		keys: [2]string{"followersOnDeadLetter", "maxKeysInRetry"}, vals: [2]string{"dead-letter", "9"}, def1: "100000",
		get:   func(s Spec) any { return s.KeyOrder },
		setGo: func(s *Spec) { s.KeyOrder = KeyOrderSettings{OnDeadLetter: FollowersDeadLetter, MaxKeys: 9} },
		want:  on})
	// Go-side values are dropped even when invalid, as the exactly-once
	// settings' are.
	base := DefaultSpec("orders")
	base.KeyOrder = KeyOrderSettings{OnDeadLetter: "drop", MaxKeys: -1}
	s, err := Resolve(base, nil)
	if err != nil {
		t.Fatal(err)
	}
	if s.KeyOrder != DefaultSpec("orders").KeyOrder {
		t.Errorf("invalid Go-side values, not key-ordered: KeyOrder = %+v, want the defaults", s.KeyOrder)
	}
}

// keyOrder and exactlyOnce do not combine yet: the error is at the key a
// declaration set (keyOrder if both were) and says where the other came
// from, whichever layers set them.
func TestKeyOrderWithExactlyOnce(t *testing.T) {
	const rule = "key order does not work with exactly-once mode yet, but "
	const fix = "; set keyOrder or exactlyOnce to false"
	_, err := resolveTag(t, nil, "topic=orders,keyOrder=true,exactlyOnce=true")
	wantLines(t, err, tagAt.String()+": keyOrder: "+rule+"exactlyOnce is true"+fix)
	goKeyOrder := DefaultSpec("orders")
	goKeyOrder.KeyOrder.Enabled = true
	_, err = Resolve(goKeyOrder, nil, mustTag(t, "topic=orders,exactlyOnce=true"))
	wantLines(t, err, tagAt.String()+": exactlyOnce: "+rule+"keyOrder is true (from Go options or defaults)"+fix)
	_, err = resolveYAML(t, nil, "defaults:\n  exactlyOnce: true\nlisteners:\n  - topic: orders\n    keyOrder: true\n")
	wantLines(t, err, "policy.yaml:5:15: listeners[0].keyOrder: "+rule+"exactlyOnce is true (from policy.yaml:2:16)"+fix)
	both := goKeyOrder
	both.ExactlyOnce.Enabled = true
	_, err = Resolve(both, nil)
	wantLines(t, err, "Go options or defaults: keyOrder: "+rule+"exactlyOnce is true"+fix)
	// Either turned off by a higher layer: fine.
	if _, err := Resolve(both, nil, mustTag(t, "topic=orders,exactlyOnce=false")); err != nil {
		t.Errorf("exactlyOnce=false over both in Go: %v", err)
	}
}

// A bad key-order value is reported in the same words from a tag, a file
// and Go (a Spec's value, as listener options give it): the key and the
// rule, which are CheckFollowersOnDeadLetter's and the listener options'.
func TestKeyOrderProblemsAlike(t *testing.T) {
	tests := []struct {
		key, value string
		col        string // of the value in the file
		goSpec     KeyOrderSettings
		rule       string
	}{
		{"followersOnDeadLetter", "drop", "28", KeyOrderSettings{Enabled: true, OnDeadLetter: "drop"},
			`must be "release" or "dead-letter", got "drop"`},
		{"followersOnDeadLetter", "Release", "28", KeyOrderSettings{Enabled: true, OnDeadLetter: "Release"},
			`must be "release" or "dead-letter", got "Release"`},
		{"maxKeysInRetry", "-1", "21", KeyOrderSettings{Enabled: true, MaxKeys: -1},
			"must be >= 1, or 0 for the default, got -1"},
	}
	for _, tt := range tests {
		t.Run(tt.key+"="+tt.value, func(t *testing.T) {
			base := DefaultSpec("orders")
			base.KeyOrder = tt.goSpec
			wantSameProblem(t, tt.key, tt.rule, "keyOrder=true,"+tt.key+"="+tt.value, "keyOrder: true\n    "+tt.key+": "+tt.value, "4:"+tt.col, base)
			if got := CheckFollowersOnDeadLetter(tt.goSpec.OnDeadLetter); tt.key == "followersOnDeadLetter" && (got == nil || got.Error() != tt.rule) {
				t.Errorf("CheckFollowersOnDeadLetter: %v, want %s", got, tt.rule)
			}
		})
	}
	for _, ok := range []string{"", FollowersRelease, FollowersDeadLetter} {
		if err := CheckFollowersOnDeadLetter(ok); err != nil {
			t.Errorf("CheckFollowersOnDeadLetter(%q): %v, want nil", ok, err)
		}
	}
	// A policy file writes the policy as a string.
	_, err := resolveYAML(t, nil, "listeners:\n  - topic: orders\n    keyOrder: true\n    followersOnDeadLetter: 1\n")
	wantLines(t, err, `policy.yaml:4:28: listeners[0].followersOnDeadLetter: want a string, got int "1"; quote it`)
}

// The key-order settings are written for a key-ordered listener only,
// explicit; they read back.
func TestMarshalKeyOrder(t *testing.T) {
	out, err := MarshalYAML(DefaultSpec("orders"))
	if err != nil {
		t.Fatal(err)
	}
	for _, key := range KeyOrderKeys() {
		if strings.Contains(string(out), key) {
			t.Errorf("default spec marshals %s:\n%s", key, out)
		}
	}
	s := DefaultSpec("orders")
	s.KeyOrder = KeyOrderSettings{Enabled: true, OnDeadLetter: FollowersDeadLetter, MaxKeys: 500}
	defaulted := DefaultSpec("defaulted")
	defaulted.KeyOrder = KeyOrderSettings{Enabled: true}
	for name, marshal := range map[string]func(...Spec) ([]byte, error){"yaml": MarshalYAML, "json": MarshalJSON} {
		out, err := marshal(s, defaulted, DefaultSpec("payments"))
		if err != nil {
			t.Fatal(err)
		}
		for _, key := range KeyOrderKeys() {
			if got := strings.Count(string(out), key); got != 2 {
				t.Errorf("%s: %s written %d times, want 2:\n%s", name, key, got, out)
			}
		}
		if !strings.Contains(string(out), "dead-letter") || !strings.Contains(string(out), "100000") {
			t.Errorf("%s: the settings' values are not written:\n%s", name, out)
		}
	}
	roundTrip(t, nil, []Spec{s, defaulted, DefaultSpec("payments")})

	// A spec that is not key-ordered but has a bound is written as it is,
	// so that reading it back reports the mistake.
	bad := DefaultSpec("orders")
	bad.KeyOrder.MaxKeys = 5
	wantReadBackError(t, bad, "maxKeysInRetry: applies only to key-ordered retries")
	bad.KeyOrder = KeyOrderSettings{OnDeadLetter: FollowersDeadLetter}
	wantReadBackError(t, bad, "followersOnDeadLetter: applies only to key-ordered retries")
}

// Without drops settings from a copy and leaves the declaration as it was.
func TestDeclWithout(t *testing.T) {
	d := mustTag(t, "topic=orders,keyOrder=true,maxKeysInRetry=5,attempts=2")
	w := d.Without(KeyOrderKeys()...)
	for _, key := range KeyOrderKeys() {
		if _, _, ok := w.Setting(key); ok {
			t.Errorf("Without: %s still set", key)
		}
	}
	if _, _, ok := w.Setting("attempts"); !ok || w.Topic() != "orders" || w.Pos() != d.Pos() {
		t.Errorf("Without dropped more than asked: attempts set %v, topic %q, pos %v", ok, w.Topic(), w.Pos())
	}
	if _, _, ok := d.Setting("keyOrder"); !ok {
		t.Error("Without changed the declaration it was called on")
	}
	if d.Without("batch", "exactlyOnce") != d {
		t.Error("Without keys the declaration does not set: want the declaration itself")
	}
	s, err := Resolve(DefaultSpec("orders"), nil, w)
	if err != nil {
		t.Fatal(err)
	}
	if s.KeyOrder.Enabled || s.Policy.Attempts != 2 {
		t.Errorf("resolved Without: KeyOrder %+v, attempts %d", s.KeyOrder, s.Policy.Attempts)
	}
}
