package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
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
  overdue until that one is due. CORRUPT records go to the DLT when the
  listener reaches them.

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
with --fail-overdue, a record overdue for more than D, 2 usage error, 3 the
cluster failed or the command was interrupted.
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

	// --group is a setting flag (the listener's group); with --file it
	// overrides every listener's group.
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
		if g := src.values["group"]; g != "" {
			s.Group = g
		}
		p, err := s.Plan()
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
		fmt.Fprintf(stderr, "kretry %s: %s\n\n%s", fs.Name(), bad, lagHelp)
		return nil, nil, nil, exitUsage, false
	}
	specs, code, ok := src.specs(fs.Name(), lagHelp, stderr, "group")
	if !ok {
		return nil, nil, nil, code, false
	}
	cl, adm, code, ok := connectCluster(ctx, fs.Name(), lagHelp, conn, stderr)
	if !ok {
		return nil, nil, nil, code, false
	}
	return specs, cl, adm, exitOK, true
}

// fmtAge formats a duration for the tables: milliseconds under a minute,
// seconds above.
func fmtAge(d time.Duration) string {
	if d < time.Minute {
		return d.Round(time.Millisecond).String()
	}
	return d.Round(time.Second).String()
}

// countCells are the count columns of a row.
func countCells(c tierlag.Counts, now time.Time) string {
	oldest, next := "-", "-"
	if c.Overdue > 0 {
		oldest = fmtAge(c.OldestOverdue(now))
	}
	if !c.NextDue.IsZero() {
		next = "in " + fmtAge(c.NextDue.Sub(now))
	}
	return fmt.Sprintf("%d\t%d\t%d\t%d\t%d\t%s\t%s", c.Waiting, c.NotDue, c.Overdue, c.Corrupt, c.Unread, oldest, next)
}

// printLag prints the tables and notes of one listener.
func printLag(w io.Writer, l lagListener, partitions bool, maxRead int64) {
	rep := l.report
	fmt.Fprintf(w, "group %s (listener %s)\n", l.spec.Group, l.spec.Topic)
	if len(l.tiers) == 0 {
		fmt.Fprintln(w, "no retry tiers (attempts: 1)")
		return
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "TIER\tDELAY\tWAITING\tNOT-DUE\tOVERDUE\tCORRUPT\tUNREAD\tOLDEST-OVERDUE\tNEXT-DUE")
	var notes []string
	for _, t := range rep.Topics {
		if t.Err != nil {
			fmt.Fprintf(tw, "%s\t%v\t-\t-\t-\t-\t-\t-\t-\n", t.Topic, l.delays[t.Topic])
			notes = append(notes, topicNote(t))
			continue
		}
		fmt.Fprintf(tw, "%s\t%v\t%s\n", t.Topic, l.delays[t.Topic], countCells(t.Total(), rep.Now))
	}
	fmt.Fprintf(tw, "total\t\t%s\n", countCells(rep.Total(), rep.Now))
	tw.Flush()

	if partitions {
		fmt.Fprintln(w)
		tw = tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "TIER\tPARTITION\tCOMMITTED\tEND\tWAITING\tNOT-DUE\tOVERDUE\tCORRUPT\tUNREAD\tOLDEST-OVERDUE\tNEXT-DUE")
		for _, t := range rep.Topics {
			for _, p := range t.Partitions {
				committed := strconv.FormatInt(p.Committed, 10)
				if !p.HasCommit() {
					committed = fmt.Sprintf("none (%d)", p.Start)
				}
				fmt.Fprintf(tw, "%s\t%d\t%s\t%d\t%s\n", t.Topic, p.Partition, committed, p.End, countCells(p.Counts, rep.Now))
			}
		}
		tw.Flush()
	}

	var unread [tierlag.StopError + 1]int64
	anyCommit := false
	for _, t := range rep.Topics {
		var none []string
		for _, p := range t.Partitions {
			anyCommit = anyCommit || p.HasCommit()
			if p.Err != nil {
				notes = append(notes, fmt.Sprintf("%s partition %d: %v", t.Topic, p.Partition, p.Err))
			}
			if !p.HasCommit() && p.Err == nil && p.Waiting > 0 {
				none = append(none, strconv.Itoa(int(p.Partition)))
			}
			if p.Stopped >= 0 && int(p.Stopped) < len(unread) {
				unread[p.Stopped] += p.Unread
			}
		}
		if len(none) > 0 {
			noun := "partitions"
			if len(none) == 1 {
				noun = "partition"
			}
			notes = append(notes, fmt.Sprintf("group %s has committed nothing on %s %s %s; counted from the log start, where a listener starts",
				l.spec.Group, t.Topic, noun, strings.Join(none, ", ")))
		}
	}
	if !anyCommit {
		notes = append(notes, fmt.Sprintf("group %s has committed no offset on any tier: its listener has not run yet, or the group is not the listener's (see --group)", l.spec.Group))
	}
	why := map[tierlag.Stop]string{
		tierlag.StopMaxRead:  fmt.Sprintf("--max-read %d records were read from their partitions", maxRead),
		tierlag.StopNotDue:   "--stop-at-not-due: they follow a record that is not due, so they are probably not due either",
		tierlag.StopIdle:     "no record arrived for their offsets",
		tierlag.StopError:    "reading their partitions failed",
		tierlag.StopNoReader: "no reader",
	}
	for s := tierlag.StopNoReader; s <= tierlag.StopError; s++ {
		if n := unread[s]; n > 0 {
			notes = append(notes, fmt.Sprintf("%d %s unread: %s", n, lagPlural(n, "record", "records"), why[s]))
		}
	}
	for _, n := range notes {
		fmt.Fprintf(w, "note: %s\n", n)
	}
}

