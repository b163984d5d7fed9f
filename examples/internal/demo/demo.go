// Package demo is what remains of the examples' shared scaffolding, now
// that the test kit (listener/kretrytest) gives programs a cluster: it
// is kept only for examples/observability, a module of its own. Delete it
// once that example calls kretrytest.NewCluster itself. It is not part of
// kretry's API.
package demo

import (
	"context"

	"github.com/kretry/kretry/listener/kretrytest"
)

// Cluster returns the seeds to use and a function that releases them: a
// new in-process kfake cluster holding topics when brokers is empty, else
// brokers (comma-separated), where the topics are created if missing.
func Cluster(ctx context.Context, brokers string, partitions int32, topics ...string) ([]string, func(), error) {
	c, err := kretrytest.NewCluster(ctx, kretrytest.Brokers(brokers), kretrytest.Partitions(partitions),
		kretrytest.Topics(topics...))
	if err != nil {
		return nil, nil, err
	}
	return c.Seeds(), c.Close, nil
}
