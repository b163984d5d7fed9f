package listener_test

import (
	"context"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/kretry/kretry/config"
	"github.com/kretry/kretry/listener"
	"github.com/kretry/kretry/retry"
	"github.com/kretry/kretry/strategy"
)

// regClicks is a batch handler type, used by pointer.
type regClicks struct{ calls int }

func (s *regClicks) HandleBatch(context.Context, []*kgo.Record) error { s.calls++; return nil }

// regBoth has both handler methods: which one a field means is not clear.
type regBoth struct{}

func (regBoth) Handle(context.Context, *kgo.Record) error { return nil }

func (regBoth) HandleBatch(context.Context, []*kgo.Record) error { return nil }

// regBatchDLT is a batch handler and a DLT handler.
type regBatchDLT struct{}

func (regBatchDLT) HandleBatch(context.Context, []*kgo.Record) error { return nil }

func (regBatchDLT) HandleDLT(context.Context, *kgo.Record, retry.State) error { return nil }

// A batch handler field may hold any implementation, as a handler field
// may; each is built with NewBatch and takes the batch settings of its
// tag (which a single-record handler would refuse).
func TestRegisterBatchHandlerKinds(t *testing.T) {
	type kinds struct {
		Iface   listener.BatchHandler                      `kretry:"topic=a,batch=1"`
		Func    listener.BatchHandlerFunc                  `kretry:"topic=b,batch=2"`
		Plain   func(context.Context, []*kgo.Record) error `kretry:"topic=c,batch=3"`
		Pointer *regClicks                                 `kretry:"topic=d,batchWait=4ms"`
		Value   regClicks                                  `kretry:"topic=e,batch=5,batchWait=5ms"`
		WithDLT regBatchDLT                                `kretry:"topic=f,batch=6"`
		Single  listener.HandlerFunc                       `kretry:"topic=g"`
	}
	h := &kinds{Iface: regNopBatch, Func: regNopBatch, Plain: func(context.Context, []*kgo.Record) error { return nil },
		Pointer: &regClicks{}, Single: nopHandler}
	ls, err := listener.Register(offlineSeeds, h)
	if err != nil {
		t.Fatal(err)
	}
	ms := time.Millisecond
	want := map[string]config.BatchSettings{
		"a": {Size: 1}, "b": {Size: 2}, "c": {Size: 3}, "d": {Size: 100, Wait: 4 * ms}, "e": {Size: 5, Wait: 5 * ms},
		"f": {Size: 6}, "g": {Size: 100},
	}
	if len(ls) != len(want) {
		t.Fatalf("got %d listeners, want %d", len(ls), len(want))
	}
	for _, l := range ls {
		s := l.Spec()
		if s.Batch != want[s.Topic] {
			t.Errorf("topic %s: Batch = %+v, want %+v", s.Topic, s.Batch, want[s.Topic])
		}
		// NewBatch with the same options says the same.
		g, err := listener.NewBatch(offlineSeeds, s.Topic, regNopBatch, listener.BatchSize(want[s.Topic].Size), listener.BatchWait(want[s.Topic].Wait))
		if err != nil {
			t.Fatal(err)
		}
		if !g.Spec().Equal(s) {
			t.Errorf("topic %s: Register gives %+v, NewBatch %+v", s.Topic, s, g.Spec())
		}
	}
}

// A batch listener's settings, stated through Go options, a struct tag and
// a policy file, resolve alike, the batch settings among them.
func TestRegisterBatchParity(t *testing.T) {
	opts := []listener.Opt{listener.Group("billing"), listener.Attempts(4),
		listener.Backoff(strategy.ExponentialBackoff(time.Second, 2, 10*time.Second)),
		listener.BatchSize(500), listener.BatchWait(20 * time.Millisecond)}
	tag := "topic=clicks,group=billing,attempts=4,delay=1s,multiplier=2,maxDelay=10s,batch=500,batchWait=20ms"
	doc := "listeners:\n  - topic: clicks\n    group: billing\n    attempts: 4\n    delay: 1s\n    multiplier: 2\n    maxDelay: 10s\n    batch: 500\n    batchWait: 20ms\n"
	fromGo, fromTag, fromFile := surfacesFor(t, "clicks", regNopBatch, opts, tag, doc)
	sameListener(t, "struct tag vs Go options", fromTag, fromGo)
	sameListener(t, "policy file vs Go options", fromFile, fromGo)
	if got, want := fromGo.Spec().Batch, (config.BatchSettings{Size: 500, Wait: 20 * time.Millisecond}); got != want {
		t.Errorf("Batch = %+v, want %+v", got, want)
	}
	specs, err := parsePolicy(t, doc).Specs(nil)
	if err != nil {
		t.Fatal(err)
	}
	if !specs[0].Equal(fromGo.Spec()) {
		t.Errorf("File.Specs differs from Go options:\n got  %+v\n want %+v", specs[0], fromGo.Spec())
	}
}

