package dltops

import (
	"context"
	"math"
	"time"
)

// Limiter is a token bucket: it lets rate events per second through on
// average, and up to burst at once after a pause. The zero Limiter (and a
// nil one) lets everything through. It is not safe for concurrent use.
type Limiter struct {
	rate   float64 // tokens per second; <= 0: unlimited
	burst  float64
	tokens float64
	last   time.Time
	clock  Clock
}

// NewLimiter returns a Limiter of rate events per second (<= 0: unlimited)
// on clock (nil: the system clock). Its burst is a twentieth of a second's
// worth of events, at least 1, so that high rates do not depend on the
// timer resolution and low rates stay even.
func NewLimiter(rate float64, clock Clock) *Limiter {
	if clock == nil {
		clock = RealClock()
	}
	burst := max(1, math.Floor(rate/20))
	return &Limiter{rate: rate, burst: burst, tokens: burst, clock: clock}
}

// Wait takes one token, waiting until there is one or ctx ends (then it
// returns ctx.Err() and takes nothing).
func (l *Limiter) Wait(ctx context.Context) error {
	if err := ctx.Err(); err != nil || l == nil || l.rate <= 0 {
		return err
	}
	for {
		now := l.clock.Now()
		if !l.last.IsZero() {
			l.tokens = min(l.burst, l.tokens+now.Sub(l.last).Seconds()*l.rate)
		}
		l.last = now
		if l.tokens >= 1 {
			l.tokens--
			return nil
		}
		wait := time.Duration(math.Ceil((1 - l.tokens) / l.rate * float64(time.Second)))
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-l.clock.After(wait):
		}
	}
}
