package main

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/kretry/kretry/retry"
)

func TestForwardRates(t *testing.T) {
	got := forwardRates(900, []time.Duration{time.Millisecond, time.Second, 5 * time.Second})
	if want := []float64{900, 600, 300}; !slices.Equal(got, want) {
		t.Fatalf("forwardRates = %v, want %v", got, want)
	}
}

// The floor produces at the rates asked for to the topics given, each
// record carrying the kretry headers of its tier, and reports what the
// topics held before.
func TestFloor(t *testing.T) {
	env := peerEnv(t)
	ctx := peerCtx(t, time.Minute)
	topics := []string{"floor-t1", "floor-t2"}
	for j, topic := range topics {
		if err := env.CreateTopic(ctx, topic, 4, nil); err != nil {
			t.Fatal(err)
		}
		if err := env.FillEven(ctx, topic, 40/(j+1), 4); err != nil {
			t.Fatal(err)
		}
	}
	in := FloorInput{Topics: topics, Partitions: 4, Delays: []time.Duration{10 * time.Millisecond, 20 * time.Millisecond},
		Rates: []float64{200, 100}, Duration: 500 * time.Millisecond, Source: "main", Group: "g"}
	a, err := env.Floor(ctx, in)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(a.Warmed, []int64{40, 20}) {
		t.Errorf("Warmed = %v, want [40 20]", a.Warmed)
	}
	// Each tier sends the records due at each 1 ms tick over 500 ms: its
	// rate × 0.5 s, give or take the tick in flight at the end.
	if a.Samples < 140 || a.Samples > 160 {
		t.Errorf("%d samples, want about 150", a.Samples)
	}
	if a.P50 <= 0 || a.P99 < a.P50 || a.Max < a.P99 {
		t.Errorf("p50 %v, p99 %v, max %v: not ordered", a.P50, a.P99, a.Max)
	}
	after, err := env.records(ctx, topics)
	if err != nil {
		t.Fatal(err)
	}
	for j := range topics {
		if got, want := after[j]-a.Warmed[j], int64(in.Rates[j]*0.5); got < want-5 || got > want+5 {
			t.Errorf("%s: %d records produced, want about %d", topics[j], got, want)
		}
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(env.Brokers...), kgo.ConsumeTopics("floor-t2"),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	var r *kgo.Record
	for r == nil { // skip FillEven's records, which carry no headers
		fs := cl.PollFetches(ctx)
		if err := fs.Err0(); err != nil {
			t.Fatal(err)
		}
		for _, rec := range fs.Records() {
			if r == nil && len(rec.Headers) > 0 {
				r = rec
			}
		}
	}
	st, ok, err := retry.Decode(r.Headers)
	if err != nil || !ok {
		t.Fatalf("Decode: ok %v, %v", ok, err)
	}
	if st.Attempt != 3 || st.OriginalTopic != "main" || st.Group != "g" || len(r.Value) != 100 {
		t.Errorf("tier 2 record: attempt %d, original topic %q, group %q, %d B value; want 3, main, g, 100 B",
			st.Attempt, st.OriginalTopic, st.Group, len(r.Value))
	}
}

// kretry's S3 runs a floor on new topics and a fresh phase, then a warm
// phase on the same topics and group, which sees only its own records, then
// a floor on its tiers.
func TestS3Phases(t *testing.T) {
	env := peerEnv(t)
	cfg := config{scenarios: map[string]bool{"s3": true}, timeout: time.Minute,
		s3Records: 300, s3Warmup: 200, s3Partitions: 4, s3Rate: 1000,
		s3Delays: []time.Duration{20 * time.Millisecond, 50 * time.Millisecond}, s3Floor: 200 * time.Millisecond}
	b := &bench{cfg: cfg, env: env, res: &Results{Started: time.Now(), Skipped: map[string]string{}}}
	if err := b.s3(context.Background(), []System{kretrySystem{}}); err != nil {
		t.Fatal(err)
	}
	if len(b.res.S3) != 2 {
		t.Fatalf("%d S3 results, want 2 (fresh, warm)", len(b.res.S3))
	}
	for i, want := range []struct {
		phase   string
		samples []int
	}{{"fresh", []int{200, 100}}, {"warm", []int{300, 150}}} {
		p := b.res.S3[i]
		if p.Phase != want.phase || p.Records != want.samples[0] {
			t.Errorf("result %d: phase %q with %d records, want %q with %d", i, p.Phase, p.Records, want.phase, want.samples[0])
		}
		for j, tier := range p.Tiers {
			if tier.Samples != want.samples[j] || tier.Early != 0 {
				t.Errorf("%s tier %v: %d samples, %d early; want %d, 0", p.Phase, tier.Delay, tier.Samples, tier.Early, want.samples[j])
			}
			if tier.FloorRatio <= 0 {
				t.Errorf("%s tier %v: ratio to the floor %v, want > 0", p.Phase, tier.Delay, tier.FloorRatio)
			}
		}
	}
	// The fresh phase's floor writes to new topics of its own; the warm
	// phase's to the tiers after both phases, which then held every
	// forward of both.
	if f := b.res.S3[0].Floor; f == nil || f.Samples == 0 || !slices.Equal(f.Warmed, []int64{0, 0}) {
		t.Errorf("fresh phase's floor: %+v, want samples and warmed [0 0]", f)
	}
	if f := b.res.S3[1].Floor; f == nil || f.Samples == 0 || !slices.Equal(f.Warmed, []int64{500, 250}) {
		t.Errorf("warm phase's floor: %+v, want samples and warmed [500 250]", f)
	}
}
