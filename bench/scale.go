package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/kretry/kretry/listener"
	"github.com/kretry/kretry/retry"
	"github.com/kretry/kretry/strategy"
)

// S4 and S5 measure the listener's own process, so they run it in a child
// process (this binary, "child s4|s5"): its RSS and CPU time are then not
// mixed with kfake's, which holds the backlog in the parent.

// MemoryResult is S4 for one fetch configuration: the listener's memory
// once it has paused everything, with a small and a large backlog waiting
// in one tier.
type MemoryResult struct {
	Fetch        string `json:"fetch"` // the client's fetch sizes
	Small, Large MemorySample
	// The ratios are large / small.
	PeakRatio, RSSRatio, HeapRatio float64
}

// MemorySample is what the S4 child reports.
type MemorySample struct {
	Backlog     int           `json:"backlog"`
	PeakRSS     int64         `json:"peak_rss_bytes"` // VmHWM
	RSS         int64         `json:"rss_bytes"`      // VmRSS after GC
	HeapInuse   uint64        `json:"heap_inuse_bytes"`
	HeapAlloc   uint64        `json:"heap_alloc_bytes"`
	Held        int           `json:"held_records"` // records fetched and held behind the heads
	PausedAfter time.Duration `json:"paused_after_ns"`
}

// ScaleResult is S5 for one partition count.
type ScaleResult struct {
	// System is "raw" for the franz-go reference (-s5-raw), which only
	// measures idle; empty for kretry.
	System      string        `json:"system,omitempty"`
	Partitions  int           `json:"partitions"`
	Records     int           `json:"records"`
	PausedAfter time.Duration `json:"paused_after_ns"` // from Run to every tier partition paused
	IdleCPU     float64       `json:"idle_cpu_seconds_per_second"`
	IdleWindow  time.Duration `json:"idle_window_ns"`
	// IdleFetches is the fetch requests per second the listener's client
	// sent in the idle window, IdleRequests every request per second.
	IdleFetches  float64       `json:"idle_fetches_per_second"`
	IdleRequests float64       `json:"idle_requests_per_second"`
	FetchMaxWait time.Duration `json:"fetch_max_wait_ns,omitempty"` // the listener's, if the run set it
	Drain        time.Duration `json:"drain_ns"`                    // from the common due time to the last record handled
	ResumeRate   float64       `json:"resume_records_per_second"`
	FirstLate    time.Duration `json:"first_late_ns"` // lateness of the first record handled
	Note         string        `json:"note,omitempty"`
	PeakRSS      int64         `json:"peak_rss_bytes"`
	MissedWindow bool          `json:"missed_window,omitempty"`
}

// ConcurrencyResult is S6 for one concurrency setting.
type ConcurrencyResult struct {
	Concurrency int     `json:"concurrency"`
	Records     int     `json:"records"`
	Rate        float64 `json:"records_per_second"`
	Ideal       float64 `json:"ideal_records_per_second"` // min(concurrency, partitions) / wait
	// Sleep is the rate of the same waits done by bare goroutines, no
	// Kafka: what Go's timers allow on this machine.
	Sleep float64 `json:"sleep_baseline_records_per_second"`
}

// sleepBaseline returns the records/s of workers goroutines sleeping wait
// per record for n records in all.
func sleepBaseline(workers, n int, wait time.Duration) float64 {
	per := n / workers
	start := time.Now()
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for range per {
				time.Sleep(wait) // the baseline being measured
			}
		})
	}
	wg.Wait()
	return float64(per*workers) / time.Since(start).Seconds()
}

// tierOf returns the (only) retry tier of a policy of two attempts with a
// fixed delay, for the main topic.
func tierOf(main string, delay time.Duration) (string, error) {
	pol := retry.Policy{Attempts: 2, Backoff: strategy.FixedBackoff(delay)}.Normalize()
	plan, err := pol.Plan(main)
	if err != nil {
		return "", err
	}
	return plan.Tiers[0].Topic, nil
}

// fillTier writes perPartition records to each of partitions partitions of
// tier, every one a valid retry record due at due.
func (e *Env) fillTier(ctx context.Context, main, tier string, partitions, perPartition int, due time.Time) error {
	p, err := newProducer(e, kgo.RecordPartitioner(kgo.ManualPartitioner()),
		kgo.ProducerLinger(5*time.Millisecond), kgo.MaxBufferedRecords(100_000))
	if err != nil {
		return err
	}
	now := time.Now()
	val := randomBytes(100) // see Fill
	i := 0
	for n := range perPartition {
		for part := range partitions {
			st := retry.State{Attempt: 2, Due: due, OriginalTopic: main, OriginalPartition: int32(part),
				OriginalOffset: int64(n), OriginalTimestamp: now, FirstFailure: now, Error: "bench backlog"}
			p.send(ctx, &kgo.Record{Topic: tier, Partition: int32(part), Key: fmt.Appendf(nil, "k%d", i), Value: val,
				Headers: st.Append(nil, 0)})
			i++
		}
	}
	return p.finish(ctx, "fill "+tier)
}

