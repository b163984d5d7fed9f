package strategy_test

import (
	"errors"
	"fmt"
	"io/fs"
	"syscall"
	"time"

	"github.com/kretry/kretry/strategy"
)

// The example from Spring Kafka's reference documentation: four attempts,
// exponential backoff from one second, doubling.
func ExampleNewPlan() {
	p, err := strategy.NewPlan("orders", 4,
		strategy.ExponentialBackoff(time.Second, 2, 0), strategy.Naming{})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Print(p)
	// Output:
	// orders	-
	// orders-retry-1000	1s
	// orders-retry-2000	2s
	// orders-retry-4000	4s
	// orders-dlt	-
}

// The zero values give Spring Kafka's defaults: three attempts share one
// reusable retry topic.
func ExampleNewPlan_defaults() {
	p, err := strategy.NewPlan("orders", 3, strategy.Backoff{}, strategy.Naming{}, "-validation")
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Print(p)
	fmt.Println(p.Tiers[0].Reusable)
	// Output:
	// orders	-
	// orders-retry	1s
	// orders-dlt	-
	// orders-validation-dlt	-
	// true
}

// A capped exponential backoff: the retries at the cap share one reusable
// topic by default, or get one topic each with MultipleTopics.
func ExampleNewPlan_capped() {
	b := strategy.ExponentialBackoff(time.Second, 2, 4*time.Second)
	for _, same := range []strategy.SameInterval{strategy.SingleTopic, strategy.MultipleTopics} {
		p, err := strategy.NewPlan("orders", 6, b, strategy.Naming{SameInterval: same})
		if err != nil {
			fmt.Println(err)
			return
		}
		fmt.Printf("%s:", same)
		for _, t := range p.Tiers {
			fmt.Printf(" %s", t.Topic)
		}
		fmt.Println()
	}
	// Output:
	// single: orders-retry-1000 orders-retry-2000 orders-retry-4000
	// multiple: orders-retry-1000 orders-retry-2000 orders-retry-4000-0 orders-retry-4000-1 orders-retry-4000-2
}

func ExamplePlan_TierForAttempt() {
	p, _ := strategy.NewPlan("orders", 5,
		strategy.ExponentialBackoff(time.Second, 2, 2*time.Second), strategy.Naming{})
	for attempt := 1; attempt <= 6; attempt++ {
		if t, ok := p.TierForAttempt(attempt); ok {
			fmt.Printf("delivery %d: %s after %v\n", attempt, t.Topic, t.Delay)
		} else {
			fmt.Printf("delivery %d: no tier\n", attempt)
		}
	}
	// Output:
	// delivery 1: no tier
	// delivery 2: orders-retry-1000 after 1s
	// delivery 3: orders-retry-2000 after 2s
	// delivery 4: orders-retry-2000 after 2s
	// delivery 5: orders-retry-2000 after 2s
	// delivery 6: no tier
}

func ExampleBackoff_Schedule() {
	fmt.Println(strategy.Backoff{}.Schedule(3))
	fmt.Println(strategy.ExponentialBackoff(time.Second, 2, 5*time.Second).Schedule(5))
	fmt.Println(strategy.ListBackoff(time.Second, 10*time.Second).Schedule(4))
	// Jitter never changes the nominal schedule.
	b := strategy.ExponentialBackoff(time.Second, 1.5, 0)
	b.Jitter = 0.3
	fmt.Println(b.Schedule(5))
	// Output:
	// [1s 1s 1s]
	// [1s 2s 4s 5s 5s]
	// [1s 10s 10s 10s]
	// [1s 1.5s 2.25s 3.375s 5.062s]
}

func ExampleBackoff_Jittered() {
	b := strategy.FixedBackoff(10 * time.Second)
	b.Jitter = 0.2
	for _, r := range []float64{0, 0.25, 0.5, 0.75} {
		fmt.Println(b.Jittered(10*time.Second, func() float64 { return r }))
	}
	// Output:
	// 8s
	// 9s
	// 10s
	// 11s
}

func ExampleClassifier_Classify() {
	errBadInput := errors.New("bad input")
	c := strategy.Classifier{
		Exclude: []strategy.Matcher{strategy.Is("bad-input", errBadInput)},
		Routes: []strategy.Route{
			{Suffix: "-fs", Matcher: strategy.As[*fs.PathError]("path")},
		},
	}
	for _, err := range []error{
		errors.New("connection refused"),
		fmt.Errorf("decode order 42: %w", errBadInput),
		strategy.Permanent(&fs.PathError{Op: "open", Path: "/cfg", Err: syscall.ENOENT}),
		fmt.Errorf("charge: %w", strategy.RetryAfter(errors.New("rate limited"), 30*time.Second)),
	} {
		d := c.Classify(err)
		fmt.Printf("%s %s route=%q delay=%v\n", d.Verdict, d.Reason, d.Route, d.Delay)
	}
	// Output:
	// retry retryable route="" delay=0s
	// dead-letter excluded:bad-input route="" delay=0s
	// dead-letter permanent route="-fs" delay=0s
	// retry retryable route="" delay=30s
}

func ExampleErrorType() {
	cause := &fs.PathError{Op: "open", Path: "/cfg", Err: syscall.ENOENT}
	fmt.Println(strategy.ErrorType(cause))
	fmt.Println(strategy.ErrorType(fmt.Errorf("load config: %w", cause)))
	fmt.Println(strategy.ErrorType(strategy.Permanent(fmt.Errorf("load config: %w", cause))))
	fmt.Println(strategy.ErrorType(errors.New("plain")))
	// Output:
	// *fs.PathError
	// *fs.PathError
	// *fs.PathError
	// *errors.errorString
}
