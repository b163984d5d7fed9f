package main

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/kretry/kretry/config"
	"github.com/kretry/kretry/internal/tierlag"
)

// Records deleted while they were read, and a partition whose committed
// offset could not be fetched, are noted in the table and in --json.
func TestLagOutputLostAndCommitError(t *testing.T) {
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	l := lagListener{spec: config.Spec{Topic: "orders", Group: "g"}, tiers: []string{"orders-retry-1000"},
		delays: map[string]time.Duration{"orders-retry-1000": time.Second},
		report: tierlag.Report{Group: "g", Now: now, Topics: []tierlag.TopicLag{{Topic: "orders-retry-1000", Partitions: []tierlag.PartitionLag{
			{Topic: "orders-retry-1000", Partition: 0, Committed: 3, End: 10, From: 3, Counts: tierlag.Counts{Waiting: 7, Overdue: 4, Lost: 3}},
			{Topic: "orders-retry-1000", Partition: 1, Committed: -1, End: 10, Err: kerr.UnstableOffsetCommit},
		}}}}}
	var out bytes.Buffer
	printLag(&out, l, false, 0)
	for _, want := range []string{
		"note: orders-retry-1000 partition 1: UNSTABLE_OFFSET_COMMIT",
		"note: 3 records deleted (retention) while they were read: counted from the new log start",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}
	b, err := json.Marshal(lagJSONOf([]lagListener{l}, now))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), `"partition":0,"committed":3,"start":0,"end":10,"from":3,"waiting":7,"notDue":0,"overdue":4,"corrupt":0,"unread":0,"followers":0,"lost":3`) ||
		!strings.Contains(string(b), `"error":"UNSTABLE_OFFSET_COMMIT`) {
		t.Errorf("--json lacks the lost count or the error:\n%s", b)
	}
}
