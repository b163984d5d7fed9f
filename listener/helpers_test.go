package listener_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/kretry/kretry/internal/kafkatest"
	"github.com/kretry/kretry/listener"
	"github.com/kretry/kretry/retry"
)

// delivery is one call of the handler under test.
type delivery struct {
	key     string
	topic   string
	offset  int64
	at      time.Time
	state   retry.State
	retried bool // retry state present in the context
	headers []kgo.RecordHeader
}

// script is a handler whose behaviour per key is a function of the
// delivery number (1-based), and which records every delivery.
type script struct {
	mu         sync.Mutex
	deliveries []delivery
	dlt        []delivery
	events     []listener.Event
	plan       func(key string, n int) error
	counts     map[string]int
}

func newScript(plan func(key string, n int) error) *script {
	return &script{plan: plan, counts: map[string]int{}}
}

func (s *script) Handle(ctx context.Context, rec *kgo.Record) error {
	st, ok := retry.FromContext(ctx)
	s.mu.Lock()
	key := string(rec.Key)
	s.counts[key]++
	n := s.counts[key]
	s.deliveries = append(s.deliveries, delivery{key: key, topic: rec.Topic, offset: rec.Offset,
		at: time.Now(), state: st, retried: ok, headers: append([]kgo.RecordHeader(nil), rec.Headers...)})
	s.mu.Unlock()
	return s.plan(key, n)
}

func (s *script) HandleDLT(_ context.Context, rec *kgo.Record, st retry.State) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.dlt = append(s.dlt, delivery{key: string(rec.Key), topic: rec.Topic, offset: rec.Offset,
		at: time.Now(), state: st, headers: append([]kgo.RecordHeader(nil), rec.Headers...)})
	return nil
}

func (s *script) OnEvent(e listener.Event) {
	s.mu.Lock()
	s.events = append(s.events, e)
	s.mu.Unlock()
}

func (s *script) of(key string) []delivery {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []delivery
	for _, d := range s.deliveries {
		if d.key == key {
			out = append(out, d)
		}
	}
	return out
}

func (s *script) dltOf(key string) []delivery {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []delivery
	for _, d := range s.dlt {
		if d.key == key {
			out = append(out, d)
		}
	}
	return out
}

func (s *script) count(key string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.counts[key]
}

func (s *script) eventsOf(kind listener.EventKind) []listener.Event {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []listener.Event
	for _, e := range s.events {
		if e.Kind == kind {
			out = append(out, e)
		}
	}
	return out
}

var errBoom = errors.New("boom")

// failTimes fails the first n deliveries of keys listed in m.
func failTimes(m map[string]int) func(string, int) error {
	return func(key string, n int) error {
		if n <= m[key] {
			return fmt.Errorf("delivery %d of %s: %w", n, key, errBoom)
		}
		return nil
	}
}

// started runs l in the background and returns a stop function that
// cancels it and returns Run's error.
func started(t *testing.T, l *listener.Listener) (stop func() error) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- l.Run(ctx) }()
	var once sync.Once
	var err error
	stop = func() error {
		once.Do(func() {
			cancel()
			select {
			case err = <-done:
			case <-time.After(60 * time.Second):
				err = errors.New("Run did not return within 60s of cancel")
			}
		})
		return err
	}
	t.Cleanup(func() {
		if err := stop(); err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	return stop
}

// quiet is a logger for tests that only shows errors when -v is set.
func quiet(t *testing.T) *slog.Logger {
	if testing.Verbose() {
		return slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(b []byte) (int, error) { w.t.Log(string(b)); return len(b), nil }

func rec(topic, key string) *kgo.Record {
	return &kgo.Record{Topic: topic, Key: []byte(key), Value: []byte("value-" + key)}
}

// fixture is a cluster, a main topic and the usual options for one test.
type fixture struct {
	c     *kafkatest.Cluster
	topic string
	group string
}

func newFixture(t *testing.T, partitions int32) fixture {
	c := kafkatest.New(t)
	f := fixture{c: c, topic: c.Name("orders"), group: c.Name("group")}
	c.CreateTopic(f.topic, partitions)
	return f
}

func (f fixture) listener(t *testing.T, h listener.Handler, opts ...listener.Opt) *listener.Listener {
	t.Helper()
	base := []listener.Opt{listener.Group(f.group), listener.Logger(quiet(t)),
		listener.FetchMaxWait(20 * time.Millisecond), listener.ShutdownTimeout(10 * time.Second),
		listener.ClientOpts(kgo.AutoCommitInterval(200 * time.Millisecond))}
	if s, ok := h.(*script); ok {
		base = append(base, listener.DLTHandler(s), listener.Hooks(s))
	}
	l, err := listener.New(f.c.Seeds, f.topic, h, append(base, opts...)...)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return l
}

// logSink collects the listener's log lines for assertions.
type logSink struct {
	mu    sync.Mutex
	lines []string // "LEVEL message key=value …"
}

func (s *logSink) Enabled(context.Context, slog.Level) bool { return true }

func (s *logSink) WithAttrs([]slog.Attr) slog.Handler { return s }

func (s *logSink) WithGroup(string) slog.Handler { return s }

func (s *logSink) Handle(_ context.Context, r slog.Record) error {
	var b strings.Builder
	b.WriteString(r.Level.String() + " " + r.Message)
	r.Attrs(func(a slog.Attr) bool {
		b.WriteString(" " + a.String())
		return true
	})
	s.mu.Lock()
	s.lines = append(s.lines, b.String())
	s.mu.Unlock()
	return nil
}

// find returns the first line containing every one of parts.
func (s *logSink) find(parts ...string) (string, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
next:
	for _, l := range s.lines {
		for _, p := range parts {
			if !strings.Contains(l, p) {
				continue next
			}
		}
		return l, true
	}
	return "", false
}

func (s *logSink) logger() *slog.Logger { return slog.New(s) }

func headerValue(hs []kgo.RecordHeader, key string) ([]byte, int) {
	var v []byte
	n := 0
	for _, h := range hs {
		if h.Key == key {
			v, n = h.Value, n+1
		}
	}
	return v, n
}
