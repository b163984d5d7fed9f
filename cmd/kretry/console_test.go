package main

import (
	"context"
	"io"
	"net"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/kretry/kretry/internal/kafkatest"
)

// The console's help and usage errors, with golden stdout and stderr.
// None of them reaches a cluster.
func TestConsoleUsage(t *testing.T) {
	runGoldens(t, []goldenCase{
		{"console-help", "console --help", exitOK},
		{"console-bad-listen", "console --listen 8080", exitUsage},
		{"console-bad-suffix", "console --dlt-suffix -retry", exitUsage},
		{"console-bad-suffix-chars", "console --retry-suffix r/t", exitUsage},
		{"console-argument", "console orders-dlt", exitUsage},
		{"console-unknown-flag", "console --allow-replays", exitUsage},
		{"console-sasl", "console --sasl-user u", exitUsage},
		{"console-bad-plans", "console --plans (orders", exitUsage},
		{"unknown-command-console", "consol", exitUsage},
	})
}

// The default address is loopback: a console started without --listen is
// not reachable from the network.
func TestConsoleDefaultLoopback(t *testing.T) {
	host, _, err := net.SplitHostPort(defaultListen)
	if ip := net.ParseIP(host); err != nil || ip == nil || !ip.IsLoopback() {
		t.Fatalf("default --listen %q is not a loopback address", defaultListen)
	}
}

// pipeLines hands the lines written to it to a channel.
type pipeLines struct{ lines chan string }

func (p pipeLines) Write(b []byte) (int, error) {
	for _, l := range strings.Split(strings.TrimRight(string(b), "\n"), "\n") {
		select {
		case p.lines <- l:
		default:
		}
	}
	return len(b), nil
}

// The command serves the console on the address it prints, answers only
// to that address's host names, and stops with exit 0 when interrupted.
func TestConsoleCommand(t *testing.T) {
	c := kafkatest.New(t)
	dlt := c.Name("orders-dlt")
	c.CreateTopic(dlt, 1)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	out := pipeLines{make(chan string, 16)}
	code := make(chan int, 1)
	go func() {
		code <- runContext(ctx, []string{"console", "--listen", "127.0.0.1:0", "--brokers", strings.Join(c.Seeds, ","),
			"--state-dir", t.TempDir(), "--plans", "^" + regexp.QuoteMeta(c.Name(""))}, out, io.Discard)
	}()
	var addr string
	select {
	case l := <-out.lines:
		m := regexp.MustCompile(`^kretry console: serving http://(127\.0\.0\.1:\d+)/ \(read-only\)`).FindStringSubmatch(l)
		if m == nil {
			t.Fatalf("first line %q", l)
		}
		addr = m[1]
	case c := <-code:
		t.Fatalf("exit %d before serving", c)
	case <-time.After(time.Minute):
		t.Fatal("the console did not start within a minute")
	}
	resp, err := http.Get("http://" + addr + "/")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), dlt) {
		t.Errorf("GET / = %d, lacks %s:\n%s", resp.StatusCode, dlt, body)
	}
	req, _ := http.NewRequest(http.MethodGet, "http://"+addr+"/", nil)
	req.Host = "rebound.example"
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != http.StatusMisdirectedRequest {
		t.Errorf("Host rebound.example: %v %v, want 421", resp.StatusCode, err)
	}
	cancel()
	select {
	case c := <-code:
		if c != exitOK {
			t.Errorf("exit %d after interrupt, want 0", c)
		}
	case <-time.After(time.Minute):
		t.Fatal("the console did not stop within a minute")
	}
}

// A cluster that cannot be reached fails at once with exit 3.
func TestConsoleNoCluster(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	code, _, errOut := kretry(context.Background(), "console", "--brokers", addr, "--request-timeout", "2s", "--listen", "127.0.0.1:0")
	if code != exitFailed || !strings.Contains(errOut, "cannot reach the cluster") {
		t.Errorf("exit %d, stderr %q", code, errOut)
	}
}
