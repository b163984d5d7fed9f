package retry_test

import (
	"fmt"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/kretry/kretry/retry"
)

// mainRecord is a record as consumed from a main topic.
func mainRecord() *kgo.Record {
	return &kgo.Record{
		Key:   []byte("order-17"),
		Value: []byte(`{"id":17}`),
		Headers: []kgo.RecordHeader{
			header("trace", []byte("t-1")),
			header("bin", []byte{0x00, 0xff, 0x80, 0x00}),
			header("trace", []byte("t-2")),
			header("null", nil),
			header("empty", []byte{}),
			header("kretry-future", []byte("user-owned")),
		},
		Timestamp: base.Add(-time.Minute),
		Topic:     "orders",
		Partition: 3,
		Offset:    42,
		Context:   nil,
	}
}

// size is the byte size of a record's key, value and headers, as kgo counts
// it for buffering.
func size(r *kgo.Record) int {
	n := len(r.Key) + len(r.Value)
	for _, h := range r.Headers {
		n += len(h.Key) + len(h.Value)
	}
	return n
}

func TestFirst(t *testing.T) {
	t.Parallel()
	src := mainRecord()
	src.Timestamp = base.Add(-time.Minute + 999*time.Microsecond)
	got := retry.First(src, base.Add(500*time.Microsecond).In(time.FixedZone("z", 3600)))
	want := retry.State{
		Attempt:           2,
		OriginalTopic:     "orders",
		OriginalPartition: 3,
		OriginalOffset:    42,
		OriginalTimestamp: base.Add(-time.Minute),
		FirstFailure:      base,
	}
	if got != want {
		t.Fatalf("First:\n got %+v\nwant %+v", got, want)
	}
}

func TestStateTransitions(t *testing.T) {
	t.Parallel()
	due := base.Add(2*time.Second + 1) // rounds up to base+2.001s
	first := retry.First(mainRecord(), base)
	tests := []struct {
		name string
		got  retry.State
		want retry.State
	}{
		{
			name: "main to first tier",
			got:  first.WithFailure(due, "e1", "T1"),
			want: func() retry.State {
				s := first
				s.Due, s.Error, s.ErrorType = base.Add(2001*time.Millisecond), "e1", "T1"
				return s
			}(),
		},
		{
			name: "tier to tier",
			got:  first.WithFailure(due, "e1", "T1").Advance(base.Add(time.Hour), "e2", ""),
			want: func() retry.State {
				s := first
				s.Attempt, s.Due, s.Error = 3, base.Add(time.Hour), "e2"
				return s
			}(),
		},
		{
			name: "main straight to DLT",
			got:  first.WithFailure(time.Time{}, "bad input", "*json.SyntaxError").DeadLetter(retry.ReasonPermanent),
			want: func() retry.State {
				s := first
				s.Attempt = 1 // one delivery, then straight to the DLT
				s.Error, s.ErrorType, s.Reason = "bad input", "*json.SyntaxError", retry.ReasonPermanent
				return s
			}(),
		},
		{
			name: "last tier to DLT",
			got:  first.WithFailure(due, "e1", "T1").Advance(time.Time{}, "e2", "T2").DeadLetter(retry.ReasonExhausted),
			want: func() retry.State {
				s := first
				s.Attempt, s.Error, s.ErrorType, s.Reason = 2, "e2", "T2", retry.ReasonExhausted // two deliveries
				return s
			}(),
		},
		{
			name: "DeadLetter clears due and defaults the reason",
			got:  first.WithFailure(due, "e", "T").DeadLetter(""),
			want: func() retry.State {
				s := first
				s.Attempt = 1
				s.Error, s.ErrorType, s.Reason = "e", "T", retry.ReasonUnspecified
				return s
			}(),
		},
		{
			name: "Advance saturates at MaxInt32",
			got: func() retry.State {
				s := first
				s.Attempt = math.MaxInt32
				return s.Advance(due, "e", "T")
			}(),
			want: func() retry.State {
				s := first
				s.Attempt, s.Due, s.Error, s.ErrorType = math.MaxInt32, base.Add(2001*time.Millisecond), "e", "T"
				return s
			}(),
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if tt.got != tt.want {
				t.Fatalf("\n got %+v\nwant %+v", tt.got, tt.want)
			}
			// Constructors return wire-normalised States.
			dec, _, err := retry.Decode(tt.got.Append(nil, 0))
			if err != nil || dec != tt.got {
				t.Fatalf("Decode(Append(s)) = %+v, %v; want s back", dec, err)
			}
		})
	}
}

