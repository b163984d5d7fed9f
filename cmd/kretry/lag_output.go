package main

import (
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/kretry/kretry/internal/tierlag"
)

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
	return fmt.Sprintf("%d\t%d\t%d\t%d\t%d\t%d\t%s\t%s", c.Waiting, c.NotDue, c.Overdue, c.Corrupt, c.Unread, c.Followers, oldest, next)
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
	fmt.Fprintln(tw, "TIER\tDELAY\tWAITING\tNOT-DUE\tOVERDUE\tCORRUPT\tUNREAD\tFOLLOWERS\tOLDEST-OVERDUE\tNEXT-DUE")
	var notes []string
	for _, t := range rep.Topics {
		if t.Err != nil {
			fmt.Fprintf(tw, "%s\t%v\t-\t-\t-\t-\t-\t-\t-\t-\n", t.Topic, l.delays[t.Topic])
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
		fmt.Fprintln(tw, "TIER\tPARTITION\tCOMMITTED\tEND\tWAITING\tNOT-DUE\tOVERDUE\tCORRUPT\tUNREAD\tFOLLOWERS\tOLDEST-OVERDUE\tNEXT-DUE")
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
	if n := rep.Total().Lost; n > 0 {
		notes = append(notes, fmt.Sprintf("%d %s deleted (retention) while they were read: counted from the new log start, where a listener resumes; the listener will not see them either",
			n, lagPlural(n, "record", "records")))
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
	Followers       int64     `json:"followers"`
	Lost            int64     `json:"lost"`
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
		Followers: c.Followers, Lost: c.Lost,
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
