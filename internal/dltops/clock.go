package dltops

import "time"

// Clock is the time source of a replay: its rate limiter, checkpoint
// interval and progress. Tests use a fake one.
type Clock interface {
	Now() time.Time
	// After returns a channel that delivers once d has passed.
	After(d time.Duration) <-chan time.Time
}

type realClock struct{}

func (realClock) Now() time.Time                         { return time.Now() }
func (realClock) After(d time.Duration) <-chan time.Time { return time.After(d) }

// RealClock returns the system clock.
func RealClock() Clock { return realClock{} }
