package dltops

import (
	"bytes"
	"encoding/hex"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// Filter selects DLT records. The zero Filter selects every record. Each
// list matches when it is empty or holds the record's value exactly; all
// set conditions must match.
type Filter struct {
	// ErrorTypes are error types as Info.ErrorType gives them.
	ErrorTypes []string
	// Reasons are dead-letter reasons as Info.Reason gives them.
	Reasons []string
	// OriginalTopics are original topics as Info.OriginalTopic gives them.
	OriginalTopics []string
	// Groups are consumer groups as Info.Group gives them (LabelNone for
	// the records that carry none).
	Groups []string
	// Since and Until bound the DLT record's timestamp: Since <= ts < Until.
	// A zero At leaves that side open.
	Since, Until TimeBound
	// Key, when HasKey, is the exact record key (a nil key equals an empty
	// one).
	Key    []byte
	HasKey bool
}

// Match reports whether rec, decoded as info, is selected.
func (f *Filter) Match(rec *kgo.Record, info Info) bool {
	if !f.Since.At.IsZero() && rec.Timestamp.Before(f.Since.At) {
		return false
	}
	if !f.Until.At.IsZero() && !rec.Timestamp.Before(f.Until.At) {
		return false
	}
	if f.HasKey && !bytes.Equal(rec.Key, f.Key) {
		return false
	}
	return matches(f.ErrorTypes, info.ErrorType()) && matches(f.Reasons, info.Reason()) &&
		matches(f.OriginalTopics, info.OriginalTopic()) && matches(f.Groups, info.Group())
}

func matches(set []string, v string) bool { return len(set) == 0 || slices.Contains(set, v) }

// TimeBound is a time given on the command line: Expr as the user wrote it
// and At as it resolved. A replay resumed with the same Expr uses the At
// its first attempt resolved, so "24h" means the same instant on every
// attempt.
type TimeBound struct {
	Expr string
	At   time.Time
}

// ParseTimeBound resolves expr: an RFC 3339 time, or a duration before now
// (a Go duration such as "90m" or "36h", or whole days such as "7d"). The
// empty expr is the open bound.
func ParseTimeBound(expr string, now time.Time) (TimeBound, error) {
	if expr == "" {
		return TimeBound{}, nil
	}
	if t, err := time.Parse(time.RFC3339Nano, expr); err == nil {
		return TimeBound{Expr: expr, At: t.UTC()}, nil
	}
	var d time.Duration
	if days, ok := strings.CutSuffix(expr, "d"); ok {
		n, err := strconv.ParseUint(days, 10, 16)
		if err != nil {
			return TimeBound{}, fmt.Errorf("%q: want an RFC 3339 time, a duration such as 24h, or days such as 7d", expr)
		}
		d = time.Duration(n) * 24 * time.Hour
	} else {
		var err error
		if d, err = time.ParseDuration(expr); err != nil {
			return TimeBound{}, fmt.Errorf("%q: want an RFC 3339 time (2026-01-02T15:04:05Z), a duration such as 24h, or days such as 7d", expr)
		}
	}
	if d < 0 {
		return TimeBound{}, fmt.Errorf("%q: a duration counts back from now and must not be negative", expr)
	}
	return TimeBound{Expr: expr, At: now.Add(-d).UTC()}, nil
}

// keyText is the key of a selection: hex, so any bytes compare exactly.
func (f *Filter) keyText() string {
	if !f.HasKey {
		return ""
	}
	return "hex:" + hex.EncodeToString(f.Key)
}
