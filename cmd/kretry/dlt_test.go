package main

import (
	"bytes"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/kretry/kretry/internal/dltops"
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
		{"dlt-no-subcommand", "dlt", exitUsage},
		{"dlt-replay-unknown-flag", "dlt replay --run r1 --dryrun orders-dlt", exitUsage},
		{"dlt-replay-no-flag-value", "dlt replay orders-dlt --run", exitUsage},
		{"dlt-replay-no-run", "dlt replay orders-dlt", exitUsage},
		{"dlt-replay-bad-run", "dlt replay --run a/b orders-dlt", exitUsage},
		{"dlt-replay-no-topic", "dlt replay --run r1", exitUsage},
		{"dlt-replay-to-dlt", "dlt replay --run r1 --to orders-dlt orders-dlt", exitUsage},
		{"dlt-replay-negative-rate", "dlt replay --run r1 --rate -5 orders-dlt", exitUsage},
		{"dlt-replay-bad-rate", "dlt replay --run r1 --rate fast orders-dlt", exitUsage},
		{"dlt-replay-bad-progress", "dlt replay --run r1 --progress fancy orders-dlt", exitUsage},
		{"dlt-replay-bad-checkpoint", "dlt replay --run r1 --checkpoint-every 0 orders-dlt", exitUsage},
		{"dlt-replay-bad-sasl", "dlt replay --run r1 --sasl-user u orders-dlt", exitUsage},
		{"dlt-replay-bad-delivery-timeout", "dlt replay --run r1 --delivery-timeout 0s orders-dlt", exitUsage},
		{"dlt-replay-bad-replication-margin", "dlt replay --run r1 --replication-margin -1s orders-dlt", exitUsage},
		{"dlt-replay-no-policy", "dlt replay --run r1 orders-dlt", exitUsage},
		{"dlt-replay-no-policy-group", "dlt replay --run r1 --group billing orders-dlt", exitUsage},
		{"dlt-replay-to-and-policy", "dlt replay --run r1 --to orders-fixed --topic orders orders-dlt", exitUsage},
		{"dlt-replay-to-and-file", "dlt replay --run r1 --to orders-fixed --file testdata/valid.yaml orders-dlt", exitUsage},
		{"dlt-replay-file-missing", "dlt replay --run r1 --file testdata/missing.yaml orders-dlt", exitUsage},
		{"dlt-replay-file-and-flags", "dlt replay --run r1 --file testdata/valid.yaml --attempts 2 orders-dlt", exitUsage},
		{"dlt-replay-policy-invalid", "dlt replay --run r1 --topic orders --attempts -1 orders-dlt", exitInvalid},
		{"dlt-inspect-group-typo", "dlt inspect --grop billing orders-dlt", exitUsage},
	}
	runGoldens(t, tests)
}

func TestShellJoin(t *testing.T) {
	got := shellJoin([]string{"--run", "r1", "--error-type", "(corrupt headers)", "--key", "it's", "--since", "", "a-dlt"})
	want := `--run r1 --error-type '(corrupt headers)' --key 'it'\''s' --since '' a-dlt`
	if got != want {
		t.Errorf("shellJoin = %s\nwant        %s", got, want)
	}
}

// The resume hint names the state directory, the CA file and the policy
// file by absolute paths, so that it works from any working directory.
func TestResumeArgs(t *testing.T) {
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	got := resumeArgs([]string{"--run", "r1", "--state-dir", "rel", "--tls-ca", "ca.pem", "-state-dir=x", "--tls-ca=/etc/ca.pem",
		"--file", "policy.yaml", "--group", "billing", "orders-dlt"}, "/abs/state")
	want := []string{"--run", "r1", "--tls-ca=" + filepath.Join(wd, "ca.pem"), "--tls-ca=/etc/ca.pem",
		"--file=" + filepath.Join(wd, "policy.yaml"), "--group", "billing", "orders-dlt", "--state-dir", "/abs/state"}
	if !slices.Equal(got, want) {
		t.Errorf("resumeArgs = %q\nwant %q", got, want)
	}
}

// A dry run on the state of an interrupted run prints what this attempt
// would send, not the run's totals; lost offsets are listed; each target
// says which groups see its records.
func TestPrintReplay(t *testing.T) {
	res := &dltops.Result{Run: "r", Status: dltops.ResultDryRun, AttemptRead: 5, AttemptWouldSend: 3,
		WouldSendTo: map[string]int64{"orders": 3, "orders-retry-1000": 4, "payments": 1, "payments-retry": 2},
		Readers:     map[string][]string{"orders": {"billing", "shipping"}, "payments": {}},
		Totals: dltops.Totals{Read: 10, Matched: 10, Sent: 5, AlreadySent: 2, SentTo: map[string]int64{"orders": 10},
			Lost: 4, LostRanges: []dltops.LostRange{{Topic: "d", Partition: 1, From: 3, To: 7}},
			TierGroups: map[string][]string{"orders-retry-1000": {"billing"}, "payments-retry": {"a", "b"}}}}
	var out bytes.Buffer
	printReplay(&out, res)
	for _, want := range []string{
		"\n  would send           3  (by this attempt; not those sent before)\n",
		"\n  lost                 4  DLT offsets deleted (retention, truncation) before they were read\n      d/1 offsets 3 to 6\n",
		"\n  per target topic (would send, by this attempt), and who sees the records:\n" +
			"    orders             3  every group reading orders: billing, shipping\n" +
			"    orders-retry-1000  4  group billing only (its first retry tier)\n" +
			"    payments           1  every group reading payments (no group has committed offsets on it yet)\n" +
			"    payments-retry     2  groups a, b, each only its own records (their first retry tier)\n",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("summary lacks %q:\n%s", want, out.String())
		}
	}
}

// When the groups reading a topic could not be listed, the summary says
// so rather than claim that none reads it.
func TestAudienceListError(t *testing.T) {
	res := &dltops.Result{Readers: map[string][]string{"orders": {"billing"}}, ReadersError: "fetching: NOT_COORDINATOR"}
	got := audience(res, "orders")
	want := "every group reading orders: billing (could not list them all: fetching: NOT_COORDINATOR)"
	if got != want {
		t.Errorf("audience = %q\nwant       %q", got, want)
	}
	if got := audience(&dltops.Result{ReadersError: "down"}, "orders"); got != "every group reading orders (could not list them all: down)" {
		t.Errorf("audience without readers = %q", got)
	}
}
