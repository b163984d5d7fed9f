// Command kretry is the command-line companion of the kretry library. It
// checks retry policies offline, and plans, creates and checks their topics,
// watches retry tiers and inspects and replays dead-letter topics on a
// cluster:
//
//	kretry policy validate [--errors NAMES] [--json] FILE
//	kretry topics plan --file FILE [--group G] [--errors NAMES] [--json]
//	kretry topics plan --topic TOPIC [--attempts N] [--delay D] [--multiplier X] … [--json]
//	kretry topics create (--file FILE | --topic TOPIC …) [--group G] [--dry-run] [CONNECTION FLAGS]
//	kretry topics verify (--file FILE | --topic TOPIC …) [--group G] [--json] [CONNECTION FLAGS]
//	kretry tiers lag (--file FILE | --topic TOPIC …) [--group G] [--fail-overdue D] … [CONNECTION FLAGS]
//	kretry dlt inspect [FILTERS] [--group GROUPS] [--json] [CONNECTION FLAGS] DLT...
//	kretry dlt replay --run ID (--file FILE | --topic TOPIC … | --to TOPIC) [--group G] [FILTERS] [--dry-run] [--rate N] [CONNECTION FLAGS] DLT...
//	kretry console [--listen HOST:PORT] [--allow-replay] [--state-dir DIR] [CONNECTION FLAGS]
//	kretry version
//
// "policy validate" checks a policy file (docs/configuration.md) and prints
// its listeners' resolved policies as a policy file with every setting
// explicit, or, when it is invalid, every problem as "file:line:col: key:
// rule" on standard error, and exits 1.
//
// "topics plan" prints the retry topics and dead-letter topics a policy
// needs, one per line as TOPIC<TAB>DELAY (DELAY is "-" for a DLT), from a
// policy file or from flags named after the policy keys (--max-delay for
// maxDelay). "topics create" and "topics verify" create or check those
// topics on a cluster. With --group (with --file, every listener's group)
// the plan is the group's: with groupTopics the group is in the names.
//
// "tiers lag" counts the records waiting in each retry tier of a consumer
// group, split by their due-time headers into not yet due (normal) and
// overdue (the listener is behind or down), and how many of them are
// followers (kretry-follows: queued behind an earlier record of their key).
//
// "dlt inspect" summarizes dead-letter records by error type, original
// topic, consumer group and age without joining a group or committing
// anything; "dlt replay" sends selected records back to the consumer group
// that dead-lettered them only — into the first retry tier of that group's
// plan, from the policy given (--file or --topic) — and records without a
// group to their original topic, for every group reading it; with audit
// headers added, resumably and never twice for the same run.
// docs/operations.md is the runbook that uses them.
//
// "console" serves the same from a browser: a small web UI (loopback only
// unless --listen says otherwise, read-only unless --allow-replay) with an
// overview of the plans found on the cluster, each DLT grouped and charted,
// each record decoded, and a replay form that runs the engine of "dlt
// replay" after a dry run and a typed confirmation.
//
// The commands that talk to a cluster share the connection flags --brokers
// (default $KRETRY_BROKERS), --tls, --tls-ca, --sasl, --sasl-user (password
// from $KRETRY_SASL_PASSWORD) and --request-timeout. Every command has
// --help. "version" prints the version kretry was built from. Install it
// from a clone with "go install ./cmd/kretry" (docs/operations.md).
//
// A usage error — an unknown command, subcommand or flag, a missing or
// extra argument, a flag value that does not parse, or a policy file that
// cannot be read — prints one line naming the command and the problem
// (with "did you mean ...?" when a command or flag name is close to a
// known one) and one line pointing at the command's --help, and exits 2.
// --help prints the command's full help to standard output and exits 0.
//
// Exit status, the same for every command:
//
//	0  success
//	1  problems found: an invalid policy, a failed check (topics verify,
//	   tiers lag --fail-overdue), a replay that skipped records
//	2  usage error, including a policy file that cannot be read
//	3  the cluster cannot be reached or failed, or the command was
//	   interrupted
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"slices"
	"strings"
	"syscall"

	"github.com/kretry/kretry/config"
	"github.com/kretry/kretry/strategy"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := runContext(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// Exit codes.
const (
	exitOK      = 0
	exitInvalid = 1
	exitUsage   = 2
	exitFailed  = 3 // a command that talks to a cluster failed or was interrupted
)

const usage = `kretry: tools for kretry retry topics, dead-letter topics and policies

Usage:
  kretry policy validate [--errors NAMES] [--json] FILE
  kretry topics plan --file FILE [--group G] [--errors NAMES] [--json]
  kretry topics plan --topic TOPIC [SETTING FLAGS] [--json]
  kretry topics create (--file FILE [--group G] | --topic TOPIC [SETTING FLAGS]) [--dry-run] [CONNECTION FLAGS]
  kretry topics verify (--file FILE [--group G] | --topic TOPIC [SETTING FLAGS]) [--json] [CONNECTION FLAGS]
  kretry tiers lag (--file FILE | --topic TOPIC [SETTING FLAGS]) [--group G] [--per-partition]
                   [--json] [--max-read N] [--stop-at-not-due] [--fail-overdue D] [CONNECTION FLAGS]
  kretry dlt inspect [FILTERS] [--group GROUPS] [--json] [CONNECTION FLAGS] DLT...
  kretry dlt replay --run ID (--file FILE | --topic TOPIC [SETTING FLAGS] | --to TOPIC) [--group G]
                    [FILTERS] [--dry-run] [--rate N] [--state-dir DIR] [--progress MODE] [--json]
                    [CONNECTION FLAGS] DLT...
  kretry console [--listen HOST:PORT] [--allow-replay] [--state-dir DIR] [CONNECTION FLAGS]
  kretry version
  kretry help

Commands:
  policy validate   check a policy file and print its listeners' resolved policies
  topics plan       print the retry topics and DLTs of a policy as TOPIC<TAB>DELAY lines
  topics create     create the planned topics of a policy file on a cluster
  topics verify     check that a cluster has the planned topics of a policy file
  tiers lag         count the records waiting in each retry tier: not yet due, overdue
  dlt inspect       summarize dead-letter records by error type, original topic, group and age
  dlt replay        send dead-letter records back to the group that dead-lettered them, resumably
  console           serve a web UI for the tiers and DLTs of a cluster, with replay
  version           print the version of kretry and of Go that built it

Run "kretry COMMAND SUBCOMMAND --help" for a command's flags.
Exit status: 0 success, 1 problems found (invalid policy, failed check),
2 usage error (also a policy file that cannot be read), 3 the cluster cannot
be reached or failed, or the command was interrupted.
`

// run is the whole command: it parses args (without the program name),
// writes results to stdout and problems to stderr, and returns the exit
// status.
func run(args []string, stdout, stderr io.Writer) int {
	return runContext(context.Background(), args, stdout, stderr)
}

// runContext is run with a context that interrupts commands that talk to
// a cluster (main cancels it on SIGINT and SIGTERM).
func runContext(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return exitUsage
	}
	cmd, rest := args[0], args[1:]
	switch cmd {
	case "help", "-h", "-help", "--help":
		fmt.Fprint(stdout, usage)
		return exitOK
	case "version", "--version":
		return versionCmd(rest, stdout, stderr)
	case "console":
		return consoleCmd(ctx, rest, stdout, stderr)
	case "policy", "topics", "tiers", "dlt":
		if len(rest) == 0 || strings.HasPrefix(rest[0], "-") && !isHelp(rest[0]) {
			return usageError(stderr, cmd, missingSubcommand(cmd))
		}
		if isHelp(rest[0]) {
			fmt.Fprint(stdout, usage)
			return exitOK
		}
		sub := cmd + " " + rest[0]
		switch sub {
		case "policy validate":
			return validate(rest[1:], stdout, stderr)
		case "topics plan":
			return plan(rest[1:], stdout, stderr)
		case "topics create":
			return topicsCreate(ctx, rest[1:], stdout, stderr)
		case "topics verify":
			return topicsVerify(ctx, rest[1:], stdout, stderr)
		case "tiers lag":
			return tiersLag(ctx, rest[1:], stdout, stderr)
		case "dlt inspect":
			return dltInspect(ctx, rest[1:], stdout, stderr)
		case "dlt replay":
			return dltReplay(ctx, rest[1:], stdout, stderr)
		}
		return usageError(stderr, cmd, unknownSubcommand(cmd, rest[0]))
	}
	return usageError(stderr, "", unknownCommand(cmd, rest))
}

