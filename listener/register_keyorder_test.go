package listener_test

import (
	"testing"

	"github.com/kretry/kretry/config"
	"github.com/kretry/kretry/listener"
)

// keyOrderDefaults are the key-order settings of a listener without key
// order.
var keyOrderDefaults = config.DefaultSpec("x").KeyOrder

// keyOrder, followersOnDeadLetter and maxKeysInRetry in a tag make the
// listener key-ordered, as KeyOrder, FollowersOnDeadLetter and
// MaxKeysInRetry do, and FromSpec gives a listener the same settings.
func TestRegisterKeyOrderTag(t *testing.T) {
	ls, err := listener.Register(offlineSeeds, tagged(
		tf{"Orders", "topic=orders,keyOrder=true,followersOnDeadLetter=dead-letter,maxKeysInRetry=500", nopHandler},
		tf{"Refunds", "topic=refunds,keyOrder=true", nopHandler},
		tf{"Payments", "topic=payments", nopHandler},
		tf{"Clicks", "topic=clicks", regNopBatch}))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]config.KeyOrderSettings{
		"orders":   {Enabled: true, OnDeadLetter: config.FollowersDeadLetter, MaxKeys: 500},
		"refunds":  {Enabled: true, OnDeadLetter: config.FollowersRelease, MaxKeys: config.DefaultMaxKeysInRetry},
		"payments": keyOrderDefaults,
		"clicks":   keyOrderDefaults,
	}
	wantSpecsFromSpec(t, ls, func(s config.Spec) config.KeyOrderSettings { return s.KeyOrder }, want)
}

// followersOnDeadLetter and maxKeysInRetry without key order are errors in
// the same words wherever a listener's own settings give them: Go options
// to New (in the options' names), its tag, its file entry, a Spec given to
// FromSpec (in the Spec's names).
func TestRegisterKeyOrderRuleAlike(t *testing.T) {
	const rule = "applies only to key-ordered retries, but "
	_, err := listener.New(offlineSeeds, "orders", nopHandler, listener.MaxKeysInRetry(5), listener.FollowersOnDeadLetter(config.FollowersDeadLetter))
	wantErrLines(t, err,
		"listener: FollowersOnDeadLetter "+rule+"KeyOrder is not given; add KeyOrder, or remove FollowersOnDeadLetter",
		"listener: MaxKeysInRetry "+rule+"KeyOrder is not given; add KeyOrder, or remove MaxKeysInRetry")
	// The defaults, like 0 and "", are no setting at all.
	if _, err := listener.New(offlineSeeds, "orders", nopHandler, listener.MaxKeysInRetry(config.DefaultMaxKeysInRetry),
		listener.FollowersOnDeadLetter(config.FollowersRelease)); err != nil {
		t.Errorf("the default key-order settings without KeyOrder: %v", err)
	}
	wantModeRuleAlike(t, "keyOrder", "key-ordered retries", [2]string{"followersOnDeadLetter", "maxKeysInRetry"}, [2]string{"dead-letter", "5"})

	// A spec without key order holds the defaults: one error each, in the
	// spec's words.
	s := config.DefaultSpec("orders")
	s.KeyOrder.OnDeadLetter, s.KeyOrder.MaxKeys = config.FollowersDeadLetter, 5
	_, err = listener.New(offlineSeeds, "orders", nopHandler, listener.FromSpec(s))
	wantErrLines(t, err,
		`listener: FromSpec: KeyOrder.OnDeadLetter "dead-letter" `+rule+"KeyOrder.Enabled is false",
		"listener: FromSpec: KeyOrder.MaxKeys 5 "+rule+"KeyOrder.Enabled is false")
	for _, ko := range []config.KeyOrderSettings{{}, keyOrderDefaults} {
		s.KeyOrder = ko
		if _, err := listener.New(offlineSeeds, "orders", nopHandler, listener.FromSpec(s)); err != nil {
			t.Errorf("FromSpec with KeyOrder %+v: %v", ko, err)
		}
	}
}

// A bad key-order value is reported with the same rule whichever way it is
// given: a Go option to New or Register, a tag, a policy file.
func TestRegisterKeyOrderProblemsAlike(t *testing.T) {
	for _, tt := range []badModeValue{
		{"followersOnDeadLetter", "FollowersOnDeadLetter", listener.FollowersOnDeadLetter("drop"), "drop", "drop", "28",
			`must be "release" or "dead-letter", got "drop"`},
		{"maxKeysInRetry", "MaxKeysInRetry", listener.MaxKeysInRetry(-1), "-1", "-1", "21",
			"must be >= 1, or 0 for the default, got -1"},
	} {
		t.Run(tt.key, func(t *testing.T) { wantModeProblemAlike(t, listener.KeyOrder(), "keyOrder", tt) })
	}
}

