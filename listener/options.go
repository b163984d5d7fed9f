package listener

import (
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/kretry/kretry/config"
	"github.com/kretry/kretry/dlt"
	"github.com/kretry/kretry/retry"
	"github.com/kretry/kretry/retry/spring"
	"github.com/kretry/kretry/strategy"
)

// Opt configures a Listener. Options are applied in order; a later option
// overrides an earlier one that sets the same thing. Every Opt is also a
// RegisterOpt: given to Register, it applies to every listener registered.
//
// One rule holds for every option that takes a number or a duration, as
// for every policy setting in struct tags and policy files: 0 means the
// option's documented default, the value it has when not given
// (Attempts(0) is 3 attempts, Concurrency(0) is 16). A value that can
// never be valid, such as a negative count or duration, makes New fail
// with an error naming the option or setting and the rule; every problem
// is reported, each once.
type Opt interface {
	RegisterOpt
	apply(*cfg)
}

type opt func(*cfg)

func (o opt) apply(c *cfg) { o(c) }

// applyRegister makes every Opt a RegisterOpt: Register applies it to each
// listener, below the struct tags and policy files.
func (o opt) applyRegister(r *regCfg) { r.opts = append(r.opts, o) }

type cfg struct {
	errs       []error // from options given invalid values
	seeds      []string
	topic      string
	group      string
	policy     retry.Policy
	dltHandler dlt.Handler
	logger     *slog.Logger
	hooks      []Hook
	tracer     Tracer
	spring     spring.Mode
	clientOpts []kgo.Opt

	concurrency     int
	maxPollRecords  int
	maxHeld         int
	maxPending      int
	handlerTimeout  time.Duration
	maxRequested    time.Duration
	shutdownTimeout time.Duration
	revokeTimeout   time.Duration
	fetchMaxWait    time.Duration
	forwardBackoff  strategy.Backoff

	batchSize int
	batchWait time.Duration
	// batchSet: BatchSize or BatchWait was given as an option, which New
	// (a single-record handler) refuses. FromSpec's batch settings do not
	// set it: a spec is shared by every kind of handler.
	batchSet bool

	// exactly-once mode (ExactlyOnce): txnID may be empty (derived)
	eos         bool
	txnID       string
	txnInterval time.Duration

	// key-ordered retries (KeyOrder)
	keyOrder  bool
	followers string
	maxKeys   int

	createTopics      bool
	partitions        int32
	replicationFactor int16
	topicConfigs      map[string]*string

	random func() float64
}

// Defaults of the listener's own settings (policy defaults live in retry).
const (
	DefaultConcurrency     = 16
	DefaultMaxPollRecords  = 1000
	DefaultShutdownTimeout = 30 * time.Second
	DefaultRevokeTimeout   = 10 * time.Second
	DefaultFetchMaxWait    = 100 * time.Millisecond
	// DefaultMaxRequestedDelay bounds the delay a handler may ask for
	// with strategy.RetryAfter.
	DefaultMaxRequestedDelay = time.Hour
	defaultMaxPending        = 4096
)

func defaultCfg(seeds []string, topic string) cfg {
	return cfg{
		seeds:             seeds,
		topic:             topic,
		group:             config.DefaultGroupPrefix + topic,
		concurrency:       DefaultConcurrency,
		maxPollRecords:    DefaultMaxPollRecords,
		maxPending:        defaultMaxPending,
		shutdownTimeout:   DefaultShutdownTimeout,
		revokeTimeout:     DefaultRevokeTimeout,
		fetchMaxWait:      DefaultFetchMaxWait,
		maxRequested:      DefaultMaxRequestedDelay,
		forwardBackoff:    strategy.ExponentialBackoff(100*time.Millisecond, 2, 10*time.Second),
		createTopics:      true,
		partitions:        -1,
		replicationFactor: -1,
		batchSize:         DefaultBatchSize,
		txnInterval:       DefaultTransactionInterval,
		followers:         config.FollowersRelease,
		maxKeys:           config.DefaultMaxKeysInRetry,
		random:            rand.Float64,
	}
}

