package main

import (
	"context"
	"errors"
	"fmt"
	"time"

	konsumer "github.com/Trendyol/kafka-konsumer/v2"
	segmentio "github.com/segmentio/kafka-go"
)

// konsumerSystem is Trendyol kafka-konsumer v2.3.3 (segmentio/kafka-go
// underneath) with its retry/exception topic, set up like the README's
// "Simple Consumer With Retry/Exception Option" and examples/with-deadletter:
// a single (not batch) consumer, RetryEnabled, a RetryConfiguration with
// Brokers, Topic, DeadLetterTopic, StartTimeCron, WorkDuration and MaxRetry,
// everything else at its defaults (Concurrency 1, CommitInterval 1 s,
// TransactionalRetry true, kafka-go's StartOffset FirstOffset, spelled out
// below). Only the log level is raised to error for both the consumer and
// the cronsumer, since at info/warn konsumer logs two lines per failing
// record.
//
// How its retries run (consumer.go, kafka-cronsumer internal/*.go):
//   - a failing ConsumeFn is called once more at once, in the same worker;
//     only if that fails too is the record produced to the retry topic, by
//     the cronsumer's kafka-go Writer, synchronously, from that worker. The
//     Writer keeps kafka-cronsumer's defaults (BatchSize 100, BatchTimeout
//     1 s; konsumer v2.3.3 does not expose them), so each such produce
//     waits for its batch to fill or for BatchTimeout;
//   - the retry topic is read by a second kafka-go reader in the same group
//     only during "work windows": a robfig/cron job (cron.New(), the
//     standard 5-field spec, minute resolution, or a descriptor such as
//     "@every 1s", whose interval is truncated to whole seconds with a 1 s
//     minimum) starts one every tick and stops it after WorkDuration.
type konsumerSystem struct {
	// Concurrency is konsumer's worker count (ConsumerConfig.Concurrency,
	// also used by the cronsumer); 0 keeps its default, 1. Above 1 the
	// workers take records from all partitions at once, so per-partition
	// order is lost.
	Concurrency int
}

func (konsumerSystem) Name() string { return "konsumer" }

const (
	// konsumerCron is the fastest cadence kafka-cronsumer's cron accepts
	// (robfig/cron v3 ConstantDelaySchedule: at least 1 s).
	konsumerCron = "@every 1s"
	// konsumerWork is the work window per tick, kept shorter than the tick
	// as the README's "*/1 * * * *" with 50 s is, so that two windows never
	// read the retry topic's reader at the same time.
	konsumerWork = 900 * time.Millisecond
)

var errKonsumerInjected = errors.New("bench: injected failure")

// HappyPath is S1 with retries disabled, as the README's "Simple Consumer".
func (s konsumerSystem) HappyPath(ctx context.Context, env *Env, in HappyPathInput) (Throughput, error) {
	tracker := NewTracker(in.Records, nil)
	defer tracker.Close()
	cfg := s.config(env, in.Topic, in.Group, func(m *konsumer.Message) error {
		key := string(m.Key)
		tracker.Begin(key)
		tracker.Succeeded(key)
		return nil
	})
	if err := s.run(ctx, cfg, tracker); err != nil {
		return Throughput{}, err
	}
	return tracker.Throughput(fmt.Sprintf("single consumer, Concurrency %d (default 1: one record at a time over all partitions)",
		cfg.Concurrency)), nil
}

// RetryHop is S2. Every call on the main topic fails (konsumer calls the
// handler twice per record there before it gives up), so every record is
// produced to the retry topic; the call that comes from the retry topic
// succeeds.
func (s konsumerSystem) RetryHop(ctx context.Context, env *Env, in RetryHopInput) (Throughput, error) {
	retryTopic, dlt := in.Prefix+"retry", in.Prefix+"error"
	if err := peersCreateTopics(ctx, env.Brokers, max(in.Partitions, 1), retryTopic, dlt); err != nil {
		return Throughput{}, fmt.Errorf("konsumer: %w", err)
	}
	tracker := NewTracker(in.Records, nil)
	defer tracker.Close()
	cfg := s.config(env, in.Topic, in.Group, func(m *konsumer.Message) error {
		key := string(m.Key)
		tracker.Begin(key)
		if m.Topic != retryTopic {
			tracker.Failed(key)
			return errKonsumerInjected
		}
		tracker.Succeeded(key)
		return nil
	})
	cfg.RetryEnabled = true
	cfg.RetryConfiguration = konsumer.RetryConfiguration{
		Brokers:         env.Brokers,
		Topic:           retryTopic,
		DeadLetterTopic: dlt,
		StartTimeCron:   konsumerCron,
		WorkDuration:    konsumerWork,
		MaxRetry:        1,
		LogLevel:        konsumer.LogLevelError,
	}
	if err := s.run(ctx, cfg, tracker); err != nil {
		return Throughput{}, err
	}
	return tracker.EndToEnd(fmt.Sprintf("cron %q (fastest), WorkDuration %v; handler runs twice on the main topic before the hop; "+
		"hop is a synchronous kafka-go write (BatchTimeout 1 s, not settable): about Concurrency records/s; Concurrency %d",
		konsumerCron, konsumerWork, cfg.Concurrency)), nil
}

// Precision is S3, which konsumer cannot run comparably.
func (konsumerSystem) Precision(context.Context, *Env, PrecisionInput) (Precision, error) {
	return Precision{}, fmt.Errorf("%w: retries run on cron ticks (robfig/cron: 5-field spec with minute resolution, "+
		"or @every in whole seconds, at least 1 s); one retry topic and one cron serve every attempt, so there are no "+
		"per-tier delays, and a first retry carries no produce time, so it runs as soon as a work window is open",
		ErrUnsupported)
}

// config is the consumer's configuration; NewConsumer fills in konsumer's
// defaults (Concurrency 1 when 0) in place.
func (s konsumerSystem) config(env *Env, topic, group string, fn konsumer.ConsumeFn) *konsumer.ConsumerConfig {
	cfg := &konsumer.ConsumerConfig{
		Reader: konsumer.ReaderConfig{
			Brokers:     env.Brokers,
			Topic:       topic,
			GroupID:     group,
			StartOffset: segmentio.FirstOffset, // kafka-go's default, spelled out
		},
		ConsumeFn:   fn,
		Concurrency: s.Concurrency,
		LogLevel:    konsumer.LogLevelError,
	}
	return cfg
}

func (konsumerSystem) run(ctx context.Context, cfg *konsumer.ConsumerConfig, tracker *Tracker) (err error) {
	c, err := konsumer.NewConsumer(cfg)
	if err != nil {
		return fmt.Errorf("konsumer: %w", err)
	}
	c.Consume()
	defer func() {
		if stopErr := c.Stop(); stopErr != nil && err == nil {
			err = fmt.Errorf("konsumer: stop: %w", stopErr)
		}
	}()
	select {
	case <-tracker.Done():
		return nil
	case <-ctx.Done():
		return fmt.Errorf("konsumer: %w after %d successes", ctx.Err(), tracker.Successes())
	}
}

// Cap keeps S2 short: every record's retry waits for a 1 s batch timeout
// of the cronsumer's kafka-go writer, so S2 runs at about 1 record/s.
func (konsumerSystem) Cap(scenario string) (int, string) {
	switch scenario {
	case "s1":
		return 1_000_000, "about 160,000 records/s: 1 M records make a repetition of about 6 s"
	case "s2":
		return 20, "each retry waits for the cronsumer writer's fixed 1 s batch timeout (~1 record/s)"
	}
	return 0, ""
}
