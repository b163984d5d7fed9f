package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/kretry/kretry/internal/dltops"
)

const dltReplayHelp = `Usage: kretry dlt replay --run ID (--file FILE | --topic TOPIC [SETTING FLAGS] | --to TOPIC)
                        [--group G] [FILTERS] [--dry-run] [--rate N] [--state-dir DIR]
                        [--progress MODE] [--json] [CONNECTION FLAGS] DLT...

Sends the records of the dead-letter topics DLT... that the filters select
back to the consumer group that dead-lettered them, and to that group only.
It reads each DLT up to its last stable offset when the run starts, with
isolation read_committed (records of aborted transactions are not
replayed), joining no consumer group.

Where a record goes:
  - A record that carries a consumer group G (its kretry-group header: a
    kretry listener writes it on every record it dead-letters) goes to the
    first retry tier of G's listener of its original topic in the policy
    (--file, or --topic with setting flags: the tier "kretry topics plan"
    prints first, named after G with groupTopics), due at once, as G's
    second delivery: fresh kretry headers with attempt 2, its original
    topic, partition and offset, the replay's time as original timestamp
    and first failure, and group G. Only G's listener handles it: the
    listeners of other groups reading that tier skip it. When G's plan has
    no retry tier (attempts 1), the record goes to its original topic.
  - A record without a group (written by Spring Kafka, or by kretry before
    the kretry-group header) goes to its original topic, where every
    consumer group reading the topic handles it again.
  - A record of a group the policy has no listener of for its original
    topic is skipped: give that group's policy, or select groups with
    --group.
  - With --to, every record goes to TOPIC by key, whatever its group, and
    no policy is needed.
A record keeps the partition it came from when its target has it
(otherwise it goes by key). The dry run and the summary say, for each
target, which groups will see its records: the group only, for a retry
tier; every group reading it, for a main topic or --to, with the groups
that have committed offsets on it.

Each record keeps its key, value and user headers byte for byte. Every retry
header is removed (kretry's, and Spring Kafka's kafka_original-*,
kafka_exception-*, kafka_key-exception-*, kafka_dlt-* and retry_topic-*;
a record without kretry headers is routed by Spring's): a record sent to a
main topic is a first delivery (attempt 1), one sent to a retry tier carries
only its new kretry headers. It gets a fresh timestamp: the listener
measures the policy's time budget from the original timestamp, and an old
one would send the record straight back to the DLT with reason "timeout" on
its first failure. It gets three audit headers: kretry-replay-run (ID),
kretry-replayed-from (DLT/PARTITION/OFFSET) and kretry-replayed-at (epoch
ms), replacing those of an earlier replay.

Records that are not sent are skipped, counted and listed, never silently:
a record whose headers name no original topic (use --to), one whose original
topic does not exist (leave it out with --original-topic naming the other
topics, or redirect it with --to), one of a group the policy does not know,
one whose group's first retry tier does not exist (create it with "kretry
topics create"), and one the cluster refuses even when sent alone
(MESSAGE_TOO_LARGE, INVALID_RECORD). DLT offsets that retention deleted
before they were read are counted as lost.

Resuming: within one run ID, a selected record is written to its target at
most once, and a finished run has written each of them exactly once except
those it lists as skipped or lost. The state file, DIR/kretry-replay-ID.json,
is replaced atomically at checkpoints, each written only after every record
handed to the producer before it was acknowledged; it records the next DLT
offset of each partition, the end offset of every target partition, and how
the attempt stands: until when it may hand records over, when it last did,
and whether it ended with every record acknowledged. The producer writes a
record within --delivery-timeout of its hand-over or not at all, and gives
the broker --request-timeout plus 10s (the produce timeout) to append it.
A run interrupted (Ctrl-C: it waits up to --request-timeout for the records
in flight, checkpoints if all were acknowledged, prints the summary and
exits 3) or killed is resumed by running the same command again. If the
attempt did not end with every record acknowledged, the resume first waits,
saying so (Ctrl-C stops the wait), until its last hand-over plus
--delivery-timeout, the produce and request timeouts and
--replication-margin have passed: by then each of its records is below the
high watermark of its partition or never will be. Then it reads the target
partitions from the checkpointed end offsets for records carrying this run
ID, skips the DLT records they came from (counted as "already sent"), and
goes on from the checkpointed offsets. The same ID with other DLTs, filters,
--to or first retry tiers (another policy) is refused; a finished run sends
nothing when run again. A new ID replays again.

This holds if: the state directory survives between attempts and one
attempt runs at a time (the lock file enforces it on Unix only); nobody else
writes records carrying this run ID; the records sent stay in the targets
until a resume has read them (if retention, a truncated log or a recreated
topic removed them, the resume stops with exit 1 rather than guess); a broker
appends a produce request within its timeouts or never; a record beyond the
high watermark is replicated or truncated within --replication-margin (the
cluster's replica.lag.time.max.ms) and unclean leader election is off; and
the clocks of the machines that run attempts agree and do not jump.

Flags:
  --run ID                run ID (required): letters, digits, '.', '_', '-'; names
                          the state file and goes into kretry-replay-run
  --to TOPIC              send every record to TOPIC (by key), whatever its group,
                          as a first delivery; excludes the policy flags
  --dry-run               read and count what this attempt would send, per target
                          topic; send nothing, write no state, wait for nothing
  --rate N                send at most N records per second (default 0: no limit)
  --state-dir DIR         directory of the state file and of its lock file,
                          kretry-replay-ID.lock; it must exist. Default:
                          $XDG_STATE_HOME/kretry, or ~/.local/state/kretry, created
                          if needed: the same directory from any working
                          directory, so that a resume finds its state. A resume
                          that does not find the state file starts the run anew
                          and sends everything again.
  --checkpoint-every N    DLT records read between checkpoints (default 1000; also
                          every 5s)
  --delivery-timeout D    how long the producer may try to write a record before
                          the replay gives up on it and stops (default 30s)
  --replication-margin D  how long a record beyond the high watermark may take to
                          be replicated or truncated: the cluster's
                          replica.lag.time.max.ms (default 30s)
  --progress MODE         auto, bar, plain or none (default auto: a bar on a
                          terminal, plain lines otherwise, none with --json)
  --json                  print the summary as JSON

` + dltFiltersHelp + `  --group G               only the records consumer group G dead-lettered; with
                          --topic, also the listener's group (default
                          kretry-<topic>); with --file, every listener's group

Policy flags (the listeners whose first retry tiers the records go to, as in
"kretry topics plan"; required unless --to is given):
  --file FILE             read the listeners from the service's policy file
  --errors NAMES          comma-separated error names the program registers
                          (checked when given)
  --topic TOPIC           one listener from setting flags over kretry's defaults;
                          every setting of "kretry topics plan --help" is accepted
                          (--attempts, --delay, --multiplier, --group-topics, ...)

` + clientFlagsHelp + `
Exit status: 0 every selected record was sent (or had been); also a dry run,
1 the run finished but records were skipped or lost (the summary lists them;
running it again does not change that), an invalid policy, or the run cannot
be resumed safely (the message says why), 2 usage error (also a --file that
cannot be read) or a resume with another selection, 3 the cluster cannot be
reached or failed, or the run was interrupted (run the same command again to
resume).
`

