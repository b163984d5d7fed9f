package listener

import "github.com/twmb/franz-go/pkg/kgo"

// recQueue holds a partition's polled records in offset order as the
// batches the client returned them in, so adding a poll's records never
// copies or reallocates what is already queued.
type recQueue struct {
	batches [][]*kgo.Record
	off     int // index of the head within batches[0]
	n       int // records queued
	// compacted counts the leading batches that compact made: they hold
	// copies that pin no fetch buffer.
	compacted int
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

// peek appends up to n records from the head, in order, to dst.
func (q *recQueue) peek(dst []*kgo.Record, n int) []*kgo.Record {
	off := q.off
	for _, b := range q.batches {
		for _, r := range b[off:] {
			if n == 0 {
				return dst
			}
			dst = append(dst, r)
			n--
		}
		off = 0
	}
	return dst
}

// popN drops the first n records; the queue must hold at least n.
func (q *recQueue) popN(n int) {
	for ; n > 0; n-- {
		q.pop()
	}
}

// pop drops the first record; the queue must not be empty.
func (q *recQueue) pop() {
	q.n--
	q.off++
	if q.off == len(q.batches[0]) {
		q.batches[0] = nil
		q.batches = q.batches[1:]
		q.off = 0
		if q.compacted > 0 {
			q.compacted--
		}
		if len(q.batches) == 0 {
			q.batches = nil
		}
	}
}

// reset drops every record.
func (q *recQueue) reset() { *q = recQueue{} }

// compact replaces the records queued after the compacted batches with
// copies of themselves, in one new batch. A record the client returns
// shares memory with its whole fetch: the slice a poll returns is part of
// an array that points at every record of that fetch, and keys, values and
// header values point into the fetch's (decompressed) batches. A queue
// that waits long — a partition paused until its head is due — would keep
// all of that alive for the few records it holds. Copies keep only what
// they hold. It returns the number of records copied.
func (q *recQueue) compact() int {
	if q.compacted == len(q.batches) {
		return 0
	}
	start := q.compacted
	n := 0
	for i := start; i < len(q.batches); i++ {
		b := q.batches[i]
		if i == 0 {
			b = b[q.off:]
		}
		n += len(b)
	}
	out := make([]*kgo.Record, 0, n)
	for i := start; i < len(q.batches); i++ {
		b := q.batches[i]
		if i == 0 {
			b = b[q.off:]
		}
		for _, r := range b {
			out = append(out, cloneRecord(r))
		}
	}
	if start == 0 {
		q.off = 0
	}
	clear(q.batches[start:])
	q.batches = append(q.batches[:start], out)
	q.compacted = len(q.batches)
	return n
}

// cloneRecord returns a copy of r whose key, value and headers are in one
// new allocation (plus the headers slice).
func cloneRecord(r *kgo.Record) *kgo.Record {
	size := len(r.Key) + len(r.Value)
	for _, h := range r.Headers {
		size += len(h.Value)
	}
	buf := make([]byte, 0, size)
	c := *r // Context stays: a consumer hook (kotel's) keeps its span there
	take := func(b []byte) []byte {
		if b == nil {
			return nil
		}
		start := len(buf)
		buf = append(buf, b...)
		return buf[start:len(buf):len(buf)]
	}
	c.Key, c.Value = take(r.Key), take(r.Value)
	if r.Headers != nil {
		c.Headers = make([]kgo.RecordHeader, len(r.Headers))
		for i, h := range r.Headers {
			c.Headers[i] = kgo.RecordHeader{Key: h.Key, Value: take(h.Value)}
		}
	}
	return &c
}
