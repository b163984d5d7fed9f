package listener

import "github.com/twmb/franz-go/pkg/kgo"

// recQueue holds a partition's polled records in offset order as the
// batches the client returned them in, so adding a poll's records never
// copies or reallocates what is already queued.
type recQueue struct {
	batches [][]*kgo.Record
	off     int // index of the head within batches[0]
	n       int // records queued
}

func (q *recQueue) len() int { return q.n }

func (q *recQueue) push(recs []*kgo.Record) {
	if len(recs) == 0 {
		return
	}
	q.batches = append(q.batches, recs)
	q.n += len(recs)
}

// head returns the first record; the queue must not be empty.
func (q *recQueue) head() *kgo.Record { return q.batches[0][q.off] }

// pop drops the first record; the queue must not be empty.
func (q *recQueue) pop() {
	q.n--
	q.off++
	if q.off == len(q.batches[0]) {
		q.batches[0] = nil
		q.batches = q.batches[1:]
		q.off = 0
		if len(q.batches) == 0 {
			q.batches = nil
		}
	}
}

// reset drops every record.
func (q *recQueue) reset() { *q = recQueue{} }
