package main

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// A partition's offsets are marked in order, whatever order its batches
// settle in: never past a batch whose forwards are not all acknowledged.
func TestRawMarksInOrder(t *testing.T) {
	type mark struct {
		partition int32
		next      int64
	}
	var marks []mark
	m := &rawMarks{parts: map[string]map[int32]*rawPartition{},
		mark: func(_ string, p int32, next kgo.EpochOffset) { marks = append(marks, mark{p, next.Offset}) }}
	last := func(o int64) *kgo.Record { return &kgo.Record{Offset: o} }
	b1 := m.batch("t", 0, last(9))  // offsets 0..9, two forwards
	b2 := m.batch("t", 0, last(19)) // 10..19, one forward
	b3 := m.batch("t", 0, last(29)) // 20..29, none
	o1 := m.batch("t", 1, last(4))  // another partition, one forward
	b1.hold()
	b1.hold()
	b2.hold()
	o1.hold()
	for _, b := range []*rawBatch{b1, b2, b3, o1} {
		b.settle() // the poll loop's own hold: every record handled
	}
	step := func(what string, b *rawBatch, want ...mark) {
		t.Helper()
		b.settle()
		if !slices.Equal(marks, want) {
			t.Fatalf("after %s: marks %v, want %v", what, marks, want)
		}
	}
	step("b3's handling, b2's ack", b2) // b1 still waits: nothing marked
	step("one of b1's two acks", b1)
	step("the other partition's ack", o1, mark{1, 5})
	step("b1's last ack", b1, mark{1, 5}, mark{0, 30}) // b1, b2 and b3 settled: up to 30 at once
	b4 := m.batch("t", 0, last(39))
	step("a batch without forwards", b4, mark{1, 5}, mark{0, 30}, mark{0, 40})
	if q := m.parts["t"][0].queue; len(q) != 0 {
		t.Fatalf("%d batches still queued", len(q))
	}
}

// Every raw variant, and raw-headers, runs S1 (or says which variant it
// equals there), S2 and S2b on a small kfake topic and counts exactly the
// records given.
func TestRawVariants(t *testing.T) {
	for _, s := range append(rawVariants(), rawSystem{name: "raw", v: rawBest}, rawHeaders()) {
		rs := s.(rawSystem)
		t.Run(rs.name, func(t *testing.T) {
			t.Run("s1", func(t *testing.T) {
				if rs.name != "raw" && (rs.v.producer || rs.v.barrier) {
					_, err := rs.HappyPath(peerCtx(t, time.Minute), nil, HappyPathInput{})
					if !errors.Is(err, ErrUnsupported) {
						t.Fatalf("err = %v, want ErrUnsupported", err)
					}
					return
				}
				peerHappyPath(t, rs, peerRecords)
			})
			t.Run("s2", func(t *testing.T) { peerRetryHop(t, rs, peerRecords) })
			t.Run("s2b", func(t *testing.T) {
				if rs.name != "raw" && !rs.v.headers && rs.v.split {
					_, err := rs.DeadLetter(peerCtx(t, time.Minute), nil, DeadLetterInput{})
					if !errors.Is(err, ErrUnsupported) {
						t.Fatalf("err = %v, want ErrUnsupported", err)
					}
					return
				}
				peerDeadLetter(t, rs, peerRecords)
			})
		})
	}
}

func TestKretryDeadLetter(t *testing.T) { peerDeadLetter(t, kretrySystem{}, peerRecords) }

func peerDeadLetter(t *testing.T, sys DeadLetterer, n int) {
	env := peerEnv(t)
	ctx := peerCtx(t, 3*time.Minute)
	in := DeadLetterInput{Topic: "s2b", Group: "s2b-group", Prefix: "s2b-run1-", Partitions: peerPartitions, Records: n}
	peerFill(t, ctx, env, in.Topic, in.Partitions, in.Records, 100)
	res, err := sys.DeadLetter(ctx, env, in)
	if err != nil {
		t.Fatal(err)
	}
	peerCheckThroughput(t, res, n)
	// Every record is in a DLT, once: the topics other than the input
	// hold n records in all (kretry's tiers stay empty).
	adm, done, err := env.admin()
	if err != nil {
		t.Fatal(err)
	}
	defer done()
	ends, err := adm.ListEndOffsets(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var dlt int64
	var where []string
	ends.Each(func(o kadm.ListedOffset) {
		if o.Topic != in.Topic && !strings.HasPrefix(o.Topic, "__") && o.Offset > 0 {
			dlt += o.Offset
			where = append(where, fmt.Sprintf("%s/%d", o.Topic, o.Partition))
		}
	})
	if dlt != int64(n) {
		t.Fatalf("%d records outside the input topic (%v), want %d", dlt, where, n)
	}
}
