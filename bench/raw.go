package main

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/kretry/kretry/listener"
	"github.com/kretry/kretry/retry"
)

// rawSystem is what a careful user writes with franz-go alone: a group
// client, a poll loop, and for S2 and S2b a forward of every failing record
// to a side topic (asynchronously, acks=all, idempotent: franz-go's
// defaults). Every variant is correct: it never marks an offset for the
// background commit before that record's outcome is settled — handled, or
// its forward acknowledged by Kafka — and, within a partition, never before
// every earlier record's. They differ in how they poll, which client
// produces and whether the poll loop waits for a poll's forwards (see
// rawVariant). Polls are canceled when the Tracker is done, so the loop
// notices the end while it waits in a poll. Every variant uses kretry's
// FetchMaxWait, and PollRecords uses kretry's records per poll, so the
// comparison is of the work done per record, not of tuning.
type rawSystem struct {
	name string
	v    rawVariant
}

func (s rawSystem) Name() string { return s.name }

// rawVariant is one way of writing the raw pipeline.
type rawVariant struct {
	// fetches polls with PollFetches (everything buffered) instead of
	// PollRecords(listener.DefaultMaxPollRecords).
	fetches bool
	// producer forwards through a client of its own instead of the group
	// client that consumes.
	producer bool
	// split (with producer) consumes the retry topic of S2 with a group
	// client of its own, in a poll loop of its own; S2b has no second topic.
	split bool
	// barrier makes the poll loop wait until every forward of a poll is
	// acknowledged before it polls again; without it, the loop goes on
	// polling and each partition's offsets are marked as its forwards are
	// acknowledged, in offset order (rawMarks).
	barrier bool
	// headers stamps every forward with the headers kretry writes
	// (retry.Next: attempt, due, original topic, partition, offset and
	// timestamp, first failure, error, error type, group) and decodes them
	// (retry.Decode) before the retry is handled: a hand-written pipeline
	// that speaks kretry's wire format. It is not a baseline, it measures
	// what the format costs (the "raw-headers" system).
	headers bool
}

// rawBest is the variant run as "raw": the fastest correct one measured in
// each scenario (docs/benchmarks.md, "Raw franz-go baselines"). It is
// raw-fetches-3c-marks; in S1 only its PollFetches matters, and in S2b,
// which consumes one topic, it is raw-fetches-2c-marks.
var rawBest = rawVariant{fetches: true, producer: true, split: true}

// rawVariants returns every variant, named "raw-<poll>-<clients>-<commit>".
func rawVariants() []System {
	var out []System
	for _, fetches := range []bool{false, true} {
		for _, producer := range []bool{false, true} {
			for _, barrier := range []bool{true, false} {
				v := rawVariant{fetches: fetches, producer: producer, barrier: barrier}
				out = append(out, rawSystem{name: v.name(), v: v})
			}
		}
		v := rawVariant{fetches: fetches, producer: true, split: true}
		out = append(out, rawSystem{name: v.name(), v: v})
	}
	return out
}

func (v rawVariant) name() string {
	poll, clients, commit := "records", "1c", "marks"
	if v.fetches {
		poll = "fetches"
	}
	switch {
	case v.split:
		clients = "3c"
	case v.producer:
		clients = "2c"
	}
	if v.barrier {
		commit = "barrier"
	}
	if v.headers {
		return "raw-headers"
	}
	return strings.Join([]string{"raw", poll, clients, commit}, "-")
}

func (v rawVariant) pollNote() string {
	if v.fetches {
		return "PollFetches"
	}
	return fmt.Sprintf("PollRecords(%d)", listener.DefaultMaxPollRecords)
}

// note describes the variant in the table's configuration column.
func (v rawVariant) note() string {
	parts := []string{v.pollNote()}
	switch {
	case v.split:
		parts = append(parts, "a group client per consumed topic + a producer client")
	case v.producer:
		parts = append(parts, "group client + producer client")
	default:
		parts = append(parts, "one client")
	}
	if v.barrier {
		parts = append(parts, "loop waits for the poll's acks, then marks")
	} else {
		parts = append(parts, "marks each partition's offsets in order as acks arrive, loop never waits")
	}
	if v.headers {
		parts = append(parts, "kretry's headers written (retry.Next) and read back (retry.Decode)")
	}
	return strings.Join(parts, ", ") + ", autocommit of marks"
}

// untilDone returns a context canceled when tr is done (or ctx ends).
func untilDone(ctx context.Context, tr *Tracker) (context.Context, context.CancelFunc) {
	pctx, cancel := context.WithCancel(ctx)
	go func() {
		select {
		case <-tr.Done():
		case <-pctx.Done():
		}
		cancel()
	}()
	return pctx, cancel
}

