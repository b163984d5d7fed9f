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
