package kafkatest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// Environment of the failure tests that kill and restart the nodes of a
// three-node KRaft cluster run by scripts/kafka.sh.
const (
	// EnvClusterDir is the --dir of a running three-node cluster
	// (`scripts/kafka.sh start cluster --dir DIR`), as an absolute path.
	EnvClusterDir = "KRETRY_CLUSTER_DIR"
	// EnvClusterBrokers is the bootstrap list that start printed
	// (also in DIR/brokers).
	EnvClusterBrokers = "KRETRY_CLUSTER_BROKERS"
	// EnvRequireCluster, together with EnvRequire, makes the failure tests
	// fail rather than skip when EnvClusterDir or EnvClusterBrokers is unset.
	EnvRequireCluster = "KRETRY_REQUIRE_CLUSTER"
)

// ClusterNodes is the number of nodes `kafka.sh start cluster` runs; their
// node ids (which are also their broker ids) are 1 to ClusterNodes.
const ClusterNodes = 3

// Nodes is a running three-node cluster whose nodes a test may kill and
// restart through scripts/kafka.sh. It embeds the Cluster the test talks
// to; that cluster's client retries long enough to ride out a full restart.
//
// A test that uses Nodes must not run in parallel with another one on the
// same cluster. When the test ends, every node it left down is started
// again, so the next test finds the cluster whole.
type Nodes struct {
	*Cluster
	Dir    string // the cluster's kafka.sh --dir
	script string // path of scripts/kafka.sh
}

// NewNodes returns the cluster named by EnvClusterDir and EnvClusterBrokers.
// It skips t when they are unset, or fails it when EnvRequire and
// EnvRequireCluster are both 1. Nodes found down (a previous run's leftover)
// are restarted first.
func NewNodes(t testing.TB) *Nodes {
	t.Helper()
	dir, brokers := os.Getenv(EnvClusterDir), os.Getenv(EnvClusterBrokers)
	if dir == "" || brokers == "" {
		how := fmt.Sprintf("start one with `scripts/kafka.sh start cluster --dir /tmp/kretry-kafka/cluster` "+
			"and set %s=/tmp/kretry-kafka/cluster and %s to the brokers it prints", EnvClusterDir, EnvClusterBrokers)
		if os.Getenv(EnvRequire) == "1" && os.Getenv(EnvRequireCluster) == "1" {
			t.Fatalf("%s=1 and %s=1 but %s or %s is empty: %s", EnvRequire, EnvRequireCluster, EnvClusterDir, EnvClusterBrokers, how)
		}
		t.Skipf("needs a three-node Kafka cluster: %s", how)
	}
	script, err := findScript()
	if err != nil {
		t.Fatal(err)
	}
	if !filepath.IsAbs(dir) {
		t.Fatalf("%s=%s must be an absolute path (go test runs in the package's directory)", EnvClusterDir, dir)
	}
	if _, err := os.Stat(filepath.Join(dir, "cluster.env")); err != nil {
		t.Fatalf("%s=%s holds no kafka.sh cluster: %v", EnvClusterDir, dir, err)
	}
	seeds := strings.Split(brokers, ",")
	cl, err := kgo.NewClient(kgo.SeedBrokers(seeds...), kgo.ProducerLinger(0),
		// Ride out a full restart rather than fail a request half way.
		kgo.RetryTimeout(2*time.Minute), kgo.MetadataMinAge(250*time.Millisecond))
	if err != nil {
		t.Fatalf("client: %v", err)
	}
	t.Cleanup(cl.Close)
	n := &Nodes{
		Cluster: &Cluster{t: t, Seeds: seeds, Admin: kadm.NewClient(cl), client: cl, prefix: UniquePrefix(t)},
		Dir:     dir, script: script,
	}
	n.heal("a previous run")
	t.Cleanup(func() { n.heal("this test") })
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := n.WaitBrokers(ctx, ClusterNodes); err != nil {
		t.Fatal(err)
	}
	return n
}

// findScript finds scripts/kafka.sh in the working directory or above it
// (go test runs in the package's directory).
func findScript() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		p := filepath.Join(dir, "scripts", "kafka.sh")
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("scripts/kafka.sh not found in the working directory or above it")
		}
		dir = parent
	}
}

