package listener

import (
	"cmp"
	"slices"
	"time"

	"github.com/kretry/kretry/strategy"
)

// PartitionState is a snapshot of one partition as the listener and its
// Kafka client see it. Operators use it to answer "why is this partition
// not moving?"; tests use it to prove no partition is left paused without a
// reason.
type PartitionState struct {
	Topic     string
	Partition int32
	Role      strategy.TopicRole
	// Owned reports whether the listener currently owns the partition. A
	// partition paused in the client but not owned is a bug; Partitions
	// lists such partitions so that it can be seen.
	Owned bool
	// Paused reports whether fetching is paused in the Kafka client (the
	// client's own state, not the listener's bookkeeping).
	Paused bool
	// Due is the head record's due time while the partition waits for it;
	// zero otherwise.
	Due time.Time
	// Full reports a pause because the partition holds more fetched
	// records than its share while others wait; it ends as they drain.
	// Full can be true briefly while Paused is false: the client is
	// paused only once it has handed out what it buffered of the
	// partition.
	Full bool
	// Held counts records fetched and not yet handled.
	Held int
	// Unacked counts publishes (to tiers or DLTs) Kafka has not yet
	// acknowledged; nothing is committed past them.
	Unacked int
}

// Partitions returns a snapshot of every partition the listener owns, and
// of any partition paused in its client that it does not own, sorted by
// topic and partition. It returns nil before Run starts consuming and after
// Run returns. It is safe to call from any goroutine; the snapshot is
// taken partition by partition, not atomically across partitions.
//
// For every owned partition, Paused implies a non-zero Due or Full: a
// partition is never paused without a record it waits for or a backlog it
// is working off.
func (l *Listener) Partitions() []PartitionState {
	c := l.live.Load()
	if c == nil {
		return nil
	}
	// The client's pause state first, outside partsMu: the client's
	// rebalance callbacks take partsMu while the client holds its locks.
	paused := map[topicPartition]bool{}
	for topic, ps := range c.client.PauseFetchPartitions(nil) {
		for _, p := range ps {
			paused[topicPartition{topic, p}] = true
		}
	}
	c.partsMu.Lock()
	defer c.partsMu.Unlock()
	out := make([]PartitionState, 0, len(c.parts))
	for k, p := range c.parts {
		p.mu.Lock()
		s := PartitionState{
			Topic: k.topic, Partition: k.partition, Role: p.role, Owned: true,
			Paused: paused[k], Full: p.pause.has(pauseFull),
			Held: p.queue.len(), Unacked: p.commits.unacked,
		}
		if p.waiting {
			s.Due = p.dueAt
		}
		p.mu.Unlock()
		delete(paused, k)
		out = append(out, s)
	}
	for k := range paused {
		role, _ := l.plan.Lookup(k.topic)
		out = append(out, PartitionState{Topic: k.topic, Partition: k.partition, Role: role, Paused: true})
	}
	slices.SortFunc(out, func(a, b PartitionState) int {
		return cmp.Or(cmp.Compare(a.Topic, b.Topic), cmp.Compare(a.Partition, b.Partition))
	})
	return out
}
