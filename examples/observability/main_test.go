package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
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
// stops by itself and prints its summary. Tracing is on, as by default.
func TestRunServesMetrics(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	url := "http://" + ln.Addr().String() + "/metrics"
	var out syncBuffer
	errc := make(chan error, 1)
	go func() {
		errc <- run(context.Background(), config{topic: "orders", duration: 6 * time.Second, rate: 50, trace: true}, ln, &out)
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

// With tracing, the program prints the process spans of one record that
// failed every delivery: one per hop, main topic → both retry tiers → DLT,
// each later one linked to the publish span under the one before it
// (previous-hop) and to the main-topic one (origin); the -spans file holds
// the same spans and links.
func TestRunTracesADeadLetteredRecord(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	spansFile := filepath.Join(t.TempDir(), "spans.json")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var out syncBuffer
	errc := make(chan error, 1)
	go func() {
		errc <- run(ctx, config{topic: "orders", rate: 50, trace: true, spans: spansFile}, ln, &out)
	}()
	// Run until the program says it has a record's spans, then interrupt
	// it (no -duration): it prints them after the summary.
	kafkatest.Eventually(t, 60*time.Second, func() bool {
		return strings.Contains(out.String(), "\ntraced order-")
	}, "no record was traced through to the DLT:\n%s", &out)
	cancel()
	select {
	case err := <-errc:
		if err != nil {
			t.Fatalf("run: %v\n%s", err, out.String())
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("run did not stop when interrupted\n%s", out.String())
	}
	got := out.String()
	c, err := parseChain(got)
	if err != nil {
		t.Fatalf("%v in the output:\n%s", err, got)
	}
	t.Logf("%s, trace %s", c.key, c.trace)

	if !regexp.MustCompile(`^order-\d*7$`).MatchString(c.key) {
		t.Errorf("traced %s, want an order whose number ends in 7 (the handler fails those on every delivery)", c.key)
	}
	want := []struct {
		topic   string
		attempt int
		outcome string
	}{
		{"orders", 1, "retried → orders-retry-500"},
		{"orders-retry-500", 2, "retried → orders-retry-1000"},
		{"orders-retry-1000", 3, "dead-lettered (exhausted) → orders-dlt"},
		{"orders-dlt", 3, "handled"},
	}
	if len(c.spans) != len(want) {
		t.Fatalf("%d process spans, want %d:\n%s", len(c.spans), len(want), got)
	}
	mainSpan, dltSpan := c.spans[0], c.spans[len(c.spans)-1]
	for i, w := range want {
		s := c.spans[i]
		if s.topic != w.topic || s.attempt != w.attempt || s.outcome != w.outcome {
			t.Errorf("span %d: %s attempt %d %q, want %s attempt %d %q", i+1, s.topic, s.attempt, s.outcome, w.topic, w.attempt, w.outcome)
		}
		if i == 0 {
			// The first delivery is its own origin; its previous hop is
			// the producer's publish span.
			if len(s.links) != 1 || s.links[0].kind != "previous-hop" || s.links[0].what != "the producer's publish span" {
				t.Errorf("%s process: links %+v, want only previous-hop to the producer's publish span", s.topic, s.links)
			}
			continue
		}
		// Later deliveries: the publish span under the previous process
		// span, and the main-topic process span.
		prev := c.spans[i-1]
		links := map[string]chainLink{}
		for _, l := range s.links {
			links[l.kind] = l
		}
		if l := links["previous-hop"]; l.what != s.topic+" publish, child of span "+prev.id || l.id == prev.id {
			t.Errorf("%s process: previous-hop %s %q, want a publish span that is a child of %s process (%s)", s.topic, l.id, l.what, prev.topic, prev.id)
		}
		if l := links["origin"]; l.id != mainSpan.id || l.what != "orders process" {
			t.Errorf("%s process: origin %s %q, want the main-topic process span %s", s.topic, l.id, l.what, mainSpan.id)
		}
		if len(s.links) != 2 {
			t.Errorf("%s process: %d links, want previous-hop and origin", s.topic, len(s.links))
		}
	}

	// The exporter wrote the same spans, and the DLT span's origin link in
	// the file is the main-topic process span.
	exported := readSpans(t, spansFile)
	for _, s := range c.spans {
		e, ok := exported[s.id]
		if !ok || e.Name != s.topic+" process" || e.SpanContext.TraceID != c.trace {
			t.Errorf("span %s (%s process, trace %s) exported as %q in trace %s", s.id, s.topic, c.trace, e.Name, e.SpanContext.TraceID)
		}
	}
	var origin string
	for _, l := range exported[dltSpan.id].Links {
		for _, a := range l.Attributes {
			if a.Key == "kretry.link" && a.Value.Value == "origin" {
				origin = l.SpanContext.SpanID
			}
		}
	}
	if origin != mainSpan.id {
		t.Errorf("exported orders-dlt process span: origin link %q, want the orders process span %s", origin, mainSpan.id)
	}
}

// With -trace=false the program runs and summarizes as before, without
// spans; -spans then is an error.
func TestRunWithoutTracing(t *testing.T) {
	if err := run(context.Background(), config{topic: "orders", rate: 50, spans: "spans.json"}, nil, io.Discard); err == nil || err.Error() != "-spans needs -trace" {
		t.Errorf("-spans without -trace: %v, want an error", err)
	}

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var out syncBuffer
	if err := run(context.Background(), config{topic: "orders", duration: time.Second, rate: 50}, ln, &out); err != nil {
		t.Fatalf("run: %v\n%s", err, out.String())
	}
	got := out.String()
	if !strings.Contains(got, "summary after 1s:") || !strings.Contains(got, "scraped from ") {
		t.Errorf("output lacks the summary:\n%s", got)
	}
	if strings.Contains(got, "traced ") || strings.Contains(got, "process spans") || strings.Contains(got, "trace:") {
		t.Errorf("output mentions tracing:\n%s", got)
	}
}

// printedChain is the printed list of a traced record's process spans.
type printedChain struct {
	key, trace string
	spans      []chainSpan
}

type chainSpan struct {
	topic, id string
	attempt   int
	outcome   string // with its reason and target: "retried → orders-retry-500"
	links     []chainLink
}

type chainLink struct{ kind, id, what string }

var (
	chainHeader = regexp.MustCompile(`^process spans of (\S+), dead-lettered after \d+ deliveries \(all in trace ([0-9a-f]{32})\):$`)
	chainSpanRe = regexp.MustCompile(`^  (\S+) process +span ([0-9a-f]{16})  attempt (\d+)  (.+)$`)
	chainLinkRe = regexp.MustCompile(`^      link (\S+) +([0-9a-f]{16})  (.+)$`)
)

// parseChain reads the process spans printed after the summary.
func parseChain(out string) (*printedChain, error) {
	var c *printedChain
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		line := sc.Text()
		if c == nil {
			if m := chainHeader.FindStringSubmatch(line); m != nil {
				c = &printedChain{key: m[1], trace: m[2]}
			}
			continue
		}
		if m := chainSpanRe.FindStringSubmatch(line); m != nil {
			n, _ := strconv.Atoi(m[3])
			c.spans = append(c.spans, chainSpan{topic: m[1], id: m[2], attempt: n, outcome: m[4]})
		} else if m := chainLinkRe.FindStringSubmatch(line); m != nil && len(c.spans) > 0 {
			s := &c.spans[len(c.spans)-1]
			s.links = append(s.links, chainLink{kind: m[1], id: m[2], what: m[3]})
		} else {
			return nil, fmt.Errorf("unexpected line %q", line)
		}
	}
	if c == nil {
		return nil, errors.New("no list of process spans")
	}
	return c, nil
}

// exportedSpan is the part of a span, as stdouttrace writes it, that the
// test reads.
type exportedSpan struct {
	Name        string
	SpanContext struct{ TraceID, SpanID string }
	Links       []struct {
		SpanContext struct{ SpanID string }
		Attributes  []struct {
			Key   string
			Value struct{ Value any }
		}
	}
}

// readSpans reads a -spans file: its spans by span ID.
func readSpans(t *testing.T, file string) map[string]exportedSpan {
	t.Helper()
	f, err := os.Open(file)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	spans := map[string]exportedSpan{}
	dec := json.NewDecoder(f)
	for dec.More() {
		var s exportedSpan
		if err := dec.Decode(&s); err != nil {
			t.Fatalf("%s: %v", file, err)
		}
		spans[s.SpanContext.SpanID] = s
	}
	return spans
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