// The key-order settings of the layers every listener shares — Go options
// given to Register, a policy file's defaults — apply to the key-ordered
// listeners, and keyOrder from them to the single-record handlers only.
func TestRegisterSharedKeyOrderSettings(t *testing.T) {
	handlers := tagged(tf{"Orders", "topic=orders,keyOrder=true", nopHandler}, tf{"Payments", "topic=payments", nopHandler})
	ls, err := listener.Register(offlineSeeds, handlers, listener.FollowersOnDeadLetter(config.FollowersDeadLetter), listener.MaxKeysInRetry(9))
	if err != nil {
		t.Fatal(err)
	}
	if got, want := ls[0].Spec().KeyOrder, (config.KeyOrderSettings{Enabled: true, OnDeadLetter: config.FollowersDeadLetter, MaxKeys: 9}); got != want {
		t.Errorf("key-ordered, Go options: %+v, want %+v", got, want)
	}
	if got := ls[1].Spec().KeyOrder; got != keyOrderDefaults {
		t.Errorf("not key-ordered, Go options: %+v, want the defaults", got)
	}
	f := parsePolicy(t, "defaults:\n  followersOnDeadLetter: dead-letter\n  maxKeysInRetry: 7\n")
	ls, err = listener.Register(offlineSeeds, handlers, listener.PolicyFile(f))
	if err != nil {
		t.Fatal(err)
	}
	if got, want := ls[0].Spec().KeyOrder, (config.KeyOrderSettings{Enabled: true, OnDeadLetter: config.FollowersDeadLetter, MaxKeys: 7}); got != want {
		t.Errorf("key-ordered, file defaults: %+v, want %+v", got, want)
	}
	if got := ls[1].Spec().KeyOrder; got != keyOrderDefaults {
		t.Errorf("not key-ordered, file defaults: %+v, want the defaults", got)
	}

	// KeyOrder given to Register, or keyOrder in a file's defaults, makes
	// every single-record handler key-ordered, and no batch handler; a tag
	// (under Go options) or an entry (over the defaults) turns it off for
	// its own. The batch handler is exactly once: key order that is not
	// its own does not conflict.
	mixed := tagged(tf{"Orders", "topic=orders,group=g", nopHandler}, tf{"Payments", "topic=payments,keyOrder=false", nopHandler},
		tf{"Clicks", "topic=clicks,exactlyOnce=true", regNopBatch})
	for name, opts := range map[string][]listener.RegisterOpt{
		"Go options":    {listener.KeyOrder(), listener.MaxKeysInRetry(9)},
		"file defaults": {listener.PolicyFile(parsePolicy(t, "defaults:\n  keyOrder: true\n  maxKeysInRetry: 9\nlisteners:\n  - topic: payments\n    keyOrder: false\n"))},
	} {
		ls, err := listener.Register(offlineSeeds, mixed, opts...)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if got, want := ls[0].Spec().KeyOrder, (config.KeyOrderSettings{Enabled: true, OnDeadLetter: config.FollowersRelease, MaxKeys: 9}); got != want {
			t.Errorf("%s: single-record handler: %+v, want %+v", name, got, want)
		}
		if got := ls[1].Spec().KeyOrder; got != keyOrderDefaults {
			t.Errorf("%s: keyOrder false: %+v, want the defaults", name, got)
		}
		if got := ls[2].Spec(); got.KeyOrder != keyOrderDefaults || !got.ExactlyOnce.Enabled {
			t.Errorf("%s: batch handler: KeyOrder %+v, ExactlyOnce %+v; want no key order, exactly once", name, got.KeyOrder, got.ExactlyOnce)
		}
	}
}