// normalize gives every zero setting its default: 0 means the default.
// The policy is normalized apart (retry.Policy.Normalize).
func (c *cfg) normalize() {
	def := defaultCfg(c.seeds, c.topic)
	zeroToDefault(&c.concurrency, def.concurrency)
	zeroToDefault(&c.maxPollRecords, def.maxPollRecords)
	zeroToDefault(&c.shutdownTimeout, def.shutdownTimeout)
	zeroToDefault(&c.revokeTimeout, def.revokeTimeout)
	zeroToDefault(&c.maxRequested, def.maxRequested)
	zeroToDefault(&c.fetchMaxWait, def.fetchMaxWait)
	zeroToDefault(&c.partitions, def.partitions)
	zeroToDefault(&c.batchSize, def.batchSize)
	zeroToDefault(&c.txnInterval, def.txnInterval)
	zeroToDefault(&c.maxKeys, def.maxKeys)
	if c.followers == "" {
		c.followers = def.followers
	}
	zeroToDefault(&c.replicationFactor, def.replicationFactor)
}

func zeroToDefault[T int | int16 | int32 | time.Duration](v *T, def T) {
	if *v == 0 {
		*v = def
	}
}

// validate checks a normalized cfg.
func (c *cfg) validate() error {
	errs := c.errs
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf("listener: "+format, args...)) }
	if len(c.seeds) == 0 {
		bad("seeds must name at least one broker (host:port)")
	}
	if c.group == "" {
		bad("Group must not be empty")
	}
	if c.concurrency < 1 {
		bad("Concurrency must be >= 1, or 0 for the default, got %d", c.concurrency)
	}
	if c.maxPollRecords < 1 {
		bad("MaxPollRecords must be >= 1, or 0 for the default, got %d", c.maxPollRecords)
	}
	if c.batchSize < 1 {
		bad("BatchSize must be >= 1, or 0 for the default, got %d", c.batchSize)
	}
	c.maxHeld = max(4, c.concurrency) * c.maxPollRecords
	for _, d := range []struct {
		name string
		v    time.Duration
	}{
		{"HandlerTimeout", c.handlerTimeout}, {"ShutdownTimeout", c.shutdownTimeout}, {"RevokeTimeout", c.revokeTimeout},
		{"MaxRequestedDelay", c.maxRequested}, {"FetchMaxWait", c.fetchMaxWait}, {"BatchWait", c.batchWait}, {"TransactionInterval", c.txnInterval},
	} {
		if d.v < 0 {
			bad("%s must be >= 0, got %v", d.name, d.v)
		}
	}
	switch {
	case c.eos:
		if err := config.CheckTransactionalID(c.txnID); err != nil {
			bad("ExactlyOnce transactional ID %v", err)
		}
	case c.txnInterval > 0 && c.txnInterval != DefaultTransactionInterval:
		bad("TransactionInterval applies only to exactly-once mode, but ExactlyOnce is not given; add ExactlyOnce, or remove TransactionInterval")
	}
	switch err := config.CheckFollowersOnDeadLetter(c.followers); {
	case err != nil:
		bad("FollowersOnDeadLetter %v", err)
	case !c.keyOrder && c.followers != config.FollowersRelease:
		bad("FollowersOnDeadLetter applies only to key-ordered retries, but KeyOrder is not given; add KeyOrder, or remove FollowersOnDeadLetter")
	}
	switch {
	case c.maxKeys < 1:
		bad("MaxKeysInRetry must be >= 1, or 0 for the default, got %d", c.maxKeys)
	case !c.keyOrder && c.maxKeys != config.DefaultMaxKeysInRetry:
		bad("MaxKeysInRetry applies only to key-ordered retries, but KeyOrder is not given; add KeyOrder, or remove MaxKeysInRetry")
	}
	if c.keyOrder && c.eos {
		bad("KeyOrder does not work with ExactlyOnce yet; remove one of them")
	}
	if c.partitions < -1 {
		bad("TopicPartitions must be >= 1, or -1 or 0 for the default, got %d", c.partitions)
	}
	if c.replicationFactor < -1 {
		bad("ReplicationFactor must be >= 1, or -1 or 0 for the default, got %d", c.replicationFactor)
	}
	return errors.Join(errs...)
}

// Group sets the consumer group that consumes the main topic, every retry
// tier and the DLT; with Naming(strategy.Naming{GroupTopics: true}) it is
// part of their names too, and must then be a valid topic-name fragment
// ([a-zA-Z0-9._-]). Default "kretry-<topic>"; it must not be empty.
func Group(name string) Opt { return opt(func(c *cfg) { c.group = name }) }

