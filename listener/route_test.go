package listener

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/kretry/kretry/retry"
	"github.com/kretry/kretry/strategy"
)

var (
	errRouteTimeout    = errors.New("db: timeout")
	errRouteValidation = errors.New("order: invalid")
	errRoutePayment    = errors.New("payment: declined")
)

// Every branch of the routing decision, without Kafka: classification,
// routes, exhaustion, tier choice and delay, requested delays and their
// cap, jitter bounds, the time budget, and NoDLT.
func TestRouteDecide(t *testing.T) {
	now := time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC)
	// A main-topic record produced a minute ago, failing for the first
	// time: its next delivery is attempt 2.
	first := retry.First(&kgo.Record{Topic: "orders", Timestamp: now.Add(-time.Minute)}, now)
	at := func(attempt int32) retry.State { s := first; s.Attempt = attempt; return s }

	type tc struct {
		name   string
		policy retry.Policy
		max    time.Duration // MaxRequestedDelay; default 1h
		random float64       // the jitter source's value; default 0.5
		next   retry.State
		err    error
		want   decision
	}
	exp := retry.Policy{Attempts: 4, Backoff: strategy.ExponentialBackoff(time.Second, 2, 0)}
	classify := func(c strategy.Classifier) retry.Policy { p := exp; p.Classifier = c; return p }
	validation := strategy.Is("validation", errRouteValidation)
	payment := strategy.Is("payment", errRoutePayment)
	tests := []tc{
		{name: "retryable: first tier, its delay", policy: exp, next: first, err: errRouteTimeout,
			want: decision{kind: routeTier, topic: "orders-retry-1000", due: now.Add(time.Second)}},
		{name: "retryable: third delivery goes to the second tier", policy: exp, next: at(3), err: errRouteTimeout,
			want: decision{kind: routeTier, topic: "orders-retry-2000", due: now.Add(2 * time.Second)}},
		{name: "exhausted: no tier for attempt 5 of 4", policy: exp, next: at(5), err: errRouteTimeout,
			want: decision{kind: routeDLT, topic: "orders-dlt", reason: retry.ReasonExhausted}},
		{name: "permanent", policy: exp, next: first, err: strategy.Permanent(errRouteTimeout),
			want: decision{kind: routeDLT, topic: "orders-dlt", reason: retry.ReasonPermanent}},
		{name: "permanent on the last tier is still permanent", policy: exp, next: at(5), err: strategy.Permanent(errRouteTimeout),
			want: decision{kind: routeDLT, topic: "orders-dlt", reason: retry.ReasonPermanent}},
		{name: "excluded", policy: classify(strategy.Classifier{Exclude: []strategy.Matcher{validation}}),
			next: first, err: fmt.Errorf("parse: %w", errRouteValidation),
			want: decision{kind: routeDLT, topic: "orders-dlt", reason: retry.ReasonExcludedPrefix + "validation"}},
		{name: "not included", policy: classify(strategy.Classifier{Include: []strategy.Matcher{validation}}),
			next: first, err: errRouteTimeout,
			want: decision{kind: routeDLT, topic: "orders-dlt", reason: retry.ReasonNotIncluded}},
		{name: "included is retried", policy: classify(strategy.Classifier{Include: []strategy.Matcher{validation}}),
			next: first, err: errRouteValidation,
			want: decision{kind: routeTier, topic: "orders-retry-1000", due: now.Add(time.Second)}},
		{name: "routed and excluded: the route's DLT",
			policy: classify(strategy.Classifier{Exclude: []strategy.Matcher{payment},
				Routes: []strategy.Route{{Suffix: "-payments", Matcher: payment}}}),
			next: first, err: errRoutePayment,
			want: decision{kind: routeDLT, topic: "orders-payments-dlt", reason: retry.ReasonExcludedPrefix + "payment"}},
		{name: "routed and exhausted: the route's DLT",
			policy: classify(strategy.Classifier{Routes: []strategy.Route{{Suffix: "-payments", Matcher: payment}}}),
			next:   at(5), err: errRoutePayment,
			want: decision{kind: routeDLT, topic: "orders-payments-dlt", reason: retry.ReasonExhausted}},
		{name: "routed and retryable: a tier first",
			policy: classify(strategy.Classifier{Routes: []strategy.Route{{Suffix: "-payments", Matcher: payment}}}),
			next:   first, err: errRoutePayment,
			want: decision{kind: routeTier, topic: "orders-retry-1000", due: now.Add(time.Second)}},
		{name: "requested delay replaces the tier's", policy: exp, next: first,
			err:  strategy.RetryAfter(errRouteTimeout, 30*time.Second),
			want: decision{kind: routeTier, topic: "orders-retry-1000", due: now.Add(30 * time.Second)}},
		{name: "requested delay cut to MaxRequestedDelay", policy: exp, max: time.Minute, next: first,
			err:  strategy.RetryAfter(errRouteTimeout, 2*time.Hour),
			want: decision{kind: routeTier, topic: "orders-retry-1000", due: now.Add(time.Minute), capped: 2 * time.Hour}},
		{name: "requested delay is not jittered", policy: jittered(exp, 0.5), random: 0.999, next: first,
			err:  strategy.RetryAfter(errRouteTimeout, 10*time.Second),
			want: decision{kind: routeTier, topic: "orders-retry-1000", due: now.Add(10 * time.Second)}},
		{name: "jitter at its low bound", policy: jittered(exp, 0.5), random: 0, next: first, err: errRouteTimeout,
			want: decision{kind: routeTier, topic: "orders-retry-1000", due: now.Add(500 * time.Millisecond)}},
		{name: "jitter above the delay", policy: jittered(exp, 0.5), random: 0.75, next: first, err: errRouteTimeout,
			want: decision{kind: routeTier, topic: "orders-retry-1000", due: now.Add(1250 * time.Millisecond)}},
		{name: "time budget: due within it", policy: timed(exp, 2*time.Minute), next: at(3), err: errRouteTimeout,
			want: decision{kind: routeTier, topic: "orders-retry-2000", due: now.Add(2 * time.Second)}},
		{name: "time budget: due past it", policy: timed(exp, time.Minute+time.Second), next: at(3), err: errRouteTimeout,
			want: decision{kind: routeDLT, topic: "orders-dlt", reason: retry.ReasonTimeout}},
		{name: "time budget counts the capped requested delay", policy: timed(exp, 30*time.Minute), max: time.Hour, next: first,
			err:  strategy.RetryAfter(errRouteTimeout, 3*time.Hour),
			want: decision{kind: routeDLT, topic: "orders-dlt", reason: retry.ReasonTimeout, capped: 3 * time.Hour}},
		{name: "NoDLT: exhausted is dropped", policy: noDLT(exp), next: at(5), err: errRouteTimeout,
			want: decision{kind: routeDrop, reason: retry.ReasonExhausted}},
		{name: "NoDLT: permanent is dropped", policy: noDLT(exp), next: first, err: strategy.Permanent(errRouteTimeout),
			want: decision{kind: routeDrop, reason: retry.ReasonPermanent}},
		{name: "NoDLT: retryable still retries", policy: noDLT(exp), next: first, err: errRouteTimeout,
			want: decision{kind: routeTier, topic: "orders-retry-1000", due: now.Add(time.Second)}},
		{name: "one attempt: no tier at all", policy: retry.Policy{Attempts: 1}, next: first, err: errRouteTimeout,
			want: decision{kind: routeDLT, topic: "orders-dlt", reason: retry.ReasonExhausted}},
		{name: "Spring defaults: one reusable -retry topic", policy: retry.Policy{}, next: at(3), err: errRouteTimeout,
			want: decision{kind: routeTier, topic: "orders-retry", due: now.Add(time.Second)}},
		{name: "zero-delay list tier", policy: retry.Policy{Attempts: 2, Backoff: strategy.ListBackoff(0)}, next: first,
			err: errRouteTimeout, want: decision{kind: routeTier, topic: "orders-retry", due: now}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pol := tt.policy.Normalize()
			plan, err := pol.Plan("orders")
			if err != nil {
				t.Fatal(err)
			}
			maxRequested, rnd := tt.max, tt.random
			if maxRequested == 0 {
				maxRequested = time.Hour
			}
			if rnd == 0 && tt.name != "jitter at its low bound" {
				rnd = 0.5
			}
			r := router{policy: &pol, plan: &plan, maxRequested: maxRequested, random: func() float64 { return rnd }}
			if got := r.decide(tt.next, tt.err, now); got != tt.want {
				t.Errorf("decide = %+v\n          want %+v", got, tt.want)
			}
		})
	}
}

func jittered(p retry.Policy, j float64) retry.Policy    { p.Backoff.Jitter = j; return p }
func timed(p retry.Policy, d time.Duration) retry.Policy { p.Timeout = d; return p }
func noDLT(p retry.Policy) retry.Policy                  { p.DLT = retry.NoDLT; return p }