// childSpec is what the parent tells an S4/S5 child.
type childSpec struct {
	Scenario   string        `json:"scenario"`
	Brokers    []string      `json:"brokers"`
	Topic      string        `json:"topic"`
	Group      string        `json:"group"`
	Partitions int           `json:"partitions"`
	Records    int           `json:"records"`
	Delay      time.Duration `json:"delay"`
	Due        time.Time     `json:"due"`
	Idle       time.Duration `json:"idle"`
	SmallFetch bool          `json:"small_fetch"`
	CPUProfile string        `json:"cpu_profile,omitempty"` // S5: where to write a CPU profile of the idle window
	// FetchMaxWait, if set, is the S5 listener's listener.FetchMaxWait.
	FetchMaxWait time.Duration `json:"fetch_max_wait,omitempty"`
}

// runChild runs this binary as "child" with spec and decodes the JSON line
// it prints last into out.
func runChild(ctx context.Context, spec childSpec, out any) error {
	b, _ := json.Marshal(spec)
	self, err := os.Executable()
	if err != nil {
		return err
	}
	cmd := exec.CommandContext(ctx, self, "child", string(b))
	cmd.Stderr = os.Stderr
	stdout, err := cmd.Output()
	if err != nil {
		return fmt.Errorf("child %s: %w", spec.Scenario, err)
	}
	lines := bytes.Split(bytes.TrimSpace(stdout), []byte("\n"))
	if err := json.Unmarshal(lines[len(lines)-1], out); err != nil {
		return fmt.Errorf("child %s printed %q: %w", spec.Scenario, stdout, err)
	}
	return nil
}

func (b *bench) s4(ctx context.Context, _ []System) error {
	for _, small := range []bool{false, true} {
		res := MemoryResult{Fetch: "franz-go defaults (FetchMaxBytes 50 MB, 1 MB per partition)"}
		if small {
			res.Fetch = "FetchMaxBytes 1 MB, FetchMaxPartitionBytes 256 kB"
		}
		for _, n := range []int{b.cfg.s4Small, b.cfg.s4Large} {
			main := b.name("s4", strconv.Itoa(n))
			tier, err := tierOf(main, b.cfg.s4Delay)
			if err != nil {
				return err
			}
			for _, t := range []string{main, tier} {
				if err := b.env.CreateTopic(ctx, t, b.cfg.s4Partitions, nil); err != nil {
					return err
				}
			}
			per := (n + b.cfg.s4Partitions - 1) / b.cfg.s4Partitions
			if err := b.env.fillTier(ctx, main, tier, b.cfg.s4Partitions, per, time.Now().Add(b.cfg.s4Delay)); err != nil {
				return err
			}
			var m MemorySample
			spec := childSpec{Scenario: "s4", Brokers: b.env.Brokers, Topic: main, Group: main + "-g",
				Partitions: b.cfg.s4Partitions, Records: per * b.cfg.s4Partitions, Delay: b.cfg.s4Delay, SmallFetch: small}
			if err := runChild(ctx, spec, &m); err != nil {
				return err
			}
			fmt.Fprintf(os.Stderr, "bench: s4 backlog %d (%s): peak RSS %.1f MB, RSS %.1f MB, heap in use %.1f MB, %d records held\n",
				m.Backlog, res.Fetch, mb(m.PeakRSS), mb(m.RSS), mb(int64(m.HeapInuse)), m.Held)
			if n == b.cfg.s4Small {
				res.Small = m
			} else {
				res.Large = m
			}
		}
		res.PeakRatio = float64(res.Large.PeakRSS) / float64(res.Small.PeakRSS)
		res.RSSRatio = float64(res.Large.RSS) / float64(res.Small.RSS)
		res.HeapRatio = float64(res.Large.HeapInuse) / float64(res.Small.HeapInuse)
		b.res.S4 = append(b.res.S4, res)
	}
	return nil
}

func mb(n int64) float64 { return float64(n) / (1 << 20) }

