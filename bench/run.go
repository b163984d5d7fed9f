package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"time"
)

// Results is everything a run measured; it is written as results.json.
type Results struct {
	Machine  Machine             `json:"machine"`
	Started  time.Time           `json:"started"`
	Cluster  string              `json:"cluster"`
	S1       []ThroughputResult  `json:"s1,omitempty"`
	S2       []ThroughputResult  `json:"s2,omitempty"`
	S2b      []ThroughputResult  `json:"s2b,omitempty"`
	S3       []PrecisionResult   `json:"s3,omitempty"`
	S4       []MemoryResult      `json:"s4,omitempty"`
	S5       []ScaleResult       `json:"s5,omitempty"`
	S6       []ConcurrencyResult `json:"s6,omitempty"`
	S7       []BatchResult       `json:"s7,omitempty"`
	S3F      []FollowerResult    `json:"s3f,omitempty"`     // keyorder.go
	Skipped  map[string]string   `json:"skipped,omitempty"` // "s3/konsumer" -> why
	Merged   []time.Time         `json:"merged_from_runs_started,omitempty"`
	Settings map[string]any      `json:"settings"`
	Extra    map[string]any      `json:"extra,omitempty"`
	notes    map[string]map[string]string
}

// Machine describes where the run happened.
type Machine struct {
	OS, Arch, Go, CPU string
	Cores             int
}

// ThroughputResult is one system's S1, S2 or S2b: its rate in each
// repetition and its ratio to raw franz-go's rate in the same repetition.
type ThroughputResult struct {
	System      string    `json:"system"`
	Rates       []float64 `json:"rates"`        // records/s per repetition
	Ratios      []float64 `json:"ratios"`       // rate / raw's rate in the same repetition
	MedianRate  float64   `json:"median_rate"`  // records/s
	MedianRatio float64   `json:"median_ratio"` // 0 when raw did not run
	// Elapsed and Timed are each repetition's time (seconds) and the
	// records timed in it.
	Elapsed []float64 `json:"elapsed_s,omitempty"`
	Timed   []int     `json:"timed,omitempty"`
	// SumRatio is the ratio of summed times: the system's rate over all
	// repetitions together (records timed / seconds, summed) over raw's.
	// A repetition disturbed by other work counts by its length, not as
	// one of the medians' votes. 0 when raw did not run.
	SumRatio float64 `json:"summed_time_ratio,omitempty"`
	// Mallocs and AllocBytes are the heap allocations per input record
	// during each repetition, in the whole process (kfake included).
	Mallocs    []float64 `json:"mallocs_per_record,omitempty"`
	AllocBytes []float64 `json:"alloc_bytes_per_record,omitempty"`
	Note       string    `json:"note,omitempty"`
}

// PrecisionResult is one phase of one system's S3.
type PrecisionResult struct {
	System string `json:"system"`
	// Phase is "fresh" (topics created for the run, written for the first
	// time while measured) or "warm" (the same topics and group, after the
	// fresh phase).
	Phase   string         `json:"phase,omitempty"`
	Records int            `json:"records,omitempty"`
	Rate    int            `json:"rate,omitempty"` // input records/s
	Tiers   []TierLateness `json:"tiers"`
	// Floor is a plain producer's acknowledgement latency at the forwards'
	// rate: for the warm phase, on its tier topics right after it; for the
	// fresh phase, on topics of its own created right before it.
	Floor *AckLatency `json:"floor,omitempty"`
	Note  string      `json:"note,omitempty"`
}

// TierLateness summarises the lateness of one tier's retries.
type TierLateness struct {
	Delay   time.Duration `json:"delay_ns"`
	Samples int           `json:"samples"`
	Early   int           `json:"early"`
	P50     time.Duration `json:"p50_ns"`
	P99     time.Duration `json:"p99_ns"`
	Max     time.Duration `json:"max_ns"`
	Min     time.Duration `json:"min_ns"`
	// Curve is the lateness at each percentile from 0 to 100 (the plot).
	Curve []time.Duration `json:"percentiles_ns"`
	// FloorRatio is P99 over the floor's acknowledgement p99 (warm phase).
	FloorRatio float64 `json:"p99_over_floor_p99,omitempty"`
}

