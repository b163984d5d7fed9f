// Command bench measures kretry against raw franz-go and its peers —
// watermill, Trendyol kafka-konsumer and Spring Kafka — in the same run, on
// the same cluster: embedded kfake by default, or the brokers given with
// -brokers. It prints a table, writes results.json and PNG plots to -out,
// and is documented in docs/benchmarks.md.
//
//	cd bench && go run . -out results            # every scenario on kfake
//	cd bench && go run . -brokers 127.0.0.1:9092  # on a real broker
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"runtime/pprof"
	"runtime/trace"
	"strings"
	"time"
)

// config is every flag of a run.
type config struct {
	brokers   []string
	scenarios map[string]bool
	systems   map[string]bool
	reps      int
	out       string
	timeout   time.Duration
	cpuProf   string
	traceOut  string
	merge     bool

	s1Records, s1Partitions, s1Value int
	s2Records, s2Partitions          int
	s2Keys                           int
	s3fRecords, s3fRate              int
	s3fPartitions, s3fFollowers      int
	s3fDelay                         time.Duration
	s2bRecords, s2bPartitions        int
	s3Records, s3Partitions, s3Rate  int
	s3Delays                         []time.Duration
	s3Warmup                         int
	s3Floor                          time.Duration
	s3FloorPartitioner               string
	s3FloorLoad                      string
	s3FloorOnly                      bool
	s4Small, s4Large, s4Partitions   int
	s4Delay                          time.Duration
	s5Partitions                     []int
	s5PerPartition                   int
	s5Idle, s5Margin                 time.Duration
	s5CPUProf                        string
	s5Raw                            bool
	s5FetchMaxWait                   time.Duration
	s6Concurrency                    []int
	s6PerWorker, s6Partitions        int
	s6Wait                           time.Duration
	s2BatchSize                      int
	s7Partitions, s7Concurrency      int
	s7Records                        int
	s7Batches                        []int
	s7Call, s7Record                 time.Duration
	s7Rep, s7Bare, s7BatchWait       time.Duration
	s7Systems                        map[string]bool
}

