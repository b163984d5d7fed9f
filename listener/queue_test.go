package listener

import (
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"
)

func TestRecQueueKeepsOrderAcrossBatches(t *testing.T) {
	var q recQueue
	mk := func(from, to int64) []*kgo.Record {
		var rs []*kgo.Record
		for o := from; o < to; o++ {
			rs = append(rs, &kgo.Record{Offset: o})
		}
		return rs
	}
	q.push(mk(0, 3))
	q.push(nil)
	q.push(mk(3, 4))
	next := int64(0)
	for range 2 {
		if q.head().Offset != next {
			t.Fatalf("head %d, want %d", q.head().Offset, next)
		}
		q.pop()
		next++
	}
	q.push(mk(4, 6))
	for q.len() > 0 {
		if q.head().Offset != next {
			t.Fatalf("head %d, want %d", q.head().Offset, next)
		}
		q.pop()
		next++
	}
	if next != 6 || q.batches != nil {
		t.Fatalf("drained at %d with batches %v, want 6 and none", next, q.batches)
	}
	q.push(mk(6, 7))
	q.reset()
	if q.len() != 0 {
		t.Fatalf("len after reset = %d", q.len())
	}
}

func TestRecQueueCompactCopiesAndKeepsOrder(t *testing.T) {
	var q recQueue
	shared := []byte("key0value0hdr0key1value1hdr1")
	mk := func(from, to int64) []*kgo.Record {
		var rs []*kgo.Record
		for o := from; o < to; o++ {
			rs = append(rs, &kgo.Record{Offset: o, Key: shared[:4], Value: shared[4:10],
				Headers: []kgo.RecordHeader{{Key: "h", Value: shared[10:14]}, {Key: "nil"}}})
		}
		return rs
	}
	q.push(mk(0, 3))
	q.pop() // the head is now in the middle of a batch
	q.push(mk(3, 5))
	if n := q.compact(); n != 4 {
		t.Fatalf("compact copied %d, want 4", n)
	}
	if n := q.compact(); n != 0 {
		t.Fatalf("second compact copied %d, want 0", n)
	}
	q.push(mk(5, 6))
	if n := q.compact(); n != 1 {
		t.Fatalf("compact after a push copied %d, want only the new record", n)
	}
	shared[0] = 'X' // the copies must not see the fetch buffer change
	for want := int64(1); want < 6; want++ {
		r := q.head()
		if r.Offset != want || string(r.Key) != "key0" || string(r.Value) != "value0" ||
			len(r.Headers) != 2 || string(r.Headers[0].Value) != "hdr0" || r.Headers[1].Value != nil {
			t.Fatalf("record %d after compact: %+v", want, r)
		}
		q.pop()
	}
	if q.len() != 0 || q.compacted != 0 || q.batches != nil {
		t.Fatalf("drained queue: len %d compacted %d batches %v", q.len(), q.compacted, q.batches)
	}
}