func run(ctx context.Context, cfg config) error {
	env, closeEnv, err := newEnv(cfg.brokers)
	if err != nil {
		return err
	}
	defer closeEnv()
	res := &Results{Started: time.Now().UTC(), Machine: machine(), Skipped: map[string]string{},
		Settings: settings(cfg), notes: map[string]map[string]string{}}
	if cfg.merge {
		// Keep the scenarios of an earlier run in -out that this run does
		// not repeat (each scenario's figures come from one run).
		if b, err := os.ReadFile(filepath.Join(cfg.out, "results.json")); err == nil {
			var old Results
			if err := json.Unmarshal(b, &old); err != nil {
				return fmt.Errorf("-merge: %s: %w", filepath.Join(cfg.out, "results.json"), err)
			}
			res.S1, res.S2, res.S2b, res.S3, res.S4, res.S5, res.S6, res.S7 = old.S1, old.S2, old.S2b, old.S3, old.S4, old.S5, old.S6, old.S7
			res.S3F = old.S3F
			for k, v := range old.Skipped {
				res.Skipped[k] = v
			}
			res.Merged = append(old.Merged, old.Started)
		}
	}
	res.Cluster = "kfake (embedded, in-process)"
	if !env.Fake {
		res.Cluster = "brokers " + strings.Join(env.Brokers, ",")
	}
	fmt.Printf("kretry bench — %s, %d cores, %s, %s\n\n", res.Machine.CPU, res.Machine.Cores, res.Machine.Go, res.Cluster)
	systems := selectSystems(cfg)
	b := &bench{cfg: cfg, env: env, res: res}
	for _, s := range []struct {
		name string
		fn   func(context.Context, []System) error
	}{
		{"s1", b.s1}, {"s2", b.s2}, {"s2b", b.s2b}, {"s3", b.s3}, {"s4", b.s4}, {"s5", b.s5}, {"s6", b.s6}, {"s7", b.s7}, {"s3f", b.s3f},
	} {
		if !cfg.scenarios[s.name] {
			continue
		}
		start := time.Now()
		b.reset(s.name) // a scenario run again replaces its merged results
		if err := s.fn(ctx, systems); err != nil {
			// Keep what the scenarios before this one measured.
			if werr := writeOutputs(cfg.out, res); werr != nil {
				fmt.Fprintln(os.Stderr, "bench:", werr)
			}
			return fmt.Errorf("%s: %w", s.name, err)
		}
		fmt.Fprintf(os.Stderr, "bench: %s done in %v\n", s.name, time.Since(start).Round(time.Second))
		if err := writeOutputs(cfg.out, res); err != nil {
			return err
		}
	}
	printReport(os.Stdout, res)
	return writeOutputs(cfg.out, res) // also when no scenario ran: -merge then redraws the report
}

// reset forgets what a merged earlier run measured for scenario.
func (b *bench) reset(scenario string) {
	r := b.res
	switch scenario {
	case "s1":
		r.S1 = nil
	case "s2":
		r.S2 = nil
	case "s2b":
		r.S2b = nil
	case "s3":
		r.S3 = nil
	case "s4":
		r.S4 = nil
	case "s5":
		r.S5 = nil
	case "s6":
		r.S6 = nil
	case "s7":
		r.S7 = nil
	case "s3f":
		r.S3F = nil
	}
	for k := range r.Skipped {
		if strings.HasPrefix(k, scenario+"/") {
			delete(r.Skipped, k)
		}
	}
}

type bench struct {
	cfg config
	env *Env
	res *Results
	seq int
}

// name returns a topic or group name unique to this run.
func (b *bench) name(parts ...string) string {
	b.seq++
	return fmt.Sprintf("bench-%d-%s-%d", b.res.Started.Unix(), strings.Join(parts, "-"), b.seq)
}

