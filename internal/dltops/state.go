package dltops

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// stateVersion is the version of the state file format. Version 2 added
// Last (the end of the latest attempt) and the lost offsets; a version 1
// file is read with Last unknown, which a resume treats as a crash at an
// unknown time (see resumeWait).
const stateVersion = 2

// Status values of a state file.
const (
	StatusRunning = "running"
	StatusDone    = "done"
)

// Selection is what a replay run sends: a resume must select exactly the
// same, or it is refused. Times are kept as the user wrote them.
type Selection struct {
	DLTs           []string `json:"dlts"`
	To             string   `json:"to,omitempty"`
	ErrorTypes     []string `json:"errorTypes,omitempty"`
	Reasons        []string `json:"reasons,omitempty"`
	OriginalTopics []string `json:"originalTopics,omitempty"`
	Since          string   `json:"since,omitempty"`
	Until          string   `json:"until,omitempty"`
	Key            string   `json:"key,omitempty"` // "hex:…" when a key is selected
	Groups         []string `json:"groups,omitempty"`
	// FirstTiers are the routes of ReplayConfig.FirstTiers, as
	// "TOPIC (group GROUP) -> TIER" ("-> TOPIC" when the plan has no
	// tier), sorted; none with --to.
	FirstTiers []string `json:"firstTiers,omitempty"`
}

func selectionOf(dlts []string, to string, f *Filter, tiers map[ListenerKey]string) Selection {
	sel := Selection{DLTs: sortedSet(dlts), To: to, ErrorTypes: sortedSet(f.ErrorTypes),
		Reasons: sortedSet(f.Reasons), OriginalTopics: sortedSet(f.OriginalTopics),
		Since: f.Since.Expr, Until: f.Until.Expr, Key: f.keyText(), Groups: sortedSet(f.Groups)}
	if to == "" {
		for k, tier := range tiers {
			if tier == "" {
				tier = k.Topic
			}
			sel.FirstTiers = append(sel.FirstTiers, k.String()+" -> "+tier)
		}
		slices.Sort(sel.FirstTiers)
	}
	return sel
}

func sortedSet(s []string) []string {
	if len(s) == 0 {
		return nil
	}
	s = slices.Clone(s)
	slices.Sort(s)
	return slices.Compact(s)
}

// Fingerprint is a digest of the selection, recorded in the state file.
func (s Selection) Fingerprint() string {
	b, _ := json.Marshal(s)
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:8])
}

// diff lists, as "--flag: was X, now Y", how o differs from s.
func (s Selection) diff(o Selection) []string {
	var out []string
	add := func(flag string, was, now []string) {
		if !slices.Equal(was, now) {
			out = append(out, fmt.Sprintf("%s: was %s, now %s", flag, list(was), list(now)))
		}
	}
	add("DLTs", s.DLTs, o.DLTs)
	add("--to", nonEmpty(s.To), nonEmpty(o.To))
	add("--error-type", s.ErrorTypes, o.ErrorTypes)
	add("--reason", s.Reasons, o.Reasons)
	add("--original-topic", s.OriginalTopics, o.OriginalTopics)
	add("--since", nonEmpty(s.Since), nonEmpty(o.Since))
	add("--until", nonEmpty(s.Until), nonEmpty(o.Until))
	add("--key", nonEmpty(s.Key), nonEmpty(o.Key))
	add("--group", s.Groups, o.Groups)
	add("the policy's first retry tiers (--file, --topic)", s.FirstTiers, o.FirstTiers)
	return out
}

func nonEmpty(s string) []string {
	if s == "" {
		return nil
	}
	return []string{s}
}

func list(s []string) string {
	if len(s) == 0 {
		return "(none)"
	}
	return strings.Join(s, ",")
}

// SourcePos is a DLT partition in the state: the run covers offsets
// [Start, End); Next is the next one to consider.
type SourcePos struct {
	Start int64 `json:"start"`
	Next  int64 `json:"next"`
	End   int64 `json:"end"`
}

