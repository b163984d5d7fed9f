package main

import (
	"context"
	"fmt"
	"io"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/kretry/kretry/listener"
	"github.com/kretry/kretry/retry"
	"github.com/kretry/kretry/strategy"
)

// kretryKeyOrderSystem runs S1 and S2 as kretrySystem does — the same
// handlers, the same listener settings — with listener.KeyOrder() (its
// lane assignor, MaxKeysInRetry at its default). Not in the default
// -systems (docs/benchmarks.md, "Key order").
//
// In S2 a record whose key is in retry when it is read from the main topic
// follows it into the tier without a handler call; its one handler call
// is from the tier, with a retry state (Follower set), and succeeds, as
// every S2 retry does. With S2's default input every key is unique and no
// record ever follows; -s2-keys makes keys repeat.
type kretryKeyOrderSystem struct{}

func (kretryKeyOrderSystem) Name() string { return "kretry-keyorder" }

func (kretryKeyOrderSystem) HappyPath(ctx context.Context, env *Env, in HappyPathInput) (Throughput, error) {
	tr := NewTracker(in.Records, nil)
	h := listener.HandlerFunc(func(_ context.Context, r *kgo.Record) error {
		tr.Begin(string(r.Key))
		tr.SucceededIn(r.Partition)
		return nil
	})
	l, err := listener.New(env.Brokers, in.Topic, h, listener.Group(in.Group), listener.Logger(quietLogger()), listener.KeyOrder())
	if err != nil {
		return Throughput{}, err
	}
	if err := runListener(ctx, l, tr); err != nil {
		return Throughput{}, err
	}
	return tr.Throughput("KeyOrder"), nil
}

func (kretryKeyOrderSystem) RetryHop(ctx context.Context, env *Env, in RetryHopInput) (Throughput, error) {
	tr := NewTracker(in.Records, nil)
	var followers atomic.Int64
	h := listener.HandlerFunc(func(ctx context.Context, r *kgo.Record) error {
		tr.Begin(string(r.Key))
		st, retried := retry.FromContext(ctx)
		if !retried {
			return errFail
		}
		if st.Follower {
			followers.Add(1)
		}
		tr.SucceededIn(r.Partition)
		return nil
	})
	l, err := listener.New(env.Brokers, in.Topic, h, listener.Group(in.Group), listener.Logger(quietLogger()),
		listener.Attempts(2), listener.Backoff(strategy.ListBackoff(0)), listener.KeyOrder())
	if err != nil {
		return Throughput{}, err
	}
	if err := runListener(ctx, l, tr); err != nil {
		return Throughput{}, err
	}
	return tr.EndToEnd(fmt.Sprintf("1 tier, 0 ms, acks=all, KeyOrder; %d of %d records followed their key (one handler call, from the tier)",
		followers.Load(), in.Records)), nil
}

// keyOrderPairs are the ratios the key-order section reports, in the same
// repetitions.
var keyOrderPairs = [][2]string{{"kretry-keyorder", "kretry"}, {"kretry-keyorder", "raw"}, {"kretry", "raw"}}

// printKeyOrderRatios writes, when kretry-keyorder ran in S1 or S2, the
// ratios of each pair of keyOrderPairs that ran (printPairedRatios).
func printKeyOrderRatios(w io.Writer, r *Results) {
	printPairedRatios(w, r, "Key order: paired ratios", keyOrderPairs, "kretry-keyorder")
}

// FillS2 fills S2's topic: n records of 100 B, with unique keys (Fill)
// or, when keys > 0, keys that repeat (FillKeys: -s2-keys).
func (e *Env) FillS2(ctx context.Context, topic string, n, keys int) error {
	if keys > 0 {
		return e.FillKeys(ctx, topic, n, 100, keys)
	}
	return e.Fill(ctx, topic, n, 100, nil)
}

// FillKeys is Fill with keys that repeat: record i has key "k<i mod keys>".
func (e *Env) FillKeys(ctx context.Context, topic string, n, valueBytes, keys int) error {
	p, err := newProducer(e, kgo.DefaultProduceTopic(topic), kgo.ProducerLinger(5*time.Millisecond), kgo.MaxBufferedRecords(100_000))
	if err != nil {
		return err
	}
	val := randomBytes(valueBytes)
	for i := range n {
		p.send(ctx, &kgo.Record{Key: fmt.Appendf(nil, "k%d", i%keys), Value: val})
	}
	return p.finish(ctx, "fill "+topic)
}

