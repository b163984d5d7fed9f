package listener

import (
	"fmt"
	"runtime"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/kretry/kretry/config"
)

// Measurements of key order's lane index (docs/benchmarks.md, "Key
// order"): what a key held in retry costs in memory, and what a main-topic
// record whose key is not in retry costs before its handler call. They
// report figures and assert nothing about them. Run them with
//
//	go test ./listener -run '^$' -bench 'KeyOrder' -benchtime 3x
//	go test ./listener -run '^$' -bench 'KeyOrderAtMain' -count 5

func benchKeyOrder(maxKeys int) *keyOrder {
	return newKeyOrder(&cfg{maxKeys: maxKeys, followers: config.FollowersRelease})
}

// heapAfterGC returns the heap in use once the garbage collector has run
// (twice: the first run may leave finalizers' objects to the second).
func heapAfterGC() uint64 {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}

// BenchmarkKeyOrderLaneMemory fills one lane with keys held in retry, the
// way the listener does (keyOrder.add, and atMain for followers), and
// reports the heap the lane holds per key, from HeapAlloc after GC before
// the lane is made and after it is filled. Layouts:
//
//   - 1rec: each key has one record in a tier (a record that failed, no
//     follower);
//   - 3rec: each key has three records of its own in the tiers, none a
//     follower (added with add, as a rebuild from the tiers does);
//   - 1+2fol: each key has one record that failed and two that followed
//     it from the main topic (atMain).
//
// The keys' hashes are distinct; what the map and each key's records take
// is all that is counted (a record's key bytes are never kept).
func BenchmarkKeyOrderLaneMemory(b *testing.B) {
	for _, keys := range []int{10_000, 100_000, 1_000_000} {
		for _, layout := range []string{"1rec", "3rec", "1+2fol"} {
			b.Run(fmt.Sprintf("keys=%d/%s", keys, layout), func(b *testing.B) {
				var perKey, perRec float64
				recs := 0
				for b.Loop() {
					b.StopTimer()
					before := heapAfterGC()
					b.StartTimer()
					ko := benchKeyOrder(keys)
					l, _ := ko.lane(0, true)
					due := time.Now().Add(time.Second)
					recs = fillLane(ko, l, keys, layout, due)
					b.StopTimer()
					after := heapAfterGC()
					runtime.KeepAlive(ko)
					runtime.KeepAlive(l)
					perKey = float64(after-before) / float64(keys)
					perRec = float64(after-before) / float64(recs)
					if n, r := l.size(); n != keys || r != recs {
						b.Fatalf("lane holds %d keys, %d records; want %d, %d", n, r, keys, recs)
					}
					b.StartTimer()
				}
				b.ReportMetric(perKey, "B/key")
				b.ReportMetric(perRec, "B/record")
				b.ReportMetric(0, "ns/op") // the fill's time is not the measure
			})
		}
	}
}

// fillLane adds keys keys to l in layout (see BenchmarkKeyOrderLaneMemory)
// and returns the records added. Key i's records are at offsets i, keys+i,
// 2*keys+i, as records of distinct keys interleave on a partition.
func fillLane(ko *keyOrder, l *lane, keys int, layout string, due time.Time) int {
	if layout == "1+2fol" {
		return fillFollowers(ko, l, keys, due)
	}
	per := 1
	if layout == "3rec" {
		per = 3
	}
	for j := range per {
		for i := range keys {
			h := uint64(i)*0x9e3779b97f4a7c15 + 1
			ko.add(l, h, keyRec{off: int64(j*keys + i), follows: -1}, benchTier, due)
		}
	}
	return per * keys
}

const benchTier = "orders-retry-1000"

// fillFollowers is the 1+2fol layout with real keys (atMain hashes them):
// key i's first record is added as a failed record, then two records of
// the key arrive on the main topic and follow it.
func fillFollowers(ko *keyOrder, l *lane, keys int, due time.Time) int {
	key := func(i int) []byte { return fmt.Appendf(nil, "customer-%08d", i) }
	for i := range keys {
		ko.add(l, ko.hash(key(i)), keyRec{off: int64(i), follows: -1}, benchTier, due)
	}
	rec := &kgo.Record{}
	for j := 1; j < 3; j++ {
		for i := range keys {
			rec.Key, rec.Offset = key(i), int64(j*keys+i)
			if o := ko.atMain(l, rec); o.v != vFollow {
				panic(fmt.Sprintf("key %d: verdict %d, want a follower", i, o.v))
			}
		}
	}
	return 3 * keys
}

// BenchmarkKeyOrderAtMain is the cost, before the handler call, of a
// main-topic record whose key is not in retry: the key's hash and the
// lane's map lookup under its lock (keyOrder.atMain returning vHandle),
// with the lane holding no key, or 100,000 other keys in retry; and the
// hash alone. Keys are 15 bytes, as "customer-00001234" less a prefix.
func BenchmarkKeyOrderAtMain(b *testing.B) {
	const distinct = 1 << 16
	keys := make([]*kgo.Record, distinct)
	for i := range keys {
		keys[i] = &kgo.Record{Key: fmt.Appendf(nil, "cust-%010d", i), Offset: int64(i)}
	}
	b.Run("hash", func(b *testing.B) {
		ko := benchKeyOrder(config.DefaultMaxKeysInRetry)
		var sink uint64
		i := 0
		for b.Loop() {
			sink += ko.hash(keys[i&(distinct-1)].Key)
			i++
		}
		runtime.KeepAlive(sink)
	})
	for _, held := range []int{0, 100_000} {
		b.Run(fmt.Sprintf("held=%d", held), func(b *testing.B) {
			ko := benchKeyOrder(held + 1)
			l, _ := ko.lane(0, true)
			due := time.Now().Add(time.Second)
			for i := range held {
				// Keys in retry that the records below never have.
				ko.add(l, ko.hash(fmt.Appendf(nil, "held-%010d", i)), keyRec{off: int64(i), follows: -1}, "t", due)
			}
			i := 0
			for b.Loop() {
				if o := ko.atMain(l, keys[i&(distinct-1)]); o.v != vHandle {
					b.Fatalf("verdict %d, want vHandle", o.v)
				}
				i++
			}
		})
	}
}
