package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestRun(t *testing.T) {
	var out bytes.Buffer
	if err := run("", "", time.Minute, &out); err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	for _, want := range []string{
		`listener "orders": group "billing", 4 attempts, exponential backoff`,
		`order-1 orders-retry-200     delivery 3 -> handled`,
		`order-2 orders-dlt           DLT handler: reason "excluded:validation" after 1 deliveries`,
		`ship-1  shipments-dlt        DLT handler: reason "exhausted" after 3 deliveries`,
		"done:",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}
}

// A broken policy file stops the program before it connects, with the
// file's position in the message.
func TestRunRejectsBadPolicy(t *testing.T) {
	path := filepath.Join(t.TempDir(), "bad.yaml")
	if err := os.WriteFile(path, []byte("listeners:\n  - topic: orders\n    attempts: -1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	err := run("", path, time.Minute, &bytes.Buffer{})
	if err == nil || !strings.Contains(err.Error(), "bad.yaml:3:15: listeners[0].attempts: must be >= 1") {
		t.Errorf("run with a bad policy: %v", err)
	}
}
