package main

import (
	"bytes"
	"strings"
	"testing"
	"time"
)

func TestRun(t *testing.T) {
	var out bytes.Buffer
	if err := run("", time.Minute, &out); err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	for _, want := range []string{
		`order-3  orders-dlt           DLT handler: reason "excluded:validation"`,
		`order-4  orders-dlt           DLT handler: reason "excluded:notfound"`,
		`pay-2    payments-fraud-dlt   DLT handler: reason "permanent"`,
		`order-2  orders-retry-200     attempt 2 -> handled`,
		"done:",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}
}