func (b *bench) s5(ctx context.Context, _ []System) error {
	for _, parts := range b.cfg.s5Partitions {
		main := b.name("s5", strconv.Itoa(parts))
		// A delay long enough that the records, due at a common time after
		// the child has paused everything, are never judged corrupt.
		delay := time.Hour
		tier, err := tierOf(main, delay)
		if err != nil {
			return err
		}
		for _, t := range []string{main, tier} {
			if err := b.env.CreateTopic(ctx, t, parts, nil); err != nil {
				return err
			}
		}
		// Time to start the child, join, fetch every partition and pause
		// it (about 0.25 s for 1,000 partitions and 10.5 s for 10,000 on
		// kfake here), with room to spare, plus the idle window.
		margin := b.cfg.s5Idle + 3*time.Second + time.Duration(parts)*3*time.Millisecond
		if b.cfg.s5Margin > 0 {
			margin = b.cfg.s5Idle + b.cfg.s5Margin
		}
		due := time.Now().Add(margin)
		if err := b.env.fillTier(ctx, main, tier, parts, b.cfg.s5PerPartition, due); err != nil {
			return err
		}
		var r ScaleResult
		spec := childSpec{Scenario: "s5", Brokers: b.env.Brokers, Topic: main, Group: main + "-g", Partitions: parts,
			Records: parts * b.cfg.s5PerPartition, Delay: delay, Due: due, Idle: b.cfg.s5Idle, FetchMaxWait: b.cfg.s5FetchMaxWait}
		if b.cfg.s5CPUProf != "" {
			spec.CPUProfile = fmt.Sprintf("%s.%d", b.cfg.s5CPUProf, parts)
		}
		if err := runChild(ctx, spec, &r); err != nil {
			return err
		}
		fmt.Fprintf(os.Stderr, "bench: s5 %d partitions: paused after %v, idle CPU %.4f s/s (%.1f fetches/s, %.1f requests/s), drained %d records in %v (%.0f rec/s)\n",
			parts, r.PausedAfter.Round(time.Millisecond), r.IdleCPU, r.IdleFetches, r.IdleRequests, r.Records, r.Drain.Round(time.Millisecond), r.ResumeRate)
		b.res.S5 = append(b.res.S5, r)
		if !b.cfg.s5Raw {
			continue
		}
		// The records are due by now; the reference never handles them.
		spec.Scenario, spec.Group = "s5raw", main+"-raw"
		if spec.CPUProfile != "" {
			spec.CPUProfile += ".raw"
		}
		var raw ScaleResult
		if err := runChild(ctx, spec, &raw); err != nil {
			return err
		}
		fmt.Fprintf(os.Stderr, "bench: s5 %d partitions, raw franz-go: paused after %v, idle CPU %.4f s/s (%.1f fetches/s, %.1f requests/s)\n",
			parts, raw.PausedAfter.Round(time.Millisecond), raw.IdleCPU, raw.IdleFetches, raw.IdleRequests)
		b.res.S5 = append(b.res.S5, raw)
	}
	return nil
}

func (b *bench) s6(ctx context.Context, _ []System) error {
	for _, c := range b.cfg.s6Concurrency {
		topic := b.name("s6", strconv.Itoa(c))
		n := max(1000, c*b.cfg.s6PerWorker)
		if err := b.env.CreateTopic(ctx, topic, b.cfg.s6Partitions, nil); err != nil {
			return err
		}
		// Evenly over the partitions: the slowest partition decides, and
		// keys hashed over 64 partitions leave some with 15% more records.
		if err := b.env.FillEven(ctx, topic, n, b.cfg.s6Partitions); err != nil {
			return err
		}
		tr := NewTracker(n, nil)
		wait := b.cfg.s6Wait
		h := listener.HandlerFunc(func(_ context.Context, r *kgo.Record) error {
			k := string(r.Key)
			tr.Begin(k)
			time.Sleep(wait) // the workload: an I/O-like wait per record
			tr.Succeeded(k)
			return nil
		})
		l, err := listener.New(b.env.Brokers, topic, h, listener.Group(topic+"-g"), listener.Logger(quietLogger()),
			listener.Concurrency(c))
		if err != nil {
			return err
		}
		sctx, cancel := context.WithTimeout(ctx, b.cfg.timeout)
		err = runListener(sctx, l, tr)
		cancel()
		if err != nil {
			return fmt.Errorf("concurrency %d: %w", c, err)
		}
		t := tr.Throughput("")
		r := ConcurrencyResult{Concurrency: c, Records: t.Records, Rate: float64(t.Records) / t.Elapsed.Seconds(),
			Ideal: float64(min(c, b.cfg.s6Partitions)) / wait.Seconds(), Sleep: sleepBaseline(min(c, b.cfg.s6Partitions), n, wait)}
		fmt.Fprintf(os.Stderr, "bench: s6 concurrency %d: %.0f rec/s (ideal %.0f, Go sleep baseline %.0f)\n", c, r.Rate, r.Ideal, r.Sleep)
		b.res.S6 = append(b.res.S6, r)
	}
	return nil
}

// procStatus returns a field of /proc/self/status in bytes (kB values).
func procStatus(field string) int64 {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var kb int64
		if n, _ := fmt.Sscanf(sc.Text(), field+": %d kB", &kb); n == 1 {
			return kb << 10
		}
	}
	return 0
}
