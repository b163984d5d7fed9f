package main

import (
	"cmp"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/kretry/kretry/internal/dltops"
)

// printInspect prints an inspect report as a table, and its samples when
// show is set.
func printInspect(w io.Writer, rep dltops.Report, show bool) {
	fmt.Fprintf(w, "%s: read %d records, %d matched", strings.Join(rep.DLTs, ", "), rep.Read, rep.Matched)
	if rep.Corrupt > 0 {
		fmt.Fprintf(w, ", %d with corrupt headers", rep.Corrupt)
	}
	fmt.Fprintln(w)
	if rep.Lost > 0 {
		fmt.Fprintf(w, "note: %d offsets were deleted (retention) before they were read; their records are not counted\n", rep.Lost)
	}
	if len(rep.Groups) == 0 {
		fmt.Fprintln(w, "no matching records")
	} else {
		fmt.Fprintln(w)
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "ERROR TYPE\tORIGINAL TOPIC\tGROUP\tAGE\tCOUNT\tFIRST SEEN\tLAST SEEN\tREASONS")
		for _, g := range rep.Groups {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%s\t%s\t%s\n", g.ErrorType, g.OriginalTopic, g.ConsumerGroup, g.Age, g.Count,
				stamp(g.FirstSeen), stamp(g.LastSeen), reasons(g.Reasons))
		}
		tw.Flush()
	}
	if !show {
		return
	}
	fmt.Fprintf(w, "\nrecords (the first %d of %d matched):\n", len(rep.Samples), rep.Matched)
	for _, s := range rep.Samples {
		key := strconv.Quote(s.Key)
		if s.KeyHex != "" {
			key = "hex:" + s.KeyHex
		}
		fmt.Fprintf(w, "  %s  %s  key %s  %s  reason %s  from %s", s.Source, stamp(s.Timestamp), key,
			s.ErrorType, s.Reason, s.OriginalTopic)
		if s.OriginalPartition != nil {
			fmt.Fprintf(w, "/%d/%d", *s.OriginalPartition, *s.OriginalOffset)
		}
		fmt.Fprintf(w, "  group %s", s.Group)
		switch {
		case s.NeverHandled:
			fmt.Fprint(w, "  never handled (a follower)")
		case s.Attempt > 0:
			fmt.Fprintf(w, "  attempts %d", s.Attempt)
		}
		fmt.Fprintln(w)
		if s.Error != "" {
			fmt.Fprintf(w, "      %s\n", oneLine(s.Error, 160))
		}
	}
}

func stamp(t time.Time) string { return t.UTC().Format(time.RFC3339) }

// reasons formats reason counts, most frequent first.
func reasons(m map[string]int64) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b string) int { return cmp.Or(cmp.Compare(m[b], m[a]), cmp.Compare(a, b)) })
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%s=%d", k, m[k])
	}
	return strings.Join(parts, " ")
}

// oneLine returns s on one line, cut to at most max runes.
func oneLine(s string, max int) string {
	s = strings.Join(strings.Fields(s), " ")
	if r := []rune(s); len(r) > max {
		return string(r[:max-1]) + "…"
	}
	return s
}