func TestNext(t *testing.T) {
	t.Parallel()
	src := mainRecord()
	srcHeaders := append([]kgo.RecordHeader(nil), src.Headers...)
	s := retry.First(src, base).WithFailure(base.Add(time.Second), "boom", "T")

	got := retry.Next(src, "orders-retry-1000", 3, s, 0)

	if got.Topic != "orders-retry-1000" || got.Partition != 3 {
		t.Errorf("Topic, Partition = %q, %d", got.Topic, got.Partition)
	}
	if &got.Key[0] != &src.Key[0] || &got.Value[0] != &src.Value[0] {
		t.Errorf("Key and Value should share src's slices")
	}
	if !got.Timestamp.IsZero() || got.Context != nil || got.Offset != 0 || got.Attrs != (kgo.RecordAttrs{}) {
		t.Errorf("Timestamp, Context, Offset, Attrs = %v, %v, %d, %v; want zero", got.Timestamp, got.Context, got.Offset, got.Attrs)
	}
	assertHeaders(t, src.Headers, srcHeaders) // src untouched
	assertHeaders(t, got.Headers, append(retry.UserHeaders(srcHeaders), s.Append(nil, 0)...))

	auto := retry.Next(src, "orders-retry-1000", -1, s, 0)
	if auto.Partition != -1 {
		t.Errorf("Partition = %d, want -1", auto.Partition)
	}
}

// TestNextTwicePreservesUserHeaders forwards a record main -> tier 1 -> tier 2
// and checks the user headers byte-exactly, in order, at every step.
func TestNextTwicePreservesUserHeaders(t *testing.T) {
	t.Parallel()
	src := mainRecord()
	wantUser := retry.UserHeaders(src.Headers)
	if len(wantUser) != len(src.Headers) {
		t.Fatalf("fixture: main record should carry only user headers")
	}

	hop1 := retry.Next(src, "orders-retry-1000", -1, retry.First(src, base).WithFailure(base.Add(time.Second), "e1", "T1"), 0)
	s1, ok, err := retry.Decode(hop1.Headers)
	if err != nil || !ok {
		t.Fatalf("hop 1: Decode = %v, %v", ok, err)
	}
	hop2 := retry.Next(hop1, "orders-retry-2000", -1, s1.Advance(base.Add(3*time.Second), "e2", "T2"), 0)
	s2, _, err := retry.Decode(hop2.Headers)
	if err != nil {
		t.Fatalf("hop 2: Decode = %v", err)
	}

	for i, hop := range []*kgo.Record{hop1, hop2} {
		t.Run(fmt.Sprintf("hop %d", i+1), func(t *testing.T) {
			// User headers first, unchanged and in order...
			assertHeaders(t, hop.Headers[:len(wantUser)], wantUser)
			// ...then only kretry headers, each once.
			seen := map[string]bool{}
			for _, h := range hop.Headers[len(wantUser):] {
				if !retry.IsKretryHeader(h.Key) || seen[h.Key] {
					t.Fatalf("unexpected header %q after the user headers", h.Key)
				}
				seen[h.Key] = true
			}
		})
	}
	if s2.Attempt != 3 || s2.Error != "e2" || s2.OriginalTopic != "orders" || s2.OriginalOffset != 42 {
		t.Fatalf("hop 2 state = %+v", s2)
	}
}