// FollowerResult is S3F, the lateness of followers under key order: each
// key's first record fails once and waits Delay in the tier; the key's next
// Followers records, produced right after it, follow it there.
type FollowerResult struct {
	System     string        `json:"system"`
	Records    int           `json:"records"`
	Rate       int           `json:"rate"`
	Partitions int           `json:"partitions"`
	Followers  int           `json:"followers_per_key"`
	Delay      time.Duration `json:"delay_ns"`
	// First is the lateness of each key's first record's retry: handled −
	// (failed + Delay), as in S3.
	First TierLateness `json:"first_retry_lateness"`
	// Gap is, for each follower, the time from the return of the
	// successful handler call of the record of its key just before it to
	// its own handler call.
	Gap TierLateness `json:"follower_gap"`
	// Due is, for each follower, its handler call − its due time (the
	// kretry-due it carries: its key's last publish's, when it followed).
	Due TierLateness `json:"follower_lateness_vs_due"`
	// SinceFirst is, for the j-th follower of a key, its handler call −
	// the return of the key's first record's successful retry.
	SinceFirst []TierLateness `json:"since_first_by_position"`
	Note       string         `json:"note,omitempty"`
}

// s3f measures follower lateness with kretry-keyorder (the only system
// that orders keys): -s3f-records records over -s3f-partitions partitions
// at -s3f-rate per second, in groups of 1 + -s3f-followers consecutive
// records of one key; a key's first record fails once (one tier of
// -s3f-delay), every other record succeeds at its first handler call.
func (b *bench) s3f(ctx context.Context, systems []System) error {
	if !slices.ContainsFunc(systems, func(s System) bool { return s.Name() == "kretry-keyorder" }) {
		b.skip("s3f", kretryKeyOrderSystem{}, fmt.Errorf("%w: s3f runs for kretry-keyorder only (add it to -systems)", ErrUnsupported))
		return nil
	}
	topic := b.name("s3f", "kretry-keyorder")
	if err := b.env.CreateTopic(ctx, topic, b.cfg.s3fPartitions, nil); err != nil {
		return err
	}
	defer b.forget(ctx, topic)
	sctx, cancel := context.WithTimeout(ctx, b.cfg.timeout)
	defer cancel()
	res, err := followerLateness(sctx, b.env, topic, b.cfg.s3fRecords, b.cfg.s3fRate, b.cfg.s3fPartitions, b.cfg.s3fFollowers, b.cfg.s3fDelay)
	if err != nil {
		return err
	}
	b.res.S3F = append(b.res.S3F, res)
	return nil
}

// keyTimes is what s3f's handler knows of one key.
type keyTimes struct {
	failed    time.Time // its first record's failure
	first     time.Time // its first record's successful retry returned
	last      time.Time // the latest successful call of its records returned
	followers int       // its followers handled so far
}

