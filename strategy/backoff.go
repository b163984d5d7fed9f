package strategy

import (
	"fmt"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/cenkalti/backoff/v4"
)

// BackoffKind selects how a Backoff computes its delays. The zero value is
// Fixed.
type BackoffKind int

const (
	// Fixed waits Backoff.Delay before every retry. It is the default.
	Fixed BackoffKind = iota
	// Exponential waits Backoff.Delay before the first retry and multiplies
	// the wait by Backoff.Multiplier for each later one, capped at
	// Backoff.MaxDelay when that is set.
	Exponential
	// List waits Backoff.Delays[i] before retry i+1 and reuses the last
	// entry once the list runs out.
	List
)

var backoffKindNames = [...]string{"fixed", "exponential", "list"}

// String returns "fixed", "exponential" or "list", and "BackoffKind(N)" for
// any other value.
func (k BackoffKind) String() string {
	if k < 0 || int(k) >= len(backoffKindNames) {
		return fmt.Sprintf("BackoffKind(%d)", int(k))
	}
	return backoffKindNames[k]
}

// MarshalText implements encoding.TextMarshaler with the names String
// returns. It fails for a value that is not one of the constants.
func (k BackoffKind) MarshalText() ([]byte, error) {
	if k < 0 || int(k) >= len(backoffKindNames) {
		return nil, fmt.Errorf("unrecognized backoff kind: %d", int(k))
	}
	return []byte(backoffKindNames[k]), nil
}

// UnmarshalText implements encoding.TextUnmarshaler. It accepts the names
// String returns in any letter case; empty text means the default, Fixed.
// Anything else fails with `unrecognized backoff kind: "x"`.
func (k *BackoffKind) UnmarshalText(text []byte) error {
	s := string(text)
	if s == "" {
		*k = Fixed
		return nil
	}
	for i, name := range backoffKindNames {
		if strings.EqualFold(s, name) {
			*k = BackoffKind(i)
			return nil
		}
	}
	return fmt.Errorf("unrecognized backoff kind: %q", s)
}

// DefaultDelay is the delay Normalize gives a Fixed or Exponential Backoff
// whose Delay is zero: one second, as in Spring Kafka.
const DefaultDelay = time.Second

// Backoff describes the nominal delay before each retry. Nominal delays are
// deterministic: they name the retry topics, so the same Backoff always
// yields the same topics. Jitter is applied later, to each actual wait only.
//
// As for every kretry setting, a zero field is unset and means its
// documented default; a value that can never be valid is reported by
// Validate. The zero value is a fixed one-second backoff without jitter (see
// Normalize). The entries of Delays are not settings but the list's values:
// a zero entry is a retry without wait. All delays must be whole
// milliseconds, the unit of topic names.
type Backoff struct {
	// Kind selects the algorithm. Default Fixed.
	Kind BackoffKind
	// Delay is the fixed delay (Fixed) or the first delay (Exponential).
	// Zero means the default, DefaultDelay (1s); it must be unset for
	// List.
	Delay time.Duration
	// Multiplier scales each Exponential delay to get the next one. No
	// default: it must be > 1 for Exponential and unset (zero) otherwise.
	Multiplier float64
	// MaxDelay caps Exponential delays. Zero means the default, no cap;
	// when set it must be >= Delay. It must be unset for Fixed and List.
	MaxDelay time.Duration
	// Jitter is the randomization factor in [0, 1] that Jittered applies to
	// each actual wait, for every Kind. Zero means the default, no jitter.
	// It never changes nominal delays or topic names.
	Jitter float64
	// Delays lists the delays of a List backoff, first retry first: at
	// most one per retry (attempts - 1, see ValidateFor); when there are
	// more retries than entries, the last entry is reused. Each entry is
	// taken as written, so 0 is a retry without wait. It must be non-empty
	// for List and unset otherwise. No default.
	Delays []time.Duration
}

// FixedBackoff returns a Backoff that waits d before every retry. A zero d
// is unset and means the default, DefaultDelay (1s), as everywhere in
// kretry; for retries without wait use ListBackoff(0).
func FixedBackoff(d time.Duration) Backoff {
	return Backoff{Kind: Fixed, Delay: d}
}

// ExponentialBackoff returns a Backoff that waits initial before the first
// retry and multiplies the wait by multiplier (> 1) for each later retry,
// never above maxDelay. A zero initial means the default, DefaultDelay
// (1s); a zero maxDelay means the default, no cap.
func ExponentialBackoff(initial time.Duration, multiplier float64, maxDelay time.Duration) Backoff {
	return Backoff{Kind: Exponential, Delay: initial, Multiplier: multiplier, MaxDelay: maxDelay}
}

