package kretrytest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
)

// Cluster is a Kafka cluster for a test or an example program: an
// in-process kfake cluster of its own, or an existing cluster named by
// Brokers. Create it with NewCluster (or New, in a test) and release it
// with Close. Its methods are safe for concurrent use.
type Cluster struct {
	seeds      []string
	fake       *kfake.Cluster // nil on a cluster named by Brokers
	client     *kgo.Client    // produces and administers
	adm        *kadm.Client
	partitions int32
	suffix     string // appended by Name on a cluster named by Brokers
	closeOnce  sync.Once
}

// NewCluster starts an in-process Kafka cluster (franz-go's kfake, one
// broker), or connects to the one named by Brokers, and creates the
// topics named by Topics. It returns once the topics have leaders, or
// with an error when ctx ends first. Close releases the cluster.
func NewCluster(ctx context.Context, opts ...Opt) (*Cluster, error) {
	cfg, err := newCfg(opts)
	if err != nil {
		return nil, err
	}
	c := &Cluster{seeds: cfg.brokers, partitions: cfg.partitions}
	if len(c.seeds) == 0 {
		fake, err := kfake.NewCluster(kfake.NumBrokers(1))
		if err != nil {
			return nil, fmt.Errorf("kretrytest: starting an in-process cluster: %w", err)
		}
		c.fake, c.seeds = fake, fake.ListenAddrs()
	} else {
		var b [4]byte
		_, _ = rand.Read(b[:])
		c.suffix = hex.EncodeToString(b[:])
	}
	// No linger: a test produces a few records and waits for them.
	c.client, err = kgo.NewClient(kgo.SeedBrokers(c.seeds...), kgo.ProducerLinger(0))
	if err != nil {
		c.Close()
		return nil, fmt.Errorf("kretrytest: client for %s: %w", strings.Join(c.seeds, ","), err)
	}
	c.adm = kadm.NewClient(c.client)
	if err := c.CreateTopics(ctx, cfg.topics...); err != nil {
		c.Close()
		return nil, err
	}
	return c, nil
}

// Seeds returns the cluster's seed brokers (host:port), to pass to
// listener.New or listener.Register.
func (c *Cluster) Seeds() []string { return slices.Clone(c.seeds) }

// InProcess reports whether the cluster is the kit's own in-process
// cluster rather than one named by Brokers.
func (c *Cluster) InProcess() bool { return c.fake != nil }

// Name returns a topic or group name for this cluster's run: base itself
// on the in-process cluster, which is new each time, and base followed by
// "-" and a random suffix chosen once per Cluster on a cluster named by
// Brokers, so that runs of a test against the same cluster do not read
// each other's records or offsets.
func (c *Cluster) Name(base string) string {
	if c.suffix == "" {
		return base
	}
	return base + "-" + c.suffix
}

// CreateTopics creates the topics that do not exist yet, with the
// partitions set by Partitions and the broker's default replication
// factor, and waits until each has a leader for every partition. Topics
// that exist are left as they are.
func (c *Cluster) CreateTopics(ctx context.Context, topics ...string) error {
	if len(topics) == 0 {
		return nil
	}
	resp, err := c.adm.CreateTopics(ctx, c.partitions, -1, nil, topics...)
	if err != nil {
		return fmt.Errorf("kretrytest: creating topics %s on %s: %w", strings.Join(topics, ", "), strings.Join(c.seeds, ","), err)
	}
	var errs []error
	for _, t := range topics {
		r, ok := resp[t]
		switch {
		case !ok:
			errs = append(errs, fmt.Errorf("kretrytest: creating topic %q: no answer from the broker", t))
		case r.Err != nil && !errors.Is(r.Err, kerr.TopicAlreadyExists):
			errs = append(errs, fmt.Errorf("kretrytest: creating topic %q on %s: %w", t, strings.Join(c.seeds, ","), r.Err))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}
	return c.waitLeaders(ctx, topics)
}

// waitLeaders waits until the metadata lists every topic with a leader
// for each partition: a broker confirms a creation before its metadata
// has spread, and a client that starts at once may be told the topic does
// not exist.
func (c *Cluster) waitLeaders(ctx context.Context, topics []string) error {
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		details, err := c.adm.ListTopics(ctx, topics...)
		waiting := slices.DeleteFunc(slices.Clone(topics), func(t string) bool {
			d, ok := details[t]
			if err != nil || !ok || d.Err != nil || len(d.Partitions) == 0 {
				return false
			}
			for _, p := range d.Partitions {
				if p.Err != nil || p.Leader < 0 {
					return false
				}
			}
			return true
		})
		if len(waiting) == 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			last := ""
			if err != nil {
				last = fmt.Sprintf(" (last error: %v)", err)
			}
			return fmt.Errorf("kretrytest: topics %s have no leader yet: %w%s", strings.Join(waiting, ", "), context.Cause(ctx), last)
		case <-tick.C:
		}
	}
}

// Produce writes rs, each to its Topic and partitioned by key, and
// returns once Kafka has acknowledged every one (their Partition, Offset
// and Timestamp are then set) or with the first error.
func (c *Cluster) Produce(ctx context.Context, rs ...*kgo.Record) error {
	if len(rs) == 0 {
		return nil
	}
	if err := c.client.ProduceSync(ctx, rs...).FirstErr(); err != nil {
		return fmt.Errorf("kretrytest: producing %d records: %w", len(rs), err)
	}
	return nil
}

// Close stops the in-process cluster and closes the kit's clients. On a
// cluster named by Brokers it deletes nothing. Close may be called more
// than once.
func (c *Cluster) Close() {
	c.closeOnce.Do(func() {
		if c.client != nil {
			c.client.Close()
		}
		if c.fake != nil {
			c.fake.Close()
		}
	})
}