// replayEnv is what tests change in a replay command.
type replayEnv struct {
	// progress wraps the progress reporter; nil keeps it.
	progress func(dltops.Progress) dltops.Progress
}

func dltReplay(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	return dltReplayWith(ctx, args, stdout, stderr, replayEnv{})
}

func dltReplayWith(ctx context.Context, args []string, stdout, stderr io.Writer, env replayEnv) int {
	fs := flag.NewFlagSet("dlt replay", flag.ContinueOnError)
	var cf clientFlags
	cf.register(fs)
	var ff dltFilterFlags
	ff.register(fs)
	var src specSource // its --group is also the filter
	src.register(fs)
	run := fs.String("run", "", "")
	to := fs.String("to", "", "")
	dry := fs.Bool("dry-run", false, "")
	rate := fs.Float64("rate", 0, "")
	stateDir := fs.String("state-dir", "", "")
	every := fs.Int("checkpoint-every", dltops.DefaultCheckpointEvery, "")
	delivery := fs.Duration("delivery-timeout", dltops.DefaultDeliveryTimeout, "")
	margin := fs.Duration("replication-margin", dltops.DefaultReplicationMargin, "")
	progress := fs.String("progress", "auto", "")
	asJSON := fs.Bool("json", false, "")
	pos, code, done := parse(fs, args, dltReplayHelp, stdout, stderr)
	if done {
		return code
	}
	usage := func(err error) int {
		return usageError(stderr, "dlt replay", err)
	}
	dlts, err := dltTopics(pos)
	if err != nil {
		return usage(err)
	}
	switch {
	case *run == "":
		return usage(errors.New("--run ID is required"))
	case dltops.ValidRunID(*run) != nil:
		return usage(fmt.Errorf("--run: %v", dltops.ValidRunID(*run)))
	case *rate < 0:
		return usage(fmt.Errorf("--rate: must be >= 0, got %v", *rate))
	case *every <= 0:
		return usage(fmt.Errorf("--checkpoint-every: must be > 0, got %d", *every))
	case *delivery <= 0:
		return usage(fmt.Errorf("--delivery-timeout: must be > 0, got %v", *delivery))
	case *margin <= 0:
		return usage(fmt.Errorf("--replication-margin: must be > 0, got %v", *margin))
	}
	for _, d := range dlts {
		if d == *to {
			return usage(fmt.Errorf("--to %s is one of the DLTs being replayed", *to))
		}
	}
	filter, err := ff.filter(time.Now())
	if err != nil {
		return usage(err)
	}
	if g := src.values["group"]; g != "" {
		filter.Groups = []string{g}
	}
	prog, err := progressFor(*progress, *asJSON, stdout, stderr)
	if err != nil {
		return usage(err)
	}
	if env.progress != nil {
		prog = env.progress(prog)
	}
	opts, err := cf.opts()
	if err != nil {
		return usage(err)
	}
	tiers, code, ok := replayTiers(&src, *to, stderr)
	if !ok {
		return code
	}
	dir, err := replayStateDir(*stateDir, *dry)
	if err != nil {
		fmt.Fprintf(stderr, "kretry dlt replay: %v\n", err)
		return exitFailed
	}
	if err := ping(ctx, &cf); err != nil {
		fmt.Fprintf(stderr, "kretry dlt replay: %v\n", err)
		return exitFailed
	}
	onWait := func(until time.Time, why string) {
		fmt.Fprintf(stderr, "kretry dlt replay: waiting until %s (%v) before reading the target topics: %s. "+
			"Ctrl-C stops the wait; running the command again waits for what is left.\n",
			until.UTC().Format(time.RFC3339), time.Until(until).Round(time.Second), why)
	}
	res, err := dltops.Replay(ctx, dltops.ReplayConfig{Run: *run, DLTs: dlts, Filter: filter, To: *to, FirstTiers: tiers,
		DryRun: *dry, Rate: *rate, StateDir: dir, CheckpointEvery: *every,
		FlushTimeout: cf.timeout, DeliveryTimeout: *delivery, ReplicationMargin: *margin,
		ClientOpts: opts, Decoder: dltDecoder(), Progress: prog, OnWait: onWait})
	switch {
	case errors.Is(err, dltops.ErrSelectionChanged), errors.Is(err, dltops.ErrConfig):
		fmt.Fprintf(stderr, "kretry dlt replay: %v\n", err)
		return exitUsage
	case res == nil:
		fmt.Fprintf(stderr, "kretry dlt replay: %v\n", err)
		return exitFailed
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		_ = enc.Encode(res)
	} else {
		printReplay(stdout, res)
	}
	switch {
	case errors.Is(err, dltops.ErrUnverifiable):
		fmt.Fprintf(stderr, "kretry dlt replay: %v\n", err)
		return exitInvalid
	case err != nil:
		fmt.Fprintf(stderr, "kretry dlt replay: %v\n", err)
		fmt.Fprintf(stderr, "kretry dlt replay: %s; resume with the same command:\n  kretry dlt replay %s\n",
			established(res), shellJoin(resumeArgs(args, dir)))
		return exitFailed
	case res.Status != dltops.ResultDryRun && res.Incomplete():
		fmt.Fprintf(stderr, "kretry dlt replay: run %s finished without replaying every selected record: %d skipped, %d lost (listed above)\n",
			res.Run, res.Totals.SkippedTotal(), res.Totals.Lost)
		return exitInvalid
	}
	return exitOK
}

