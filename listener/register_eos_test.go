package listener_test

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/kretry/kretry/config"
	"github.com/kretry/kretry/listener"
)

// exactlyOnce and transactionalId in a tag make the listener exactly
// once, for either kind of handler, as ExactlyOnce does.
func TestRegisterExactlyOnceTag(t *testing.T) {
	ls, err := listener.Register(offlineSeeds, tagged(
		tf{"Orders", "topic=orders,exactlyOnce=true,transactionalId=orders-0", nopHandler},
		tf{"Clicks", "topic=clicks,exactlyOnce=true,transactionInterval=250ms,batch=50", regNopBatch},
		tf{"Payments", "topic=payments", nopHandler}))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]config.ExactlyOnceSettings{
		"orders":   {Enabled: true, TransactionalID: "orders-0", Interval: listener.DefaultTransactionInterval},
		"clicks":   {Enabled: true, Interval: 250 * time.Millisecond},
		"payments": {Interval: listener.DefaultTransactionInterval},
	}
	wantSpecsFromSpec(t, ls, func(s config.Spec) config.ExactlyOnceSettings { return s.ExactlyOnce }, want)
	if listener.DefaultTransactionInterval != config.DefaultTransactionInterval {
		t.Errorf("listener.DefaultTransactionInterval %v, config's %v", listener.DefaultTransactionInterval, config.DefaultTransactionInterval)
	}
}

// transactionalId and transactionInterval without exactly-once mode are
// errors in the same words wherever a listener's own settings give them:
// Go options to New (in the options' names), its tag, its file entry.
func TestRegisterExactlyOnceRuleAlike(t *testing.T) {
	const rule = "applies only to exactly-once mode, but "
	_, err := listener.New(offlineSeeds, "orders", nopHandler, listener.TransactionInterval(time.Second))
	wantErrLines(t, err, "listener: TransactionInterval "+rule+"ExactlyOnce is not given; add ExactlyOnce, or remove TransactionInterval")
	// The default interval, like 0, is no setting at all.
	if _, err := listener.New(offlineSeeds, "orders", nopHandler, listener.TransactionInterval(listener.DefaultTransactionInterval)); err != nil {
		t.Errorf("TransactionInterval(DefaultTransactionInterval) without ExactlyOnce: %v", err)
	}
	wantModeRuleAlike(t, "exactlyOnce", "exactly-once mode", [2]string{"transactionalId", "transactionInterval"}, [2]string{"orders-0", "1s"})
	// A spec that is not exactly once holds no transactional ID.
	s := config.DefaultSpec("orders")
	s.ExactlyOnce.TransactionalID = "orders-0"
	_, err = listener.New(offlineSeeds, "orders", nopHandler, listener.FromSpec(s))
	wantErrLines(t, err, `listener: FromSpec: ExactlyOnce.TransactionalID "orders-0" applies only to exactly-once mode, but ExactlyOnce.Enabled is false`)
}

// wantSpecsFromSpec checks that get gives want[topic] from the Spec of
// each listener of ls, and that FromSpec gives a listener of its topic the
// same Spec (with NewBatch for topic "clicks", a batch handler's in these
// tests).
func wantSpecsFromSpec[T comparable](t *testing.T, ls []*listener.Listener, get func(config.Spec) T, want map[string]T) {
	t.Helper()
	for _, l := range ls {
		s := l.Spec()
		if got := get(s); got != want[s.Topic] {
			t.Errorf("topic %s: %+v, want %+v", s.Topic, got, want[s.Topic])
		}
		h := any(nopHandler)
		if s.Topic == "clicks" {
			h = regNopBatch
		}
		g, err := regBuild(s.Topic, h, listener.FromSpec(s))
		if err != nil {
			t.Fatal(err)
		}
		if !g.Spec().Equal(s) || get(g.Spec()) != get(s) {
			t.Errorf("topic %s: FromSpec(Spec()) gives %+v, want %+v", s.Topic, g.Spec(), s)
		}
	}
}

