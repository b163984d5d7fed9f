package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"runtime"
	"runtime/debug"
	"runtime/pprof"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/kretry/kretry/listener"
	"github.com/kretry/kretry/retry"
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
	case "s5raw":
		out, err = childS5Raw(spec)
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

func startListener(spec childSpec, h listener.Handler, opts ...kgo.Opt) (*listener.Listener, func() error, error) {
	l, err := listener.New(spec.Brokers, spec.Topic, h, listener.Group(spec.Group), listener.Logger(quietLogger()),
		listener.Attempts(2), listener.Backoff(strategy.FixedBackoff(spec.Delay)), listener.FetchMaxWait(spec.FetchMaxWait),
		listener.ClientOpts(append(spec.clientOpts(), opts...)...))
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

// measureIdle measures the process's CPU time and its client's requests
// over window into r, with a CPU profile if the spec asks for one.
func measureIdle(spec childSpec, window time.Duration, reqs *requestCounter, r *ScaleResult) error {
	stopProf, err := startProfile(spec.CPUProfile)
	if err != nil {
		return err
	}
	f0, q0 := reqs.fetches.Load(), reqs.all.Load()
	c0, t0 := cpuTime(), time.Now()
	time.Sleep(window) // the measurement window itself
	secs := time.Since(t0).Seconds()
	r.IdleCPU = (cpuTime() - c0).Seconds() / secs
	r.IdleFetches = float64(reqs.fetches.Load()-f0) / secs
	r.IdleRequests = float64(reqs.all.Load()-q0) / secs
	r.IdleWindow = window
	return stopProf()
}

// childS5Raw is S5's reference: franz-go alone, in the state the listener
// reaches. One group client consumes the listener's topics (the main topic,
// the tier, and the DLT the listener created) with the listener's
// FetchMaxWait, pauses each tier partition once it has fetched from it,
// keeps polling, and measures its idle CPU. What the listener costs above
// this is kretry's.
func childS5Raw(spec childSpec) (ScaleResult, error) {
	pol := retry.Policy{Attempts: 2, Backoff: strategy.FixedBackoff(spec.Delay)}.Normalize()
	plan, err := pol.Plan(spec.Topic)
	if err != nil {
		return ScaleResult{}, err
	}
	tier := plan.Tiers[0].Topic
	wait := spec.FetchMaxWait
	if wait == 0 {
		wait = listener.DefaultFetchMaxWait
	}
	var reqs requestCounter
	start := time.Now()
	cl, err := kgo.NewClient(kgo.SeedBrokers(spec.Brokers...), kgo.ConsumerGroup(spec.Group), kgo.ConsumeTopics(spec.Topic, tier, plan.DLT),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchMaxWait(wait), kgo.AutoCommitMarks(),
		kgo.BlockRebalanceOnPoll(), kgo.WithHooks(&reqs))
	if err != nil {
		return ScaleResult{}, err
	}
	defer cl.Close()
	r := ScaleResult{Partitions: spec.Partitions, Records: spec.Records, FetchMaxWait: spec.FetchMaxWait, System: "raw"}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	paused := make(map[int32]bool, spec.Partitions)
	poll := func() error {
		fs := cl.PollRecords(ctx, listener.DefaultMaxPollRecords)
		defer cl.AllowRebalance()
		if err := ctx.Err(); err != nil {
			return err
		}
		var batch []int32
		fs.EachPartition(func(p kgo.FetchTopicPartition) {
			if p.Topic == tier && len(p.Records) > 0 && !paused[p.Partition] {
				paused[p.Partition] = true
				batch = append(batch, p.Partition)
			}
		})
		if len(batch) > 0 {
			cl.PauseFetchPartitions(map[string][]int32{tier: batch})
		}
		return nil
	}
	for len(paused) < spec.Partitions {
		if err := poll(); err != nil {
			return r, fmt.Errorf("raw: %d of %d partitions of %s paused: %w", len(paused), spec.Partitions, tier, err)
		}
	}
	r.PausedAfter = time.Since(start)
	polling := make(chan struct{})
	go func() { // as the listener's poll loop: blocked in a poll while idle
		defer close(polling)
		for poll() == nil {
		}
	}()
	err = measureIdle(spec, spec.Idle, &reqs, &r)
	cancel()
	<-polling
	r.PeakRSS = procStatus("VmHWM")
	return r, err
}

// requestCounter is a kgo hook that counts the requests a client writes,
// and its fetch requests apart.
type requestCounter struct{ fetches, all atomic.Int64 }

func (c *requestCounter) OnBrokerWrite(_ kgo.BrokerMetadata, key int16, _ int, _, _ time.Duration, err error) {
	if err != nil {
		return
	}
	c.all.Add(1)
	if key == 1 { // kmsg.Fetch
		c.fetches.Add(1)
	}
}

// startProfile starts a CPU profile to path, if path is set, and returns
// the function that stops it and closes the file. The profiler's own cost
// (a signal and a stack walk 100 times a second) is inside the window it
// profiles: compare IdleCPU of profiled runs with each other.
func startProfile(path string) (func() error, error) {
	if path == "" {
		return func() error { return nil }, nil
	}
	f, err := os.Create(path)
	if err != nil {
		return nil, err
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, err
	}
	return func() error {
		pprof.StopCPUProfile()
		return f.Close()
	}, nil
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
	var reqs requestCounter
	start := time.Now()
	l, stop, err := startListener(spec, h, kgo.WithHooks(&reqs))
	if err != nil {
		return ScaleResult{}, err
	}
	r := ScaleResult{Partitions: spec.Partitions, Records: spec.Records, FetchMaxWait: spec.FetchMaxWait}
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
		if err := measureIdle(spec, window, &reqs, &r); err != nil {
			_ = stop()
			return r, err
		}
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