// TestNextDoesNotGrow forwards a record through ten hops, each failing with a
// 10 KiB error, and checks that the record stays within a fixed bound and the
// same size from hop to hop.
func TestNextDoesNotGrow(t *testing.T) {
	t.Parallel()
	for _, maxErr := range []int{0, 100, 8192} {
		t.Run(fmt.Sprintf("maxErrorBytes=%d", maxErr), func(t *testing.T) {
			t.Parallel()
			bound := maxErr
			if bound <= 0 {
				bound = retry.DefaultMaxErrorBytes
			}
			src := mainRecord()
			// Key, value, user headers, the ten header names, the fixed
			// widths (4+8+4+8+8+8), the topic, the bounded error and
			// error type, and the longest reason used here.
			limit := size(src) + len(retry.HeaderAttempt+retry.HeaderDue+retry.HeaderOriginalTopic+
				retry.HeaderOriginalPartition+retry.HeaderOriginalOffset+retry.HeaderOriginalTimestamp+
				retry.HeaderFirstFailure+retry.HeaderError+retry.HeaderErrorType+retry.HeaderReason) +
				40 + len(src.Topic) + bound + retry.MaxErrorTypeBytes + len(retry.ReasonExhausted)

			errText := strings.Repeat("x", 10<<10)
			errType := strings.Repeat("T", 1<<10)
			rec := src
			s := retry.First(src, base)
			first := 0
			for hop := 1; hop <= 10; hop++ {
				if hop == 1 {
					s = s.WithFailure(base.Add(time.Second), errText, errType)
				} else {
					prev, _, err := retry.Decode(rec.Headers)
					if err != nil {
						t.Fatalf("hop %d: Decode: %v", hop, err)
					}
					s = prev.Advance(base.Add(time.Duration(hop)*time.Second), errText, errType)
				}
				if hop == 10 {
					s = s.DeadLetter(retry.ReasonExhausted)
				}
				rec = retry.Next(rec, fmt.Sprintf("orders-retry-%d", hop), -1, s, maxErr)
				n := size(rec)
				if n > limit {
					t.Fatalf("hop %d: record is %d bytes, over the bound %d", hop, n, limit)
				}
				switch {
				case hop == 1:
					first = n
				case hop < 10 && n != first:
					t.Fatalf("hop %d: record is %d bytes, hop 1 was %d", hop, n, first)
				}
			}
			// The DLT record trades the due header for the reason.
			if want := first - len(retry.HeaderDue) - 8 + len(retry.HeaderReason) + len(retry.ReasonExhausted); size(rec) != want {
				t.Fatalf("DLT record is %d bytes, want %d", size(rec), want)
			}
		})
	}
}

