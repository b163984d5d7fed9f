package listener_test

import (
	"context"
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/kretry/kretry/config"
	"github.com/kretry/kretry/dlt"
	"github.com/kretry/kretry/listener"
	"github.com/kretry/kretry/retry"
)

type IssueHandlers struct {
	Orders    listener.HandlerFunc `kretry:"topic=orders,group=billing,attempts=4,delay=1s,multiplier=2,maxDelay=10s,exclude=validation|notfound"`
	OrdersDLT dlt.HandlerFunc      `kretry:"dlt=orders"`
	Payments  listener.Handler     `kretry:"topic=payments"`
	Ignored   string
}

type badTags struct {
	Orders   listener.HandlerFunc `kretry:"topic=orders,attempts=-1,maxDelay=10s,exclude=validation|nope"`
	Payments listener.HandlerFunc `kretry:"topic=payments,delay=2s,multiplier=2"`
	Refunds  string               `kretry:"topic=refunds"`
	Unset    listener.Handler     `kretry:"topic=unset"`
	Lost     dlt.HandlerFunc      `kretry:"dlt=ordres"`
	hidden   listener.HandlerFunc `kretry:"topic=hidden"`
}

var _ = badTags{}.hidden

func TestRegisterIssueExample(t *testing.T) {
	ls, err := listener.Register(offlineSeeds, &IssueHandlers{Orders: nopHandler, OrdersDLT: nopDLTHandler, Payments: nopHandler}, listener.NamedErrors(namedErrors(t)))
	if err != nil {
		t.Fatal(err)
	}
	if len(ls) != 2 {
		t.Fatalf("got %d listeners, want 2 (orders, payments)", len(ls))
	}
	if got, want := ls[0].Plan().String(), "orders\t-\norders-retry-1000\t1s\norders-retry-2000\t2s\norders-retry-4000\t4s\norders-dlt\t-\n"; got != want {
		t.Errorf("orders plan:\n%s\nwant:\n%s", got, want)
	}
	if ls[0].Group() != "billing" || ls[1].Group() != "kretry-payments" {
		t.Errorf("groups %q, %q", ls[0].Group(), ls[1].Group())
	}
	if ex := ls[0].Policy().Classifier.Exclude; len(ex) != 2 || !ex[0].Match(errRegValidation) || !ex[1].Match(errRegNotFound) {
		t.Errorf("exclude list %v does not match the registered errors", ex)
	}
	// A struct value (not a pointer) works too.
	if _, err := listener.Register(offlineSeeds, IssueHandlers{Orders: nopHandler, OrdersDLT: nopDLTHandler, Payments: nopHandler}, listener.NamedErrors(namedErrors(t))); err != nil {
		t.Fatal(err)
	}
}

