package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// The Spring peer needs a real broker and a JVM:
//
//	KRETRY_BROKERS=127.0.0.1:PORT go test -count=1 -run Spring -v .
//
// KRETRY_SPRING_S1, _S2 and _S3 change the record counts (20000, 5000, 3000).

func springTestEnv(t *testing.T) *Env {
	t.Helper()
	brokers := os.Getenv("KRETRY_BROKERS")
	if brokers == "" {
		t.Skip("KRETRY_BROKERS is not set")
	}
	if _, err := exec.LookPath("java"); err != nil {
		t.Skip("no java on PATH")
	}
	return &Env{Brokers: strings.Split(brokers, ",")}
}

func springTestCount(name string, def int) int {
	if n, err := strconv.Atoi(os.Getenv(name)); err == nil && n > 0 {
		return n
	}
	return def
}

func springTestNames(t *testing.T, scenario string) (topic, group, prefix string) {
	id := fmt.Sprintf("spring-test-%s-%d", scenario, time.Now().UnixNano())
	return id + "-in", id + "-g", id
}

func springTestClient(t *testing.T, env *Env, opts ...kgo.Opt) *kgo.Client {
	t.Helper()
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(env.Brokers...)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return cl
}

func springCreateTopic(t *testing.T, env *Env, topic string, partitions int) {
	t.Helper()
	adm := kadm.NewClient(springTestClient(t, env))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	resp, err := adm.CreateTopic(ctx, int32(partitions), 1, nil, topic)
	if err == nil {
		err = resp.Err
	}
	if err != nil {
		t.Fatalf("create %s: %v", topic, err)
	}
}

// springProduce produces records keyed "k<from>".."k<to-1>" with
// valueBytes-byte values, rate per second (0: as fast as possible).
func springProduce(ctx context.Context, cl *kgo.Client, topic string, from, to, valueBytes, rate int) error {
	value := make([]byte, valueBytes)
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		first error
	)
	start := time.Now()
	for i := from; i < to; i++ {
		if rate > 0 {
			if d := time.Until(start.Add(time.Duration(i-from) * time.Second / time.Duration(rate))); d > 0 {
				time.Sleep(d) // pacing the producer at the input rate: the workload, not a wait
			}
		}
		wg.Add(1)
		cl.Produce(ctx, &kgo.Record{Topic: topic, Key: []byte("k" + strconv.Itoa(i)), Value: value},
			func(_ *kgo.Record, err error) {
				if err != nil {
					mu.Lock()
					if first == nil {
						first = err
					}
					mu.Unlock()
				}
				wg.Done()
			})
	}
	wg.Wait()
	return first
}

func springFill(t *testing.T, env *Env, topic string, partitions, n, valueBytes int) {
	t.Helper()
	springCreateTopic(t, env, topic, partitions)
	cl := springTestClient(t, env)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := springProduce(ctx, cl, topic, 0, n, valueBytes, 0); err != nil {
		t.Fatalf("fill %s: %v", topic, err)
	}
}

func TestSpringFakeUnsupported(t *testing.T) {
	_, err := springSystem{}.HappyPath(context.Background(), &Env{Fake: true}, HappyPathInput{Topic: "t", Records: 1, Partitions: 1})
	if !errors.Is(err, ErrUnsupported) {
		t.Fatalf("HappyPath on kfake: %v, want ErrUnsupported", err)
	}
	_, err = springSystem{}.Precision(context.Background(), &Env{Fake: true}, PrecisionInput{Delays: []time.Duration{time.Second}})
	if !errors.Is(err, ErrUnsupported) {
		t.Fatalf("Precision on kfake: %v, want ErrUnsupported", err)
	}
}

func TestSpringHappyPath(t *testing.T) {
	env := springTestEnv(t)
	topic, group, _ := springTestNames(t, "s1")
	in := HappyPathInput{Topic: topic, Group: group, Partitions: 6, Records: springTestCount("KRETRY_SPRING_S1", 20000), ValueBytes: 100}
	springFill(t, env, in.Topic, in.Partitions, in.Records, in.ValueBytes)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	var sys HappyPather = springSystem{}
	res, err := sys.HappyPath(ctx, env, in)
	if err != nil {
		t.Fatal(err)
	}
	// S1 is timed over the records after the first tenth, as for every system.
	if want := in.Records - in.Records/10; res.Records != want || res.Elapsed <= 0 {
		t.Fatalf("got %d timed records in %s, want %d (the last 90%% of %d)", res.Records, res.Elapsed, want, in.Records)
	}
	t.Logf("S1 spring: %d records in %s = %.0f records/s (%s)", res.Records, res.Elapsed,
		float64(res.Records)/res.Elapsed.Seconds(), res.Note)
}

