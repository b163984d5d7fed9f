package listener

import (
	"slices"
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"
)

// The commit ledger marks only the end of a prefix of final outcomes:
// never past a publish Kafka has not acknowledged, nor past an abandoned
// one, and a synchronous outcome behind a pending publish waits for it.
func TestCommitsMarkOnlyFinalPrefixes(t *testing.T) {
	var marked []int64
	c := commits{markFn: func(r *kgo.Record) { marked = append(marked, r.Offset) }}
	rec := func(o int64) *kgo.Record { return &kgo.Record{Offset: o} }
	track := func(c *commits, o int64) *entry {
		e := &entry{rec: rec(o)}
		c.track(e)
		return e
	}
	want := func(step string, offsets ...int64) {
		t.Helper()
		if !slices.Equal(marked, offsets) {
			t.Fatalf("%s: marked %v, want %v", step, marked, offsets)
		}
	}

	c.complete(rec(0)) // handled, nothing pending: the turn's lastDone
	want("handled")
	c.flush()
	want("flushed", 0)
	e1 := track(&c, 1) // forwarded
	c.complete(rec(2)) // handled behind it: waits
	e3 := track(&c, 3)
	c.flush()
	want("nothing final past the pending publish", 0)
	if !c.ack(e3) {
		t.Fatal("ack of a pending entry reported no change")
	}
	want("3 acknowledged before 1: no mark", 0)
	c.ack(e1)
	want("1 acknowledged: the prefix to 3 is final", 0, 3)
	if len(c.pending) != 0 || c.unacked != 0 {
		t.Fatalf("pending %d, unacked %d after every ack", len(c.pending), c.unacked)
	}

	e4 := track(&c, 4)
	c.complete(rec(5))
	if !c.abandon(e4) || c.unacked != 0 {
		t.Fatalf("abandon: unacked %d", c.unacked)
	}
	if c.ack(e4) || c.abandon(e4) {
		t.Fatal("an abandoned entry changed again")
	}
	c.flush()
	want("an abandoned publish is never passed", 0, 3)

	var d commits
	d.markFn = c.markFn
	for i := range 4 {
		track(&d, int64(10+i))
	}
	if !d.full(4) || !d.blocked {
		t.Fatal("4 pending of at most 4: not full")
	}
	if d.unblock(4) {
		t.Fatal("unblocked with 4 pending of at most 4")
	}
	d.ack(d.pending[0])
	d.ack(d.pending[0])
	if !d.unblock(4) || d.blocked {
		t.Fatal("still blocked with 2 pending of at most 4")
	}
}

// While publishes are pending, the ledger marks once every markEvery
// completed prefixes instead of at every acknowledgement; the last pending
// acknowledgement marks, and so does flush (revoke, shutdown, the end of
// a worker turn). It never marks past an unacknowledged publish.
func TestCommitsMarkEveryFewAcks(t *testing.T) {
	var marked []int64
	c := commits{markFn: func(r *kgo.Record) { marked = append(marked, r.Offset) }}
	const n = 3*markEvery + 5
	es := make([]*entry, n)
	for i := range es {
		es[i] = &entry{rec: &kgo.Record{Offset: int64(i)}}
		c.track(es[i])
	}
	for i := range markEvery - 1 {
		c.ack(es[i])
	}
	if len(marked) != 0 || c.unmarked == nil || c.unmarked.Offset != markEvery-2 {
		t.Fatalf("after %d acks with more pending: marked %v, unmarked %v", markEvery-1, marked, c.unmarked)
	}
	c.ack(es[markEvery-1])
	if !slices.Equal(marked, []int64{markEvery - 1}) || c.unmarked != nil {
		t.Fatalf("the %dth ack: marked %v, unmarked %v", markEvery, marked, c.unmarked)
	}
	c.ack(es[markEvery+1]) // out of order: completes no prefix
	c.ack(es[markEvery])
	c.flush()
	if want := []int64{markEvery - 1, markEvery + 1}; !slices.Equal(marked, want) {
		t.Fatalf("flush: marked %v, want %v", marked, want)
	}
	for _, e := range es[markEvery+2 : n-1] {
		c.ack(e)
	}
	if last := marked[len(marked)-1]; last >= n-1 {
		t.Fatalf("marked %d past the unacknowledged %d", last, n-1)
	}
	c.ack(es[n-1])
	if last := marked[len(marked)-1]; last != n-1 || len(c.pending) != 0 {
		t.Fatalf("the last pending ack marked %d, want %d", last, n-1)
	}
}

// A partition's pause state reports the edges that start and end a pause
// in the client: the first reason and the last one gone.
func TestPauseStateEdges(t *testing.T) {
	var s pauseState
	steps := []struct {
		reason uint8
		on     bool
		edge   int
		paused bool
	}{
		{pauseDue, true, +1, true},
		{pauseFull, true, 0, true},
		{pauseDue, false, 0, true},
		{pauseDue, false, 0, true}, // removing an absent reason changes nothing
		{pauseFull, false, -1, false},
		{pauseFull, false, 0, false},
		{pauseFull, true, +1, true},
		{pauseFull, true, 0, true},
	}
	for i, st := range steps {
		if edge := s.set(st.reason, st.on); edge != st.edge || s.paused() != st.paused {
			t.Fatalf("step %d: edge %d paused %v, want %d %v", i, edge, s.paused(), st.edge, st.paused)
		}
	}
	if !s.has(pauseFull) || s.has(pauseDue) {
		t.Fatalf("reasons %b, want pauseFull only", s.reasons)
	}
}
