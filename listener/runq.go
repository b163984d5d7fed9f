package listener

import "sync"

// runq is the FIFO of partitions that have records ready to handle. A
// partition is in it at most once (part.queued guards that), so its length
// is bounded by the number of owned partitions. Workers block in pop.
type runq struct {
	mu     sync.Mutex
	cond   sync.Cond
	items  []*part
	head   int
	closed bool
}

func newRunq() *runq {
	q := &runq{}
	q.cond.L = &q.mu
	return q
}

func (q *runq) push(p *part) {
	q.mu.Lock()
	if !q.closed {
		q.items = append(q.items, p)
		q.cond.Signal()
	}
	q.mu.Unlock()
}

// pop returns the next partition, or nil once the queue is closed.
func (q *runq) pop() *part {
	q.mu.Lock()
	defer q.mu.Unlock()
	for q.head == len(q.items) && !q.closed {
		q.cond.Wait()
	}
	if q.closed {
		return nil
	}
	p := q.items[q.head]
	q.items[q.head] = nil
	q.head++
	if q.head == len(q.items) {
		q.items, q.head = q.items[:0], 0
	} else if q.head > 1024 && q.head*2 > len(q.items) {
		n := copy(q.items, q.items[q.head:])
		clear(q.items[n:])
		q.items, q.head = q.items[:n], 0
	}
	return p
}

// close wakes every worker; pop returns nil from then on.
func (q *runq) close() {
	q.mu.Lock()
	q.closed = true
	q.items, q.head = nil, 0
	q.cond.Broadcast()
	q.mu.Unlock()
}