// kafkaSh runs `kafka.sh ARGS --dir DIR` and returns its stdout; on failure
// the error carries the end of its stderr.
func (n *Nodes) kafkaSh(ctx context.Context, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, "bash", append(append([]string{n.script}, args...), "--dir", n.Dir)...)
	// The nodes run in their own sessions; only kafka.sh's own children
	// (the readiness checker) may hold the pipes after it is killed.
	cmd.WaitDelay = 5 * time.Second
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return stdout.String(), fmt.Errorf("kafka.sh %s: %w\n%s", strings.Join(args, " "), err, tail(stderr.String(), 20))
	}
	return stdout.String(), nil
}

func tail(s string, lines int) string {
	ls := strings.Split(strings.TrimRight(s, "\n"), "\n")
	return strings.Join(ls[max(0, len(ls)-lines):], "\n")
}

// Kill SIGKILLs node (1 to ClusterNodes) with `kafka.sh kill`; its storage
// is kept for RestartNode.
func (n *Nodes) Kill(node int32) {
	n.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := n.kafkaSh(ctx, "kill", strconv.Itoa(int(node))); err != nil {
		n.t.Fatal(err)
	}
}

// Stop stops every node with `kafka.sh stop` (SIGTERM, then SIGKILL for a
// node left without a quorum); their storage is kept for RestartAll.
func (n *Nodes) Stop() {
	n.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if _, err := n.kafkaSh(ctx, "stop"); err != nil {
		n.t.Fatal(err)
	}
}

// RestartNode starts node again on its storage with `kafka.sh restart-node`,
// which returns once every node is listed and every partition is back in
// full ISR. It may be called from any goroutine.
func (n *Nodes) RestartNode(ctx context.Context, node int32) error {
	_, err := n.kafkaSh(ctx, "restart-node", strconv.Itoa(int(node)))
	return err
}

// RestartAll restarts the given nodes (default: all) on their storage.
// Each `kafka.sh restart-node` waits until every node is up, so they run
// concurrently; each is started once the previous one has launched its
// node, because they rebuild the same readiness-checker binary. It returns
// when all of them have.
func (n *Nodes) RestartAll(ctx context.Context, nodes ...int32) error {
	if len(nodes) == 0 {
		for i := int32(1); i <= ClusterNodes; i++ {
			nodes = append(nodes, i)
		}
	}
	errs := make([]error, len(nodes))
	var wg sync.WaitGroup
	for i, node := range nodes {
		done := make(chan struct{})
		wg.Go(func() {
			defer close(done)
			if err := n.RestartNode(ctx, node); err != nil {
				errs[i] = fmt.Errorf("node %d: %w", node, err)
			}
		})
		if err := n.waitLaunched(ctx, node, done); err != nil {
			errs[i] = err
			break
		}
	}
	wg.Wait()
	return errors.Join(errs...)
}

// waitLaunched waits until kafka.sh has written node's PID file (it has
// launched the JVM), or the command ended, or ctx is done.
func (n *Nodes) waitLaunched(ctx context.Context, node int32, done <-chan struct{}) error {
	pidFile := filepath.Join(n.Dir, fmt.Sprintf("node%d.pid", node))
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		if _, err := os.Stat(pidFile); err == nil {
			return nil
		}
		select {
		case <-done:
			return nil // ended before launching: its error is reported
		case <-ctx.Done():
			return fmt.Errorf("node %d not launched: %w", node, ctx.Err())
		case <-tick.C:
		}
	}
}

var nodeDown = regexp.MustCompile(`(?m)^\s*node (\d+): down`)

// Down lists the nodes `kafka.sh status` reports down.
func (n *Nodes) Down(ctx context.Context) ([]int32, error) {
	out, err := n.kafkaSh(ctx, "status")
	if err != nil {
		return nil, err
	}
	var down []int32
	for _, m := range nodeDown.FindAllStringSubmatch(out, -1) {
		id, _ := strconv.Atoi(m[1])
		down = append(down, int32(id))
	}
	return down, nil
}

// heal restarts every node that is down; who says who left it down.
func (n *Nodes) heal(who string) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	down, err := n.Down(ctx)
	if err != nil {
		n.t.Errorf("cluster status: %v", err)
		return
	}
	if len(down) == 0 {
		return
	}
	n.t.Logf("nodes %v left down by %s; restarting them", down, who)
	if err := n.RestartAll(ctx, down...); err != nil {
		n.t.Errorf("restarting nodes %v: %v", down, err)
	}
}

