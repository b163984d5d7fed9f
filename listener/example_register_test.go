package listener_test

import (
	"context"
	"errors"
	"fmt"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/kretry/kretry/config"
	"github.com/kretry/kretry/dlt"
	"github.com/kretry/kretry/listener"
	"github.com/kretry/kretry/retry"
	"github.com/kretry/kretry/strategy"
)

var (
	ErrInvalidOrder = errors.New("invalid order")
	ErrNoSuchItem   = errors.New("no such item")
)

// OrderHandlers declares its listeners in struct tags: one per handler
// field, and a DLT handler for the orders topic.
type OrderHandlers struct {
	Orders    listener.HandlerFunc `kretry:"topic=orders,group=billing,attempts=4,delay=1s,multiplier=2,maxDelay=10s,exclude=validation|notfound"`
	OrdersDLT dlt.HandlerFunc      `kretry:"dlt=orders"`
	Refunds   listener.HandlerFunc `kretry:"topic=refunds,delays=1s|1m"`
}

// Register builds the listeners of a struct of tagged handlers, with a
// policy file applied over the tags. It connects to nothing and starts
// nothing; run the listeners with listener.RunAll.
func ExampleRegister() {
	reg, _ := config.NewRegistry(
		strategy.Is("validation", ErrInvalidOrder),
		strategy.Is("notfound", ErrNoSuchItem),
	)
	// An operator's file: refunds get a third retry.
	file, _ := config.Parse("policy.yaml", []byte(`
listeners:
  - topic: refunds
    attempts: 4
    delays: [1s, 1m, 10m]
`))
	handlers := &OrderHandlers{
		Orders:    func(ctx context.Context, rec *kgo.Record) error { return nil },
		OrdersDLT: func(ctx context.Context, rec *kgo.Record, st retry.State) error { return nil },
		Refunds:   func(ctx context.Context, rec *kgo.Record) error { return nil },
	}
	ls, err := listener.Register([]string{"localhost:9092"}, handlers,
		listener.NamedErrors(reg), listener.PolicyFile(file))
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, l := range ls {
		fmt.Printf("group %s:\n%s", l.Group(), l.Plan())
	}
	// return listener.RunAll(ctx, ls...)

	// Output:
	// group billing:
	// orders	-
	// orders-retry-1000	1s
	// orders-retry-2000	2s
	// orders-retry-4000	4s
	// orders-dlt	-
	// group kretry-refunds:
	// refunds	-
	// refunds-retry-1000	1s
	// refunds-retry-60000	1m0s
	// refunds-retry-600000	10m0s
	// refunds-dlt	-
}

// Problems are reported all at once, each naming where it was written.
func ExampleRegister_errors() {
	type Handlers struct {
		Orders    listener.HandlerFunc `kretry:"topic=orders,delay=2s,multiplier=2,maxDelay=1s,exclude=validaton"`
		OrdersDLT dlt.HandlerFunc      `kretry:"dlt=ordres"`
	}
	reg, _ := config.NewRegistry(strategy.Is("validation", ErrInvalidOrder))
	_, err := listener.Register([]string{"localhost:9092"}, &Handlers{
		Orders:    func(context.Context, *kgo.Record) error { return nil },
		OrdersDLT: func(context.Context, *kgo.Record, retry.State) error { return nil },
	}, listener.NamedErrors(reg))
	fmt.Println(err)
	// Output:
	// listener_test.Handlers.OrdersDLT (kretry tag): dlt: no handler field consumes topic "ordres" (consumed: orders)
	// listener_test.Handlers.Orders (kretry tag): exclude[0]: error "validaton" is not registered (registered: validation); did you mean "validation"?
	// listener_test.Handlers.Orders (kretry tag): maxDelay: must be 0s (no cap) or >= delay 2s, got 1s
}
