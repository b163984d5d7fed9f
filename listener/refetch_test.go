package listener_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/kretry/kretry/internal/kafkatest"
	"github.com/kretry/kretry/listener"
	"github.com/kretry/kretry/retry"
	"github.com/kretry/kretry/strategy"
)

// fetchCounter counts the records the client buffers from fetch
// responses. A record fetched twice — its partition paused while the
// record was buffered, so franz-go dropped it at the next poll and fetched
// it again after the resume — is counted twice.
type fetchCounter struct{ n atomic.Int64 }

func (c *fetchCounter) OnFetchRecordBuffered(*kgo.Record) { c.n.Add(1) }

// BenchmarkRefetch reports how many records the listener's client fetched
// per handler call: 1 means nothing was fetched twice.
//
//   - happy: BenchmarkHappyPath's workload (1,000,000 records, no-op
//     handler).
//   - hop, hop-zeros: every record's first delivery fails and is handled
//     again from a 0 ms retry tier (docs/benchmarks.md's S2), so each record
//     is fetched once from the main topic and once from the tier; values
//     are distinct random bytes, or zeros, which compress like the bench
//     program's values (one random value for every record) do.
//   - slow: 60 µs of CPU per record, enough for a worker's turn to keep the
//     poll loop at its limit past hogDelay, so partitions are paused as
//     hogs.
//
// Run it with
//
//	go test ./listener -run '^$' -bench Refetch -benchtime 3x
func BenchmarkRefetch(b *testing.B) {
	for _, sc := range []struct {
		name    string
		records int
		random  bool
		hop     bool
		spin    time.Duration
	}{
		{"happy", 1_000_000, false, false, 0},
		{"hop", 200_000, true, true, 0},
		{"hop-zeros", 200_000, false, true, 0},
		{"slow", 150_000, true, false, 60 * time.Microsecond},
	} {
		b.Run(sc.name, func(b *testing.B) {
			records := sc.records
			if testing.Short() {
				records /= 20
			}
			c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(6, "bench"))
			if err != nil {
				b.Fatal(err)
			}
			defer c.Close()
			seeds := c.ListenAddrs()
			if sc.random {
				fillRandom(b, seeds, "bench", records)
			} else {
				fill(b, seeds, "bench", records)
			}
			var fetched, handled int64
			var took time.Duration
			for i := 0; b.Loop(); i++ {
				start := time.Now()
				f, h := consumeCounting(b, seeds, fmt.Sprintf("refetch-%d", i), records, sc.hop, sc.spin)
				took += time.Since(start)
				b.Logf("run %d: %d records fetched, %d handler calls (%.3f)", i, f, h, float64(f)/float64(h))
				fetched += f
				handled += h
			}
			b.ReportMetric(float64(fetched)/float64(handled), "fetched/handled")
			b.ReportMetric(float64(handled)/took.Seconds(), "calls/s")
		})
	}
}

var errFirst = errors.New("first delivery fails")

// consumeCounting runs a listener over topic "bench" until n records have
// succeeded and returns the records its client fetched and the handler
// calls made. With hop, each record's first delivery fails.
func consumeCounting(b *testing.B, seeds []string, group string, n int, hop bool, spin time.Duration) (fetched, calls int64) {
	var called, ok atomic.Int64
	done := make(chan struct{})
	h := listener.HandlerFunc(func(ctx context.Context, r *kgo.Record) error {
		called.Add(1)
		if hop {
			if _, retried := retry.FromContext(ctx); !retried {
				return errFirst
			}
		}
		noop(r)
		// CPU spent per record, the way tracing spends it (not a wait).
		for t := time.Now(); time.Since(t) < spin; {
		}
		if ok.Add(1) == int64(n) {
			close(done)
		}
		return nil
	})
	var fc fetchCounter
	opts := []listener.Opt{listener.Group(group), listener.ClientOpts(kgo.WithHooks(&fc)),
		listener.Logger(slog.New(slog.NewTextHandler(io.Discard, nil)))}
	if hop {
		opts = append(opts, listener.Attempts(2), listener.Backoff(strategy.ListBackoff(0)),
			// Each run its own tier, so no run reads another's retries.
			listener.Naming(strategy.Naming{RetrySuffix: "-" + group + "-retry", DLTSuffix: "-" + group + "-dlt"}))
	}
	l, err := listener.New(seeds, "bench", h, opts...)
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- l.Run(ctx) }()
	<-done
	cancel()
	if err := <-errc; err != nil {
		b.Fatal(err)
	}
	return fc.n.Load(), called.Load()
}

