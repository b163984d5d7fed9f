package main

import (
	"sync"
	"sync/atomic"
	"time"
)

// bulkCost is S7's handler cost, shaped like a bulk write: PerCall for
// each call plus PerRecord for each record in it. It is spent waiting, as
// an I/O-bound write waits for its database, not computing.
type bulkCost struct {
	PerCall, PerRecord time.Duration
}

// of is the cost of one call with n records.
func (c bulkCost) of(n int) time.Duration { return c.PerCall + time.Duration(n)*c.PerRecord }

// ideal is the rate of workers workers each handling batches of batch
// records back to back, every call costing exactly c.of(batch): records/s.
func (c bulkCost) ideal(workers int, batch float64) float64 {
	cost := c.PerCall.Seconds() + batch*c.PerRecord.Seconds()
	return float64(workers) * batch / cost
}

// bulkStats counts a run's handler calls, the records they were given and
// how late their waits ended, from any number of goroutines: only the calls
// that end while timed returns true (every call if timed is nil), so that
// they describe the same part of the run as its rate.
type bulkStats struct {
	calls, records, lateNs atomic.Int64
	late                   [lateBuckets]atomic.Int64 // calls by lateness, lateBucket wide; the last holds every later one
	timed                  func() bool
}

const (
	lateBucket  = 10 * time.Microsecond
	lateBuckets = 500
)

// call waits out the cost of a call with n records that started at start
// and counts it.
func (s *bulkStats) call(w *waiter, c bulkCost, start time.Time, n int) {
	deadline := start.Add(c.of(n))
	w.until(deadline)
	late := time.Since(deadline)
	if s.timed != nil && !s.timed() {
		return
	}
	s.calls.Add(1)
	s.records.Add(int64(n))
	s.lateNs.Add(int64(late))
	s.late[min(int(late/lateBucket), lateBuckets-1)].Add(1)
}

// bulkSample is what bulkStats counted.
type bulkSample struct {
	Calls     int64
	MeanBatch float64 // records per call
	// Late is the mean overshoot of a call's wait past its deadline;
	// LateP50 and LateP99 its percentiles, rounded up to lateBucket.
	Late, LateP50, LateP99 time.Duration
}

func (s *bulkStats) sample() bulkSample {
	b := bulkSample{Calls: s.calls.Load()}
	if b.Calls == 0 {
		return b
	}
	b.MeanBatch = float64(s.records.Load()) / float64(b.Calls)
	b.Late = time.Duration(s.lateNs.Load() / b.Calls)
	var seen int64
	for i := range s.late {
		seen += s.late[i].Load()
		if b.LateP50 == 0 && seen*2 >= b.Calls {
			b.LateP50 = time.Duration(i+1) * lateBucket
		}
		if seen*100 >= b.Calls*99 {
			b.LateP99 = time.Duration(i+1) * lateBucket
			break
		}
	}
	return b
}

// bareWaits is S7's baseline without Kafka: workers goroutines each making
// calls of batch records back to back for about d, waiting with w as the
// handlers do. It returns their rate (records/s) and the sample: what Go's
// timers and this machine allow.
func bareWaits(w *waiter, c bulkCost, workers, batch int, d time.Duration) (float64, bulkSample) {
	calls := max(1, int(d/c.of(batch)))
	var st bulkStats
	var wg sync.WaitGroup
	start := time.Now()
	for range workers {
		wg.Go(func() {
			for range calls {
				st.call(w, c, time.Now(), batch)
			}
		})
	}
	wg.Wait()
	return float64(workers*calls*batch) / time.Since(start).Seconds(), st.sample()
}
