// Command observability runs a kretry listener with Prometheus metrics and
// OpenTelemetry tracing. With no flags it starts an in-process Kafka
// cluster (franz-go's kfake), so it needs nothing installed:
//
//	cd examples/observability && go run . -duration 10s
//
// It produces orders to the "orders" topic at a steady rate and handles
// them with a handler that fails some of them: one in ten fails once and
// is handled from the first retry tier, one in ten fails every time and
// is dead-lettered after three deliveries, one in twenty-five is invalid
// and goes straight to the DLT. The metrics are served at
// http://127.0.0.1:9464/metrics (-addr): kretry's own (package
// contrib/kretryprom), franz-go's Kafka client metrics (kprom), and the Go
// runtime's. With -duration it stops by itself and prints a summary and a
// few lines of its own /metrics; without, it runs until interrupted and
// prints them then.
//
// Tracing (on by default; -trace=false turns it off) wires a
// contrib/kretryotel Tracer into the listener and the producer, with the
// OpenTelemetry SDK and W3C trace context headers: every delivery of a
// record gets a process span, linked to the publish span of its previous
// hop and, on a retry tier or the DLT, to the process span of its first
// delivery. The spans stay in the process (no collector needed): the
// summary ends with the process spans of one record that failed every
// delivery and was dead-lettered, and -spans FILE writes every span to
// FILE as JSON (the SDK's stdouttrace exporter).
//
// Point it at a real cluster with -brokers host:port (the topic is
// created if it is missing).
package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/kretry/kretry/contrib/kretryprom"
	"github.com/kretry/kretry/listener"
	"github.com/kretry/kretry/listener/kretrytest"
	"github.com/kretry/kretry/retry"
	"github.com/kretry/kretry/strategy"
)

// config is what the flags set.
type config struct {
	brokers  string        // empty: an in-process kfake cluster
	topic    string        // the main topic
	addr     string        // where /metrics is served
	duration time.Duration // 0: until interrupted
	rate     int           // orders produced per second
	trace    bool          // trace with kretryotel
	spans    string        // with trace: a file to write every span to; empty: none
}

func main() {
	var c config
	flag.StringVar(&c.brokers, "brokers", "", "comma-separated Kafka brokers; empty starts an in-process kfake cluster")
	flag.StringVar(&c.topic, "topic", "orders", "main topic")
	flag.StringVar(&c.addr, "addr", "127.0.0.1:9464", "address to serve /metrics on")
	flag.DurationVar(&c.duration, "duration", 0, "stop after this long, printing a summary (0: run until interrupted)")
	flag.IntVar(&c.rate, "rate", 20, "orders produced per second")
	flag.BoolVar(&c.trace, "trace", true, "trace with OpenTelemetry and print one dead-lettered record's spans (-trace=false: off)")
	flag.StringVar(&c.spans, "spans", "", "write every span to this file, one JSON object a line (needs -trace)")
	flag.Parse()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	ln, err := net.Listen("tcp", c.addr)
	if err == nil {
		err = run(ctx, c, ln, os.Stdout)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "observability:", err)
		os.Exit(1)
	}
}

// run serves /metrics on ln and runs the listener until ctx ends or
// c.duration has passed, then prints a summary to out.
func run(ctx context.Context, c config, ln net.Listener, out io.Writer) (err error) {
	if c.rate < 1 {
		return fmt.Errorf("-rate must be >= 1, got %d", c.rate)
	}
	if c.spans != "" && !c.trace {
		return errors.New("-spans needs -trace")
	}
	cluster, err := kretrytest.NewCluster(ctx, kretrytest.Brokers(c.brokers), kretrytest.Partitions(3), kretrytest.Topics(c.topic))
	if err != nil {
		return err
	}
	defer cluster.Close()
	seeds := cluster.Seeds()
	if c.brokers == "" {
		fmt.Fprintf(out, "started an in-process Kafka cluster (kfake) at %s\n", strings.Join(seeds, ","))
	}

	// One registry for everything /metrics serves.
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	admin, err := kgo.NewClient(kgo.SeedBrokers(seeds...))
	if err != nil {
		return err
	}
	defer admin.Close()
	metrics, err := kretryprom.New(reg, kretryprom.TierLag(kadm.NewClient(admin), kgo.SeedBrokers(seeds...)))
	if err != nil {
		return err
	}

	// Tracing, closed last: after the listener has stopped.
	var tr *tracing
	var traced <-chan struct{} // closed once a dead-lettered record's spans are in
	if c.trace {
		if tr, err = newTracing(c.spans); err != nil {
			return err
		}
		defer func() { err = errors.Join(err, tr.close()) }()
		traced = tr.chains.Ready()
	}

	l, err := listener.New(seeds, c.topic, listener.HandlerFunc(handle), listenerOpts(metrics, tr)...)
	if err != nil {
		return err
	}
	defer metrics.Watch(l)()

	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg}))
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	defer srv.Close()
	url := "http://" + ln.Addr().String() + "/metrics"
	fmt.Fprintf(out, "serving metrics at %s\n", url)

	runCtx, stopListener := context.WithCancel(ctx)
	defer stopListener()
	errc := make(chan error, 1)
	go func() { errc <- l.Run(runCtx) }()
	go produce(runCtx, seeds, c.topic, c.rate, tr.producerOpts()...)

	var timeout <-chan time.Time
	if c.duration > 0 {
		t := time.NewTimer(c.duration)
		defer t.Stop()
		timeout = t.C
	}
	start := time.Now()
	for running := true; running; {
		select {
		case <-ctx.Done():
			running = false
		case <-timeout:
			running = false
		case <-traced:
			traced = nil
			fmt.Fprintf(out, "traced %s from the main topic through the retry tiers to the DLT; its spans follow the summary\n", tr.chains.key())
		case err := <-errc:
			return fmt.Errorf("listener stopped early: %w", err)
		}
	}
	// Scrape before stopping: the client metrics go with the client.
	if err := summarize(out, reg, url, l.Plan(), time.Since(start)); err != nil {
		return err
	}
	if tr != nil {
		tr.chains.print(out)
	}
	stopListener()
	return <-errc
}

