package kretrytest_test

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// failingTest is a test of the user's module that waits for an outcome
// its handler never reaches; it runs only when TestUserModule asks for it.
const failingTest = `package shop_test

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/kretry/kretry/listener"
	"github.com/kretry/kretry/listener/kretrytest"

	"example.com/shop"
)

func TestWrongExpectation(t *testing.T) {
	if os.Getenv("SHOP_WANT_FAILURE") == "" {
		t.Skip("run by kretrytest's TestUserModule, which expects it to fail")
	}
	k := kretrytest.New(t, kretrytest.Timeout(5*time.Second))
	k.CreateTopics("orders")
	l, err := listener.New(k.Seeds(), "orders", k.Wrap(shop.Handler(func(context.Context, string) error { return nil })),
		listener.DLTHandler(k.WrapDLT(nil)))
	if err != nil {
		t.Fatal(err)
	}
	k.Run(l)
	k.Produce(&kgo.Record{Topic: "orders", Key: []byte("order-2")})
	k.Require("order-2", kretrytest.Handled(1))
}
`

// A user's module outside the repository imports the kit and tests its
// own handler with it: TestUserModule writes the handler and the test of
// docs/testing.md, plus a test bound to fail, into a module that requires
// kretry (replaced by this working tree), and runs go test there. The
// docs' test must pass, and the other must fail with the kit's message.
func TestUserModule(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs a separate module's tests")
	}
	gobin, err := exec.LookPath("go")
	if err != nil {
		t.Skipf("no go command on PATH: %v", err)
	}
	root, err := repoRoot()
	if err != nil {
		t.Fatal(err)
	}
	doc, err := os.ReadFile(filepath.Join(root, "docs", "testing.md"))
	if err != nil {
		t.Fatal(err)
	}
	files := docFiles(t, string(doc))
	for _, name := range []string{"shop.go", "shop_test.go"} {
		if files[name] == "" {
			t.Fatalf("docs/testing.md has no code block marked <!-- file: %s -->", name)
		}
	}
	sum, err := os.ReadFile(filepath.Join(root, "go.sum"))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	files["go.mod"] = "module example.com/shop\n\ngo 1.26.0\n\nrequire github.com/kretry/kretry v0.0.0\n\n" +
		"replace github.com/kretry/kretry => " + root + "\n"
	files["go.sum"] = string(sum)
	files["shop_fail_test.go"] = failingTest
	for name, text := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}

	cmd := exec.CommandContext(t.Context(), gobin, "test", "-count=1", "-v", "./...")
	cmd.Dir = dir
	// -mod=mod lets go add the requirements the module's imports need
	// (franz-go) from kretry's own; the proxy is asked only for what the
	// module cache lacks. KAFKA_BROKERS follows the suite's KRETRY_BROKERS.
	cmd.Env = append(os.Environ(), "GOWORK=off", "GOFLAGS=-mod=mod", "SHOP_WANT_FAILURE=1",
		"KAFKA_BROKERS="+os.Getenv("KRETRY_BROKERS"))
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err = cmd.Run()
	var exit *exec.ExitError
	if !errors.As(err, &exit) {
		t.Fatalf("go test in the user's module: %v, want it to run and fail TestWrongExpectation\n%s", err, out.String())
	}
	for _, want := range []string{
		"--- PASS: TestHandler",
		"--- FAIL: TestWrongExpectation",
		`kretrytest: key "order-2": wanted handled on attempt 1, gave up after 5`,
		`: kretrytest: Timeout (5s) passed`,
		`1. attempt 1 from orders[0]@0: failed: order has no items`,
		`DLT handler from orders-dlt[0]@0: reason "permanent" after 1 delivery, last error: order has no items`,
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("go test in the user's module: output lacks %q\n%s", want, out.String())
		}
	}
}

var fileMarker = regexp.MustCompile("(?m)^<!-- file: (\\S+) -->\n```go\n")

// docFiles returns the code blocks of a Markdown text that follow a line
// <!-- file: NAME -->, by NAME.
func docFiles(t *testing.T, doc string) map[string]string {
	t.Helper()
	files := map[string]string{}
	for _, m := range fileMarker.FindAllStringSubmatchIndex(doc, -1) {
		name, body := doc[m[2]:m[3]], doc[m[1]:]
		end := strings.Index(body, "\n```")
		if end < 0 {
			t.Fatalf("docs/testing.md: the code block of %s does not end", name)
		}
		files[name] = body[:end+1]
	}
	return files
}

// repoRoot walks up from the working directory to the directory of
// kretry's go.mod.
func repoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if b, err := os.ReadFile(filepath.Join(dir, "go.mod")); err == nil && bytes.HasPrefix(b, []byte("module github.com/kretry/kretry\n")) {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("no directory above the working directory holds kretry's go.mod")
		}
		dir = parent
	}
}
