package main

import (
	"bytes"
	"runtime"
	"strings"
	"testing"
)

// kretry version prints one line: kretry, the build's version, Go's.
func TestVersion(t *testing.T) {
	for _, args := range [][]string{{"version"}, {"--version"}} {
		var stdout, stderr bytes.Buffer
		if code := run(args, &stdout, &stderr); code != exitOK || stderr.Len() > 0 {
			t.Fatalf("kretry %s: exit %d, stderr %q", args[0], code, stderr.String())
		}
		f := strings.Fields(stdout.String())
		if len(f) != 3 || f[0] != "kretry" || f[1] == "" || f[2] != runtime.Version() || !strings.HasSuffix(stdout.String(), "\n") {
			t.Errorf("kretry %s printed %q; want \"kretry VERSION %s\"", args[0], stdout.String(), runtime.Version())
		}
	}
}

func TestClosest(t *testing.T) {
	flags := []string{"attempts", "delay", "max-delay", "dry-run", "json", "run", "to", "topic", "per-partition", "partitions"}
	for _, tt := range []struct{ name, want string }{
		{"attempts", "attempts"},
		{"atempts", "attempts"},     // a letter missing
		{"attmepts", "attempts"},    // two letters swapped
		{"--Attempts", "attempts"},  // dashes and case
		{"max-dealy", "max-delay"},  // swapped, long name
		{"maxdelay", "max-delay"},   // the dash missing
		{"dryrun", "dry-run"},       // the dash missing
		{"jsno", "json"},            // short name, one swap
		{"yaml", ""},                // short name, too far
		{"colour", ""},              // nothing close
		{"ru", "run"},               // short, one letter missing
		{"per", "per-partition"},    // the only flag it starts
		{"part", "partitions"},      // ditto
		{"to", "to"},                // exact
		{"x", ""},                   // too short to guess
		{"", ""},                    // nothing
		{"topik", "topic"},          // one letter replaced
		{"partitons", "partitions"}, // long name, a letter missing
	} {
		if got := closest(tt.name, flags); got != tt.want {
			t.Errorf("closest(%q) = %q, want %q", tt.name, got, tt.want)
		}
	}
}
