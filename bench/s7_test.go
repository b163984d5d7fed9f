package main

import (
	"fmt"
	"maps"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

func TestBulkCost(t *testing.T) {
	c := bulkCost{PerCall: 2 * time.Millisecond, PerRecord: 5 * time.Microsecond}
	if got := c.of(100); got != 2500*time.Microsecond {
		t.Errorf("of(100) = %v, want 2.5ms", got)
	}
	for _, tc := range []struct {
		workers int
		batch   float64
		want    float64
	}{{16, 1, 16 / 0.002005}, {16, 100, 640_000}, {16, 500, 16 * 500 / 0.0045}, {1, 10, 10 / 0.00205}} {
		if got := c.ideal(tc.workers, tc.batch); math.Abs(got-tc.want) > 1e-9*tc.want {
			t.Errorf("ideal(%d, %v) = %v, want %v", tc.workers, tc.batch, got, tc.want)
		}
	}
}

// -s7-systems and -s7-batch name the systems; each reads what its ideal
// rate handles in -s7-rep, within [1000, -s7-records].
func TestS7Systems(t *testing.T) {
	cfg, err := parseFlags([]string{"-s7-batch", "10,100", "-s7-records", "1000000"})
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	var records []int
	for _, s := range s7Systems(cfg) {
		names = append(names, s.Name())
		records = append(records, cfg.s7RunRecords(s))
	}
	want := []string{"kretry-single", "kretry-batch-10", "kretry-batch-100", "raw-single", "raw-batch-10", "raw-batch-100"}
	if !slices.Equal(names, want) {
		t.Errorf("systems %v, want %v", names, want)
	}
	// 16 workers × 3 s: 1 / 2.005 ms, 10 / 2.05 ms, 100 / 2.5 ms (capped).
	if wantN := []int{23940, 234146, 1_000_000, 23940, 234146, 1_000_000}; !slices.Equal(records, wantN) {
		t.Errorf("records %v, want %v", records, wantN)
	}
	cfg, err = parseFlags([]string{"-s7-systems", "raw-batch", "-s7-batch", "500", "-s7-partitions", "4"})
	if err != nil {
		t.Fatal(err)
	}
	if s := s7Systems(cfg); len(s) != 1 || s[0].Name() != "raw-batch-500" || cfg.s7Workers() != 4 {
		t.Errorf("systems %v with %d workers, want [raw-batch-500] with 4 (the partitions)", s, cfg.s7Workers())
	}
	for _, bad := range [][]string{{"-s7-batch", "0"}, {"-s7-concurrency", "0"}, {"-s7-call", "0", "-s7-record", "0"}} {
		if _, err := parseFlags(bad); err == nil {
			t.Errorf("parseFlags(%q) accepted", bad)
		}
	}
}

// Each system's ratios are to its own side's single-record handler and,
// for kretry, to raw at the same batch size: per repetition, their median
// and the ratio of summed times.
func TestS7Results(t *testing.T) {
	cfg := config{s7Call: 2 * time.Millisecond, s7Record: 5 * time.Microsecond, s7Concurrency: 16, s7Partitions: 64,
		s7Records: 1_000_000, s7Rep: time.Second}
	run := func(name string, timed ...int) ThroughputResult {
		t := ThroughputResult{System: name}
		for i, n := range timed { // repetition i lasts i+1 seconds
			t.Timed = append(t.Timed, n)
			t.Elapsed = append(t.Elapsed, float64(i+1))
			t.Rates = append(t.Rates, float64(n)/float64(i+1))
		}
		t.MedianRate = median(t.Rates)
		return t
	}
	systems := []s7System{{}, {batch: 10}, {raw: true}, {raw: true, batch: 10}}
	runs := []ThroughputResult{run("kretry-single", 100, 400), run("kretry-batch-10", 2000, 6000),
		run("raw-single", 100, 200), run("raw-batch-10", 4000, 6000)}
	samples := map[string][]bulkSample{"kretry-batch-10": {{Calls: 1, MeanBatch: 8, Late: 40 * time.Microsecond},
		{Calls: 1, MeanBatch: 10, Late: 60 * time.Microsecond}}}
	out := s7Results(cfg, systems, runs, samples, func(n int) (float64, float64) { return float64(1000 * n), 7 })
	if len(out) != 4 {
		t.Fatalf("%d results, want 4", len(out))
	}
	near := func(what string, got, want float64) {
		t.Helper()
		if math.Abs(got-want) > 1e-9*math.Abs(want) {
			t.Errorf("%s = %v, want %v", what, got, want)
		}
	}
	single, batch, rawSingle := out[0], out[1], out[2]
	if single.VsSingle != nil || single.VsRaw == nil || rawSingle.VsSingle != nil || rawSingle.VsRaw != nil {
		t.Errorf("single-record rows: kretry's vs single %v, vs raw %v; raw's %v, %v; want only kretry's vs raw",
			single.VsSingle, single.VsRaw, rawSingle.VsSingle, rawSingle.VsRaw)
	}
	if !slices.Equal(batch.VsSingle, []float64{20, 15}) || !slices.Equal(batch.VsRaw, []float64{0.5, 1}) {
		t.Errorf("kretry-batch-10: vs single %v, vs raw %v; want [20 15], [0.5 1]", batch.VsSingle, batch.VsRaw)
	}
	near("vs single median", batch.VsSingleMedian, 17.5)
	near("vs single summed", batch.VsSingleSum, (8000.0/3)/(500.0/3))
	near("vs raw summed", batch.VsRawSum, 8000.0/10000)
	near("raw-batch-10 vs raw-single summed", out[3].VsSingleSum, (10000.0/3)/(300.0/3))
	near("ideal", batch.Ideal, 16*10/0.00205)
	// At the median batch (9) and overshoot (50 µs): 16 × 9 / (2 ms + 45 µs + 50 µs).
	near("ideal at achieved", batch.Achievable, 16*9/0.002095)
	near("bare waits", batch.Bare, 10_000)
	if batch.Batch != 10 || single.Batch != 1 || batch.Records != 78048 {
		t.Errorf("batch %d and %d, records %d; want 10, 1 and 78048", batch.Batch, single.Batch, batch.Records)
	}
}

// bulkStats counts only while timed says so, and its percentiles are
// bucket bounds.
func TestBulkStats(t *testing.T) {
	timing := false
	s := &bulkStats{timed: func() bool { return timing }}
	w := newWaiter()
	defer w.close()
	past := time.Now().Add(-time.Hour) // every call's deadline is long gone: no wait
	s.call(w, bulkCost{}, past, 7)
	timing = true
	for i, n := range []int{1, 2, 3, 4} {
		s.call(w, bulkCost{PerCall: time.Duration(i) * time.Minute}, past, n)
	}
	sm := s.sample()
	if sm.Calls != 4 || sm.MeanBatch != 2.5 {
		t.Errorf("%d calls of %v records on average, want 4 of 2.5 (the first not timed)", sm.Calls, sm.MeanBatch)
	}
	// Late by about 60, 59, 58 and 57 minutes: all in the last bucket.
	if want := lateBuckets * lateBucket; sm.LateP50 != want || sm.LateP99 != want || sm.Late < 57*time.Minute {
		t.Errorf("late %v, p50 %v, p99 %v; want over 57m, %v, %v", sm.Late, sm.LateP50, sm.LateP99, want, want)
	}
	var empty bulkStats
	if sm := empty.sample(); sm != (bulkSample{}) {
		t.Errorf("sample of no calls: %+v", sm)
	}
}

// A wait never ends before its deadline, whether it is past, near or
// further off, with many waits at once reusing the waiter's timerfds.
func TestWaiterNeverEarly(t *testing.T) {
	w := newWaiter()
	defer w.close()
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			for j := range 20 {
				deadline := time.Now().Add(time.Duration((i+j)%4-1) * 300 * time.Microsecond)
				w.until(deadline)
				if now := time.Now(); now.Before(deadline) {
					t.Errorf("wait for %v ended %v early", deadline, deadline.Sub(now))
				}
			}
		})
	}
	wg.Wait()
}

