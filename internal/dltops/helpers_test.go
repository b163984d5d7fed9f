package dltops

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/kretry/kretry/internal/kafkatest"
	"github.com/kretry/kretry/retry"
)

// dead describes one DLT record for a test.
type dead struct {
	key        string
	origTopic  string
	origPart   int32
	origOffset int64
	errType    string
	reason     string
	age        time.Duration // of the DLT record's timestamp
	dltPart    int32
	headers    []kgo.RecordHeader // user headers
	group      string             // the consumer group that dead-lettered it; "" for none
}

// deadLetter builds the DLT record of d as the listener writes one: the
// main-topic record's first failure, dead-lettered (retry.First,
// WithFailure, DeadLetter), then retry.Next to the DLT.
func deadLetter(dlt string, d dead, now time.Time) *kgo.Record {
	at := now.Add(-d.age)
	src := &kgo.Record{Topic: d.origTopic, Partition: d.origPart, Offset: d.origOffset,
		Key: []byte(d.key), Value: []byte("value-" + d.key), Headers: d.headers, Timestamp: at.Add(-time.Minute)}
	reason := d.reason
	if reason == "" {
		reason = retry.ReasonPermanent
	}
	st := retry.First(src, at).WithFailure(time.Time{}, "failed: "+d.key, d.errType).DeadLetter(reason)
	st.Group = d.group
	out := retry.Next(src, dlt, d.dltPart, st, 0)
	out.Timestamp = at
	return out
}

// corruptRecord is a DLT record whose kretry-attempt header has the wrong
// width; with origTopic set, its four original headers are well-formed.
func corruptRecord(dlt string, part int32, key, origTopic string, now time.Time) *kgo.Record {
	r := deadLetter(dlt, dead{key: key, origTopic: origTopic, origPart: 0, errType: "x", dltPart: part}, now)
	var hs []kgo.RecordHeader
	for _, h := range r.Headers {
		switch {
		case h.Key == retry.HeaderAttempt:
			h.Value = []byte{1, 2, 3}
		case h.Key == retry.HeaderOriginalTopic && origTopic == "":
			continue
		}
		hs = append(hs, h)
	}
	r.Headers = hs
	return r
}

// opts are the client options of the code under test for cluster c.
func opts(c *kafkatest.Cluster) []kgo.Opt {
	return []kgo.Opt{kgo.SeedBrokers(c.Seeds...), kgo.MetadataMinAge(100 * time.Millisecond)}
}

// fakeClock is a Clock whose After returns at once, moving the time on.
// onAfter, when set, is called by After first, outside the lock: what
// happens while the code under test waits.
type fakeClock struct {
	mu      sync.Mutex
	now     time.Time
	waited  time.Duration
	onAfter func(d time.Duration)
}

func newFakeClock() *fakeClock { return &fakeClock{now: time.Now()} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) After(d time.Duration) <-chan time.Time {
	if c.onAfter != nil {
		c.onAfter(d)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
	c.waited += d
	ch := make(chan time.Time, 1)
	ch <- c.now
	return ch
}

func (c *fakeClock) Waited() time.Duration {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.waited
}

// header returns the value of the first header named key.
func header(r *kgo.Record, key string) (string, bool) {
	for _, h := range r.Headers {
		if h.Key == key {
			return string(h.Value), true
		}
	}
	return "", false
}

// replayedFrom counts the records of topic sent by run, by source.
func replayedFrom(c *kafkatest.Cluster, topic, run string) map[string]int {
	out := map[string]int{}
	for _, r := range c.ReadAll(topic) {
		if by, _ := header(r, retry.HeaderReplayRun); by == run {
			from, _ := header(r, retry.HeaderReplayedFrom)
			out[from]++
		}
	}
	return out
}

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return ctx
}