// rawClients are a variant's clients: cons consumes in the group and
// commits; prod forwards (cons itself, or a client of its own).
type rawClients struct{ cons, prod *kgo.Client }

func (v rawVariant) clients(env *Env, group string, topics ...string) (rawClients, error) {
	cons, err := kgo.NewClient(kgo.SeedBrokers(env.Brokers...), kgo.ConsumerGroup(group), kgo.ConsumeTopics(topics...),
		kgo.AutoCommitMarks(), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchMaxWait(listener.DefaultFetchMaxWait))
	if err != nil {
		return rawClients{}, err
	}
	cs := rawClients{cons: cons, prod: cons}
	if v.producer {
		if cs.prod, err = kgo.NewClient(kgo.SeedBrokers(env.Brokers...)); err != nil {
			cons.Close()
			return rawClients{}, err
		}
	}
	return cs, nil
}

func (cs rawClients) close() {
	if cs.prod != cs.cons {
		cs.prod.Close()
	}
	cs.cons.Close()
}

func (v rawVariant) poll(ctx context.Context, cl *kgo.Client) kgo.Fetches {
	if v.fetches {
		return cl.PollFetches(ctx)
	}
	return cl.PollRecords(ctx, listener.DefaultMaxPollRecords)
}

// HappyPath handles each poll's records and then marks each partition's
// last offset: franz-go's plain autocommit would commit what was polled,
// before it is handled. Only the poll differs between variants here (S1
// neither forwards nor waits), so besides raw itself only the one-client
// marking variants run it.
func (s rawSystem) HappyPath(ctx context.Context, env *Env, in HappyPathInput) (Throughput, error) {
	if s.name != "raw" && (s.v.producer || s.v.barrier) {
		same := rawVariant{fetches: s.v.fetches}
		return Throughput{}, fmt.Errorf("%w: S1 neither forwards nor waits; same as %s", ErrUnsupported, same.name())
	}
	cs, err := s.v.clients(env, in.Group, in.Topic)
	if err != nil {
		return Throughput{}, err
	}
	defer cs.close()
	tr := NewTracker(in.Records, nil)
	defer tr.Close()
	pctx, cancel := untilDone(ctx, tr)
	defer cancel()
	marks := map[int32]kgo.EpochOffset{}
	for {
		select {
		case <-tr.Done():
			return tr.Throughput(s.v.pollNote() + ", marks each poll's offsets once handled, autocommit of marks"), nil
		default:
		}
		fs := s.v.poll(pctx, cs.cons)
		if ctx.Err() != nil {
			return Throughput{}, fmt.Errorf("%w (%d of %d)", errTimeout, tr.Successes(), in.Records)
		}
		fs.EachPartition(func(p kgo.FetchTopicPartition) {
			for _, r := range p.Records {
				tr.Begin(string(r.Key))
				tr.SucceededIn(r.Partition)
			}
			if n := len(p.Records); n > 0 {
				last := p.Records[n-1]
				marks[p.Partition] = kgo.EpochOffset{Epoch: last.LeaderEpoch, Offset: last.Offset + 1}
			}
		})
		if len(marks) > 0 {
			cs.cons.MarkCommitOffsets(map[string]map[int32]kgo.EpochOffset{in.Topic: marks})
			clear(marks)
		}
	}
}

// RetryHop: main-topic records fail and are forwarded to the retry topic;
// retry-topic records, consumed by the same group client, succeed.
func (s rawSystem) RetryHop(ctx context.Context, env *Env, in RetryHopInput) (Throughput, error) {
	retryTopic := in.Topic + "-raw-retry"
	if err := env.CreateTopic(ctx, retryTopic, in.Partitions, nil); err != nil {
		return Throughput{}, err
	}
	tr := NewTracker(in.Records, nil)
	defer tr.Close()
	handle := func(r *kgo.Record) bool {
		tr.Begin(string(r.Key))
		if r.Topic == retryTopic { // the retry, told by its topic (as kretry's by its context)
			tr.SucceededIn(r.Partition)
			return false
		}
		return true
	}
	if !s.v.split {
		if err := s.v.pipeline(ctx, env, in.Group, tr, []string{in.Topic, retryTopic}, retryTopic, handle, nil); err != nil {
			return Throughput{}, err
		}
		return tr.EndToEnd("forward to a retry topic, consumed by the group client; " + s.v.note()), nil
	}
	err := s.v.withReader(ctx, env, in.Group+"-retry", tr, retryTopic, handle, func() error {
		return s.v.pipeline(ctx, env, in.Group, tr, []string{in.Topic}, retryTopic, handle, nil)
	})
	if err != nil {
		return Throughput{}, err
	}
	return tr.EndToEnd("forward to a retry topic, consumed in a group of its own; " + s.v.note()), nil
}

