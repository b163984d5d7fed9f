// Command yaml-policy takes its retry policies from a YAML policy file
// that operators can change without a rebuild. The handlers are declared in
// struct tags that name only their topics (and one default the file
// overrides); the policy file, policy.yaml beside this file, says the rest.
// With no flags it starts an in-process Kafka cluster (franz-go's kfake)
// and uses the embedded policy.yaml:
//
//	go run ./examples/yaml-policy
//	go run ./examples/yaml-policy -policy my-policy.yaml
//
// It prints each listener's resolved policy and plan, then produces
// records: order-1 fails twice and is handled on its third delivery,
// order-2 is invalid (excluded in the file) and goes to the DLT handler,
// ship-1 always fails and reaches the DLT after the file's attempts. The
// program stops once all three are settled, as kretry's test kit
// (listener/kretrytest) observes. Point it at a real cluster with
// -brokers host:port.
package main

import (
	"context"
	_ "embed"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/kretry/kretry/config"
	"github.com/kretry/kretry/dlt"
	"github.com/kretry/kretry/listener"
	"github.com/kretry/kretry/listener/kretrytest"
	"github.com/kretry/kretry/retry"
	"github.com/kretry/kretry/strategy"
)

//go:embed policy.yaml
var embeddedPolicy []byte

// Handlers names each handler's topic; policy.yaml holds the policies.
// The tag's attempts=2 is a code default: the file's attempts: 4 wins.
type Handlers struct {
	Orders       listener.HandlerFunc `kretry:"topic=orders,attempts=2"`
	OrdersDLT    dlt.HandlerFunc      `kretry:"dlt=orders"`
	Shipments    listener.HandlerFunc `kretry:"topic=shipments"`
	ShipmentsDLT dlt.HandlerFunc      `kretry:"dlt=shipments"`
}

var (
	// ErrInvalid is registered as "validation", the name policy.yaml uses.
	ErrInvalid     = errors.New("order has no line items")
	errUnavailable = errors.New("service unavailable")
)

func main() {
	brokers := flag.String("brokers", "", "comma-separated Kafka brokers; empty starts an in-process kfake cluster")
	policy := flag.String("policy", "", "policy file to use instead of the embedded policy.yaml")
	timeout := flag.Duration("timeout", time.Minute, "give up if the demo has not finished by then")
	flag.Parse()
	if err := run(*brokers, *policy, *timeout, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "yaml-policy:", err)
		os.Exit(1)
	}
}

func run(brokers, policyPath string, timeout time.Duration, out io.Writer) error {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	start := time.Now()
	var mu sync.Mutex
	say := func(format string, args ...any) {
		mu.Lock()
		defer mu.Unlock()
		fmt.Fprintf(out, "%7.3fs  %s\n", time.Since(start).Seconds(), fmt.Sprintf(format, args...))
	}

	// Load the policy file; its errors name file:line:column.
	var file *config.File
	var err error
	if policyPath == "" {
		file, err = config.Parse("examples/yaml-policy/policy.yaml", embeddedPolicy)
	} else {
		file, err = config.Load(policyPath)
	}
	if err != nil {
		return err
	}

	var mapMu sync.Mutex
	deliveries := map[string]int{}
	h := &Handlers{
		Orders: func(ctx context.Context, rec *kgo.Record) error {
			key := string(rec.Key)
			mapMu.Lock()
			deliveries[key]++
			n := deliveries[key]
			mapMu.Unlock()
			switch {
			case key == "order-2":
				say("%-7s %-20s delivery %d -> fails: %v", key, rec.Topic, n, ErrInvalid)
				return ErrInvalid
			case n <= 2:
				say("%-7s %-20s delivery %d -> fails: %v", key, rec.Topic, n, errUnavailable)
				return errUnavailable
			}
			say("%-7s %-20s delivery %d -> handled", key, rec.Topic, n)
			return nil
		},
		Shipments: func(ctx context.Context, rec *kgo.Record) error {
			st, _ := retry.FromContext(ctx)
			say("%-7s %-20s attempt %d -> fails: %v", rec.Key, rec.Topic, max(st.Attempt, 1), errUnavailable)
			return errUnavailable
		},
	}
	dltHandler := dlt.HandlerFunc(func(ctx context.Context, rec *kgo.Record, st retry.State) error {
		say("%-7s %-20s DLT handler: reason %q after %d deliveries", rec.Key, rec.Topic, st.Reason, st.Attempt)
		return nil
	})
	// The test kit's recorder sees every delivery, so the program can wait
	// for each record's outcome.
	rec := kretrytest.NewRecorder()
	h.Orders, h.Shipments = rec.Wrap(h.Orders), rec.Wrap(h.Shipments)
	h.OrdersDLT, h.ShipmentsDLT = rec.WrapDLT(dltHandler), rec.WrapDLT(dltHandler)

	cluster, err := kretrytest.NewCluster(ctx, kretrytest.Brokers(brokers), kretrytest.Partitions(2),
		kretrytest.Topics(file.Topics()...))
	if err != nil {
		return err
	}
	defer cluster.Close()

	reg, err := config.NewRegistry(strategy.Is("validation", ErrInvalid))
	if err != nil {
		return err
	}
	// The file applies over the tags: code defaults < tag < file.
	// Register validates everything and connects to nothing.
	ls, err := listener.Register(cluster.Seeds(), h, listener.NamedErrors(reg), listener.PolicyFile(file),
		listener.Logger(slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError}))))
	if err != nil {
		return err
	}
	for _, l := range ls {
		p := l.Policy()
		say("listener %q: group %q, %d attempts, %v backoff, dlt strategy %v", l.Spec().Topic, l.Group(), p.Attempts, p.Backoff.Kind, p.DLT)
		for _, line := range strings.Split(strings.TrimSpace(l.Plan().String()), "\n") {
			say("    %s", strings.ReplaceAll(line, "\t", "  "))
		}
	}

	if err := cluster.Produce(ctx,
		&kgo.Record{Topic: "orders", Key: []byte("order-1"), Value: []byte(`{}`)},
		&kgo.Record{Topic: "orders", Key: []byte("order-2"), Value: []byte(`{}`)},
		&kgo.Record{Topic: "shipments", Key: []byte("ship-1"), Value: []byte(`{}`)},
	); err != nil {
		return err
	}
	say("produced order-1, order-2 and ship-1")

	run := kretrytest.Start(ctx, ls...)
	defer run.Stop()
	for _, w := range []struct {
		key  string
		want kretrytest.Outcome
	}{
		{"order-1", kretrytest.Handled(3)},
		{"order-2", kretrytest.DeadLettered("excluded:validation")},
		{"ship-1", kretrytest.DeadLettered(retry.ReasonExhausted)},
	} {
		// run.Context() ends if the listeners stop early.
		if _, err := rec.Wait(run.Context(), w.key, w.want); err != nil {
			return errors.Join(err, run.Stop())
		}
	}
	if err := run.Stop(); err != nil {
		return err
	}
	say("done: order-1 handled on its third delivery; order-2 and ship-1 in their DLTs")
	return nil
}