func main() {
	if len(os.Args) > 1 && os.Args[1] == "child" {
		os.Exit(childMain(os.Args[2:]))
	}
	cfg, err := parseFlags(os.Args[1:])
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(2)
	}
	if cfg.cpuProf != "" {
		f, err := os.Create(cfg.cpuProf)
		if err != nil {
			fmt.Fprintln(os.Stderr, "bench:", err)
			os.Exit(2)
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			fmt.Fprintln(os.Stderr, "bench:", err)
			os.Exit(2)
		}
		defer pprof.StopCPUProfile()
	}
	if cfg.traceOut != "" {
		f, err := os.Create(cfg.traceOut)
		if err == nil {
			err = trace.Start(f)
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, "bench:", err)
			os.Exit(2)
		}
		defer trace.Stop()
	}
	if err := run(context.Background(), cfg); err != nil {
		trace.Stop()
		pprof.StopCPUProfile()
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

func parseFlags(args []string) (config, error) {
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	var c config
	brokers := fs.String("brokers", "", "comma-separated seed brokers of a real cluster (default: embedded kfake)")
	scenarios := fs.String("scenarios", "s1,s2,s2b,s3,s4,s5,s6,s7", "scenarios to run (s3f, follower lateness under key order, runs only when named)")
	systems := fs.String("systems", "kretry,raw,watermill,konsumer,spring",
		"systems to run (S1-S3); raw-variants adds every variant of the raw franz-go pipeline (raw-<poll>-<clients>-<commit>); "+
			"kretry-batch and kretry-batch-each run S2 with a batch handler (not in the default; S7 has -s7-systems)")
	fs.IntVar(&c.reps, "reps", 9, "repetitions of S1, S2 and S2b, each system going first in turn (ratios are the median over them)")
	fs.StringVar(&c.out, "out", "results", "directory for results.json and the PNG plots")
	fs.DurationVar(&c.timeout, "timeout", 10*time.Minute, "bound on each system's run of one scenario")
	fs.BoolVar(&c.merge, "merge", false, "keep the scenarios of the results.json already in -out that this run does not repeat")
	fs.StringVar(&c.cpuProf, "cpuprofile", "", "write a CPU profile of the whole run (go tool pprof) to this file")
	fs.StringVar(&c.traceOut, "trace", "", "write an execution trace of the whole run (go tool trace; -pprof=sync shows where goroutines block) to this file")
	fs.IntVar(&c.s1Records, "s1-records", 10_000_000, "S1 records")
	fs.IntVar(&c.s1Partitions, "s1-partitions", 6, "S1 partitions")
	fs.IntVar(&c.s1Value, "s1-value", 100, "S1 value bytes")
	fs.IntVar(&c.s2Records, "s2-records", 3_000_000, "S2 records")
	fs.IntVar(&c.s2Partitions, "s2-partitions", 6, "S2 partitions")
	fs.IntVar(&c.s2Keys, "s2-keys", 0, "S2 distinct keys: record i has key k<i mod s2-keys> (0: every key unique, the default; keyorder.go)")
	fs.IntVar(&c.s3fRecords, "s3f-records", 30_000, "S3F (follower lateness, kretry-keyorder) records")
	fs.IntVar(&c.s3fRate, "s3f-rate", 1000, "S3F input records per second")
	fs.IntVar(&c.s3fPartitions, "s3f-partitions", 64, "S3F partitions")
	fs.IntVar(&c.s3fFollowers, "s3f-followers", 4, "S3F followers per key: each key has 1 + s3f-followers consecutive records")
	fs.DurationVar(&c.s3fDelay, "s3f-delay", time.Second, "S3F tier delay of each key's first record")
	fs.IntVar(&c.s2bRecords, "s2b-records", 0, "S2b records (default: -s2-records)")
	fs.IntVar(&c.s2bPartitions, "s2b-partitions", 0, "S2b partitions (default: -s2-partitions)")
	fs.IntVar(&c.s3Records, "s3-records", 60_000, "S3 records (of the warm phase, for systems that run one)")
	fs.IntVar(&c.s3Warmup, "s3-warmup", 30_000, "S3 records of the fresh phase, which writes the tiers before the warm phase (kretry); 0: one phase on fresh topics")
	fs.DurationVar(&c.s3Floor, "s3-floor", 30*time.Second, "S3 floor: how long a plain producer writes at the forwards' rate to the tier topics after the warm phase; 0: none")
	fs.StringVar(&c.s3FloorPartitioner, "s3-floor-partitioner", "keep", "S3 floor's partitioner: keep (record i to partition i mod -s3-partitions, as kretry's forwards keep their source's) or sticky (franz-go's default)")
	fs.StringVar(&c.s3FloorLoad, "s3-floor-load", "none", "S3 fresh floor: none, or what else of kretry's fresh phase runs beside it: write (a new main topic at -s3-rate), read (a consumer group reading it and the floor's topics) or both")
	fs.BoolVar(&c.s3FloorOnly, "s3-floor-only", false, "S3: measure the fresh floor only (no system phases)")
	fs.IntVar(&c.s3Partitions, "s3-partitions", 64, "S3 partitions")
	fs.IntVar(&c.s3Rate, "s3-rate", 1000, "S3 input records per second (2000/s takes both cores with a real broker on this machine: docs/benchmarks.md)")
	s3Delays := fs.String("s3-delays", "100ms,1s,5s", "S3 tier delays")
	fs.IntVar(&c.s4Small, "s4-small", 10_000, "S4 small backlog")
	fs.IntVar(&c.s4Large, "s4-large", 1_000_000, "S4 large backlog")
	fs.IntVar(&c.s4Partitions, "s4-partitions", 6, "S4 partitions")
	fs.DurationVar(&c.s4Delay, "s4-delay", 10*time.Minute, "S4 tier delay")
	s5Partitions := fs.String("s5-partitions", "1000,10000", "S5 partition counts (10000 only on kfake by default)")
	fs.IntVar(&c.s5PerPartition, "s5-per-partition", 10, "S5 records waiting per partition")
	fs.DurationVar(&c.s5Idle, "s5-idle", 10*time.Second, "S5 idle window for the CPU measurement")
	fs.DurationVar(&c.s5Margin, "s5-margin", 0, "S5 time for the listener to pause every partition before the idle window (default 3 s + 3 ms per partition)")
	fs.DurationVar(&c.s5FetchMaxWait, "s5-fetch-max-wait", 0, "S5 listener.FetchMaxWait of the child's listener (default: the listener's default)")
	fs.BoolVar(&c.s5Raw, "s5-raw", false, "S5: also measure franz-go alone idle over the same topics, its tier partitions paused (the reference for kretry's share)")
	fs.StringVar(&c.s5CPUProf, "s5-cpuprofile", "", "S5: the listener's child writes a CPU profile of its idle window to this file, one per partition count (<file>.<partitions>)")
	s6Conc := fs.String("s6-concurrency", "1,2,4,8,16,32,64", "S6 concurrency settings")
	fs.IntVar(&c.s6PerWorker, "s6-per-worker", 250, "S6 records per unit of concurrency")
	fs.IntVar(&c.s6Partitions, "s6-partitions", 64, "S6 partitions")
	fs.DurationVar(&c.s6Wait, "s6-wait", 2*time.Millisecond, "S6 handler wait per record")
	fs.IntVar(&c.s2BatchSize, "s2-batch-size", 100, "S2 with a batch handler (systems kretry-batch, kretry-batch-each): its BatchSize")
	fs.IntVar(&c.s7Partitions, "s7-partitions", 64, "S7 partitions")
	fs.IntVar(&c.s7Concurrency, "s7-concurrency", 16, "S7 Concurrency of every system (most handler calls at a time)")
	fs.IntVar(&c.s7Records, "s7-records", 5_000_000, "S7 records in the topic: the most a run reads (each reads what -s7-rep takes at its ideal rate)")
	s7Batches := fs.String("s7-batch", "10,100,500", "S7 batch sizes (BatchSize of kretry's batch handler, the most records per call of raw's)")
	fs.DurationVar(&c.s7Call, "s7-call", 2*time.Millisecond, "S7 handler cost per call (a wait)")
	fs.DurationVar(&c.s7Record, "s7-record", 5*time.Microsecond, "S7 handler cost per record of a call (a wait)")
	fs.DurationVar(&c.s7Rep, "s7-rep", 3*time.Second, "S7 sizes each system's run to last this long at its ideal rate")
	fs.DurationVar(&c.s7Bare, "s7-bare", time.Second, "S7: how long bare goroutines make the same waits, no Kafka, per batch size (0: not measured)")
	fs.DurationVar(&c.s7BatchWait, "s7-batch-wait", 0, "S7 BatchWait of kretry's batch handler")
	s7Systems := fs.String("s7-systems", "kretry-single,kretry-batch,raw-single,raw-batch",
		"S7 systems: kretry-single (Handler), kretry-batch (BatchHandler at each -s7-batch), raw-single and raw-batch (franz-go, one record per call and at each -s7-batch)")
	if err := fs.Parse(args); err != nil {
		return c, err
	}
	if *brokers != "" {
		c.brokers = strings.Split(*brokers, ",")
	}
	c.scenarios, c.systems = set(*scenarios), set(*systems)
	if c.s2bRecords == 0 {
		c.s2bRecords = c.s2Records
	}
	if c.s2bPartitions == 0 {
		c.s2bPartitions = c.s2Partitions
	}
	var err error
	if c.s3Delays, err = durations(*s3Delays); err != nil {
		return c, fmt.Errorf("-s3-delays: %w", err)
	}
	switch c.s3FloorLoad {
	case "none", "write", "read", "both":
	default:
		return c, fmt.Errorf("-s3-floor-load: %q is not none, write, read or both", c.s3FloorLoad)
	}
	if c.s3FloorPartitioner != "keep" && c.s3FloorPartitioner != "sticky" {
		return c, fmt.Errorf("-s3-floor-partitioner: %q is neither keep nor sticky", c.s3FloorPartitioner)
	}
	if c.s5Partitions, err = ints(*s5Partitions); err != nil {
		return c, fmt.Errorf("-s5-partitions: %w", err)
	}
	if c.s6Concurrency, err = ints(*s6Conc); err != nil {
		return c, fmt.Errorf("-s6-concurrency: %w", err)
	}
	if c.s7Batches, err = ints(*s7Batches); err != nil {
		return c, fmt.Errorf("-s7-batch: %w", err)
	}
	for _, n := range c.s7Batches {
		if n < 1 {
			return c, fmt.Errorf("-s7-batch: sizes must be >= 1, got %d", n)
		}
	}
	if c.s7Partitions < 1 || c.s7Concurrency < 1 {
		return c, fmt.Errorf("-s7-partitions and -s7-concurrency must be >= 1, got %d and %d", c.s7Partitions, c.s7Concurrency)
	}
	if c.s7Call+c.s7Record <= 0 {
		return c, fmt.Errorf("-s7-call + -s7-record must be > 0, got %v", c.s7Call+c.s7Record)
	}
	c.s7Systems = set(*s7Systems)
	if c.reps < 1 {
		return c, fmt.Errorf("-reps must be >= 1, got %d", c.reps)
	}
	return c, nil
}

func set(s string) map[string]bool {
	m := map[string]bool{}
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			m[strings.ToLower(f)] = true
		}
	}
	return m
}

func durations(s string) ([]time.Duration, error) {
	var out []time.Duration
	for _, f := range strings.Split(s, ",") {
		d, err := time.ParseDuration(strings.TrimSpace(f))
		if err != nil {
			return nil, err
		}
		out = append(out, d)
	}
	return out, nil
}

func ints(s string) ([]int, error) {
	var out []int
	for _, f := range strings.Split(s, ",") {
		var n int
		if _, err := fmt.Sscan(strings.TrimSpace(f), &n); err != nil {
			return nil, fmt.Errorf("%q: %w", f, err)
		}
		out = append(out, n)
	}
	return out, nil
}
