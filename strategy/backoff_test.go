package strategy_test

import (
	"encoding"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/kretry/kretry/strategy"
)

const (
	ms = time.Millisecond
	s  = time.Second
)

func TestBackoffNormalize(t *testing.T) {
	tests := []struct {
		name string
		in   strategy.Backoff
		want strategy.Backoff
	}{
		{"zero is fixed 1s", strategy.Backoff{}, strategy.Backoff{Kind: strategy.Fixed, Delay: s}},
		{"fixed keeps delay", strategy.FixedBackoff(5 * s), strategy.Backoff{Delay: 5 * s}},
		{"exponential zero delay", strategy.ExponentialBackoff(0, 2, 0), strategy.Backoff{Kind: strategy.Exponential, Delay: s, Multiplier: 2}},
		{"exponential keeps multiplier zero", strategy.Backoff{Kind: strategy.Exponential}, strategy.Backoff{Kind: strategy.Exponential, Delay: s}},
		{"list untouched", strategy.ListBackoff(0, s), strategy.Backoff{Kind: strategy.List, Delays: []time.Duration{0, s}}},
		{"negative delay kept for Validate", strategy.FixedBackoff(-s), strategy.Backoff{Delay: -s}},
		{"jitter kept", strategy.Backoff{Jitter: 0.5}, strategy.Backoff{Delay: s, Jitter: 0.5}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := tt.in.Normalize()
			if got.Kind != tt.want.Kind || got.Delay != tt.want.Delay || got.Multiplier != tt.want.Multiplier ||
				got.MaxDelay != tt.want.MaxDelay || got.Jitter != tt.want.Jitter || !slices.Equal(got.Delays, tt.want.Delays) {
				t.Errorf("Normalize() = %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestBackoffNormalizeCopiesDelays(t *testing.T) {
	in := []time.Duration{s, 2 * s}
	b := strategy.ListBackoff(in...)
	in[0] = time.Hour
	n := b.Normalize()
	n.Delays[1] = time.Hour
	if b.Delays[0] != s || b.Delays[1] != 2*s {
		t.Errorf("Delays shared memory with caller: %v", b.Delays)
	}
}

func TestBackoffEqual(t *testing.T) {
	tests := []struct {
		name string
		a, b strategy.Backoff
		want bool
	}{
		{"zero and fixed 1s", strategy.Backoff{}, strategy.FixedBackoff(s), true},
		{"fixed differs", strategy.FixedBackoff(s), strategy.FixedBackoff(2 * s), false},
		{"jitter differs", strategy.Backoff{}, strategy.Backoff{Jitter: 0.1}, false},
		{"exponential same", strategy.ExponentialBackoff(0, 2, 0), strategy.ExponentialBackoff(s, 2, 0), true},
		{"multiplier differs", strategy.ExponentialBackoff(s, 2, 0), strategy.ExponentialBackoff(s, 3, 0), false},
		{"max differs", strategy.ExponentialBackoff(s, 2, 0), strategy.ExponentialBackoff(s, 2, 5*s), false},
		{"kind differs", strategy.FixedBackoff(s), strategy.ListBackoff(s), false},
		{"lists same", strategy.ListBackoff(s, 2*s), strategy.ListBackoff(s, 2*s), true},
		{"lists differ", strategy.ListBackoff(s, 2*s), strategy.ListBackoff(s, 2*s, 2*s), false},
		{"nil and empty list", strategy.Backoff{Kind: strategy.List}, strategy.ListBackoff(), true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.a.Equal(tt.b); got != tt.want {
				t.Errorf("Equal = %v, want %v", got, tt.want)
			}
			if got := tt.b.Equal(tt.a); got != tt.want {
				t.Errorf("Equal is not symmetric")
			}
		})
	}
}

func TestBackoffValidate(t *testing.T) {
	tests := []struct {
		name string
		b    strategy.Backoff
		want string // substring of the error; "" means valid
	}{
		{"zero value", strategy.Backoff{}, ""},
		{"fixed", strategy.FixedBackoff(3 * s), ""},
		{"exponential uncapped", strategy.ExponentialBackoff(s, 2, 0), ""},
		{"exponential max equals delay", strategy.ExponentialBackoff(s, 2, s), ""},
		{"list with zero", strategy.ListBackoff(0, s), ""},
		{"jitter 1", strategy.Backoff{Jitter: 1}, ""},
		{"jitter on list", strategy.Backoff{Kind: strategy.List, Delays: []time.Duration{s}, Jitter: 0.2}, ""},

		{"negative fixed delay", strategy.FixedBackoff(-s), "delay: must be >= 0, got -1s"},
		{"negative exponential delay", strategy.ExponentialBackoff(-s, 2, 0), "delay: must be >= 0"},
		{"sub-millisecond delay", strategy.FixedBackoff(1500 * time.Microsecond), "delay: must be a whole number of milliseconds"},
		{"multiplier zero", strategy.ExponentialBackoff(s, 0, 0), "multiplier: must be > 1 for exponential backoff, got 0"},
		{"multiplier one", strategy.ExponentialBackoff(s, 1, 0), "multiplier: must be > 1"},
		{"multiplier NaN", strategy.ExponentialBackoff(s, math.NaN(), 0), "multiplier: must be > 1"},
		{"multiplier Inf", strategy.ExponentialBackoff(s, math.Inf(1), 0), "multiplier: must be > 1"},
		{"max below delay", strategy.ExponentialBackoff(2*s, 2, s), "maxDelay: must be 0s (no cap) or >= delay 2s, got 1s"},
		{"negative max", strategy.ExponentialBackoff(s, 2, -s), "maxDelay: must be >= 0"},
		{"sub-millisecond max", strategy.ExponentialBackoff(s, 2, s+time.Microsecond), "maxDelay: must be a whole number of milliseconds"},
		{"jitter negative", strategy.Backoff{Jitter: -0.1}, "jitter: must be within [0, 1], got -0.1"},
		{"jitter above one", strategy.Backoff{Jitter: 1.5}, "jitter: must be within [0, 1]"},
		{"jitter NaN", strategy.Backoff{Jitter: math.NaN()}, "jitter: must be within [0, 1]"},
		{"empty list", strategy.ListBackoff(), "delays: must list at least one delay"},
		{"negative list entry", strategy.ListBackoff(s, -s), "delays[1]: must be >= 0, got -1s"},
		{"sub-millisecond list entry", strategy.ListBackoff(s, 10*time.Microsecond), "delays[1]: must be a whole number of milliseconds"},
		{"list with delay", strategy.Backoff{Kind: strategy.List, Delay: s, Delays: []time.Duration{s}}, "delay: applies only to fixed and exponential backoff, but backoff is list"},
		{"fixed with multiplier", strategy.Backoff{Multiplier: 2}, "multiplier: applies only to exponential backoff, but backoff is fixed"},
		{"fixed with max", strategy.Backoff{MaxDelay: s}, "maxDelay: applies only to exponential backoff"},
		{"fixed with delays", strategy.Backoff{Delays: []time.Duration{s}}, "delays: applies only to list backoff, but backoff is fixed"},
		{"list with multiplier", strategy.Backoff{Kind: strategy.List, Delays: []time.Duration{s}, Multiplier: 2}, "multiplier: applies only to exponential backoff, but backoff is list"},
		{"unknown kind", strategy.Backoff{Kind: 7}, "backoff: must be fixed, exponential or list, got BackoffKind(7)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assertErr(t, tt.b.Validate(), tt.want)
		})
	}
}

// assertErr checks that err is nil when want is "", or contains want.
func assertErr(t *testing.T, err error, want string) {
	t.Helper()
	switch {
	case want == "" && err != nil:
		t.Fatalf("unexpected error: %v", err)
	case want != "" && err == nil:
		t.Fatalf("want error containing %q, got nil", want)
	case want != "" && !strings.Contains(err.Error(), want):
		t.Fatalf("error %q does not contain %q", err, want)
	}
}

func TestBackoffSchedule(t *testing.T) {
	tests := []struct {
		name    string
		b       strategy.Backoff
		retries int
		want    []time.Duration
	}{
		{"zero value", strategy.Backoff{}, 3, []time.Duration{s, s, s}},
		{"no retries", strategy.FixedBackoff(s), 0, []time.Duration{}},
		{"negative retries", strategy.FixedBackoff(s), -2, []time.Duration{}},
		{"fixed", strategy.FixedBackoff(5 * s), 2, []time.Duration{5 * s, 5 * s}},
		{"exponential uncapped", strategy.ExponentialBackoff(s, 2, 0), 4, []time.Duration{s, 2 * s, 4 * s, 8 * s}},
		{"exponential capped", strategy.ExponentialBackoff(s, 2, 3*s), 5, []time.Duration{s, 2 * s, 3 * s, 3 * s, 3 * s}},
		{"exponential max equals delay", strategy.ExponentialBackoff(4*s, 3, 4*s), 3, []time.Duration{4 * s, 4 * s, 4 * s}},
		{"exponential default delay", strategy.Backoff{Kind: strategy.Exponential, Multiplier: 3}, 3, []time.Duration{s, 3 * s, 9 * s}},
		// Spring's ExponentialBackOff (spring-core) computes
		// min((long)(current * multiplier), max) in whole milliseconds; its
		// own javadoc lists this sequence for 2000 ms, x1.5, max 30000 ms.
		// Nanosecond arithmetic would give 22781 at the seventh step.
		{"spring framework javadoc sequence", strategy.ExponentialBackoff(2*s, 1.5, 30*s), 10,
			[]time.Duration{2000 * ms, 3000 * ms, 4500 * ms, 6750 * ms, 10125 * ms, 15187 * ms, 22780 * ms, 30000 * ms, 30000 * ms, 30000 * ms}},
		{"fractional multiplier truncates per step", strategy.ExponentialBackoff(s, 1.5, 0), 7,
			[]time.Duration{1000 * ms, 1500 * ms, 2250 * ms, 3375 * ms, 5062 * ms, 7593 * ms, 11389 * ms}},
		{"list exact", strategy.ListBackoff(s, 2*s, 5*s), 3, []time.Duration{s, 2 * s, 5 * s}},
		{"list reuses last", strategy.ListBackoff(s, 2*s), 4, []time.Duration{s, 2 * s, 2 * s, 2 * s}},
		{"list longer than needed", strategy.ListBackoff(s, 2*s, 5*s), 1, []time.Duration{s}},
		{"list with zero", strategy.ListBackoff(0), 2, []time.Duration{0, 0}},
		// Invalid inputs: unspecified values, but never negative, never a panic.
		{"invalid negative fixed", strategy.FixedBackoff(-s), 2, []time.Duration{0, 0}},
		{"invalid empty list", strategy.ListBackoff(), 2, []time.Duration{0, 0}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := tt.b.Schedule(tt.retries)
			if !slices.Equal(got, tt.want) {
				t.Errorf("Schedule(%d) = %v, want %v", tt.retries, got, tt.want)
			}
		})
	}
}

func TestBackoffScheduleSaturatesWithoutCap(t *testing.T) {
	got := strategy.ExponentialBackoff(time.Hour, 10, 0).Schedule(40)
	for i, d := range got {
		if d <= 0 {
			t.Fatalf("delay %d = %v, want positive (overflow?)", i, d)
		}
		if i > 0 && d < got[i-1] {
			t.Fatalf("delay %d = %v < previous %v", i, d, got[i-1])
		}
	}
	if last := got[len(got)-1]; last < 100*365*24*time.Hour {
		t.Errorf("last delay %v did not saturate", last)
	}
}

func TestBackoffScheduleIgnoresJitter(t *testing.T) {
	for _, b := range []strategy.Backoff{
		strategy.FixedBackoff(2 * s),
		strategy.ExponentialBackoff(s, 2, 10*s),
		strategy.ExponentialBackoff(s, 1.7, 0),
		strategy.ListBackoff(s, 3*s, 3*s),
	} {
		plain := b.Schedule(8)
		for _, j := range []float64{0.1, 0.5, 1} {
			b.Jitter = j
			for range 5 {
				if got := b.Schedule(8); !slices.Equal(got, plain) {
					t.Fatalf("%v with jitter %v: Schedule = %v, want %v", b.Kind, j, got, plain)
				}
			}
		}
	}
}

func TestBackoffJittered(t *testing.T) {
	nominals := []time.Duration{1, ms, s, time.Hour, math.MaxInt64 / 3, math.MaxInt64}
	jitters := []float64{0, 0.01, 0.1, 0.5, 1}
	src := rand.New(rand.NewPCG(1, 2))
	rnds := []float64{0, 0.5, 0.999999, 0.9999999999999999, math.Nextafter(1, 0)}
	for range 2000 {
		rnds = append(rnds, src.Float64())
	}
	for _, j := range jitters {
		b := strategy.Backoff{Jitter: j}
		for _, n := range nominals {
			lo := float64(n) * (1 - j)
			hi := math.Min(float64(n)*(1+j), math.MaxInt64)
			for _, r := range rnds {
				got := b.Jittered(n, func() float64 { return r })
				if got < 0 {
					t.Fatalf("Jittered(%v) jitter %v r %v = %v < 0", n, j, r, got)
				}
				if j == 0 && got != n {
					t.Fatalf("jitter 0: Jittered(%v) = %v, want exactly nominal", n, got)
				}
				// One part in 1e12 of slack for float rounding.
				slack := float64(n)*1e-12 + 1
				if f := float64(got); f < lo-slack || f > hi+slack {
					t.Fatalf("Jittered(%v) jitter %v r %v = %v, outside [%v, %v]", n, j, r, got, lo, hi)
				}
			}
		}
	}
}

func TestBackoffJitteredDistributionPoints(t *testing.T) {
	b := strategy.Backoff{Jitter: 0.5}
	at := func(r float64) time.Duration { return b.Jittered(10*s, func() float64 { return r }) }
	if got := at(0); got != 5*s {
		t.Errorf("r=0: got %v, want 5s (nominal*(1-jitter))", got)
	}
	if got := at(0.5); got != 10*s {
		t.Errorf("r=0.5: got %v, want nominal 10s", got)
	}
	if got := at(0.75); got != 12500*ms {
		t.Errorf("r=0.75: got %v, want 12.5s", got)
	}
	// r just below 1 approaches nominal*(1+jitter); float rounding may reach it.
	if got := at(math.Nextafter(1, 0)); got > 15*s || got < 14999*ms {
		t.Errorf("r→1: got %v, want within [14.999s, 15s]", got)
	}
}

func TestBackoffJitteredEdgeCases(t *testing.T) {
	tests := []struct {
		name    string
		jitter  float64
		nominal time.Duration
		rnd     func() float64
		want    time.Duration
	}{
		{"nil rnd", 0.5, s, nil, s},
		{"zero nominal", 1, 0, func() float64 { return 0.9 }, 0},
		{"negative nominal", 0.5, -s, func() float64 { return 0.9 }, 0},
		{"full jitter r=0", 1, s, func() float64 { return 0 }, 0},
		{"rnd below range clamps to 0", 0.5, s, func() float64 { return -3 }, 500 * ms},
		{"rnd NaN clamps to 0", 0.5, s, func() float64 { return math.NaN() }, 500 * ms},
		{"jitter above 1 clamps", 3, s, func() float64 { return 0 }, 0},
		{"jitter NaN means none", math.NaN(), s, func() float64 { return 0 }, s},
		{"huge nominal does not overflow", 1, math.MaxInt64, func() float64 { return 0.99 }, math.MaxInt64},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := strategy.Backoff{Jitter: tt.jitter}
			if got := b.Jittered(tt.nominal, tt.rnd); got != tt.want {
				t.Errorf("Jittered(%v) = %v, want %v", tt.nominal, got, tt.want)
			}
		})
	}
	// rnd returning 1 or more must stay below nominal*(1+jitter)+rounding.
	b := strategy.Backoff{Jitter: 0.5}
	if got := b.Jittered(s, func() float64 { return 7 }); got > 1500*ms {
		t.Errorf("rnd above range: got %v, want <= 1.5s", got)
	}
}

