package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/kretry/kretry/config"
)

const createHelp = `Usage: kretry topics create (--file FILE [--group G] | --topic TOPIC [SETTING FLAGS])
                            [--dry-run] [CONNECTION FLAGS]

Creates every retry topic and dead-letter topic (DLT) of each listener that
does not exist yet (the topics "kretry topics plan" lists), as a listener
creates them at start-up: with the listener's partitions (-1: as many as
its main topic has), replicationFactor (-1: the broker's default) and
topicConfigs. The main topic must exist; kretry never creates it. Topics
that exist are left as they are ("kretry topics verify" checks them), and
createTopics: false in a policy does not stop this command. Running it
again is harmless.

Prints one line per topic:
  TOPIC: created (N partitions, replication factor R, CONFIG=VALUE ...)
  TOPIC: exists
  TOPIC: would create (...)       with --dry-run
  TOPIC: failed: ERROR

Flags:
  --dry-run              list what would be created; create nothing

` + specSourceHelp + "\n" + clientFlagsHelp + `
Exit status: 0 every planned topic exists now, 1 invalid policy or a main
topic does not exist, 2 usage error (also a --file that cannot be read), 3 a
topic could not be created, or the cluster cannot be reached or failed.
`

// connectCluster checks the connection flags and connects. When it fails it has
// printed why, and code is the exit status.
func connectCluster(ctx context.Context, cmd string, conn *clientFlags, stderr io.Writer) (*kgo.Client, *kadm.Client, int, bool) {
	if _, err := conn.opts(); err != nil {
		return nil, nil, usageError(stderr, cmd, err), false
	}
	cl, adm, err := conn.client(ctx)
	if err != nil {
		fmt.Fprintf(stderr, "kretry %s: %v\n", cmd, err)
		return nil, nil, exitFailed, false
	}
	return cl, adm, exitOK, true
}

// policyClusterArgs parses the flags of a cluster command that works on a
// policy's listeners and connects. When it fails it has printed why, and
// code is the exit status.
func policyClusterArgs(ctx context.Context, fs *flag.FlagSet, src *specSource, conn *clientFlags, args []string, help string,
	stdout, stderr io.Writer) (specs []config.Spec, cl *kgo.Client, adm *kadm.Client, code int, ok bool) {
	cmd := fs.Name()
	pos, code, done := parse(fs, args, help, stdout, stderr)
	if done {
		return nil, nil, nil, code, false
	}
	if len(pos) > 0 {
		return nil, nil, nil, usagef(stderr, cmd, "unexpected argument %q", pos[0]), false
	}
	if specs, code, ok = src.specs(cmd, stderr); !ok {
		return nil, nil, nil, code, false
	}
	if cl, adm, code, ok = connectCluster(ctx, cmd, conn, stderr); !ok {
		return nil, nil, nil, code, false
	}
	return specs, cl, adm, exitOK, true
}

// listenerTopics is what the cluster says about a listener's topics.
type listenerTopics struct {
	spec    config.Spec
	planned []plannedTopic
	details kadm.TopicDetails // the main topic and every planned topic
	// mainErr is why the main topic cannot be used (nil when it exists).
	mainErr error
}

// exists reports whether the topic is in details without error, and the
// error when it is there with another error than "unknown topic".
func (lt *listenerTopics) exists(topic string) (bool, error) {
	d, ok := lt.details[topic]
	switch {
	case !ok, errors.Is(d.Err, kerr.UnknownTopicOrPartition):
		return false, nil
	case d.Err != nil:
		return false, d.Err
	}
	return true, nil
}

func describeListener(ctx context.Context, adm *kadm.Client, s config.Spec) (*listenerTopics, error) {
	planned, err := plannedTopics(s)
	if err != nil {
		return nil, err
	}
	names := []string{s.Topic}
	for _, t := range planned {
		names = append(names, t.name)
	}
	details, err := adm.ListTopics(ctx, names...)
	if err != nil {
		return nil, fmt.Errorf("listing the topics of listener %q: %w", s.Topic, err)
	}
	lt := &listenerTopics{spec: s, planned: planned, details: details}
	ok, err := lt.exists(s.Topic)
	switch {
	case err != nil:
		lt.mainErr = err
	case !ok:
		lt.mainErr = errors.New("does not exist")
	}
	return lt, nil
}

// describeCreate says how topics are created for s with the given
// partition count and replication factor (-1: the broker's default).
func describeCreate(partitions int32, rf int16, configs map[string]*string) string {
	parts := []string{fmt.Sprintf("%d partitions", partitions)}
	if rf > 0 {
		parts = append(parts, fmt.Sprintf("replication factor %d", rf))
	} else {
		parts = append(parts, "the broker's default replication factor")
	}
	for _, k := range slices.Sorted(maps.Keys(configs)) {
		if v := configs[k]; v != nil {
			parts = append(parts, k+"="+*v)
		}
	}
	return strings.Join(parts, ", ")
}

