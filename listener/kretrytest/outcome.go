package kretrytest

import (
	"fmt"
	"strconv"
)

type outcomeKind uint8

const (
	kindHandled outcomeKind = iota + 1
	kindDeadLettered
	kindRetried
)

// Outcome is what a key is waited for to reach (Recorder.Wait,
// Kit.Require): Handled, DeadLettered or Retried. The zero Outcome is
// never reached.
type Outcome struct {
	kind    outcomeKind
	attempt int32  // Handled: the delivery's number; 0 for any
	text    string // DeadLettered: the reason; Retried: the tier; "" for any
}

// Handled is reached when the handler returns nil for the key on
// delivery attempt (1 for the first delivery from the main topic, 2 for
// the first retry, …); attempt 0 accepts any delivery.
func Handled(attempt int) Outcome { return Outcome{kind: kindHandled, attempt: int32(attempt)} }

// DeadLettered is reached when the DLT handler wrapped by
// Recorder.WrapDLT receives the key with the given reason (the
// kretry-reason header: retry.ReasonExhausted, retry.ReasonPermanent,
// "excluded:<name>", …); reason "" accepts any.
func DeadLettered(reason string) Outcome { return Outcome{kind: kindDeadLettered, text: reason} }

// Retried is reached when the handler is called for the key from the
// retry tier topic tier (such as "orders-retry-1000"); tier "" accepts any
// retry tier, that is, any delivery after the first.
func Retried(tier string) Outcome { return Outcome{kind: kindRetried, text: tier} }

// String describes the outcome, as failure messages name it: "handled on
// attempt 2", "dead-lettered with reason \"permanent\"", "retried from
// orders-retry".
func (o Outcome) String() string {
	switch o.kind {
	case kindHandled:
		if o.attempt == 0 {
			return "handled"
		}
		return "handled on attempt " + strconv.Itoa(int(o.attempt))
	case kindDeadLettered:
		if o.text == "" {
			return "dead-lettered"
		}
		return fmt.Sprintf("dead-lettered with reason %q", o.text)
	case kindRetried:
		if o.text == "" {
			return "retried"
		}
		return "retried from " + o.text
	}
	return "no outcome (the zero Outcome)"
}

// reachedBy reports whether delivery d reaches o.
func (o Outcome) reachedBy(d Delivery) bool {
	switch o.kind {
	case kindHandled:
		return !d.DeadLetter && d.Err == nil && (o.attempt == 0 || d.Attempt == o.attempt)
	case kindDeadLettered:
		return d.DeadLetter && (o.text == "" || d.State.Reason == o.text)
	case kindRetried:
		return !d.DeadLetter && d.Attempt >= 2 && (o.text == "" || d.Topic == o.text)
	}
	return false
}
