package main

import (
	"context"
	"fmt"
	"maps"
	"os"
	"slices"
	"strconv"
	"time"
)

// S7 measures batch handlers on a bulk-write-shaped handler: each call
// waits -s7-call plus -s7-record per record. The systems: kretry with a
// single-record Handler, kretry with a BatchHandler at each -s7-batch size,
// and raw franz-go (rawBulk) with one record per call and at each size, all
// at the same Concurrency, over one topic filled once; each run reads it
// from the start in a group of its own. Rates are timed over the last 90%
// of the records, as S1's and S6's.

// s7System is one of S7's systems.
type s7System struct {
	raw   bool
	batch int // records per call: 0 for the single-record handler
}

func (s s7System) Name() string {
	side := "kretry"
	if s.raw {
		side = "raw"
	}
	if s.batch == 0 {
		return side + "-single"
	}
	return side + "-batch-" + strconv.Itoa(s.batch)
}

// perCall is the most records one call is given.
func (s s7System) perCall() int { return max(1, s.batch) }

// s7Systems returns the systems -s7-systems names, kretry's first: the
// single-record handler, then a batch handler per -s7-batch size.
func s7Systems(cfg config) []s7System {
	var out []s7System
	for _, raw := range []bool{false, true} {
		side := "kretry"
		if raw {
			side = "raw"
		}
		if cfg.s7Systems[side+"-single"] {
			out = append(out, s7System{raw: raw})
		}
		if cfg.s7Systems[side+"-batch"] {
			for _, n := range cfg.s7Batches {
				out = append(out, s7System{raw: raw, batch: n})
			}
		}
	}
	return out
}

func (c config) s7Cost() bulkCost { return bulkCost{PerCall: c.s7Call, PerRecord: c.s7Record} }

// s7Workers is how many calls can run at once: Concurrency, or fewer if
// there are fewer partitions (a partition's calls are made one at a time).
func (c config) s7Workers() int { return min(c.s7Concurrency, c.s7Partitions) }

// s7RunRecords is the records a run of s reads: what it would handle in
// -s7-rep at the ideal rate, at least 1,000 and at most -s7-records.
func (c config) s7RunRecords(s s7System) int {
	n := int(c.s7Cost().ideal(c.s7Workers(), float64(s.perCall())) * c.s7Rep.Seconds())
	return min(max(n, 1000), c.s7Records)
}

// BatchResult is one system's S7.
type BatchResult struct {
	System      string `json:"system"`
	Batch       int    `json:"batch"` // most records per call: BatchSize, 1 for a single-record handler
	Concurrency int    `json:"concurrency"`
	Records     int    `json:"records"` // read per repetition
	// Rates, Elapsed and Timed are per repetition: records/s, seconds and
	// the records timed (the last 90%).
	Rates      []float64 `json:"rates"`
	MedianRate float64   `json:"median_rate"`
	Elapsed    []float64 `json:"elapsed_s"`
	Timed      []int     `json:"timed"`
	// MeanBatch is the records per call and LateUs the mean overshoot of
	// a call's wait past its deadline (µs), LateP50Us and LateP99Us its
	// percentiles, per repetition, over the calls that ended in the
	// timed part of the run.
	MeanBatch []float64 `json:"mean_batch"`
	LateUs    []float64 `json:"late_us"`
	LateP50Us []float64 `json:"late_p50_us"`
	LateP99Us []float64 `json:"late_p99_us"`
	// Ideal is workers × Batch / cost(Batch): every worker busy all the
	// time with full batches, every wait exact. Achievable is the same at
	// the repetitions' median MeanBatch, with their median LateUs added to
	// the cost of a call.
	Ideal      float64 `json:"ideal"`
	Achievable float64 `json:"ideal_at_achieved"`
	// Bare is the rate of the same waits made back to back by bare
	// goroutines (no Kafka), BareLateUs their mean overshoot.
	Bare       float64 `json:"bare_waits,omitempty"`
	BareLateUs float64 `json:"bare_late_us,omitempty"`
	// VsSingle are the ratios to the single-record handler of the same
	// side (kretry-single or raw-single) in each repetition, their median
	// and the ratio of summed times; VsRaw the same for a kretry system
	// against raw at the same batch size.
	VsSingle       []float64 `json:"vs_single,omitempty"`
	VsSingleMedian float64   `json:"vs_single_median,omitempty"`
	VsSingleSum    float64   `json:"vs_single_summed,omitempty"`
	VsRaw          []float64 `json:"vs_raw,omitempty"`
	VsRawMedian    float64   `json:"vs_raw_median,omitempty"`
	VsRawSum       float64   `json:"vs_raw_summed,omitempty"`
	Mallocs        []float64 `json:"mallocs_per_record,omitempty"`
	Note           string    `json:"note,omitempty"`
}

