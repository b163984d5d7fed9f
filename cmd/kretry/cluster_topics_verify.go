package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"maps"
	"slices"
	"strconv"
	"strings"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kretry/kretry/config"
)

const verifyHelp = `Usage: kretry topics verify (--file FILE [--group G] | --topic TOPIC [SETTING FLAGS])
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
policy is invalid), 2 usage error (also a --file that cannot be read), 3 the
cluster cannot be reached or failed.
`

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