// size returns the records system s runs scenario with: n, or its cap.
func (b *bench) size(scenario string, s System, n int) (int, string) {
	if c, ok := s.(Capper); ok {
		if m, why := c.Cap(scenario); m > 0 && m < n {
			return m, fmt.Sprintf("capped at %d records: %s", m, why)
		}
	}
	return n, ""
}

func (b *bench) skip(scenario string, s System, err error) {
	b.res.Skipped[scenario+"/"+s.Name()] = err.Error()
	fmt.Fprintf(os.Stderr, "bench: %s %s: skipped: %v\n", scenario, s.Name(), err)
}

// throughput runs S1, S2 or S2b for every system that supports it, reps
// times, rotating the order each repetition (each system goes first in
// turn), and computes the ratios to raw.
func (b *bench) throughput(ctx context.Context, scenario string, systems []System,
	supports func(System) bool, one func(context.Context, System, int) (Throughput, error)) ([]ThroughputResult, error) {
	var run []System
	for _, s := range systems {
		if supports(s) {
			run = append(run, s)
		} else {
			b.skip(scenario, s, fmt.Errorf("%w: does not implement %s", ErrUnsupported, scenario))
		}
	}
	rates := map[string][]float64{}
	runs := map[string][]Throughput{}
	notes := map[string]string{}
	failed := map[string]bool{}
	for rep := range b.cfg.reps {
		for i := range run {
			s := run[(i+rep)%len(run)]
			if failed[s.Name()] {
				continue
			}
			sctx, cancel := context.WithTimeout(ctx, b.cfg.timeout)
			t, err := one(sctx, s, rep)
			cancel()
			if err != nil {
				if errors.Is(err, ErrUnsupported) {
					b.skip(scenario, s, err)
					failed[s.Name()] = true
					continue
				}
				return nil, fmt.Errorf("%s, repetition %d: %w", s.Name(), rep+1, err)
			}
			r := float64(t.Records) / t.Elapsed.Seconds()
			rates[s.Name()] = append(rates[s.Name()], r)
			runs[s.Name()] = append(runs[s.Name()], t)
			notes[s.Name()] = t.Note
			fmt.Fprintf(os.Stderr, "bench: %s rep %d %-9s %9.0f rec/s (%d in %v; %.1f mallocs, %.0f B per record)\n", scenario, rep+1, s.Name(), r,
				t.Records, t.Elapsed.Round(time.Millisecond), t.Mallocs, t.AllocBytes)
		}
	}
	var out []ThroughputResult
	raw := rates["raw"]
	for _, s := range run {
		rs := rates[s.Name()]
		if len(rs) == 0 {
			continue
		}
		tr := ThroughputResult{System: s.Name(), Rates: rs, MedianRate: median(rs), Note: notes[s.Name()]}
		for _, t := range runs[s.Name()] {
			tr.Elapsed = append(tr.Elapsed, t.Elapsed.Seconds())
			tr.Timed = append(tr.Timed, t.Records)
			tr.Mallocs = append(tr.Mallocs, t.Mallocs)
			tr.AllocBytes = append(tr.AllocBytes, t.AllocBytes)
		}
		if len(raw) == len(rs) {
			for i := range rs {
				tr.Ratios = append(tr.Ratios, rs[i]/raw[i])
			}
			tr.MedianRatio = median(tr.Ratios)
			tr.SumRatio = pooledRate(runs[s.Name()]) / pooledRate(runs["raw"])
		}
		out = append(out, tr)
	}
	return out, nil
}

// pooledRate is the records timed over all runs per second of their summed
// times.
func pooledRate(runs []Throughput) float64 {
	var n int
	var d time.Duration
	for _, t := range runs {
		n += t.Records
		d += t.Elapsed
	}
	return float64(n) / d.Seconds()
}

