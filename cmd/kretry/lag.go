package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/kretry/kretry/config"
	"github.com/kretry/kretry/internal/tierlag"
)

// defaultMaxRead is the default of --max-read.
const defaultMaxRead = 100000

const lagHelp = `Usage: kretry tiers lag (--file FILE | --topic TOPIC [SETTING FLAGS]) [--group G]
                       [--per-partition] [--json] [--max-read N] [--stop-at-not-due]
                       [--fail-overdue D] [CONNECTION FLAGS]

Counts the records each listener's consumer group has not committed in each
of the listener's retry topics (tiers), and reads them to tell the records
waiting for their due time from the overdue ones. The group is the
listener's (group in the policy, default kretry-<topic>) unless --group is
given. The records are read with a plain consumer, from the group's
committed offset (from the log start where the group has committed nothing,
as a listener starts) up to the end offset listed when the command starts;
the group is never joined and nothing is committed.

For each group it prints a row per tier and a total:
  WAITING         records the group has not committed (end offset minus
                  committed offset)
  NOT-DUE         records whose kretry-due time is still ahead
  OVERDUE         records whose kretry-due time has passed
  CORRUPT         records whose kretry headers do not decode; the listener
                  dead-letters them without calling the handler
  UNREAD          records not read (--max-read, --stop-at-not-due); their
                  due times are unknown
  FOLLOWERS       of the NOT-DUE and OVERDUE records, those a key-ordered
                  listener queued behind an earlier record of their key
                  (kretry-follows header) without a handler call
  OLDEST-OVERDUE  how long the most overdue record has been due
  NEXT-DUE        when the first not-due record falls due

How to read it:
  NOT-DUE is normal: records wait in a tier for its delay, so a tier holds
  about its delay times the rate of failures into it. OVERDUE records are
  waiting for the listener: a few, overdue by less than a few seconds, are
  being handled; an OVERDUE count or an OLDEST-OVERDUE that grows from one
  run to the next means that the listener is down, stuck or too slow for
  the rate of retries. A listener delivers a partition in order and waits
  for its first record that is not due, so a record behind a not-due one
  (possible with jitter or a delay the handler asked for) can show as
  overdue until that one is due. Under key order a follower is handed to
  the handler only once the records of its key ahead of it have an
  outcome, so FOLLOWERS can show as overdue while those records wait in a
  tier; many followers mean that a few keys hold many records back.
  CORRUPT records go to the DLT when the listener reaches them.

Flags:
  --group G              measure consumer group G instead of each listener's
  --per-partition        also print a row per partition, with the group's
                         COMMITTED offset ("none" and the log start it counts
                         from when it has committed nothing) and the END offset
                         (--partitions is the setting flag of created topics)
  --json                 print JSON instead of tables
  --max-read N           read at most N records per partition; the rest count
                         as UNREAD (default 100000; 0 reads every record)
  --stop-at-not-due      stop reading a partition at its first record that is
                         not due and count the rest as UNREAD. A tier's records
                         are written in order of due time except for jitter
                         and delays a handler asked for, so the rest are very
                         likely not due either; faster when many records wait,
                         but NOT-DUE and OVERDUE become lower bounds
  --fail-overdue D       exit 1 when a record has been overdue for more than D
                         (a Go duration, such as 5m), for monitoring scripts

` + specSourceHelp + "\n" + clientFlagsHelp + `
Exit status: 0 measured (even with overdue records), 1 invalid policy or,
with --fail-overdue, a record overdue for more than D, 2 usage error (also a
--file that cannot be read), 3 the cluster cannot be reached or failed, or
the command was interrupted.
`

// lagListener is what tiers lag measured for one listener.
type lagListener struct {
	spec   config.Spec
	delays map[string]time.Duration // tier topic → delay
	tiers  []string
	report tierlag.Report
}