// All problems are reported at once; each names the struct type, the field
// and the tag key, or the file position.
func TestRegisterErrors(t *testing.T) {
	const pre = "listener_test.badTags."
	_, err := listener.Register(offlineSeeds, &badTags{Orders: nopHandler, Payments: nopHandler, Lost: nopDLTHandler}, listener.NamedErrors(namedErrors(t)))
	wantErrLines(t, err,
		pre+`Orders (kretry tag): attempts: must be >= 1 and <= 32767, or 0 for the default, got -1`,
		pre+`Refunds (kretry tag): a handler field must implement listener.Handler or listener.BatchHandler, or be a func(context.Context, *kgo.Record) error or a func(context.Context, []*kgo.Record) error, got string`,
		pre+`Unset (kretry tag): a handler field is nil; set it before calling Register`,
		pre+`hidden (kretry tag): field must be exported to be registered`,
	)
	// A tag Go cannot unquote (go vet warns about it too) is reported, not
	// skipped. Such a type can only be built at run time here.
	malformed := reflect.New(reflect.StructOf([]reflect.StructField{{Name: "Escaped", Type: reflect.TypeOf(nopHandler),
		Tag: `kretry:"topic=escaped,group=a\,b"`}})).Interface()
	_, err = listener.Register(offlineSeeds, malformed)
	wantErrLines(t, err,
		`struct {…}.Escaped (kretry tag): the struct tag "kretry:\"topic=escaped,group=a\\,b\"" is not well-formed (a tag value is a Go string: write \\ for each backslash of an escape)`)

	// With every tag readable, the rest is checked: here a DLT handler for
	// a topic nobody consumes, and the policy problems.
	_, err = listener.Register(offlineSeeds, tagged(tf{"Orders", "topic=orders,delay=2s,multiplier=2,maxDelay=1s", nopHandler}, tf{"Lost", "dlt=ordres", nopDLTHandler}))
	wantErrLines(t, err,
		`struct {…}.Lost (kretry tag): dlt: no handler field consumes topic "ordres" (consumed: orders)`,
		`struct {…}.Orders (kretry tag): maxDelay: must be 0s (no cap) or >= delay 2s, got 1s`,
	)

	tests := []struct {
		name     string
		handlers any
		opts     []listener.RegisterOpt
		want     []string
	}{
		{"not a struct", 42, nil, []string{"listener: Register: handlers must be a struct or a pointer to one, got int"}},
		{"nil pointer", (*IssueHandlers)(nil), nil, []string{"listener: Register: handlers is a nil *listener_test.IssueHandlers"}},
		{"no tagged field", &struct{ A int }{}, nil, []string{"listener: Register: no field of *struct {…} has a kretry tag"}},
		{"cross-field rules and unregistered names",
			tagged(tf{"Orders", "topic=orders,maxDelay=10s,exclude=validation|nope", nopHandler}, tf{"Payments", "topic=payments,delay=2s,multiplier=2,maxDelay=1s", nopHandler}),
			[]listener.RegisterOpt{listener.NamedErrors(namedErrors(t))},
			[]string{
				`struct {…}.Orders (kretry tag): exclude[1]: error "nope" is not registered (registered: auth, notfound, timeout, validation)`,
				`struct {…}.Orders (kretry tag): maxDelay: applies only to exponential backoff, but backoff is fixed (from Go options or defaults); set multiplier for exponential`,
				`struct {…}.Payments (kretry tag): maxDelay: must be 0s (no cap) or >= delay 2s, got 1s`,
			}},
		{"no registry", tagged(tf{"Orders", "topic=orders,exclude=validation", nopHandler}), nil, []string{
			`struct {…}.Orders (kretry tag): exclude[0]: error "validation" is not registered: no named errors are registered (pass a config.Registry, e.g. with listener.NamedErrors)`}},
		{"one handler per topic", tagged(tf{"A", "topic=orders", nopHandler}, tf{"B", "topic=orders", nopHandler}), nil, []string{
			`struct {…}.B (kretry tag): topic: duplicate topic "orders", also consumed by field A; one handler per topic`}},
		{"one DLT handler per topic", tagged(tf{"A", "topic=orders", nopHandler}, tf{"D1", "dlt=orders", nopDLTHandler}, tf{"D2", "dlt=orders", nopDLTHandler}), nil, []string{
			`struct {…}.D2 (kretry tag): dlt: duplicate DLT handler for topic "orders", also field D1`}},
		{"a DLT field of the wrong type", tagged(tf{"A", "topic=orders", nopHandler}, tf{"D", "dlt=orders", nopHandler}), nil, []string{
			`struct {…}.D (kretry tag): a DLT handler field must implement dlt.Handler or be a func(context.Context, *kgo.Record, retry.State) error, got listener.HandlerFunc`}},
		{"a main topic that is another listener's retry topic",
			tagged(tf{"A", "topic=orders", nopHandler}, tf{"B", "topic=orders-retry", nopHandler}), nil, []string{
				`struct {…}.B (kretry tag): topic: duplicate topic "orders-retry": it is the main topic of "orders-retry" (field B) and the tier topic of "orders" (field A); choose other topics or suffixes`}},
		{"two plans with one DLT",
			tagged(tf{"A", "topic=orders", nopHandler}, tf{"B", "topic=orders-d,dltSuffix=lt", nopHandler}), nil, []string{
				`struct {…}.B (kretry tag): topic: duplicate topic "orders-dlt": it is the dlt topic of "orders-d" (field B) and the dlt topic of "orders" (field A); choose other topics or suffixes`}},
		{"a policy file entry nobody consumes",
			tagged(tf{"A", "topic=orders", nopHandler}),
			[]listener.RegisterOpt{listener.PolicyFile(parsePolicy(t, "listeners:\n  - topic: ordrs\n  - topic: orders\n    maxDelay: 1s\n"))},
			[]string{
				`policy.yaml:2:5: topic: listener entry for topic "ordrs" matches no handler field (consumed: orders)`,
				`policy.yaml:4:15: listeners[1].maxDelay: applies only to exponential backoff, but backoff is fixed (from Go options or defaults); set multiplier for exponential`,
			}},
		{"invalid Go options are reported with the field", tagged(tf{"A", "topic=orders", nopHandler}),
			[]listener.RegisterOpt{listener.Concurrency(-1)}, []string{
				`struct {…}.A (kretry tag): listener: Concurrency must be >= 1, or 0 for the default, got -1`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ls, err := listener.Register(offlineSeeds, tt.handlers, tt.opts...)
			if ls != nil {
				t.Errorf("Register returned listeners with an error")
			}
			wantErrLines(t, err, tt.want...)
		})
	}
}