// measured runs f, one system's run over n input records, and adds to its
// result the heap allocations the whole process made meanwhile, per record.
// Reading the counters stops the world briefly, once before and once after.
func measured(n int, f func() (Throughput, error)) (Throughput, error) {
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	t, err := f()
	runtime.ReadMemStats(&after)
	t.Mallocs = float64(after.Mallocs-before.Mallocs) / float64(n)
	t.AllocBytes = float64(after.TotalAlloc-before.TotalAlloc) / float64(n)
	return t, err
}

func (b *bench) s1(ctx context.Context, systems []System) error {
	topic := b.name("s1")
	if err := b.env.CreateTopic(ctx, topic, b.cfg.s1Partitions, nil); err != nil {
		return err
	}
	if err := b.env.Fill(ctx, topic, b.cfg.s1Records, b.cfg.s1Value, nil); err != nil {
		return err
	}
	out, err := b.throughput(ctx, "s1", systems, func(s System) bool { _, ok := s.(HappyPather); return ok },
		func(ctx context.Context, s System, rep int) (Throughput, error) {
			n, capNote := b.size("s1", s, b.cfg.s1Records)
			in := HappyPathInput{Topic: topic, Group: b.name("s1", s.Name()),
				Partitions: b.cfg.s1Partitions, Records: n, ValueBytes: b.cfg.s1Value}
			t, err := measured(n, func() (Throughput, error) { return s.(HappyPather).HappyPath(ctx, b.env, in) })
			t.Note = joinNotes(t.Note, capNote)
			return t, err
		})
	b.res.S1 = out
	b.forget(ctx, topic)
	return err
}

// forget deletes a scenario run's topics (see DeleteTopicsWithPrefix); a
// failure is reported and the run goes on.
func (b *bench) forget(ctx context.Context, prefix string) {
	if err := b.env.DeleteTopicsWithPrefix(ctx, prefix); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
	}
}

func (b *bench) s2(ctx context.Context, systems []System) error {
	out, err := b.throughput(ctx, "s2", systems, func(s System) bool { _, ok := s.(RetryHopper); return ok },
		func(ctx context.Context, s System, rep int) (Throughput, error) {
			// A fresh topic per system and repetition: retry topics are
			// named after it and must start empty.
			topic := b.name("s2", s.Name())
			n, capNote := b.size("s2", s, b.cfg.s2Records)
			if err := b.env.CreateTopic(ctx, topic, b.cfg.s2Partitions, nil); err != nil {
				return Throughput{}, err
			}
			if err := b.env.FillS2(ctx, topic, n, b.cfg.s2Keys); err != nil {
				return Throughput{}, err
			}
			in := RetryHopInput{Topic: topic, Group: topic + "-g", Prefix: topic, Partitions: b.cfg.s2Partitions, Records: n}
			t, err := measured(n, func() (Throughput, error) { return s.(RetryHopper).RetryHop(ctx, b.env, in) })
			t.Note = joinNotes(t.Note, capNote)
			b.forget(ctx, topic)
			return t, err
		})
	b.res.S2 = out
	return err
}

func (b *bench) s2b(ctx context.Context, systems []System) error {
	parts := b.cfg.s2bPartitions
	out, err := b.throughput(ctx, "s2b", systems, func(s System) bool { _, ok := s.(DeadLetterer); return ok },
		func(ctx context.Context, s System, rep int) (Throughput, error) {
			// A fresh topic per system and repetition: DLTs are named
			// after it and must start empty.
			topic := b.name("s2b", s.Name())
			n, capNote := b.size("s2b", s, b.cfg.s2bRecords)
			if err := b.env.CreateTopic(ctx, topic, parts, nil); err != nil {
				return Throughput{}, err
			}
			if err := b.env.Fill(ctx, topic, n, 100, nil); err != nil {
				return Throughput{}, err
			}
			in := DeadLetterInput{Topic: topic, Group: topic + "-g", Prefix: topic, Partitions: parts, Records: n}
			t, err := measured(n, func() (Throughput, error) { return s.(DeadLetterer).DeadLetter(ctx, b.env, in) })
			t.Note = joinNotes(t.Note, capNote)
			b.forget(ctx, topic)
			return t, err
		})
	b.res.S2b = out
	return err
}