// listenerOpts are the listener's options: its retry policy, its metrics
// and, when tr is not nil, its tracing.
func listenerOpts(metrics *kretryprom.Metrics, tr *tracing) []listener.Opt {
	opts := []listener.Opt{
		listener.Group("observability"),
		listener.Attempts(3),
		listener.Backoff(strategy.ExponentialBackoff(500*time.Millisecond, 2, 0)),
		listener.DLTHandler(dltHandler{}),
		listener.Logger(slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError}))),
		listener.Hooks(metrics),
		listener.ClientOpts(
			kgo.WithHooks(metrics.ClientMetrics()),
			// Commit every second (kgo's default is 5 s): the tier lag
			// counts handled records as waiting until they are committed.
			kgo.AutoCommitInterval(time.Second),
		),
	}
	if tr != nil {
		opts = append(opts,
			listener.Tracing(tr.tracer),                    // process spans
			listener.ClientOpts(tr.tracer.ClientOpts()...), // publish and receive spans, trace headers
		)
	}
	return opts
}

var (
	errUnavailable = errors.New("inventory service unavailable")
	errInvalid     = errors.New("order has no line items")
)

// handle is the business handler: order-N takes a few milliseconds, and
// fails when N says so.
func handle(ctx context.Context, rec *kgo.Record) error {
	var n int
	if _, err := fmt.Sscanf(string(rec.Key), "order-%d", &n); err != nil {
		return strategy.Permanent(fmt.Errorf("key %q: %w", rec.Key, err))
	}
	select {
	case <-time.After(time.Duration(1+rand.IntN(20)) * time.Millisecond):
	case <-ctx.Done():
		return ctx.Err()
	}
	_, retried := retry.FromContext(ctx)
	switch {
	case n%25 == 0:
		return strategy.Permanent(errInvalid)
	case n%10 == 7:
		return errUnavailable // on every delivery: dead-lettered when the attempts run out
	case n%10 == 3 && !retried:
		return errUnavailable // on the first delivery only
	}
	return nil
}

// dltHandler accepts every dead-lettered record.
type dltHandler struct{}

func (dltHandler) HandleDLT(context.Context, *kgo.Record, retry.State) error { return nil }

// produce writes order-1, order-2, … to topic at rate per second until
// ctx ends, with a client that has opts too.
func produce(ctx context.Context, seeds []string, topic string, rate int, opts ...kgo.Opt) {
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(seeds...), kgo.ProducerLinger(0)}, opts...)...)
	if err != nil {
		return
	}
	defer cl.Close()
	tick := time.NewTicker(time.Second / time.Duration(rate))
	defer tick.Stop()
	for n := 1; ; n++ {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		cl.Produce(ctx, &kgo.Record{Topic: topic, Key: fmt.Appendf(nil, "order-%d", n), Value: []byte(`{}`)}, nil)
	}
}

// summarize prints what happened to the records of plan, from the
// registry, and the kretry lines /metrics serves, from url.
func summarize(out io.Writer, reg prometheus.Gatherer, url string, plan strategy.Plan, ran time.Duration) error {
	mfs, err := reg.Gather()
	if err != nil {
		return err
	}
	// outcomes[role][outcome] sums kretry_records_total.
	outcomes := map[string]map[string]float64{}
	for _, mf := range mfs {
		if mf.GetName() != "kretry_records_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			var role, outcome string
			for _, lp := range m.GetLabel() {
				switch lp.GetName() {
				case "role":
					role = lp.GetValue()
				case "outcome":
					outcome = lp.GetValue()
				}
			}
			if outcomes[role] == nil {
				outcomes[role] = map[string]float64{}
			}
			outcomes[role][outcome] += m.GetCounter().GetValue()
		}
	}
	fmt.Fprintf(out, "summary after %s:\n", ran.Round(100*time.Millisecond))
	m, t, d := outcomes["main"], outcomes["tier"], outcomes["dlt"]
	fmt.Fprintf(out, "  %-24s %4.0f handled, %4.0f retried, %4.0f dead-lettered\n", "main topic "+plan.Main+":",
		m["handled"], m["retried"], m["dead_lettered"])
	fmt.Fprintf(out, "  %-24s %4.0f handled, %4.0f retried, %4.0f dead-lettered\n", fmt.Sprintf("%d retry tiers:", len(plan.Tiers)),
		t["handled"], t["retried"], t["dead_lettered"])
	fmt.Fprintf(out, "  %-24s %4.0f handled, %4.0f dropped\n", "DLT "+plan.DLT+":", d["handled"], d["dropped"])

	resp, err := http.Get(url)
	if err != nil {
		return fmt.Errorf("scraping %s: %w", url, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("scraping %s: %s", url, resp.Status)
	}
	fmt.Fprintf(out, "scraped from %s (non-zero kretry_ samples of a few families):\n", url)
	shown := []string{"kretry_records_total", "kretry_dead_lettered_total", "kretry_partitions_owned",
		"kretry_tier_records_waiting", "kretry_handler_duration_seconds_count", "kretry_delivery_lateness_seconds_count",
		"kretry_produce_bytes_total"}
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		line := sc.Text()
		for _, name := range shown {
			if strings.HasPrefix(line, name+"{") && !strings.HasSuffix(line, " 0") {
				fmt.Fprintf(out, "  %s\n", line)
			}
		}
	}
	return sc.Err()
}
