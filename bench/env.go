package main

import (
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Env is the cluster a run uses: embedded kfake (Fake) or the real brokers
// given with -brokers. Every system in a run uses the same one.
type Env struct {
	Brokers []string
	Fake    bool
}

// shards spreads the Tracker's per-key state so that handlers running on
// several goroutines rarely touch the same cache line or lock: at a few
// million records a second, one shared counter would cost a concurrent
// system more than a single-goroutine one and skew the ratios.
const shards = 64

type counterShard struct {
	n atomic.Int64
	_ [120]byte // two cache lines per shard: no false sharing, even with the adjacent-line prefetcher
}

type keyShard struct {
	mu       sync.Mutex
	failedAt map[string]time.Time // key -> when its last failing delivery returned
	fails    map[string]int       // key -> failing deliveries so far
	_        [40]byte
}

// Tracker measures a scenario from inside a handler, the same way for
// every system: it notes the first handler call and the time the
// want-th success was counted, and for S3 computes each retry's lateness
// from the time the previous delivery of the same record failed. It is
// safe for concurrent use and cheap on the hot path: a handler call costs
// one atomic load, a key hash and one uncontended atomic add.
//
// Throughput is measured over the last 90% of the successes: from the
// moment a tenth of them had been counted to the moment all had. The first
// tenth absorbs what differs between clients and has nothing to do with the
// work per record — group joins, the first fetches, warm-up. The counts are
// read by a watcher every 250 µs, so both ends are late by at most that
// much, for every system alike.
type Tracker struct {
	want   int64
	delays []time.Duration

	started atomic.Bool
	first   atomic.Int64 // UnixNano of the first Begin
	failing atomic.Bool  // Failed was called: Begin must look keys up
	counts  [shards]counterShard
	keys    [shards]keyShard

	latMu    sync.Mutex
	lateness [][]time.Duration

	warm     int64        // successes not timed (the first tenth)
	warmAt   atomic.Int64 // UnixNano when warm successes were seen
	last     atomic.Int64 // UnixNano when the want-th success was seen
	done     chan struct{}
	stopOnce sync.Once
	stop     chan struct{}
}

// NewTracker returns a Tracker that is done after want successes. delays
// are S3's tier delays (nil for S1 and S2).
func NewTracker(want int, delays []time.Duration) *Tracker {
	t := &Tracker{want: int64(want), warm: int64(want / 10), delays: delays, lateness: make([][]time.Duration, len(delays)),
		done: make(chan struct{}), stop: make(chan struct{})}
	for i := range t.keys {
		t.keys[i].failedAt, t.keys[i].fails = map[string]time.Time{}, map[string]int{}
	}
	go t.watch()
	return t
}

func (t *Tracker) watch() {
	tick := time.NewTicker(250 * time.Microsecond)
	defer tick.Stop()
	for {
		select {
		case <-tick.C:
		case <-t.stop:
			return
		}
		var n int64
		for i := range t.counts {
			n += t.counts[i].n.Load()
		}
		if n >= t.warm && t.warmAt.Load() == 0 {
			t.warmAt.Store(time.Now().UnixNano())
		}
		if n >= t.want {
			t.last.Store(time.Now().UnixNano())
			close(t.done)
			return
		}
	}
}

// Close stops the watcher of a Tracker that will never be done.
func (t *Tracker) Close() { t.stopOnce.Do(func() { close(t.stop) }) }

func shardOf(key string) int {
	h := uint32(2166136261) // FNV-1a
	for i := 0; i < len(key); i++ {
		h ^= uint32(key[i])
		h *= 16777619
	}
	return int(h % shards)
}

// Begin is called at the start of every handler call for key. It records
// the first call and, for a retry delivery in S3, its lateness, and
// returns how many times this key has failed so far.
func (t *Tracker) Begin(key string) (failedBefore int) {
	if !t.started.Load() && t.started.CompareAndSwap(false, true) {
		t.first.Store(time.Now().UnixNano())
	}
	if !t.failing.Load() {
		return 0 // S1: no failures, nothing to look up
	}
	ks := &t.keys[shardOf(key)]
	ks.mu.Lock()
	n := ks.fails[key]
	var at time.Time
	if n > 0 {
		at = ks.failedAt[key]
	}
	ks.mu.Unlock()
	if n > 0 && n <= len(t.delays) {
		late := time.Since(at.Add(t.delays[n-1]))
		t.latMu.Lock()
		t.lateness[n-1] = append(t.lateness[n-1], late)
		t.latMu.Unlock()
	}
	return n
}

// Failed is called when a handler call for key is about to return an
// error, as late as possible before it returns, by the handlers that need
// Begin's count or S3's lateness: every S3 handler, and S2 handlers that
// cannot tell a retry from its first delivery otherwise (watermill,
// kafka-konsumer). It costs two map writes per call, about 1 µs a record
// at millions of keys, so kretry and raw, which tell a retry by its context
// or topic, do not call it in S2.
func (t *Tracker) Failed(key string) {
	now := time.Now()
	if !t.failing.Load() {
		t.failing.Store(true)
	}
	ks := &t.keys[shardOf(key)]
	ks.mu.Lock()
	ks.fails[key]++
	ks.failedAt[key] = now
	ks.mu.Unlock()
}

// Succeeded is called when a handler call for key is about to return nil.
func (t *Tracker) Succeeded(key string) { t.counts[shardOf(key)].n.Add(1) }

// SucceededIn is Succeeded for a record of the given partition, for
// systems that hand records to handlers partition by partition (kretry,
// raw franz-go): counting per partition keeps each counter in the cache of
// the core handling that partition, as a per-key counter would not when
// several goroutines handle partitions at once.
func (t *Tracker) SucceededIn(partition int32) { t.counts[uint32(partition)%shards].n.Add(1) }

// SucceededInN is SucceededIn for n records of the partition at once: a
// batch handler's.
func (t *Tracker) SucceededInN(partition int32, n int) {
	t.counts[uint32(partition)%shards].n.Add(int64(n))
}

// Timing reports whether the part of the run that Throughput times (after
// the first tenth of the successes) has begun.
func (t *Tracker) Timing() bool { return t.warmAt.Load() != 0 }

// Done is closed once want successes have been counted.
func (t *Tracker) Done() <-chan struct{} { return t.done }

// Successes returns the successes counted so far.
func (t *Tracker) Successes() int {
	var n int64
	for i := range t.counts {
		n += t.counts[i].n.Load()
	}
	return int(n)
}

// EndToEnd returns S2's result once Done: every success and the time from
// the first handler call to the last success, failures and forwards
// included.
func (t *Tracker) EndToEnd(note string) Throughput {
	return Throughput{Records: int(t.want), Elapsed: t.Span(), Note: note}
}

// Throughput returns S1's result once Done: the successes after the first
// tenth and the time they took.
func (t *Tracker) Throughput(note string) Throughput {
	return Throughput{Records: int(t.want - t.warm), Elapsed: time.Duration(t.last.Load() - t.warmAt.Load()), Note: note}
}

// Span returns the time from the first handler call to the last success
// counted (once Done).
func (t *Tracker) Span() time.Duration { return time.Duration(t.last.Load() - t.first.Load()) }

// Precision returns S3's result once Done.
func (t *Tracker) Precision(note string) Precision {
	t.latMu.Lock()
	defer t.latMu.Unlock()
	out := make([][]time.Duration, len(t.lateness))
	for i, l := range t.lateness {
		out[i] = append([]time.Duration(nil), l...)
	}
	return Precision{Lateness: out, Note: note}
}

// KeyIndex parses the index out of a key "k<i>"; -1 if it is not one.
func KeyIndex(key string) int {
	if !strings.HasPrefix(key, "k") {
		return -1
	}
	i, err := strconv.Atoi(key[1:])
	if err != nil {
		return -1
	}
	return i
}
