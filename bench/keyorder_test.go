package main

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

// Small runs of kretry-keyorder on kfake: S1 and S2 count exactly the
// records given; with repeated keys records follow their key; S3F sees
// every follower after its key's first record. No figure is checked.
func TestKeyOrderSystem(t *testing.T) {
	t.Run("s1", func(t *testing.T) { peerHappyPath(t, kretryKeyOrderSystem{}, peerRecords) })
	t.Run("s2", func(t *testing.T) {
		res := keyOrderRetryHop(t, 0)
		if !strings.Contains(res.Note, fmt.Sprintf("; 0 of %d records followed", peerRecords)) {
			t.Fatalf("note %q: with unique keys no record may follow", res.Note)
		}
	})
	t.Run("s2-keys", func(t *testing.T) {
		res := keyOrderRetryHop(t, 20)
		if strings.Contains(res.Note, "; 0 of ") || !strings.Contains(res.Note, "records followed") {
			t.Fatalf("note %q: with 20 keys records must follow", res.Note)
		}
	})
	t.Run("s3f", func(t *testing.T) {
		env, ctx := peerEnv(t), peerCtx(t, 2*time.Minute)
		const n, followers = 200, 4
		if err := env.CreateTopic(ctx, "s3f", 4, nil); err != nil {
			t.Fatal(err)
		}
		res, err := followerLateness(ctx, env, "s3f", n, 1000, 4, followers, 200*time.Millisecond)
		if err != nil {
			t.Fatal(err)
		}
		keys := n / (followers + 1)
		if res.First.Samples != keys || res.Gap.Samples != n-keys || res.Due.Samples != n-keys {
			t.Fatalf("%d first retries, %d follower gaps, %d follower due lateness; want %d, %d, %d",
				res.First.Samples, res.Gap.Samples, res.Due.Samples, keys, n-keys, n-keys)
		}
		if strings.Contains(res.Note, "handled") {
			t.Fatalf("note %q: every follower must come after its key's first record, from the tier", res.Note)
		}
		t.Logf("gap p50 %v, p99 %v; vs due p50 %v, p99 %v", res.Gap.P50, res.Gap.P99, res.Due.P50, res.Due.P99)
	})
}

// keyOrderRetryHop runs kretry-keyorder's S2 over peerRecords records, with
// keys repeating over keys distinct ones (0: unique keys).
func keyOrderRetryHop(t *testing.T, keys int) Throughput {
	env, ctx := peerEnv(t), peerCtx(t, 3*time.Minute)
	in := RetryHopInput{Topic: "s2", Group: "s2-group", Prefix: "s2", Partitions: peerPartitions, Records: peerRecords}
	if err := env.CreateTopic(ctx, in.Topic, in.Partitions, nil); err != nil {
		t.Fatal(err)
	}
	if err := env.FillS2(ctx, in.Topic, in.Records, keys); err != nil {
		t.Fatal(err)
	}
	res, err := kretryKeyOrderSystem{}.RetryHop(ctx, env, in)
	if err != nil {
		t.Fatal(err)
	}
	peerCheckThroughput(t, res, peerRecords)
	return res
}
