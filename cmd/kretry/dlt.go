package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/kretry/kretry/internal/dltops"
	"github.com/kretry/kretry/retry/spring"
)

const dltInspectHelp = `Usage: kretry dlt inspect [FILTERS] [--json] [--show-records [--limit N]] [CONNECTION FLAGS] DLT...

Reads the dead-letter topics DLT... from their start (or from --since) up to
their end offsets when the command starts, and prints the records grouped by
error type, original topic and age (<1h, 1h-1d, 1d-7d, >7d, from the DLT
record's timestamp), with their count, the oldest and newest DLT record
timestamps and the dead-letter reasons. It reads the partitions directly: it
joins no consumer group and commits nothing.

A record without kretry headers is read from Spring Kafka's DLT headers
when it has them (its reason is then "spring"). A record whose retry headers
do not decode is counted under the error type "(corrupt headers)", one
without any retry header under "(no retry headers)"; neither fails the
command.

Flags:
  --json                  print JSON for machines: totals, groups and samples
  --show-records          also print the first matching records
  --limit N               how many records --show-records prints (default 20)

` + dltFiltersHelp + `
` + clientFlagsHelp + `
Exit status: 0 success, 2 usage error, 3 the cluster failed or the command
was interrupted.
`

func dltInspect(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("dlt inspect", flag.ContinueOnError)
	var cf clientFlags
	cf.register(fs)
	var ff dltFilterFlags
	ff.register(fs)
	asJSON := fs.Bool("json", false, "")
	show := fs.Bool("show-records", false, "")
	limit := fs.Int("limit", 20, "")
	pos, code, done := parse(fs, args, dltInspectHelp, stdout, stderr)
	if done {
		return code
	}
	usage := func(err error) int {
		fmt.Fprintf(stderr, "kretry dlt inspect: %v\n\n%s", err, dltInspectHelp)
		return exitUsage
	}
	dlts, err := dltTopics(pos)
	if err != nil {
		return usage(err)
	}
	if *limit < 0 {
		return usage(fmt.Errorf("--limit: must be >= 0, got %d", *limit))
	}
	now := time.Now()
	filter, err := ff.filter(now)
	if err != nil {
		return usage(err)
	}
	opts, err := cf.opts()
	if err != nil {
		return usage(err)
	}
	if err := ping(ctx, &cf); err != nil {
		fmt.Fprintf(stderr, "kretry dlt inspect: %v\n", err)
		return exitFailed
	}
	samples := 0
	if *show {
		samples = *limit
	}
	rep, err := dltops.Inspect(ctx, dltops.InspectConfig{DLTs: dlts, Filter: filter, ClientOpts: opts,
		Samples: samples, Now: now, Decoder: dltDecoder()})
	if err != nil {
		if ctx.Err() != nil {
			fmt.Fprintf(stderr, "kretry dlt inspect: interrupted after reading %d records\n", rep.Read)
		} else {
			fmt.Fprintf(stderr, "kretry dlt inspect: %v\n", err)
		}
		return exitFailed
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(rep); err != nil {
			fmt.Fprintf(stderr, "kretry dlt inspect: %v\n", err)
			return exitFailed
		}
		return exitOK
	}
	printInspect(stdout, rep, *show)
	return exitOK
}

// ping checks that the cluster answers, so that a wrong address fails at
// once with a message that says so.
func ping(ctx context.Context, cf *clientFlags) error {
	cl, _, err := cf.client(ctx)
	if err != nil {
		return err
	}
	cl.Close()
	return nil
}

// dltDecoder is the decoder of DLT records: kretry's headers, or, on a
// record without them, Spring Kafka's.
func dltDecoder() dltops.Decoder { return dltops.Decoder{Fallback: spring.DecodeDeadLetter} }