// replayTiers returns the first retry tier of each listener of the policy
// flags, by main topic and group ("" when its plan has none), or nil with
// --to, which excludes them. When it fails it has printed why, and code is
// the exit status.
func replayTiers(src *specSource, to string, stderr io.Writer) (map[dltops.ListenerKey]string, int, bool) {
	const cmd = "dlt replay"
	if to != "" {
		settings := maps.Clone(src.values)
		delete(settings, "group") // the filter
		if src.file != "" || src.errors != "" || len(settings) > 0 {
			return nil, usagef(stderr, cmd, "--to and the policy flags (--file, --errors, --topic and setting flags) exclude each other: --to sends every record to TOPIC"), false
		}
		return nil, exitOK, true
	}
	if src.file == "" && src.values["topic"] == "" {
		return nil, usagef(stderr, cmd, "want --file FILE or --topic TOPIC, the policy that names each group's first retry tier, or --to TOPIC"), false
	}
	specs, code, ok := src.specs(cmd, stderr)
	if !ok {
		return nil, code, false
	}
	tiers := map[dltops.ListenerKey]string{}
	for _, s := range specs {
		p, err := planOf(s)
		if err != nil { // resolved specs have valid plans
			fmt.Fprintf(stderr, "kretry %s: listener %q: %v\n", cmd, s.Topic, err)
			return nil, exitInvalid, false
		}
		tier := ""
		if len(p.Tiers) > 0 {
			tier = p.Tiers[0].Topic
		}
		tiers[dltops.ListenerKey{Topic: s.Topic, Group: s.Group}] = tier
	}
	return tiers, exitOK, true
}

