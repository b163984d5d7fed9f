package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"maps"
	"slices"

	"github.com/kretry/kretry/config"
	"github.com/kretry/kretry/retry"
	"github.com/kretry/kretry/strategy"
)

// specSource holds the flags that say which listeners a cluster command
// works on, the same way as "topics plan": --file FILE [--errors NAMES], or
// --topic TOPIC with setting flags over kretry's defaults.
type specSource struct {
	file      string
	errors    string
	values    map[string]string // setting flags given, by policy key
	flagNames map[string]string // flag name of each policy key
}

// specSourceHelp documents the flags specSource registers.
const specSourceHelp = `Policy flags (the listeners, as in "kretry topics plan"):
  --file FILE            read the listeners from a policy file
  --errors NAMES         comma-separated error names the program registers
                         (checked when given)
  --topic TOPIC          one listener from setting flags over kretry's defaults;
                         every setting of "kretry topics plan --help" is accepted
                         (--attempts, --delay, --partitions, --topic-configs, ...)
  --group G              the listener's consumer group (default kretry-<topic>);
                         with --file, every listener's group. With groupTopics,
                         the group is part of the retry and DLT topic names
`

func (s *specSource) register(fs *flag.FlagSet) {
	fs.StringVar(&s.file, "file", "", "")
	fs.StringVar(&s.errors, "errors", "", "")
	s.values = map[string]string{}
	s.flagNames = map[string]string{}
	for _, f := range settingFlags() {
		name := kebab(f.Key)
		s.flagNames[f.Key] = name
		fs.Func(name, "", func(v string) error {
			s.values[f.Key] = v
			return nil
		})
	}
}

// specs resolves the listeners. When it fails it has printed why, and
// code is the exit status. --group may be given with --file: it replaces
// every listener's group.
func (s *specSource) specs(cmd string, stderr io.Writer) (specs []config.Spec, code int, ok bool) {
	if specs, code, ok = s.resolve(cmd, stderr); ok && s.file != "" {
		if g := s.values["group"]; g != "" {
			for i := range specs {
				specs[i].Group = g
			}
		}
	}
	return specs, code, ok
}

func (s *specSource) resolve(cmd string, stderr io.Writer) (specs []config.Spec, code int, ok bool) {
	settings := maps.Clone(s.values)
	if s.file != "" {
		delete(settings, "group")
	}
	switch {
	case s.file != "" && len(settings) > 0:
		keys := slices.Sorted(maps.Keys(settings))
		return nil, usagef(stderr, cmd, "--file and setting flags (--%s) exclude each other", s.flagNames[keys[0]]), false
	case s.file != "":
		f, err := config.Load(s.file)
		if err != nil && unreadable(err) {
			return nil, usagef(stderr, cmd, "--file: cannot read the policy file: %v", errors.Unwrap(err)), false
		}
		if err != nil {
			report(stderr, cmd, s.file, err, nil)
			return nil, exitInvalid, false
		}
		reg, err := registry(s.errors, f.ErrorNames())
		if err != nil {
			return nil, usagef(stderr, cmd, "--errors: %v", err), false
		}
		if specs, err = f.Specs(reg); err != nil {
			report(stderr, cmd, s.file, err, nil)
			return nil, exitInvalid, false
		}
		return specs, exitOK, true
	case s.values["topic"] == "":
		return nil, usagef(stderr, cmd, "want --file FILE or --topic TOPIC"), false
	}
	d, err := config.ParseValues(s.values, config.Pos{File: flagSource})
	if err != nil {
		report(stderr, cmd, "the flags", err, s.flagNames)
		return nil, exitInvalid, false
	}
	reg, err := registry(s.errors, d.ErrorNames())
	if err != nil {
		return nil, usagef(stderr, cmd, "--errors: %v", err), false
	}
	spec, err := config.Resolve(config.DefaultSpec(d.Topic()), reg, d)
	if err != nil {
		report(stderr, cmd, "the flags", err, s.flagNames)
		return nil, exitInvalid, false
	}
	return []config.Spec{spec}, exitOK, true
}

// plannedTopic is a retry or dead-letter topic of a listener's plan.
type plannedTopic struct {
	name string
	role string // "retry" or "dlt"
}

// planOf returns the topic plan of s for its group (retry.Policy.PlanFor):
// with naming.groupTopics the group is part of the topic names.
func planOf(s config.Spec) (strategy.Plan, error) { return s.Policy.PlanFor(s.Topic, s.Group) }

// plannedTopics lists the retry topics and DLTs of s in hop order, as
// "topics plan" prints them: the DLTs are left out with dltStrategy none.
func plannedTopics(s config.Spec) ([]plannedTopic, error) {
	p, err := planOf(s)
	if err != nil {
		return nil, fmt.Errorf("listener %q: %w", s.Topic, err)
	}
	var out []plannedTopic
	for _, t := range p.Tiers {
		out = append(out, plannedTopic{t.Topic, "retry"})
	}
	if s.Policy.DLT != retry.NoDLT {
		out = append(out, plannedTopic{p.DLT, "dlt"})
		for _, r := range p.Routes {
			out = append(out, plannedTopic{r.Topic, "dlt"})
		}
	}
	return out, nil
}