func wantErrLines(t *testing.T, err error, want ...string) {
	t.Helper()
	if err == nil {
		t.Fatalf("no error; want:\n%s", strings.Join(want, "\n"))
	}
	if got := err.Error(); got != strings.Join(want, "\n") {
		t.Errorf("errors:\n%s\nwant:\n%s", got, strings.Join(want, "\n"))
	}
}

// wantConfigError checks that the first *config.Error in err is at pos,
// with key.
func wantConfigError(t *testing.T, err error, pos config.Pos, key string) {
	t.Helper()
	var ce *config.Error
	if !errors.As(err, &ce) || ce.Pos != pos || ce.Key != key {
		t.Errorf("%v: want a *config.Error at %v, key %s", err, pos, key)
	}
}

// Every problem that names a place is a *config.Error; the sentinel
// errors show through Register's joined error.
func TestRegisterErrorsAreTyped(t *testing.T) {
	_, err := listener.Register(offlineSeeds, tagged(tf{"A", "topic=orders,exclude=nope,atempts=1", nopHandler}), listener.NamedErrors(namedErrors(t)))
	if !errors.Is(err, config.ErrUnknownKey) {
		t.Errorf("%v does not wrap ErrUnknownKey", err)
	}
	_, err = listener.Register(offlineSeeds, tagged(tf{"A", "topic=orders,exclude=nope", nopHandler}), listener.NamedErrors(namedErrors(t)))
	var ce *config.Error
	if !errors.Is(err, config.ErrNotRegistered) || !errors.As(err, &ce) || ce.Pos.Field != "A" || ce.Key != "exclude[0]" {
		t.Errorf("%v: want a *config.Error at field A, key exclude[0], wrapping ErrNotRegistered", err)
	}
}

type orderService struct{ calls int }

func (s *orderService) Handle(context.Context, *kgo.Record) error { s.calls++; return nil }

type dltService struct{}

func (dltService) HandleDLT(context.Context, *kgo.Record, retry.State) error { return nil }

// Handler fields may hold any implementation: an interface, a HandlerFunc,
// a plain func, a pointer, or a value whose pointer implements Handler.
func TestRegisterHandlerKinds(t *testing.T) {
	type kinds struct {
		Iface   listener.Handler                                      `kretry:"topic=a"`
		Func    listener.HandlerFunc                                  `kretry:"topic=b"`
		Plain   func(context.Context, *kgo.Record) error              `kretry:"topic=c"`
		Pointer *orderService                                         `kretry:"topic=d"`
		Value   orderService                                          `kretry:"topic=e"`
		DLTIf   dlt.Handler                                           `kretry:"dlt=a"`
		DLTFunc func(context.Context, *kgo.Record, retry.State) error `kretry:"dlt=b"`
		DLTVal  dltService                                            `kretry:"dlt=c"`
		Skip    listener.HandlerFunc                                  `kretry:"-"`
		_       struct{}
	}
	h := &kinds{Iface: nopHandler, Func: nopHandler, Plain: func(context.Context, *kgo.Record) error { return nil },
		Pointer: &orderService{}, DLTIf: nopDLTHandler, DLTFunc: func(context.Context, *kgo.Record, retry.State) error { return nil }}
	ls, err := listener.Register(offlineSeeds, h)
	if err != nil {
		t.Fatal(err)
	}
	var topics []string
	for _, l := range ls {
		topics = append(topics, l.Spec().Topic)
	}
	if got := strings.Join(topics, ","); got != "a,b,c,d,e" {
		t.Errorf("topics %s, want a,b,c,d,e in field order", got)
	}
	// A value whose pointer implements Handler needs an addressable struct.
	_, err = listener.Register(offlineSeeds, *h)
	wantErrLines(t, err, "listener_test.kinds.Value (kretry tag): a handler field must implement listener.Handler or listener.BatchHandler, or be a func(context.Context, *kgo.Record) error or a func(context.Context, []*kgo.Record) error, got listener_test.orderService")
}

func TestFromSpec(t *testing.T) {
	s := config.DefaultSpec("orders")
	s.Group = "g"
	s.Policy.Attempts = 5
	l, err := listener.New(offlineSeeds, "orders", nopHandler, listener.FromSpec(s))
	if err != nil {
		t.Fatal(err)
	}
	if !l.Spec().Equal(s) {
		t.Errorf("Spec() = %+v, want %+v", l.Spec(), s)
	}
	_, err = listener.New(offlineSeeds, "payments", nopHandler, listener.FromSpec(s))
	if err == nil || !strings.Contains(err.Error(), `FromSpec: spec is for topic "orders", the listener's topic is "payments"`) {
		t.Errorf("FromSpec with another topic: %v", err)
	}
}