// A bad batch setting is reported with the same rule whichever way it is
// given: a Go option to NewBatch or Register, a tag, a policy file (which
// config.Parse checks, before Register sees it).
func TestRegisterBatchProblemsAlike(t *testing.T) {
	tests := []struct {
		key, option string
		opt         listener.Opt
		value, col  string // as written in the tag and the file; the value's column in the file
		rule        string
	}{
		{"batch", "BatchSize", listener.BatchSize(-1), "-1", "12", "must be >= 1, or 0 for the default, got -1"},
		{"batchWait", "BatchWait", listener.BatchWait(-time.Second), "-1s", "16", "must be >= 0, got -1s"},
	}
	for _, tt := range tests {
		t.Run(tt.key, func(t *testing.T) {
			_, err := listener.NewBatch(offlineSeeds, "clicks", regNopBatch, tt.opt)
			wantErrLines(t, err, "listener: "+tt.option+" "+tt.rule)
			_, err = listener.Register(offlineSeeds, tagged(tf{"Clicks", "topic=clicks," + tt.key + "=" + tt.value, regNopBatch}))
			wantErrLines(t, err, "struct {…}.Clicks (kretry tag): "+tt.key+": "+tt.rule)
			_, err = config.Parse("policy.yaml", []byte("listeners:\n  - topic: clicks\n    "+tt.key+": "+tt.value+"\n"))
			wantErrLines(t, err, "policy.yaml:3:"+tt.col+": listeners[0]."+tt.key+": "+tt.rule)
			_, err = listener.Register(offlineSeeds, tagged(tf{"Clicks", "topic=clicks", regNopBatch}), tt.opt)
			wantErrLines(t, err, "Go options or defaults: "+tt.key+": "+tt.rule)
		})
	}
}

// batch and batchWait set for a single-record handler, in its tag or in
// its policy file entry, are errors that say where and what to do.
func TestRegisterBatchSettingsOnSingleHandler(t *testing.T) {
	const fix = "make it a listener.BatchHandler (func(ctx, []*kgo.Record) error), or remove "
	_, err := listener.Register(offlineSeeds, tagged(tf{"Orders", "topic=orders,batch=5,batchWait=1ms", nopHandler}))
	wantErrLines(t, err,
		"struct {…}.Orders (kretry tag): batch: applies to batch handlers, but the field holds a single-record handler: "+fix+"batch from the tag",
		"struct {…}.Orders (kretry tag): batchWait: applies to batch handlers, but the field holds a single-record handler: "+fix+"batchWait from the tag")
	wantConfigError(t, err, config.Pos{Struct: "struct {…}", Field: "Orders"}, "batch")

	// The same for a file's entry, even with batch set to its default.
	f := parsePolicy(t, "listeners:\n  - topic: clicks\n    batch: 5\n  - topic: orders\n    attempts: 2\n    batch: 100\n")
	_, err = listener.Register(offlineSeeds, tagged(tf{"Orders", "topic=orders", nopHandler}, tf{"Clicks", "topic=clicks", regNopBatch}),
		listener.PolicyFile(f))
	wantErrLines(t, err,
		"policy.yaml:6:12: listeners[1].batch: applies to batch handlers, but field struct {…}.Orders holds a single-record handler: "+fix+"batch from this entry")
	wantConfigError(t, err, config.Pos{File: "policy.yaml", Line: 6, Column: 12}, "listeners[1].batch")
}

