package main

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kretry/kretry/config"
)

var update = flag.Bool("update", false, "rewrite the golden files")

// The CLI's behaviour, run through run() with golden stdout and stderr.
func TestRun(t *testing.T) {
	tests := []struct {
		golden string
		args   string
		code   int
	}{
		{"no-args", "", exitUsage},
		{"help", "help", exitOK},
		{"help-flag", "--help", exitOK},
		{"unknown-command", "frob", exitUsage},
		{"unknown-subcommand", "policy frob", exitUsage},
		{"policy-no-subcommand", "policy", exitUsage},
		{"topics-flag-for-subcommand", "topics --json", exitUsage},
		{"policy-help", "policy --help", exitOK},
		{"version-help", "version --help", exitOK},
		{"version-argument", "version now", exitUsage},
		{"unknown-command-version", "verison", exitUsage},
		{"unknown-command-close", "polcy validate testdata/valid.yaml", exitUsage},
		{"unknown-command-is-subcommand", "replay --run r1 orders-dlt", exitUsage},
		{"unknown-subcommand-close", "policy valdate testdata/valid.yaml", exitUsage},
		{"unknown-subcommand-of-other", "topics lag --topic orders", exitUsage},
		{"validate-help", "policy validate --help", exitOK},
		{"validate", "policy validate testdata/valid.yaml", exitOK},
		{"validate-json", "policy validate --json testdata/valid.yaml", exitOK},
		{"validate-flags-after-file", "policy validate testdata/valid.yaml --json", exitOK},
		{"validate-errors-registered", "policy validate --errors validation,notfound testdata/valid.yaml", exitOK},
		{"validate-errors-unregistered", "policy validate --errors validation testdata/valid.yaml", exitInvalid},
		{"validate-invalid", "policy validate testdata/invalid.yaml", exitInvalid},
		{"validate-conflicts", "policy validate testdata/conflicts.yaml", exitInvalid},
		{"validate-missing-file", "policy validate testdata/missing.yaml", exitUsage},
		{"validate-file-is-dir", "policy validate testdata", exitUsage},
		{"validate-no-file", "policy validate", exitUsage},
		{"validate-two-files", "policy validate a.yaml b.yaml", exitUsage},
		{"validate-bad-flag", "policy validate --yaml testdata/valid.yaml", exitUsage},
		{"validate-batch", "policy validate testdata/batch.yaml", exitOK},
		{"validate-eos", "policy validate testdata/eos.yaml", exitOK},
		{"validate-eos-invalid", "policy validate testdata/eos-invalid.yaml", exitInvalid},
		{"validate-key-order", "policy validate testdata/key-order.yaml", exitOK},
		{"validate-key-order-invalid", "policy validate testdata/key-order-invalid.yaml", exitInvalid},
		{"plan-help", "topics plan --help", exitOK},
		{"plan-file", "topics plan --file testdata/valid.yaml", exitOK},
		{"plan-file-json", "topics plan --file testdata/valid.yaml --json", exitOK},
		{"plan-file-invalid", "topics plan --file testdata/invalid.yaml", exitInvalid},
		{"plan-flags", "topics plan --topic orders --attempts 6 --delay 1s --multiplier 2 --max-delay 4s", exitOK},
		{"plan-flags-index-multiple", "topics plan --topic orders --attempts 6 --delay 1s --multiplier 2 --max-delay 4s --suffixing index --same-interval multiple", exitOK},
		{"plan-flags-json", "topics plan --topic orders --attempts 6 --delay 1s --multiplier 2 --max-delay 4s --json", exitOK},
		{"plan-flags-defaults", "topics plan --topic orders", exitOK},
		{"plan-flags-routes", "topics plan --topic orders --attempts 2 --routes -validation:validation|-auth:auth", exitOK},
		{"plan-flags-no-dlt", "topics plan --topic orders --dlt-strategy none", exitOK},
		{"plan-flags-invalid", "topics plan --topic orders --attempts -1 --delay 2s --multiplier 2 --max-delay 1s --same-interval some", exitInvalid},
		{"plan-flags-cross-field", "topics plan --topic orders --delay 2s --multiplier 2 --max-delay 1s", exitInvalid},
		{"plan-flags-repeat", "topics plan --topic orders --attempts 5 --delays 1s|2s|1s", exitInvalid},
		{"plan-nothing", "topics plan", exitUsage},
		{"plan-file-and-flags", "topics plan --file testdata/valid.yaml --attempts 3", exitUsage},
		{"plan-unknown-flag", "topics plan --topic orders --max-dealy 1s", exitUsage},
		{"plan-unknown-flag-swapped", "topics plan --topic orders --attmepts 3", exitUsage},
		{"plan-unknown-flag-far", "topics plan --topic orders --colour red", exitUsage},
		{"plan-batch-flag", "topics plan --topic clicks --batch 500", exitUsage},
		{"plan-file-batch", "topics plan --file testdata/batch.yaml", exitOK},
		{"plan-eos-flag", "topics plan --topic orders --exactly-once", exitUsage},
		{"plan-transactional-id-flag", "topics plan --topic orders --transactional-id orders-0", exitUsage},
		{"plan-file-eos", "topics plan --file testdata/eos.yaml", exitOK},
		{"plan-key-order-flag", "topics plan --topic orders --key-order", exitUsage},
		{"plan-followers-flag", "topics plan --topic orders --followers-on-dead-letter release", exitUsage},
		{"plan-file-key-order", "topics plan --file testdata/key-order.yaml", exitOK},
		{"plan-flag-no-value", "topics plan --topic", exitUsage},
		{"plan-flag-bad-bool", "topics plan --topic orders --json=maybe", exitUsage},
		{"plan-file-missing", "topics plan --file testdata/missing.yaml", exitUsage},
		{"plan-argument", "topics plan --topic orders extra", exitUsage},
		{"plan-group-topics", "topics plan --topic orders --group billing --group-topics true --attempts 3 --delay 1s --multiplier 2", exitOK},
		{"plan-group-topics-default-group", "topics plan --topic orders --group-topics true", exitOK},
		{"plan-file-group-topics", "topics plan --file testdata/group-topics.yaml", exitOK},
		{"plan-file-group", "topics plan --file testdata/group-topics.yaml --group shipping --json", exitOK},
		{"plan-file-group-and-flags", "topics plan --file testdata/group-topics.yaml --group shipping --attempts 2", exitUsage},
	}
	runGoldens(t, tests)
}

