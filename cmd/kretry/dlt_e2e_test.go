package main

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"slices"
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

// delivery is one call of an e2e handler.
type delivery struct {
	state   retry.State
	retried bool // retry state in the context: not a first delivery
	run     string
	ts      time.Time
	topic   string
}

// recorder is an e2e handler that records its deliveries by key and
// answers with answer(key, n), n counting from 1.
type recorder struct {
	mu     sync.Mutex
	seen   map[string][]delivery
	answer func(key string, n int) error
}

func (h *recorder) Handle(ctx context.Context, rec *kgo.Record) error {
	st, ok := retry.FromContext(ctx)
	d := delivery{state: st, retried: ok, ts: rec.Timestamp, topic: rec.Topic}
	for _, hd := range rec.Headers {
		if hd.Key == retry.HeaderReplayRun {
			d.run = string(hd.Value)
		}
	}
	h.mu.Lock()
	key := string(rec.Key)
	h.seen[key] = append(h.seen[key], d)
	n := len(h.seen[key])
	h.mu.Unlock()
	return h.answer(key, n)
}

func (h *recorder) count(key string) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.seen[key])
}

func (h *recorder) deliveries(key string) []delivery {
	h.mu.Lock()
	defer h.mu.Unlock()
	return slices.Clone(h.seen[key])
}

// Records a kretry listener dead-lettered, replayed by the CLI with the
// listener's policy, reach that listener's group only: they arrive in its
// first retry tier as second deliveries with a fresh time budget, and a
// failure then goes on to the next tier, not back to the DLT, even though
// their original timestamp lies far beyond the policy's 1h budget. A
// second service (another group) reading the same topic and tiers saw each
// record once, as a first delivery, and skips the replayed ones.
func TestDLTReplayFeedsListener(t *testing.T) {
	c := kafkatest.New(t)
	topic, group, other := c.Name("orders"), c.Name("group"), c.Name("other")
	c.CreateTopic(topic, 2)
	errBoom := errors.New("boom")

	h := &recorder{seen: map[string][]delivery{}, answer: func(_ string, n int) error {
		switch n {
		case 1: // the original delivery: dead-lettered at once
			return strategy.Permanent(errBoom)
		case 2: // the replayed delivery: fails, retryably
			return errBoom
		}
		return nil
	}}
	o := &recorder{seen: map[string][]delivery{}, answer: func(string, int) error { return nil }}
	run := func(g string, h *recorder) (*listener.Listener, func()) {
		l, err := listener.New(c.Seeds, topic, listener.HandlerFunc(h.Handle), listener.Group(g),
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
		return l, func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("Run of %s: %v", g, err)
			}
		}
	}
	l, stop := run(group, h)
	defer stop()
	_, stopOther := run(other, o)
	defer stopOther()

	// Two days old: far past the policy's 1h time budget.
	old := time.Now().Add(-48 * time.Hour).Truncate(time.Millisecond)
	keys := []string{"a", "b", "c", "d", "e"}
	for _, k := range keys {
		c.Produce(&kgo.Record{Topic: topic, Key: []byte(k), Value: []byte("v-" + k), Timestamp: old,
			Headers: []kgo.RecordHeader{{Key: "tenant", Value: []byte("acme")}}})
	}
	plan := l.Plan()
	dlt, tier := plan.DLT, plan.Tiers[0].Topic
	// The listener creates its DLT when it starts: wait for the topic and
	// the records.
	kafkatest.Eventually(t, dltWait, func() bool { return endTotal(c, dlt) == int64(len(keys)) }, "%d records in %s", len(keys), dlt)

	// The policy as the listener's: --topic, --group and its settings.
	code, out, errOut := kretry(context.Background(), "dlt", "replay", "--run", "e2e",
		"--brokers", strings.Join(c.Seeds, ","), "--state-dir", t.TempDir(), "--progress", "none",
		"--topic", topic, "--group", group, "--attempts", "3", "--delay", "50ms", dlt)
	if code != exitOK || !strings.Contains(out, tier+"  5  group "+group+" only (its first retry tier)") {
		t.Fatalf("replay: exit %d\n%s%s", code, out, errOut)
	}
	replayedAt := time.Now()
	kafkatest.Eventually(t, dltWait, func() bool {
		for _, k := range keys {
			if h.count(k) < 3 {
				return false
			}
		}
		return true
	}, "every replayed record handled twice more")
	// The other group has passed every record of the tier: it has skipped
	// the replayed ones and their retries.
	kafkatest.Eventually(t, dltWait, func() bool {
		var n int64
		for _, at := range c.Committed(other, tier) {
			n += at
		}
		return n == endTotal(c, tier)
	}, "group %s committed %s to its end", other, tier)

	for _, k := range keys {
		ds := h.deliveries(k)
		if len(ds) != 3 {
			t.Errorf("%s delivered %d times, want 3", k, len(ds))
			continue
		}
		first, again, retried := ds[0], ds[1], ds[2]
		if first.retried || !first.ts.Equal(old) {
			t.Errorf("%s: first delivery %+v", k, first)
		}
		if !again.retried || again.topic != tier || again.run != "e2e" || again.state.Attempt != 2 ||
			again.state.Group != group || again.state.OriginalTopic != topic {
			t.Errorf("%s: replayed delivery %+v; want attempt 2 of group %s from %s, run e2e", k, again, group, tier)
		}
		if again.state.OriginalTimestamp.Before(old.Add(47*time.Hour)) || again.state.OriginalTimestamp.After(replayedAt) ||
			again.ts.Before(old.Add(47*time.Hour)) || again.ts.After(replayedAt) {
			t.Errorf("%s: replayed record timestamps %v and %v, want the replay's time", k, again.state.OriginalTimestamp, again.ts)
		}
		if !retried.retried || retried.state.Attempt != 3 || retried.state.OriginalTopic != topic ||
			!retried.state.OriginalTimestamp.Equal(again.state.OriginalTimestamp) {
			t.Errorf("%s: retry after the replay %+v, want attempt 3 from %s with the replay's time", k, retried.state, topic)
		}
		if ds := o.deliveries(k); len(ds) != 1 || ds[0].retried {
			t.Errorf("%s: group %s had %d deliveries (%+v), want its first delivery only", k, other, len(ds), ds)
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