const dltReplayHelp = `Usage: kretry dlt replay --run ID [FILTERS] [--to TOPIC] [--dry-run] [--rate N]
                        [--state-dir DIR] [--progress MODE] [--json] [CONNECTION FLAGS] DLT...

Sends the records of the dead-letter topics DLT... that the filters select
back to their original topic, to the partition they came from when that
topic has it (otherwise by key), or, with --to, to TOPIC by key. It reads
each DLT up to its end offsets when the run starts, joining no consumer group.

Each record keeps its key, value and user headers byte for byte. Every retry
header is removed (kretry's, and Spring Kafka's kafka_original-*,
kafka_exception-*, kafka_key-exception-*, kafka_dlt-* and retry_topic-*;
a record without kretry headers is routed by Spring's), so a kretry listener
handles it as a first delivery (attempt 1). It gets a fresh timestamp: the
listener measures the policy's time budget from the record's timestamp, and
an old one would send the record straight back to the DLT with reason
"timeout" on its first failure. It gets three audit headers:
kretry-replay-run (ID), kretry-replayed-from (DLT/PARTITION/OFFSET) and
kretry-replayed-at (epoch ms), replacing those of an earlier replay. A record
whose headers name no original topic (corrupt or missing headers) cannot be
replayed without --to: it is skipped and listed in the summary.

Resuming: a run never sends a DLT record twice. Its state file,
DIR/kretry-replay-ID.json, is replaced atomically at checkpoints, each written
only after every record sent before it has been acknowledged; it records the
next DLT offset of each partition and the end offset of every target
partition, after which anything sent later must land. A run
interrupted (Ctrl-C: it flushes, checkpoints and exits 3) or killed is resumed
by running the same command again: it first reads the target partitions from
the checkpointed end offsets for records carrying this run ID, skips the DLT
records they came from (counted as "already sent"), and goes on from the
checkpointed offsets. The same ID with other DLTs, filters or --to is
refused; a finished run sends nothing when run again. A new ID replays
again.

Flags:
  --run ID                run ID (required): letters, digits, '.', '_', '-'; names
                          the state file and goes into kretry-replay-run
  --to TOPIC              send every record to TOPIC (by key) instead of its
                          original topic
  --dry-run               read and count what would be sent, per target topic;
                          send nothing and write no state
  --rate N                send at most N records per second (default 0: no limit)
  --state-dir DIR         directory of the state file and of its lock file,
                          kretry-replay-ID.lock (default .)
  --checkpoint-every N    DLT records read between checkpoints (default 1000; also
                          every 5s)
  --progress MODE         auto, bar, plain or none (default auto: a bar on a
                          terminal, plain lines otherwise, none with --json)
  --json                  print the summary as JSON

` + dltFiltersHelp + `
` + clientFlagsHelp + `
Exit status: 0 success (also when records were skipped: the summary lists
them), 2 usage error or a resume with another selection, 3 the cluster failed
or the run was interrupted (run the same command again to resume).
`

func dltReplay(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("dlt replay", flag.ContinueOnError)
	var cf clientFlags
	cf.register(fs)
	var ff dltFilterFlags
	ff.register(fs)
	run := fs.String("run", "", "")
	to := fs.String("to", "", "")
	dry := fs.Bool("dry-run", false, "")
	rate := fs.Float64("rate", 0, "")
	stateDir := fs.String("state-dir", ".", "")
	every := fs.Int("checkpoint-every", dltops.DefaultCheckpointEvery, "")
	progress := fs.String("progress", "auto", "")
	asJSON := fs.Bool("json", false, "")
	pos, code, done := parse(fs, args, dltReplayHelp, stdout, stderr)
	if done {
		return code
	}
	usage := func(err error) int {
		fmt.Fprintf(stderr, "kretry dlt replay: %v\n\n%s", err, dltReplayHelp)
		return exitUsage
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
	prog, err := progressFor(*progress, *asJSON, stdout, stderr)
	if err != nil {
		return usage(err)
	}
	opts, err := cf.opts()
	if err != nil {
		return usage(err)
	}
	if err := ping(ctx, &cf); err != nil {
		fmt.Fprintf(stderr, "kretry dlt replay: %v\n", err)
		return exitFailed
	}
	res, err := dltops.Replay(ctx, dltops.ReplayConfig{Run: *run, DLTs: dlts, Filter: filter, To: *to,
		DryRun: *dry, Rate: *rate, StateDir: *stateDir, CheckpointEvery: *every,
		FlushTimeout: cf.timeout, ClientOpts: opts, Decoder: dltDecoder(), Progress: prog})
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
	if err != nil {
		fmt.Fprintf(stderr, "kretry dlt replay: %v\n", err)
		fmt.Fprintf(stderr, "kretry dlt replay: nothing has been sent twice; resume with the same command:\n  kretry dlt replay %s\n", shellJoin(args))
		return exitFailed
	}
	return exitOK
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
