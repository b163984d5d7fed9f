package main

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
)

// newEnv returns the run's cluster: the brokers given, or a fresh
// single-broker kfake cluster that close shuts down.
func newEnv(brokers []string) (env *Env, close func(), err error) {
	if len(brokers) > 0 {
		return &Env{Brokers: brokers}, func() {}, nil
	}
	c, err := kfake.NewCluster(kfake.NumBrokers(1))
	if err != nil {
		return nil, nil, err
	}
	return &Env{Brokers: c.ListenAddrs(), Fake: true}, c.Close, nil
}

// admin returns an admin client for env; close it with the returned func.
func (e *Env) admin() (*kadm.Client, func(), error) {
	cl, err := kgo.NewClient(kgo.SeedBrokers(e.Brokers...))
	if err != nil {
		return nil, nil, err
	}
	return kadm.NewClient(cl), cl.Close, nil
}

// CreateTopic creates topic with partitions partitions (replication factor
// 1) and the given configs.
func (e *Env) CreateTopic(ctx context.Context, topic string, partitions int, configs map[string]*string) error {
	adm, done, err := e.admin()
	if err != nil {
		return err
	}
	defer done()
	resp, err := adm.CreateTopic(ctx, int32(partitions), 1, configs, topic)
	if err == nil {
		err = resp.Err
	}
	if err != nil {
		return fmt.Errorf("create topic %s: %w", topic, err)
	}
	// A broker answers the creation before every partition has a leader
	// in its metadata; producing to a named partition before then fails.
	deadline := time.Now().Add(time.Minute)
	for {
		details, err := adm.ListTopics(ctx, topic)
		if err == nil {
			if d, ok := details[topic]; ok && d.Err == nil && len(d.Partitions) == partitions {
				ready := true
				for _, p := range d.Partitions {
					ready = ready && p.Err == nil && p.Leader >= 0
				}
				if ready {
					return nil
				}
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("topic %s: not every partition has a leader a minute after its creation", topic)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond): // polling the broker's metadata
		}
	}
}

// DeleteTopicsWithPrefix deletes every topic whose name starts with prefix:
// a scenario run's input topic and the retry and DLT topics named after it.
// kfake keeps every record in memory, so a run of many repetitions would
// otherwise hold them all, and its garbage collector would slow each later
// repetition more than the one before.
func (e *Env) DeleteTopicsWithPrefix(ctx context.Context, prefix string) error {
	adm, done, err := e.admin()
	if err != nil {
		return err
	}
	defer done()
	details, err := adm.ListTopics(ctx)
	if err != nil {
		return fmt.Errorf("list topics: %w", err)
	}
	var names []string
	for _, t := range details.Names() {
		if strings.HasPrefix(t, prefix) {
			names = append(names, t)
		}
	}
	if len(names) == 0 {
		return nil
	}
	resps, err := adm.DeleteTopics(ctx, names...)
	if err != nil {
		return fmt.Errorf("delete topics %v: %w", names, err)
	}
	if err := resps.Error(); err != nil {
		return fmt.Errorf("delete topics %v: %w", names, err)
	}
	return nil
}

// Fill produces n records with keys "k0".."k<n-1>" and values of
// valueBytes bytes to topic, partitioned by key, and waits for all of them
// to be acknowledged. headers, if not nil, gives each record's headers.
func (e *Env) Fill(ctx context.Context, topic string, n, valueBytes int, headers func(i int) []kgo.RecordHeader) error {
	p, err := newProducer(e, kgo.DefaultProduceTopic(topic), kgo.ProducerLinger(5*time.Millisecond), kgo.MaxBufferedRecords(100_000))
	if err != nil {
		return err
	}
	// Random values: real payloads compress a few times at most, and
	// zeros compress so well that a 1 MB fetch would decompress to tens of
	// MB and dominate every memory figure.
	val := randomBytes(valueBytes)
	for i := range n {
		r := &kgo.Record{Key: fmt.Appendf(nil, "k%d", i), Value: val}
		if headers != nil {
			r.Headers = headers(i)
		}
		p.send(ctx, r)
	}
	return p.finish(ctx, "fill "+topic)
}

// FillEven produces n records with keys "k0".."k<n-1>" to topic, record i
// to partition i mod partitions, and waits for all to be acknowledged.
func (e *Env) FillEven(ctx context.Context, topic string, n, partitions int) error {
	p, err := newProducer(e, kgo.DefaultProduceTopic(topic), kgo.RecordPartitioner(kgo.ManualPartitioner()),
		kgo.ProducerLinger(5*time.Millisecond))
	if err != nil {
		return err
	}
	val := randomBytes(100)
	for i := range n {
		p.send(ctx, &kgo.Record{Key: fmt.Appendf(nil, "k%d", i), Value: val, Partition: int32(i % partitions)})
	}
	return p.finish(ctx, "fill "+topic)
}

func randomBytes(n int) []byte {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return b
}

// ProduceAtRate produces n records with keys "k<first>".."k<first+n-1>" to
// topic at a steady rate per second, each stamped when it is produced, and
// waits for all of them to be acknowledged.
func (e *Env) ProduceAtRate(ctx context.Context, topic string, first, n, rate int) error {
	return e.produceAtRate(ctx, topic, n, rate, func(i int) []byte { return fmt.Appendf(nil, "k%d", first+i) })
}

// produceAtRate is ProduceAtRate with record i's key key(i).
func (e *Env) produceAtRate(ctx context.Context, topic string, n, rate int, key func(i int) []byte) error {
	p, err := newProducer(e, kgo.DefaultProduceTopic(topic), kgo.ProducerLinger(0))
	if err != nil {
		return err
	}
	start := time.Now()
	// Produce in ticks of 1 ms: each tick sends the records that are due
	// by then, so the rate holds without a timer per record.
	tick := time.NewTicker(time.Millisecond)
	defer tick.Stop()
	for sent := 0; sent < n; {
		select {
		case <-ctx.Done():
			p.cl.Close()
			return ctx.Err()
		case <-tick.C:
		}
		due := min(n, int(time.Since(start).Seconds()*float64(rate))+1)
		for ; sent < due; sent++ {
			p.send(ctx, &kgo.Record{Key: key(sent), Value: randomBytes(100)})
		}
	}
	return p.finish(ctx, "produce to "+topic)
}

// producer sends records asynchronously and keeps the first error.
type producer struct {
	cl   *kgo.Client
	errc chan error
}

func newProducer(e *Env, opts ...kgo.Opt) (*producer, error) {
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(e.Brokers...)}, opts...)...)
	if err != nil {
		return nil, err
	}
	return &producer{cl: cl, errc: make(chan error, 1)}, nil
}

func (p *producer) send(ctx context.Context, r *kgo.Record) {
	p.cl.Produce(ctx, r, func(_ *kgo.Record, err error) {
		if err != nil {
			select {
			case p.errc <- err:
			default:
			}
		}
	})
}

// finish waits for every record to be acknowledged, closes the client and
// returns the first error, naming what was being produced.
func (p *producer) finish(ctx context.Context, what string) error {
	defer p.cl.Close()
	if err := p.cl.Flush(ctx); err != nil {
		return err
	}
	select {
	case err := <-p.errc:
		return fmt.Errorf("%s: %w", what, err)
	default:
		return nil
	}
}

// errTimeout reports a scenario that did not finish in time.
var errTimeout = errors.New("scenario did not finish in time")
