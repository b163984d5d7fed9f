package retry_test

import (
	"errors"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/kretry/kretry/retry"
)

// The group header: optional on both kinds of record, written last,
// replaced on every hop, kept by Corrupt, never empty.
func TestGroupHeader(t *testing.T) {
	t.Parallel()
	for _, s := range []retry.State{tierState(), dltState()} {
		s.Group = "billing"
		hs := s.Append(nil, 0)
		if last := hs[len(hs)-1]; last.Key != retry.HeaderGroup || string(last.Value) != "billing" {
			t.Fatalf("last header = %s=%q, want %s=billing", last.Key, last.Value, retry.HeaderGroup)
		}
		got, ok, err := retry.Decode(hs)
		if err != nil || !ok || got != s {
			t.Fatalf("Decode = %+v, %v, %v; want %+v", got, ok, err, s)
		}
		s.Group = ""
		for _, h := range s.Append(nil, 0) {
			if h.Key == retry.HeaderGroup {
				t.Fatalf("an empty group wrote %s", retry.HeaderGroup)
			}
		}
	}

	empty := append(tierState().Append(nil, 0), kgo.RecordHeader{Key: retry.HeaderGroup})
	_, _, err := retry.Decode(empty)
	var de *retry.DecodeError
	if !errors.As(err, &de) || de.Header != retry.HeaderGroup || !errors.Is(err, retry.ErrCorruptHeader) ||
		err.Error() != `kretry: header "kretry-group": must not be empty` {
		t.Fatalf("Decode with an empty group: %v", err)
	}
	twice := append(tierState().Append(nil, 0),
		kgo.RecordHeader{Key: retry.HeaderGroup, Value: []byte("a")}, kgo.RecordHeader{Key: retry.HeaderGroup, Value: []byte("a")})
	if _, _, err := retry.Decode(twice); err == nil || err.Error() != `kretry: header "kretry-group" appears 2 times` {
		t.Fatalf("Decode with two groups: %v", err)
	}
	if !retry.IsKretryHeader(retry.HeaderGroup) {
		t.Fatal("IsKretryHeader(HeaderGroup) = false")
	}

	// A hop replaces the group: the record carries the forwarding group only.
	src := mainRecord()
	s := retry.First(src, base).WithFailure(base.Add(time.Second), "e", "T")
	s.Group = "shipping"
	hop := retry.Next(src, "orders-retry", 0, s, 0)
	s2, _, _ := retry.Decode(hop.Headers)
	s2 = s2.Advance(base.Add(time.Minute), "e2", "T")
	s2.Group = "billing"
	hop2 := retry.Next(hop, "orders-retry", 0, s2, 0)
	n := 0
	for _, h := range hop2.Headers {
		if h.Key == retry.HeaderGroup {
			n++
			if string(h.Value) != "billing" {
				t.Fatalf("group after two hops = %q, want billing", h.Value)
			}
		}
	}
	if n != 1 {
		t.Fatalf("%d group headers after two hops, want 1", n)
	}

	// Corrupt keeps a well-formed group and drops an empty one.
	bad := retry.Next(src, "orders-retry", 0, s, 0)
	bad.Headers = without(bad.Headers, retry.HeaderDue)
	if c := retry.Corrupt(bad, base, nil); c.Group != "shipping" {
		t.Fatalf("Corrupt kept group %q, want shipping", c.Group)
	}
	bad.Headers = replaced(bad.Headers, retry.HeaderGroup, nil)
	if c := retry.Corrupt(bad, base, nil); c.Group != "" {
		t.Fatalf("Corrupt kept an empty group as %q", c.Group)
	}
}

func TestNewDecodeError(t *testing.T) {
	t.Parallel()
	err := retry.NewDecodeError(retry.HeaderDue, retry.ErrCorruptHeader, ": is 3h0m0s ahead")
	if err.Error() != `kretry: header "kretry-due": is 3h0m0s ahead` || !errors.Is(err, retry.ErrCorruptHeader) || err.Header != retry.HeaderDue {
		t.Fatalf("NewDecodeError: %q, %v", err.Error(), err.Err)
	}
	err = retry.NewDecodeError("retry_topic-attempts", retry.ErrMissingHeader, " missing")
	err.Family = "Spring"
	if err.Error() != `kretry: Spring header "retry_topic-attempts" missing` || !errors.Is(err, retry.ErrMissingHeader) {
		t.Fatalf("NewDecodeError with a family: %q", err.Error())
	}
}

func TestForeignGroup(t *testing.T) {
	st := tierState()
	st.Group = "billing"
	hs := st.Append(nil, 0)
	if owner, foreign := retry.ForeignGroup(hs, "shipping"); !foreign || owner != "billing" {
		t.Errorf("ForeignGroup(billing's, shipping) = %q, %v", owner, foreign)
	}
	if _, foreign := retry.ForeignGroup(hs, "billing"); foreign {
		t.Error("a record of billing is foreign to billing")
	}
	for name, hs := range map[string][]kgo.RecordHeader{
		"no group":  tierState().Append(nil, 0),
		"empty":     replaced(hs, retry.HeaderGroup, nil),
		"twice":     append(hs, kgo.RecordHeader{Key: retry.HeaderGroup, Value: []byte("billing")}),
		"no header": nil,
	} {
		if owner, foreign := retry.ForeignGroup(hs, "shipping"); foreign {
			t.Errorf("%s: foreign to shipping, owner %q", name, owner)
		}
	}
	if n := testing.AllocsPerRun(100, func() { retry.ForeignGroup(hs, "billing") }); n != 0 {
		t.Errorf("ForeignGroup of an own record allocates %v times", n)
	}
}
