package main

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/kretry/kretry/internal/kafkatest"
	"github.com/kretry/kretry/listener"
	"github.com/kretry/kretry/retry"
	"github.com/kretry/kretry/strategy"
)

// delivery is one call of the e2e handler.
type delivery struct {
	state   retry.State
	retried bool // retry state in the context: not a first delivery
	run     string
	ts      time.Time
}

// Records a kretry listener dead-lettered, replayed by the CLI, are handled
// by the same listener as first deliveries (attempt 1), and a failure then
// goes to the first retry tier, not back to the DLT: the reset headers and
// the fresh timestamp give the record a new life under the policy, even
// though its original timestamp lies far beyond the policy's 1h budget.
func TestDLTReplayFeedsListener(t *testing.T) {
	c := kafkatest.New(t)
	topic, group := c.Name("orders"), c.Name("group")
	c.CreateTopic(topic, 2)
	errBoom := errors.New("boom")

	var mu sync.Mutex
	seen := map[string][]delivery{}
	h := listener.HandlerFunc(func(ctx context.Context, rec *kgo.Record) error {
		st, ok := retry.FromContext(ctx)
		d := delivery{state: st, retried: ok, ts: rec.Timestamp}
		for _, hd := range rec.Headers {
			if hd.Key == retry.HeaderReplayRun {
				d.run = string(hd.Value)
			}
		}
		mu.Lock()
		key := string(rec.Key)
		seen[key] = append(seen[key], d)
		n := len(seen[key])
		mu.Unlock()
		switch n {
		case 1: // the original delivery: dead-lettered at once
			return strategy.Permanent(errBoom)
		case 2: // the replayed delivery: fails, retryably
			return errBoom
		}
		return nil
	})
	count := func(key string) int {
		mu.Lock()
		defer mu.Unlock()
		return len(seen[key])
	}
	l, err := listener.New(c.Seeds, topic, h, listener.Group(group),
		listener.Timeout(time.Hour), listener.Attempts(3),
		listener.Backoff(strategy.FixedBackoff(50*time.Millisecond)),
		listener.Logger(slog.New(slog.NewTextHandler(io.Discard, nil))),
		listener.FetchMaxWait(20*time.Millisecond), listener.ShutdownTimeout(10*time.Second),
		listener.ClientOpts(kgo.AutoCommitInterval(200*time.Millisecond)))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- l.Run(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	}()

	// Two days old: far past the policy's 1h time budget.
	old := time.Now().Add(-48 * time.Hour).Truncate(time.Millisecond)
	keys := []string{"a", "b", "c", "d", "e"}
	for _, k := range keys {
		c.Produce(&kgo.Record{Topic: topic, Key: []byte(k), Value: []byte("v-" + k), Timestamp: old,
			Headers: []kgo.RecordHeader{{Key: "tenant", Value: []byte("acme")}}})
	}
	dlt := l.Plan().DLT
	// The listener creates its DLT when it starts: wait for the topic and
	// the records.
	kafkatest.Eventually(t, dltWait, func() bool { return endTotal(c, dlt) == int64(len(keys)) }, "%d records in %s", len(keys), dlt)

	code, out, errOut := kretry(context.Background(), "dlt", "replay", "--run", "e2e",
		"--brokers", strings.Join(c.Seeds, ","), "--state-dir", t.TempDir(), "--progress", "none", dlt)
	if code != exitOK {
		t.Fatalf("replay: exit %d\n%s%s", code, out, errOut)
	}
	replayedAt := time.Now()
	kafkatest.Eventually(t, dltWait, func() bool {
		for _, k := range keys {
			if count(k) < 3 {
				return false
			}
		}
		return true
	}, "every replayed record handled twice more")

	mu.Lock()
	defer mu.Unlock()
	for _, k := range keys {
		ds := seen[k]
		if len(ds) != 3 {
			t.Errorf("%s delivered %d times, want 3", k, len(ds))
			continue
		}
		first, again, retried := ds[0], ds[1], ds[2]
		if first.retried || !first.ts.Equal(old) {
			t.Errorf("%s: first delivery %+v", k, first)
		}
		if again.retried || again.run != "e2e" {
			t.Errorf("%s: replayed delivery has retry state %v (%+v) and run %q; want attempt 1 of run e2e", k, again.retried, again.state, again.run)
		}
		if again.ts.Before(old.Add(47*time.Hour)) || again.ts.After(replayedAt) {
			t.Errorf("%s: replayed record timestamp %v, want the replay's time", k, again.ts)
		}
		if !retried.retried || retried.state.Attempt != 2 || retried.state.OriginalTopic != topic ||
			!retried.state.OriginalTimestamp.Equal(again.ts.Truncate(time.Millisecond)) {
			t.Errorf("%s: retry after the replay %+v, want attempt 2 from %s with the replay's timestamp", k, retried.state, topic)
		}
	}
	if n := len(c.ReadAll(dlt)); n != len(keys) {
		t.Errorf("%s holds %d records, want %d: replayed records went back to the DLT", dlt, n, len(keys))
	}
}

// endTotal returns the sum of topic's end offsets, or -1 when they cannot
// be listed (the topic does not exist yet).
func endTotal(c *kafkatest.Cluster, topic string) int64 {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	ends, err := c.Admin.ListEndOffsets(ctx, topic)
	if err != nil || ends.Error() != nil {
		return -1
	}
	var n int64
	ends.Each(func(o kadm.ListedOffset) { n += o.Offset })
	return n
}