// ListBackoff returns a Backoff that waits delays[i] before retry i+1 and
// reuses the last delay for any retry beyond the list. Each delay is taken
// as written: ListBackoff(0) retries without wait. A policy allows at most
// attempts - 1 delays (ValidateFor). The slice is copied.
func ListBackoff(delays ...time.Duration) Backoff {
	return Backoff{Kind: List, Delays: slices.Clone(delays)}
}

// Normalize returns b with its defaults filled in: a zero Delay of a Fixed
// or Exponential backoff becomes DefaultDelay. Delays is copied so that the
// result shares no memory with b. Nothing else changes; in particular a zero
// Multiplier stays zero, which Validate rejects for Exponential.
func (b Backoff) Normalize() Backoff {
	if (b.Kind == Fixed || b.Kind == Exponential) && b.Delay == 0 {
		b.Delay = DefaultDelay
	}
	b.Delays = slices.Clone(b.Delays)
	return b
}

// Equal reports whether b and o describe the same backoff once normalized:
// the same Kind, Delay, Multiplier, MaxDelay, Jitter and Delays.
func (b Backoff) Equal(o Backoff) bool {
	b, o = b.Normalize(), o.Normalize()
	return b.Kind == o.Kind && b.Delay == o.Delay && b.Multiplier == o.Multiplier &&
		b.MaxDelay == o.MaxDelay && b.Jitter == o.Jitter && slices.Equal(b.Delays, o.Delays)
}

// Validate reports every problem with b, after Normalize so that unset
// fields are never errors, joined with errors.Join; each is a
// *SettingError naming the setting as policy files do ("delay",
// "multiplier", "delays[1]"). The rules: Kind is one of the constants;
// every delay is >= 0 and a whole number of milliseconds; Exponential has
// a finite Multiplier > 1 and a MaxDelay that is 0 (no cap) or >= Delay;
// List has at least one entry in Delays; Jitter is within [0, 1]; fields
// that do not apply to Kind are unset.
func (b Backoff) Validate() error {
	var ps problems
	b.validate(&ps)
	return ps.join()
}

// ValidateFor is Validate for a backoff that serves attempts deliveries
// (attempts - 1 retries; attempts as normalized, >= 1): it also reports a
// List backoff with more Delays than retries, whose extra entries would
// never be used. An attempts below 1 is not checked here.
func (b Backoff) ValidateFor(attempts int) error {
	var ps problems
	b.validate(&ps)
	b.validateFor(&ps, attempts)
	return ps.join()
}

func (b Backoff) validateFor(ps *problems, attempts int) {
	if b.Kind == List && attempts >= 1 && len(b.Delays) > attempts-1 {
		ps.add("delays", "has %d entries but attempts %d allows at most %d (attempts - 1)", len(b.Delays), attempts, attempts-1)
	}
}

func (b Backoff) validate(ps *problems) {
	b = b.Normalize()
	if math.IsNaN(b.Jitter) || b.Jitter < 0 || b.Jitter > 1 {
		ps.add("jitter", "must be within [0, 1], got %v", b.Jitter)
	}
	switch b.Kind {
	case Fixed, Exponential:
		checkDelay(ps, "delay", b.Delay)
		if len(b.Delays) > 0 {
			ps.add("delays", "applies only to list backoff, but backoff is %v", b.Kind)
		}
	case List:
		if b.Delay != 0 {
			ps.add("delay", "applies only to fixed and exponential backoff, but backoff is list; list backoff uses delays")
		}
		if len(b.Delays) == 0 {
			ps.add("delays", "must list at least one delay")
		}
		for i, d := range b.Delays {
			checkDelay(ps, fmt.Sprintf("delays[%d]", i), d)
		}
	default:
		ps.add("backoff", "must be fixed, exponential or list, got %v", b.Kind)
		return
	}
	if b.Kind == Exponential {
		if math.IsNaN(b.Multiplier) || math.IsInf(b.Multiplier, 0) || b.Multiplier <= 1 {
			ps.add("multiplier", "must be > 1 for exponential backoff, got %v", b.Multiplier)
		}
		if !checkDelay(ps, "maxDelay", b.MaxDelay) {
			return
		}
		if b.MaxDelay != 0 && b.MaxDelay < b.Delay {
			ps.add("maxDelay", "must be 0s (no cap) or >= delay %v, got %v", b.Delay, b.MaxDelay)
		}
		return
	}
	if b.Multiplier != 0 {
		ps.add("multiplier", "applies only to exponential backoff, but backoff is %v", b.Kind)
	}
	if b.MaxDelay != 0 {
		ps.add("maxDelay", "applies only to exponential backoff, but backoff is %v", b.Kind)
	}
}