// enumText is implemented by the pointer of every text-marshalled enum.
type enumText interface {
	encoding.TextMarshaler
	encoding.TextUnmarshaler
}

func TestEnumText(t *testing.T) {
	type roundTrip struct {
		text string
		val  func() enumText // fresh zero value to unmarshal into
		want string          // String() after unmarshal
	}
	kind := func() enumText { return new(strategy.BackoffKind) }
	suf := func() enumText { return new(strategy.Suffixing) }
	same := func() enumText { return new(strategy.SameInterval) }
	ok := []roundTrip{
		{"fixed", kind, "fixed"}, {"exponential", kind, "exponential"}, {"list", kind, "list"},
		{"EXPONENTIAL", kind, "exponential"}, {"", kind, "fixed"},
		{"delay", suf, "delay"}, {"index", suf, "index"}, {"Index", suf, "index"}, {"", suf, "delay"},
		{"SUFFIX_WITH_INDEX_VALUE", suf, "index"}, {"SUFFIX_WITH_DELAY_VALUE", suf, "delay"},
		{"single", same, "single"}, {"multiple", same, "multiple"}, {"", same, "single"},
		{"MULTIPLE_TOPICS", same, "multiple"}, {"SINGLE_TOPIC", same, "single"},
	}
	for _, tt := range ok {
		v := tt.val()
		if err := v.UnmarshalText([]byte(tt.text)); err != nil {
			t.Fatalf("UnmarshalText(%q): %v", tt.text, err)
		}
		if got := v.(interface{ String() string }).String(); got != tt.want {
			t.Errorf("UnmarshalText(%q) = %s, want %s", tt.text, got, tt.want)
		}
		out, err := v.MarshalText()
		if err != nil || string(out) != tt.want {
			t.Errorf("MarshalText after %q = %q, %v; want %q", tt.text, out, err, tt.want)
		}
	}

	bad := []struct {
		text string
		val  func() enumText
		want string
	}{
		{"x", kind, `unrecognized backoff kind: "x"`},
		{"fixed ", kind, `unrecognized backoff kind: "fixed "`},
		{"x", suf, `unrecognized suffixing: "x"`},
		{"x", same, `unrecognized same interval: "x"`},
	}
	for _, tt := range bad {
		err := tt.val().UnmarshalText([]byte(tt.text))
		if err == nil || err.Error() != tt.want {
			t.Errorf("UnmarshalText(%q) error = %v, want %s", tt.text, err, tt.want)
		}
	}

	for _, v := range []encoding.TextMarshaler{strategy.BackoffKind(9), strategy.Suffixing(-1), strategy.SameInterval(2)} {
		if _, err := v.MarshalText(); err == nil {
			t.Errorf("MarshalText(%v) succeeded for an unknown value", v)
		}
	}
	if got := strategy.BackoffKind(9).String(); got != "BackoffKind(9)" {
		t.Errorf("String = %q", got)
	}
	if got := strategy.Suffixing(5).String(); got != "Suffixing(5)" {
		t.Errorf("String = %q", got)
	}
	if got := strategy.SameInterval(5).String(); got != "SameInterval(5)" {
		t.Errorf("String = %q", got)
	}
}