// fillRandom produces n records of 100 random bytes each to topic. Unlike
// fill's zeros they do not compress, so a 1 MiB fetch holds about as many
// records as it would of real payloads.
func fillRandom(b *testing.B, seeds []string, topic string, n int) {
	cl, err := kgo.NewClient(kgo.SeedBrokers(seeds...), kgo.DefaultProduceTopic(topic))
	if err != nil {
		b.Fatal(err)
	}
	defer cl.Close()
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range n {
		val := make([]byte, 100)
		for j := range val {
			val[j] = byte(rng.Uint32())
		}
		cl.Produce(context.Background(), &kgo.Record{Key: fmt.Appendf(nil, "%d", i), Value: val}, func(_ *kgo.Record, err error) {
			if err != nil {
				b.Error(err)
			}
		})
	}
	if err := cl.Flush(context.Background()); err != nil {
		b.Fatal(err)
	}
}

// tierBacklog writes n records to partition 0 of the listener's first
// retry tier, each with valid kretry headers due at due.
func tierBacklog(t *testing.T, f fixture, l *listener.Listener, n int, due time.Time) {
	t.Helper()
	for _, topic := range l.Plan().Topics()[1:] {
		f.c.CreateTopic(topic, 1)
	}
	tier := l.Plan().Tiers[0].Topic
	now := time.Now()
	rs := make([]*kgo.Record, n)
	for i := range rs {
		src := &kgo.Record{Topic: f.topic, Offset: int64(i), Timestamp: now}
		st := retry.First(src, now).WithFailure(due, "earlier failure", "*errors.errorString")
		rs[i] = &kgo.Record{Topic: tier, Key: fmt.Appendf(nil, "k%d", i), Value: make([]byte, 100),
			Headers: st.Append(nil, 0)}
	}
	f.c.Produce(rs...)
}

