package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"slices"
	"strings"
	"time"

	"github.com/kretry/kretry/config"
	"github.com/kretry/kretry/internal/suggest"
)

// A usage error is reported the same way by every command: one line
// naming the command and what is wrong (with "did you mean ...?" when a
// flag or command name is close to a known one), then one line pointing
// at the command's help, and exit status 2. The full help is printed only
// for --help (to stdout, exit 0) and for kretry run without arguments.

// usageError prints a usage error of cmd ("" for kretry itself) and
// returns exitUsage.
func usageError(stderr io.Writer, cmd string, err error) int {
	prefix, help := "kretry", "kretry --help"
	if cmd != "" {
		prefix, help = "kretry "+cmd, "kretry "+cmd+" --help"
	}
	fmt.Fprintf(stderr, "%s: %v\nRun %q for usage.\n", prefix, err, help)
	return exitUsage
}

// usagef is usageError with a formatted error.
func usagef(stderr io.Writer, cmd, format string, args ...any) int {
	return usageError(stderr, cmd, fmt.Errorf(format, args...))
}

// commands are kretry's commands and their subcommands, in the order the
// usage lists them.
var commands = []struct {
	name string
	subs []string
}{
	{"policy", []string{"validate"}},
	{"topics", []string{"plan", "create", "verify"}},
	{"tiers", []string{"lag"}},
	{"dlt", []string{"inspect", "replay"}},
}

func subcommandsOf(cmd string) []string {
	for _, c := range commands {
		if c.name == cmd {
			return c.subs
		}
	}
	return nil
}

// unknownCommand returns the error for an unknown first argument: a
// suggestion when it is close to a command ("polcy" → "kretry policy") or
// to a subcommand ("replay" → "kretry dlt replay").
func unknownCommand(cmd string, rest []string) error {
	full := map[string]string{"help": "help", "version": "version", "console": "console"}
	var names []string
	for _, c := range commands {
		full[c.name] = c.name
		names = append(names, c.name)
		for _, s := range c.subs {
			full[s] = c.name + " " + s
			names = append(names, s)
		}
	}
	names = append(names, "help", "version", "console")
	best := closest(cmd, names)
	if best == "" {
		return fmt.Errorf("unknown command %q", cmd)
	}
	guess := full[best]
	// "kretry polcy validate": keep the subcommand when it fits.
	if len(rest) > 0 && best == guess && slices.Contains(subcommandsOf(best), rest[0]) {
		guess += " " + rest[0]
	}
	return fmt.Errorf("unknown command %q; did you mean \"kretry %s\"?", cmd, guess)
}

// unknownSubcommand returns the error for an unknown subcommand sub of
// cmd, with a suggestion when sub is close to one of cmd's subcommands or
// is another command's ("topics lag" → "kretry tiers lag").
func unknownSubcommand(cmd, sub string) error {
	if best := closest(sub, subcommandsOf(cmd)); best != "" {
		return fmt.Errorf("unknown subcommand %q; did you mean \"kretry %s %s\"?", sub, cmd, best)
	}
	for _, c := range commands {
		if slices.Contains(c.subs, sub) {
			return fmt.Errorf("unknown subcommand %q; did you mean \"kretry %s %s\"?", sub, c.name, sub)
		}
	}
	return fmt.Errorf("unknown subcommand %q; want %s", sub, orList(subcommandsOf(cmd)))
}

// missingSubcommand returns the error for cmd given without a subcommand.
func missingSubcommand(cmd string) error {
	return fmt.Errorf("missing subcommand; want %s", orList(subcommandsOf(cmd)))
}

// orList joins names as "a, b or c".
func orList(names []string) string {
	if len(names) <= 1 {
		return strings.Join(names, "")
	}
	return strings.Join(names[:len(names)-1], ", ") + " or " + names[len(names)-1]
}

// flagError rewrites an error of fs.Parse so that it names the flag as
// it is written on the command line (--name) and, for an unknown flag,
// suggests the closest flag fs defines.
func flagError(fs *flag.FlagSet, err error) error {
	msg := err.Error()
	if name, ok := strings.CutPrefix(msg, "flag provided but not defined: -"); ok {
		for _, f := range config.Fields() {
			if why := noFlag(f.Key); why != "" && name == kebab(f.Key) {
				return fmt.Errorf("unknown flag --%s: %s %s and changes no topic, so no command takes it; "+
					"set it in the policy file or the handler's tag", name, f.Key, why)
			}
		}
		var names []string
		fs.VisitAll(func(f *flag.Flag) { names = append(names, f.Name) })
		if best := closest(name, names); best != "" {
			return fmt.Errorf("unknown flag --%s; did you mean --%s?", name, best)
		}
		return fmt.Errorf("unknown flag --%s", name)
	}
	if name, ok := strings.CutPrefix(msg, "flag needs an argument: -"); ok {
		return fmt.Errorf("--%s: needs a value", name)
	}
	// invalid value "x" for flag -name: rule
	// invalid boolean value "x" for -name: rule
	for _, lead := range []string{"invalid value ", "invalid boolean value "} {
		rest, ok := strings.CutPrefix(msg, lead)
		if !ok {
			continue
		}
		value, tail, ok := strings.Cut(rest, " for ")
		if !ok {
			break
		}
		tail = strings.TrimPrefix(tail, "flag ")
		name, rule, ok := strings.Cut(strings.TrimPrefix(tail, "-"), ": ")
		if !ok {
			break
		}
		if rule == "parse error" {
			rule = wantOf(fs.Lookup(name))
		}
		return fmt.Errorf("--%s %s: %s", name, value, rule)
	}
	return err
}

// wantOf says what value flag f takes, for a value that does not parse.
func wantOf(f *flag.Flag) string {
	if f != nil {
		if g, ok := f.Value.(flag.Getter); ok {
			switch g.Get().(type) {
			case time.Duration:
				return "want a duration such as 500ms, 30s or 5m"
			case float64:
				return "want a number"
			case int, int64, uint, uint64:
				return "want a whole number"
			case bool:
				return "want true or false"
			}
		}
	}
	return "not a valid value"
}

// closest returns the name among candidates that name most likely
// misspells, or "" when none is close enough: the candidate at the
// smallest edit distance (letters inserted, deleted, replaced or two
// neighbours swapped, ignoring case), when that distance is at most 1 for
// names of up to 4 letters and at most 2 (3 from 9 letters) for longer
// ones; otherwise the only candidate that name is a prefix of (from 3
// letters). Ties go to the first candidate.
func closest(name string, candidates []string) string {
	n := strings.ToLower(strings.TrimLeft(name, "-"))
	if n == "" {
		return ""
	}
	limit := 1
	switch {
	case len(n) >= 9:
		limit = 3
	case len(n) >= 5:
		limit = 2
	}
	best, bestD := "", limit+1
	for _, c := range candidates {
		if d := suggest.Distance(n, strings.ToLower(c)); d < bestD {
			best, bestD = c, d
		}
	}
	if best != "" {
		return best
	}
	if len(n) < 3 {
		return ""
	}
	var prefixed []string
	for _, c := range candidates {
		if strings.HasPrefix(strings.ToLower(c), n) {
			prefixed = append(prefixed, c)
		}
	}
	if len(prefixed) == 1 {
		return prefixed[0]
	}
	return ""
}

// unreadable reports whether err, from config.Load, says that the policy
// file could not be read (missing, a directory, no permission) rather
// than that its content is wrong: a usage error, not an invalid policy.
func unreadable(err error) bool {
	var pe *fs.PathError
	return errors.As(err, &pe)
}