func topicNote(t tierlag.TopicLag) string {
	if errors.Is(t.Err, kerr.UnknownTopicOrPartition) {
		return fmt.Sprintf(`%s does not exist ("kretry topics create" creates it; a listener creates it at start-up)`, t.Topic)
	}
	return fmt.Sprintf("%s: %v", t.Topic, t.Err)
}

func lagPlural(n int64, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

// The --json output.
type lagJSON struct {
	Now       time.Time         `json:"now"`
	Listeners []lagListenerJSON `json:"listeners"`
}

type lagListenerJSON struct {
	Topic string        `json:"topic"`
	Group string        `json:"group"`
	Tiers []lagTierJSON `json:"tiers"`
	Total lagCountsJSON `json:"total"`
}

type lagCountsJSON struct {
	Waiting         int64     `json:"waiting"`
	NotDue          int64     `json:"notDue"`
	Overdue         int64     `json:"overdue"`
	Corrupt         int64     `json:"corrupt"`
	Unread          int64     `json:"unread"`
	OldestOverdueMs int64     `json:"oldestOverdueMs"`
	OverdueSince    time.Time `json:"overdueSince,omitzero"`
	NextDue         time.Time `json:"nextDue,omitzero"`
}

type lagTierJSON struct {
	Topic   string `json:"topic"`
	Delay   string `json:"delay"`
	DelayMs int64  `json:"delayMs"`
	Error   string `json:"error,omitempty"`
	lagCountsJSON
	Partitions []lagPartitionJSON `json:"partitions"`
}

type lagPartitionJSON struct {
	Partition int32  `json:"partition"`
	Committed *int64 `json:"committed"` // null: nothing committed
	Start     int64  `json:"start"`
	End       int64  `json:"end"`
	From      int64  `json:"from"`
	Stopped   string `json:"stopped,omitempty"`
	Error     string `json:"error,omitempty"`
	lagCountsJSON
}

func countsJSON(c tierlag.Counts, now time.Time) lagCountsJSON {
	return lagCountsJSON{Waiting: c.Waiting, NotDue: c.NotDue, Overdue: c.Overdue, Corrupt: c.Corrupt, Unread: c.Unread,
		OldestOverdueMs: c.OldestOverdue(now).Milliseconds(), OverdueSince: c.OverdueSince, NextDue: c.NextDue}
}

func lagJSONOf(ls []lagListener, now time.Time) lagJSON {
	out := lagJSON{Now: now, Listeners: []lagListenerJSON{}}
	for _, l := range ls {
		rep := l.report
		lj := lagListenerJSON{Topic: l.spec.Topic, Group: l.spec.Group, Tiers: []lagTierJSON{}, Total: countsJSON(rep.Total(), rep.Now)}
		for _, t := range rep.Topics {
			d := l.delays[t.Topic]
			tj := lagTierJSON{Topic: t.Topic, Delay: d.String(), DelayMs: d.Milliseconds(),
				lagCountsJSON: countsJSON(t.Total(), rep.Now), Partitions: []lagPartitionJSON{}}
			if t.Err != nil {
				tj.Error = t.Err.Error()
			}
			for _, p := range t.Partitions {
				pj := lagPartitionJSON{Partition: p.Partition, Start: p.Start, End: p.End, From: p.From,
					Stopped: p.Stopped.String(), lagCountsJSON: countsJSON(p.Counts, rep.Now)}
				if p.HasCommit() {
					pj.Committed = &p.Committed
				}
				if p.Err != nil {
					pj.Error = p.Err.Error()
				}
				tj.Partitions = append(tj.Partitions, pj)
			}
			lj.Tiers = append(lj.Tiers, tj)
		}
		out.Listeners = append(out.Listeners, lj)
	}
	return out
}
