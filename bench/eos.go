package main

import (
	"context"
	"fmt"
	"io"
	"slices"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/kretry/kretry/listener"
	"github.com/kretry/kretry/retry"
	"github.com/kretry/kretry/strategy"
)

// kretryEOSSystem runs S1 and S2 as kretrySystem does — the same handlers,
// the same listener settings — in exactly-once mode: listener.ExactlyOnce
// with a transactional ID unique to the run, TransactionInterval at its
// default (100 ms, or 10,000 settled records), read_committed
// (docs/reliability.md, "Exactly once"). Not in the default -systems
// (docs/benchmarks.md, "Exactly once (S1, S2)").
//
// With out ("kretry-eos-out") each success also publishes one output
// record — the input's key and value, to a topic of the run's own, on the
// input's partition — with listener.Produce, in the transaction: the
// consume → transform → produce that users of this mode write.
type kretryEOSSystem struct {
	name string
	out  bool
}

func (s kretryEOSSystem) Name() string { return s.name }

// eosSystems returns the exactly-once systems named in systems (the
// -systems flag): kretry-eos, kretry-eos-out, raw-eos, raw-eos-headers,
// raw-eos-out, and the raw-eos variants by name or all of them with
// "raw-eos-variants". They are kept out of allSystems, so that
// "raw-variants" does not take the raw-eos ones.
func eosSystems(systems map[string]bool) []System {
	var out []System
	for _, s := range append([]System{kretryEOSSystem{name: "kretry-eos"}, kretryEOSSystem{name: "kretry-eos-out", out: true}},
		rawEOSSystems()...) {
		v, variant := s.(rawEOSSystem)
		if systems[s.Name()] || variant && v.variant && systems["raw-eos-variants"] {
			out = append(out, s)
		}
	}
	return out
}

// eosOutput is the output record of a success in the -out systems: the
// input's key and value, to the topic out, on the input's partition.
//
// The partition is given on purpose. The listener's client keeps a
// record's Partition when it is set (that is how a forward keeps its
// source's partition), and a kgo.Record's zero Partition is 0: an output
// without it would go to partition 0 of the topic, whatever its key.
func eosOutput(out string, r *kgo.Record) *kgo.Record {
	return &kgo.Record{Topic: out, Key: r.Key, Value: r.Value, Partition: r.Partition}
}

// eosOutputTopic creates the output topic of a -out system's run, named
// name + "-out" with the input's partitions. S2 names it after its input
// topic, which the harness deletes with the topics named after it; S1's
// input topic is shared by the systems, so S1 names it after its group
// and deletes it with the returned func.
func eosOutputTopic(ctx context.Context, env *Env, name string, partitions int) (string, func(), error) {
	out := name + "-out"
	if err := env.CreateTopic(ctx, out, partitions, nil); err != nil {
		return "", nil, err
	}
	return out, func() { _ = env.DeleteTopicsWithPrefix(context.WithoutCancel(ctx), out) }, nil
}

func (s kretryEOSSystem) options(group string) []listener.Opt {
	return []listener.Opt{listener.Group(group), listener.Logger(quietLogger()), listener.ExactlyOnce(group + "-txn")}
}

func (s kretryEOSSystem) note(base string) string {
	n := base + "; ExactlyOnce, TransactionInterval 100 ms (default), read_committed"
	if s.out {
		n += "; one output per success (listener.Produce)"
	}
	return n
}

func (s kretryEOSSystem) HappyPath(ctx context.Context, env *Env, in HappyPathInput) (Throughput, error) {
	var out string
	if s.out {
		o, drop, err := eosOutputTopic(ctx, env, in.Group, in.Partitions)
		if err != nil {
			return Throughput{}, err
		}
		defer drop()
		out = o
	}
	tr := NewTracker(in.Records, nil)
	h := listener.HandlerFunc(func(ctx context.Context, r *kgo.Record) error {
		tr.Begin(string(r.Key))
		if s.out {
			if err := listener.Produce(ctx, eosOutput(out, r)); err != nil {
				return err
			}
		}
		tr.SucceededIn(r.Partition)
		return nil
	})
	l, err := listener.New(env.Brokers, in.Topic, h, s.options(in.Group)...)
	if err != nil {
		return Throughput{}, err
	}
	if err := runListener(ctx, l, tr); err != nil {
		return Throughput{}, err
	}
	return tr.Throughput(s.note("defaults") + recounted(tr)), nil
}