// Policy replaces the whole retry policy. Options that set single policy
// fields (Attempts, Backoff, …) and come after it change its fields.
// Default: retry.Policy{} normalized, i.e. Spring Kafka's defaults.
func Policy(p retry.Policy) Opt { return opt(func(c *cfg) { c.policy = p }) }

// FromSpec sets everything a config.Spec holds — group, retry policy,
// topic settings, batch settings, exactly-once settings and key-order
// settings — as resolved from struct tags and policy files by
// config.Resolve or config.File.Specs (Listener.Spec returns one too).
// Options after it change what it set. Its fields replace the
// listener's as they are, so a zero field means its default, as for every
// option (zero Partitions and ReplicationFactor are -1), except Group,
// which must not be empty. s.Topic must be the listener's topic (or
// empty). s.ExactlyOnce.Enabled is
// ExactlyOnce(s.ExactlyOnce.TransactionalID); a transactional ID or an
// interval other than the default without it is an error, as
// TransactionInterval without ExactlyOnce is. Likewise s.KeyOrder.Enabled
// is KeyOrder, and an OnDeadLetter or a MaxKeys other than the default
// without it is an error.
func FromSpec(s config.Spec) Opt {
	return opt(func(c *cfg) {
		if s.Topic != "" && s.Topic != c.topic {
			c.errs = append(c.errs, fmt.Errorf("listener: FromSpec: spec is for topic %q, the listener's topic is %q", s.Topic, c.topic))
		}
		e := s.ExactlyOnce
		if !e.Enabled && e.TransactionalID != "" {
			c.errs = append(c.errs, fmt.Errorf("listener: FromSpec: ExactlyOnce.TransactionalID %q applies only to exactly-once mode, but ExactlyOnce.Enabled is false", e.TransactionalID))
		}
		c.eos, c.txnID, c.txnInterval = e.Enabled, e.TransactionalID, e.Interval
		k := s.KeyOrder
		if !k.Enabled && k.OnDeadLetter != "" && k.OnDeadLetter != config.FollowersRelease {
			c.errs = append(c.errs, fmt.Errorf("listener: FromSpec: KeyOrder.OnDeadLetter %q applies only to key-ordered retries, but KeyOrder.Enabled is false", k.OnDeadLetter))
			k.OnDeadLetter = "" // reported here, in the spec's words
		}
		if !k.Enabled && k.MaxKeys != 0 && k.MaxKeys != config.DefaultMaxKeysInRetry {
			c.errs = append(c.errs, fmt.Errorf("listener: FromSpec: KeyOrder.MaxKeys %d applies only to key-ordered retries, but KeyOrder.Enabled is false", k.MaxKeys))
			k.MaxKeys = 0
		}
		c.keyOrder, c.followers, c.maxKeys = k.Enabled, k.OnDeadLetter, k.MaxKeys
		c.group = s.Group
		c.policy = s.Policy
		c.createTopics = s.Topics.Create
		c.partitions = s.Topics.Partitions
		c.replicationFactor = s.Topics.ReplicationFactor
		c.topicConfigs = s.Topics.Configs
		c.batchSize = s.Batch.Size
		c.batchWait = s.Batch.Wait
	})
}

// Tracing wraps every delivery in t (see Tracer). The last one given
// wins; nil removes it. Default: none.
func Tracing(t Tracer) Opt { return opt(func(c *cfg) { c.tracer = t }) }

// SpringHeaders makes the listener understand Spring Kafka's retry-topic
// headers (docs/interop-spring.md). With spring.Read, records on retry
// tiers and DLTs that carry Spring's headers instead of kretry's (written
// by a Spring service whose topics this listener takes over) are read
// through spring.Resolve; Spring headers are removed from the records the
// listener forwards unless Write is set too. With spring.Write, every
// record the listener forwards to a tier or DLT carries Spring's headers
// beside kretry's, so a Spring service can consume kretry's topics.
// Default: neither (Spring headers are user headers, copied as they are).
func SpringHeaders(m spring.Mode) Opt { return opt(func(c *cfg) { c.spring = m }) }