// goldenCase is one run of the command, offline, with golden stdout and
// stderr (testdata/golden/<golden>.stdout and .stderr).
type goldenCase = struct {
	golden string
	args   string
	code   int
}

func runGoldens(t *testing.T, tests []goldenCase) {
	t.Helper()
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

func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", "golden", name)
	if *update {
		if len(got) == 0 {
			os.Remove(path)
			return
		}
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if os.IsNotExist(err) {
		want, err = nil, nil
	}
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs (go test ./cmd/kretry -update rewrites it)\ngot:\n%s\nwant:\n%s", path, got, want)
	}
}

// What policy validate prints is a policy file that resolves to the same
// policies as its input.
func TestValidateOutputRoundTrips(t *testing.T) {
	var stdout, stderr bytes.Buffer
	if code := run([]string{"policy", "validate", "testdata/valid.yaml"}, &stdout, &stderr); code != exitOK {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	in, err := config.Load("testdata/valid.yaml")
	if err != nil {
		t.Fatal(err)
	}
	out, err := config.Parse("stdout", stdout.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	reg, _ := registry("", in.ErrorNames())
	want, err := in.Specs(reg)
	if err != nil {
		t.Fatal(err)
	}
	got, err := out.Specs(reg)
	if err != nil {
		t.Fatal(err)
	}
	for i := range want {
		if !got[i].Equal(want[i]) {
			t.Errorf("listener %d: printed %+v, want %+v", i, got[i], want[i])
		}
	}
}

func TestKebab(t *testing.T) {
	for key, want := range map[string]string{"maxDelay": "max-delay", "dltHandlerAttempts": "dlt-handler-attempts", "topic": "topic", "sameInterval": "same-interval"} {
		if got := kebab(key); got != want {
			t.Errorf("kebab(%q) = %q, want %q", key, got, want)
		}
	}
}