func TestCorrupt(t *testing.T) {
	t.Parallel()
	// A retry-topic record as consumed, carrying its kretry headers.
	tierRecord := func(mutate func([]kgo.RecordHeader) []kgo.RecordHeader) *kgo.Record {
		src := mainRecord()
		s := retry.First(src, base).WithFailure(base.Add(time.Second), "e", "T").Advance(base.Add(time.Minute), "e", "T")
		rec := retry.Next(src, "orders-retry-1000", 0, s, 0)
		rec.Headers = mutate(rec.Headers)
		rec.Partition, rec.Offset, rec.Timestamp = 0, 9, base.Add(time.Second)
		return rec
	}
	now := base.Add(time.Hour)
	// What Corrupt takes from the tier record itself.
	fromRecord := retry.State{
		OriginalTopic: "orders-retry-1000", OriginalPartition: 0, OriginalOffset: 9,
		OriginalTimestamp: base.Add(time.Second),
	}
	fromHeaders := retry.State{
		OriginalTopic: "orders", OriginalPartition: 3, OriginalOffset: 42,
		OriginalTimestamp: base.Add(-time.Minute),
	}
	tests := []struct {
		name         string
		mutate       func([]kgo.RecordHeader) []kgo.RecordHeader
		originals    retry.State
		attempt      int32
		firstFailure time.Time
	}{
		{
			name:      "missing due keeps everything else",
			mutate:    func(h []kgo.RecordHeader) []kgo.RecordHeader { return without(h, retry.HeaderDue) },
			originals: fromHeaders, attempt: 2, firstFailure: base,
		},
		{
			name: "corrupt partition: originals from the record",
			mutate: func(h []kgo.RecordHeader) []kgo.RecordHeader {
				return replaced(h, retry.HeaderOriginalPartition, []byte{1})
			},
			originals: fromRecord, attempt: 2, firstFailure: base,
		},
		{
			name: "duplicated topic: originals from the record",
			mutate: func(h []kgo.RecordHeader) []kgo.RecordHeader {
				return duplicated(h, retry.HeaderOriginalTopic)
			},
			originals: fromRecord, attempt: 2, firstFailure: base,
		},
		{
			name: "bad attempt and first failure fall back",
			mutate: func(h []kgo.RecordHeader) []kgo.RecordHeader {
				return without(replaced(h, retry.HeaderAttempt, be32(1)), retry.HeaderFirstFailure)
			},
			originals: fromHeaders, attempt: 1, firstFailure: now,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			rec := tierRecord(tt.mutate)
			_, ok, decodeErr := retry.Decode(rec.Headers)
			if !ok || decodeErr == nil {
				t.Fatalf("fixture should fail to decode")
			}
			got := retry.Corrupt(rec, now, decodeErr)
			want := tt.originals
			want.Attempt, want.FirstFailure = tt.attempt, tt.firstFailure
			want.Reason = retry.ReasonCorruptHeaders
			want.Error, want.ErrorType = decodeErr.Error(), "*retry.DecodeError"
			if got != want {
				t.Fatalf("\n got %+v\nwant %+v", got, want)
			}
			// The dead-letter record has clean headers and decodes.
			dlt := retry.Next(rec, "orders-dlt", -1, got, 0)
			back, _, err := retry.Decode(dlt.Headers)
			if err != nil || back != got {
				t.Fatalf("DLT record decodes to %+v, %v", back, err)
			}
		})
	}

	got := retry.Corrupt(tierRecord(func(h []kgo.RecordHeader) []kgo.RecordHeader { return h }), now, nil)
	if got.Reason != retry.ReasonCorruptHeaders || got.Error == "" || got.ErrorType != "" {
		t.Fatalf("Corrupt with nil error = %+v", got)
	}
	if err := got.Validate(); err != nil {
		t.Fatal(err)
	}
}

// ExampleNext forwards a failed main-topic record to its first retry tier,
// then that tier's failure to the dead-letter topic.
func ExampleNext() {
	src := &kgo.Record{
		Topic: "orders", Partition: 0, Offset: 7,
		Timestamp: time.UnixMilli(1767225599000),
		Key:       []byte("order-7"), Value: []byte("{}"),
		Headers: []kgo.RecordHeader{{Key: "trace-id", Value: []byte("abc")}},
	}
	now := time.UnixMilli(1767225600000)

	// The handler failed on the main topic: retry in one second.
	s := retry.First(src, now).WithFailure(now.Add(time.Second), "db: timeout", "*net.OpError")
	tier := retry.Next(src, "orders-retry-1000", -1, s, 0)
	var keys []string
	for _, h := range tier.Headers {
		keys = append(keys, h.Key)
	}
	fmt.Println(strings.Join(keys, " "))

	// It failed again on the last tier: dead-letter it.
	got, _, err := retry.Decode(tier.Headers)
	if err != nil {
		fmt.Println(err)
		return
	}
	dlt := retry.Next(tier, "orders-dlt", -1, got.Advance(time.Time{}, "db: timeout", "*net.OpError").DeadLetter(retry.ReasonExhausted), 0)
	final, _, _ := retry.Decode(dlt.Headers)
	fmt.Println(final.Attempt, final.Reason, final.Due.IsZero(), final.OriginalTopic, final.OriginalOffset)
	fmt.Println(final.Validate())
	// Output:
	// trace-id kretry-attempt kretry-due kretry-original-topic kretry-original-partition kretry-original-offset kretry-original-timestamp kretry-first-failure kretry-error kretry-error-type
	// 2 exhausted true orders 7
	// <nil>
}