func isHelp(arg string) bool {
	return arg == "-h" || arg == "-help" || arg == "--help" || arg == "help"
}

// parse parses fs's flags wherever they stand among args and returns the
// positional arguments. It reports help (exitOK after printing help to
// stdout) and usage errors (exitUsage, see usageError) through done.
func parse(fs *flag.FlagSet, args []string, help string, stdout, stderr io.Writer) (pos []string, code int, done bool) {
	fs.SetOutput(io.Discard)
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				fmt.Fprint(stdout, help)
				return nil, exitOK, true
			}
			return nil, usageError(stderr, fs.Name(), flagError(fs, err)), true
		}
		args = fs.Args()
		if len(args) == 0 {
			return pos, exitOK, false
		}
		pos = append(pos, args[0])
		args = args[1:]
	}
}

// registry returns the registry the commands resolve names with: the
// names given with --errors, or, when none are given, every name used
// (the program's registry decides; the CLI cannot check it).
func registry(errorsFlag string, used []string) (*config.Registry, error) {
	names := used
	if errorsFlag != "" {
		names = nil
		for _, n := range strings.Split(errorsFlag, ",") {
			if n = strings.TrimSpace(n); n != "" && !slices.Contains(names, n) {
				names = append(names, n)
			}
		}
	}
	ms := make([]strategy.Matcher, len(names))
	for i, n := range names {
		ms[i] = strategy.Matcher{Name: n, Match: func(error) bool { return false }}
	}
	return config.NewRegistry(ms...)
}

// report prints each problem of err on its own line and a summary.
func report(stderr io.Writer, cmd, source string, err error, flagNames map[string]string) {
	var errs []error
	var flatten func(error)
	flatten = func(e error) {
		if j, ok := e.(interface{ Unwrap() []error }); ok {
			for _, x := range j.Unwrap() {
				flatten(x)
			}
			return
		}
		errs = append(errs, e)
	}
	flatten(err)
	for _, e := range errs {
		var ce *config.Error
		if flagNames != nil && errors.As(e, &ce) && ce.Pos.File == flagSource {
			key := ce.Key
			if i := strings.IndexAny(key, "[."); i >= 0 {
				key = key[:i]
			}
			if name, ok := flagNames[key]; ok {
				fmt.Fprintf(stderr, "flag --%s%s: %v\n", name, ce.Key[len(key):], ce.Err)
				continue
			}
		}
		fmt.Fprintln(stderr, e)
	}
	noun := "problems"
	if len(errs) == 1 {
		noun = "problem"
	}
	fmt.Fprintf(stderr, "kretry %s: %d %s in %s\n", cmd, len(errs), noun, source)
}
