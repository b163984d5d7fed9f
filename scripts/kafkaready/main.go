// Command kafkaready waits until a Kafka cluster really serves clients.
//
// A TCP connect is not enough: a KRaft node accepts connections long before
// its broker is registered, unfenced and able to host replicas. kafkaready
// therefore checks the whole path a test will use, retrying each step until
// -timeout runs out:
//
//  1. kadm lists exactly -expect brokers;
//  2. a topic with one partition and replication factor -rf is created
//     (an existing topic of that name is reused);
//  3. one record is produced with acks=all;
//  4. the record is consumed back, by a consumer group that commits it
//     (this also creates __consumer_offsets), unless -group=false;
//  5. every partition whose replicas are all on listed brokers has its full
//     ISR and a leader (after restart-node: the node has caught up), unless
//     -isr=false;
//  6. the topic and the group are deleted, unless -keep.
//
// It is used by scripts/kafka.sh:
//
//	go run ./scripts/kafkaready -brokers 127.0.0.1:9092 -expect 1 -timeout 120s
//
// Against a SASL/SCRAM listener (kafka.sh start secure) it authenticates as
// a user allowed to do all of the above, e.g. the secure mode's super user:
//
//	KAFKAREADY_SASL_PASS=... go run ./scripts/kafkaready -brokers 127.0.0.1:9092 \
//		-sasl SCRAM-SHA-256 -sasl-user kretry-admin
//
// Progress goes to stderr; the exit status is 0 when every step passed.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl/scram"
)

// envPass is the environment variable -sasl-pass defaults to, so the
// password need not appear in the process list.
const envPass = "KAFKAREADY_SASL_PASS"

type config struct {
	brokers []string
	expect  int
	rf      int
	topic   string
	keep    bool
	group   bool
	isr     bool
	timeout time.Duration
	verbose bool
	auth    []kgo.Opt // SASL, for every client
}

func main() {
	var (
		cfg                   config
		brokers               string
		mechanism, user, pass string
	)
	flag.StringVar(&brokers, "brokers", "", "comma-separated bootstrap list host:port,... (required)")
	flag.IntVar(&cfg.expect, "expect", 1, "number of brokers that must be listed, exactly")
	flag.IntVar(&cfg.rf, "rf", 0, "replication factor of the probe topic; 0 means min(3, -expect)")
	flag.StringVar(&cfg.topic, "topic", "", "probe topic; empty means a fresh kretry-ready-<time> topic")
	flag.BoolVar(&cfg.keep, "keep", false, "keep the probe topic (and group) instead of deleting them")
	flag.BoolVar(&cfg.group, "group", true, "consume through a consumer group and commit, not a direct partition consumer")
	flag.BoolVar(&cfg.isr, "isr", true, "wait until partitions on listed brokers have their full ISR")
	flag.DurationVar(&cfg.timeout, "timeout", 120*time.Second, "give up after this long")
	flag.BoolVar(&cfg.verbose, "v", false, "log franz-go client activity to stderr")
	flag.StringVar(&mechanism, "sasl", "", "SASL mechanism: SCRAM-SHA-256 or SCRAM-SHA-512; empty means no SASL")
	flag.StringVar(&user, "sasl-user", "", "SASL user (with -sasl)")
	flag.StringVar(&pass, "sasl-pass", os.Getenv(envPass), "SASL password (with -sasl); default $"+envPass)
	flag.Parse()

	for _, b := range strings.Split(brokers, ",") {
		if b = strings.TrimSpace(b); b != "" {
			cfg.brokers = append(cfg.brokers, b)
		}
	}
	switch {
	case len(cfg.brokers) == 0:
		fail("-brokers is required, e.g. -brokers 127.0.0.1:9092")
	case cfg.expect < 1:
		fail("-expect must be >= 1, got %d", cfg.expect)
	case cfg.rf < 0 || cfg.rf > 32767:
		fail("-rf must be between 0 and 32767, got %d", cfg.rf)
	case cfg.timeout <= 0:
		fail("-timeout must be > 0, got %s", cfg.timeout)
	}
	if cfg.rf == 0 {
		cfg.rf = min(3, cfg.expect)
	}
	auth, err := saslOpts(mechanism, user, pass)
	if err != nil {
		fail("%v", err)
	}
	cfg.auth = auth
	if cfg.topic == "" {
		cfg.topic = fmt.Sprintf("kretry-ready-%d", time.Now().UnixNano())
	}

	ctx, cancel := context.WithTimeout(context.Background(), cfg.timeout)
	defer cancel()
	start := time.Now()
	if err := run(ctx, cfg); err != nil {
		fail("not ready after %.1fs: %v", time.Since(start).Seconds(), err)
	}
	logf("ready: %d broker(s), topic %q rf=%d produced and consumed in %.1fs",
		cfg.expect, cfg.topic, cfg.rf, time.Since(start).Seconds())
}

