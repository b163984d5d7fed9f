package main

import (
	"encoding/hex"
	"flag"
	"fmt"
	"strings"
	"time"

	"github.com/kretry/kretry/internal/dltops"
)

// listFlag is a flag that may be repeated and takes comma-separated
// values.
type listFlag []string

func (l *listFlag) String() string { return strings.Join(*l, ",") }

func (l *listFlag) Set(s string) error {
	for _, v := range strings.Split(s, ",") {
		if v = strings.TrimSpace(v); v != "" {
			*l = append(*l, v)
		}
	}
	return nil
}

// dltFilterFlags are the filter flags of "dlt inspect" and "dlt replay".
type dltFilterFlags struct {
	errorTypes, reasons, originalTopics listFlag
	since, until                        string
	key, keyHex                         *string
}

const dltFiltersHelp = `Filters (a record must match every filter given; lists are comma-separated
or repeated flags, matched exactly):
  --error-type TYPES      error types as "dlt inspect" shows them, e.g. *net.OpError,
                          "(corrupt headers)", "(no retry headers)", "(none)"
  --reason REASONS        dead-letter reasons: exhausted, permanent, timeout,
                          excluded:NAME, corrupt-headers, follower, spring (Spring
                          Kafka's), ...
  --original-topic TOPICS
                          original topics of the records
  --since T               only DLT records whose timestamp is at or after T: an RFC 3339
                          time (2026-01-02T15:04:05Z) or a time ago (90m, 24h, 7d)
  --until T               only DLT records whose timestamp is before T (same forms)
  --key KEY               only records whose key is exactly KEY (text)
  --key-hex HEX           only records whose key is exactly these bytes (hex)
`

func (f *dltFilterFlags) register(fs *flag.FlagSet) {
	fs.Var(&f.errorTypes, "error-type", "")
	fs.Var(&f.reasons, "reason", "")
	fs.Var(&f.originalTopics, "original-topic", "")
	fs.StringVar(&f.since, "since", "", "")
	fs.StringVar(&f.until, "until", "", "")
	fs.Func("key", "", func(s string) error { f.key = &s; return nil })
	fs.Func("key-hex", "", func(s string) error { f.keyHex = &s; return nil })
}

// filter resolves the flags at now, or returns an error naming the flag.
func (f *dltFilterFlags) filter(now time.Time) (dltops.Filter, error) {
	out := dltops.Filter{ErrorTypes: f.errorTypes, Reasons: f.reasons, OriginalTopics: f.originalTopics}
	var err error
	if out.Since, err = dltops.ParseTimeBound(f.since, now); err != nil {
		return out, fmt.Errorf("--since %w", err)
	}
	if out.Until, err = dltops.ParseTimeBound(f.until, now); err != nil {
		return out, fmt.Errorf("--until %w", err)
	}
	if !out.Since.At.IsZero() && !out.Until.At.IsZero() && !out.Since.At.Before(out.Until.At) {
		return out, fmt.Errorf("--since %s is not before --until %s", f.since, f.until)
	}
	switch {
	case f.key != nil && f.keyHex != nil:
		return out, fmt.Errorf("--key and --key-hex exclude each other")
	case f.key != nil:
		out.Key, out.HasKey = []byte(*f.key), true
	case f.keyHex != nil:
		if out.Key, err = hex.DecodeString(*f.keyHex); err != nil {
			return out, fmt.Errorf("--key-hex %q: %v", *f.keyHex, err)
		}
		out.HasKey = true
	}
	return out, nil
}

// dltTopics checks the DLT arguments: at least one, none repeated.
func dltTopics(pos []string) ([]string, error) {
	if len(pos) == 0 {
		return nil, fmt.Errorf("want at least one DLT topic")
	}
	seen := map[string]bool{}
	for _, t := range pos {
		if seen[t] {
			return nil, fmt.Errorf("DLT %s is given twice", t)
		}
		seen[t] = true
	}
	return pos, nil
}
