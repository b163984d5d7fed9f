package dltops

import (
	"cmp"
	"errors"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// Errors of Replay. Each is wrapped with details; test with errors.Is.
var (
	// ErrInterrupted: ctx ended during the replay. What was sent has been
	// flushed (within ReplayConfig.FlushTimeout) and checkpointed when
	// every send was acknowledged; the same call resumes it.
	ErrInterrupted = errors.New("replay interrupted")
	// ErrSelectionChanged: a run's state file records a different
	// selection (DLTs, filters, --to) than the one given to resume it.
	ErrSelectionChanged = errors.New("the run was started with a different selection")
	// ErrLocked: another attempt of the same run holds its lock file.
	ErrLocked = errors.New("another attempt of this run is running")
	// ErrConfig: the ReplayConfig is invalid.
	ErrConfig = errors.New("invalid replay")
	// ErrUnverifiable: a resume cannot tell which DLT records the
	// interrupted attempt sent after its last checkpoint, because the
	// target records that would say so are gone (retention, a truncated
	// or recreated topic). The state file is left unchanged; only a new
	// run ID replays again.
	ErrUnverifiable = errors.New("cannot tell what the interrupted attempt sent")
)

// Result statuses.
const (
	ResultDone        = "done"         // every selected record has been handled: sent, skipped or lost
	ResultAlreadyDone = "already-done" // the run had finished before; nothing was sent
	ResultInterrupted = "interrupted"  // ctx ended; resume with the same command
	ResultFailed      = "failed"       // an error stopped the replay; see the error
	ResultDryRun      = "dry-run"      // nothing was sent or written
)

// Defaults of ReplayConfig.
const (
	DefaultCheckpointEvery    = 1000
	DefaultCheckpointInterval = 5 * time.Second
	DefaultFlushTimeout       = 30 * time.Second
	DefaultDeliveryTimeout    = 30 * time.Second
	// DefaultReplicationMargin is Kafka's default replica.lag.time.max.ms:
	// within it, a record appended to a leader beyond the high watermark is
	// either replicated (the high watermark passes it) or, its follower
	// dropped from the ISR or the leader replaced, truncated.
	DefaultReplicationMargin = 30 * time.Second
)

// defaultMaxInFlight bounds the records handed to the producer and not yet
// answered, so that a hand-over never blocks inside the producer (it waits
// in the replay, where ctx interrupts it).
const defaultMaxInFlight = 10000

// ReplayConfig says what Replay sends.
type ReplayConfig struct {
	// Run is the run ID: 1 to 100 letters, digits, '.', '_' or '-'. It
	// names the state file and goes into retry.HeaderReplayRun.
	Run string
	// DLTs are the topics to replay from; at least one.
	DLTs []string
	// Filter selects the records to replay.
	Filter Filter
	// To, when set, is the topic every record is sent to (by key),
	// whatever its group, instead of where FirstTiers and its original
	// topic send it.
	To string
	// FirstTiers routes the records that carry a consumer group
	// (retry.State.Group, the kretry-group header): the first retry tier
	// topic of each listener, by its main topic and group, from its plan
	// (retry.Policy.PlanFor), or "" when its plan has no retry tier
	// (attempts 1). A record of group G from main topic T is sent to
	// FirstTiers[{T, G}] as a retry record (TierRecord): only G's listener
	// handles it, as its second delivery, at once. With "" it goes to T.
	// A record whose {T, G} is not in FirstTiers is skipped
	// (SkipNoListener). A record without a group (Spring Kafka's, or
	// kretry's before the kretry-group header) goes to its original topic,
	// where every group that reads it sees it. In every case the record
	// keeps its original partition when the target has it (otherwise it
	// goes by key). Ignored with To.
	FirstTiers map[ListenerKey]string
	// DryRun reads and counts what would be sent without sending anything
	// or writing the state file. An existing state file is honoured:
	// records an interrupted attempt sent count as already sent. A dry run
	// does not wait for the records of an attempt that did not end cleanly
	// (Result.Unsettled).
	DryRun bool
	// Rate limits the sends to Rate records per second; 0 (the default)
	// is unlimited.
	Rate float64
	// StateDir is the directory of the state file and of its lock file,
	// kretry-replay-<run>.lock, which keeps two attempts of a run from
	// running at once where flock exists (Unix; elsewhere nothing enforces
	// it). Default "."; it must exist, except for a dry run.
	StateDir string
	// CheckpointEvery is how many DLT records are read between
	// checkpoints, and CheckpointInterval the longest time between them;
	// defaults DefaultCheckpointEvery and DefaultCheckpointInterval.
	CheckpointEvery    int
	CheckpointInterval time.Duration
	// FlushTimeout bounds the wait for the cluster to acknowledge the
	// records sent, at a checkpoint and at the end; default
	// DefaultFlushTimeout.
	FlushTimeout time.Duration
	// DeliveryTimeout is how long after its hand-over the producer may
	// still write a record (kgo.RecordDeliveryTimeout, also for records in
	// flight); a record not acknowledged by then fails and stops the
	// replay. Default DefaultDeliveryTimeout.
	DeliveryTimeout time.Duration
	// ReplicationMargin is how long a record appended beyond a target's
	// high watermark may stay there before it is replicated or truncated:
	// the cluster's replica.lag.time.max.ms. A resume after an attempt that
	// did not end cleanly waits for it; default DefaultReplicationMargin.
	ReplicationMargin time.Duration
	// IdleTimeout is how long a read may go without progress on a
	// partition before it fails naming it (ScanOptions.IdleTimeout);
	// default DefaultIdleTimeout.
	IdleTimeout time.Duration
	// ClientOpts are the connection options of the clients Replay makes
	// (seeds, TLS, SASL). They must not name a consumer group.
	ClientOpts []kgo.Opt
	// Decoder decodes the DLT records; the zero Decoder reads kretry
	// headers only.
	Decoder Decoder
	// Progress is told where the replay stands; nil reports nothing.
	Progress Progress
	// OnWait, when set, is called before a resume waits for the records
	// of an attempt that did not end cleanly to land or expire, with the
	// end of the wait and why. Default nil: nothing is said.
	OnWait func(until time.Time, why string)
	// Clock is the time source; nil is the system clock.
	Clock Clock

	hooks hooks
}

// hooks let tests stop a replay the way a crash would, and tune it.
type hooks struct {
	// crash is called after each record; true stops the replay at once:
	// the producer is flushed (the records land), no checkpoint is
	// written, and Replay returns errCrash.
	crash func(read, sends int64) bool
	// crashNoFlush is crash without the flush: the producer is closed
	// at once, so that the records it holds never land.
	crashNoFlush func(read, sends int64) bool
	// afterCheckpoint is called after each checkpoint written while
	// records are read, with the new target it added (or ""); true stops
	// the replay at once like crash.
	afterCheckpoint func(newTarget string) bool
	// prodOpts are added to the producer's options.
	prodOpts []kgo.Opt
	// maxInFlight replaces defaultMaxInFlight when > 0.
	maxInFlight int
}

var errCrash = errors.New("simulated crash")

var runID = regexp.MustCompile(`^[A-Za-z0-9._-]{1,100}$`)

// ValidRunID reports whether run can be a run ID, and why not.
func ValidRunID(run string) error {
	if !runID.MatchString(run) || run == "." || run == ".." {
		return fmt.Errorf("run ID %q: want 1 to 100 letters, digits, '.', '_' or '-'", run)
	}
	return nil
}

func compareKeys(a, b ListenerKey) int {
	return cmp.Or(cmp.Compare(a.Topic, b.Topic), cmp.Compare(a.Group, b.Group))
}

func (c *ReplayConfig) validate() error {
	var errs []error
	if err := ValidRunID(c.Run); err != nil {
		errs = append(errs, err)
	}
	if len(c.DLTs) == 0 {
		errs = append(errs, errors.New("want at least one DLT"))
	}
	if c.To != "" && slices.Contains(c.DLTs, c.To) {
		errs = append(errs, fmt.Errorf("--to %s is one of the DLTs being replayed", c.To))
	}
	if c.To == "" {
		for _, k := range slices.SortedFunc(maps.Keys(c.FirstTiers), compareKeys) {
			switch tier := c.FirstTiers[k]; {
			case k.Topic == "" || k.Group == "":
				errs = append(errs, fmt.Errorf("first tier of %s: the topic and the group must not be empty", k))
			case slices.Contains(c.DLTs, tier):
				errs = append(errs, fmt.Errorf("first tier of %s: %s is one of the DLTs being replayed", k, tier))
			}
		}
	}
	if c.Rate < 0 {
		errs = append(errs, fmt.Errorf("rate must be >= 0, got %v", c.Rate))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("%w: %w", ErrConfig, err)
	}
	if c.StateDir == "" {
		c.StateDir = "."
	}
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	if c.CheckpointEvery <= 0 {
		c.CheckpointEvery = DefaultCheckpointEvery
	}
	def(&c.CheckpointInterval, DefaultCheckpointInterval)
	def(&c.FlushTimeout, DefaultFlushTimeout)
	def(&c.DeliveryTimeout, DefaultDeliveryTimeout)
	def(&c.ReplicationMargin, DefaultReplicationMargin)
	def(&c.IdleTimeout, DefaultIdleTimeout)
	if c.Clock == nil {
		c.Clock = RealClock()
	}
	if c.Progress == nil {
		c.Progress = NoProgress{}
	}
	if c.OnWait == nil {
		c.OnWait = func(time.Time, string) {}
	}
	return nil
}
