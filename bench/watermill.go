package main

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/IBM/sarama"
	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill-kafka/v3/pkg/kafka"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/ThreeDotsLabs/watermill/message/router/middleware"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

// watermillSystem is watermill v1.5.1 with watermill-kafka/v3 (sarama),
// consuming through its Router with the Retry and PoisonQueue middleware,
// set up as watermill's docs and examples show:
//
//   - the subscriber's sarama config is kafka.DefaultSaramaSubscriberConfig()
//     with Consumer.Offsets.Initial = sarama.OffsetOldest ("equivalent of
//     auto.offset.reset: earliest", _examples/pubsubs/kafka/main.go and the
//     DefaultSaramaSubscriberConfig doc comment); everything else is
//     watermill's default (sarama V1_0_0_0 protocol, auto-commit of marked
//     offsets every second, one message in flight per partition);
//   - the poison publisher is kafka.NewPublisher with its defaults;
//   - router-level middleware: PoisonQueue first, so it wraps Retry
//     (middleware added first runs first, message/router.go) and a record
//     still failing after Retry's last attempt is published to the poison
//     topic and acked; Retry as in _examples/basic/3-router, with
//     RandomizationFactor 0 (no jitter). The middleware's and the router's
//     loggers are left out so neither writes a line per record.
//
// Retries are in-process: the Retry middleware calls the handler again
// after sleeping in the handler's goroutine, so the partition is blocked
// meanwhile and no retry topic exists.
type watermillSystem struct{}

func (watermillSystem) Name() string { return "watermill" }

// errWatermillInjected is the failure the handler returns when a scenario
// says the record must fail.
var errWatermillInjected = errors.New("bench: injected failure")

// HappyPath is S1: the no-op handler behind the same router and
// middleware as S2 and S3.
func (w watermillSystem) HappyPath(ctx context.Context, env *Env, in HappyPathInput) (Throughput, error) {
	tracker := NewTracker(in.Records, nil)
	defer tracker.Close()
	err := w.run(ctx, env, watermillRun{
		topic:      in.Topic,
		group:      in.Group,
		poison:     in.Topic + ".watermill-poison", // never written: no record fails, so it is not created
		partitions: in.Partitions,
		retry:      middleware.Retry{MaxRetries: 0, Multiplier: 1},
		tracker:    tracker,
		fail:       func(string, int) bool { return false },
	})
	if err != nil {
		return Throughput{}, err
	}
	return tracker.Throughput("Router + PoisonQueue + Retry middleware; sarama group, OffsetOldest; one message in flight per partition"), nil
}

// RetryHop is S2. Watermill has no retry topics: its users retry with the
// Retry middleware, here InitialInterval 0 and MaxRetries 1, so the
// second attempt runs at once in the same handler goroutine.
func (w watermillSystem) RetryHop(ctx context.Context, env *Env, in RetryHopInput) (Throughput, error) {
	tracker := NewTracker(in.Records, nil)
	defer tracker.Close()
	err := w.run(ctx, env, watermillRun{
		topic:        in.Topic,
		group:        in.Group,
		poison:       in.Prefix + "poison",
		createPoison: true,
		partitions:   in.Partitions,
		retry:        middleware.Retry{MaxRetries: 1, InitialInterval: 0, Multiplier: 1},
		tracker:      tracker,
		fail:         func(_ string, failedBefore int) bool { return failedBefore == 0 },
	})
	if err != nil {
		return Throughput{}, err
	}
	return tracker.EndToEnd("not like-for-like: in-process retry (Retry middleware, InitialInterval 0, MaxRetries 1), no retry topic"), nil
}

