package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"runtime"
	"runtime/debug"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/kretry/kretry/listener"
	"github.com/kretry/kretry/strategy"
)

// childMain runs an S4 or S5 listener in this process and prints its
// measurements as one JSON line. args[0] is the childSpec in JSON.
func childMain(args []string) int {
	if len(args) != 1 {
		fmt.Fprintln(os.Stderr, "usage: bench child '<spec json>'")
		return 2
	}
	var spec childSpec
	if err := json.Unmarshal([]byte(args[0]), &spec); err != nil {
		fmt.Fprintln(os.Stderr, "bench child:", err)
		return 2
	}
	var out any
	var err error
	switch spec.Scenario {
	case "s4":
		out, err = childS4(spec)
	case "s5":
		out, err = childS5(spec)
	default:
		err = fmt.Errorf("unknown scenario %q", spec.Scenario)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench child:", err)
		return 1
	}
	b, _ := json.Marshal(out)
	fmt.Println(string(b))
	return 0
}

// allPaused reports whether every partition of tier is owned and paused on
// a due time, and the records held behind the heads.
func allPaused(l *listener.Listener, tier string, partitions int) (bool, int) {
	n, held := 0, 0
	for _, p := range l.Partitions() {
		if p.Topic != tier {
			continue
		}
		held += p.Held
		if p.Owned && p.Paused && !p.Due.IsZero() {
			n++
		}
	}
	return n == partitions, held
}

func waitPaused(ctx context.Context, l *listener.Listener, tier string, partitions int) (int, error) {
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return 0, fmt.Errorf("not every partition of %s paused: %w", tier, ctx.Err())
		case <-tick.C:
		}
		if ok, held := allPaused(l, tier, partitions); ok {
			return held, nil
		}
	}
}

func startListener(spec childSpec, h listener.Handler) (*listener.Listener, func() error, error) {
	l, err := listener.New(spec.Brokers, spec.Topic, h, listener.Group(spec.Group), listener.Logger(quietLogger()),
		listener.Attempts(2), listener.Backoff(strategy.FixedBackoff(spec.Delay)), listener.ClientOpts(spec.clientOpts()...))
	if err != nil {
		return nil, nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- l.Run(ctx) }()
	return l, func() error { cancel(); return <-errc }, nil
}

func childS4(spec childSpec) (MemorySample, error) {
	tier, err := tierOf(spec.Topic, spec.Delay)
	if err != nil {
		return MemorySample{}, err
	}
	h := listener.HandlerFunc(func(context.Context, *kgo.Record) error { return nil })
	start := time.Now()
	l, stop, err := startListener(spec, h)
	if err != nil {
		return MemorySample{}, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	held, err := waitPaused(ctx, l, tier, spec.Partitions)
	if err != nil {
		_ = stop()
		return MemorySample{}, err
	}
	paused := time.Since(start)
	runtime.GC()
	debug.FreeOSMemory()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	m := MemorySample{Backlog: spec.Records, PeakRSS: procStatus("VmHWM"), RSS: procStatus("VmRSS"),
		HeapInuse: ms.HeapInuse, HeapAlloc: ms.HeapAlloc, Held: held, PausedAfter: paused}
	return m, stop()
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func childS5(spec childSpec) (ScaleResult, error) {
	tier, err := tierOf(spec.Topic, spec.Delay)
	if err != nil {
		return ScaleResult{}, err
	}
	var handled atomic.Int64
	var first, last atomic.Int64
	done := make(chan struct{})
	h := listener.HandlerFunc(func(context.Context, *kgo.Record) error {
		now := time.Now().UnixNano()
		first.CompareAndSwap(0, now)
		if handled.Add(1) == int64(spec.Records) {
			last.Store(now)
			close(done)
		}
		return nil
	})
	start := time.Now()
	l, stop, err := startListener(spec, h)
	if err != nil {
		return ScaleResult{}, err
	}
	r := ScaleResult{Partitions: spec.Partitions, Records: spec.Records}
	ctx, cancel := context.WithDeadline(context.Background(), spec.Due)
	_, err = waitPaused(ctx, l, tier, spec.Partitions)
	cancel()
	if err != nil {
		_ = stop()
		return r, fmt.Errorf("%d partitions: %w (raise the margin)", spec.Partitions, err)
	}
	r.PausedAfter = time.Since(start)
	// The idle window must end before the records come due.
	window := min(spec.Idle, time.Until(spec.Due)-time.Second)
	if window < spec.Idle {
		r.MissedWindow = true
	}
	if window > 0 {
		c0, t0 := cpuTime(), time.Now()
		time.Sleep(window) // the measurement window itself
		r.IdleCPU = (cpuTime() - c0).Seconds() / time.Since(t0).Seconds()
		r.IdleWindow = window
	}
	select {
	case <-done:
	case <-time.After(time.Until(spec.Due) + 5*time.Minute):
		_ = stop()
		return r, fmt.Errorf("%d of %d records handled 5 min after their due time", handled.Load(), spec.Records)
	}
	due := spec.Due.UnixNano()
	r.Drain = time.Duration(last.Load() - due)
	r.FirstLate = time.Duration(first.Load() - due)
	r.ResumeRate = float64(spec.Records) / r.Drain.Seconds()
	r.PeakRSS = procStatus("VmHWM")
	return r, stop()
}

// clientOpts are the franz-go options of the child's listener: none, or
// with SmallFetch, fetches of at most 1 MB (256 kB per partition) instead
// of franz-go's 50 MB (1 MB per partition).
func (spec childSpec) clientOpts() []kgo.Opt {
	if spec.SmallFetch {
		return []kgo.Opt{kgo.FetchMaxBytes(1 << 20), kgo.FetchMaxPartitionBytes(256 << 10)}
	}
	return nil
}
