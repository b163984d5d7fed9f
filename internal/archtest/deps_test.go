package archtest

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
)

// Import paths outside the module that rules refer to. A path also stands
// for every package below it.
const (
	franzGo    = "github.com/twmb/franz-go"
	kfake      = "github.com/twmb/franz-go/pkg/kfake"
	prometheus = "github.com/prometheus"
	otel       = "go.opentelemetry.io"
)

// rule forbids each package in pkgs (module-relative directories, as in
// "retry") from depending, directly or not, on any import path in deny.
// A package never breaks a rule through itself.
type rule struct {
	name string
	pkgs []string
	deny []string
}

// TestDepsLayering asks the go command for the dependencies of each of the
// module's packages (test files aside) and checks that imports point down
// the layers strategy ← retry ← dlt ← listener, that only cmd/, examples/
// and the test kit import listener, that only examples/ import the test
// kit, and that the core packages pull in neither metrics nor tracing
// libraries nor the fake cluster. Each failure names the package, the
// forbidden dependency, the import chain to it and the rule.
func TestDepsLayering(t *testing.T) {
	g := newGoList(t)
	mod := g.module
	listener := mod + "/listener"
	kit := listener + "/kretrytest"

	// Every non-test package of the module may be checked against the
	// listener rule except listener itself, its test kit and the programs
	// in cmd/ and examples/, which are where listener is meant to be used;
	// and against the test kit rule except the kit and examples/.
	var library, notKit []string
	for _, p := range g.packages(t) {
		rel := strings.TrimPrefix(strings.TrimPrefix(p, mod), "/")
		example := rel == "examples" || under(rel, "examples")
		if p != kit && !example {
			notKit = append(notKit, rel)
		}
		if p == listener || p == kit || rel == "cmd" || under(rel, "cmd") || example {
			continue
		}
		library = append(library, rel)
	}
	if len(library) == 0 || !slices.Contains(library, "retry") {
		t.Fatalf("go list ./... found library packages %v, want at least retry: the test cannot see the module", library)
	}
	if !slices.Contains(notKit, "listener") || !slices.Contains(notKit, "cmd/kretry") {
		t.Fatalf("go list ./... found packages %v outside examples/, want at least listener and cmd/kretry", notKit)
	}

	rules := []rule{
		{"strategy is pure: it imports no franz-go package and no other kretry package",
			[]string{"strategy"}, []string{franzGo, mod}},
		{"retry sits below dlt and listener: it may import strategy, not dlt or listener",
			[]string{"retry"}, []string{mod + "/dlt", listener}},
		{"dlt sits below listener: it may import retry and strategy, not listener",
			[]string{"dlt"}, []string{listener}},
		{"config sits below listener: it may import retry and strategy, not dlt or listener",
			[]string{"config"}, []string{mod + "/dlt", listener}},
		{"internal/due is standalone machinery: it imports no kretry package",
			[]string{"internal/due"}, []string{mod}},
		{"internal/hop holds rules shared by the listener and the DLT tools: it imports no kretry package",
			[]string{"internal/hop"}, []string{mod}},
		{"internal/suggest is standalone: it imports no kretry package",
			[]string{"internal/suggest"}, []string{mod}},
		{"core packages keep Prometheus, OpenTelemetry and kfake (tests, examples and internal/kafkatest only) out of users' builds",
			[]string{"strategy", "retry", "config", "dlt", "listener"}, []string{prometheus, otel, kfake}},
		{"nothing imports listener except tests, cmd/, examples/ and its test kit listener/kretrytest",
			library, []string{listener}},
		{"internal/console is the console's server: only cmd/kretry wires it, and it imports no listener",
			without(library, "internal/console"), []string{mod + "/internal/console"}},
		{"nothing imports the test kit listener/kretrytest (and with it kfake) except tests and examples/: programs that use kretry never link it",
			notKit, []string{kit}},
	}

	// The rules only forbid edges; make sure the graph is really there by
	// checking an edge that must exist.
	if _, ok := g.deps(t, "listener")[mod+"/strategy"]; !ok {
		t.Fatalf("go list -deps reports no dependency of listener on strategy: the test cannot see the import graph")
	}
	if _, ok := g.deps(t, "listener/kretrytest")[kfake]; !ok {
		t.Fatalf("go list -deps reports no dependency of listener/kretrytest on %s: the test cannot see the test kit's graph", kfake)
	}

	for _, r := range rules {
		for _, pkg := range r.pkgs {
			checkRule(t, g, r, pkg)
		}
	}
}

