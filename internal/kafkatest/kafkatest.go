// Package kafkatest gives tests a Kafka cluster: an in-process kfake cluster
// by default, or the real cluster named by the KRETRY_BROKERS environment
// variable, so one suite runs unchanged against both.
//
// Topics and groups get names unique to the test, so tests may share a real
// cluster and run in parallel.
package kafkatest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// EnvBrokers names the environment variable that selects a real cluster:
// a comma-separated list of host:port seeds.
const EnvBrokers = "KRETRY_BROKERS"

// EnvRequire, when set to 1, makes tests that need a real cluster fail
// rather than skip when EnvBrokers is unset. CI sets it.
const EnvRequire = "KRETRY_REQUIRE_BROKERS"

// Cluster is a Kafka cluster for one test.
type Cluster struct {
	t      testing.TB
	Seeds  []string
	Fake   *kfake.Cluster // nil on a real cluster
	Admin  *kadm.Client
	client *kgo.Client
	prefix string
}

// Real reports whether the tests run against a real cluster.
func Real() bool { return os.Getenv(EnvBrokers) != "" }

// RequireReal skips t unless a real cluster is configured, or fails it when
// EnvRequire is set.
func RequireReal(t testing.TB) {
	t.Helper()
	if Real() {
		return
	}
	if os.Getenv(EnvRequire) == "1" {
		t.Fatalf("%s=1 but %s is empty: start a broker with scripts/kafka.sh start single", EnvRequire, EnvBrokers)
	}
	t.Skipf("needs a real Kafka cluster: run `scripts/kafka.sh start single` and set %s to the printed brokers", EnvBrokers)
}

// New returns the cluster for t: the one in KRETRY_BROKERS, or a fresh
// single-broker kfake cluster closed when t ends. kfakeOpts apply to kfake
// only.
func New(t testing.TB, kfakeOpts ...kfake.Opt) *Cluster {
	t.Helper()
	c := &Cluster{t: t, prefix: UniquePrefix(t)}
	if s := os.Getenv(EnvBrokers); s != "" {
		c.Seeds = strings.Split(s, ",")
	} else {
		opts := append([]kfake.Opt{kfake.NumBrokers(1)}, kfakeOpts...)
		fc, err := kfake.NewCluster(opts...)
		if err != nil {
			t.Fatalf("kfake: %v", err)
		}
		t.Cleanup(fc.Close)
		c.Fake, c.Seeds = fc, fc.ListenAddrs()
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.Seeds...), kgo.ProducerLinger(0))
	if err != nil {
		t.Fatalf("client: %v", err)
	}
	t.Cleanup(cl.Close)
	c.client, c.Admin = cl, kadm.NewClient(cl)
	return c
}

var unsafe = regexp.MustCompile(`[^a-zA-Z0-9._-]+`)

// UniquePrefix returns a prefix for topic and group names unique to t: its
// name made safe for Kafka, shortened, and a random suffix.
func UniquePrefix(t testing.TB) string {
	var b [3]byte
	_, _ = rand.Read(b[:])
	name := unsafe.ReplaceAllString(t.Name(), "_")
	if len(name) > 60 {
		name = name[len(name)-60:]
	}
	return strings.ToLower(name) + "-" + hex.EncodeToString(b[:])
}

// Name returns a topic or group name unique to this test.
func (c *Cluster) Name(suffix string) string { return c.prefix + "-" + suffix }

// CreateTopic creates topic with the given partitions (replication factor:
// the broker's default) and fails the test on error. The topic keeps its
// records whatever their timestamps (retention.ms -1): tests write records
// stamped days in the past, which a broker's time-based retention would
// otherwise delete while the test reads them.
func (c *Cluster) CreateTopic(topic string, partitions int32) {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	keep := "-1"
	resp, err := c.Admin.CreateTopic(ctx, partitions, -1, map[string]*string{"retention.ms": &keep}, topic)
	if err == nil {
		err = resp.Err
	}
	if err == nil {
		err = c.waitTopic(ctx, topic, partitions)
	}
	if err != nil {
		c.t.Fatalf("create topic %s: %v", topic, err)
	}
}

// waitTopic waits until every broker of the cluster, not just the one
// WaitTopic happens to ask, lists topic with partitions partitions, each
// with a leader: on several brokers, a client that asks another one first
// (a listener checking its main topic, say) may otherwise be told the topic
// does not exist.
func (c *Cluster) waitTopic(ctx context.Context, topic string, partitions int32) error {
	if err := WaitTopic(ctx, c.Admin, topic, partitions); err != nil {
		return err
	}
	brokers, err := c.Admin.ListBrokers(ctx)
	if err != nil {
		return fmt.Errorf("listing brokers: %w", err)
	}
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for _, b := range brokers {
		for !brokerLists(ctx, c.client.Broker(int(b.NodeID)), topic, partitions) {
			select {
			case <-ctx.Done():
				return fmt.Errorf("waiting for broker %d to list topic %s with %d partitions with leaders: %w", b.NodeID, topic, partitions, ctx.Err())
			case <-tick.C:
			}
		}
	}
	return nil
}

// brokerLists reports whether broker's metadata lists topic with
// partitions partitions, each with a leader.
func brokerLists(ctx context.Context, broker *kgo.Broker, topic string, partitions int32) bool {
	req := kmsg.NewPtrMetadataRequest()
	rt := kmsg.NewMetadataRequestTopic()
	rt.Topic = kmsg.StringPtr(topic)
	req.Topics = append(req.Topics, rt)
	resp, err := req.RequestWith(ctx, broker)
	if err != nil || len(resp.Topics) != 1 || resp.Topics[0].ErrorCode != 0 || len(resp.Topics[0].Partitions) != int(partitions) {
		return false
	}
	for _, p := range resp.Topics[0].Partitions {
		if p.ErrorCode != 0 || p.Leader < 0 {
			return false
		}
	}
	return true
}