// DeadLetter: every record fails for good and is forwarded to a DLT; a
// record counts once Kafka has acknowledged its DLT copy.
func (s rawSystem) DeadLetter(ctx context.Context, env *Env, in DeadLetterInput) (Throughput, error) {
	if s.name != "raw" && !s.v.headers && s.v.split {
		same := rawVariant{fetches: s.v.fetches, producer: true}
		return Throughput{}, fmt.Errorf("%w: S2b consumes one topic; same as %s", ErrUnsupported, same.name())
	}
	dltTopic := in.Topic + "-raw-dlt"
	if err := env.CreateTopic(ctx, dltTopic, in.Partitions, nil); err != nil {
		return Throughput{}, err
	}
	tr := NewTracker(in.Records, nil)
	defer tr.Close()
	handle := func(r *kgo.Record) bool {
		tr.Begin(string(r.Key))
		return true
	}
	acked := func(r *kgo.Record) { tr.SucceededIn(r.Partition) }
	// The DLT is read back, as kretry's listener reads its DLT and calls
	// its DLT handler: in a group of its own, by a client of its own, with
	// a no-op handler (raw-headers decodes each record's state first).
	noop := func(*kgo.Record) bool { return false }
	err := s.v.withReader(ctx, env, in.Group+"-dlt", tr, dltTopic, noop, func() error {
		return s.v.pipeline(ctx, env, in.Group, tr, []string{in.Topic}, dltTopic, handle, acked)
	})
	if err != nil {
		return Throughput{}, err
	}
	return tr.EndToEnd("forward to a DLT, read back in a group of its own with a no-op handler; " + s.v.note()), nil
}

// withReader runs main while topic is read in group by a client and a poll
// loop of their own, which hand each record to handle and forward nothing,
// until tr is done; it returns the first error of the two.
func (v rawVariant) withReader(ctx context.Context, env *Env, group string, tr *Tracker, topic string,
	handle func(*kgo.Record) bool, main func() error) error {
	reader := v
	reader.producer = false // it forwards nothing
	side := make(chan error, 1)
	go func() { side <- reader.pipeline(ctx, env, group, tr, []string{topic}, "", handle, nil) }()
	err := main()
	if serr := <-side; err == nil {
		err = serr
	}
	return err
}

// pipeline consumes topics in group until tr is done. handle is called for
// every record in order and says whether to forward it to the topic to;
// acked (if not nil) is called with each forward once Kafka acknowledged it.
// A record is marked for the commit once it and every earlier record of its
// partition are settled: handled, or forwarded and acknowledged.
func (v rawVariant) pipeline(ctx context.Context, env *Env, group string, tr *Tracker, topics []string, to string,
	handle func(*kgo.Record) bool, acked func(*kgo.Record)) error {
	cs, err := v.clients(env, group, topics...)
	if err != nil {
		return err
	}
	defer cs.close()
	pctx, cancel := untilDone(ctx, tr)
	defer cancel()
	var (
		failed   atomic.Bool
		failOnce sync.Once
		failure  error
		polled   sync.WaitGroup // the forwards of the current poll (barrier only)
	)
	marks := newRawMarks(cs.cons)
	for {
		select {
		case <-tr.Done():
			return nil
		default:
		}
		fs := v.poll(pctx, cs.cons)
		if ctx.Err() != nil {
			return fmt.Errorf("%w (%d of %d)", errTimeout, tr.Successes(), tr.want)
		}
		if failed.Load() {
			return fmt.Errorf("raw: forward: %w", failure)
		}
		fs.EachPartition(func(p kgo.FetchTopicPartition) {
			if len(p.Records) == 0 {
				return
			}
			b := marks.batch(p.Topic, p.Partition, p.Records[len(p.Records)-1])
			ack := func(r *kgo.Record, err error) {
				if err != nil {
					failOnce.Do(func() { failure = err; failed.Store(true) })
				} else {
					if acked != nil {
						acked(r)
					}
					b.settle() // an unacknowledged forward holds its batch back for good
				}
				if v.barrier {
					polled.Done()
				}
			}
			for _, r := range p.Records {
				if v.headers && len(r.Headers) > 0 {
					// A retry: read its state, and check it is due (it
					// always is: S2's tier has no delay).
					st, _, err := retry.Decode(r.Headers)
					if err == nil && time.Now().Before(st.Due) {
						err = fmt.Errorf("%s[%d]@%d is not due until %v", r.Topic, r.Partition, r.Offset, st.Due)
					}
					if err != nil {
						failOnce.Do(func() { failure = err; failed.Store(true) })
						return
					}
				}
				if !handle(r) {
					continue
				}
				b.hold()
				if v.barrier {
					polled.Add(1)
				}
				if v.headers {
					cs.prod.Produce(ctx, v.stamped(r, to, group, acked != nil), ack)
					continue
				}
				cs.prod.Produce(ctx, &kgo.Record{Topic: to, Key: r.Key, Value: r.Value, Headers: r.Headers}, ack)
			}
			b.settle() // the batch's own hold: every record of it is handled
		})
		if v.barrier {
			polled.Wait()
		}
	}
}

