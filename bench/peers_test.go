package main

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
)

// Small runs of the peer systems against embedded kfake: every scenario
// must count exactly the records it was given.

const (
	peerRecords    = 2000
	peerPartitions = 3
)

func peerEnv(t *testing.T) *Env {
	t.Helper()
	c, err := kfake.NewCluster(kfake.NumBrokers(1))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return &Env{Brokers: c.ListenAddrs(), Fake: true}
}

func peerCtx(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// peerProduce produces records from..to-1 to topic, keyed "k<i>",
// partitioned by key, at rate records/s (0: as fast as possible).
func peerProduce(ctx context.Context, env *Env, topic string, from, to, valueBytes, rate int) error {
	cl, err := kgo.NewClient(kgo.SeedBrokers(env.Brokers...), kgo.DefaultProduceTopic(topic))
	if err != nil {
		return err
	}
	defer cl.Close()
	value := []byte(strings.Repeat("v", valueBytes))
	start := time.Now()
	var (
		mu       sync.Mutex
		firstErr error
	)
	for i := from; i < to; i++ {
		if rate > 0 {
			if d := time.Until(start.Add(time.Duration(i-from) * time.Second / time.Duration(rate))); d > 0 {
				time.Sleep(d) // pacing the producer at the input rate: the workload, not a wait
			}
		}
		cl.Produce(ctx, &kgo.Record{Key: fmt.Appendf(nil, "k%d", i), Value: value}, func(_ *kgo.Record, err error) {
			mu.Lock()
			if err != nil && firstErr == nil {
				firstErr = err
			}
			mu.Unlock()
		})
	}
	if err := cl.Flush(ctx); err != nil {
		return err
	}
	mu.Lock()
	defer mu.Unlock()
	return firstErr
}

func peerFill(t *testing.T, ctx context.Context, env *Env, topic string, partitions, n, valueBytes int) {
	t.Helper()
	if err := peersCreateTopics(ctx, env.Brokers, partitions, topic); err != nil {
		t.Fatal(err)
	}
	if err := peerProduce(ctx, env, topic, 0, n, valueBytes, 0); err != nil {
		t.Fatal(err)
	}
}

func peerHappyPath(t *testing.T, sys HappyPather, n int) {
	env := peerEnv(t)
	ctx := peerCtx(t, 2*time.Minute)
	in := HappyPathInput{Topic: "s1", Group: "s1-group", Partitions: peerPartitions, Records: n, ValueBytes: 100}
	peerFill(t, ctx, env, in.Topic, in.Partitions, in.Records, in.ValueBytes)
	res, err := sys.HappyPath(ctx, env, in)
	if err != nil {
		t.Fatal(err)
	}
	// S1 is timed over the records after the first tenth, for every system.
	peerCheckThroughput(t, res, n-n/10)
}

func peerRetryHop(t *testing.T, sys RetryHopper, n int) {
	env := peerEnv(t)
	ctx := peerCtx(t, 3*time.Minute)
	in := RetryHopInput{Topic: "s2", Group: "s2-group", Prefix: "s2-run1-", Partitions: peerPartitions, Records: n}
	peerFill(t, ctx, env, in.Topic, in.Partitions, in.Records, 100)
	res, err := sys.RetryHop(ctx, env, in)
	if err != nil {
		t.Fatal(err)
	}
	peerCheckThroughput(t, res, n)
}

func peerCheckThroughput(t *testing.T, res Throughput, n int) {
	t.Helper()
	if res.Records != n {
		t.Fatalf("Records = %d, want %d", res.Records, n)
	}
	if res.Elapsed <= 0 {
		t.Fatalf("Elapsed = %v, want > 0", res.Elapsed)
	}
	t.Logf("%d records in %v: %.0f records/s; note: %s", res.Records, res.Elapsed,
		float64(res.Records)/res.Elapsed.Seconds(), res.Note)
}

func peerPrecision(t *testing.T, sys Precisioner, in PrecisionInput) {
	env := peerEnv(t)
	ctx := peerCtx(t, 3*time.Minute)
	if err := peersCreateTopics(ctx, env.Brokers, in.Partitions, in.Topic); err != nil {
		t.Fatal(err)
	}
	ready := make(chan struct{})
	in.Ready = func() { close(ready) }
	type result struct {
		p   Precision
		err error
	}
	done := make(chan result, 1)
	go func() {
		p, err := sys.Precision(ctx, env, in)
		done <- result{p, err}
	}()
	select {
	case <-ready:
	case r := <-done:
		t.Fatalf("Precision returned before Ready: %v", r.err)
	case <-ctx.Done():
		t.Fatal("never ready")
	}
	if err := peerProduce(ctx, env, in.Topic, 0, in.Records, 100, in.Rate); err != nil {
		t.Fatal(err)
	}
	r := <-done
	if r.err != nil {
		t.Fatal(r.err)
	}
	if len(r.p.Lateness) != len(in.Delays) {
		t.Fatalf("%d tiers, want %d", len(r.p.Lateness), len(in.Delays))
	}
	for tier, l := range r.p.Lateness {
		want := 0
		for i := 0; i < in.Records; i++ {
			if in.Fails(i) > tier {
				want++
			}
		}
		if len(l) != want {
			t.Errorf("tier %d (%v): %d samples, want %d", tier, in.Delays[tier], len(l), want)
		}
		early, worst, sum := 0, time.Duration(0), time.Duration(0)
		for _, d := range l {
			if d < 0 {
				early++
			}
			worst = max(worst, d)
			sum += d
		}
		if len(l) > 0 {
			t.Logf("tier %d (%v): %d samples, mean lateness %v, max %v, early %d", tier, in.Delays[tier], len(l),
				sum/time.Duration(len(l)), worst, early)
		}
	}
	t.Logf("note: %s", r.p.Note)
}

func TestPeerWatermillHappyPath(t *testing.T) { peerHappyPath(t, watermillSystem{}, peerRecords) }

func TestPeerWatermillRetryHop(t *testing.T) { peerRetryHop(t, watermillSystem{}, peerRecords) }

func TestPeerWatermillPrecision(t *testing.T) {
	peerPrecision(t, watermillSystem{}, PrecisionInput{
		Topic: "s3", Group: "s3-group", Prefix: "s3-run1-", Partitions: peerPartitions,
		Records: 60, Rate: 200, Delays: []time.Duration{20 * time.Millisecond, 100 * time.Millisecond, 300 * time.Millisecond},
	})
}

// The issue's tiers, which the Retry middleware matches exactly.
func TestPeerWatermillPrecisionIssueTiers(t *testing.T) {
	peerPrecision(t, watermillSystem{}, PrecisionInput{
		Topic: "s3", Group: "s3-group", Prefix: "s3-run1-", Partitions: peerPartitions,
		Records: 3, Rate: 100, Delays: []time.Duration{100 * time.Millisecond, time.Second, 5 * time.Second},
	})
}

func TestPeerWatermillRetryFit(t *testing.T) {
	for _, c := range []struct {
		delays, want []time.Duration
	}{
		{[]time.Duration{100 * time.Millisecond, time.Second, 5 * time.Second}, nil},
		{[]time.Duration{time.Second, 2 * time.Second, 4 * time.Second}, nil},
		{[]time.Duration{time.Second}, nil},
		{[]time.Duration{time.Second, 2 * time.Second, 3 * time.Second}, nil}, // 4 s capped at 3 s
		{[]time.Duration{time.Second, 3 * time.Second, 4 * time.Second, 10 * time.Second},
			[]time.Duration{time.Second, 3 * time.Second, 9 * time.Second, 10 * time.Second}},
	} {
		r, got := watermillRetryFor(c.delays)
		want := c.want
		if want == nil {
			want = c.delays
		}
		if !watermillSameDelays(got, want) {
			t.Errorf("%v: waits %v, want %v", c.delays, got, want)
		}
		if r.MaxRetries != len(c.delays) || r.RandomizationFactor != 0 {
			t.Errorf("%v: %+v", c.delays, r)
		}
	}
}

func TestPeerKonsumerHappyPath(t *testing.T) { peerHappyPath(t, konsumerSystem{}, peerRecords) }

// konsumer's retry hop costs about a second per record at its default
// Concurrency 1 (a synchronous kafka-go Writer with BatchTimeout 1 s), so
// this run is small.
func TestPeerKonsumerRetryHop(t *testing.T) { peerRetryHop(t, konsumerSystem{}, 10) }

func TestPeerKonsumerPrecisionUnsupported(t *testing.T) {
	_, err := konsumerSystem{}.Precision(context.Background(), nil, PrecisionInput{})
	if !errors.Is(err, ErrUnsupported) {
		t.Fatalf("err = %v, want ErrUnsupported", err)
	}
	t.Log(err)
}
