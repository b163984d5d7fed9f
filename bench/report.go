package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// printReport writes the run's tables in Markdown, ready for
// docs/benchmarks.md.
func printReport(w io.Writer, r *Results) {
	fmt.Fprintf(w, "Machine: %s, %d cores, %s/%s, %s. Cluster: %s.\n\n", r.Machine.CPU, r.Machine.Cores, r.Machine.OS, r.Machine.Arch, r.Machine.Go, r.Cluster)
	throughput := func(title string, rows []ThroughputResult) {
		if len(rows) == 0 {
			return
		}
		fmt.Fprintf(w, "### %s\n\n| system | median records/s | ratio to raw (median of %d) | ratio of summed times | per repetition (records/s) | mallocs per record (median) | configuration |\n|---|---:|---:|---:|---|---:|---|\n", title, len(rows[0].Rates))
		for _, t := range rows {
			ratio, sum, allocs := "—", "—", "—"
			if t.MedianRatio > 0 {
				ratio = fmt.Sprintf("%.3f (%.3f–%.3f)", t.MedianRatio, slices.Min(t.Ratios), slices.Max(t.Ratios))
			}
			if t.SumRatio > 0 {
				sum = fmt.Sprintf("%.3f", t.SumRatio)
			}
			if len(t.Mallocs) > 0 {
				allocs = fmt.Sprintf("%.1f (%.0f B)", median(t.Mallocs), median(t.AllocBytes))
			}
			var reps []string
			for _, x := range t.Rates {
				reps = append(reps, fmt.Sprintf("%.0f", x))
			}
			fmt.Fprintf(w, "| %s | %.0f | %s | %s | %s | %s | %s |\n", t.System, t.MedianRate, ratio, sum, strings.Join(reps, ", "), allocs, t.Note)
		}
		fmt.Fprintln(w)
	}
	throughput("S1 happy path", r.S1)
	throughput("S2 retry hop", r.S2)
	throughput("S2b dead-letter path", r.S2b)
	printEOSRatios(w, r)      // eos.go
	printKeyOrderRatios(w, r) // keyorder.go
	if len(r.S3) > 0 {
		fmt.Fprintf(w, "### S3 delay precision (lateness = handled − due)\n\n| system | phase | tier | retries | early | p50 | p99 | max | p99 / floor p99 | note |\n|---|---|---|---:|---:|---:|---:|---:|---:|---|\n")
		for _, p := range r.S3 {
			phase := p.Phase
			if phase == "" {
				phase = "fresh"
			}
			if p.Rate > 0 {
				phase += fmt.Sprintf(" (%d at %d/s)", p.Records, p.Rate)
			}
			for _, t := range p.Tiers {
				ratio := "—"
				if t.FloorRatio > 0 {
					ratio = fmt.Sprintf("%.2f", t.FloorRatio)
				}
				fmt.Fprintf(w, "| %s | %s | %v | %d | %d | %s | %s | %s | %s | %s |\n", p.System, phase, t.Delay, t.Samples, t.Early, ms(t.P50), ms(t.P99), ms(t.Max), ratio, p.Note)
			}
		}
		fmt.Fprintln(w)
		for _, p := range r.S3 {
			if f := p.Floor; f != nil {
				where := "before " + p.System + "'s fresh phase, to topics of its own created just then"
				if p.Phase == "warm" {
					where = "after " + p.System + "'s warm phase, to its tier topics"
				}
				fmt.Fprintf(w, "Floor of the %s phase (%s): %d records to %d topics × %d partitions at %.0f records/s (records in them before: %v), acknowledged after p50 %s, p99 %s, max %s; %s.\n",
					p.Phase, where, f.Samples, f.Topics, f.Partitions, f.Rate, f.Warmed, ms(f.P50), ms(f.P99), ms(f.Max), f.Note)
			}
		}
		fmt.Fprintln(w)
	}
	if len(r.S4) > 0 {
		fmt.Fprintf(w, "### S4 memory with a backlog waiting in a tier\n\n| client fetch sizes | backlog | peak RSS | RSS once paused (after GC) | Go heap in use | records held | paused after |\n|---|---:|---:|---:|---:|---:|---:|\n")
		for _, m := range r.S4 {
			for _, s := range []MemorySample{m.Small, m.Large} {
				fmt.Fprintf(w, "| %s | %d | %.1f MB | %.1f MB | %.1f MB | %d | %v |\n", m.Fetch, s.Backlog, mb(s.PeakRSS), mb(s.RSS), mb(int64(s.HeapInuse)), s.Held, s.PausedAfter.Round(time.Millisecond))
			}
		}
		fmt.Fprintln(w)
		for _, m := range r.S4 {
			fmt.Fprintf(w, "Large / small backlog with %s: peak RSS %.3f, RSS once paused %.3f, heap in use %.3f.\n", m.Fetch, m.PeakRatio, m.RSSRatio, m.HeapRatio)
		}
		fmt.Fprintln(w)
	}
	if len(r.S5) > 0 {
		fmt.Fprintf(w, "### S5 scale: every partition paused in a tier\n\n| system | partitions | records | FetchMaxWait | all paused after | idle CPU (core-seconds/s) | idle fetches/s | drain after due | resume rate | first record late by | peak RSS |\n|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n")
		for _, s := range r.S5 {
			system, drain, rate, late := "kretry", s.Drain.Round(time.Millisecond).String(), fmt.Sprintf("%.0f rec/s", s.ResumeRate), ms(s.FirstLate)
			if s.System != "" { // the reference measures idle only
				system, drain, rate, late = s.System+" franz-go", "—", "—", "—"
			}
			fmw := "default"
			if s.FetchMaxWait > 0 {
				fmw = s.FetchMaxWait.String()
			}
			fmt.Fprintf(w, "| %s | %d | %d | %s | %v | %.4f | %.1f | %s | %s | %s | %.1f MB |\n", system, s.Partitions, s.Records, fmw,
				s.PausedAfter.Round(time.Millisecond), s.IdleCPU, s.IdleFetches, drain, rate, late, mb(s.PeakRSS))
		}
		fmt.Fprintln(w)
	}
	if len(r.S6) > 0 {
		fmt.Fprintf(w, "### S6 slow handler\n\n| concurrency | records | records/s | ideal | of ideal | bare Go sleeps | of bare sleeps |\n|---:|---:|---:|---:|---:|---:|---:|\n")
		for _, s := range r.S6 {
			fmt.Fprintf(w, "| %d | %d | %.0f | %.0f | %.2f | %.0f | %.2f |\n", s.Concurrency, s.Records, s.Rate, s.Ideal, s.Rate/s.Ideal, s.Sleep, s.Rate/s.Sleep)
		}
		fmt.Fprintln(w)
	}
	if len(r.S7) > 0 {
		printS7(w, r)
	}
	printFollowers(w, r) // keyorder.go
	if len(r.Skipped) > 0 {
		fmt.Fprintf(w, "### Not run\n\n")
		keys := make([]string, 0, len(r.Skipped))
		for k := range r.Skipped {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		for _, k := range keys {
			fmt.Fprintf(w, "- %s: %s\n", k, r.Skipped[k])
		}
		fmt.Fprintln(w)
	}
}

// printS7 writes S7's table: each system's rate, its ratios to the
// single-record handler and to raw at the same batch size (median of the
// repetitions, range, ratio of summed times), and to the ideal.
func printS7(w io.Writer, r *Results) {
	s := r.Settings
	fmt.Fprintf(w, "### S7 batch handler, bulk-write cost (%v per call + %v per record, waited), %v partitions, Concurrency %v\n\n",
		s["s7_call"], s["s7_record"], s["s7_partitions"], s["s7_concurrency"])
	fmt.Fprintf(w, "| system | records per call (most) | records | median records/s | × single-record, same side (median, range; summed) | × raw, same batch (median, range; summed) | ideal | of ideal | mean records per call | wait late per call (mean; p50, p99) | of ideal at that batch and wait | bare waits | of bare waits |\n")
	fmt.Fprintf(w, "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n")
	ratio := func(per []float64, med, sum float64) string {
		if len(per) == 0 {
			return "—"
		}
		return fmt.Sprintf("%.2f (%.2f–%.2f; %.2f)", med, slices.Min(per), slices.Max(per), sum)
	}
	of := func(x, ref float64) string {
		if ref <= 0 {
			return "—"
		}
		return fmt.Sprintf("%.2f", x/ref)
	}
	for _, b := range r.S7 {
		bare := "—"
		if b.Bare > 0 {
			bare = fmt.Sprintf("%.0f (%.0f µs late)", b.Bare, b.BareLateUs)
		}
		fmt.Fprintf(w, "| %s | %d | %d | %.0f | %s | %s | %.0f | %s | %.1f | %.0f µs (%.0f, %.0f) | %s | %s | %s |\n", b.System, b.Batch, b.Records, b.MedianRate,
			ratio(b.VsSingle, b.VsSingleMedian, b.VsSingleSum), ratio(b.VsRaw, b.VsRawMedian, b.VsRawSum),
			b.Ideal, of(b.MedianRate, b.Ideal), median(b.MeanBatch), median(b.LateUs), median(b.LateP50Us), median(b.LateP99Us),
			of(b.MedianRate, b.Achievable), bare, of(b.MedianRate, b.Bare))
	}
	fmt.Fprintln(w)
	for _, b := range r.S7 {
		var reps []string
		for _, x := range b.Rates {
			reps = append(reps, fmt.Sprintf("%.0f", x))
		}
		fmt.Fprintf(w, "- %s: %s records/s; %s\n", b.System, strings.Join(reps, ", "), b.Note)
	}
	fmt.Fprintln(w)
}

func ms(d time.Duration) string { return fmt.Sprintf("%.1f ms", float64(d)/float64(time.Millisecond)) }

// writeOutputs writes results.json and the plots into dir.
func writeOutputs(dir string, r *Results) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "results.json"), b, 0o644); err != nil {
		return err
	}
	if err := plotS3(filepath.Join(dir, "s3-lateness.png"), r); err != nil {
		return fmt.Errorf("plot S3: %w", err)
	}
	if err := plotS6(filepath.Join(dir, "s6-concurrency.png"), r); err != nil {
		return fmt.Errorf("plot S6: %w", err)
	}
	if err := plotS7(filepath.Join(dir, "s7-batch.png"), r); err != nil {
		return fmt.Errorf("plot S7: %w", err)
	}
	var t strings.Builder
	printReport(&t, r)
	return os.WriteFile(filepath.Join(dir, "table.md"), []byte(t.String()), 0o644)
}