// Attempts sets the total number of deliveries, including the first:
// 1 to strategy.MaxAttempts (1: no retries). Default 3; 0 means the
// default.
func Attempts(n int) Opt { return opt(func(c *cfg) { c.policy.Attempts = n }) }

// Backoff sets the delay schedule between deliveries, e.g.
// strategy.ExponentialBackoff(time.Second, 2, 30*time.Second); zero
// fields of b mean their defaults (strategy.FixedBackoff(0) waits 1 s;
// strategy.ListBackoff(0) does not wait), and a list backoff has at most
// attempts - 1 delays. Default strategy.FixedBackoff(time.Second).
func Backoff(b strategy.Backoff) Opt { return opt(func(c *cfg) { c.policy.Backoff = b }) }

// Naming sets the topic suffixes and naming strategies; zero fields of n
// mean their defaults. Default "-retry", "-dlt", suffix by delay, one
// reusable topic for repeated delays, names without the consumer group
// (GroupTopics false: Spring Kafka's names).
func Naming(n strategy.Naming) Opt { return opt(func(c *cfg) { c.policy.Naming = n }) }

// Include retries only errors matching one of ms; every other error goes
// straight to the DLT. Default: retry every error. Cannot be combined with
// Exclude.
func Include(ms ...strategy.Matcher) Opt {
	return opt(func(c *cfg) { c.policy.Classifier.Include = append(c.policy.Classifier.Include, ms...) })
}

// Exclude sends errors matching one of ms straight to the DLT. Default:
// none. Cannot be combined with Include.
func Exclude(ms ...strategy.Matcher) Opt {
	return opt(func(c *cfg) { c.policy.Classifier.Exclude = append(c.policy.Classifier.Exclude, ms...) })
}

// Route sends records whose final error matches m to their own DLT,
// "<topic><suffix><dlt suffix>" (e.g. "orders-validation-dlt" for suffix
// "-validation"). Routes are tried in the order given. Default: none.
func Route(suffix string, m strategy.Matcher) Opt {
	return opt(func(c *cfg) {
		c.policy.Classifier.Routes = append(c.policy.Classifier.Routes, strategy.Route{Suffix: suffix, Matcher: m})
	})
}

// Timeout sets an overall budget measured from the original record's
// timestamp; a failure after it has passed goes to the DLT. It must be
// >= 0. Default 0: none.
func Timeout(d time.Duration) Opt { return opt(func(c *cfg) { c.policy.Timeout = d }) }

// MaxErrorBytes bounds the error text carried in headers; at least 64.
// Default 4096; 0 means the default.
func MaxErrorBytes(n int) Opt { return opt(func(c *cfg) { c.policy.MaxErrorBytes = n }) }

// DLTStrategy sets what happens around the DLT. Default
// retry.DLTRetryOnError (bounded).
func DLTStrategy(s retry.DLTStrategy) Opt { return opt(func(c *cfg) { c.policy.DLT = s }) }

// DLTHandlerAttempts bounds the DLT handler calls for one record under
// retry.DLTRetryOnError, the first included; at least 1. Default 3; 0
// means the default.
func DLTHandlerAttempts(n int) Opt { return opt(func(c *cfg) { c.policy.DLTHandlerAttempts = n }) }

// DLTHandlerBackoff sets the wait between DLT handler calls for one record;
// it must be >= 0. Default 1 s; 0 means the default.
func DLTHandlerBackoff(d time.Duration) Opt {
	return opt(func(c *cfg) { c.policy.DLTHandlerBackoff = d })
}

// DLTHandler sets the handler called for records read back from the DLT.
// Default: the listener's Handler when it also implements dlt.Handler (a
// type with both Handle and HandleDLT serves both, as with Register), and
// otherwise dlt.LogHandler with the listener's logger.
func DLTHandler(h dlt.Handler) Opt { return opt(func(c *cfg) { c.dltHandler = h }) }

// Logger sets the logger for the listener's own messages. Default
// slog.Default().
func Logger(l *slog.Logger) Opt { return opt(func(c *cfg) { c.logger = l }) }

// Hooks adds observers of listener events. Default: none.
func Hooks(hs ...Hook) Opt { return opt(func(c *cfg) { c.hooks = append(c.hooks, hs...) }) }

