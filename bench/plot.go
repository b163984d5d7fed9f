package main

import (
	"fmt"
	"math"
	"os"

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