// checkRule reports each package that pkg reaches in breach of r. Of the
// forbidden packages reached through another forbidden one (kgo's own
// imports, say), only the first on the chain is named, with a count of
// the rest.
func checkRule(t *testing.T, g *goList, r rule, pkg string) {
	t.Helper()
	self := g.importPath(pkg)
	deps := g.deps(t, pkg)
	denied := func(p string) bool {
		if p == self {
			return false
		}
		for _, d := range r.deny {
			if p == d || under(p, d) {
				return true
			}
		}
		return false
	}
	chains := map[string][]string{} // first forbidden package → its chain
	behind := map[string]int{}      // first forbidden package → others reached through it
	for _, dep := range sortedKeys(deps) {
		if !denied(dep) {
			continue
		}
		c := chain(deps, self, dep)
		first := dep
		for _, p := range c[1:] {
			if denied(p) {
				first = p
				break
			}
		}
		if first == dep {
			chains[dep] = c
		} else {
			behind[first]++
		}
	}
	for _, dep := range sortedKeys(chains) {
		more := ""
		if n := behind[dep]; n > 0 {
			more = fmt.Sprintf(", and %d more forbidden packages through it", n)
		}
		t.Errorf("%s depends on %s (import chain %s%s)\n\trule: %s",
			self, dep, strings.Join(chains[dep], " → "), more, r.name)
	}
}

// goList runs the go command in the module root and caches what it says.
type goList struct {
	bin    string
	root   string
	module string
	cache  map[string]map[string][]string
}

func newGoList(t *testing.T) *goList {
	t.Helper()
	bin, err := goBinary()
	if err != nil {
		t.Skipf("cannot check package layering: %v", err)
	}
	root, err := moduleRoot()
	if err != nil {
		t.Fatalf("finding the module root: %v", err)
	}
	g := &goList{bin: bin, root: root, cache: map[string]map[string][]string{}}
	g.module = strings.TrimSpace(g.run(t, "list", "-m", "-f", "{{.Path}}"))
	if g.module == "" {
		t.Fatalf("go list -m in %s printed no module path", root)
	}
	return g
}

// goBinary returns the go command of the toolchain running the test, or
// the one on PATH when the toolchain's is not where GOROOT says.
func goBinary() (string, error) {
	var tried []string
	//lint:ignore SA1019 the test's own toolchain is on this machine; PATH is the fallback
	if root := runtime.GOROOT(); root != "" {
		bin := filepath.Join(root, "bin", "go")
		if runtime.GOOS == "windows" {
			bin += ".exe"
		}
		if _, err := os.Stat(bin); err == nil {
			return bin, nil
		}
		tried = append(tried, bin)
	}
	bin, err := exec.LookPath("go")
	if err == nil {
		return bin, nil
	}
	tried = append(tried, "go on PATH")
	return "", errors.New("the go binary was not found (tried " + strings.Join(tried, ", ") + ")")
}

// moduleRoot walks up from the working directory to the one holding go.mod.
func moduleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("no go.mod in any parent directory")
		}
		dir = parent
	}
}

// run runs the go command with args in the module root and returns its
// standard output, failing t on any error. GOWORK=off keeps a workspace
// from adding other modules' packages to ./... patterns.
func (g *goList) run(t *testing.T, args ...string) string {
	t.Helper()
	cmd := exec.Command(g.bin, args...)
	cmd.Dir = g.root
	cmd.Env = append(os.Environ(), "GOWORK=off")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go %s (in %s): %v\n%s", strings.Join(args, " "), g.root, err, stderr.String())
	}
	return string(out)
}

// packages returns the import paths of the module's non-test packages.
func (g *goList) packages(t *testing.T) []string {
	t.Helper()
	return strings.Fields(g.run(t, "list", "./..."))
}

// importPath returns the import path of the module-relative package dir
// ("" for the module's root package).
func (g *goList) importPath(dir string) string {
	if dir == "" {
		return g.module
	}
	return g.module + "/" + dir
}

// deps returns every package pkg (module-relative) depends on, itself
// included, each with the packages it imports directly. Test files are
// not considered.
func (g *goList) deps(t *testing.T, pkg string) map[string][]string {
	t.Helper()
	if d, ok := g.cache[pkg]; ok {
		return d
	}
	out := g.run(t, "list", "-deps", "-f", "{{.ImportPath}}{{range .Imports}} {{.}}{{end}}", "./"+pkg)
	d := map[string][]string{}
	for line := range strings.Lines(out) {
		f := strings.Fields(line)
		if len(f) > 0 {
			d[f[0]] = f[1:]
		}
	}
	self := g.importPath(pkg)
	if _, ok := d[self]; !ok {
		t.Fatalf("go list -deps ./%s did not list %s itself; got %d packages", pkg, self, len(d))
	}
	g.cache[pkg] = d
	return d
}

// chain returns a shortest import chain from one package to another in
// deps (as returned by goList.deps), or just the two ends if there is none.
func chain(deps map[string][]string, from, to string) []string {
	prev := map[string]string{from: ""}
	queue := []string{from}
	for len(queue) > 0 {
		p := queue[0]
		queue = queue[1:]
		if p == to {
			var path []string
			for ; p != ""; p = prev[p] {
				path = append(path, p)
			}
			slices.Reverse(path)
			return path
		}
		for _, next := range deps[p] {
			if _, seen := prev[next]; !seen {
				prev[next] = p
				queue = append(queue, next)
			}
		}
	}
	return []string{from, "…", to}
}

// under reports whether path lies below dir, as "a/b" lies below "a".
func under(path, dir string) bool {
	return strings.HasPrefix(path, dir+"/")
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// without returns pkgs less drop.
func without(pkgs []string, drop string) []string {
	return slices.DeleteFunc(slices.Clone(pkgs), func(p string) bool { return p == drop })
}
