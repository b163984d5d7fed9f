// Package demo is the scaffolding the examples share: a cluster to run on
// and a way to put records in it. It is not part of kretry's API.
package demo

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
)

// Cluster returns the seeds to use and a function that releases them: a
// new in-process kfake cluster holding topics when brokers is empty, else
// brokers (comma-separated), where the topics are created if missing.
func Cluster(ctx context.Context, brokers string, partitions int32, topics ...string) ([]string, func(), error) {
	if brokers == "" {
		c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(partitions, topics...))
		if err != nil {
			return nil, nil, err
		}
		return c.ListenAddrs(), c.Close, nil
	}
	seeds := strings.Split(brokers, ",")
	cl, err := kgo.NewClient(kgo.SeedBrokers(seeds...))
	if err != nil {
		return nil, nil, err
	}
	defer cl.Close()
	resp, err := kadm.NewClient(cl).CreateTopics(ctx, partitions, -1, nil, topics...)
	if err != nil {
		return nil, nil, fmt.Errorf("creating topics %s on %s: %w", strings.Join(topics, ", "), brokers, err)
	}
	for _, t := range resp {
		if t.Err != nil && !errors.Is(t.Err, kerr.TopicAlreadyExists) {
			return nil, nil, fmt.Errorf("creating topic %q on %s: %w", t.Topic, brokers, t.Err)
		}
	}
	return seeds, func() {}, nil
}

// Produce writes keys to their topics (value "{}") and waits for Kafka to
// acknowledge them.
func Produce(ctx context.Context, seeds []string, keys map[string][]string) error {
	cl, err := kgo.NewClient(kgo.SeedBrokers(seeds...))
	if err != nil {
		return err
	}
	defer cl.Close()
	var rs []*kgo.Record
	for topic, ks := range keys {
		for _, k := range ks {
			rs = append(rs, &kgo.Record{Topic: topic, Key: []byte(k), Value: []byte(`{}`)})
		}
	}
	return cl.ProduceSync(ctx, rs...).FirstErr()
}
