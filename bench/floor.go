package main

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/kretry/kretry/retry"
)

// S3's floor: what the broker gives a plain franz-go producer that writes
// what kretry's forwards write — the same records (the input's 100 B values
// and the kretry headers of each tier), to the same tier topics, at each
// tier's forward rate — measured in the same run, right after the warm
// phase, when those topics are as warm as they were during it. A retry
// cannot reach the handler before its forward has been acknowledged, so the
// producer's acknowledgement latency is the least lateness any retry-topic
// design could show on this broker; the warm phase's lateness is reported
// against it. (Topics created for the floor and filled in a burst just
// before it are not warm: on Kafka 4.1.1 such a floor stalled for up to
// half a second, as fresh tiers do.)

// AckLatency summarises how long a plain producer waited for its records to
// be acknowledged (from Produce to the promise).
type AckLatency struct {
	Topics     int           `json:"topics"`
	Partitions int           `json:"partitions"`
	Rate       float64       `json:"rate"`   // records/s, all topics together
	Warmed     []int64       `json:"warmed"` // records in each topic before the timed run
	Samples    int           `json:"samples"`
	P50        time.Duration `json:"p50_ns"`
	P99        time.Duration `json:"p99_ns"`
	Max        time.Duration `json:"max_ns"`
	// Slow counts the records acknowledged after more than SlowOver, and
	// SlowFrom and SlowTo say when the first and last of them were produced
	// (since the floor began): a start-up stall or a steady tail.
	Slow     int           `json:"slow"`
	SlowOver time.Duration `json:"slow_over_ns"`
	SlowFrom time.Duration `json:"slow_from_ns,omitempty"`
	SlowTo   time.Duration `json:"slow_to_ns,omitempty"`
	Note     string        `json:"note,omitempty"`
}

// forwardRates returns the records/s that S3's forwards write to each tier
// at an input rate: record i fails 1 + i mod len(delays) times, so every
// record reaches tier 1 and a share (len-j)/len of them reaches tier j+1.
func forwardRates(rate int, delays []time.Duration) []float64 {
	n := len(delays)
	out := make([]float64, n)
	for j := range n {
		out[j] = float64(rate) * float64(n-j) / float64(n)
	}
	return out
}

// FloorInput is what Env.Floor measures.
type FloorInput struct {
	Topics     []string // one per tier, existing: S3's tier topics
	Partitions int
	Delays     []time.Duration
	Rates      []float64 // records/s to each tier's topic
	Duration   time.Duration
	// Source and Group are the main topic and the consumer group named in
	// the records' kretry headers, so that they are as long as a forward's.
	Source, Group string
	// Partitioner is "keep" (record i of a topic to partition i mod
	// Partitions, as kretry's forwards keep their source's partition, and
	// the input spreads over every partition) or "sticky" (franz-go's
	// default partitioner: fills one partition's batch, then moves on).
	Partitioner string
	// Load, if set, adds the rest of kretry's fresh-phase workload: a new
	// main topic (Load.Main, existing) written at Load.Rate by its own
	// producer as the input is, and a consumer group reading the main topic
	// and the floor's topics.
	Load *FloorLoad
}

// FloorLoad is the workload a floor runs beside its producer (FloorInput.Load).
type FloorLoad struct {
	Main  string
	Rate  int
	Group string
	// Write and Read choose the parts: writing the main topic, and the
	// group reading it and the floor's topics.
	Write, Read bool
}

// record returns a record for tier j of the floor like the one kretry
// forwards there: the input's key and value with the kretry headers of
// attempt j+2 (the same header names and value sizes; the times are now's).
func (in FloorInput) record(topic string, key, value []byte, j int) *kgo.Record {
	now := time.Now()
	src := &kgo.Record{Topic: in.Source, Key: key, Value: value, Timestamp: now}
	st := retry.First(src, now).WithFailure(now.Add(in.Delays[0]), errFail.Error(), "*errors.errorString")
	for k := 1; k <= j; k++ {
		st = st.Advance(now.Add(in.Delays[k]), errFail.Error(), "*errors.errorString")
	}
	st.Group = in.Group
	return retry.Next(src, topic, 0, st, 0)
}

