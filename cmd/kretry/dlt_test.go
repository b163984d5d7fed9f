package main

import (
	"bytes"
	"strings"
	"testing"
)

// The dlt commands' help and usage errors, with golden stdout and stderr.
// None of them reaches a cluster.
func TestDLTUsage(t *testing.T) {
	tests := []struct {
		golden string
		args   string
		code   int
	}{
		{"dlt-inspect-help", "dlt inspect --help", exitOK},
		{"dlt-replay-help", "dlt replay --help", exitOK},
		{"dlt-inspect-no-topic", "dlt inspect --json", exitUsage},
		{"dlt-inspect-duplicate-topic", "dlt inspect orders-dlt orders-dlt", exitUsage},
		{"dlt-inspect-bad-since", "dlt inspect --since yesterday orders-dlt", exitUsage},
		{"dlt-inspect-since-after-until", "dlt inspect --since 1h --until 2h orders-dlt", exitUsage},
		{"dlt-inspect-key-and-key-hex", "dlt inspect --key a --key-hex 61 orders-dlt", exitUsage},
		{"dlt-inspect-bad-key-hex", "dlt inspect --key-hex 6 orders-dlt", exitUsage},
		{"dlt-inspect-bad-limit", "dlt inspect --show-records --limit -1 orders-dlt", exitUsage},
		{"dlt-inspect-unknown-flag", "dlt inspect --erro-type x orders-dlt", exitUsage},
		{"dlt-replay-no-run", "dlt replay orders-dlt", exitUsage},
		{"dlt-replay-bad-run", "dlt replay --run a/b orders-dlt", exitUsage},
		{"dlt-replay-no-topic", "dlt replay --run r1", exitUsage},
		{"dlt-replay-to-dlt", "dlt replay --run r1 --to orders-dlt orders-dlt", exitUsage},
		{"dlt-replay-negative-rate", "dlt replay --run r1 --rate -5 orders-dlt", exitUsage},
		{"dlt-replay-bad-rate", "dlt replay --run r1 --rate fast orders-dlt", exitUsage},
		{"dlt-replay-bad-progress", "dlt replay --run r1 --progress fancy orders-dlt", exitUsage},
		{"dlt-replay-bad-checkpoint", "dlt replay --run r1 --checkpoint-every 0 orders-dlt", exitUsage},
		{"dlt-replay-bad-sasl", "dlt replay --run r1 --sasl-user u orders-dlt", exitUsage},
	}
	for _, tt := range tests {
		t.Run(tt.golden, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			code := run(strings.Fields(tt.args), &stdout, &stderr)
			if code != tt.code {
				t.Errorf("kretry %s: exit %d, want %d\nstderr:\n%s", tt.args, code, tt.code, stderr.String())
			}
			golden(t, tt.golden+".stdout", stdout.Bytes())
			golden(t, tt.golden+".stderr", stderr.Bytes())
		})
	}
}

func TestShellJoin(t *testing.T) {
	got := shellJoin([]string{"--run", "r1", "--error-type", "(corrupt headers)", "--key", "it's", "--since", "", "a-dlt"})
	want := `--run r1 --error-type '(corrupt headers)' --key 'it'\''s' --since '' a-dlt`
	if got != want {
		t.Errorf("shellJoin = %s\nwant        %s", got, want)
	}
}