// Key order does not work with batch handlers yet: the key-order settings
// in the tag of a batch handler field or in its file entry are errors that
// say so, as batch settings are for a single-record handler.
func TestRegisterKeyOrderOnBatchHandler(t *testing.T) {
	const why = "key order does not work with batch handlers yet, but "
	const fix = " holds a batch handler: make it a listener.Handler (func(ctx, *kgo.Record) error), or remove "
	_, err := listener.Register(offlineSeeds, tagged(tf{"Clicks", "topic=clicks,keyOrder=true,maxKeysInRetry=5", regNopBatch}))
	wantErrLines(t, err,
		"struct {…}.Clicks (kretry tag): keyOrder: "+why+"the field"+fix+"keyOrder from the tag",
		"struct {…}.Clicks (kretry tag): maxKeysInRetry: "+why+"the field"+fix+"maxKeysInRetry from the tag")
	wantConfigError(t, err, config.Pos{Struct: "struct {…}", Field: "Clicks"}, "keyOrder")

	// The same for a file's entry, even with keyOrder false.
	f := parsePolicy(t, "listeners:\n  - topic: orders\n    keyOrder: true\n  - topic: clicks\n    keyOrder: false\n    followersOnDeadLetter: release\n")
	_, err = listener.Register(offlineSeeds, tagged(tf{"Orders", "topic=orders", nopHandler}, tf{"Clicks", "topic=clicks", regNopBatch}),
		listener.PolicyFile(f))
	wantErrLines(t, err,
		"policy.yaml:5:15: listeners[1].keyOrder: "+why+"field struct {…}.Clicks"+fix+"keyOrder from this entry",
		"policy.yaml:6:28: listeners[1].followersOnDeadLetter: "+why+"field struct {…}.Clicks"+fix+"followersOnDeadLetter from this entry")
	wantConfigError(t, err, config.Pos{File: "policy.yaml", Line: 5, Column: 15}, "listeners[1].keyOrder")

	// NewBatch refuses KeyOrder.
	_, err = listener.NewBatch(offlineSeeds, "clicks", regNopBatch, listener.KeyOrder())
	wantErrLines(t, err, "listener: KeyOrder does not work with batch handlers yet: use New with a Handler, or remove KeyOrder")
}

// keyOrder with exactlyOnce is an error however the two are given.
func TestRegisterKeyOrderWithExactlyOnce(t *testing.T) {
	const rule = "key order does not work with exactly-once mode yet, but exactlyOnce is true"
	const fix = "; set keyOrder or exactlyOnce to false"
	_, err := listener.Register(offlineSeeds, tagged(tf{"Orders", "topic=orders,keyOrder=true,exactlyOnce=true", nopHandler}))
	wantErrLines(t, err, "struct {…}.Orders (kretry tag): keyOrder: "+rule+fix)
	_, err = listener.Register(offlineSeeds, tagged(tf{"Orders", "topic=orders", nopHandler}), listener.KeyOrder(), listener.ExactlyOnce(""))
	wantErrLines(t, err, "Go options or defaults: keyOrder: "+rule+fix)
	_, err = listener.Register(offlineSeeds, tagged(tf{"Orders", "topic=orders,keyOrder=true", nopHandler}),
		listener.PolicyFile(parsePolicy(t, "defaults:\n  exactlyOnce: true\n")))
	wantErrLines(t, err, "struct {…}.Orders (kretry tag): keyOrder: "+rule+" (from policy.yaml:2:16)"+fix)
	_, err = listener.New(offlineSeeds, "orders", nopHandler, listener.KeyOrder(), listener.ExactlyOnce(""))
	wantErrLines(t, err, "listener: KeyOrder does not work with ExactlyOnce yet; remove one of them")
}

// A key-ordered listener's group uses its own partition assignor: Register
// refuses key-ordered and other listeners in one group, batch handlers
// among the others.
func TestRegisterMixedKeyOrderGroup(t *testing.T) {
	const fix = ": a key-ordered listener's group uses its own partition assignor, which other listeners cannot join; give one of them another group"
	_, err := listener.Register(offlineSeeds, tagged(
		tf{"Orders", "topic=orders,group=billing,keyOrder=true", nopHandler},
		tf{"Payments", "topic=payments,group=billing", nopHandler},
		tf{"Clicks", "topic=clicks,group=billing", regNopBatch}))
	wantErrLines(t, err,
		`struct {…}.Payments (kretry tag): keyOrder: is false, but field Orders, in the same group "billing", has keyOrder true`+fix,
		`struct {…}.Clicks (kretry tag): keyOrder: is false, but field Orders, in the same group "billing", has keyOrder true`+fix)
	wantConfigError(t, err, config.Pos{Struct: "struct {…}", Field: "Payments"}, "keyOrder")
	// All key-ordered, or in groups of their own: fine.
	if _, err := listener.Register(offlineSeeds, tagged(
		tf{"Orders", "topic=orders,group=billing,keyOrder=true", nopHandler},
		tf{"Payments", "topic=payments,group=billing,keyOrder=true", nopHandler},
		tf{"Refunds", "topic=refunds,keyOrder=true", nopHandler},
		tf{"Clicks", "topic=clicks", regNopBatch})); err != nil {
		t.Error(err)
	}
}