// ClientOpts adds franz-go options (SASL, TLS, logging, hooks, fetch sizes,
// …) to the listener's client; the connection options also reach the short-
// lived admin client Run uses to check topics. The listener owns its
// consumer-group wiring: options that set the group, the consumed topics,
// commit marking and its callback, rebalance callbacks, acks or the
// partitioner are overridden, and kgo.ManualFlushing and
// kgo.GreedyAutoCommit make Run fail (the client itself refuses the latter
// beside commit marking), because they would break the commit guarantee.
func ClientOpts(opts ...kgo.Opt) Opt {
	return opt(func(c *cfg) { c.clientOpts = append(c.clientOpts, opts...) })
}

// Concurrency bounds how many partitions are handled at the same time;
// records of one partition are always handled in order, one at a time.
// Default 16 (DefaultConcurrency); 0 means the default.
func Concurrency(n int) Opt { return opt(func(c *cfg) { c.concurrency = n }) }

// MaxPollRecords bounds how many records one poll returns. Default 1000
// (DefaultMaxPollRecords); 0 means the default.
func MaxPollRecords(n int) Opt { return opt(func(c *cfg) { c.maxPollRecords = n }) }

// HandlerTimeout bounds each handler call through its context; a handler
// that ignores its context is not interrupted. It must be >= 0. Default 0:
// no bound.
func HandlerTimeout(d time.Duration) Opt { return opt(func(c *cfg) { c.handlerTimeout = d }) }

// MaxRequestedDelay bounds the delay a handler may ask for with
// strategy.RetryAfter; a longer request is cut to d, with a warning. A
// record waits at the head of its tier partition, so a long request also
// holds up the records behind it there. The bound also tells corrupt due
// times from real ones: a retry record due further ahead than this
// listener could ever have set (its longest tier delay or d, whichever is
// longer, plus DueAllowance) is dead-lettered as corrupt rather than
// left to hold its partition. Default DefaultMaxRequestedDelay (1 h); 0
// means the default.
func MaxRequestedDelay(d time.Duration) Opt { return opt(func(c *cfg) { c.maxRequested = d }) }

// ShutdownTimeout bounds how long Run spends, after its context is
// canceled, finishing handler calls in progress, flushing publishes and
// committing. Handler contexts are canceled when it runs out. Default 30 s
// (DefaultShutdownTimeout); 0 means the default.
func ShutdownTimeout(d time.Duration) Opt { return opt(func(c *cfg) { c.shutdownTimeout = d }) }

// RevokeTimeout bounds how long a rebalance waits for the handler calls and
// publishes of revoked partitions before committing what is done. Keep it
// well under the group's rebalance timeout. Default 10 s
// (DefaultRevokeTimeout); 0 means the default.
func RevokeTimeout(d time.Duration) Opt { return opt(func(c *cfg) { c.revokeTimeout = d }) }

// FetchMaxWait sets how long the broker may hold an empty fetch. It bounds
// how late a resumed retry partition can be after a quiet spell; lower is
// more precise and costs more idle fetch requests. Default 100 ms
// (DefaultFetchMaxWait); 0 means the default.
func FetchMaxWait(d time.Duration) Opt { return opt(func(c *cfg) { c.fetchMaxWait = d }) }

// CreateTopics sets whether Run creates missing retry and DLT topics.
// Default true; when false, missing topics make Run fail.
func CreateTopics(create bool) Opt { return opt(func(c *cfg) { c.createTopics = create }) }

// TopicPartitions sets the partition count of created retry and DLT topics:
// at least 1, or -1 for the main topic's partition count. Default -1; 0
// means the default.
func TopicPartitions(n int32) Opt { return opt(func(c *cfg) { c.partitions = n }) }

// ReplicationFactor sets the replication factor of created topics: at
// least 1, or -1 for the broker's default. Default -1; 0 means the
// default.
func ReplicationFactor(n int16) Opt { return opt(func(c *cfg) { c.replicationFactor = n }) }

// TopicConfigs sets topic configs (e.g. "retention.ms") on created topics.
// Default: none, the broker's defaults.
func TopicConfigs(configs map[string]*string) Opt {
	return opt(func(c *cfg) { c.topicConfigs = configs })
}

// Random sets the source of jitter, a function returning values in [0, 1).
// Default math/rand/v2's Float64.
func Random(f func() float64) Opt { return opt(func(c *cfg) { c.random = f }) }

