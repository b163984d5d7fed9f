package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"slices"
	"strings"
	"unicode"

	"github.com/kretry/kretry/config"
	"github.com/kretry/kretry/retry"
)

// flagSource is the Pos.File of settings given as flags.
const flagSource = "flags"

// kebab turns a policy key into its flag name: maxDelay → max-delay.
func kebab(key string) string {
	var b strings.Builder
	for i, r := range key {
		if unicode.IsUpper(r) {
			// An acronym such as DLT stays one word: dltHandlerAttempts has
			// no capitals inside "dlt", so each capital starts a word.
			if i > 0 {
				b.WriteByte('-')
			}
			r = unicode.ToLower(r)
		}
		b.WriteRune(r)
	}
	return b.String()
}

// settingFlags returns the settings that have a flag: every one but those
// of noFlag.
func settingFlags() []config.Field {
	return slices.DeleteFunc(config.Fields(), func(f config.Field) bool { return noFlag(f.Key) != "" })
}

// noFlag says why the setting key has no flag, or returns "" if it has
// one: the batch settings size a program's batches, the exactly-once
// settings set how it commits and the key-order settings how it orders a
// key's records; none changes a topic.
func noFlag(key string) string {
	switch {
	case slices.Contains(config.BatchKeys(), key):
		return "sizes a program's batches"
	case slices.Contains(config.ExactlyOnceKeys(), key):
		return "sets how a program's listener commits"
	case slices.Contains(config.KeyOrderKeys(), key):
		return "sets how a program's listener orders a key's records"
	}
	return ""
}

func planHelp() string {
	var b strings.Builder
	b.WriteString(`Usage: kretry topics plan --file FILE [--group G] [--errors NAMES] [--json]
       kretry topics plan --topic TOPIC [SETTING FLAGS] [--json]

Prints the retry topics and dead-letter topics (DLTs) of each listener, in
hop order, one per line as TOPIC<TAB>DELAY, where DELAY is the tier's
nominal delay (a Go duration) and "-" for a DLT. DLTs are left out when
dltStrategy is none. The policy comes from a policy file, or from setting
flags over kretry's defaults; a value is written as in a struct tag (lists
separated by "|", as in --delays '1s|5s|30s').

Flags:
  --file FILE     read the listeners from a policy file
  --errors NAMES  comma-separated error names the program registers (checked
                  when given)
  --group G       with --file, every listener's consumer group (a setting flag
                  otherwise); with groupTopics, the group is part of the retry
                  and DLT topic names (orders-billing-retry-1000)
  --json          print JSON instead of lines

Setting flags (see docs/configuration.md):
`)
	for _, f := range settingFlags() {
		fmt.Fprintf(&b, "  --%s %s\n        %s (default: %s)\n", kebab(f.Key), f.Syntax, f.Doc, f.Default)
	}
	b.WriteString(`
Exit status: 0 planned, 1 invalid policy, 2 usage error (also a --file that
cannot be read).
`)
	return b.String()
}

// planJSON is one listener in the --json output.
type planJSON struct {
	Topic       string     `json:"topic"`
	Group       string     `json:"group"`
	Attempts    int        `json:"attempts"`
	RetryTopics []tierJSON `json:"retryTopics"`
	DLTTopics   []dltJSON  `json:"dltTopics"`
}

type tierJSON struct {
	Topic    string `json:"topic"`
	Delay    string `json:"delay"`
	DelayMs  int64  `json:"delayMs"`
	Reusable bool   `json:"reusable"`
}

type dltJSON struct {
	Topic string `json:"topic"`
	Route string `json:"route,omitempty"`
}

func plan(args []string, stdout, stderr io.Writer) int {
	help := planHelp()
	fs := flag.NewFlagSet("topics plan", flag.ContinueOnError)
	var src specSource
	src.register(fs)
	asJSON := fs.Bool("json", false, "")
	pos, code, done := parse(fs, args, help, stdout, stderr)
	if done {
		return code
	}
	if len(pos) > 0 {
		return usagef(stderr, "topics plan", "unexpected argument %q", pos[0])
	}
	specs, code, ok := src.specs("topics plan", stderr)
	if !ok {
		return code
	}

	var out []planJSON
	var lines strings.Builder
	for _, s := range specs {
		p, err := planOf(s)
		if err != nil { // resolved specs have valid plans
			fmt.Fprintf(stderr, "kretry topics plan: %v\n", err)
			return exitInvalid
		}
		pj := planJSON{Topic: s.Topic, Group: s.Group, Attempts: p.Attempts, RetryTopics: []tierJSON{}, DLTTopics: []dltJSON{}}
		for _, t := range p.Tiers {
			fmt.Fprintf(&lines, "%s\t%s\n", t.Topic, t.Delay)
			pj.RetryTopics = append(pj.RetryTopics, tierJSON{Topic: t.Topic, Delay: t.Delay.String(), DelayMs: t.Delay.Milliseconds(), Reusable: t.Reusable})
		}
		if s.Policy.DLT != retry.NoDLT {
			fmt.Fprintf(&lines, "%s\t-\n", p.DLT)
			pj.DLTTopics = append(pj.DLTTopics, dltJSON{Topic: p.DLT})
			for _, r := range p.Routes {
				fmt.Fprintf(&lines, "%s\t-\n", r.Topic)
				pj.DLTTopics = append(pj.DLTTopics, dltJSON{Topic: r.Topic, Route: r.Suffix})
			}
		}
		out = append(out, pj)
	}
	if !*asJSON {
		io.WriteString(stdout, lines.String())
		return exitOK
	}
	if out == nil {
		out = []planJSON{}
	}
	b, err := json.MarshalIndent(struct {
		Listeners []planJSON `json:"listeners"`
	}{out}, "", "  ")
	if err != nil {
		fmt.Fprintf(stderr, "kretry topics plan: %v\n", err)
		return exitInvalid
	}
	stdout.Write(append(b, '\n'))
	return exitOK
}