func TestSpringRetryHop(t *testing.T) {
	env := springTestEnv(t)
	topic, group, prefix := springTestNames(t, "s2")
	in := RetryHopInput{Topic: topic, Group: group, Prefix: prefix, Partitions: 6, Records: springTestCount("KRETRY_SPRING_S2", 5000)}
	springFill(t, env, in.Topic, in.Partitions, in.Records, 100)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	var sys RetryHopper = springSystem{}
	res, err := sys.RetryHop(ctx, env, in)
	if err != nil {
		t.Fatal(err)
	}
	if res.Records != in.Records || res.Elapsed <= 0 {
		t.Fatalf("got %d records in %s, want %d", res.Records, res.Elapsed, in.Records)
	}
	t.Logf("S2 spring: %d records in %s = %.0f records/s (%s)", res.Records, res.Elapsed,
		float64(res.Records)/res.Elapsed.Seconds(), res.Note)

	// The one retry topic is named with the prefix and has the input's partitions.
	adm := kadm.NewClient(springTestClient(t, env))
	td, err := adm.ListTopics(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{prefix + "-retry", prefix + "-dlt"} {
		d, ok := td[name]
		if !ok {
			t.Errorf("no topic %s; topics with the prefix: %v", name, springTopicsWith(td, prefix))
		} else if len(d.Partitions) != in.Partitions {
			t.Errorf("%s has %d partitions, want %d", name, len(d.Partitions), in.Partitions)
		}
	}
}

func springTopicsWith(td kadm.TopicDetails, prefix string) []string {
	var out []string
	for name := range td {
		if strings.HasPrefix(name, prefix) {
			out = append(out, name)
		}
	}
	slices.Sort(out)
	return out
}

func TestSpringPrecision(t *testing.T) {
	env := springTestEnv(t)
	topic, group, prefix := springTestNames(t, "s3")
	in := PrecisionInput{Topic: topic, Group: group, Prefix: prefix, Partitions: 6,
		Records: springTestCount("KRETRY_SPRING_S3", 3000), Rate: 1000,
		Delays: []time.Duration{100 * time.Millisecond, time.Second, 5 * time.Second}}
	springCreateTopic(t, env, in.Topic, in.Partitions)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()

	cl := springTestClient(t, env)
	produced := make(chan error, 1)
	readyAt := time.Time{}
	in.Ready = func() {
		readyAt = time.Now()
		go func() { produced <- springProduce(ctx, cl, in.Topic, 0, in.Records, 100, in.Rate) }()
	}
	var sys Precisioner = springSystem{}
	res, err := sys.Precision(ctx, env, in)
	if err != nil {
		t.Fatal(err)
	}
	if readyAt.IsZero() {
		t.Fatal("Ready was never called")
	}
	if err := <-produced; err != nil {
		t.Fatal(err)
	}
	for tier, l := range res.Lateness {
		want := 0
		for i := 0; i < in.Records; i++ {
			if in.Fails(i) > tier {
				want++
			}
		}
		if len(l) != want {
			t.Errorf("tier %d (%s): %d samples, want %d", tier, in.Delays[tier], len(l), want)
		}
		s := slices.Clone(l)
		slices.Sort(s)
		neg := 0
		for _, d := range s {
			if d < 0 {
				neg++
			}
		}
		if len(s) > 0 {
			t.Logf("S3 spring tier %d (%s): n=%d p50=%s p99=%s max=%s min=%s negative=%d", tier, in.Delays[tier], len(s),
				s[len(s)/2], s[min(len(s)-1, len(s)*99/100)], s[len(s)-1], s[0], neg)
			// Spring never delivers before the due time it stamps in milliseconds
			// (the failure's epoch ms + delay), which can be up to 1 ms before
			// the handler's own nanosecond failure time + delay.
			if s[0] < -2*time.Millisecond {
				t.Errorf("tier %d: a retry came %s early", tier, -s[0])
			}
		}
	}
	t.Logf("note: %s", res.Note)
}