// The batch settings of the layers every listener shares — Go options given
// to Register, a policy file's defaults — apply to batch handler fields
// and are not applied to single-record ones, which New would refuse.
func TestRegisterSharedBatchSettings(t *testing.T) {
	handlers := tagged(tf{"Orders", "topic=orders", nopHandler}, tf{"Clicks", "topic=clicks", regNopBatch})
	ls, err := listener.Register(offlineSeeds, handlers, listener.BatchSize(7), listener.BatchWait(3*time.Millisecond), listener.Attempts(5))
	if err != nil {
		t.Fatal(err)
	}
	orders, clicks := ls[0].Spec(), ls[1].Spec()
	if orders.Batch != (config.BatchSettings{Size: config.DefaultBatchSize}) || orders.Policy.Attempts != 5 {
		t.Errorf("single: Batch %+v, attempts %d; want the default batch settings and attempts 5", orders.Batch, orders.Policy.Attempts)
	}
	if clicks.Batch != (config.BatchSettings{Size: 7, Wait: 3 * time.Millisecond}) || clicks.Policy.Attempts != 5 {
		t.Errorf("batch: Batch %+v, attempts %d; want 7, 3ms and attempts 5", clicks.Batch, clicks.Policy.Attempts)
	}

	// A file's defaults, over the Go options; the entry over both.
	f := parsePolicy(t, "defaults:\n  batch: 50\n  batchWait: 9ms\nlisteners:\n  - topic: clicks\n    batch: 60\n")
	ls, err = listener.Register(offlineSeeds, handlers, listener.BatchSize(7), listener.PolicyFile(f))
	if err != nil {
		t.Fatal(err)
	}
	if got := ls[0].Spec().Batch; got != (config.BatchSettings{Size: config.DefaultBatchSize}) {
		t.Errorf("single with file defaults: Batch %+v, want the defaults", got)
	}
	if got := ls[1].Spec().Batch; got != (config.BatchSettings{Size: 60, Wait: 9 * time.Millisecond}) {
		t.Errorf("batch with file defaults: Batch %+v, want 60, 9ms", got)
	}

	// Only single-record handlers: the batch options change nothing.
	l := registerOne(t, tagged(tf{"Orders", "topic=orders", nopHandler}), listener.BatchSize(7))
	if got := l.Spec().Batch; got != (config.BatchSettings{Size: config.DefaultBatchSize}) {
		t.Errorf("single only: Batch %+v, want the defaults", got)
	}
}

// Fields that are neither kind, or both, or nil, are errors naming them.
func TestRegisterBatchFieldErrors(t *testing.T) {
	tests := []struct {
		name     string
		handlers any
		want     []string
	}{
		{"both kinds", tagged(tf{"Both", "topic=orders", regBoth{}}), []string{
			"struct {…}.Both (kretry tag): a handler field must be either a listener.Handler or a listener.BatchHandler, but listener_test.regBoth is both; " +
				"register one method, as in listener.HandlerFunc(x.Handle) or listener.BatchHandlerFunc(x.HandleBatch)"}},
		{"a func of another signature", tagged(tf{"Clicks", "topic=clicks", func(context.Context, []kgo.Record) error { return nil }}), []string{
			"struct {…}.Clicks (kretry tag): a handler field must implement listener.Handler or listener.BatchHandler, or be a " +
				"func(context.Context, *kgo.Record) error or a func(context.Context, []*kgo.Record) error, got func(context.Context, []kgo.Record) error"}},
		{"nil", tagged(tf{"Clicks", "topic=clicks", listener.BatchHandlerFunc(nil)}), []string{
			"struct {…}.Clicks (kretry tag): a handler field is nil; set it before calling Register"}},
		{"a DLT handler twice", tagged(tf{"Clicks", "topic=clicks", regBatchDLT{}}, tf{"ClicksDLT", "dlt=clicks", nopDLTHandler}), []string{
			`struct {…}.Clicks (kretry tag): duplicate DLT handler for topic "clicks": the field's type listener_test.regBatchDLT has a HandleDLT method, ` +
				"which serves as the topic's DLT handler, and field ClicksDLT is one too; remove the ClicksDLT field, or register only the " +
				"HandleBatch method here (listener.BatchHandlerFunc(x.HandleBatch))"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ls, err := listener.Register(offlineSeeds, tt.handlers)
			if ls != nil {
				t.Error("Register returned listeners with an error")
			}
			wantErrLines(t, err, tt.want...)
		})
	}
}
