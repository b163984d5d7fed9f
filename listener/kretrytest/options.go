package kretrytest

import (
	"errors"
	"fmt"
	"strings"
	"time"
)

// Opt configures a Cluster (NewCluster) or a Kit (New).
type Opt interface {
	apply(*cfg)
}

type opt func(*cfg)

func (o opt) apply(c *cfg) { o(c) }

type cfg struct {
	brokers    []string
	topics     []string
	partitions int32
	timeout    time.Duration
}

// DefaultTimeout is how long each blocking call of a Kit waits by default
// (see Timeout).
const DefaultTimeout = 30 * time.Second

func newCfg(opts []Opt) (cfg, error) {
	c := cfg{partitions: 1, timeout: DefaultTimeout}
	for _, o := range opts {
		o.apply(&c)
	}
	var errs []error
	if c.partitions < 1 {
		errs = append(errs, fmt.Errorf("kretrytest: Partitions must be >= 1, got %d", c.partitions))
	}
	if c.timeout <= 0 {
		errs = append(errs, fmt.Errorf("kretrytest: Timeout must be > 0, got %v", c.timeout))
	}
	for _, t := range c.topics {
		if t == "" {
			errs = append(errs, errors.New("kretrytest: Topics: a topic name must not be empty"))
			break
		}
	}
	return c, errors.Join(errs...)
}

// Brokers connects to an existing Kafka cluster instead of starting an
// in-process one: list is a comma-separated list of host:port seed
// brokers, as a -brokers flag or an environment variable holds it.
// Blanks around entries are ignored, and an empty list keeps the default:
// a new in-process cluster (franz-go's kfake) with one broker, closed by
// Cluster.Close. On a cluster given here, topics are created when missing
// and nothing is deleted on Close; give each run its own topics with
// Cluster.Name.
func Brokers(list string) Opt {
	var seeds []string
	for _, s := range strings.Split(list, ",") {
		if s = strings.TrimSpace(s); s != "" {
			seeds = append(seeds, s)
		}
	}
	return opt(func(c *cfg) { c.brokers = seeds })
}

// Topics names topics to create when the cluster starts (topics that
// already exist are kept as they are). Pass a listener's whole plan with
// Topics(l.Plan().Topics()...), or only its main topic: the listener
// creates its retry and DLT topics itself when it starts. Repeated
// options add up. Default: none.
func Topics(topics ...string) Opt {
	return opt(func(c *cfg) { c.topics = append(c.topics, topics...) })
}

// Partitions sets the number of partitions of the topics the kit creates
// (Topics, Cluster.CreateTopics). Default 1, which keeps every record of
// a topic in one ordered partition.
func Partitions(n int32) Opt { return opt(func(c *cfg) { c.partitions = n }) }

// Timeout bounds each blocking call of a Kit: New, Produce, Read,
// CreateTopics and each Require. Default DefaultTimeout (30 s). A Cluster
// and a Recorder used without a Kit take their deadlines from the context
// passed to each call instead.
func Timeout(d time.Duration) Opt { return opt(func(c *cfg) { c.timeout = d }) }