// A backlog of retries already due, waiting in a tier when the listener
// starts, flows like the main topic: its partition is not paused after
// the first poll (which made franz-go drop every record of it still
// buffered and fetch them all again), so each record is fetched once.
func TestDueTierBacklogIsFetchedOnce(t *testing.T) {
	const records, perPoll = 3000, 100
	f := newFixture(t, 1)
	var calls atomic.Int64
	done := make(chan struct{})
	h := listener.HandlerFunc(func(ctx context.Context, _ *kgo.Record) error {
		if _, retried := retry.FromContext(ctx); retried && calls.Add(1) == records {
			close(done)
		}
		return nil
	})
	var fc fetchCounter
	// The poll loop's limit, 32 × 100 records, is above the backlog: the
	// partition is never paused as a hog either.
	l := f.listener(t, h, listener.MaxPollRecords(perPoll), listener.Concurrency(32),
		listener.ClientOpts(kgo.WithHooks(&fc)))
	tierBacklog(t, f, l, records, time.Now().Add(-time.Minute))
	stop := started(t, l)
	select {
	case <-done:
	case <-time.After(60 * time.Second):
		t.Fatalf("%d of %d retries handled within 60s", calls.Load(), records)
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	if got := fc.n.Load(); got != records || calls.Load() != records {
		t.Fatalf("%d records fetched and %d handled, want %d of each: the backlog was fetched again", got, calls.Load(), records)
	}
}

// A backlog not yet due keeps the bound the first-poll pause exists for:
// the partition is paused with at most a poll's worth over the limit held,
// and the rest stays in Kafka.
func TestFutureTierBacklogStaysInKafka(t *testing.T) {
	const records, perPoll = 3000, 100
	f := newFixture(t, 1)
	paused := make(chan listener.Event, 1)
	hook := listener.HookFunc(func(e listener.Event) {
		if e.Kind == listener.EventPaused {
			select {
			case paused <- e:
			default:
			}
		}
	})
	h := listener.HandlerFunc(func(context.Context, *kgo.Record) error { return nil })
	l := f.listener(t, h, listener.MaxPollRecords(perPoll), listener.Concurrency(32), listener.Hooks(hook))
	tierBacklog(t, f, l, records, time.Now().Add(time.Hour))
	started(t, l)
	var e listener.Event
	select {
	case e = <-paused:
	case <-time.After(60 * time.Second):
		t.Fatal("the tier partition was not paused within 60s")
	}
	// The client's pause state is applied shortly after the listener's.
	var last listener.PartitionState
	kafkatest.Eventually(t, 30*time.Second, func() bool {
		for _, ps := range l.Partitions() {
			if ps.Topic == e.Topic && ps.Partition == e.Partition {
				last = ps
				return ps.Paused && !ps.Due.IsZero()
			}
		}
		return false
	}, "tier partition not paused in the client until its head is due: %v", lazy(func() string { return fmt.Sprintf("%+v", last) }))
	if last.Held >= 2*perPoll {
		t.Fatalf("tier partition %+v: holds %d records, want under %d: the backlog was fetched into memory", last, last.Held, 2*perPoll)
	}
}

// offsetCounter counts, per partition and offset, how often the client
// buffered a record.
type offsetCounter struct {
	mu   sync.Mutex
	seen map[[2]int64]int
}

func (c *offsetCounter) OnFetchRecordBuffered(r *kgo.Record) {
	c.mu.Lock()
	if c.seen == nil {
		c.seen = map[[2]int64]int{}
	}
	c.seen[[2]int64{int64(r.Partition), r.Offset}]++
	c.mu.Unlock()
}

func (c *offsetCounter) twice() (n int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, k := range c.seen {
		n += k - 1
	}
	return n
}

// Partition 1's handler blocks with 300 records queued; then 500 records
// come for partition 0, whose handler blocks too, and the poll loop's limit
// (4 × 100) is reached with 100 of them polled and the rest still buffered
// in the client. Both partitions are paused as hogs. Partition 0's
// buffered records are taken before the client pauses it — they are in
// memory already, and it then holds no more than a hog paused at once
// could — so none is dropped and fetched again.
func TestHogPauseFetchesNothingTwice(t *testing.T) {
	const perPoll = 100
	f := newFixture(t, 2)
	produce := func(partition int32, n int) {
		rs := make([]*kgo.Record, n)
		for i := range rs {
			rs[i] = rec(f.topic, fmt.Sprintf("p%d-%d", partition, i))
			rs[i].Partition = partition
		}
		f.c.ProduceToPartitions(rs...)
	}
	produce(1, 300)
	g := newGated(800)
	defer g.open()
	var oc offsetCounter
	l := f.listener(t, g, listener.MaxPollRecords(perPoll), listener.Concurrency(4),
		listener.ClientOpts(kgo.WithHooks(&oc)))
	stop := started(t, l)
	select {
	case <-g.entered:
	case <-time.After(60 * time.Second):
		t.Fatal("no record handled within 60s")
	}
	produce(0, 500)
	var last listener.PartitionState
	kafkatest.Eventually(t, 30*time.Second, func() bool {
		for _, ps := range l.Partitions() {
			if ps.Topic == f.topic && ps.Partition == 0 {
				last = ps
				return ps.Full && ps.Held == 500
			}
		}
		return false
	}, "partition 0 was not paused as a hog holding all 500 of its records: %v", lazy(func() string { return fmt.Sprintf("%+v", last) }))
	g.finish(t, stop, &oc)
}

// lazy formats as what its function returns when it is printed.
type lazy func() string

func (f lazy) String() string { return f() }

// At its limit of held records, the poll loop still takes the rest of the
// fetch the client was handing out: those records are in memory already,
// and the client starts its next fetch only once it has handed out the
// last one, so stopping halfway would make fetching and handling take
// turns. Here the limit is 400 records (4 × MaxPollRecords) and the handler
// blocks on the first record: the partition ends up holding all 3,000 of
// its records, fetched once, instead of about 500 with the rest dropped
// from the client's buffers to be fetched again.
func TestPollTakesTheRestOfAFetchAtTheLimit(t *testing.T) {
	const perPoll, n = 100, 3000
	f := newFixture(t, 1)
	rs := make([]*kgo.Record, n)
	for i := range rs {
		rs[i] = rec(f.topic, fmt.Sprintf("k%d", i))
	}
	f.c.ProduceToPartitions(rs...)
	g := newGated(n)
	defer g.open()
	var oc offsetCounter
	l := f.listener(t, g, listener.MaxPollRecords(perPoll), listener.Concurrency(1),
		listener.ClientOpts(kgo.WithHooks(&oc)))
	stop := started(t, l)
	var last listener.PartitionState
	kafkatest.Eventually(t, 30*time.Second, func() bool {
		for _, ps := range l.Partitions() {
			if ps.Topic == f.topic {
				last = ps
				return ps.Held == n
			}
		}
		return false
	}, "the partition does not hold the whole fetch of %d records: %v", n, lazy(func() string { return fmt.Sprintf("%+v", last) }))
	g.finish(t, stop, &oc)
}

// gated is a handler whose calls all wait until it is opened; it notes
// the first call (entered) and closes done once it has handled want
// records.
type gated struct {
	release, entered, done chan struct{}
	enter, opened          sync.Once
	total                  atomic.Int64
	want                   int64
}

func newGated(want int64) *gated {
	return &gated{release: make(chan struct{}), entered: make(chan struct{}), done: make(chan struct{}), want: want}
}

func (g *gated) Handle(context.Context, *kgo.Record) error {
	g.enter.Do(func() { close(g.entered) })
	<-g.release
	if g.total.Add(1) == g.want {
		close(g.done)
	}
	return nil
}

// open lets every call through, now and later; opening again does nothing.
func (g *gated) open() { g.opened.Do(func() { close(g.release) }) }

// finish opens g, waits up to a minute for every record to be handled,
// stops the listener and fails the test if any record was fetched twice.
func (g *gated) finish(t *testing.T, stop func() error, oc *offsetCounter) {
	t.Helper()
	g.open()
	select {
	case <-g.done:
	case <-time.After(60 * time.Second):
		t.Fatalf("%d of %d records handled", g.total.Load(), g.want)
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	if n := oc.twice(); n > 0 {
		t.Fatalf("%d records fetched twice", n)
	}
}