// Floor produces for in.Duration at in.Rates[j] records/s to
// in.Topics[j], records spread over the partitions in turn (or as
// franz-go's default partitioner puts them: in.Partitioner), through one
// client with franz-go's producer defaults (acks=all, idempotent, 10 ms
// linger), and measures each record's acknowledgement latency.
func (e *Env) Floor(ctx context.Context, in FloorInput) (_ AckLatency, err error) {
	topics, partitions, rates, d := in.Topics, in.Partitions, in.Rates, in.Duration
	val := randomBytes(100)
	warm, err := e.records(ctx, topics)
	if err != nil {
		return AckLatency{}, err
	}
	opts := []kgo.Opt{kgo.SeedBrokers(e.Brokers...)}
	keep := in.Partitioner != "sticky"
	if keep {
		opts = append(opts, kgo.RecordPartitioner(kgo.ManualPartitioner()))
	}
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		return AckLatency{}, err
	}
	defer cl.Close()
	if in.Load != nil {
		stop, err := e.floorLoad(ctx, in, d)
		if err != nil {
			return AckLatency{}, err
		}
		defer func() {
			if lerr := stop(); lerr != nil && err == nil {
				err = lerr
			}
		}()
	}
	var (
		mu    sync.Mutex
		lat   []time.Duration
		first error
		slow  []time.Duration // when each slow record was produced
	)
	slowOver := in.Delays[0]
	start := time.Now()
	sent := make([]int, len(topics))
	tick := time.NewTicker(time.Millisecond) // as ProduceAtRate: each tick sends what is due
	defer tick.Stop()
	for time.Since(start) < d {
		select {
		case <-ctx.Done():
			return AckLatency{}, ctx.Err()
		case <-tick.C:
		}
		el := time.Since(start).Seconds()
		for j, t := range topics {
			for due := int(el*rates[j]) + 1; sent[j] < due; sent[j]++ {
				r := in.record(t, fmt.Appendf(nil, "f%d", sent[j]), val, j)
				if keep {
					r.Partition = int32(sent[j] % partitions)
				} else {
					r.Partition = -1
				}
				at := time.Now()
				cl.Produce(ctx, r, func(_ *kgo.Record, err error) {
					took := time.Since(at)
					mu.Lock()
					defer mu.Unlock()
					if err != nil && first == nil {
						first = err
					}
					lat = append(lat, took)
					if took > slowOver {
						slow = append(slow, at.Sub(start))
					}
				})
			}
		}
	}
	if err := cl.Flush(ctx); err != nil {
		return AckLatency{}, err
	}
	mu.Lock()
	defer mu.Unlock()
	if first != nil {
		return AckLatency{}, fmt.Errorf("floor: produce: %w", first)
	}
	var rate float64
	for _, r := range rates {
		rate += r
	}
	part := "ManualPartitioner, record i to partition i mod partitions"
	if !keep {
		part = "default partitioner (sticky, uniform bytes)"
	}
	a := AckLatency{Topics: len(topics), Partitions: partitions, Rate: rate, Warmed: warm, Samples: len(lat),
		Slow: len(slow), SlowOver: slowOver,
		Note: fmt.Sprintf("plain franz-go producer, defaults (acks=all, idempotent, linger 10 ms), %s; %v at %.0f records/s per tier topic", part, d, rates)}
	if in.Load != nil {
		a.Note += fmt.Sprintf("; beside it (write %v, read %v): %d records/s to a new main topic, a consumer group reading it and the floor's topics", in.Load.Write, in.Load.Read, in.Load.Rate)
	}
	if len(slow) > 0 {
		a.SlowFrom, a.SlowTo = slices.Min(slow), slices.Max(slow)
	}
	if len(lat) > 0 {
		slices.Sort(lat)
		a.P50 = lat[len(lat)*50/100]
		a.P99 = lat[min(len(lat)-1, len(lat)*99/100)]
		a.Max = lat[len(lat)-1]
	}
	return a, nil
}

// records returns the sum of the end offsets of each topic's partitions:
// how many records were ever written to it.
func (e *Env) records(ctx context.Context, topics []string) ([]int64, error) {
	adm, done, err := e.admin()
	if err != nil {
		return nil, err
	}
	defer done()
	ends, err := adm.ListEndOffsets(ctx, topics...)
	if err != nil {
		return nil, fmt.Errorf("end offsets of %v: %w", topics, err)
	}
	out := make([]int64, len(topics))
	for j, t := range topics {
		ends.Each(func(o kadm.ListedOffset) {
			if o.Topic == t {
				out[j] += o.Offset
			}
		})
	}
	return out, nil
}

// floorLoad starts what FloorInput.Load asks for, for d, and returns a
// function that stops it and returns its first error.
func (e *Env) floorLoad(ctx context.Context, in FloorInput, d time.Duration) (func() error, error) {
	l := in.Load
	lctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	var perr error
	if l.Write {
		wg.Add(1)
		go func() {
			defer wg.Done()
			perr = e.ProduceAtRate(lctx, l.Main, 0, int(d.Seconds()*float64(l.Rate)), l.Rate)
		}()
	}
	var cons *kgo.Client
	if l.Read {
		var err error
		cons, err = kgo.NewClient(kgo.SeedBrokers(e.Brokers...), kgo.ConsumerGroup(l.Group),
			kgo.ConsumeTopics(append([]string{l.Main}, in.Topics...)...), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
		if err != nil {
			cancel()
			wg.Wait()
			return nil, err
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			for lctx.Err() == nil {
				cons.PollFetches(lctx) // read and dropped; commits are automatic
			}
		}()
	}
	return func() error {
		cancel()
		wg.Wait()
		if cons != nil {
			cons.Close()
		}
		if perr != nil && !errors.Is(perr, context.Canceled) {
			return fmt.Errorf("floor load: %w", perr)
		}
		return nil
	}, nil
}
