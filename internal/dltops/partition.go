package dltops

import "github.com/twmb/franz-go/pkg/kgo"

// partitioner sends a record to the partition its Partition field names
// when the topic has it, and otherwise (Partition -1, or a partition the
// topic lacks) by key, as Kafka's default partitioner does (murmur2 of the
// key; records without a key stick to one partition per batch).
func partitioner() kgo.Partitioner { return keepPartitioner{kgo.StickyKeyPartitioner(nil)} }

type keepPartitioner struct{ byKey kgo.Partitioner }

func (k keepPartitioner) ForTopic(topic string) kgo.TopicPartitioner {
	return &keepTopicPartitioner{k.byKey.ForTopic(topic)}
}

type keepTopicPartitioner struct{ byKey kgo.TopicPartitioner }

func (k *keepTopicPartitioner) RequiresConsistency(r *kgo.Record) bool {
	return r.Partition >= 0 || k.byKey.RequiresConsistency(r)
}

func (k *keepTopicPartitioner) Partition(r *kgo.Record, n int) int {
	if r.Partition >= 0 && int(r.Partition) < n {
		return int(r.Partition)
	}
	return k.byKey.Partition(r, n)
}

// OnNewBatch passes the new-batch signal on to the sticky partitioner of
// records without a key.
func (k *keepTopicPartitioner) OnNewBatch() {
	if nb, ok := k.byKey.(kgo.TopicPartitionerOnNewBatch); ok {
		nb.OnNewBatch()
	}
}