// wantModeRuleAlike checks that keys, settings of a mode (modeKey; what
// in messages), set to vals in a listener's own tag or file entry without
// the mode, are errors naming both keys and where the mode came from.
func wantModeRuleAlike(t *testing.T, modeKey, what string, keys, vals [2]string) {
	t.Helper()
	rule := ": applies only to " + what + ", but " + modeKey + " is false"
	fix := func(key string) string { return "; set " + modeKey + " to true, or remove " + key }
	_, err := listener.Register(offlineSeeds, tagged(tf{"Orders", "topic=orders," + keys[0] + "=" + vals[0] + "," + keys[1] + "=" + vals[1], nopHandler}))
	wantErrLines(t, err,
		"struct {…}.Orders (kretry tag): "+keys[0]+rule+" (from Go options or defaults)"+fix(keys[0]),
		"struct {…}.Orders (kretry tag): "+keys[1]+rule+" (from Go options or defaults)"+fix(keys[1]))
	wantConfigError(t, err, config.Pos{Struct: "struct {…}", Field: "Orders"}, keys[0])
	f := parsePolicy(t, "listeners:\n  - topic: orders\n    "+modeKey+": false\n    "+keys[1]+": "+vals[1]+"\n")
	_, err = listener.Register(offlineSeeds, tagged(tf{"Orders", "topic=orders," + modeKey + "=true", nopHandler}), listener.PolicyFile(f))
	wantErrLines(t, err, fmt.Sprintf("policy.yaml:4:%d: listeners[0].%s%s (from policy.yaml:3:%d)%s",
		len("    "+keys[1]+": ")+1, keys[1], rule, len("    "+modeKey+": ")+1, fix(keys[1])))
}

// A bad exactly-once value is reported with the same rule whichever way it
// is given: a Go option to New or Register, a tag, a policy file.
func TestRegisterExactlyOnceProblemsAlike(t *testing.T) {
	for _, tt := range []badModeValue{
		{"transactionalId", "ExactlyOnce transactional ID", listener.ExactlyOnce("a\x07"), "a\x07", `"a\a"`, "22",
			`must not contain control characters, got "a\a" with U+0007 at byte 1`},
		{"transactionInterval", "TransactionInterval", listener.TransactionInterval(-time.Second), "-1s", "-1s", "26",
			"must be >= 0, got -1s"},
	} {
		t.Run(tt.key, func(t *testing.T) { wantModeProblemAlike(t, listener.ExactlyOnce(""), "exactlyOnce", tt) })
	}
}

// badModeValue is a bad value of a setting of a mode (exactly once, key
// order), for wantModeProblemAlike.
type badModeValue struct {
	key, option string       // the setting's key; its option's name in New's messages
	opt         listener.Opt // the option with the bad value
	value, yaml string       // as written in the tag and the file
	col         string       // the value's column in the file
	rule        string
}

// wantModeProblemAlike checks that tt is reported with the same rule
// whichever way it is given with the mode on (mode in Go, modeKey in tags
// and files): a Go option to New or Register, a tag, a policy file.
func wantModeProblemAlike(t *testing.T, mode listener.Opt, modeKey string, tt badModeValue) {
	t.Helper()
	_, err := listener.New(offlineSeeds, "orders", nopHandler, mode, tt.opt)
	wantErrLines(t, err, "listener: "+tt.option+" "+tt.rule)
	_, err = listener.Register(offlineSeeds, tagged(tf{"Orders", "topic=orders," + modeKey + "=true," + tt.key + "=" + tt.value, nopHandler}))
	wantErrLines(t, err, "struct {…}.Orders (kretry tag): "+tt.key+": "+tt.rule)
	_, err = config.Parse("policy.yaml", []byte("listeners:\n  - topic: orders\n    "+modeKey+": true\n    "+tt.key+": "+tt.yaml+"\n"))
	wantErrLines(t, err, "policy.yaml:4:"+tt.col+": listeners[0]."+tt.key+": "+tt.rule)
	_, err = listener.Register(offlineSeeds, tagged(tf{"Orders", "topic=orders", nopHandler}), mode, tt.opt)
	wantErrLines(t, err, "Go options or defaults: "+tt.key+": "+tt.rule)
}