// WaitTopic waits until the metadata adm sees lists topic with partitions
// partitions, each with a leader, or ctx ends. A broker confirms a topic's
// creation before its metadata has spread; a client that starts at once may
// be told the topic does not exist.
func WaitTopic(ctx context.Context, adm *kadm.Client, topic string, partitions int32) error {
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		details, err := adm.ListTopics(ctx, topic)
		if err == nil {
			if d, ok := details[topic]; ok && d.Err == nil && len(d.Partitions) == int(partitions) {
				ready := true
				for _, p := range d.Partitions {
					ready = ready && p.Err == nil && p.Leader >= 0
				}
				if ready {
					return nil
				}
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("waiting for topic %s to have %d partitions with leaders: %w", topic, partitions, ctx.Err())
		case <-tick.C:
		}
	}
}

// Produce writes records synchronously, partitioned by key (Record.Partition
// is ignored; see ProduceToPartitions), and fails the test on error.
func (c *Cluster) Produce(rs ...*kgo.Record) {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := c.client.ProduceSync(ctx, rs...).FirstErr(); err != nil {
		c.t.Fatalf("produce: %v", err)
	}
}

// ProduceToPartitions writes records synchronously, each to the partition
// its Partition field names (the client Produce uses partitions by key and
// ignores that field), and fails the test on error.
func (c *Cluster) ProduceToPartitions(rs ...*kgo.Record) {
	c.t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.Seeds...), kgo.ProducerLinger(0),
		kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		c.t.Fatalf("client: %v", err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := cl.ProduceSync(ctx, rs...).FirstErr(); err != nil {
		c.t.Fatalf("produce: %v", err)
	}
}

// ReadAll reads every record currently in topic, from the start, up to its
// end offsets at the time of the call.
func (c *Cluster) ReadAll(topic string) []*kgo.Record {
	c.t.Helper()
	return ReadTopic(c.t, c.Admin, c.Seeds, topic)
}

// ReadTopic reads every record in topic, from the start up to its end
// offsets at the time of the call, with a plain (non-group) client made
// from seeds and opts (credentials, for instance). adm lists the end
// offsets. Any error fails t.
func ReadTopic(t testing.TB, adm *kadm.Client, seeds []string, topic string, opts ...kgo.Opt) []*kgo.Record {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	ends, err := adm.ListEndOffsets(ctx, topic)
	if err == nil {
		err = ends.Error()
	}
	if err != nil {
		t.Fatalf("end offsets of %s: %v", topic, err)
	}
	want := map[int32]int64{}
	ends.Each(func(o kadm.ListedOffset) {
		if o.Offset > 0 {
			want[o.Partition] = o.Offset
		}
	})
	if len(want) == 0 {
		return nil
	}
	opts = append([]kgo.Opt{kgo.SeedBrokers(seeds...),
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: partitionsAtStart(want)})}, opts...)
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		t.Fatalf("client: %v", err)
	}
	defer cl.Close()
	var out []*kgo.Record
	for len(want) > 0 {
		fs := cl.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			t.Fatalf("reading %s: %v (still waiting for partitions %v)", topic, err, want)
		}
		fs.EachError(func(tp string, p int32, err error) { t.Fatalf("reading %s[%d]: %v", tp, p, err) })
		fs.EachRecord(func(r *kgo.Record) {
			if end, ok := want[r.Partition]; ok && r.Offset < end {
				if !r.Attrs.IsControl() { // a transaction marker (ReadCommitted)
					out = append(out, r)
				}
				if r.Offset == end-1 {
					delete(want, r.Partition)
				}
			}
		})
	}
	return out
}

// ReadCommitted reads topic as ReadAll does, but as a read_committed
// consumer: records of aborted transactions are left out. Transactions
// still open hold it up until they end (or its 30 s run out).
func (c *Cluster) ReadCommitted(topic string) []*kgo.Record {
	c.t.Helper()
	return ReadTopic(c.t, c.Admin, c.Seeds, topic, ReadCommittedOpts()...)
}

// ReadCommittedOpts are the client options ReadTopic needs to read as a
// read_committed consumer: the isolation level, and the transaction
// markers kept (and left out of what it returns), so that it sees the
// end of a partition whose last offset is a marker.
func ReadCommittedOpts() []kgo.Opt {
	return []kgo.Opt{kgo.FetchIsolationLevel(kgo.ReadCommitted()), kgo.KeepControlRecords()}
}

func partitionsAtStart(m map[int32]int64) map[int32]kgo.Offset {
	out := make(map[int32]kgo.Offset, len(m))
	for p := range m {
		out[p] = kgo.NewOffset().AtStart()
	}
	return out
}

// Committed returns the group's committed offsets for topic, by partition:
// none while the group does not exist yet.
func (c *Cluster) Committed(group, topic string) map[int32]int64 {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	resp, err := c.Admin.FetchOffsets(ctx, group)
	if errors.Is(err, kerr.GroupIDNotFound) {
		return map[int32]int64{}
	}
	if err != nil && !errors.Is(err, context.DeadlineExceeded) {
		c.t.Fatalf("fetch offsets of %s: %v", group, err)
	}
	out := map[int32]int64{}
	resp.Each(func(o kadm.OffsetResponse) {
		if o.Topic == topic && o.Err == nil {
			out[o.Partition] = o.At
		}
	})
	return out
}

// Eventually waits until cond returns true, checking every few
// milliseconds, and fails the test with msg if it has not by timeout.
func Eventually(t testing.TB, timeout time.Duration, cond func() bool, format string, args ...any) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("after %v: %s", timeout, fmt.Sprintf(format, args...))
		}
		<-tick.C
	}
}
