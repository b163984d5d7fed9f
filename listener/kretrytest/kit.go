package kretrytest

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/kretry/kretry/dlt"
	"github.com/kretry/kretry/listener"
)

// Kit is the test kit for one test: a Cluster, a Recorder, and the
// listeners the test runs, released when the test ends. Every method
// fails the test (t.Fatalf) with a message saying what was wanted and
// what happened, and every blocking call is bounded by Timeout. Use the
// Kit from the test's goroutine, as t.Fatalf requires.
type Kit struct {
	t       testing.TB
	cluster *Cluster
	rec     *Recorder
	timeout time.Duration
	// alive ends, with the reason as its cause, once a listener started
	// by Run has stopped: a Require then fails at once.
	alive context.Context
	kill  context.CancelCauseFunc
}

// New returns a Kit for t: a new in-process Kafka cluster, or the cluster
// named by Brokers, holding the topics named by Topics. The cluster is
// closed when the test ends, after the listeners started by Run have
// stopped.
func New(t testing.TB, opts ...Opt) *Kit {
	t.Helper()
	cfg, err := newCfg(opts)
	if err != nil {
		t.Fatalf("kretrytest.New: %v", err)
	}
	k := &Kit{t: t, rec: NewRecorder(), timeout: cfg.timeout}
	k.alive, k.kill = context.WithCancelCause(context.Background())
	t.Cleanup(func() { k.kill(nil) })
	ctx, cancel := k.deadline()
	defer cancel()
	k.cluster, err = NewCluster(ctx, opts...)
	if err != nil {
		t.Fatalf("kretrytest.New: %v", err)
	}
	t.Cleanup(k.cluster.Close)
	return k
}

// deadline returns the context of one blocking call: the test's, bounded
// by the Timeout.
func (k *Kit) deadline() (context.Context, context.CancelFunc) {
	return context.WithTimeoutCause(k.t.Context(), k.timeout,
		fmt.Errorf("kretrytest: Timeout (%v) passed", k.timeout))
}

// Seeds returns the cluster's seed brokers, to pass to listener.New or
// listener.Register.
func (k *Kit) Seeds() []string { return k.cluster.Seeds() }

// Name returns a topic or group name for this test run (Cluster.Name):
// base itself on the in-process cluster; base with a random suffix on a
// cluster named by Brokers, so that runs do not share topics or offsets.
func (k *Kit) Name(base string) string { return k.cluster.Name(base) }

// Wrap returns h wrapped by the kit's Recorder (Recorder.Wrap): pass it
// to listener.New so that Require sees each delivery.
func (k *Kit) Wrap(h listener.Handler) listener.HandlerFunc { return k.rec.Wrap(h) }

// WrapBatch returns h wrapped by the kit's Recorder (Recorder.WrapBatch):
// pass it to listener.NewBatch so that Require sees each record of each
// batch.
func (k *Kit) WrapBatch(h listener.BatchHandler) listener.BatchHandlerFunc { return k.rec.WrapBatch(h) }

// WrapDLT returns h (nil: acknowledge every record) wrapped by the kit's
// Recorder (Recorder.WrapDLT): pass it to listener.DLTHandler so that
// Require sees dead-lettered keys.
func (k *Kit) WrapDLT(h dlt.Handler) dlt.HandlerFunc { return k.rec.WrapDLT(h) }

// CreateTopics creates the topics that do not exist yet
// (Cluster.CreateTopics), such as a listener's whole plan:
// k.CreateTopics(l.Plan().Topics()...).
func (k *Kit) CreateTopics(topics ...string) {
	k.t.Helper()
	ctx, cancel := k.deadline()
	defer cancel()
	if err := k.cluster.CreateTopics(ctx, topics...); err != nil {
		k.t.Fatalf("%v", err)
	}
}

// Produce writes the records and returns once Kafka has acknowledged
// every one (Cluster.Produce).
func (k *Kit) Produce(rs ...*kgo.Record) {
	k.t.Helper()
	ctx, cancel := k.deadline()
	defer cancel()
	if err := k.cluster.Produce(ctx, rs...); err != nil {
		k.t.Fatalf("%v", err)
	}
}

// Run starts the listeners in the background (Start). They are stopped
// when the test ends, and the test fails if they return an error; once
// they have stopped, for whatever reason, Require fails at once with it.
func (k *Kit) Run(ls ...*listener.Listener) {
	k.t.Helper()
	run := Start(context.Background(), ls...)
	k.t.Cleanup(func() {
		if err := run.Stop(); err != nil {
			k.t.Errorf("kretrytest: a listener failed: %v", err)
		}
	})
	context.AfterFunc(run.Context(), func() { k.kill(context.Cause(run.Context())) })
}

// Require waits until key reaches want (Recorder.Wait) and returns the
// key's deliveries so far. It fails the test when the Timeout passes or a
// listener started by Run stops first, naming the key, the outcome wanted
// and every delivery of the key observed.
func (k *Kit) Require(key string, want Outcome) []Delivery {
	k.t.Helper()
	ctx, cancel := k.deadline()
	defer cancel()
	ctx, stop := context.WithCancelCause(ctx)
	defer stop(nil)
	defer context.AfterFunc(k.alive, func() { stop(context.Cause(k.alive)) })()
	ds, err := k.rec.Wait(ctx, key, want)
	if err != nil {
		k.t.Fatalf("%v", err)
	}
	return ds
}

// Read returns every record in topic with its decoded retry state
// (Cluster.Read): read a DLT to check what was dead-lettered and why.
func (k *Kit) Read(topic string) []Record {
	k.t.Helper()
	ctx, cancel := k.deadline()
	defer cancel()
	rs, err := k.cluster.Read(ctx, topic)
	if err != nil {
		k.t.Fatalf("%v", err)
	}
	return rs
}