func tiersLag(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	const cmd = "tiers lag"
	fs := flag.NewFlagSet(cmd, flag.ContinueOnError)
	var src specSource
	src.register(fs)
	perPartition := fs.Bool("per-partition", false, "")
	asJSON := fs.Bool("json", false, "")
	maxRead := fs.Int64("max-read", defaultMaxRead, "")
	stopAtNotDue := fs.Bool("stop-at-not-due", false, "")
	failOverdue := fs.Duration("fail-overdue", 0, "")
	var conn clientFlags
	conn.register(fs)

	specs, cl, adm, code, ok := lagArgs(ctx, fs, &src, &conn, args, stdout, stderr, maxRead, failOverdue)
	if !ok {
		return code
	}
	defer cl.Close()
	readerOpts, _ := conn.opts() // checked by connect

	// One time for every group, so that their due times compare alike.
	now := time.Now()
	var measured []lagListener
	for _, s := range specs {
		p, err := planOf(s)
		if err != nil { // resolved specs have valid plans
			fmt.Fprintf(stderr, "kretry %s: listener %q: %v\n", cmd, s.Topic, err)
			return exitInvalid
		}
		l := lagListener{spec: s, delays: map[string]time.Duration{}}
		for _, t := range p.Tiers {
			l.tiers = append(l.tiers, t.Topic)
			l.delays[t.Topic] = t.Delay
		}
		l.report, err = tierlag.Measure(ctx, adm, s.Group, l.tiers, tierlag.Options{
			Now: now, ReaderOpts: readerOpts, MaxRead: *maxRead, StopAtNotDue: *stopAtNotDue,
		})
		if err != nil {
			if ctx.Err() != nil {
				err = ctx.Err()
			}
			fmt.Fprintf(stderr, "kretry %s: group %q: %v\n", cmd, s.Group, err)
			return exitFailed
		}
		measured = append(measured, l)
	}

	if *asJSON {
		b, err := json.MarshalIndent(lagJSONOf(measured, now), "", "  ")
		if err != nil {
			fmt.Fprintf(stderr, "kretry %s: %v\n", cmd, err)
			return exitFailed
		}
		stdout.Write(append(b, '\n'))
	} else {
		for i, l := range measured {
			if i > 0 {
				fmt.Fprintln(stdout)
			}
			printLag(stdout, l, *perPartition, *maxRead)
		}
	}

	if *failOverdue > 0 {
		var late []string
		for _, l := range measured {
			for _, t := range l.report.Topics {
				if age := t.Total().OldestOverdue(l.report.Now); age > *failOverdue {
					late = append(late, fmt.Sprintf("%s of group %s (oldest %s)", t.Topic, l.spec.Group, fmtAge(age)))
				}
			}
		}
		if len(late) > 0 {
			fmt.Fprintf(stderr, "kretry %s: records overdue for more than %v in %s\n", cmd, *failOverdue, strings.Join(late, ", "))
			return exitInvalid
		}
	}
	return exitOK
}

// lagArgs parses and checks the flags of tiers lag and connects.
func lagArgs(ctx context.Context, fs *flag.FlagSet, src *specSource, conn *clientFlags, args []string, stdout, stderr io.Writer,
	maxRead *int64, failOverdue *time.Duration) ([]config.Spec, *kgo.Client, *kadm.Client, int, bool) {
	pos, code, done := parse(fs, args, lagHelp, stdout, stderr)
	if done {
		return nil, nil, nil, code, false
	}
	var bad string
	switch {
	case len(pos) > 0:
		bad = fmt.Sprintf("unexpected argument %q", pos[0])
	case *maxRead < 0:
		bad = fmt.Sprintf("--max-read: must be >= 0, got %d", *maxRead)
	case *failOverdue < 0:
		bad = fmt.Sprintf("--fail-overdue: must not be negative, got %v", *failOverdue)
	}
	if bad != "" {
		return nil, nil, nil, usagef(stderr, fs.Name(), "%s", bad), false
	}
	specs, code, ok := src.specs(fs.Name(), stderr)
	if !ok {
		return nil, nil, nil, code, false
	}
	cl, adm, code, ok := connectCluster(ctx, fs.Name(), conn, stderr)
	if !ok {
		return nil, nil, nil, code, false
	}
	return specs, cl, adm, exitOK, true
}
