// Package due is a timer wheel of one: a min-heap of (due time, key) served by
// a single runtime timer. The listener arms one entry per waiting partition;
// memory is proportional to the number of keys armed, never to the number of
// records waiting behind them.
package due

import (
	"container/heap"
	"sync"
	"time"
)

// Timers fires a callback for each armed key once its due time has passed.
// Arming a key that is already armed moves it. The zero value is not usable;
// construct with New. Timers is safe for concurrent use.
type Timers[K comparable] struct {
	fire func(K)

	mu      sync.Mutex
	h       entries[K]
	index   map[K]*entry[K]
	timer   *time.Timer
	next    time.Time // when timer is set to fire; zero when stopped
	stopped bool
}

type entry[K comparable] struct {
	key K
	at  time.Time
	pos int
}

type entries[K comparable] []*entry[K]

func (h entries[K]) Len() int           { return len(h) }
func (h entries[K]) Less(i, j int) bool { return h[i].at.Before(h[j].at) }
func (h entries[K]) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].pos, h[j].pos = i, j
}
func (h *entries[K]) Push(x any) {
	e := x.(*entry[K])
	e.pos = len(*h)
	*h = append(*h, e)
}
func (h *entries[K]) Pop() any {
	old := *h
	e := old[len(old)-1]
	old[len(old)-1] = nil
	*h = old[:len(old)-1]
	e.pos = -1
	return e
}

// New returns Timers that call fire, from a timer goroutine and never while
// holding the Timers' lock, for each key that comes due. fire must not block
// for long: it delays every later key.
func New[K comparable](fire func(K)) *Timers[K] {
	return &Timers[K]{fire: fire, index: make(map[K]*entry[K])}
}

// Arm schedules key to fire at at (or as soon as possible if at has passed),
// replacing any earlier schedule of the same key.
func (t *Timers[K]) Arm(key K, at time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.stopped {
		return
	}
	if e, ok := t.index[key]; ok {
		e.at = at
		heap.Fix(&t.h, e.pos)
	} else {
		e := &entry[K]{key: key, at: at}
		t.index[key] = e
		heap.Push(&t.h, e)
	}
	t.resetLocked()
}

// Disarm removes key. It reports whether key was armed; a key whose callback
// is already running is not armed any more.
func (t *Timers[K]) Disarm(key K) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	e, ok := t.index[key]
	if !ok {
		return false
	}
	delete(t.index, key)
	heap.Remove(&t.h, e.pos)
	t.resetLocked()
	return true
}

// Len reports how many keys are armed.
func (t *Timers[K]) Len() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.h)
}

// Stop disarms every key and stops the timer; later Arm calls do nothing.
func (t *Timers[K]) Stop() {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.stopped = true
	if t.timer != nil {
		t.timer.Stop()
	}
	t.h = nil
	clear(t.index)
	t.next = time.Time{}
}

// resetLocked points the single timer at the earliest entry.
func (t *Timers[K]) resetLocked() {
	if len(t.h) == 0 {
		if t.timer != nil {
			t.timer.Stop()
		}
		t.next = time.Time{}
		return
	}
	at := t.h[0].at
	if !t.next.IsZero() && t.next.Equal(at) {
		return
	}
	t.next = at
	d := time.Until(at)
	if t.timer == nil {
		t.timer = time.AfterFunc(d, t.run)
		return
	}
	t.timer.Reset(d)
}

// run pops every entry that is due and fires it outside the lock.
func (t *Timers[K]) run() {
	var due []K
	t.mu.Lock()
	now := time.Now()
	for len(t.h) > 0 && !t.h[0].at.After(now) {
		e := heap.Pop(&t.h).(*entry[K])
		delete(t.index, e.key)
		due = append(due, e.key)
	}
	t.next = time.Time{}
	if !t.stopped {
		t.resetLocked()
	}
	t.mu.Unlock()
	for _, k := range due {
		t.fire(k)
	}
}
