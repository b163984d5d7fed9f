package config

import (
	"maps"
	"slices"
	"time"

	"github.com/kretry/kretry/retry"
	"github.com/kretry/kretry/strategy"
)

// Spec is everything a declaration can say about one listener: its main
// topic, its consumer group, its retry policy and how its retry and DLT
// topics are created. Resolve builds one from Go-side defaults and the
// declarations that apply (struct tags, policy files); the listener
// package turns it into a running listener (listener.FromSpec).
type Spec struct {
	// Topic is the main topic. Required; it identifies the listener.
	Topic string
	// Group is the consumer group for the main topic, its retry tiers and
	// its DLTs. Default "kretry-<topic>".
	Group string
	// Policy is the retry policy. Default retry.Policy{} normalized
	// (Spring Kafka's defaults).
	Policy retry.Policy
	// Topics says how missing retry and DLT topics are created.
	Topics TopicSettings
	// Batch sizes the batches of a batch handler (listener.NewBatch, or a
	// handler field that holds a listener.BatchHandler). A single-record
	// handler has no batches: its declarations must not set it.
	Batch BatchSettings
	// ExactlyOnce makes the listener exactly-once for what it writes to
	// Kafka (listener.ExactlyOnce). Default off: at least once.
	ExactlyOnce ExactlyOnceSettings
	// KeyOrder makes the listener's retries keep the order of the records
	// of each key (listener.KeyOrder). Default off.
	KeyOrder KeyOrderSettings
}

// Followers' fates when the record they wait behind is dead-lettered
// (KeyOrderSettings.OnDeadLetter).
const (
	// FollowersRelease: the followers are handed to the handler in
	// order, as if the dead-lettered record had succeeded.
	FollowersRelease = "release"
	// FollowersDeadLetter: the followers that were waiting behind the
	// dead-lettered record when it was dead-lettered are dead-lettered
	// too, in order, without a handler call, with the reason
	// retry.ReasonFollower.
	FollowersDeadLetter = "dead-letter"
)

// DefaultMaxKeysInRetry is the most keys a key-ordered listener holds in
// retry when KeyOrderSettings.MaxKeys is not set.
const DefaultMaxKeysInRetry = 100000

// KeyOrderSettings turn on key-ordered retries: for the records of one
// key on one main-topic partition, the handler sees them in offset order,
// and a record is never handled while an earlier record of its key waits
// in a retry tier; later records of that key follow it into the tier
// without a handler call (docs/key-order.md). OnDeadLetter and MaxKeys
// apply only with Enabled, as for ExactlyOnceSettings.
type KeyOrderSettings struct {
	// Enabled turns key order on. Default false.
	Enabled bool
	// OnDeadLetter is what happens to the followers of a record that is
	// dead-lettered: FollowersRelease or FollowersDeadLetter. Default ""
	// is FollowersRelease.
	OnDeadLetter string
	// MaxKeys bounds the keys held in retry at once by one listener: at
	// least 1. At the bound, a main-topic partition stops before a
	// record of a key not in retry until a key leaves. Default
	// DefaultMaxKeysInRetry; 0 means the default.
	MaxKeys int
}

// normalize gives unset (zero) settings their defaults.
func (k KeyOrderSettings) normalize() KeyOrderSettings {
	if k.OnDeadLetter == "" {
		k.OnDeadLetter = FollowersRelease
	}
	if k.MaxKeys == 0 {
		k.MaxKeys = DefaultMaxKeysInRetry
	}
	return k
}

// DefaultTransactionInterval is how often an exactly-once listener
// commits its transaction when ExactlyOnceSettings.Interval is not set.
const DefaultTransactionInterval = 100 * time.Millisecond

// ExactlyOnceSettings turn on exactly-once mode: the records a listener
// forwards to retry tiers and DLTs, the records its handlers publish and
// the offsets of the records they settle are committed in one Kafka
// transaction (docs/reliability.md, "Exactly once"). TransactionalID and
// Interval apply only with Enabled: a listener's own declaration (its tag
// or policy file entry) that sets them without it is an error, and values
// from the layers every listener shares (Go-side defaults, a policy
// file's defaults) are not applied to a listener that is not exactly once.
type ExactlyOnceSettings struct {
	// Enabled turns exactly-once mode on. Default false.
	Enabled bool
	// TransactionalID identifies the listener's transactional producer:
	// unique to the running instance and stable across its restarts, so
	// that a restarted instance fences its former self. Valid UTF-8
	// without control characters, at most MaxTransactionalIDLength
	// bytes. Default "": "<group>-<topic>-<host name>", derived when the
	// listener runs.
	TransactionalID string
	// Interval is how often the listener commits its transaction: at
	// least 0. Default DefaultTransactionInterval (100 ms); 0 means the
	// default.
	Interval time.Duration
}

// DefaultBatchSize is the most records a batch handler is given at once
// when BatchSettings.Size is not set.
const DefaultBatchSize = 100

