package main

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/kretry/kretry/retry"
)

func TestForwardRates(t *testing.T) {
	got := forwardRates(900, []time.Duration{time.Millisecond, time.Second, 5 * time.Second})
	if want := []float64{900, 600, 300}; !slices.Equal(got, want) {
		t.Fatalf("forwardRates = %v, want %v", got, want)
	}
}

// The floor writes its warm-up records first, then produces at the rates
// asked for, each record carrying the kretry headers of its tier.
func TestFloor(t *testing.T) {
	env := peerEnv(t)
	ctx := peerCtx(t, time.Minute)
	in := FloorInput{Prefix: "floor", Partitions: 4, Delays: []time.Duration{10 * time.Millisecond, 20 * time.Millisecond},
		Rates: []float64{200, 100}, Warm: []int{40, 20}, Duration: 500 * time.Millisecond, Source: "main", Group: "g"}
	a, err := env.Floor(ctx, in)
	if err != nil {
		t.Fatal(err)
	}
	// Each tier sends the records due at each 1 ms tick over 500 ms: its
	// rate × 0.5 s, give or take the tick in flight at the end.
	if a.Samples < 140 || a.Samples > 160 {
		t.Errorf("%d samples, want about 150", a.Samples)
	}
	if a.P50 <= 0 || a.P99 < a.P50 || a.Max < a.P99 {
		t.Errorf("p50 %v, p99 %v, max %v: not ordered", a.P50, a.P99, a.Max)
	}
	adm := kadm.NewClient(newTestClient(t, env))
	ends, err := adm.ListEndOffsets(ctx, "floor-t1", "floor-t2")
	if err != nil {
		t.Fatal(err)
	}
	for j, topic := range []string{"floor-t1", "floor-t2"} {
		var n int64
		ends.Each(func(o kadm.ListedOffset) {
			if o.Topic == topic {
				n += o.Offset
			}
		})
		if lo, hi := int64(in.Warm[j])+int64(in.Rates[j]*0.5)-5, int64(in.Warm[j])+int64(in.Rates[j]*0.5)+5; n < lo || n > hi {
			t.Errorf("%s holds %d records, want %d warm-up records + about %v", topic, n, in.Warm[j], in.Rates[j]*0.5)
		}
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(env.Brokers...), kgo.ConsumeTopics("floor-t2"),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	fs := cl.PollRecords(ctx, 1)
	if err := fs.Err0(); err != nil {
		t.Fatal(err)
	}
	r := fs.Records()[0]
	st, ok, err := retry.Decode(r.Headers)
	if err != nil || !ok {
		t.Fatalf("Decode: ok %v, %v", ok, err)
	}
	if st.Attempt != 3 || st.OriginalTopic != "main" || st.Group != "g" || len(r.Value) != 100 {
		t.Errorf("tier 2 record: attempt %d, original topic %q, group %q, %d B value; want 3, main, g, 100 B",
			st.Attempt, st.OriginalTopic, st.Group, len(r.Value))
	}
}

func newTestClient(t *testing.T, env *Env) *kgo.Client {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(env.Brokers...))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return cl
}

// kretry's S3 runs a fresh phase, then the floor, then a warm phase on the
// same topics and group: the warm phase sees only its own records.
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
			if (p.Phase == "warm") != (tier.FloorRatio > 0) {
				t.Errorf("%s tier %v: ratio to the floor %v", p.Phase, tier.Delay, tier.FloorRatio)
			}
		}
	}
	if f := b.res.S3[1].Floor; f == nil || f.Samples == 0 || !slices.Equal(f.Warmed, []int{200, 100}) {
		t.Errorf("warm phase's floor: %+v, want samples and warmed [200 100]", f)
	}
}
