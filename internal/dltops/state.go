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

// stateVersion is the version of the state file format.
const stateVersion = 1

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
}

func selectionOf(dlts []string, to string, f *Filter) Selection {
	return Selection{DLTs: sortedSet(dlts), To: to, ErrorTypes: sortedSet(f.ErrorTypes),
		Reasons: sortedSet(f.Reasons), OriginalTopics: sortedSet(f.OriginalTopics),
		Since: f.Since.Expr, Until: f.Until.Expr, Key: f.keyText()}
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
	// Skipped counts the matched records that cannot be replayed, by
	// reason; SkippedRecords lists the first of them.
	Skipped        map[string]int64 `json:"skipped"`
	SkippedRecords []SkippedRecord  `json:"skippedRecords,omitempty"`
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
	Error  string `json:"error,omitempty"` // the decode error
}

// maxSkippedRecords bounds Totals.SkippedRecords.
const maxSkippedRecords = 100

// Skip reasons.
const (
	SkipNoTopic = "no original topic in the headers (use --to)"
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
	Totals    Totals   `json:"totals"`
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
	if st.Version != stateVersion {
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
}

// save writes st to path atomically: to a temporary file in the same
// directory, fsynced, renamed over path, and the directory fsynced, so that
// path holds either the old state or the new one, also after a power
// loss.
func (st *State) save(path string) error {
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
		err = os.Rename(tmp.Name(), path)
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
