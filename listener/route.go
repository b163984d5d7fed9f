package listener

import (
	"time"

	"github.com/kretry/kretry/retry"
	"github.com/kretry/kretry/strategy"
)

// routeKind is where a record that failed goes next.
type routeKind uint8

const (
	routeTier routeKind = iota + 1 // publish to a retry tier, due at decision.due
	routeDLT                       // publish to a DLT, with decision.reason
	routeDrop                      // retry.NoDLT: log and commit, with decision.reason
)

// decision is what routing decided for a record whose delivery failed.
type decision struct {
	kind   routeKind
	topic  string    // the tier or DLT to publish to; "" for routeDrop
	due    time.Time // routeTier: when the next delivery is due
	reason string    // routeDLT, routeDrop: why the record failed for good
	// capped is the delay the handler asked for (strategy.RetryAfter)
	// when it was longer than MaxRequestedDelay and was cut to it; 0
	// otherwise.
	capped time.Duration
}

// router holds what routing depends on besides the failure itself: the
// listener's policy and plan, MaxRequestedDelay and the jitter's random
// source.
type router struct {
	policy       *retry.Policy
	plan         *strategy.Plan
	maxRequested time.Duration
	random       func() float64
}

func (l *Listener) router() router {
	return router{policy: &l.policy, plan: &l.plan, maxRequested: l.cfg.maxRequested, random: l.cfg.random}
}

// decide routes a record whose delivery failed with err at now. next is
// the record's state for the delivery that would come next (retry.First
// for a main-topic record, State.Advance for a tier record). In order:
//
//  1. the classifier's dead-letter verdict (permanent, excluded, not
//     included) sends it to its route's DLT;
//  2. no tier for next.Attempt: the attempts are used up (exhausted);
//  3. the delay is the one the handler asked for, cut to MaxRequestedDelay,
//     or else the tier's, jittered;
//  4. a due time past the policy's Timeout, counted from the original
//     record's timestamp, dead-letters it (timeout);
//  5. otherwise it goes to the tier, due at now + delay.
//
// A dead letter is dropped instead under retry.NoDLT. decide reads no
// clock, does no I/O and draws randomness only from r.random, so it is
// tested as a table (route_test.go).
func (r router) decide(next retry.State, err error, now time.Time) decision {
	c := r.policy.Classifier.Classify(err)
	if c.Verdict == strategy.VerdictDeadLetter {
		return r.dead(c.Reason, c.Route)
	}
	tier, ok := r.plan.TierForAttempt(int(next.Attempt))
	if !ok {
		return r.dead(ReasonExhausted, c.Route)
	}
	var capped time.Duration
	delay := tier.Delay
	if c.HasDelay {
		delay = c.Delay
		if delay > r.maxRequested {
			capped, delay = delay, r.maxRequested
		}
	} else {
		delay = r.policy.Backoff.Jittered(delay, r.random)
	}
	due := now.Add(delay)
	if t := r.policy.Timeout; t > 0 && due.Sub(next.OriginalTimestamp) > t {
		d := r.dead(ReasonTimeout, c.Route)
		d.capped = capped
		return d
	}
	return decision{kind: routeTier, topic: tier.Topic, due: due, capped: capped}
}

// dead is the decision for a record that failed for good with reason: the
// DLT of route ("" for the default DLT), or a drop under retry.NoDLT.
func (r router) dead(reason, route string) decision {
	if r.policy.DLT == retry.NoDLT {
		return decision{kind: routeDrop, reason: reason}
	}
	topic, _ := r.plan.DLTFor(route)
	return decision{kind: routeDLT, topic: topic, reason: reason}
}
