package main

import (
	"cmp"
	"fmt"
	"math"
	"os"
	"slices"
	"strings"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"
)

// plotS3 draws, for each tier, the lateness of every system's retries at
// each percentile from 0 to 99 (the maximum is in the table: one outlier
// would flatten the curves).
func plotS3(path string, r *Results) error {
	curves := false
	for _, p := range r.S3 {
		for _, t := range p.Tiers {
			curves = curves || len(t.Curve) > 0
		}
	}
	if !curves { // nothing to draw (or results merged from a run without curves): keep any earlier plot
		return nil
	}
	tiers := len(r.S3[0].Tiers)
	plots := make([][]*plot.Plot, 1)
	for ti := range tiers {
		p := plot.New()
		p.Title.Text = fmt.Sprintf("S3 tier %v", r.S3[0].Tiers[ti].Delay)
		p.X.Label.Text = "percentile of retries"
		p.Y.Label.Text = "lateness (ms)"
		p.Add(plotter.NewGrid())
		for si, sys := range r.S3 {
			if ti >= len(sys.Tiers) || len(sys.Tiers[ti].Curve) < 100 {
				continue
			}
			pts := make(plotter.XYs, 0, 100)
			for pc, v := range sys.Tiers[ti].Curve[:100] {
				pts = append(pts, plotter.XY{X: float64(pc), Y: float64(v) / 1e6})
			}
			l, err := plotter.NewLine(pts)
			if err != nil {
				return err
			}
			l.Color = plotutil.Color(si)
			l.Dashes = plotutil.Dashes(si)
			l.Width = vg.Points(1.5)
			p.Add(l)
			label := sys.System
			if sys.Phase != "" {
				label += " " + sys.Phase
			}
			p.Legend.Add(label, l)
		}
		p.Legend.Top, p.Legend.Left = true, true
		plots[0] = append(plots[0], p)
	}
	return savePlots(path, plots, vg.Length(tiers)*9*vg.Centimeter, 9*vg.Centimeter)
}

// plotS6 draws records/s against the concurrency setting, with the ideal
// (every worker busy with its 2 ms wait all the time).
func plotS6(path string, r *Results) error {
	if len(r.S6) == 0 {
		return nil
	}
	p := plot.New()
	p.Title.Text = "S6 slow handler (2 ms per record)"
	p.X.Label.Text = "Concurrency (log2)"
	p.Y.Label.Text = "records/s"
	p.Add(plotter.NewGrid())
	var got, ideal, sleep plotter.XYs
	for _, s := range r.S6 {
		x := math.Log2(float64(s.Concurrency))
		got = append(got, plotter.XY{X: x, Y: s.Rate})
		ideal = append(ideal, plotter.XY{X: x, Y: s.Ideal})
		sleep = append(sleep, plotter.XY{X: x, Y: s.Sleep})
	}
	if err := plotutil.AddLinePoints(p, "kretry", got, "ideal (Concurrency / 2 ms)", ideal, "bare Go sleeps", sleep); err != nil {
		return err
	}
	p.Legend.Top, p.Legend.Left = true, true
	return savePlots(path, [][]*plot.Plot{{p}}, 14*vg.Centimeter, 10*vg.Centimeter)
}

// plotS7 draws records/s against the most records per call, both axes
// logarithmic: kretry (its single-record handler at 1, its batch handler at
// each batch size), raw franz-go the same way, the ideal, and the target of
// 20 times kretry's single-record handler.
func plotS7(path string, r *Results) error {
	if len(r.S7) == 0 {
		return nil
	}
	p := plot.New()
	p.Title.Text = fmt.Sprintf("S7 bulk-write handler (%v + %v per record), Concurrency %v", r.Settings["s7_call"], r.Settings["s7_record"], r.Settings["s7_concurrency"])
	p.X.Label.Text = "records per call (1: single-record handler; else BatchSize)"
	p.Y.Label.Text = "records/s"
	p.X.Scale, p.Y.Scale = plot.LogScale{}, plot.LogScale{}
	p.X.Tick.Marker, p.Y.Tick.Marker = plot.LogTicks{Prec: -1}, plot.LogTicks{Prec: -1}
	p.Add(plotter.NewGrid())
	var kretry, raw, ideal plotter.XYs
	var single float64
	seen := map[int]bool{}
	for _, b := range r.S7 {
		if !seen[b.Batch] {
			seen[b.Batch] = true
			ideal = append(ideal, plotter.XY{X: float64(b.Batch), Y: b.Ideal})
		}
		pt := plotter.XY{X: float64(b.Batch), Y: b.MedianRate}
		if strings.HasPrefix(b.System, "raw-") {
			raw = append(raw, pt)
			continue
		}
		kretry = append(kretry, pt)
		if b.System == "kretry-single" {
			single = b.MedianRate
		}
	}
	byX := func(a, b plotter.XY) int { return cmp.Compare(a.X, b.X) }
	slices.SortFunc(kretry, byX)
	slices.SortFunc(raw, byX)
	slices.SortFunc(ideal, byX)
	var lines []any
	for _, l := range []struct {
		name string
		xys  plotter.XYs
	}{{"kretry", kretry}, {"raw franz-go", raw}, {"ideal (Concurrency × batch / cost)", ideal}} {
		if len(l.xys) > 0 {
			lines = append(lines, l.name, l.xys)
		}
	}
	if err := plotutil.AddLinePoints(p, lines...); err != nil {
		return err
	}
	if single > 0 && len(kretry) > 1 {
		lo, hi := kretry[0].X, kretry[len(kretry)-1].X
		target, err := plotter.NewLine(plotter.XYs{{X: lo, Y: 20 * single}, {X: hi, Y: 20 * single}})
		if err != nil {
			return err
		}
		target.Dashes = []vg.Length{vg.Points(4), vg.Points(3)}
		p.Add(target)
		p.Legend.Add("target: 20 × kretry single-record", target)
	}
	p.Legend.Top, p.Legend.Left = false, false // the rates rise to the right: the bottom right is free
	return savePlots(path, [][]*plot.Plot{{p}}, 14*vg.Centimeter, 10*vg.Centimeter)
}

func savePlots(path string, plots [][]*plot.Plot, w, h vg.Length) error {
	img := vgimg.New(w, h)
	dc := draw.New(img)
	t := draw.Tiles{Rows: len(plots), Cols: len(plots[0]), PadX: vg.Millimeter, PadY: vg.Millimeter,
		PadTop: vg.Millimeter, PadBottom: vg.Millimeter, PadLeft: vg.Millimeter, PadRight: vg.Millimeter}
	canvases := plot.Align(plots, t, dc)
	for i := range plots {
		for j := range plots[i] {
			plots[i][j].Draw(canvases[i][j])
		}
	}
	return savePNG(path, img)
}

func savePNG(path string, img *vgimg.Canvas) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if _, err := (vgimg.PngCanvas{Canvas: img}).WriteTo(f); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