// printReplay prints the summary of a replay.
func printReplay(w io.Writer, res *dltops.Result) {
	t := res.Totals
	elapsed := res.Elapsed.Round(time.Millisecond)
	dry := res.Status == dltops.ResultDryRun
	switch {
	case res.Status == dltops.ResultAlreadyDone:
		fmt.Fprintf(w, "run %s already finished at %s; nothing to replay (use a new --run ID to replay again)\n",
			res.Run, stamp(res.Finished))
	case dry:
		fmt.Fprintf(w, "run %s: dry run in %v; nothing was sent\n", res.Run, elapsed)
	default:
		fmt.Fprintf(w, "run %s: %s in %v (attempt %d)\n", res.Run, res.Status, elapsed, res.Attempts)
	}
	row := func(label string, n int64, note string) {
		fmt.Fprintln(w, strings.TrimRight(fmt.Sprintf("  %-13s %8d  %s", label, n, note), " "))
	}
	row("read", t.Read, fmt.Sprintf("DLT records (this attempt %d)", res.AttemptRead))
	row("matched", t.Matched, "")
	if dry {
		row("would send", res.AttemptWouldSend, "(by this attempt; not those sent before)")
	} else {
		rate := ""
		if s := res.Elapsed.Seconds(); s > 0 && res.AttemptSent > 0 {
			rate = fmt.Sprintf(", %.0f records/s", float64(res.AttemptSent)/s)
		}
		row("sent", t.Sent, fmt.Sprintf("(this attempt %d%s)", res.AttemptSent, rate))
	}
	if t.AlreadySent > 0 || res.ResumeScanned > 0 {
		row("already sent", t.AlreadySent, "(by an interrupted attempt after its last checkpoint; not sent again)")
	}
	row("skipped", t.SkippedTotal(), "")
	for _, reason := range sortedKeys(t.Skipped) {
		fmt.Fprintf(w, "    %s: %d\n", reason, t.Skipped[reason])
	}
	for _, s := range t.SkippedRecords {
		fmt.Fprintf(w, "      %s", s.Source)
		if s.Group != "" {
			fmt.Fprintf(w, "  group %s", s.Group)
		}
		if s.Target != "" {
			fmt.Fprintf(w, "  to %s (%s)", s.Target, s.TargetFrom)
		}
		if s.Error != "" {
			fmt.Fprintf(w, "  %s", oneLine(s.Error, 120))
		}
		fmt.Fprintln(w)
	}
	if n := t.SkippedTotal() - int64(len(t.SkippedRecords)); n > 0 {
		fmt.Fprintf(w, "      … and %d more (list them with kretry dlt inspect --show-records)\n", n)
	}
	if t.Lost > 0 {
		row("lost", t.Lost, "DLT offsets deleted (retention, truncation) before they were read")
		listed := int64(0)
		for _, l := range t.LostRanges {
			fmt.Fprintf(w, "      %s/%d offsets %d to %d\n", l.Topic, l.Partition, l.From, l.To-1)
			listed += l.To - l.From
		}
		if n := t.Lost - listed; n > 0 {
			fmt.Fprintf(w, "      … and %d more offsets in further ranges\n", n)
		}
	}
	sentTo, verb := t.SentTo, "sent, including already sent"
	if dry {
		sentTo, verb = res.WouldSendTo, "would send, by this attempt"
	}
	if len(sentTo) > 0 {
		fmt.Fprintf(w, "  per target topic (%s), and who sees the records:\n", verb)
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		for _, topic := range sortedKeys(sentTo) {
			fmt.Fprintf(tw, "    %s\t%d\t%s\n", topic, sentTo[topic], audience(res, topic))
		}
		tw.Flush()
	}
	if res.Unsettled {
		fmt.Fprintln(w, "  note: the previous attempt did not end with every record acknowledged, and a dry run does not wait for them:")
		fmt.Fprintln(w, "        records of it that land later are counted in \"would send\" but will not be sent")
	}
	if res.Waited > 0 {
		fmt.Fprintf(w, "  waited %v for the records of the previous attempt to land or expire\n", res.Waited.Round(time.Second))
	}
	if res.StateFile != "" && res.Status != dltops.ResultAlreadyDone {
		fmt.Fprintf(w, "  state file %s (%d checkpoints)\n", res.StateFile, res.Checkpoints)
	}
}

// audience says which consumer groups see the records a replay sends to
// topic: the records' own groups only, for a retry tier; every group
// reading it otherwise, named when the replay could list them.
func audience(res *dltops.Result, topic string) string {
	if gs, ok := res.Totals.TierGroups[topic]; ok {
		if len(gs) == 1 {
			return "group " + gs[0] + " only (its first retry tier)"
		}
		return "groups " + strings.Join(gs, ", ") + ", each only its own records (their first retry tier)"
	}
	s := "every group reading " + topic
	readers, listed := res.Readers[topic]
	switch {
	case listed && len(readers) > 0:
		s += ": " + strings.Join(readers, ", ")
	case listed && res.ReadersError == "":
		s += " (no group has committed offsets on it yet)"
	}
	if res.ReadersError != "" {
		s += " (could not list them all: " + oneLine(res.ReadersError, 100) + ")"
	}
	return s
}

func sortedKeys(m map[string]int64) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
