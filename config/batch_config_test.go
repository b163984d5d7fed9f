package config

import (
	"slices"
	"strings"
	"testing"
	"time"
)

// batch and batchWait are settings like any other: tags and files set
// them, zero is the default, and Resolve returns them normalized.
func TestBatchSettings(t *testing.T) {
	if got := BatchKeys(); !slices.Equal(got, []string{"batch", "batchWait"}) {
		t.Errorf("BatchKeys() = %v", got)
	}
	s, err := resolveTag(t, nil, "topic=orders,batch=500,batchWait=20ms")
	if err != nil {
		t.Fatal(err)
	}
	if want := (BatchSettings{Size: 500, Wait: 20 * time.Millisecond}); s.Batch != want {
		t.Errorf("tag: Batch = %+v, want %+v", s.Batch, want)
	}
	// A file's entry over its defaults over the tag, field by field.
	f := mustFile(t, "defaults:\n  batch: 7\n  batchWait: 1s\nlisteners:\n  - topic: orders\n    batch: 9\n")
	s, err = Resolve(DefaultSpec("orders"), nil, append([]*Decl{mustTag(t, "topic=orders,batch=500,batchWait=20ms")}, f.Layers("orders")...)...)
	if err != nil {
		t.Fatal(err)
	}
	if want := (BatchSettings{Size: 9, Wait: time.Second}); s.Batch != want {
		t.Errorf("tag < defaults < entry: Batch = %+v, want %+v", s.Batch, want)
	}
	// batch=0 is the default, and the resolved spec says so.
	s, err = resolveTag(t, nil, "topic=orders,batch=0")
	if err != nil {
		t.Fatal(err)
	}
	if s.Batch.Size != DefaultBatchSize {
		t.Errorf("batch=0 resolved to Size %d, want %d", s.Batch.Size, DefaultBatchSize)
	}
}

// Setting tells where a declaration sets a key, for errors that concern
// the declaration's use rather than its values (listener.Register's check
// of batch settings on single-record handlers).
func TestDeclSetting(t *testing.T) {
	d := mustTag(t, "topic=orders,batch=5")
	if at, path, ok := d.Setting("batch"); !ok || at != tagAt || path != "batch" {
		t.Errorf("tag: Setting(batch) = %v, %q, %v", at, path, ok)
	}
	if _, _, ok := d.Setting("batchWait"); ok {
		t.Error("tag: Setting(batchWait) is set")
	}
	f := mustFile(t, "listeners:\n  - topic: payments\n  - topic: orders\n    batchWait: 20ms\n")
	at, path, ok := f.Listener("orders").Setting("batchWait")
	if want := (Pos{File: "policy.yaml", Line: 4, Column: 16}); !ok || at != want || path != "listeners[1].batchWait" {
		t.Errorf("file: Setting(batchWait) = %v, %q, %v; want %v, listeners[1].batchWait", at, path, ok, want)
	}
}

// A bad batch value is reported in the same words from a tag, a file and
// Go (a Spec's value, as listener options give it): the key and the rule,
// which are the listener options' (BatchSize, BatchWait).
func TestBatchProblemsAlike(t *testing.T) {
	tests := []struct {
		key, value string
		col        string // of the value in the file
		goSpec     BatchSettings
		rule       string
	}{
		{"batch", "-1", "12", BatchSettings{Size: -1}, "must be >= 1, or 0 for the default, got -1"},
		{"batchWait", "-1s", "16", BatchSettings{Wait: -time.Second}, "must be >= 0, got -1s"},
	}
	for _, tt := range tests {
		t.Run(tt.key, func(t *testing.T) {
			base := DefaultSpec("orders")
			base.Batch = tt.goSpec
			wantSameProblem(t, tt.key, tt.rule, tt.key+"="+tt.value, tt.key+": "+tt.value, "3:"+tt.col, base)
			// A declaration that sets the key replaces the Go value.
			if _, err := Resolve(base, nil, mustTag(t, "topic=orders,"+tt.key+"=0")); err != nil {
				t.Errorf("a tag over a bad Go value: %v", err)
			}
		})
	}
}

// The batch settings are written only when they are not the defaults, so
// that a marshalled single-record listener's entry stays valid for it; the
// others read back.
func TestMarshalBatch(t *testing.T) {
	out, err := MarshalYAML(DefaultSpec("orders"))
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(out), "batch") {
		t.Errorf("default spec marshals batch settings:\n%s", out)
	}
	s := DefaultSpec("orders")
	s.Batch = BatchSettings{Size: 500, Wait: 20 * time.Millisecond}
	zero := DefaultSpec("zero")
	zero.Batch = BatchSettings{}
	for name, marshal := range map[string]func(...Spec) ([]byte, error){"yaml": MarshalYAML, "json": MarshalJSON} {
		out, err := marshal(s, zero)
		if err != nil {
			t.Fatal(err)
		}
		if strings.Count(string(out), "batch") != 2 {
			t.Errorf("%s: want batch and batchWait once each:\n%s", name, out)
		}
	}
	roundTrip(t, nil, []Spec{s, zero})
}