func (s kretryEOSSystem) RetryHop(ctx context.Context, env *Env, in RetryHopInput) (Throughput, error) {
	var out string
	if s.out {
		o, _, err := eosOutputTopic(ctx, env, in.Topic, in.Partitions)
		if err != nil {
			return Throughput{}, err
		}
		out = o
	}
	tr := NewTracker(in.Records, nil)
	h := listener.HandlerFunc(func(ctx context.Context, r *kgo.Record) error {
		tr.Begin(string(r.Key))
		if _, retried := retry.FromContext(ctx); !retried {
			return errFail
		}
		if s.out {
			if err := listener.Produce(ctx, eosOutput(out, r)); err != nil {
				return err
			}
		}
		tr.SucceededIn(r.Partition)
		return nil
	})
	opts := append(s.options(in.Group), listener.Attempts(2), listener.Backoff(strategy.ListBackoff(0)))
	l, err := listener.New(env.Brokers, in.Topic, h, opts...)
	if err != nil {
		return Throughput{}, err
	}
	if err := runListener(ctx, l, tr); err != nil {
		return Throughput{}, err
	}
	return tr.EndToEnd(s.note("1 tier, 0 ms") + recounted(tr)), nil
}

// recounted notes, once the listener has stopped, successes counted more
// than once: the handler counts a success when it returns, and a
// transaction that aborts after settling it (EventTransactionAborted)
// makes the record come again. The run then ended before every record was
// handled for good, and its rate is too high by that much.
func recounted(tr *Tracker) string {
	if n := tr.Successes(); n > int(tr.want) {
		return fmt.Sprintf("; %d successes counted for %d records (an aborted transaction's records handled again)", n, tr.want)
	}
	return ""
}

// eosPairs are the ratios the exactly-once section reports: each system
// against the one it is measured against, in the same repetitions.
var eosPairs = [][2]string{
	{"kretry-eos", "kretry"}, {"kretry-eos", "raw-eos"}, {"kretry-eos-out", "raw-eos-out"},
	{"kretry-eos-out", "kretry-eos"}, {"raw-eos-out", "raw-eos"}, {"raw-eos", "raw"}, {"raw-eos-headers", "raw-eos"},
	{"kretry-eos", "raw-eos-headers"},
}

// printEOSRatios writes, when exactly-once systems ran in S1 or S2, the
// ratios of each pair of eosPairs that ran (printPairedRatios).
func printEOSRatios(w io.Writer, r *Results) {
	printPairedRatios(w, r, "Exactly once: paired ratios", eosPairs, "")
}

// printPairedRatios writes, under title, the ratios in S1 and S2 of each
// pair that ran in the same repetitions: the median of the per-repetition
// ratios, their range, and the ratio of summed times. With need set, a
// scenario's rows are written only when the system need ran in it.
func printPairedRatios(w io.Writer, r *Results, title string, pairs [][2]string, need string) {
	var rows []string
	for _, sc := range []struct {
		name string
		rows []ThroughputResult
	}{{"S1", r.S1}, {"S2", r.S2}} {
		by := map[string]ThroughputResult{}
		for _, t := range sc.rows {
			by[t.System] = t
		}
		if _, ok := by[need]; need != "" && !ok {
			continue
		}
		for _, p := range pairs {
			a, aok := by[p[0]]
			b, bok := by[p[1]]
			if !aok || !bok || len(a.Rates) != len(b.Rates) || len(a.Rates) == 0 {
				continue
			}
			per := make([]float64, len(a.Rates))
			for i := range a.Rates {
				per[i] = a.Rates[i] / b.Rates[i]
			}
			rows = append(rows, fmt.Sprintf("| %s | %s / %s | %.3f (%.3f–%.3f) | %.3f |", sc.name, p[0], p[1],
				median(per), slices.Min(per), slices.Max(per), summedRate(a)/summedRate(b)))
		}
	}
	if len(rows) == 0 {
		return
	}
	fmt.Fprintf(w, "### %s\n\n| scenario | ratio | median of per-repetition ratios (range) | ratio of summed times |\n|---|---|---:|---:|\n", title)
	for _, row := range rows {
		fmt.Fprintln(w, row)
	}
	fmt.Fprintln(w)
}
