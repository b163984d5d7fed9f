package kretrytest_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/kretry/kretry/listener"
	"github.com/kretry/kretry/listener/kretrytest"
)

// On a cluster named by Brokers the kit creates its topics there, gives
// names a run suffix, keeps existing topics and leaves the cluster running
// on Close.
func TestNewClusterBrokers(t *testing.T) {
	existing, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(1, "kept"))
	if err != nil {
		t.Fatal(err)
	}
	defer existing.Close()
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	seeds := existing.ListenAddrs()
	c, err := kretrytest.NewCluster(ctx, kretrytest.Brokers(" "+strings.Join(seeds, " , ")+", "),
		kretrytest.Partitions(2), kretrytest.Topics("orders", "kept"))
	if err != nil {
		t.Fatal(err)
	}
	if c.InProcess() || strings.Join(c.Seeds(), ",") != strings.Join(seeds, ",") {
		t.Errorf("InProcess %v, Seeds %v; want false and %v", c.InProcess(), c.Seeds(), seeds)
	}
	if n := c.Name("orders"); !strings.HasPrefix(n, "orders-") || len(n) != len("orders-")+8 || c.Name("orders") != n {
		t.Errorf("Name(orders) = %q, want orders-<8 hex digits>, the same each call", n)
	}
	if err := c.CreateTopics(ctx, "kept", "orders"); err != nil {
		t.Errorf("CreateTopics of existing topics: %v", err)
	}
	c.Close()
	c.Close()

	cl, err := kgo.NewClient(kgo.SeedBrokers(seeds...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	topics, err := kadm.NewClient(cl).ListTopics(ctx, "orders", "kept")
	if err != nil {
		t.Fatalf("listing topics after Close (the cluster must keep running): %v", err)
	}
	if n := len(topics["orders"].Partitions); n != 2 {
		t.Errorf("orders has %d partitions, want 2 (Partitions)", n)
	}
	if n := len(topics["kept"].Partitions); n != 1 {
		t.Errorf("kept has %d partitions, want the 1 it had", n)
	}
}

func TestNewClusterInProcess(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	c, err := kretrytest.NewCluster(ctx, kretrytest.Topics("a"), kretrytest.Topics("b"), kretrytest.Partitions(3))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if !c.InProcess() || c.Name("a") != "a" || len(c.Seeds()) != 1 {
		t.Errorf("InProcess %v, Name(a) %q, Seeds %v; want true, a, one broker", c.InProcess(), c.Name("a"), c.Seeds())
	}
	if rs, err := c.Read(ctx, "b"); err != nil || len(rs) != 0 {
		t.Errorf("Read of an empty topic: %v, %v", rs, err)
	}
	if err := c.Produce(ctx, &kgo.Record{Topic: "a", Key: []byte("x")}, &kgo.Record{Topic: "a", Key: []byte("y")},
		&kgo.Record{Topic: "a", Key: []byte("z")}); err != nil {
		t.Fatal(err)
	}
	rs, err := c.Read(ctx, "a")
	if err != nil || len(rs) != 3 {
		t.Fatalf("Read: %d records, %v; want 3", len(rs), err)
	}
	for i := 1; i < len(rs); i++ {
		if p, q := rs[i-1], rs[i]; p.Partition > q.Partition || p.Partition == q.Partition && p.Offset >= q.Offset {
			t.Errorf("Read's records out of order: %s[%d]@%d before %s[%d]@%d", p.Topic, p.Partition, p.Offset, q.Topic, q.Partition, q.Offset)
		}
	}
	if _, err := c.Read(ctx, "missing"); err == nil {
		t.Error("Read of a missing topic returned no error")
	}
	if err := c.Produce(ctx, &kgo.Record{Key: []byte("no topic")}); err == nil {
		t.Error("Produce of a record without a topic returned no error")
	}
}

func TestNewClusterBadOptions(t *testing.T) {
	_, err := kretrytest.NewCluster(t.Context(), kretrytest.Partitions(-1), kretrytest.Timeout(-time.Second), kretrytest.Topics("a", ""))
	for _, want := range []string{"Partitions must be >= 1, got -1", "Timeout must be > 0, got -1s", "a topic name must not be empty"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("NewCluster with bad options: %v; want it to say %q", err, want)
		}
	}
}

// Running's context ends with the listener's error as its cause, and
// Stop returns that error; after a clean stop both are quiet.
func TestRunning(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	c, err := kretrytest.NewCluster(ctx, kretrytest.Topics("orders"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()

	bad, err := listener.New(c.Seeds(), "missing", listener.HandlerFunc(nil), quiet)
	if err != nil {
		t.Fatal(err)
	}
	run := kretrytest.Start(ctx, bad)
	<-run.Context().Done()
	if cause := context.Cause(run.Context()); cause == nil || !strings.Contains(cause.Error(), `main topic "missing"`) {
		t.Errorf("cause after a failed start: %v, want the listener's error", cause)
	}
	if err := run.Stop(); err == nil || !strings.Contains(err.Error(), `main topic "missing"`) {
		t.Errorf("Stop after a failed start: %v, want the listener's error", err)
	}

	rec := kretrytest.NewRecorder()
	good, err := listener.New(c.Seeds(), "orders", rec.Wrap(nil), quiet)
	if err != nil {
		t.Fatal(err)
	}
	run = kretrytest.Start(ctx, good)
	if err := c.Produce(ctx, &kgo.Record{Topic: "orders", Key: []byte("k")}); err != nil {
		t.Fatal(err)
	}
	if _, err := rec.Wait(run.Context(), "k", kretrytest.Handled(1)); err != nil {
		t.Fatal(err)
	}
	if err := run.Stop(); err != nil {
		t.Errorf("Stop: %v", err)
	}
	if err := run.Stop(); err != nil {
		t.Errorf("second Stop: %v", err)
	}
	if cause := context.Cause(run.Context()); cause == nil || errors.Is(cause, context.Canceled) || !strings.Contains(cause.Error(), "stopped") {
		t.Errorf("cause after Stop: %v, want one saying the listeners stopped", cause)
	}
}