// Precision is S3. The n-th retry waits what the Retry middleware's
// exponential backoff gives: InitialInterval = Delays[0], Multiplier =
// Delays[1]/Delays[0], MaxInterval = the largest delay, no jitter, which
// is exactly 100 ms, 1 s, 5 s for the tiers (the Note says when the
// delays cannot be matched). The wait is a sleep inside the handler call,
// so the partition is blocked for the whole retry sequence.
func (w watermillSystem) Precision(ctx context.Context, env *Env, in PrecisionInput) (Precision, error) {
	if len(in.Delays) == 0 {
		return Precision{}, errors.New("watermill: S3 needs at least one delay")
	}
	retry, effective := watermillRetryFor(in.Delays)
	tracker := NewTracker(in.Records, in.Delays)
	defer tracker.Close()
	fails := func(key string, failedBefore int) bool {
		i := KeyIndex(key)
		return i >= 0 && failedBefore < in.Fails(i)
	}
	err := w.run(ctx, env, watermillRun{
		topic:        in.Topic,
		group:        in.Group,
		poison:       in.Prefix + "poison",
		createPoison: true,
		partitions:   in.Partitions,
		retry:        retry,
		tracker:      tracker,
		fail:         fails,
		ready:        in.Ready,
	})
	if err != nil {
		return Precision{}, err
	}
	note := fmt.Sprintf("not like-for-like: in-process retry (Retry: InitialInterval %v, Multiplier %g, MaxInterval %v, no jitter",
		retry.InitialInterval, retry.Multiplier, retry.MaxInterval)
	if !watermillSameDelays(effective, in.Delays) {
		note += fmt.Sprintf(", so waits %v, not %v", effective, in.Delays)
	}
	note += ") sleeps in the handler, blocking the partition: lateness is timer precision only"
	if e := tracker.Span(); e > 0 && in.Rate > 0 {
		note += fmt.Sprintf("; records done in %v for %v of input",
			e.Round(10*time.Millisecond), (time.Duration(in.Records) * time.Second / time.Duration(in.Rate)).Round(10*time.Millisecond))
	}
	return tracker.Precision(note), nil
}

// watermillRetryFor returns the Retry middleware whose n-th wait is as
// close to delays[n-1] as its exponential backoff allows, and the waits it
// really gives.
func watermillRetryFor(delays []time.Duration) (middleware.Retry, []time.Duration) {
	r := middleware.Retry{
		MaxRetries:      len(delays),
		InitialInterval: delays[0],
		Multiplier:      1,
		MaxInterval:     delays[0],
	}
	for _, d := range delays {
		r.MaxInterval = max(r.MaxInterval, d)
	}
	if len(delays) > 1 && delays[0] > 0 && delays[1] > delays[0] {
		r.Multiplier = float64(delays[1]) / float64(delays[0])
	}
	// The waits cenkalti/backoff/v5's ExponentialBackOff gives with these
	// settings and RandomizationFactor 0 (its NextBackOff and
	// incrementCurrentInterval).
	effective := make([]time.Duration, len(delays))
	cur := r.InitialInterval
	for i := range effective {
		effective[i] = cur
		if float64(cur) >= float64(r.MaxInterval)/r.Multiplier {
			cur = r.MaxInterval
		} else {
			cur = time.Duration(float64(cur) * r.Multiplier)
		}
	}
	return r, effective
}

func watermillSameDelays(a, b []time.Duration) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// watermillRun is one router run.
type watermillRun struct {
	topic, group, poison string
	partitions           int
	// createPoison creates the poison topic first (S2, S3).
	createPoison bool
	retry        middleware.Retry
	tracker      *Tracker
	// fail says whether this call for key must fail, given how many times
	// the key has failed before.
	fail func(key string, failedBefore int) bool
	// ready, if set, is called once the group's session holds all the
	// topic's partitions.
	ready func()
}

func (watermillSystem) run(ctx context.Context, env *Env, r watermillRun) (err error) {
	if r.createPoison {
		if err := peersCreateTopics(ctx, env.Brokers, max(r.partitions, 1), r.poison); err != nil {
			return fmt.Errorf("watermill: %w", err)
		}
	}
	logger := watermill.NopLogger{}

	saramaCfg := kafka.DefaultSaramaSubscriberConfig()
	saramaCfg.Consumer.Offsets.Initial = sarama.OffsetOldest

	var signal *watermillReadySignal
	subCfg := kafka.SubscriberConfig{
		Brokers:               env.Brokers,
		Unmarshaler:           kafka.DefaultMarshaler{},
		OverwriteSaramaConfig: saramaCfg,
		ConsumerGroup:         r.group,
	}
	if r.ready != nil {
		signal = &watermillReadySignal{topic: r.topic, partitions: r.partitions, ready: make(chan struct{})}
		subCfg.Tracer = signal
	}
	sub, err := kafka.NewSubscriber(subCfg, logger)
	if err != nil {
		return fmt.Errorf("watermill: subscriber: %w", err)
	}
	defer func() { _ = sub.Close() }()

	pub, err := kafka.NewPublisher(kafka.PublisherConfig{
		Brokers:   env.Brokers,
		Marshaler: kafka.DefaultMarshaler{},
	}, logger)
	if err != nil {
		return fmt.Errorf("watermill: poison publisher: %w", err)
	}
	defer func() { _ = pub.Close() }()

	router, err := message.NewRouter(message.RouterConfig{}, logger)
	if err != nil {
		return fmt.Errorf("watermill: router: %w", err)
	}
	poison, err := middleware.PoisonQueue(pub, r.poison)
	if err != nil {
		return fmt.Errorf("watermill: poison queue: %w", err)
	}
	router.AddMiddleware(poison, r.retry.Middleware)

	tracker := r.tracker
	router.AddConsumerHandler("bench", r.topic, sub, func(msg *message.Message) error {
		k, _ := kafka.MessageKeyFromCtx(msg.Context())
		key := string(k)
		n := tracker.Begin(key)
		if r.fail(key, n) {
			tracker.Failed(key)
			return errWatermillInjected
		}
		tracker.Succeeded(key)
		return nil
	})

	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	runErr := make(chan error, 1)
	go func() { runErr <- router.Run(runCtx) }()
	stopped := false
	defer func() {
		closeErr := router.Close()
		if !stopped {
			if e := <-runErr; e != nil && closeErr == nil {
				closeErr = e
			}
		}
		if closeErr != nil && err == nil {
			err = fmt.Errorf("watermill: close: %w", closeErr)
		}
	}()

	if signal != nil {
		select {
		case <-signal.ready:
			r.ready()
		case <-ctx.Done():
			return ctx.Err()
		case e := <-runErr:
			stopped = true
			return fmt.Errorf("watermill: router stopped before joining: %v", e)
		}
	}
	select {
	case <-tracker.Done():
		return nil
	case <-ctx.Done():
		return fmt.Errorf("watermill: %w after %d successes", ctx.Err(), tracker.Successes())
	case e := <-runErr:
		stopped = true
		return fmt.Errorf("watermill: router stopped early: %v", e)
	}
}