// BenchmarkWait reports how late a wait of S7's costs ends, with
// the sleep function and with the waiter, one wait at a time and 16 at
// once (the sleeps are what is measured, not a wait):
//
//	cd bench && go test -run '^$' -bench Wait -benchtime 400x
func BenchmarkWait(b *testing.B) {
	w := newWaiter()
	defer w.close()
	for _, way := range []struct {
		name  string
		until func(time.Time)
	}{{"sleep", func(d time.Time) { time.Sleep(time.Until(d)) }}, {"waiter", w.until}} { // measured, not a wait
		for _, cost := range []time.Duration{2005 * time.Microsecond, 2050 * time.Microsecond, 2500 * time.Microsecond, 4500 * time.Microsecond} {
			for _, workers := range []int{1, 16} {
				b.Run(fmt.Sprintf("%s/%v/%d", way.name, cost, workers), func(b *testing.B) {
					var late sync.Map
					var wg sync.WaitGroup
					per := max(1, b.N/workers)
					for k := range workers {
						wg.Go(func() {
							var sum time.Duration
							for range per {
								deadline := time.Now().Add(cost)
								way.until(deadline)
								sum += time.Since(deadline)
							}
							late.Store(k, sum)
						})
					}
					wg.Wait()
					var sum time.Duration
					late.Range(func(_, v any) bool { sum += v.(time.Duration); return true })
					b.ReportMetric(us(sum)/float64(per*workers), "late-µs/wait")
				})
			}
		}
	}
}