// saslOpts returns the client options for the -sasl flags.
func saslOpts(mechanism, user, pass string) ([]kgo.Opt, error) {
	if mechanism == "" {
		if user != "" {
			return nil, errors.New("-sasl-user needs -sasl (SCRAM-SHA-256 or SCRAM-SHA-512)")
		}
		return nil, nil
	}
	if user == "" || pass == "" {
		return nil, fmt.Errorf("-sasl %s needs -sasl-user and a password (-sasl-pass or $%s)", mechanism, envPass)
	}
	a := scram.Auth{User: user, Pass: pass}
	switch strings.ToUpper(mechanism) {
	case "SCRAM-SHA-256":
		return []kgo.Opt{kgo.SASL(a.AsSha256Mechanism())}, nil
	case "SCRAM-SHA-512":
		return []kgo.Opt{kgo.SASL(a.AsSha512Mechanism())}, nil
	}
	return nil, fmt.Errorf("-sasl must be SCRAM-SHA-256 or SCRAM-SHA-512, got %q", mechanism)
}

func run(ctx context.Context, cfg config) error {
	opts := append([]kgo.Opt{
		kgo.SeedBrokers(cfg.brokers...),
		kgo.DialTimeout(2 * time.Second),
		kgo.RetryTimeout(10 * time.Second),
		kgo.MetadataMinAge(250 * time.Millisecond),
		kgo.RequiredAcks(kgo.AllISRAcks()),
	}, cfg.auth...)
	if cfg.verbose {
		opts = append(opts, kgo.WithLogger(kgo.BasicLogger(os.Stderr, kgo.LogLevelInfo, nil)))
	}
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		return fmt.Errorf("client: %w", err)
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)

	if err := waitBrokers(ctx, adm, cfg.expect); err != nil {
		return err
	}
	if err := retry(ctx, "create topic "+cfg.topic, func(ctx context.Context) error {
		_, err := adm.CreateTopic(ctx, 1, int16(cfg.rf), nil, cfg.topic)
		if errors.Is(err, kerr.TopicAlreadyExists) {
			return nil
		}
		return err
	}); err != nil {
		return err
	}

	value := fmt.Sprintf("kafkaready %d", time.Now().UnixNano())
	var produced *kgo.Record
	if err := retry(ctx, "produce (acks=all)", func(ctx context.Context) error {
		r := &kgo.Record{Topic: cfg.topic, Value: []byte(value)}
		if err := cl.ProduceSync(ctx, r).FirstErr(); err != nil {
			return err
		}
		produced = r
		return nil
	}); err != nil {
		return err
	}
	logf("produced to %s[%d] at offset %d", cfg.topic, produced.Partition, produced.Offset)

	group := ""
	if cfg.group {
		group = "kretry-ready-" + value[len("kafkaready "):]
	}
	if err := consume(ctx, cfg, group, value, produced.Offset); err != nil {
		return err
	}

	if cfg.isr {
		if err := waitISR(ctx, adm); err != nil {
			return err
		}
	}

	if !cfg.keep {
		dctx, dcancel := context.WithTimeout(context.Background(), 15*time.Second)
		defer dcancel()
		if group != "" {
			if _, err := adm.DeleteGroup(dctx, group); err != nil {
				logf("warning: delete group %s: %v", group, err)
			}
		}
		if _, err := adm.DeleteTopic(dctx, cfg.topic); err != nil {
			logf("warning: delete topic %s: %v", cfg.topic, err)
		}
	}
	return nil
}

// waitBrokers lists brokers until exactly expect are present.
func waitBrokers(ctx context.Context, adm *kadm.Client, expect int) error {
	last := -1
	return retry(ctx, fmt.Sprintf("list %d broker(s)", expect), func(ctx context.Context) error {
		bs, err := adm.ListBrokers(ctx)
		if err != nil {
			return err
		}
		if len(bs) != last {
			logf("brokers listed: %d %v", len(bs), bs.NodeIDs())
			last = len(bs)
		}
		if len(bs) != expect {
			return fmt.Errorf("%d broker(s) listed %v, want %d", len(bs), bs.NodeIDs(), expect)
		}
		return nil
	})
}