// The exactly-once settings of the layers every listener shares — Go
// options given to Register, a policy file's defaults — apply to the
// exactly-once listeners and are not applied to the others.
func TestRegisterSharedExactlyOnceSettings(t *testing.T) {
	handlers := tagged(tf{"Orders", "topic=orders,exactlyOnce=true", nopHandler}, tf{"Payments", "topic=payments", nopHandler})
	def := config.DefaultSpec("x").ExactlyOnce
	ls, err := listener.Register(offlineSeeds, handlers, listener.TransactionInterval(time.Second))
	if err != nil {
		t.Fatal(err)
	}
	if got, want := ls[0].Spec().ExactlyOnce, (config.ExactlyOnceSettings{Enabled: true, Interval: time.Second}); got != want {
		t.Errorf("exactly once, Go options: %+v, want %+v", got, want)
	}
	if got := ls[1].Spec().ExactlyOnce; got != def {
		t.Errorf("at least once, Go options: %+v, want the defaults", got)
	}
	f := parsePolicy(t, "defaults:\n  transactionalId: pod-0\n  transactionInterval: 2s\n")
	ls, err = listener.Register(offlineSeeds, handlers, listener.PolicyFile(f))
	if err != nil {
		t.Fatal(err)
	}
	if got, want := ls[0].Spec().ExactlyOnce, (config.ExactlyOnceSettings{Enabled: true, TransactionalID: "pod-0", Interval: 2 * time.Second}); got != want {
		t.Errorf("exactly once, file defaults: %+v, want %+v", got, want)
	}
	if got := ls[1].Spec().ExactlyOnce; got != def {
		t.Errorf("at least once, file defaults: %+v, want the defaults", got)
	}
	// ExactlyOnce given to Register makes every listener exactly once; a
	// tag turns it off for its own.
	ls, err = listener.Register(offlineSeeds, tagged(tf{"Orders", "topic=orders", nopHandler}, tf{"Payments", "topic=payments,exactlyOnce=false", nopHandler}),
		listener.ExactlyOnce(""))
	if err != nil {
		t.Fatal(err)
	}
	if !ls[0].Spec().ExactlyOnce.Enabled || ls[1].Spec().ExactlyOnce != def {
		t.Errorf("ExactlyOnce to Register, exactlyOnce=false in a tag: %+v, %+v", ls[0].Spec().ExactlyOnce, ls[1].Spec().ExactlyOnce)
	}
}

// Exactly-once listeners with one transactional ID would fence each other:
// Register refuses them when one ID is given to both; derived IDs differ.
func TestRegisterSharedTransactionalID(t *testing.T) {
	const fix = ": exactly-once listeners with one transactional ID fence each other; give each its own ID, or leave it out to derive one per topic"
	_, err := listener.Register(offlineSeeds, tagged(tf{"Orders", "topic=orders", nopHandler}, tf{"Payments", "topic=payments", nopHandler}),
		listener.ExactlyOnce("pod-0"))
	wantErrLines(t, err, `struct {…}.Payments (kretry tag): transactionalId: duplicate transactional ID "pod-0", also field Orders's`+fix)
	if !errors.Is(err, config.ErrDuplicate) {
		t.Errorf("%v: not config.ErrDuplicate", err)
	}
	// Derived IDs name the topic: two listeners of one group differ.
	if _, err := listener.Register(offlineSeeds, tagged(tf{"Orders", "topic=orders,group=billing,exactlyOnce=true", nopHandler},
		tf{"Payments", "topic=payments,group=billing,exactlyOnce=true", nopHandler})); err != nil {
		t.Error(err)
	}
	// Their own IDs, or their own groups: fine.
	if _, err := listener.Register(offlineSeeds, tagged(tf{"Orders", "topic=orders,group=billing,exactlyOnce=true,transactionalId=a", nopHandler},
		tf{"Payments", "topic=payments,group=billing,exactlyOnce=true,transactionalId=b", nopHandler},
		tf{"Refunds", "topic=refunds,exactlyOnce=true", nopHandler}, tf{"Returns", "topic=returns,exactlyOnce=true", nopHandler})); err != nil {
		t.Error(err)
	}
}