// watermillReadySignal is a kafka.SaramaTracer that wraps nothing but the
// consumer group handler, to see sarama's ConsumerGroupHandler.Setup: it
// runs once a session has joined the group and synced its assignment, just
// before ConsumeClaim starts on each claimed partition. When the session
// claims all of the topic's partitions, ready is closed. It does not change
// how watermill consumes.
type watermillReadySignal struct {
	topic      string
	partitions int
	once       sync.Once
	ready      chan struct{}
}

func (s *watermillReadySignal) WrapConsumer(c sarama.Consumer) sarama.Consumer { return c }

func (s *watermillReadySignal) WrapPartitionConsumer(pc sarama.PartitionConsumer) sarama.PartitionConsumer {
	return pc
}

func (s *watermillReadySignal) WrapSyncProducer(_ *sarama.Config, p sarama.SyncProducer) sarama.SyncProducer {
	return p
}

func (s *watermillReadySignal) WrapConsumerGroupHandler(h sarama.ConsumerGroupHandler) sarama.ConsumerGroupHandler {
	return watermillReadyHandler{ConsumerGroupHandler: h, s: s}
}

type watermillReadyHandler struct {
	sarama.ConsumerGroupHandler
	s *watermillReadySignal
}

func (h watermillReadyHandler) Setup(sess sarama.ConsumerGroupSession) error {
	if err := h.ConsumerGroupHandler.Setup(sess); err != nil {
		return err
	}
	if n := len(sess.Claims()[h.s.topic]); n > 0 && n >= h.s.partitions {
		h.s.once.Do(func() { close(h.s.ready) })
	}
	return nil
}

// peersCreateTopics creates topics with partitions partitions each and the
// broker's default replication factor; topics that exist already are fine.
func peersCreateTopics(ctx context.Context, brokers []string, partitions int, names ...string) error {
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...))
	if err != nil {
		return err
	}
	defer cl.Close()
	resp, err := kadm.NewClient(cl).CreateTopics(ctx, int32(partitions), -1, nil, names...)
	if err != nil {
		return fmt.Errorf("create topics %s: %w", strings.Join(names, ", "), err)
	}
	for _, r := range resp.Sorted() {
		if r.Err != nil && !errors.Is(r.Err, kerr.TopicAlreadyExists) {
			return fmt.Errorf("create topic %s: %w", r.Topic, r.Err)
		}
	}
	return nil
}

// Cap keeps S3 short: the Retry middleware sleeps in the handler, so each
// failing record holds its partition for the sum of its waits (2.4 s on
// average with 100 ms, 1 s and 5 s), and 64 partitions sustain about 26
// records/s against an input of thousands.
func (watermillSystem) Cap(scenario string) (int, string) {
	switch scenario {
	case "s1", "s2":
		return 1_000_000, "about 60,000 records/s: 1 M records make a repetition of about 17 s"
	case "s3":
		return 1280, "retries sleep in the handler, blocking the partition (~26 records/s sustained on 64 partitions)"
	}
	return 0, ""
}