// established says what an attempt that stopped with an error leaves
// behind, for the resume hint.
func established(res *dltops.Result) string {
	switch {
	case res.Checkpoints == 0 && res.AttemptSent == 0:
		return "this attempt sent nothing and left the state file as it was"
	case res.Clean:
		return "every record this attempt sent was acknowledged and is recorded in the state file"
	case res.Unacked > 0 && !res.ResumeAfter.IsZero():
		return fmt.Sprintf("%d records handed to the cluster were not acknowledged and may still land until %s; "+
			"a resume waits until then, finds those that landed and sends only the others",
			res.Unacked, res.ResumeAfter.UTC().Format(time.RFC3339))
	}
	return "not every record this attempt sent was acknowledged; a resume waits for them to land or expire, " +
		"finds those that landed and sends only the others"
}

// replayStateDir returns the absolute state directory: dir, or, when dir
// is empty, the default one (created if needed, except for a dry run,
// which writes nothing).
func replayStateDir(dir string, dry bool) (string, error) {
	if dir != "" {
		abs, err := filepath.Abs(dir)
		if err != nil {
			return "", fmt.Errorf("--state-dir %s: %v", dir, err)
		}
		return abs, nil
	}
	def, err := defaultStateDir()
	if err != nil {
		return "", err
	}
	if !dry {
		if err := os.MkdirAll(def, 0o700); err != nil {
			return "", fmt.Errorf("state directory (give one with --state-dir): %v", err)
		}
	}
	return def, nil
}

// defaultStateDir is $XDG_STATE_HOME/kretry when that is an absolute
// path, as the XDG base directory specification asks, and otherwise
// ~/.local/state/kretry.
func defaultStateDir() (string, error) {
	if d := os.Getenv("XDG_STATE_HOME"); filepath.IsAbs(d) {
		return filepath.Join(d, "kretry"), nil
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return "", fmt.Errorf("no default state directory (give one with --state-dir): %v", err)
	}
	return filepath.Join(home, ".local", "state", "kretry"), nil
}

// resumeArgs returns args for the resume hint: with --state-dir the
// absolute dir and --tls-ca and --file absolute, so that the command works
// from any working directory.
func resumeArgs(args []string, stateDir string) []string {
	out := make([]string, 0, len(args)+2)
	for i := 0; i < len(args); i++ {
		a := args[i]
		name, value, hasValue := strings.Cut(strings.TrimLeft(a, "-"), "=")
		if !strings.HasPrefix(a, "-") || a == "-" || a == "--" {
			out = append(out, a)
			continue
		}
		switch name {
		case "state-dir":
			if !hasValue {
				i++ // its value
			}
			continue
		case "tls-ca", "file":
			if !hasValue && i+1 < len(args) {
				i++
				value = args[i]
			}
			if abs, err := filepath.Abs(value); err == nil {
				value = abs
			}
			out = append(out, "--"+name+"="+value)
			continue
		}
		out = append(out, a)
	}
	return append(out, "--state-dir", stateDir)
}

// progressFor returns the progress reporter of --progress mode. auto is a
// bar when stdout is a terminal, plain lines otherwise, and nothing with
// --json (the summary is then the only output on stdout; a forced bar or
// plain lines go to stderr).
func progressFor(mode string, asJSON bool, stdout, stderr io.Writer) (dltops.Progress, error) {
	w := stdout
	if asJSON {
		w = stderr
	}
	switch mode {
	case "auto":
		switch {
		case asJSON:
			return dltops.NoProgress{}, nil
		case isTerminal(stdout):
			return dltops.NewBar(w, nil), nil
		}
		return dltops.NewLines(w, 0, 0, nil), nil
	case "bar":
		return dltops.NewBar(w, nil), nil
	case "plain":
		return dltops.NewLines(w, 0, 0, nil), nil
	case "none":
		return dltops.NoProgress{}, nil
	}
	return nil, fmt.Errorf("--progress %q: want auto, bar, plain or none", mode)
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

// shellJoin quotes args for a POSIX shell where needed.
func shellJoin(args []string) string {
	out := make([]string, len(args))
	for i, a := range args {
		if a != "" && strings.IndexFunc(a, func(r rune) bool {
			return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("-_./:=,@%+", r))
		}) < 0 {
			out[i] = a
			continue
		}
		out[i] = "'" + strings.ReplaceAll(a, "'", `'\''`) + "'"
	}
	return strings.Join(out, " ")
}