// s3 measures each Precisioner's delay precision. A Resumer is measured
// twice, in one consumer group on one set of topics: first on the freshly
// created topics (the "fresh" phase, -s3-warmup records, which also writes
// the tiers), then, once that phase is drained and committed, on those
// same, now warm, topics (the "warm" phase, -s3-records records). Each
// phase has a floor: a plain producer writing what the forwards write, at
// their rate (Env.Floor) — before the fresh phase, to topics of its own
// created just then; after the warm phase, to the system's tier topics.
// Other systems run one phase on fresh topics, as before.
func (b *bench) s3(ctx context.Context, systems []System) error {
	for _, s := range systems {
		p, ok := s.(Precisioner)
		if !ok {
			b.skip("s3", s, fmt.Errorf("%w: does not implement s3", ErrUnsupported))
			continue
		}
		topic := b.name("s3", s.Name())
		n, capNote := b.size("s3", s, b.cfg.s3Records)
		if err := b.env.CreateTopic(ctx, topic, b.cfg.s3Partitions, nil); err != nil {
			return err
		}
		in := PrecisionInput{Topic: topic, Group: topic + "-g", Prefix: topic, Partitions: b.cfg.s3Partitions,
			Records: n, Rate: b.cfg.s3Rate, Delays: b.cfg.s3Delays}
		_, resumes := s.(Resumer)
		phases := 1
		if resumes && b.cfg.s3Warmup > 0 {
			phases = 2
			in.Records = b.cfg.s3Warmup
		}
		// The fresh floor: a plain producer on topics of its own, created
		// just before, as the system's tiers will be.
		var freshFloor *AckLatency
		if phases == 2 && b.cfg.s3Floor > 0 {
			var tiers []string
			for j := range b.cfg.s3Delays {
				t := fmt.Sprintf("%s-floor-t%d", topic, j+1)
				if err := b.env.CreateTopic(ctx, t, b.cfg.s3Partitions, nil); err != nil {
					return err
				}
				tiers = append(tiers, t)
			}
			var load *FloorLoad
			if l := b.cfg.s3FloorLoad; l != "none" {
				load = &FloorLoad{Main: topic + "-floor-main", Rate: b.cfg.s3Rate, Group: topic + "-floor-g",
					Write: l == "write" || l == "both", Read: l == "read" || l == "both"}
				if err := b.env.CreateTopic(ctx, load.Main, b.cfg.s3Partitions, nil); err != nil {
					return err
				}
			}
			f, err := b.s3Floor(ctx, "fresh", tiers, topic, in.Group, load)
			if err != nil {
				return err
			}
			freshFloor = f
			if b.cfg.s3FloorOnly {
				b.res.S3 = append(b.res.S3, PrecisionResult{System: s.Name(), Phase: "fresh floor only", Floor: f})
				b.forget(ctx, topic)
				continue
			}
		}
		pr, _, err := b.s3Phase(ctx, p, in, "fresh", capNote)
		if err != nil {
			if errors.Is(err, ErrUnsupported) {
				b.skip("s3", s, err)
				continue
			}
			return fmt.Errorf("%s: %w", s.Name(), err)
		}
		pr.setFloor(freshFloor)
		b.res.S3 = append(b.res.S3, pr)
		if phases == 1 {
			b.forget(ctx, topic)
			continue
		}
		in.FirstKey, in.Records = b.cfg.s3Warmup, n
		pr, tiers, err := b.s3Phase(ctx, p, in, "warm", capNote)
		if err != nil {
			return fmt.Errorf("%s, warm phase: %w", s.Name(), err)
		}
		if b.cfg.s3Floor > 0 && len(tiers) == len(b.cfg.s3Delays) {
			f, err := b.s3Floor(ctx, "warm", tiers, topic, in.Group, nil)
			if err != nil {
				return err
			}
			pr.setFloor(f)
		}
		b.res.S3 = append(b.res.S3, pr)
		b.forget(ctx, topic)
	}
	return nil
}

