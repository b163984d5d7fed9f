package kretryprom_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// kretry's own module must not depend on Prometheus: that is why this
// package is a module of its own. The check runs the go command on the
// module two directories up, the root module this one replaces kretry
// with.
func TestRootModuleHasNoPrometheus(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the go command on the root module")
	}
	gobin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go command in PATH")
	}
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, "go.mod")); err != nil {
		t.Skipf("no root module at %s: %v", root, err)
	}
	for _, args := range [][]string{
		{"mod", "graph"},
		{"list", "-deps", "-test", "./..."},
	} {
		cmd := exec.Command(gobin, args...)
		cmd.Dir = root
		cmd.Env = append(os.Environ(), "GOWORK=off", "GOFLAGS=-mod=readonly")
		out, err := cmd.Output()
		if err != nil {
			stderr := ""
			if ee, ok := err.(*exec.ExitError); ok {
				stderr = string(ee.Stderr)
			}
			t.Fatalf("go %s in %s: %v\n%s", strings.Join(args, " "), root, err, stderr)
		}
		var bad []string
		for line := range strings.Lines(string(out)) {
			if strings.Contains(line, "prometheus") {
				bad = append(bad, strings.TrimSpace(line))
			}
		}
		if len(bad) > 0 {
			t.Errorf("go %s in the root module mentions Prometheus:\n%s", strings.Join(args, " "), strings.Join(bad, "\n"))
		}
	}
}
