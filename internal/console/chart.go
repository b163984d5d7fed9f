package console

import (
	"fmt"
	"maps"
	"slices"
	"time"
)

// Chart geometry, in SVG user units.
const (
	chartWidth  = 720
	chartHeight = 120
	chartBars   = 48
)

// chart is a bar chart of DLT record arrivals over time, drawn as inline
// SVG by the DLT page's template.
type chart struct {
	Bars        []bar
	Width       int
	Height      int
	Max         int64
	First, Last time.Time
	Step        time.Duration
}

// bar is one bar of a chart: the records that arrived in [From, From+step).
type bar struct {
	X, Y, W, H float64
	From       time.Time
	Count      int64
	Title      string
}

// newChart bins per-minute arrival counts into at most chartBars bars of
// whole minutes covering the first to the last minute.
func newChart(minutes map[int64]int64) chart {
	c := chart{Width: chartWidth, Height: chartHeight}
	if len(minutes) == 0 {
		return c
	}
	keys := slices.Sorted(maps.Keys(minutes))
	first, last := keys[0], keys[len(keys)-1]
	span := last - first + 1
	step := (span + chartBars - 1) / chartBars
	n := (span + step - 1) / step
	counts := make([]int64, n)
	for m, v := range minutes {
		counts[(m-first)/step] += v
	}
	c.Max = slices.Max(counts)
	c.First, c.Last = time.Unix(first*60, 0).UTC(), time.Unix((last+1)*60, 0).UTC()
	c.Step = time.Duration(step) * time.Minute
	w := float64(chartWidth) / float64(n)
	for i, v := range counts {
		h := 0.0
		if c.Max > 0 {
			h = float64(v) / float64(c.Max) * (chartHeight - 2)
		}
		from := c.First.Add(time.Duration(i) * c.Step)
		c.Bars = append(c.Bars, bar{X: float64(i) * w, Y: chartHeight - h, W: max(w-1, 1), H: h, From: from, Count: v,
			Title: fmt.Sprintf("%d records from %s for %s", v, fmtTime(from), fmtDuration(c.Step))})
	}
	return c
}
