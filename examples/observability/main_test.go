package main

import (
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kretry/kretry/internal/kafkatest"
)

// syncBuffer is an io.Writer the test reads while run writes to it.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// While the program runs, /metrics serves kretry's metrics with every
// outcome the handler produces, and the Kafka client's; at -duration it
// stops by itself and prints its summary.
func TestRunServesMetrics(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	url := "http://" + ln.Addr().String() + "/metrics"
	var out syncBuffer
	errc := make(chan error, 1)
	go func() {
		errc <- run(context.Background(), config{topic: "orders", duration: 6 * time.Second, rate: 50}, ln, &out)
	}()

	// A non-zero sample of each outcome of the main topic, and a client
	// metric.
	wants := []*regexp.Regexp{
		regexp.MustCompile(`(?m)^kretry_records_total\{outcome="handled",role="main",topic="orders"\} [1-9]`),
		regexp.MustCompile(`(?m)^kretry_records_total\{outcome="retried",role="main",topic="orders"\} [1-9]`),
		regexp.MustCompile(`(?m)^kretry_records_total\{outcome="dead_lettered",role="main",topic="orders"\} [1-9]`),
		regexp.MustCompile(`(?m)^kretry_records_total\{outcome="handled",role="tier",topic="orders-retry-500"\} [1-9]`),
		regexp.MustCompile(`(?m)^kretry_partitions_owned\{role="main",topic="orders"\} 3$`),
		regexp.MustCompile(`(?m)^kretry_tier_records_waiting\{group="observability",state="not_due",topic="orders-retry-500"\} `),
		regexp.MustCompile(`(?m)^kretry_connects_total\{node_id="0"\} [1-9]`),
	}
	var body string
	kafkatest.Eventually(t, 30*time.Second, func() bool {
		resp, err := http.Get(url)
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		if err != nil {
			return false
		}
		body = string(b)
		for _, re := range wants {
			if !re.MatchString(body) {
				return false
			}
		}
		return true
	}, "%s lacks %v", url, missing(func() string { return body }, wants))

	select {
	case err := <-errc:
		if err != nil {
			t.Fatalf("run: %v\n%s", err, out.String())
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("run did not stop after -duration\n%s", out.String())
	}
	got := out.String()
	for _, want := range []string{
		"started an in-process Kafka cluster (kfake)",
		"serving metrics at " + url,
		"summary after 6s:",
		"main topic orders:",
		"DLT orders-dlt:",
		"scraped from " + url,
		`kretry_records_total{outcome="handled",role="main",topic="orders"} `,
		`kretry_dead_lettered_total{dlt="orders-dlt",reason="permanent",role="main",topic="orders"} `,
	} {
		if !strings.Contains(got, want) {
			t.Errorf("output lacks %q:\n%s", want, got)
		}
	}
}

// missing lists the patterns the body does not match, when printed.
type missingPatterns struct {
	body  func() string
	wants []*regexp.Regexp
}

func missing(body func() string, wants []*regexp.Regexp) missingPatterns {
	return missingPatterns{body, wants}
}

func (m missingPatterns) String() string {
	var out []string
	for _, re := range m.wants {
		if !re.MatchString(m.body()) {
			out = append(out, re.String())
		}
	}
	return strings.Join(out, "\n")
}
