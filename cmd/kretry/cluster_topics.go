package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"maps"
	"slices"
	"strconv"
	"strings"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kretry/kretry/config"
)

const createHelp = `Usage: kretry topics create (--file FILE | --topic TOPIC [SETTING FLAGS])
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
topic does not exist, 2 usage error, 3 a topic could not be created or the
cluster failed.
`

const verifyHelp = `Usage: kretry topics verify (--file FILE | --topic TOPIC [SETTING FLAGS])
                            [--json] [CONNECTION FLAGS]

Checks that a cluster has the topics each listener needs, as a listener
would create them: its main topic exists; each retry topic and DLT (the
topics "kretry topics plan" lists) exists; has exactly the listener's
partitions, or, with partitions -1, at least as many partitions as the main
topic; has replicationFactor replicas per partition when it is set (not
-1); and has the value of each of its topicConfigs (a config set to null
must not be overridden on the topic).

Prints one line per topic, "TOPIC: OK", or one line per problem,
"TOPIC: problem: SETTING: RULE", where SETTING is the policy key the topic
breaks (exists, partitions, replicationFactor, topicConfigs.NAME).

Flags:
  --json                 print JSON instead of lines

` + specSourceHelp + "\n" + clientFlagsHelp + `
Exit status: 0 every topic is as planned, 1 a problem was found (or the
policy is invalid), 2 usage error, 3 the cluster failed.
`