// WaitBrokers waits until the cluster lists exactly want brokers.
func (n *Nodes) WaitBrokers(ctx context.Context, want int) error {
	var last error
	for {
		bs, err := n.Admin.ListBrokers(ctx)
		if err == nil && len(bs) == want {
			return nil
		}
		if err == nil {
			err = fmt.Errorf("%d brokers listed: %v", len(bs), bs.NodeIDs())
		}
		last = err
		select {
		case <-ctx.Done():
			return fmt.Errorf("waiting for %d brokers: %w (last: %v)", want, ctx.Err(), last)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// Leader returns the broker (node) id leading topic's partition, or -1
// when it has none.
func (n *Nodes) Leader(ctx context.Context, topic string, partition int32) (int32, error) {
	md, err := n.Admin.Metadata(ctx, topic)
	if err != nil {
		return -1, err
	}
	td, ok := md.Topics[topic]
	if !ok || td.Err != nil {
		return -1, fmt.Errorf("metadata of %s: %v", topic, td.Err)
	}
	pd, ok := td.Partitions[partition]
	if !ok || pd.Err != nil {
		return -1, fmt.Errorf("metadata of %s[%d]: %v", topic, partition, pd.Err)
	}
	return pd.Leader, nil
}

// CreateReplicatedTopic creates topic with the given partitions,
// replication factor and configs, and fails the test on error.
func (n *Nodes) CreateReplicatedTopic(topic string, partitions int32, rf int16, configs map[string]*string) {
	n.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	resp, err := n.Admin.CreateTopic(ctx, partitions, rf, configs, topic)
	if err == nil {
		err = resp.Err
	}
	if err == nil {
		err = n.waitTopic(ctx, topic, partitions)
	}
	if err != nil {
		n.t.Fatalf("create topic %s: %v", topic, err)
	}
}

// ProduceContext writes records synchronously with the test's client,
// which retries through leader changes and outages until ctx is done.
func (n *Nodes) ProduceContext(ctx context.Context, rs ...*kgo.Record) error {
	return n.client.ProduceSync(ctx, rs...).FirstErr()
}

// EndOffsets returns the end offset of every partition of topics.
func (n *Nodes) EndOffsets(ctx context.Context, topics ...string) (map[string]map[int32]int64, error) {
	ends, err := n.Admin.ListEndOffsets(ctx, topics...)
	if err != nil {
		return nil, err
	}
	out := map[string]map[int32]int64{}
	var errs []error
	ends.Each(func(o kadm.ListedOffset) {
		if o.Err != nil {
			errs = append(errs, fmt.Errorf("%s[%d]: %w", o.Topic, o.Partition, o.Err))
			return
		}
		if out[o.Topic] == nil {
			out[o.Topic] = map[int32]int64{}
		}
		out[o.Topic][o.Partition] = o.Offset
	})
	return out, errors.Join(errs...)
}

// PartitionLag is how far a group's commit is behind the end of a
// partition.
type PartitionLag struct {
	Topic     string
	Partition int32
	Committed int64 // 0 when the group has committed nothing there
	End       int64
}

// Lag returns the partitions of topics whose records group has not all
// committed, sorted by topic and partition.
func (n *Nodes) Lag(ctx context.Context, group string, topics ...string) ([]PartitionLag, error) {
	ends, err := n.EndOffsets(ctx, topics...)
	if err != nil {
		return nil, err
	}
	resp, err := n.Admin.FetchOffsets(ctx, group)
	if err != nil {
		return nil, err
	}
	var lag []PartitionLag
	for topic, ps := range ends {
		for p, end := range ps {
			var at int64
			if o, ok := resp.Lookup(topic, p); ok && o.Err == nil && o.At > 0 {
				at = o.At
			}
			if at < end {
				lag = append(lag, PartitionLag{topic, p, at, end})
			}
		}
	}
	slices.SortFunc(lag, func(a, b PartitionLag) int {
		if c := strings.Compare(a.Topic, b.Topic); c != 0 {
			return c
		}
		return int(a.Partition - b.Partition)
	})
	return lag, nil
}