// Every S7 system on a small kfake topic: each record is handled once, in
// offset order within its partition, in calls of at most the batch size;
// the group commits every partition to its end.
func TestBulkRuns(t *testing.T) {
	for _, s := range []s7System{{raw: true}, {raw: true, batch: 50}, {}, {batch: 50}} {
		t.Run(s.Name(), func(t *testing.T) { bulkRun(t, s) })
	}
}

func bulkRun(t *testing.T, s s7System) {
	const n, parts = 3000, 4
	env := peerEnv(t)
	ctx := peerCtx(t, 2*time.Minute)
	topic, group := "s7", "s7-group"
	if err := env.CreateTopic(ctx, topic, parts, nil); err != nil {
		t.Fatal(err)
	}
	if err := env.FillEven(ctx, topic, n, parts); err != nil {
		t.Fatal(err)
	}
	w := newWaiter()
	defer w.close()
	var (
		mu       sync.Mutex
		next     = map[int32]int64{}
		bad      []string
		handled  int
		maxBatch int
	)
	in := bulkInput{Topic: topic, Group: group, Partitions: parts, Records: n, Batch: s.batch, Concurrency: 2,
		Cost: bulkCost{PerCall: 200 * time.Microsecond, PerRecord: time.Microsecond}, Wait: w, Stats: &bulkStats{},
		onCall: func(recs []*kgo.Record) {
			mu.Lock()
			defer mu.Unlock()
			maxBatch = max(maxBatch, len(recs))
			for _, r := range recs {
				if r.Partition != recs[0].Partition {
					bad = append(bad, fmt.Sprintf("partitions %d and %d in one call", recs[0].Partition, r.Partition))
				}
				if r.Offset != next[r.Partition] {
					bad = append(bad, fmt.Sprintf("partition %d: offset %d after %d", r.Partition, r.Offset, next[r.Partition]-1))
				}
				next[r.Partition] = r.Offset + 1
			}
			handled += len(recs)
		}}
	run := kretryBulk
	if s.raw {
		run = rawBulk
	}
	res, err := run(ctx, env, in)
	if err != nil {
		t.Fatal(err)
	}
	peerCheckThroughput(t, res, n-n/10) // timed over the last 90%, as S1
	mu.Lock()
	defer mu.Unlock()
	if len(bad) > 0 {
		t.Errorf("%d calls out of order, first: %v", len(bad), bad[:min(5, len(bad))])
	}
	// The stats count the calls that end in the timed part of the run:
	// some, not all.
	sm := in.Stats.sample()
	if counted := int(math.Round(sm.MeanBatch * float64(sm.Calls))); handled != n || counted == 0 || counted >= n {
		t.Errorf("%d records handled, %d counted in %d calls; want %d handled, fewer counted", handled, counted, sm.Calls, n)
	}
	if limit := s.perCall(); maxBatch > limit || s.batch > 1 && maxBatch < 2 {
		t.Errorf("largest call %d records, want at most %d (and more than 1 for a batch handler)", maxBatch, limit)
	}
	if got, want := committed(t, env, group, topic), endOffsets(t, env, topic); !maps.Equal(got, want) {
		t.Errorf("committed %v, want every partition's end %v", got, want)
	}
	t.Logf("%d calls, %.1f records per call, %.0f µs late per call", sm.Calls, sm.MeanBatch, us(sm.Late))
}