// BatchSize sets the most records a batch handler (NewBatch) is given in
// one call: at least 1. Default 100 (DefaultBatchSize); 0 means the
// default. New refuses it: a Handler takes one record at a time.
func BatchSize(n int) Opt {
	return opt(func(c *cfg) { c.batchSize, c.batchSet = n, true })
}

// BatchWait sets how long a batch handler's partition may wait for a
// batch to fill up to BatchSize before the records it holds are handed
// over: the wait starts when a worker first finds the partition holding
// fewer. It must be >= 0. Default 0: a batch is whatever the partition
// holds when a worker takes it (a poll's worth, when records flow). New
// refuses it, as it refuses BatchSize.
func BatchWait(d time.Duration) Opt {
	return opt(func(c *cfg) { c.batchWait, c.batchSet = d, true })
}

// ExactlyOnce makes the listener exactly-once for what it writes to Kafka:
// the records it forwards to retry tiers and DLTs, the records handlers
// publish with Produce, and the offsets of the records they settle are
// committed in one Kafka transaction, every TransactionInterval; a
// transaction that cannot hold every outcome it should is aborted and its
// records are delivered again. The listener reads every topic with
// read_committed, so aborted copies are never seen. Handlers' side effects
// outside Kafka stay at least once (docs/reliability.md, "Exactly once").
//
// transactionalID identifies this instance's producer: unique to the
// instance and stable across its restarts (a StatefulSet pod's name, say),
// so that a restarted instance fences its former self and aborts the
// transaction it left open. Empty: "<group>-<topic>-<host name>". Default: off
// (at least once).
func ExactlyOnce(transactionalID string) Opt {
	return opt(func(c *cfg) { c.eos, c.txnID = true, transactionalID })
}

// TransactionInterval sets how often an exactly-once listener (ExactlyOnce)
// commits its transaction; it also commits once a transaction has settled
// 100,000 records. Longer means fewer commits and more records delivered
// again after an abort or a crash; keep it well under the client's
// kgo.TransactionTimeout (40 s by default). It must be >= 0. Default
// 100 ms (DefaultTransactionInterval); 0 means the default.
func TransactionInterval(d time.Duration) Opt {
	return opt(func(c *cfg) { c.txnInterval = d })
}

// KeyOrder makes retries keep the order of each key: for the records of
// one key on one main-topic partition, the handler sees them in offset
// order, and a record is never handled while an earlier record of its key
// waits in a retry tier. A record that arrives while its key has a record
// in retry follows it into the tier, behind it, without a handler call
// (a follower: retry.HeaderFollows); records of other keys are not held
// up. Records with a nil key are not ordered: each is retried on its own,
// as without KeyOrder. docs/key-order.md describes how it works and what
// it costs.
//
// The listener's group then uses its own partition assignor, which gives
// partition n of the main topic and of every tier to one member, and
// members without KeyOrder cannot join the group (it fails to join with
// INCONSISTENT_GROUP_PROTOCOL). Every tier needs at least as many
// partitions as the main topic. KeyOrder does not combine with batch
// handlers or ExactlyOnce yet. Default: off.
func KeyOrder() Opt { return opt(func(c *cfg) { c.keyOrder = true }) }

// FollowersOnDeadLetter sets what happens, under KeyOrder, to the
// followers of a record that is dead-lettered: config.FollowersRelease
// (the default) hands them to the handler in order, as if it had
// succeeded; config.FollowersDeadLetter dead-letters those that were
// waiting behind it, in order and without a handler call, with the reason
// retry.ReasonFollower.
func FollowersOnDeadLetter(policy string) Opt {
	return opt(func(c *cfg) { c.followers = policy })
}

// MaxKeysInRetry bounds, under KeyOrder, how many keys the listener holds
// in retry at once (about 100 bytes each, plus their records' entries:
// docs/key-order.md). At the bound, a main-topic partition stops before a
// record whose key is not in retry until a key leaves; records of keys in
// retry still follow them. After an assignment the keys found in the
// tiers are all held, even past the bound. It must be >= 1. Default
// 100,000 (config.DefaultMaxKeysInRetry); 0 means the default.
func MaxKeysInRetry(n int) Opt { return opt(func(c *cfg) { c.maxKeys = n }) }