// Totals count a run's records over all its attempts, as of a checkpoint.
type Totals struct {
	// Read counts the DLT records read, Matched those the filters
	// selected.
	Read    int64 `json:"read"`
	Matched int64 `json:"matched"`
	// Sent counts the records sent and acknowledged; AlreadySent those an
	// interrupted attempt had sent after its last checkpoint, found in
	// the target topics on resume and not sent again.
	Sent        int64 `json:"sent"`
	AlreadySent int64 `json:"alreadySent"`
	// SentTo counts Sent plus AlreadySent by target topic (with DryRun,
	// what would be sent).
	SentTo map[string]int64 `json:"sentTo"`
	// TierGroups lists, for each target that is a retry tier, the
	// consumer groups of the records sent there: each record is handled
	// by its own group only. A target not listed is a main topic (or
	// --to), where every group reading it sees the records.
	TierGroups map[string][]string `json:"tierGroups,omitempty"`
	// Skipped counts the matched records that cannot be replayed, by
	// reason; SkippedRecords lists the first of them.
	Skipped        map[string]int64 `json:"skipped"`
	SkippedRecords []SkippedRecord  `json:"skippedRecords,omitempty"`
	// Lost counts the DLT offsets in the run's range that were deleted
	// (retention, DeleteRecords, a truncated log) before the replay read
	// them: whether their records would have matched the filters is not
	// known. (A record an interrupted attempt sent after its last
	// checkpoint and that was deleted from the DLT before the resume read
	// it counts here, not in AlreadySent.) LostRanges lists them, the
	// first 100 ranges.
	Lost       int64       `json:"lost"`
	LostRanges []LostRange `json:"lostRanges,omitempty"`
}

// LostRange is the offsets [From, To) of a DLT partition that were deleted
// before the replay read them.
type LostRange struct {
	Topic     string `json:"topic"`
	Partition int32  `json:"partition"`
	From      int64  `json:"from"`
	To        int64  `json:"to"`
}

// maxLostRanges bounds Totals.LostRanges.
const maxLostRanges = 100

// addLost counts [from, to) of topic/partition as lost, merging it with
// the last range when they touch.
func (t *Totals) addLost(topic string, partition int32, from, to int64) {
	if to <= from {
		return
	}
	t.Lost += to - from
	if n := len(t.LostRanges); n > 0 {
		if l := &t.LostRanges[n-1]; l.Topic == topic && l.Partition == partition && l.To == from {
			l.To = to
			return
		}
	}
	if len(t.LostRanges) < maxLostRanges {
		t.LostRanges = append(t.LostRanges, LostRange{Topic: topic, Partition: partition, From: from, To: to})
	}
}

// SkippedTotal returns the sum of Skipped.
func (t *Totals) SkippedTotal() int64 {
	var n int64
	for _, c := range t.Skipped {
		n += c
	}
	return n
}

// SkippedRecord is one DLT record a replay could not send.
type SkippedRecord struct {
	Source string `json:"source"` // TOPIC/PARTITION/OFFSET
	Reason string `json:"reason"`
	// Target is the topic the record was to be sent to (its original
	// topic, its group's first retry tier, or --to), and TargetFrom where
	// that name came from: a header name such as kretry-original-topic,
	// "policy of group GROUP", or "--to". Empty when unknown.
	Target     string `json:"target,omitempty"`
	TargetFrom string `json:"targetFrom,omitempty"`
	// Group is the record's consumer group (retry.State.Group), if any.
	Group string `json:"group,omitempty"`
	// Error is the decode error, or the cluster's answer to the send.
	Error string `json:"error,omitempty"`
}

// maxSkippedRecords bounds Totals.SkippedRecords.
const maxSkippedRecords = 100

// Skip reasons. Each says what to do about it.
const (
	// SkipNoTopic: the record's headers name no original topic.
	SkipNoTopic = "no original topic in the headers (use --to)"
	// SkipNoSuchTopic: the record's original topic does not exist on the
	// cluster. Leave such records out with --original-topic (naming the
	// other topics), or send them elsewhere with --to, in a new run.
	SkipNoSuchTopic = "original topic does not exist (select other topics with --original-topic, or redirect with --to)"
	// SkipNoListener: the record carries a consumer group, and the policy
	// given (ReplayConfig.FirstTiers) has no listener of that group for
	// its original topic, so its retry tier is not known. Give that
	// group's policy, leave such records out with --group, or redirect
	// them with --to, in a new run.
	SkipNoListener = "the policy has no listener of its consumer group for its original topic (give that group's policy with --file, or --topic with --group; select other groups with --group; or redirect with --to)"
	// SkipNoSuchTier: the first retry tier of the record's group does not
	// exist on the cluster.
	SkipNoSuchTier = "its group's first retry tier does not exist (create it with kretry topics create, or redirect with --to)"
	// SkipRejected: the cluster refused the record itself, also when it
	// was sent alone (MESSAGE_TOO_LARGE, INVALID_RECORD, ...): sending it
	// again would fail again.
	SkipRejected = "rejected by the cluster, also when sent alone (fix the topic's limits, or redirect with --to)"
)