// waitISR waits until every partition whose replicas are all on listed
// (live) brokers has a leader and all its replicas in sync. Partitions with
// a replica on a stopped or killed node are skipped: they cannot catch up.
func waitISR(ctx context.Context, adm *kadm.Client) error {
	last := -1
	return retry(ctx, "in-sync replicas", func(ctx context.Context) error {
		m, err := adm.Metadata(ctx)
		if err != nil {
			return err
		}
		live := make(map[int32]bool, len(m.Brokers))
		for _, b := range m.Brokers {
			live[b.NodeID] = true
		}
		var lagging []string
		checked := 0
		for _, t := range m.Topics {
			if t.Err != nil {
				continue // e.g. being deleted
			}
			for _, p := range t.Partitions {
				if !allLive(p.Replicas, live) {
					continue
				}
				checked++
				if p.Leader < 0 || len(p.ISR) < len(p.Replicas) {
					lagging = append(lagging, fmt.Sprintf("%s[%d] leader %d isr %v replicas %v",
						t.Topic, p.Partition, p.Leader, p.ISR, p.Replicas))
				}
			}
		}
		if len(lagging) > 0 {
			return fmt.Errorf("%d of %d partition(s) not fully in sync, first: %s", len(lagging), checked, lagging[0])
		}
		if checked != last {
			logf("all %d partition(s) on live brokers have their full ISR", checked)
			last = checked
		}
		return nil
	})
}

func allLive(replicas []int32, live map[int32]bool) bool {
	for _, r := range replicas {
		if !live[r] {
			return false
		}
	}
	return true
}

// consume reads the probe topic from offset until it sees value. With a
// group it also commits the record, which proves the group coordinator works.
func consume(ctx context.Context, cfg config, group, value string, offset int64) error {
	opts := append([]kgo.Opt{
		kgo.SeedBrokers(cfg.brokers...),
		kgo.DialTimeout(2 * time.Second),
		kgo.FetchMaxWait(500 * time.Millisecond),
	}, cfg.auth...)
	if group != "" {
		opts = append(opts,
			kgo.ConsumerGroup(group),
			kgo.ConsumeTopics(cfg.topic),
			kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
			kgo.DisableAutoCommit(),
		)
	} else {
		opts = append(opts, kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{
			cfg.topic: {0: kgo.NewOffset().At(offset)},
		}))
	}
	if cfg.verbose {
		opts = append(opts, kgo.WithLogger(kgo.BasicLogger(os.Stderr, kgo.LogLevelInfo, nil)))
	}
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		return fmt.Errorf("consumer client: %w", err)
	}
	defer cl.Close()

	for {
		fs := cl.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("consume %s: %w", cfg.topic, err)
		}
		var found *kgo.Record
		fs.EachError(func(t string, p int32, err error) { logf("consume %s[%d]: %v (retrying)", t, p, err) })
		fs.EachRecord(func(r *kgo.Record) {
			if string(r.Value) == value {
				found = r
			}
		})
		if found == nil {
			continue
		}
		if group != "" {
			if err := retry(ctx, "commit in group "+group, func(ctx context.Context) error {
				return cl.CommitRecords(ctx, found)
			}); err != nil {
				return err
			}
			cl.LeaveGroup()
		}
		if group != "" {
			logf("consumed offset %d back and committed it in group %s", found.Offset, group)
		} else {
			logf("consumed offset %d back", found.Offset)
		}
		return nil
	}
}

// retry calls f until it returns nil or ctx ends, logging each new error.
func retry(ctx context.Context, what string, f func(context.Context) error) error {
	var last string
	for {
		actx, cancel := context.WithTimeout(ctx, 10*time.Second)
		err := f(actx)
		cancel()
		if err == nil {
			return nil
		}
		if msg := err.Error(); msg != last {
			logf("%s: %v (retrying)", what, err)
			last = msg
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s: %w (last error: %v)", what, ctx.Err(), err)
		case <-time.After(250 * time.Millisecond):
		}
	}
}

var started = time.Now()

// logf prints to stderr, prefixed with the seconds since the start.
func logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "kafkaready: %5.1fs "+format+"\n",
		append([]any{time.Since(started).Seconds()}, args...)...)
}

func fail(format string, args ...any) {
	logf(format, args...)
	os.Exit(1)
}
