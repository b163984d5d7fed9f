package dltops

import (
	"fmt"
	"io"
	"strings"
	"time"
)

// Snapshot is where a replay stands, for a Progress.
type Snapshot struct {
	// Done and Total are DLT offsets of the run behind the replay and to
	// cover in all (Done reaches Total at the end).
	Done, Total int64
	// Sent counts the records sent and acknowledged so far in the run,
	// AlreadySent those an earlier attempt had sent, Skipped those that
	// cannot be replayed.
	Sent, AlreadySent, Skipped int64
	// Rate is the offsets covered per second by this attempt.
	Rate float64
	// Elapsed is the time since this attempt started.
	Elapsed time.Duration
}

// ETA is the time left at the current rate, or -1 when unknown.
func (s Snapshot) ETA() time.Duration {
	if s.Rate <= 0 {
		return -1
	}
	return time.Duration(float64(s.Total-s.Done) / s.Rate * float64(time.Second))
}

// Progress reports a replay's progress. Update is called after every
// record, from one goroutine, and must be cheap: implementations decide
// when to draw. Finish is called once, at the end.
type Progress interface {
	Update(Snapshot)
	Finish(Snapshot)
}

// NoProgress reports nothing.
type NoProgress struct{}

// Update does nothing.
func (NoProgress) Update(Snapshot) {}

// Finish does nothing.
func (NoProgress) Finish(Snapshot) {}

// Bar draws a one-line progress bar on a terminal, redrawing it in place
// with a carriage return at most every 100ms.
type Bar struct {
	w     io.Writer
	clock Clock
	last  time.Time
	width int // of the last line drawn
}

// NewBar returns a Bar writing to w (a terminal) on clock (nil: the system
// clock).
func NewBar(w io.Writer, clock Clock) *Bar {
	if clock == nil {
		clock = RealClock()
	}
	return &Bar{w: w, clock: clock}
}

// Update redraws the bar with s, unless it was drawn less than 100ms ago.
func (b *Bar) Update(s Snapshot) {
	if now := b.clock.Now(); now.Sub(b.last) >= 100*time.Millisecond {
		b.last = now
		b.draw(s)
	}
}

// Finish draws the bar with s a last time and ends its line.
func (b *Bar) Finish(s Snapshot) {
	b.draw(s)
	fmt.Fprintln(b.w)
}

func (b *Bar) draw(s Snapshot) {
	const cells = 30
	frac := 1.0
	if s.Total > 0 {
		frac = min(1, float64(s.Done)/float64(s.Total))
	}
	full := int(frac * cells)
	bar := strings.Repeat("=", full)
	if full < cells {
		bar += ">" + strings.Repeat(" ", cells-full-1)
	}
	line := fmt.Sprintf("[%s] %d/%d %3.0f%%  sent %d  %s/s  ETA %s", bar, s.Done, s.Total, frac*100,
		s.Sent, rate(s.Rate), eta(s.ETA()))
	pad := max(0, b.width-len(line))
	b.width = len(line)
	fmt.Fprintf(b.w, "\r%s%s", line, strings.Repeat(" ", pad))
}

// Lines writes a plain progress line every Every offsets or every
// Interval, whichever comes first, for logs and pipes.
type Lines struct {
	w        io.Writer
	clock    Clock
	every    int64
	interval time.Duration
	lastDone int64
	lastAt   time.Time
}

// NewLines returns a Lines writing to w every every offsets (default
// 10000) or every interval (default 5s), on clock (nil: the system clock).
func NewLines(w io.Writer, every int64, interval time.Duration, clock Clock) *Lines {
	if clock == nil {
		clock = RealClock()
	}
	if every <= 0 {
		every = 10000
	}
	if interval <= 0 {
		interval = 5 * time.Second
	}
	return &Lines{w: w, clock: clock, every: every, interval: interval, lastAt: clock.Now()}
}

// Update writes a line for s when Every offsets were covered or Interval
// has passed since the last line.
func (l *Lines) Update(s Snapshot) {
	now := l.clock.Now()
	if s.Done-l.lastDone < l.every && now.Sub(l.lastAt) < l.interval {
		return
	}
	l.lastDone, l.lastAt = s.Done, now
	l.line(s)
}

// Finish writes nothing: the caller prints a summary.
func (l *Lines) Finish(Snapshot) {}

func (l *Lines) line(s Snapshot) {
	pct := 100.0
	if s.Total > 0 {
		pct = float64(s.Done) / float64(s.Total) * 100
	}
	fmt.Fprintf(l.w, "progress: %d/%d offsets (%.0f%%), sent %d, %s/s, ETA %s\n",
		s.Done, s.Total, pct, s.Sent, rate(s.Rate), eta(s.ETA()))
}

func rate(r float64) string {
	switch {
	case r >= 1e6:
		return fmt.Sprintf("%.1fM", r/1e6)
	case r >= 1e4:
		return fmt.Sprintf("%.1fk", r/1e3)
	}
	return fmt.Sprintf("%.0f", r)
}

func eta(d time.Duration) string {
	if d < 0 {
		return "?"
	}
	return d.Round(time.Second).String()
}