// S7 end to end on a small topic: every system runs every repetition, the
// ratios are set, and the table and plot are written.
func TestS7Scenario(t *testing.T) {
	env := peerEnv(t)
	cfg, err := parseFlags([]string{"-reps", "2", "-s7-partitions", "4", "-s7-concurrency", "2", "-s7-batch", "20,50",
		"-s7-call", "200us", "-s7-record", "1us", "-s7-rep", "100ms", "-s7-records", "3000", "-s7-bare", "20ms"})
	if err != nil {
		t.Fatal(err)
	}
	b := &bench{cfg: cfg, env: env, res: &Results{Started: time.Now(), Skipped: map[string]string{}, Settings: settings(cfg)}}
	if err := b.s7(peerCtx(t, 3*time.Minute), nil); err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, r := range b.res.S7 {
		names = append(names, r.System)
		if len(r.Rates) != 2 || len(r.MeanBatch) != 2 || r.Bare <= 0 || r.Ideal <= 0 || r.Achievable <= 0 {
			t.Errorf("%s: %d rates, %d samples, bare %v, ideal %v, achievable %v; want 2, 2 and the rest > 0",
				r.System, len(r.Rates), len(r.MeanBatch), r.Bare, r.Ideal, r.Achievable)
		}
		if batch := r.Batch > 1; batch != (r.VsSingle != nil) || !strings.HasPrefix(r.System, "raw") != (r.VsRaw != nil) {
			t.Errorf("%s: vs single %v, vs raw %v", r.System, r.VsSingle, r.VsRaw)
		}
	}
	want := []string{"kretry-single", "kretry-batch-20", "kretry-batch-50", "raw-single", "raw-batch-20", "raw-batch-50"}
	if !slices.Equal(names, want) {
		t.Fatalf("systems %v, want %v", names, want)
	}
	dir := t.TempDir()
	if err := writeOutputs(dir, b.res); err != nil {
		t.Fatal(err)
	}
	table, err := os.ReadFile(filepath.Join(dir, "table.md"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(table), "### S7 batch handler") || !strings.Contains(string(table), "| kretry-batch-50 | 50 |") {
		t.Errorf("table.md has no S7 table:\n%s", table)
	}
	if fi, err := os.Stat(filepath.Join(dir, "s7-batch.png")); err != nil || fi.Size() == 0 {
		t.Errorf("s7-batch.png: %v", err)
	}
}

// S2 with a batch handler, failing each main-topic batch as a whole and
// naming every record, counts every record's retry once.
func TestKretryBatchRetryHop(t *testing.T) {
	for _, s := range []kretryBatchSystem{{size: 50}, {size: 50, each: true}} {
		t.Run(s.Name(), func(t *testing.T) { peerRetryHop(t, s, peerRecords) })
	}
}