// BatchSettings sizes a batch handler's batches. A batch holds records of
// one partition, in offset order, all from the main topic or all from one
// retry tier; it is handed to the handler when it has Size records, or
// when Wait has passed since the worker first found the partition's
// queue holding fewer, whichever comes first.
type BatchSettings struct {
	// Size is the most records in one batch: at least 1. Default
	// DefaultBatchSize (100); 0 means the default.
	Size int
	// Wait is how long a partition's records may wait for a batch to
	// fill: at least 0. Default 0: a batch is what the partition holds
	// when a worker takes it, up to Size.
	Wait time.Duration
}

// TopicSettings says how the listener creates its missing retry and DLT
// topics. Its zero value is not the default, since Create defaults to
// true; see DefaultSpec. Zero Partitions and ReplicationFactor are unset
// and mean their defaults, as for every setting.
type TopicSettings struct {
	// Create allows creating missing retry and DLT topics. Default true.
	Create bool
	// Partitions is the partition count of created topics; -1 means the
	// main topic's count. Default -1; 0 means the default.
	Partitions int32
	// ReplicationFactor of created topics; -1 means the broker's default.
	// Default -1; 0 means the default.
	ReplicationFactor int16
	// Configs are topic configs (such as "retention.ms") for created
	// topics. Default none.
	Configs map[string]*string
}

// DefaultGroupPrefix is the prefix of a listener's default consumer group,
// "kretry-<topic>".
const DefaultGroupPrefix = "kretry-"

// DefaultSpec returns the built-in defaults for topic: group
// "kretry-<topic>", the normalized zero retry.Policy, topics created
// with the main topic's partition count and the broker's replication
// factor, batches of up to DefaultBatchSize records without a wait,
// exactly-once mode off (with its interval at the default) and key order
// off (with its settings at their defaults).
func DefaultSpec(topic string) Spec {
	return Spec{
		Topic:       topic,
		Group:       DefaultGroupPrefix + topic,
		Policy:      retry.Policy{}.Normalize(),
		Topics:      TopicSettings{Create: true, Partitions: -1, ReplicationFactor: -1},
		Batch:       BatchSettings{Size: DefaultBatchSize},
		ExactlyOnce: ExactlyOnceSettings{Interval: DefaultTransactionInterval},
		KeyOrder:    KeyOrderSettings{OnDeadLetter: FollowersRelease, MaxKeys: DefaultMaxKeysInRetry},
	}
}

// Plan returns the topic plan of s: its policy's plan for its topic and
// group (retry.Policy.PlanFor; the group names topics only with the
// policy's Naming.GroupTopics).
func (s Spec) Plan() (strategy.Plan, error) { return s.Policy.PlanFor(s.Topic, s.Group) }

// normalize gives unset (zero) Partitions and ReplicationFactor their
// default, -1.
func (t TopicSettings) normalize() TopicSettings {
	if t.Partitions == 0 {
		t.Partitions = -1
	}
	if t.ReplicationFactor == 0 {
		t.ReplicationFactor = -1
	}
	return t
}

// normalize gives an unset (zero) Size its default.
func (b BatchSettings) normalize() BatchSettings {
	if b.Size == 0 {
		b.Size = DefaultBatchSize
	}
	return b
}

// normalize gives an unset (zero) Interval its default.
func (e ExactlyOnceSettings) normalize() ExactlyOnceSettings {
	if e.Interval == 0 {
		e.Interval = DefaultTransactionInterval
	}
	return e
}

// Equal reports whether s and o describe the same listener: same topic and
// group, equal policies (retry.Policy.Equal: matchers compare by name),
// the same batch settings (a zero Size equals the default), the same
// exactly-once settings (a zero Interval equals the default) and the same
// topic settings (configs compare by value; nil and empty maps
// are equal; zero Partitions and ReplicationFactor equal their default,
// -1).
func (s Spec) Equal(o Spec) bool {
	st, ot := s.Topics.normalize(), o.Topics.normalize()
	return s.Topic == o.Topic && s.Group == o.Group && s.Policy.Equal(o.Policy) &&
		s.Batch.normalize() == o.Batch.normalize() &&
		s.ExactlyOnce.normalize() == o.ExactlyOnce.normalize() &&
		s.KeyOrder.normalize() == o.KeyOrder.normalize() &&
		st.Create == ot.Create && st.Partitions == ot.Partitions &&
		st.ReplicationFactor == ot.ReplicationFactor &&
		maps.EqualFunc(st.Configs, ot.Configs, func(a, b *string) bool {
			return a == b || a != nil && b != nil && *a == *b
		})
}

// clone returns a copy of s that shares no slices or maps with it.
func (s Spec) clone() Spec {
	s.Policy.Backoff.Delays = slices.Clone(s.Policy.Backoff.Delays)
	s.Policy.Classifier.Include = slices.Clone(s.Policy.Classifier.Include)
	s.Policy.Classifier.Exclude = slices.Clone(s.Policy.Classifier.Exclude)
	s.Policy.Classifier.Routes = slices.Clone(s.Policy.Classifier.Routes)
	if s.Topics.Configs != nil {
		c := make(map[string]*string, len(s.Topics.Configs))
		for k, v := range s.Topics.Configs {
			if v != nil {
				v = new(*v)
			}
			c[k] = v
		}
		s.Topics.Configs = c
	}
	return s
}
