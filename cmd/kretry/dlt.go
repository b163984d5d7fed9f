package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"time"

	"github.com/kretry/kretry/internal/dltops"
	"github.com/kretry/kretry/retry/spring"
)

const dltInspectHelp = `Usage: kretry dlt inspect [FILTERS] [--json] [--show-records [--limit N]] [CONNECTION FLAGS] DLT...

Reads the dead-letter topics DLT... from their start (or from --since) up to
their end offsets when the command starts, and prints the records grouped by
error type, original topic, consumer group and age (<1h, 1h-1d, 1d-7d, >7d,
from the DLT record's timestamp), with their count, the oldest and newest DLT
record timestamps and the dead-letter reasons. The consumer group is the one
that dead-lettered the records (their kretry-group header): "(none)" for
records written by Spring Kafka or by kretry before that header. It reads
the partitions directly: it joins no consumer group and commits nothing.

A record without kretry headers is read from Spring Kafka's DLT headers
when it has them (its reason is then "spring"). A record whose retry headers
do not decode is counted under the error type "(corrupt headers)", one
without any retry header under "(no retry headers)"; neither fails the
command. A record with reason "follower" waited behind an earlier record of
its key under key order and was dead-lettered with it, without a handler
call: --show-records prints "never handled (a follower)" in place of its
attempts, and its error names the record it followed.

Flags:
  --json                  print JSON for machines: totals, groups and samples
  --show-records          also print the first matching records
  --limit N               how many records --show-records prints (default 20)

` + dltFiltersHelp + `  --group GROUPS          consumer groups that dead-lettered the records; "(none)"
                          for records without one, "(unknown)" for corrupt ones

` + clientFlagsHelp + `
Transactions: the DLTs are read up to their last stable offset, with
isolation read_committed: records of aborted transactions (a DLT publisher
that aborted) are not counted, nor those of a transaction still open.
Records deleted by retention while the command reads are counted in a note.

Exit status: 0 success, 2 usage error, 3 the cluster cannot be reached or
failed, or the command was interrupted.
`

func dltInspect(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("dlt inspect", flag.ContinueOnError)
	var cf clientFlags
	cf.register(fs)
	var ff dltFilterFlags
	ff.register(fs)
	var groups listFlag
	fs.Var(&groups, "group", "")
	asJSON := fs.Bool("json", false, "")
	show := fs.Bool("show-records", false, "")
	limit := fs.Int("limit", 20, "")
	pos, code, done := parse(fs, args, dltInspectHelp, stdout, stderr)
	if done {
		return code
	}
	usage := func(err error) int {
		return usageError(stderr, "dlt inspect", err)
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
	filter.Groups = groups
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
		Samples: samples, Now: now, Decoder: dltDecoder(), IdleTimeout: dltops.DefaultIdleTimeout})
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