// stamped is the forward of r to the topic to, with the headers kretry
// would write for its first failure in group: a retry due at once, or
// (deadLetter) a dead-letter record.
func (rawVariant) stamped(r *kgo.Record, to, group string, deadLetter bool) *kgo.Record {
	now := time.Now()
	st := retry.First(r, now)
	st.Group = group
	if deadLetter {
		st = st.WithFailure(time.Time{}, errFail.Error(), "*errors.errorString").DeadLetter(retry.ReasonPermanent)
	} else {
		st = st.WithFailure(now, errFail.Error(), "*errors.errorString")
	}
	return retry.Next(r, to, r.Partition, st, 0)
}

// rawMarks marks consumed offsets for the commit in offset order per
// partition, as the batches of records polled from it are settled, in
// whatever order that happens. The poll loop alone creates batches; the
// produce callbacks settle them.
type rawMarks struct {
	mark  func(topic string, partition int32, next kgo.EpochOffset)
	parts map[string]map[int32]*rawPartition // poll loop only
}

// rawPartition is one partition's unsettled batches, oldest first.
type rawPartition struct {
	topic     string
	partition int32
	mark      func(topic string, partition int32, next kgo.EpochOffset)
	mu        sync.Mutex
	queue     []*rawBatch
}

// rawBatch is the records of one partition in one poll.
type rawBatch struct {
	p       *rawPartition
	next    kgo.EpochOffset // the offset to commit once the batch is settled
	pending atomic.Int64    // holds: one per unacknowledged forward, plus the poll loop's own
	settled bool            // under p.mu
}

func newRawMarks(cl *kgo.Client) *rawMarks {
	return &rawMarks{parts: map[string]map[int32]*rawPartition{},
		mark: func(topic string, partition int32, next kgo.EpochOffset) {
			cl.MarkCommitOffsets(map[string]map[int32]kgo.EpochOffset{topic: {partition: next}})
		}}
}

// batch starts the batch of a partition's records that ends with last. It
// holds one hold, released by the last settle once every record of the
// batch has been handled.
func (m *rawMarks) batch(topic string, partition int32, last *kgo.Record) *rawBatch {
	ps := m.parts[topic]
	if ps == nil {
		ps = map[int32]*rawPartition{}
		m.parts[topic] = ps
	}
	p := ps[partition]
	if p == nil {
		p = &rawPartition{topic: topic, partition: partition, mark: m.mark}
		ps[partition] = p
	}
	b := &rawBatch{p: p, next: kgo.EpochOffset{Epoch: last.LeaderEpoch, Offset: last.Offset + 1}}
	b.pending.Store(1)
	p.mu.Lock()
	p.queue = append(p.queue, b)
	p.mu.Unlock()
	return b
}

// hold adds a forward the batch must wait for.
func (b *rawBatch) hold() { b.pending.Add(1) }

// settle releases one hold. When the batch has none left, it marks the end
// of the longest settled run of batches at the head of its partition.
func (b *rawBatch) settle() {
	if b.pending.Add(-1) != 0 {
		return
	}
	p := b.p
	p.mu.Lock()
	defer p.mu.Unlock()
	b.settled = true
	n := 0
	for n < len(p.queue) && p.queue[n].settled {
		n++
	}
	if n == 0 {
		return // an earlier batch of the partition still waits
	}
	next := p.queue[n-1].next
	rest := copy(p.queue, p.queue[n:])
	clear(p.queue[rest:])
	p.queue = p.queue[:rest]
	// Marked under p.mu, so marks of one partition are made in order.
	p.mark(p.topic, p.partition, next)
}