// s3Floor measures the floor on the tier topics given (Env.Floor).
func (b *bench) s3Floor(ctx context.Context, phase string, tiers []string, source, group string, load *FloorLoad) (*AckLatency, error) {
	fin := FloorInput{Topics: tiers, Partitions: b.cfg.s3Partitions, Delays: b.cfg.s3Delays,
		Rates: forwardRates(b.cfg.s3Rate, b.cfg.s3Delays), Duration: b.cfg.s3Floor, Source: source, Group: group,
		Partitioner: b.cfg.s3FloorPartitioner, Load: load}
	fmt.Fprintf(os.Stderr, "bench: s3 %s floor: %v at %.0f records/s to %d tier topics…\n", phase, fin.Duration, sumOf(fin.Rates), len(tiers))
	fctx, cancel := context.WithTimeout(ctx, b.cfg.timeout)
	defer cancel()
	f, err := b.env.Floor(fctx, fin)
	if err != nil {
		return nil, fmt.Errorf("s3 %s floor: %w", phase, err)
	}
	fmt.Fprintf(os.Stderr, "bench: s3 %s floor (%s, load %s): ack p50 %s, p99 %s, max %s (%d records); %d over %v, produced %v to %v in\n",
		phase, fin.Partitioner, b.cfg.s3FloorLoad, ms(f.P50), ms(f.P99), ms(f.Max), f.Samples, f.Slow, f.SlowOver, f.SlowFrom.Round(100*time.Millisecond), f.SlowTo.Round(100*time.Millisecond))
	return &f, nil
}

// setFloor attaches f (if not nil) to pr and sets each tier's ratio to it.
func (pr *PrecisionResult) setFloor(f *AckLatency) {
	if f == nil {
		return
	}
	pr.Floor = f
	for i := range pr.Tiers {
		if f.P99 > 0 {
			pr.Tiers[i].FloorRatio = float64(pr.Tiers[i].P99) / float64(f.P99)
		}
	}
}

// s3Phase runs one phase of S3 for p: the system consumes, and once it is
// ready, in.Records records are produced at in.Rate. It also returns the
// tier topics, if the system named them.
func (b *bench) s3Phase(ctx context.Context, p Precisioner, in PrecisionInput, phase, capNote string) (PrecisionResult, []string, error) {
	name := p.(System).Name()
	sctx, cancel := context.WithTimeout(ctx, b.cfg.timeout)
	defer cancel()
	ready := make(chan struct{})
	prodErr := make(chan error, 1)
	go func() {
		select {
		case <-ready:
		case <-sctx.Done():
			prodErr <- sctx.Err()
			return
		}
		prodErr <- b.env.ProduceAtRate(sctx, in.Topic, in.FirstKey, in.Records, in.Rate)
	}()
	var once bool
	in.Ready = func() {
		if !once {
			once = true
			close(ready)
		}
	}
	fmt.Fprintf(os.Stderr, "bench: s3 %s %s: %d records at %d/s…\n", name, phase, in.Records, in.Rate)
	prec, err := p.Precision(sctx, b.env, in)
	cancel()
	if perr := <-prodErr; err == nil && perr != nil && !errors.Is(perr, context.Canceled) {
		err = fmt.Errorf("producing: %w", perr)
	}
	if err != nil {
		return PrecisionResult{}, nil, err
	}
	pr := PrecisionResult{System: name, Phase: phase, Records: in.Records, Rate: in.Rate, Note: joinNotes(prec.Note, capNote)}
	for i, lat := range prec.Lateness {
		pr.Tiers = append(pr.Tiers, summarize(b.cfg.s3Delays[i], lat))
	}
	return pr, prec.TierTopics, nil
}