func (b *bench) s7(ctx context.Context, _ []System) error {
	cfg := b.cfg
	systems := s7Systems(cfg)
	if len(systems) == 0 {
		return fmt.Errorf("-s7-systems %v names none of kretry-single, kretry-batch, raw-single, raw-batch", slices.Sorted(maps.Keys(cfg.s7Systems)))
	}
	cost, workers := cfg.s7Cost(), cfg.s7Workers()
	need := 0
	for _, s := range systems {
		need = max(need, cfg.s7RunRecords(s))
	}
	topic := b.name("s7")
	if err := b.env.CreateTopic(ctx, topic, cfg.s7Partitions, nil); err != nil {
		return err
	}
	defer b.forget(ctx, topic)
	// Evenly over the partitions, as S6: the slowest partition decides.
	fmt.Fprintf(os.Stderr, "bench: s7 filling %d records over %d partitions…\n", need, cfg.s7Partitions)
	if err := b.env.FillEven(ctx, topic, need, cfg.s7Partitions); err != nil {
		return err
	}
	w := newWaiter()
	defer w.close()
	type bare struct {
		rate float64
		late time.Duration
	}
	bares := map[int]bare{}
	if cfg.s7Bare > 0 {
		for _, s := range systems {
			n := s.perCall()
			if _, ok := bares[n]; ok {
				continue
			}
			r, st := bareWaits(w, cost, workers, n, cfg.s7Bare)
			bares[n] = bare{r, st.Late}
			fmt.Fprintf(os.Stderr, "bench: s7 bare waits, %d records per call: %.0f rec/s (ideal %.0f), late by %.0f µs (p50 %.0f, p99 %.0f)\n",
				n, r, cost.ideal(workers, float64(n)), us(st.Late), us(st.LateP50), us(st.LateP99))
		}
	}
	samples := map[string][]bulkSample{}
	asSystems := make([]System, len(systems))
	for i, s := range systems {
		asSystems[i] = s
	}
	out, err := b.throughput(ctx, "s7", asSystems, func(System) bool { return true },
		func(ctx context.Context, sys System, rep int) (Throughput, error) {
			s := sys.(s7System)
			st := &bulkStats{}
			in := bulkInput{Topic: topic, Group: b.name("s7", s.Name()), Partitions: cfg.s7Partitions, Records: cfg.s7RunRecords(s),
				Batch: s.batch, Concurrency: cfg.s7Concurrency, BatchWait: cfg.s7BatchWait, Cost: cost, Wait: w, Stats: st}
			run := kretryBulk
			if s.raw {
				run = rawBulk
			}
			t, err := measured(in.Records, func() (Throughput, error) { return run(ctx, b.env, in) })
			if err == nil {
				sm := st.sample()
				samples[s.Name()] = append(samples[s.Name()], sm)
				fmt.Fprintf(os.Stderr, "bench: s7 rep %d %s: %.1f records per call, waits late by %.0f µs (p50 %.0f, p99 %.0f)\n",
					rep+1, s.Name(), sm.MeanBatch, us(sm.Late), us(sm.LateP50), us(sm.LateP99))
			}
			return t, err
		})
	if err != nil {
		return err
	}
	b.res.S7 = s7Results(cfg, systems, out, samples, func(n int) (float64, float64) { return bares[n].rate, us(bares[n].late) })
	return nil
}

// s7Results turns the throughput runs of S7's systems into its results,
// with their ratios to each other and to the ideal.
func s7Results(cfg config, systems []s7System, runs []ThroughputResult, samples map[string][]bulkSample,
	bare func(perCall int) (rate, lateUs float64)) []BatchResult {
	cost, workers := cfg.s7Cost(), cfg.s7Workers()
	byName := map[string]ThroughputResult{}
	for _, t := range runs {
		byName[t.System] = t
	}
	var out []BatchResult
	for _, s := range systems {
		t, ok := byName[s.Name()]
		if !ok {
			continue
		}
		r := BatchResult{System: s.Name(), Batch: s.perCall(), Concurrency: cfg.s7Concurrency, Records: cfg.s7RunRecords(s),
			Rates: t.Rates, MedianRate: t.MedianRate, Elapsed: t.Elapsed, Timed: t.Timed, Mallocs: t.Mallocs, Note: t.Note,
			Ideal: cost.ideal(workers, float64(s.perCall()))}
		for _, sm := range samples[s.Name()] {
			r.MeanBatch = append(r.MeanBatch, sm.MeanBatch)
			r.LateUs = append(r.LateUs, us(sm.Late))
			r.LateP50Us = append(r.LateP50Us, us(sm.LateP50))
			r.LateP99Us = append(r.LateP99Us, us(sm.LateP99))
		}
		if len(r.MeanBatch) > 0 {
			mb, late := median(r.MeanBatch), median(r.LateUs)
			r.Achievable = float64(workers) * mb / (cost.PerCall.Seconds() + mb*cost.PerRecord.Seconds() + late/1e6)
		}
		r.Bare, r.BareLateUs = bare(s.perCall())
		single := s7System{raw: s.raw}
		if ref, ok := byName[single.Name()]; ok && s != single {
			r.VsSingle, r.VsSingleMedian, r.VsSingleSum = ratios(t, ref)
		}
		if ref, ok := byName[s7System{raw: true, batch: s.batch}.Name()]; ok && !s.raw {
			r.VsRaw, r.VsRawMedian, r.VsRawSum = ratios(t, ref)
		}
		out = append(out, r)
	}
	return out
}

// ratios returns a's rate over ref's in each repetition, their median and
// the ratio of summed times (records timed over seconds, summed over the
// repetitions); nothing if the two did not run the same repetitions.
func ratios(a, ref ThroughputResult) (per []float64, med, summed float64) {
	if len(a.Rates) != len(ref.Rates) || len(a.Rates) == 0 {
		return nil, 0, 0
	}
	for i := range a.Rates {
		per = append(per, a.Rates[i]/ref.Rates[i])
	}
	return per, median(per), summedRate(a) / summedRate(ref)
}

func summedRate(t ThroughputResult) float64 {
	var n int
	var s float64
	for i := range t.Timed {
		n += t.Timed[i]
		s += t.Elapsed[i]
	}
	return float64(n) / s
}

func us(d time.Duration) float64 { return float64(d) / float64(time.Microsecond) }
