package config

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/kretry/kretry/retry"
	"github.com/kretry/kretry/strategy"
)

// What MarshalYAML and MarshalJSON write, Parse reads back to the same
// specs.
func TestMarshalRoundTrip(t *testing.T) {
	reg := testRegistry(t)
	f, err := Load(filepath.Join("testdata", "all-keys.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	specs, err := f.Specs(reg)
	if err != nil {
		t.Fatal(err)
	}
	fixed := DefaultSpec("fixed")
	fixed.Policy.Backoff = strategy.Backoff{Delay: 1500 * time.Millisecond, Jitter: 0.5}
	fixed.Policy.DLT = retry.NoDLT
	fixed.Topics.Configs = map[string]*string{"unset": nil, "quoted": new("true"), "space": new(" x ")}
	specs = append(specs, fixed, DefaultSpec("defaults"))
	for name, marshal := range map[string]func(...Spec) ([]byte, error){"yaml": MarshalYAML, "json": MarshalJSON} {
		t.Run(name, func(t *testing.T) {
			out, err := marshal(specs...)
			if err != nil {
				t.Fatal(err)
			}
			f2, err := Parse("out."+name, out)
			if err != nil {
				t.Fatalf("%v\n%s", err, out)
			}
			back, err := f2.Specs(reg)
			if err != nil {
				t.Fatalf("%v\n%s", err, out)
			}
			if len(back) != len(specs) {
				t.Fatalf("read back %d specs, want %d", len(back), len(specs))
			}
			for i := range specs {
				mustEqual(t, back[i], specs[i])
			}
		})
	}
}

func TestMarshalRejectsBadEnums(t *testing.T) {
	s := DefaultSpec("orders")
	s.Policy.DLT = retry.DLTStrategy(9)
	if _, err := MarshalYAML(s); err == nil {
		t.Error("MarshalYAML of an out-of-range DLT strategy succeeded")
	}
}