func followerLateness(ctx context.Context, env *Env, topic string, n, rate, partitions, followers int, delay time.Duration) (FollowerResult, error) {
	group := topic + "-g"
	tr := NewTracker(n, nil)
	var (
		mu         sync.Mutex
		keys       = map[string]*keyTimes{}
		first      []time.Duration
		gap, due   []time.Duration
		sinceFirst = make([][]time.Duration, followers)
		unfollowed int // records of a key that had a record before, handled from the main topic
		outOfOrder int // followers handled before their key's first record succeeded
	)
	h := listener.HandlerFunc(func(ctx context.Context, r *kgo.Record) error {
		now := time.Now()
		tr.Begin(string(r.Key))
		st, retried := retry.FromContext(ctx)
		mu.Lock()
		k := keys[string(r.Key)]
		switch {
		case !retried && k == nil:
			keys[string(r.Key)] = &keyTimes{failed: time.Now()}
			mu.Unlock()
			return errFail
		case !retried:
			unfollowed++
		case !st.Follower:
			first = append(first, now.Sub(k.failed.Add(delay)))
		default:
			if k == nil || k.first.IsZero() {
				outOfOrder++
				break
			}
			gap = append(gap, now.Sub(k.last))
			due = append(due, now.Sub(st.Due))
			if k.followers < followers {
				sinceFirst[k.followers] = append(sinceFirst[k.followers], now.Sub(k.first))
			}
			k.followers++
		}
		mu.Unlock()
		tr.SucceededIn(r.Partition)
		t := time.Now()
		mu.Lock()
		if k != nil {
			if retried && !st.Follower {
				k.first = t
			}
			k.last = t
		}
		mu.Unlock()
		return nil
	})
	ready := make(chan struct{}, 1)
	hook := listener.HookFunc(func(e listener.Event) {
		if e.Kind == listener.EventAssigned {
			select {
			case ready <- struct{}{}:
			default:
			}
		}
	})
	l, err := listener.New(env.Brokers, topic, h, listener.Group(group), listener.Logger(quietLogger()),
		listener.Attempts(2), listener.Backoff(strategy.ListBackoff(delay)), listener.KeyOrder(), listener.Hooks(hook))
	if err != nil {
		return FollowerResult{}, err
	}
	prodErr := make(chan error, 1)
	go func() {
		select {
		case <-ready:
			// Groups of consecutive records of one key, on one partition
			// (franz-go's default partitioner hashes the key).
			group := followers + 1
			prodErr <- env.produceAtRate(ctx, topic, n, rate, func(i int) []byte { return fmt.Appendf(nil, "k%d", i/group) })
		case <-ctx.Done():
			prodErr <- ctx.Err()
		}
	}()
	if err := runListener(ctx, l, tr); err != nil {
		return FollowerResult{}, err
	}
	if err := <-prodErr; err != nil {
		return FollowerResult{}, err
	}
	mu.Lock()
	defer mu.Unlock()
	res := FollowerResult{System: "kretry-keyorder", Records: n, Rate: rate, Partitions: partitions, Followers: followers, Delay: delay,
		First: summarize(delay, first), Gap: summarize(0, gap), Due: summarize(0, due)}
	for _, s := range sinceFirst {
		res.SinceFirst = append(res.SinceFirst, summarize(0, s))
	}
	res.Note = fmt.Sprintf("KeyOrder, 1 tier of %v, FetchMaxWait %v (hooks on: EventAssigned)", delay, listener.DefaultFetchMaxWait)
	if unfollowed > 0 {
		res.Note += fmt.Sprintf("; %d records of a key already seen were handled from the main topic (their key was no longer in retry)", unfollowed)
	}
	if outOfOrder > 0 {
		res.Note += fmt.Sprintf("; %d followers handled before their key's first record succeeded", outOfOrder)
	}
	return res, nil
}

// ms3 is ms to the microsecond: a follower's gap is a few of them.
func ms3(d time.Duration) string { return fmt.Sprintf("%.3f ms", float64(d)/float64(time.Millisecond)) }

// printFollowers writes S3F's table.
func printFollowers(w io.Writer, r *Results) {
	if len(r.S3F) == 0 {
		return
	}
	fmt.Fprintf(w, "### S3F follower lateness (key order)\n\n| system | records | rate | partitions | followers per key | measure | samples | p50 | p99 | max |\n|---|---:|---:|---:|---:|---|---:|---:|---:|---:|\n")
	for _, f := range r.S3F {
		row := func(what string, t TierLateness) {
			fmt.Fprintf(w, "| %s | %d | %d/s | %d | %d | %s | %d | %s | %s | %s |\n", f.System, f.Records, f.Rate, f.Partitions, f.Followers,
				what, t.Samples, ms3(t.P50), ms3(t.P99), ms3(t.Max))
		}
		row(fmt.Sprintf("first record's retry: handled − (failed + %v)", f.Delay), f.First)
		row("follower: called − previous record of its key returned", f.Gap)
		row("follower: called − its due time", f.Due)
		for j, s := range f.SinceFirst {
			row(fmt.Sprintf("follower %d: called − first record's retry returned", j+1), s)
		}
	}
	fmt.Fprintln(w)
	for _, f := range r.S3F {
		fmt.Fprintf(w, "%s: %s.\n", f.System, f.Note)
	}
	fmt.Fprintln(w)
}
