package listener

import (
	"context"
	"log/slog"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/kretry/kretry/retry"
)

// forward publishes rec, stamped with st, to ev.Target. The publish is
// asynchronous and batched by the client; the source record stays pending
// (nothing is committed past it) until Kafka acknowledges the publish. A
// failed publish is retried with backoff for as long as the partition is
// owned and the listener is running, and reported on each failure.
func (p *part) forward(rec *kgo.Record, st retry.State, ev Event) {
	e := p.track(rec)
	out := retry.Next(rec, ev.Target, rec.Partition, st, p.l.policy.MaxErrorBytes)
	p.l.produce(p, e, out, ev, 0)
}

func (l *Listener) produce(p *part, e *entry, out *kgo.Record, ev Event, failures int) {
	// Keep a pristine copy: the client writes into the record it sends.
	again := *out
	l.client.Produce(l.produceCtx, out, func(_ *kgo.Record, err error) {
		if err == nil {
			l.emit(ev)
			p.ack(e)
			return
		}
		failures++
		fe := ev
		fe.Kind, fe.Err = EventForwardFailed, err
		l.emit(fe)
		p.mu.Lock()
		gone := p.gone
		p.mu.Unlock()
		if l.produceCtx.Err() != nil || gone {
			// Shutting down or no longer ours: leave it unacknowledged, so
			// its source record is never committed and will be read again.
			l.log.LogAttrs(context.Background(), slog.LevelWarn, "kretry: publish abandoned; its source record stays uncommitted and will be redelivered",
				slog.String("topic", ev.Topic), slog.Int("partition", int(ev.Partition)),
				slog.Int64("offset", ev.Offset), slog.String("target", ev.Target), slog.String("error", err.Error()))
			return
		}
		d := l.cfg.forwardBackoff.Schedule(min(failures, 16))[min(failures, 16)-1]
		l.log.LogAttrs(context.Background(), slog.LevelError, "kretry: publish failed; retrying, nothing is committed past it",
			slog.String("topic", ev.Topic), slog.Int("partition", int(ev.Partition)),
			slog.Int64("offset", ev.Offset), slog.String("target", ev.Target),
			slog.Int("failures", failures), slog.Duration("retry_in", d), slog.String("error", err.Error()))
		time.AfterFunc(d, func() {
			next := again
			next.Partition = again.Partition
			l.produce(p, e, &next, ev, failures)
		})
	})
}

// forwardPartitioner keeps a forwarded record on the partition number it
// had in its source topic when the target topic has that partition, and
// otherwise partitions it by key like the Java client. Records that do not
// ask for a partition (Partition < 0) are partitioned by key as well.
type forwardPartitioner struct{ byKey kgo.Partitioner }

func (fp forwardPartitioner) ForTopic(topic string) kgo.TopicPartitioner {
	return &forwardTopicPartitioner{byKey: fp.byKey.ForTopic(topic)}
}

type forwardTopicPartitioner struct{ byKey kgo.TopicPartitioner }

func (t *forwardTopicPartitioner) RequiresConsistency(r *kgo.Record) bool {
	return r.Partition >= 0 || t.byKey.RequiresConsistency(r)
}

func (t *forwardTopicPartitioner) Partition(r *kgo.Record, n int) int {
	if r.Partition >= 0 && int(r.Partition) < n {
		return int(r.Partition)
	}
	return t.byKey.Partition(r, n)
}

func (t *forwardTopicPartitioner) OnNewBatch() {
	if nb, ok := t.byKey.(kgo.TopicPartitionerOnNewBatch); ok {
		nb.OnNewBatch()
	}
}