// createConfigs returns the configs to create topics with: nil values mean
// the broker's default, which is what leaving them out gives.
func createConfigs(configs map[string]*string) map[string]*string {
	out := map[string]*string{}
	for k, v := range configs {
		if v != nil {
			out[k] = v
		}
	}
	return out
}

func topicsCreate(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("topics create", flag.ContinueOnError)
	var src specSource
	src.register(fs)
	dryRun := fs.Bool("dry-run", false, "")
	var conn clientFlags
	conn.register(fs)
	specs, cl, adm, code, ok := policyClusterArgs(ctx, fs, &src, &conn, args, createHelp, stdout, stderr)
	if !ok {
		return code
	}
	defer cl.Close()

	status := exitOK
	for _, s := range specs {
		status = max(status, createListener(ctx, adm, s, *dryRun, stdout, stderr))
		if ctx.Err() != nil {
			fmt.Fprintf(stderr, "kretry topics create: %v\n", ctx.Err())
			return exitFailed
		}
	}
	return status
}

func createListener(ctx context.Context, adm *kadm.Client, s config.Spec, dryRun bool, stdout, stderr io.Writer) int {
	lt, err := describeListener(ctx, adm, s)
	if err != nil {
		fmt.Fprintf(stderr, "kretry topics create: %v\n", err)
		return exitFailed
	}
	if lt.mainErr != nil {
		if ok, err := lt.exists(s.Topic); !ok && err == nil {
			fmt.Fprintf(stderr, "kretry topics create: main topic %q of listener %q does not exist; create it first (kretry creates only retry and DLT topics)\n", s.Topic, s.Topic)
			return exitInvalid
		}
		fmt.Fprintf(stderr, "kretry topics create: main topic %q: %v\n", s.Topic, lt.mainErr)
		return exitFailed
	}
	partitions := s.Topics.Partitions
	if partitions < 0 {
		partitions = int32(len(lt.details[s.Topic].Partitions))
	}
	configs := createConfigs(s.Topics.Configs)

	status := exitOK
	line := map[string]string{}
	var missing []string
	for _, t := range lt.planned {
		ok, err := lt.exists(t.name)
		switch {
		case err != nil:
			line[t.name] = "failed: " + err.Error()
			status = exitFailed
		case ok:
			line[t.name] = "exists"
		default:
			missing = append(missing, t.name)
		}
	}
	switch {
	case len(missing) == 0:
	case dryRun:
		for _, t := range missing {
			line[t] = "would create (" + describeCreate(partitions, s.Topics.ReplicationFactor, configs) + ")"
		}
	default:
		resp, err := adm.CreateTopics(ctx, partitions, s.Topics.ReplicationFactor, configs, missing...)
		if err != nil {
			fmt.Fprintf(stderr, "kretry topics create: creating %s: %v\n", strings.Join(missing, ", "), err)
			return exitFailed
		}
		for _, t := range missing {
			r, ok := resp[t]
			switch {
			case !ok:
				line[t] = "failed: no answer from the broker"
				status = exitFailed
			case r.Err == nil:
				n, rf := r.NumPartitions, r.ReplicationFactor
				if n <= 0 { // brokers before Kafka 2.4 do not say
					n = partitions
				}
				if rf <= 0 {
					rf = s.Topics.ReplicationFactor
				}
				line[t] = "created (" + describeCreate(n, rf, configs) + ")"
			case errors.Is(r.Err, kerr.TopicAlreadyExists): // created meanwhile
				line[t] = "exists"
			default:
				msg := r.Err.Error()
				if r.ErrMessage != "" {
					msg += " (" + r.ErrMessage + ")"
				}
				line[t] = "failed: " + msg
				status = exitFailed
			}
		}
	}
	var created []string
	for _, t := range missing {
		if strings.HasPrefix(line[t], "created") {
			created = append(created, t)
		}
	}
	if err := waitVisible(ctx, adm, created); err != nil {
		fmt.Fprintf(stderr, "kretry topics create: %v\n", err)
		status = exitFailed
	}
	for _, t := range lt.planned {
		fmt.Fprintf(stdout, "%s: %s\n", t.name, line[t.name])
	}
	return status
}

// waitVisible waits until the cluster's metadata shows every topic with a
// leader for each partition: a broker answers CreateTopics before every
// broker knows the topic, and a listener or "topics verify" started right
// after would be told it does not exist.
func waitVisible(ctx context.Context, adm *kadm.Client, topics []string) error {
	if len(topics) == 0 {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		details, err := adm.ListTopics(ctx, topics...)
		ready := err == nil
		for _, t := range topics {
			d, ok := details[t]
			if !ok || d.Err != nil || len(d.Partitions) == 0 {
				ready = false
				break
			}
			for _, p := range d.Partitions {
				if p.Leader < 0 {
					ready = false
				}
			}
		}
		if ready {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("created %s, but the cluster's metadata did not show them with leaders within a minute: %w",
				strings.Join(topics, ", "), context.Cause(ctx))
		case <-tick.C:
		}
	}
}
