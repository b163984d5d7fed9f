package config_test

import (
	"errors"
	"fmt"
	"os"

	"github.com/kretry/kretry/config"
	"github.com/kretry/kretry/strategy"
)

var (
	ErrInvalid  = errors.New("invalid order")
	ErrNotFound = errors.New("no such item")
)

// A struct tag's settings resolve to a policy and its topic plan.
func ExampleParseTag() {
	reg, _ := config.NewRegistry(strategy.Is("validation", ErrInvalid), strategy.Is("notfound", ErrNotFound))
	d, err := config.ParseTag("topic=orders,group=billing,attempts=4,delay=1s,multiplier=2,maxDelay=10s,exclude=validation|notfound",
		config.Pos{Struct: "main.Handlers", Field: "Orders"})
	if err != nil {
		fmt.Println(err)
		return
	}
	s, err := config.Resolve(config.DefaultSpec(d.Topic()), reg, d)
	if err != nil {
		fmt.Println(err)
		return
	}
	plan, _ := s.Plan()
	fmt.Println(s.Group, s.Policy.Attempts, s.Policy.Backoff.Kind, s.Policy.Backoff.MaxDelay)
	fmt.Print(plan)
	// Output:
	// billing 4 exponential 10s
	// orders	-
	// orders-retry-1000	1s
	// orders-retry-2000	2s
	// orders-retry-4000	4s
	// orders-dlt	-
}

// A policy file's problems name the file, line and column, the key and
// the rule, all at once.
func ExampleParse_errors() {
	_, err := config.Parse("policy.yaml", []byte(`
defaults:
  atempts: 4
listeners:
  - topic: orders
    delay: 1000
    exclude: validation
`))
	fmt.Println(err)
	// Output:
	// policy.yaml:3:3: defaults.atempts: unknown key "atempts"; did you mean "attempts"?
	// policy.yaml:6:12: listeners[0].delay: want a duration such as 1s or 500ms, got integer 1000
	// policy.yaml:7:14: listeners[0].exclude: want a list (e.g. [validation, notfound]), got string "validation"
}

// Later sources win, field by field: here a policy file's defaults and
// entry over a struct tag.
func ExampleResolve() {
	tag, _ := config.ParseTag("topic=orders,attempts=3,delay=1s,multiplier=2", config.Pos{Struct: "main.Handlers", Field: "Orders"})
	file, _ := config.Parse("policy.yaml", []byte(`
defaults:
  attempts: 5
listeners:
  - topic: orders
    maxDelay: 4s
`))
	s, err := config.Resolve(config.DefaultSpec("orders"), nil, append([]*config.Decl{tag}, file.Layers("orders")...)...)
	if err != nil {
		fmt.Println(err)
		return
	}
	plan, _ := s.Plan()
	fmt.Print(plan)
	// Output:
	// orders	-
	// orders-retry-1000	1s
	// orders-retry-2000	2s
	// orders-retry-4000	4s
	// orders-dlt	-
}

// MarshalYAML writes resolved specs back as a policy file with every
// setting explicit, as `kretry policy validate` prints them.
func ExampleMarshalYAML() {
	file, _ := config.Parse("policy.yaml", []byte("listeners:\n  - topic: orders\n    delays: [1s, 30s]\n"))
	specs, _ := file.Specs(nil)
	out, _ := config.MarshalYAML(specs...)
	os.Stdout.Write(out)
	// Output:
	// version: 1
	// listeners:
	//   - topic: orders
	//     group: kretry-orders
	//     attempts: 3
	//     backoff: list
	//     jitter: 0
	//     delays:
	//       - 1s
	//       - 30s
	//     retrySuffix: -retry
	//     dltSuffix: -dlt
	//     suffixing: delay
	//     sameInterval: single
	//     timeout: 0s
	//     maxErrorBytes: 4096
	//     dltStrategy: retry-on-error
	//     dltHandlerAttempts: 3
	//     dltHandlerBackoff: 1s
	//     createTopics: true
	//     partitions: -1
	//     replicationFactor: -1
}

// A Registry maps the error names of tags and files to matchers.
func ExampleNewRegistry() {
	reg, err := config.NewRegistry(
		strategy.Is("notfound", ErrNotFound),
		strategy.Is("validation", ErrInvalid),
	)
	if err != nil {
		fmt.Println(err)
		return
	}
	m, _ := reg.Lookup("notfound")
	fmt.Println(reg.Names(), m.Match(fmt.Errorf("load: %w", ErrNotFound)))
	_, err = config.NewRegistry(strategy.Is("not found", ErrNotFound))
	fmt.Println(err)
	// Output:
	// [notfound validation] true
	// config: NewRegistry: matcher 0: name may contain only [A-Za-z0-9._/-], got "not found" with " " at byte 3
}