func sumOf(xs []float64) float64 {
	var t float64
	for _, x := range xs {
		t += x
	}
	return t
}

func joinNotes(a, b string) string {
	switch {
	case a == "":
		return b
	case b == "":
		return a
	}
	return a + "; " + b
}

func summarize(delay time.Duration, lat []time.Duration) TierLateness {
	t := TierLateness{Delay: delay, Samples: len(lat)}
	if len(lat) == 0 {
		return t
	}
	s := slices.Clone(lat)
	slices.Sort(s)
	for pc := 0; pc <= 100; pc++ {
		t.Curve = append(t.Curve, s[min(len(s)-1, len(s)*pc/100)])
	}
	for _, v := range s {
		if v < 0 {
			t.Early++
		}
	}
	t.Min, t.Max = s[0], s[len(s)-1]
	t.P50 = s[len(s)*50/100]
	t.P99 = s[min(len(s)-1, len(s)*99/100)]
	return t
}

func median(xs []float64) float64 {
	s := slices.Clone(xs)
	slices.Sort(s)
	if len(s) == 0 {
		return 0
	}
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func machine() Machine {
	m := Machine{OS: runtime.GOOS, Arch: runtime.GOARCH, Go: runtime.Version(), Cores: runtime.NumCPU()}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
				m.CPU = strings.TrimSpace(v)
				break
			}
		}
	}
	return m
}

func settings(cfg config) map[string]any {
	return map[string]any{
		"reps": cfg.reps, "s1_records": cfg.s1Records, "s1_partitions": cfg.s1Partitions, "s1_value_bytes": cfg.s1Value,
		"s2_records": cfg.s2Records, "s2_partitions": cfg.s2Partitions, "s2b_records": cfg.s2bRecords, "s2b_partitions": cfg.s2bPartitions,
		"s3_records": cfg.s3Records, "s3_partitions": cfg.s3Partitions, "s3_rate": cfg.s3Rate, "s3_delays": fmt.Sprint(cfg.s3Delays),
		"s3_warmup": cfg.s3Warmup, "s3_floor": cfg.s3Floor.String(), "s3_floor_partitioner": cfg.s3FloorPartitioner,
		"s3_floor_load": cfg.s3FloorLoad, "s3_floor_only": cfg.s3FloorOnly,
		"s4_small": cfg.s4Small, "s4_large": cfg.s4Large, "s4_partitions": cfg.s4Partitions, "s4_delay": cfg.s4Delay.String(),
		"s5_partitions": cfg.s5Partitions, "s5_per_partition": cfg.s5PerPartition, "s5_idle": cfg.s5Idle.String(),
		"s5_fetch_max_wait": cfg.s5FetchMaxWait.String(), "s5_cpuprofile": cfg.s5CPUProf, "s5_raw": cfg.s5Raw,
		"s6_concurrency": cfg.s6Concurrency, "s6_per_worker": cfg.s6PerWorker, "s6_partitions": cfg.s6Partitions, "s6_wait": cfg.s6Wait.String(),
		"s2_batch_size": cfg.s2BatchSize, "s2_keys": cfg.s2Keys,
		"s3f_records": cfg.s3fRecords, "s3f_rate": cfg.s3fRate, "s3f_partitions": cfg.s3fPartitions,
		"s3f_followers": cfg.s3fFollowers, "s3f_delay": cfg.s3fDelay.String(),
		"s7_partitions": cfg.s7Partitions, "s7_concurrency": cfg.s7Concurrency, "s7_records": cfg.s7Records, "s7_batch": cfg.s7Batches,
		"s7_call": cfg.s7Call.String(), "s7_record": cfg.s7Record.String(), "s7_rep": cfg.s7Rep.String(), "s7_bare": cfg.s7Bare.String(),
		"s7_batch_wait": cfg.s7BatchWait.String(), "s7_systems": slices.Sorted(maps.Keys(cfg.s7Systems)),
	}
}