// checkDelay applies the rules every configured delay shares and reports
// whether d passed.
func checkDelay(ps *problems, key string, d time.Duration) bool {
	if d < 0 {
		ps.add(key, "must be >= 0, got %v", d)
		return false
	}
	if d%time.Millisecond != 0 {
		ps.add(key, "must be a whole number of milliseconds (topic names carry milliseconds), got %v", d)
		return false
	}
	return true
}

// Schedule returns the nominal delays before retries 1 through retries, in
// order; its length is retries (0 when retries <= 0). It normalizes b first
// and is deterministic: Jitter plays no part.
//
// Exponential delays are computed with github.com/cenkalti/backoff/v4's
// ExponentialBackOff (no randomization, no elapsed-time limit), stepping in
// whole milliseconds and truncating each product the way Spring Kafka's
// long-millisecond arithmetic does, so both derive the same topic names even
// for fractional multipliers: 1s × 1.5 gives 1s, 1.5s, 2.25s, 3.375s,
// 5.062s, 7.593s, 11.389s. With no MaxDelay the delays saturate near
// math.MaxInt64 nanoseconds instead of overflowing.
//
// Schedule does not validate b; call Validate first. For an invalid b the
// result is unspecified, but Schedule never panics and never returns a
// negative delay.
func (b Backoff) Schedule(retries int) []time.Duration {
	if retries <= 0 {
		return []time.Duration{}
	}
	b = b.Normalize()
	out := make([]time.Duration, retries)
	switch b.Kind {
	case Exponential:
		exponentialSchedule(out, b.Delay, b.Multiplier, b.MaxDelay)
	case List:
		for i := range out {
			if len(b.Delays) > 0 {
				out[i] = b.Delays[min(i, len(b.Delays)-1)]
			}
		}
	default:
		for i := range out {
			out[i] = b.Delay
		}
	}
	for i, d := range out {
		out[i] = max(d, 0)
	}
	return out
}

// msLimit is the largest millisecond count that still fits a time.Duration.
const msLimit = time.Duration(math.MaxInt64 / int64(time.Millisecond))

// exponentialSchedule fills out with the capped exponential sequence. The
// library's time.Duration arithmetic is fed millisecond counts (one "tick"
// per millisecond) so that each step truncates to whole milliseconds, which
// keeps the sequence identical to Spring's.
func exponentialSchedule(out []time.Duration, initial time.Duration, multiplier float64, maxDelay time.Duration) {
	ceiling := msLimit
	if maxDelay > 0 {
		ceiling = maxDelay / time.Millisecond
	}
	eb := &backoff.ExponentialBackOff{
		InitialInterval:     min(max(initial/time.Millisecond, 0), msLimit),
		RandomizationFactor: 0,
		Multiplier:          multiplier,
		MaxInterval:         ceiling,
		MaxElapsedTime:      0,
		Stop:                backoff.Stop,
		Clock:               epochClock{},
	}
	eb.Reset()
	for i := range out {
		ms := eb.NextBackOff()
		out[i] = min(max(ms, 0), msLimit) * time.Millisecond
	}
}

// epochClock keeps the schedule independent of the wall clock; with
// MaxElapsedTime 0 the library never consults elapsed time anyway.
type epochClock struct{}

func (epochClock) Now() time.Time { return time.Time{} }

// Jittered returns the actual wait for a nominal delay: nominal scaled by a
// factor that is uniformly distributed over [1-Jitter, 1+Jitter] when rnd is
// uniform over [0, 1). With r = rnd() the wait is
//
//	nominal * (1 + Jitter*(2r - 1))
//
// so r = 0 gives nominal*(1-Jitter), r = 0.5 gives nominal, and r close to 1
// approaches nominal*(1+Jitter) (which float rounding may reach). The mean
// wait equals nominal; the result always lies within
// [nominal*(1-Jitter), nominal*(1+Jitter)], truncated to a Duration.
//
// With Jitter 0 (the default), a nil rnd, or a nominal <= 0, no randomness
// is used and nominal is returned exactly (0 for a negative nominal). The
// result is never negative and never overflows; Jitter is clamped to
// [0, 1] and rnd's value to [0, 1) so a misbehaving source cannot break these
// bounds. Jittered does no I/O: the caller supplies the random source, for
// example math/rand/v2's Float64.
func (b Backoff) Jittered(nominal time.Duration, rnd func() float64) time.Duration {
	if nominal <= 0 {
		return 0
	}
	j := b.Jitter
	if math.IsNaN(j) || j <= 0 || rnd == nil {
		return nominal
	}
	j = min(j, 1)
	r := rnd()
	switch {
	case math.IsNaN(r) || r < 0:
		r = 0
	case r >= 1:
		r = math.Nextafter(1, 0)
	}
	v := float64(nominal) * (1 + j*(2*r-1))
	switch {
	case v <= 0:
		return 0
	case v >= math.MaxInt64:
		return math.MaxInt64
	}
	return time.Duration(v)
}