// connectCluster checks the connection flags and connects. When it fails it has
// printed why, and code is the exit status.
func connectCluster(ctx context.Context, cmd, help string, conn *clientFlags, stderr io.Writer) (*kgo.Client, *kadm.Client, int, bool) {
	if _, err := conn.opts(); err != nil {
		fmt.Fprintf(stderr, "kretry %s: %v\n\n%s", cmd, err, help)
		return nil, nil, exitUsage, false
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
	stdout, stderr io.Writer, withFile ...string) (specs []config.Spec, cl *kgo.Client, adm *kadm.Client, code int, ok bool) {
	cmd := fs.Name()
	pos, code, done := parse(fs, args, help, stdout, stderr)
	if done {
		return nil, nil, nil, code, false
	}
	if len(pos) > 0 {
		fmt.Fprintf(stderr, "kretry %s: unexpected argument %q\n\n%s", cmd, pos[0], help)
		return nil, nil, nil, exitUsage, false
	}
	if specs, code, ok = src.specs(cmd, help, stderr, withFile...); !ok {
		return nil, nil, nil, code, false
	}
	if cl, adm, code, ok = connectCluster(ctx, cmd, help, conn, stderr); !ok {
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
	for _, t := range lt.planned {
		fmt.Fprintf(stdout, "%s: %s\n", t.name, line[t.name])
	}
	return status
}

// problem is one rule a topic breaks.
type problem struct {
	Setting string `json:"setting"`
	Rule    string `json:"rule"`
}

// topicCheck is the verdict on one topic.
type topicCheck struct {
	Topic             string    `json:"topic"`
	Role              string    `json:"role"` // main, retry or dlt
	Exists            bool      `json:"exists"`
	Partitions        int       `json:"partitions"`
	ReplicationFactor int       `json:"replicationFactor"` // the fewest replicas of a partition
	OK                bool      `json:"ok"`
	Problems          []problem `json:"problems"`
}

type verifyJSON struct {
	OK        bool                 `json:"ok"`
	Listeners []verifyListenerJSON `json:"listeners"`
}

type verifyListenerJSON struct {
	Topic  string       `json:"topic"`
	Group  string       `json:"group"`
	Topics []topicCheck `json:"topics"`
}

func topicsVerify(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("topics verify", flag.ContinueOnError)
	var src specSource
	src.register(fs)
	asJSON := fs.Bool("json", false, "")
	var conn clientFlags
	conn.register(fs)
	specs, cl, adm, code, ok := policyClusterArgs(ctx, fs, &src, &conn, args, verifyHelp, stdout, stderr)
	if !ok {
		return code
	}
	defer cl.Close()

	out := verifyJSON{OK: true, Listeners: []verifyListenerJSON{}}
	problems, topics := 0, 0
	for _, s := range specs {
		checks, err := verifyListener(ctx, adm, s)
		if err != nil {
			fmt.Fprintf(stderr, "kretry topics verify: %v\n", err)
			return exitFailed
		}
		for _, c := range checks {
			topics++
			problems += len(c.Problems)
			out.OK = out.OK && c.OK
		}
		out.Listeners = append(out.Listeners, verifyListenerJSON{Topic: s.Topic, Group: s.Group, Topics: checks})
	}
	if *asJSON {
		b, err := json.MarshalIndent(out, "", "  ")
		if err != nil {
			fmt.Fprintf(stderr, "kretry topics verify: %v\n", err)
			return exitFailed
		}
		stdout.Write(append(b, '\n'))
	} else {
		for _, l := range out.Listeners {
			for _, c := range l.Topics {
				if c.OK {
					fmt.Fprintf(stdout, "%s: OK\n", c.Topic)
				}
				for _, p := range c.Problems {
					fmt.Fprintf(stdout, "%s: problem: %s: %s\n", c.Topic, p.Setting, p.Rule)
				}
			}
		}
	}
	if problems == 0 {
		return exitOK
	}
	noun := "problems"
	if problems == 1 {
		noun = "problem"
	}
	fmt.Fprintf(stderr, "kretry topics verify: %d %s in %d topics\n", problems, noun, topics)
	return exitInvalid
}

// verifyListener checks the main topic and the planned topics of s.
func verifyListener(ctx context.Context, adm *kadm.Client, s config.Spec) ([]topicCheck, error) {
	lt, err := describeListener(ctx, adm, s)
	if err != nil {
		return nil, err
	}
	mainCheck := topicCheck{Topic: s.Topic, Role: "main", Problems: []problem{}}
	mainParts := -1
	if lt.mainErr != nil {
		rule := "the main topic " + lt.mainErr.Error() + " (kretry never creates it)"
		if s.Topics.Partitions < 0 {
			rule += "; the partition counts of the other topics, which must reach its count (partitions: -1), are not checked"
		}
		mainCheck.Problems = append(mainCheck.Problems, problem{"exists", rule})
	} else {
		d := lt.details[s.Topic]
		mainParts = len(d.Partitions)
		mainCheck.Exists, mainCheck.Partitions, mainCheck.ReplicationFactor = true, mainParts, minReplicas(d)
	}
	mainCheck.OK = len(mainCheck.Problems) == 0
	checks := []topicCheck{mainCheck}

	var existing []string
	for _, t := range lt.planned {
		c := topicCheck{Topic: t.name, Role: t.role, Problems: []problem{}}
		ok, err := lt.exists(t.name)
		switch {
		case err != nil:
			c.Problems = append(c.Problems, problem{"exists", "cannot be described: " + err.Error()})
		case !ok:
			c.Problems = append(c.Problems, problem{"exists", `the topic does not exist ("kretry topics create" creates it)`})
		default:
			d := lt.details[t.name]
			c.Exists, c.Partitions, c.ReplicationFactor = true, len(d.Partitions), minReplicas(d)
			c.Problems = append(c.Problems, checkLayout(s, c, d, mainParts)...)
			existing = append(existing, t.name)
		}
		checks = append(checks, c)
	}

	if len(s.Topics.Configs) > 0 && len(existing) > 0 {
		rcs, err := adm.DescribeTopicConfigs(ctx, existing...)
		if err != nil {
			return nil, fmt.Errorf("describing the configs of %s: %w", strings.Join(existing, ", "), err)
		}
		for i := range checks {
			if !slices.Contains(existing, checks[i].Topic) {
				continue
			}
			rc, err := rcs.On(checks[i].Topic, nil)
			if err == nil {
				err = rc.Err
			}
			if err != nil {
				checks[i].Problems = append(checks[i].Problems, problem{"topicConfigs", "cannot be described: " + err.Error()})
				continue
			}
			checks[i].Problems = append(checks[i].Problems, checkConfigs(s.Topics.Configs, rc)...)
		}
	}
	for i := range checks {
		checks[i].OK = len(checks[i].Problems) == 0
	}
	return checks, nil
}

// minReplicas returns the fewest replicas a partition of d has.
func minReplicas(d kadm.TopicDetail) int {
	n := -1
	for _, p := range d.Partitions {
		if n < 0 || len(p.Replicas) < n {
			n = len(p.Replicas)
		}
	}
	return max(n, 0)
}

// checkLayout checks the partition count and replication factor of an
// existing planned topic.
func checkLayout(s config.Spec, c topicCheck, d kadm.TopicDetail, mainParts int) []problem {
	var ps []problem
	switch want := int(s.Topics.Partitions); {
	case want > 0 && c.Partitions != want:
		ps = append(ps, problem{"partitions", fmt.Sprintf("has %d, want exactly %d (partitions: %d)", c.Partitions, want, want)})
	case want < 0 && mainParts >= 0 && c.Partitions < mainParts:
		ps = append(ps, problem{"partitions", fmt.Sprintf("has %d, want at least %d, the main topic's count (partitions: -1)", c.Partitions, mainParts)})
	}
	if rf := int(s.Topics.ReplicationFactor); rf > 0 {
		var bad []string
		for _, p := range d.Partitions.Sorted() {
			if len(p.Replicas) != rf {
				bad = append(bad, fmt.Sprintf("partition %d has %d", p.Partition, len(p.Replicas)))
			}
		}
		if len(bad) > 0 {
			if len(bad) > 3 {
				bad = append(bad[:3], fmt.Sprintf("%d more", len(bad)-3))
			}
			ps = append(ps, problem{"replicationFactor", fmt.Sprintf("want %d replicas per partition (replicationFactor: %d); %s",
				rf, rf, strings.Join(bad, ", "))})
		}
	}
	return ps
}

// checkConfigs compares the topic's configs with the policy's.
func checkConfigs(want map[string]*string, rc kadm.ResourceConfig) []problem {
	have := map[string]kadm.Config{}
	for _, c := range rc.Configs {
		have[c.Key] = c
	}
	var ps []problem
	for _, k := range slices.Sorted(maps.Keys(want)) {
		setting := "topicConfigs." + k
		c, ok := have[k]
		switch w := want[k]; {
		case w == nil:
			if ok && c.Source == kmsg.ConfigSourceDynamicTopicConfig {
				ps = append(ps, problem{setting, fmt.Sprintf("is set on the topic to %s, want the broker's default (%s: null)", quoteConfig(c), k)})
			}
		case !ok:
			ps = append(ps, problem{setting, fmt.Sprintf("is not reported by the broker, want %q", *w)})
		case c.Sensitive:
			ps = append(ps, problem{setting, "is sensitive; the broker does not show its value"})
		case c.Value == nil || *c.Value != *w:
			ps = append(ps, problem{setting, fmt.Sprintf("has %s, want %q", quoteConfig(c), *w)})
		}
	}
	return ps
}

func quoteConfig(c kadm.Config) string {
	if c.Value == nil {
		return "no value"
	}
	return strconv.Quote(*c.Value)
}