// State is the content of a replay's state file.
type State struct {
	Version     int       `json:"version"`
	Run         string    `json:"run"`
	Status      string    `json:"status"`
	Selection   Selection `json:"selection"`
	Fingerprint string    `json:"fingerprint"`
	// SinceAt and UntilAt are the times --since and --until resolved to on
	// the first attempt.
	SinceAt  time.Time `json:"sinceAt,omitzero"`
	UntilAt  time.Time `json:"untilAt,omitzero"`
	Started  time.Time `json:"started"`
	Updated  time.Time `json:"updated"`
	Attempts int       `json:"attempts"`
	// Sources are the DLT partitions of the run.
	Sources map[string]map[int32]SourcePos `json:"sources"`
	// Targets are, for each target topic-partition sent to, its end offset
	// at the last checkpoint.
	Targets map[string]map[int32]int64 `json:"targets"`
	// SentAhead are DLT records (TOPIC/PARTITION/OFFSET) at or after their
	// partition's Next that an earlier attempt has sent.
	SentAhead []string `json:"sentAhead,omitempty"`
	// Last is how the latest attempt stands or ended: what the next one
	// needs to know before it searches the target topics.
	Last   AttemptEnd `json:"last"`
	Totals Totals     `json:"totals"`
}

// AttemptEnd is what the state file records about the latest attempt, at
// each of its checkpoints and when it ends. A resume uses it to decide how
// long records that attempt handed to the producer may still take to land
// (see resumeWait and the package documentation).
type AttemptEnd struct {
	// HandOverBy bounds the attempt's hand-overs: it hands no record to
	// the producer at or after this time without first writing a
	// checkpoint that moves it on. Every checkpoint sets it to its own
	// time plus the lease (twice the checkpoint interval).
	HandOverBy time.Time `json:"handOverBy,omitzero"`
	// LastHandOver is the time of the attempt's last hand-over as of the
	// write (zero: none yet).
	LastHandOver time.Time `json:"lastHandOver,omitzero"`
	// DeliveryBound is the longest time after its hand-over at which a
	// record of the attempt can still be appended to a target log: its
	// record delivery timeout plus its produce request timeout.
	DeliveryBound time.Duration `json:"deliveryBoundNs"`
	// Ended reports that the attempt ended and wrote so; Clean that every
	// record it handed over had been acknowledged by then, so that none of
	// them can land later.
	Ended bool `json:"ended"`
	Clean bool `json:"clean"`
	// Unacked counts the records it handed over that were not
	// acknowledged when it ended.
	Unacked int64 `json:"unacked,omitempty"`
}

// StatePath returns the state file of run in dir.
func StatePath(dir, run string) string {
	if dir == "" {
		dir = "."
	}
	return filepath.Join(dir, "kretry-replay-"+run+".json")
}

// LoadState reads the state file at path; it returns nil and no error when
// there is none.
func LoadState(path string) (*State, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("state file: %w", err)
	}
	var st State
	if err := json.Unmarshal(b, &st); err != nil {
		return nil, fmt.Errorf("state file %s: %w", path, err)
	}
	if st.Version != stateVersion && st.Version != 1 {
		return nil, fmt.Errorf("state file %s: version %d, want %d", path, st.Version, stateVersion)
	}
	if st.Sources == nil || st.Status == "" {
		return nil, fmt.Errorf("state file %s: incomplete (no sources or status)", path)
	}
	if st.Targets == nil {
		st.Targets = map[string]map[int32]int64{}
	}
	st.Totals.init()
	return &st, nil
}

func (t *Totals) init() {
	if t.SentTo == nil {
		t.SentTo = map[string]int64{}
	}
	if t.Skipped == nil {
		t.Skipped = map[string]int64{}
	}
	if t.TierGroups == nil {
		t.TierGroups = map[string][]string{}
	}
}

// save writes st to path atomically: to a temporary file in the same
// directory, fsynced, renamed over path, and the directory fsynced, so that
// path holds either the old state or the new one, also after a power
// loss.
func (st *State) save(path string) error { return st.saveWith(path, os.Rename) }

// saveWith is save with rename in place of os.Rename, so that a test can
// stop it between writing the temporary file and renaming it.
func (st *State) saveWith(path string, rename func(oldpath, newpath string) error) error {
	st.Version = stateVersion
	b, err := json.MarshalIndent(st, "", "  ")
	if err != nil {
		return err
	}
	dir := filepath.Dir(path)
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return fmt.Errorf("state file: %w", err)
	}
	defer os.Remove(tmp.Name()) // a no-op once renamed
	_, err = tmp.Write(append(b, '\n'))
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = rename(tmp.Name(), path)
	}
	if err == nil {
		err = syncDir(dir)
	}
	if err != nil {
		return fmt.Errorf("writing state file %s: %w", path, err)
	}
	return nil
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	if err := d.Sync(); err != nil && !errors.Is(err, os.ErrInvalid) {
		return err
	}
	return nil
}
