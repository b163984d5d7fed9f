// Package hop holds the rules every writer of retry-tier and dead-letter
// records shares — the listener when it forwards a failed record, and
// "kretry dlt replay" when it sends one back: which partition a hop record
// lands in, and which publish errors refuse a record for good. One copy of
// each, so that the two cannot drift apart.
package hop

import (
	"errors"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

// Partitioner keeps a hop record on the partition number its Partition
// field names when the target topic has that partition, so that a
// record's retries stay on the partition number of its source; otherwise
// (Partition < 0, or a partition the target lacks) it partitions by key
// as Kafka's Java client does (murmur2 of the key; records without a key
// stick to one partition per batch).
func Partitioner() kgo.Partitioner { return keep{byKey: kgo.StickyKeyPartitioner(nil)} }

type keep struct{ byKey kgo.Partitioner }

func (k keep) ForTopic(topic string) kgo.TopicPartitioner {
	return &keepTopic{byKey: k.byKey.ForTopic(topic)}
}

type keepTopic struct{ byKey kgo.TopicPartitioner }

func (k *keepTopic) RequiresConsistency(r *kgo.Record) bool {
	return r.Partition >= 0 || k.byKey.RequiresConsistency(r)
}

func (k *keepTopic) Partition(r *kgo.Record, n int) int {
	if r.Partition >= 0 && int(r.Partition) < n {
		return int(r.Partition)
	}
	return k.byKey.Partition(r, n)
}

// OnNewBatch passes the new-batch signal on to the sticky partitioner of
// records without a key.
func (k *keepTopic) OnNewBatch() {
	if nb, ok := k.byKey.(kgo.TopicPartitionerOnNewBatch); ok {
		nb.OnNewBatch()
	}
}

// Rejected reports whether a publish error refuses the record for what it
// is rather than for the cluster's state, so that publishing it again as
// it is fails again: too large for the topic or for a request, invalid, or
// with a timestamp outside what the topic accepts. franz-go retries the
// errors that are retryable itself; what else reaches a produce promise
// (a missing ACL, say) is something an operator can fix, and worth
// retrying. A batch refused as too large may still pass when its records
// are sent alone.
func Rejected(err error) bool {
	return errors.Is(err, kerr.MessageTooLarge) || errors.Is(err, kerr.RecordListTooLarge) ||
		errors.Is(err, kerr.InvalidRecord) || errors.Is(err, kerr.InvalidTimestamp)
}
