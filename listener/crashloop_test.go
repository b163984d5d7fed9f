//go:build unix

package listener_test

// Crash-loop tests (issue 5, items 1 and 6). A consumer in a subprocess —
// this test binary run again as TestCrashLoopChild — handles a stream of
// records of which about a third fail for a while or for good, and is
// killed with SIGKILL at random moments and restarted, many times. The
// parent test hosts the cluster (kfake on TCP, the broker in
// KRETRY_BROKERS, or the three-node cluster of kafkatest.NewNodes, where
// it also kills a broker mid-run), produces the records in bursts, and
// delivers the verdict.
//
// The verdict comes from an independent ledger, never from kretry's own
// state: an append-only file with one line per handler and DLT handler
// call, each written by the child before the handler returns (so a kill
// cannot hide a call whose outcome kretry may have acted on), plus the
// main topic, the retry tiers and the DLT read back with a plain client.
// Each record's fate is a pure function of its key and of the attempt
// number in its headers, so the test knows the one right outcome of every
// record, and a redelivered record meets the same fate as the first time.
//
// The ledger's lines, tab-separated, fields in this order:
//
//	S inc pid at                                       the incarnation started
//	C inc key topic partition offset attempt due ok at a handler call (ok: ok|fail)
//	D inc key topic partition offset attempt reason at a DLT handler call
//	A inc topic partition at                           a partition was assigned
//	R inc topic partition at                           a partition was revoked or lost
//	F inc topic partition offset target at             a publish failed (kretry retries it)
//	W inc topic partition offset target at             key order: a follower's publish was acknowledged
//	X inc - -1 at                                      exactly once: a transaction was aborted
//	E inc at                                           the incarnation stopped cleanly
//
// inc is the incarnation (1, 2, …); key and reason are Go-quoted; due is
// Unix milliseconds (0 on the main topic) and at Unix nanoseconds. Each
// S line starts with a newline, so a line torn by a SIGKILL in the middle
// of a write stands alone and is counted as torn (at most one per kill).
// A C or D line is written before its call returns, so a torn one is a
// call that never returned.
//
// Sizes: by default (CI) TestCrashLoop runs 20,000 records and 30 kills;
// TestClusterCrashLoopBrokerKilled 10,000 records, 20 kills and one broker
// kill. KRETRY_SOAK=1 runs 100,000 records and 120 kills (cluster: 40,000
// and 60); give go test -timeout 30m. KRETRY_CRASH_SEED=<n> replays a kill
// schedule (the delays drawn; the moments they land on still vary).

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/kretry/kretry/dlt"
	"github.com/kretry/kretry/internal/kafkatest"
	"github.com/kretry/kretry/listener"
	"github.com/kretry/kretry/retry"
	"github.com/kretry/kretry/strategy"
)

// Environment of the crash-loop tests.
const (
	// crashChildEnv carries the child's crashChildConfig as JSON; the
	// child test skips without it.
	crashChildEnv = "KRETRY_CRASHLOOP_CHILD"
	// crashSoakEnv=1 selects the long sizes.
	crashSoakEnv = "KRETRY_SOAK"
	// crashSeedEnv replays the kill schedule of a logged seed.
	crashSeedEnv = "KRETRY_CRASH_SEED"
)

// The policy under test: 4 deliveries, tiers of 100, 200 and 400 ms.
const crashAttempts = 4

var crashBackoff = strategy.ExponentialBackoff(100*time.Millisecond, 2, 0)

// crashSize bounds one run.
type crashSize struct {
	records    int
	partitions int32
	kills      int           // SIGKILLs of the child; incarnations = kills+1
	killDelay  time.Duration // a kill lands uniformly within this after the incarnation's first call
	finish     time.Duration // bound on the last incarnation's wait for every outcome
	stall      time.Duration // the last incarnation gives up when the ledger stays still this long
}

func crashSizeFor(cluster bool) crashSize {
	soak := os.Getenv(crashSoakEnv) == "1"
	switch {
	case cluster && soak:
		return crashSize{records: 40000, partitions: 6, kills: 60, killDelay: 700 * time.Millisecond, finish: 5 * time.Minute, stall: time.Minute}
	case cluster:
		return crashSize{records: 10000, partitions: 6, kills: 20, killDelay: 700 * time.Millisecond, finish: 3 * time.Minute, stall: time.Minute}
	case soak:
		return crashSize{records: 100000, partitions: 4, kills: 120, killDelay: 700 * time.Millisecond, finish: 3 * time.Minute, stall: 20 * time.Second}
	}
	return crashSize{records: 20000, partitions: 4, kills: 30, killDelay: 700 * time.Millisecond, finish: 2 * time.Minute, stall: 20 * time.Second}
}

// crashFates spreads fates over key indexes, exactly per hundred keys
// (61 and 100 are coprime): 63% succeed at once; 10% fail once, 10% twice and
// 10% three times, then succeed; 5% fail permanently; 2% fail every
// attempt and are exhausted. A key's fate is the same whatever the
// incarnation.
var crashFates = fateMix{step: 61, failing: []int{10, 10, 10}, permanent: 5, exhausted: 2}

// crashOrderFates are the fates of key-order mode (TestCrashLoopKeyOrder),
// per record: 20% fail once, twice or three times, then succeed; 2% fail
// permanently and 1% every attempt, and their followers are released
// (config.FollowersRelease, the default).
var crashOrderFates = fateMix{step: 61, failing: []int{7, 7, 6}, permanent: 2, exhausted: 1}

// fate is the fate of the record crashKey(i).
func (cfg crashChildConfig) fate(i int) fate {
	if cfg.KeyOrder {
		return crashOrderFates.of(i, crashAttempts)
	}
	return crashFates.of(i, crashAttempts)
}

// crashOrderKey is, in key-order mode, the Kafka key of record i, named
// crashKey(i) in its value (koValuePrefix): 2,000 keys of ten records for
// the default 20,000 records. Each block of 4,000 records (about six
// bursts) shares 400 keys, and each key gets two consecutive records
// every 800, so a key's records follow one another on the main topic and
// also arrive while earlier ones wait in the tiers of a killed
// incarnation. The producer partitions by key: each key stays on one main
// partition.
func crashOrderKey(i int) string { return fmt.Sprintf("g%05d", (i/2)%400+400*(i/4000)) }

func crashKey(i int) string { return fmt.Sprintf("k%06d", i) }

// crashIndex returns the index of a key made by crashKey.
func crashIndex(key string) (int, bool) {
	if len(key) != 7 || key[0] != 'k' {
		return 0, false
	}
	i, err := strconv.Atoi(key[1:])
	return i, err == nil && i >= 0
}

// crashChildConfig is what the parent tells a child.
type crashChildConfig struct {
	Seeds       []string
	Topic       string
	Group       string
	InstanceID  string
	Ledger      string
	Incarnation int
	Cluster     bool // the three-node cluster: RF 3, min ISR 2
	Batch       bool // a batch handler (NewBatch) instead of a single-record one
	// ExactlyOnce runs the listener exactly once (ExactlyOnce, with a
	// transactional ID stable across incarnations), its handler producing
	// one record to Output per call.
	ExactlyOnce bool
	Output      string
	// KeyOrder runs the listener key-ordered (KeyOrder): the records
	// share keys (crashOrderKey) and are named by their values.
	KeyOrder bool
}

// crashListenerOpts are the listener's options, shared by the child (which
// adds its handlers, hooks and logger) and the parent (which only needs
// the plan).
func crashListenerOpts(cfg crashChildConfig) []listener.Opt {
	client := []kgo.Opt{
		// Static membership: a SIGKILLed member never leaves the group,
		// so a new dynamic member would wait for a rebalance that only
		// the dead member's session timeout (45 s by default) ends. With
		// the same instance ID the restarted child replaces the dead one
		// at once and gets its partitions back. kfake supports it
		// (KIP-345). A short SessionTimeout would be the alternative,
		// but it costs at least the broker's minimum per kill (Kafka's
		// group.min.session.timeout.ms, 6 s by default).
		kgo.InstanceID(cfg.InstanceID),
		// Frequent commits: redeliveries after a kill are what remains
		// since the last one.
		kgo.AutoCommitInterval(100 * time.Millisecond),
	}
	opts := []listener.Opt{
		listener.Group(cfg.Group),
		listener.Attempts(crashAttempts),
		listener.Backoff(crashBackoff),
		listener.FetchMaxWait(50 * time.Millisecond),
		listener.ShutdownTimeout(15 * time.Second),
	}
	if cfg.ExactlyOnce {
		opts = append(opts, listener.ExactlyOnce(crashTransactionalID(cfg)))
	}
	if cfg.KeyOrder {
		opts = append(opts, listener.KeyOrder())
	}
	if cfg.Batch {
		// Batches up to 50; a partition holding fewer waits up to 10 ms
		// for more, so the fill wait is killed in too.
		opts = append(opts, listener.BatchSize(50), listener.BatchWait(10*time.Millisecond))
	}
	if cfg.Cluster {
		opts = append(opts, listener.ReplicationFactor(3),
			listener.TopicConfigs(map[string]*string{"min.insync.replicas": new("2")}),
			// A revoke during a failover waits out the leader election.
			listener.RevokeTimeout(15*time.Second))
		// React to leader changes within a quarter second (default 5 s).
		client = append(client, kgo.MetadataMinAge(250*time.Millisecond))
	}
	return append(opts, listener.ClientOpts(client...))
}

// crashTransactionalID is the child's transactional ID: the same for every
// incarnation, so that each fences its killed predecessor and aborts the
// transaction it left open.
func crashTransactionalID(cfg crashChildConfig) string { return cfg.Group + "-" + cfg.InstanceID }

// TestCrashLoopChild is the consumer the crash-loop tests start, kill and
// restart. It skips unless started by one of them.
func TestCrashLoopChild(t *testing.T) {
	raw := os.Getenv(crashChildEnv)
	if raw == "" {
		t.Skip("the crash-loop consumer: started by TestCrashLoop and TestClusterCrashLoopBrokerKilled")
	}
	var cfg crashChildConfig
	if err := json.Unmarshal([]byte(raw), &cfg); err != nil {
		t.Fatalf("%s: %v", crashChildEnv, err)
	}
	w, err := openCrashLedger(cfg.Ledger, cfg.Incarnation)
	if err != nil {
		t.Fatal(err)
	}
	w.output, w.fate = cfg.Output, cfg.fate
	// Stdin is a pipe from the parent: EOF means the parent is gone, and
	// an orphaned consumer must not run on.
	go func() {
		_, _ = io.Copy(io.Discard, os.Stdin)
		fmt.Fprintln(os.Stderr, "crash-loop child: parent gone; exiting")
		os.Exit(3)
	}()
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo})).
		With("incarnation", cfg.Incarnation)
	dltLog := dlt.LogHandler(log)
	opts := append(crashListenerOpts(cfg),
		listener.Logger(log),
		listener.Hooks(w),
		listener.DLTHandler(dlt.HandlerFunc(func(ctx context.Context, rec *kgo.Record, st retry.State) error {
			w.line("D\t%d\t%q\t%s\t%d\t%d\t%d\t%q\t%d\n", w.inc, recordID(rec), rec.Topic, rec.Partition, rec.Offset,
				st.Attempt, st.Reason, time.Now().UnixNano())
			return dltLog.HandleDLT(ctx, rec, st)
		})))
	var l *listener.Listener
	if cfg.Batch {
		l, err = listener.NewBatch(cfg.Seeds, cfg.Topic, listener.BatchHandlerFunc(w.HandleBatch), opts...)
	} else {
		l, err = listener.New(cfg.Seeds, cfg.Topic, w, opts...)
	}
	if err != nil {
		t.Fatal(err)
	}
	if err := l.Run(ctx); err != nil {
		t.Fatalf("Run: %v", err)
	}
	w.line("E\t%d\t%d\n", w.inc, time.Now().UnixNano())
	if err := w.f.Close(); err != nil {
		t.Fatal(err)
	}
}

// crashLedgerWriter is the child's side of the ledger: the handler and
// the hook of the listener under test.
type crashLedgerWriter struct {
	inc    int
	output string // exactly once: the topic each call produces a record to
	fate   func(i int) fate
	mu     sync.Mutex
	f      *os.File
	buf    []byte
}

func openCrashLedger(path string, inc int) (*crashLedgerWriter, error) {
	// O_APPEND: every write lands at the end of the file, whatever the
	// other incarnations wrote. No fsync: what a process has written
	// survives its SIGKILL; only a machine crash would lose it.
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		return nil, err
	}
	w := &crashLedgerWriter{inc: inc, f: f}
	w.line("\nS\t%d\t%d\t%d\n", inc, os.Getpid(), time.Now().UnixNano())
	return w, nil
}

// line appends one line with a single write. A failed write ends the
// process: a call the ledger cannot record must not return.
func (w *crashLedgerWriter) line(format string, args ...any) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf = fmt.Appendf(w.buf[:0], format, args...)
	if _, err := w.f.Write(w.buf); err != nil {
		fmt.Fprintf(os.Stderr, "crash-loop child: ledger write failed: %v\n", err)
		os.Exit(4)
	}
}

// Handle is the handler under test: it records the call, then returns the
// key's fate for this attempt.
func (w *crashLedgerWriter) Handle(ctx context.Context, rec *kgo.Record) error {
	at := time.Now()
	attempt, dueMs := int32(1), int64(0)
	if st, ok := retry.FromContext(ctx); ok { // absent on the main topic
		attempt, dueMs = st.Attempt, st.Due.UnixMilli()
	}
	err := w.call(rec, attempt, dueMs, at)
	if w.output != "" {
		// Every call produces its output, failing ones too: exactly once,
		// only a successful call's may ever be seen.
		outcome := "ok"
		if err != nil {
			outcome = "fail"
		}
		if perr := listener.Produce(ctx, &kgo.Record{Topic: w.output, Key: rec.Key,
			Value: fmt.Appendf(nil, "%d\t%s\t%d", attempt, outcome, w.inc)}); perr != nil {
			return fmt.Errorf("crash-loop child: Produce: %w", perr)
		}
	}
	return err
}

// HandleBatch is the batch handler under test: it records a call of each
// record, and fails those whose key's fate for their attempt is a failure
// through a BatchErrors.
func (w *crashLedgerWriter) HandleBatch(_ context.Context, recs []*kgo.Record) error {
	at := time.Now()
	var errs listener.BatchErrors
	for _, rec := range recs {
		attempt, dueMs := int32(1), int64(0)
		st, ok, err := retry.Decode(rec.Headers)
		if err != nil {
			return fmt.Errorf("crash-loop child: %s[%d]@%d handed with corrupt headers: %w", rec.Topic, rec.Partition, rec.Offset, err)
		}
		if ok { // absent on the main topic
			attempt, dueMs = st.Attempt, st.Due.UnixMilli()
		}
		errs.Add(rec, w.call(rec, attempt, dueMs, at))
	}
	return errs.Err()
}

// call records a call of rec on attempt, due at dueMs (0 on the main
// topic), made at at, and returns its key's fate.
func (w *crashLedgerWriter) call(rec *kgo.Record, attempt int32, dueMs int64, at time.Time) error {
	var err error
	id := recordID(rec)
	if i, ok := crashIndex(id); ok {
		err = w.fate(i).err(id, attempt)
	} // an unknown key succeeds; the parent reports it
	outcome := "ok"
	if err != nil {
		outcome = "fail"
	}
	w.line("C\t%d\t%q\t%s\t%d\t%d\t%d\t%d\t%s\t%d\n", w.inc, id, rec.Topic, rec.Partition, rec.Offset,
		attempt, dueMs, outcome, at.UnixNano())
	return err
}

// OnEvent records what can explain a duplicate: revoked or lost
// partitions and failed publishes; and assignments, to time restarts.
func (w *crashLedgerWriter) OnEvent(e listener.Event) {
	now := time.Now().UnixNano()
	switch e.Kind {
	case listener.EventAssigned:
		w.line("A\t%d\t%s\t%d\t%d\n", w.inc, e.Topic, e.Partition, now)
	case listener.EventRevoked:
		w.line("R\t%d\t%s\t%d\t%d\n", w.inc, e.Topic, e.Partition, now)
	case listener.EventForwardFailed:
		w.line("F\t%d\t%s\t%d\t%d\t%s\t%d\n", w.inc, e.Topic, e.Partition, e.Offset, e.Target, now)
	case listener.EventFollowed:
		w.line("W\t%d\t%s\t%d\t%d\t%s\t%d\n", w.inc, e.Topic, e.Partition, e.Offset, e.Target, now)
	case listener.EventSkipped:
		if e.Reason == listener.ReasonStaleCopy {
			w.line("K\t%d\t%s\t%d\t%d\t-\t%d\n", w.inc, e.Topic, e.Partition, e.Offset, now)
		}
	case listener.EventTransactionAborted:
		w.line("X\t%d\t-\t-1\t%d\n", w.inc, now)
	}
}

// crashCall is one handler (C) or DLT handler (D) call from the ledger.
type crashCall struct {
	seq     int // position in the ledger, which is time order
	inc     int
	key     string
	ref     recordRef
	attempt int32
	due     time.Time // zero on the main topic and for DLT calls
	ok      bool      // C: the handler returned nil
	reason  string    // D: the record's kretry-reason
	at      time.Time
}

// crashEvent is an A, R, F, W or X line.
type crashEvent struct {
	seq    int
	kind   byte
	inc    int
	ref    recordRef // A and R: offset -1
	target string    // F, W
	at     time.Time
}

// crashLedger is the parent's reading of the ledger file. It is read
// incrementally while the children run; only the test goroutine uses it.
type crashLedger struct {
	path string
	off  int64  // bytes read so far
	tail []byte // an incomplete last line, kept for the next read
	seq  int

	calls    []crashCall
	dltCalls []crashCall
	events   []crashEvent
	starts   map[int]time.Time // S lines
	ends     map[int]bool      // E lines
	torn     []string

	// For the parent's waits.
	terminal   map[string]bool // keys handled, or handed to the DLT handler
	lastFailed map[string]bool // keys whose latest call failed: waiting for a retry
	byInc      map[int]int     // calls per incarnation
	firstCall  map[int]time.Time
}

func newCrashLedger(path string) *crashLedger {
	return &crashLedger{path: path, starts: map[int]time.Time{}, ends: map[int]bool{}, terminal: map[string]bool{},
		lastFailed: map[string]bool{}, byInc: map[int]int{}, firstCall: map[int]time.Time{}}
}

// refresh reads what the children appended since the last call.
func (lg *crashLedger) refresh() error {
	f, err := os.Open(lg.path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	defer f.Close()
	if _, err := f.Seek(lg.off, io.SeekStart); err != nil {
		return err
	}
	b, err := io.ReadAll(f)
	if err != nil {
		return err
	}
	lg.off += int64(len(b))
	b = append(lg.tail, b...)
	end := bytes.LastIndexByte(b, '\n')
	if end < 0 {
		lg.tail = b
		return nil
	}
	for _, line := range strings.Split(string(b[:end]), "\n") {
		if line != "" {
			lg.parse(line)
		}
	}
	lg.tail = append([]byte(nil), b[end+1:]...)
	return nil
}

// crashFields is the number of fields of each kind of ledger line.
var crashFields = map[string]int{"S": 4, "C": 10, "D": 9, "A": 5, "R": 5, "F": 7, "W": 7, "K": 7, "E": 3, "X": 5}

// parse takes one line; a line that does not parse is torn.
func (lg *crashLedger) parse(line string) {
	fs := strings.Split(line, "\t")
	if want := crashFields[fs[0]]; want == 0 || len(fs) != want {
		lg.torn = append(lg.torn, line)
		return
	}
	bad := false
	num := func(i int) int64 {
		n, err := strconv.ParseInt(fs[i], 10, 64)
		bad = bad || err != nil
		return n
	}
	text := func(i int) string {
		s, err := strconv.Unquote(fs[i])
		bad = bad || err != nil
		return s
	}
	nanos := func(i int) time.Time { return time.Unix(0, num(i)) }

	// Decode every field first; take the line only if all of them parse.
	seq, inc := lg.seq+1, int(num(1))
	var take func()
	switch fs[0] {
	case "S":
		at := nanos(3)
		take = func() { lg.starts[inc] = at }
	case "E":
		nanos(2)
		take = func() { lg.ends[inc] = true }
	case "C", "D":
		c := crashCall{seq: seq, inc: inc, key: text(2), ref: recordRef{fs[3], int32(num(4)), num(5)}, attempt: int32(num(6))}
		if fs[0] == "C" {
			if ms := num(7); ms != 0 {
				c.due = time.UnixMilli(ms)
			}
			c.ok, bad = fs[8] == "ok", bad || (fs[8] != "ok" && fs[8] != "fail")
			c.at = nanos(9)
		} else {
			c.reason, c.at = text(7), nanos(8)
		}
		take = func() { lg.takeCall(fs[0] == "D", c) }
	default: // A, R, F, W, K, X
		e := crashEvent{seq: seq, kind: fs[0][0], inc: inc, ref: recordRef{fs[2], int32(num(3)), -1}}
		if fs[0] == "F" || fs[0] == "W" || fs[0] == "K" {
			e.ref.offset, e.target, e.at = num(4), fs[5], nanos(6)
		} else {
			e.at = nanos(4)
		}
		take = func() { lg.events = append(lg.events, e) }
	}
	if bad {
		lg.torn = append(lg.torn, line)
		return
	}
	lg.seq = seq
	take()
}

// takeCall records a handler call, or a DLT handler call if dltCall.
func (lg *crashLedger) takeCall(dltCall bool, c crashCall) {
	if dltCall {
		lg.dltCalls = append(lg.dltCalls, c)
	} else {
		lg.calls = append(lg.calls, c)
	}
	lg.byInc[c.inc]++
	if _, ok := lg.firstCall[c.inc]; !ok {
		lg.firstCall[c.inc] = c.at
	}
	if dltCall || c.ok {
		lg.terminal[c.key] = true
	}
	lg.lastFailed[c.key] = !dltCall && !c.ok
}

// crashChild is one incarnation of the consumer.
type crashChild struct {
	inc     int
	cmd     *exec.Cmd
	stdin   io.WriteCloser // never written; the child exits when it closes
	logPath string
	started time.Time
	done    chan struct{} // closed when the process has exited
	err     error         // its exit status, once done
}

func (c *crashChild) exited() bool {
	select {
	case <-c.done:
		return true
	default:
		return false
	}
}

// crashRun is one crash-loop test.
type crashRun struct {
	t     *testing.T
	c     *kafkatest.Cluster
	nodes *kafkatest.Nodes // the three-node cluster, or nil
	size  crashSize
	cfg   crashChildConfig
	plan  strategy.Plan
	dir   string
	keys  []string
	lg    *crashLedger
	rng   *rand.Rand
	seed  uint64

	produced int
	children []*crashChild
	live     *crashChild
	kills    []crashKill
	start    time.Time
	doneAt   time.Time

	// the broker fault (three-node cluster only)
	brokerKillAt, brokerRestartAt int // incarnations during which they happen
	victim                        int32
	victimRole                    string // what the killed node was: the leader of a tier partition, or the transaction coordinator
	brokerDown                    time.Time
	restarted                     chan error
	brokerNote                    string
}

// crashKill is the state of the pipeline when a child was killed.
type crashKill struct {
	inc         int
	at          time.Time     // the killed process had exited
	after       time.Duration // from the incarnation's start
	calls       int           // handler and DLT handler calls of the incarnation
	outstanding int           // produced keys without a terminal outcome
	retrying    int           // of which the latest call failed: in a tier or being forwarded
	// the group's committed offsets of the plan's topics, read after the
	// kill and before the next incarnation starts; nil if they could not
	// be read (the cluster variant, while a broker is down)
	committed map[topicPartition]int64
}

func newCrashRun(t *testing.T, c *kafkatest.Cluster, nodes *kafkatest.Nodes, size crashSize) *crashRun {
	t.Helper()
	seed := uint64(time.Now().UnixNano())
	if s := os.Getenv(crashSeedEnv); s != "" {
		n, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			t.Fatalf("%s=%q: %v", crashSeedEnv, s, err)
		}
		seed = n
	}
	// Not t.TempDir: a failed run keeps its ledger and the children's
	// logs for a post-mortem.
	dir, err := os.MkdirTemp("", "kretry-crashloop-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("the ledger and the children's logs are kept in %s", dir)
			return
		}
		_ = os.RemoveAll(dir)
	})
	r := &crashRun{t: t, c: c, nodes: nodes, size: size, dir: dir, seed: seed,
		rng: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)),
		cfg: crashChildConfig{Seeds: c.Seeds, Topic: c.Name("orders"), Group: c.Name("group"),
			InstanceID: c.Name("member"), Ledger: filepath.Join(dir, "ledger"), Cluster: nodes != nil},
		brokerKillAt: -1, brokerRestartAt: -1}
	r.lg = newCrashLedger(r.cfg.Ledger)
	l, err := listener.New(c.Seeds, r.cfg.Topic, listener.HandlerFunc(func(context.Context, *kgo.Record) error { return nil }),
		crashListenerOpts(r.cfg)...)
	if err != nil {
		t.Fatal(err)
	}
	r.plan = l.Plan()
	for i := range size.records {
		r.keys = append(r.keys, crashKey(i))
	}
	t.Logf("crash loop: %d records on %d partitions, %d kills; seed %d (%s=%d replays the kill schedule); ledger and the children's logs in %s",
		size.records, size.partitions, size.kills, seed, crashSeedEnv, seed, dir)
	t.Cleanup(func() {
		if r.live != nil && !r.live.exited() {
			_ = r.live.cmd.Process.Kill()
			<-r.live.done
		}
	})
	return r
}

// produceBurst produces the records of incarnation inc's burst: the
// records are spread evenly over the incarnations, so every kill finds
// fresh records on the main topic as well as retries.
func (r *crashRun) produceBurst(inc int) {
	n := (len(r.keys) + r.size.kills) / (r.size.kills + 1)
	end := min(len(r.keys), r.produced+n)
	if inc == r.size.kills+1 {
		end = len(r.keys)
	}
	var recs []*kgo.Record
	for i := r.produced; i < end; i++ {
		rc := rec(r.cfg.Topic, r.keys[i])
		if r.cfg.KeyOrder {
			rc.Key, rc.Value = []byte(crashOrderKey(i)), []byte(koValuePrefix+r.keys[i])
		}
		recs = append(recs, rc)
	}
	if len(recs) > 0 {
		r.c.Produce(recs...)
	}
	r.produced = end
}

// startChild starts incarnation inc.
func (r *crashRun) startChild(inc int) *crashChild {
	t := r.t
	t.Helper()
	cfg := r.cfg
	cfg.Incarnation = inc
	env, err := json.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	c := &crashChild{inc: inc, logPath: filepath.Join(r.dir, fmt.Sprintf("child-%03d.log", inc)), done: make(chan struct{})}
	logf, err := os.Create(c.logPath)
	if err != nil {
		t.Fatal(err)
	}
	c.cmd = exec.Command(os.Args[0], "-test.run=^TestCrashLoopChild$", "-test.count=1", "-test.timeout=10m")
	c.cmd.Env = append(os.Environ(), crashChildEnv+"="+string(env))
	c.cmd.Stdout, c.cmd.Stderr = logf, logf
	if c.stdin, err = c.cmd.StdinPipe(); err != nil {
		t.Fatal(err)
	}
	c.started = time.Now()
	if err := c.cmd.Start(); err != nil {
		t.Fatalf("starting incarnation %d: %v", inc, err)
	}
	go func() {
		c.err = c.cmd.Wait()
		logf.Close()
		close(c.done)
	}()
	r.children = append(r.children, c)
	r.live = c
	return c
}

// childLog returns the end of a child's output, for failure messages.
func (r *crashRun) childLog(c *crashChild) string {
	b, err := os.ReadFile(c.logPath)
	if err != nil {
		return err.Error()
	}
	return fmt.Sprintf("incarnation %d (%s) ended with %v; its output ends:\n%s", c.inc, c.logPath, c.err, crashTail(string(b), 30))
}

// crashTail returns the last lines of s.
func crashTail(s string, lines int) string {
	ls := strings.Split(strings.TrimRight(s, "\n"), "\n")
	return strings.Join(ls[max(0, len(ls)-lines):], "\n")
}

// await polls the ledger every 20 ms until cond holds. It fails the test
// if the child exits first; what describes the wait and its state then. It
// returns false if within runs out, or if stall is set and the ledger got
// no new line for that long.
func (r *crashRun) await(c *crashChild, within, stall time.Duration, what func() string, cond func() bool) bool {
	t := r.t
	t.Helper()
	deadline := time.Now().Add(within)
	lines, moved := -1, time.Now()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		if err := r.lg.refresh(); err != nil {
			t.Fatalf("reading the ledger: %v", err)
		}
		if cond() {
			return true
		}
		if c.exited() {
			t.Fatalf("waiting for %s: the child exited: %s", what(), r.childLog(c))
		}
		if n := r.lg.seq + len(r.lg.torn); n != lines {
			lines, moved = n, time.Now()
		}
		if time.Now().After(deadline) {
			return false
		}
		if stall > 0 && time.Since(moved) > stall {
			t.Logf("the ledger got no new line for %v while waiting for %s", stall, what())
			return false
		}
		select {
		case <-tick.C:
		case <-c.done:
		}
	}
}

// kill SIGKILLs c at a random moment after it began handling records.
func (r *crashRun) kill(c *crashChild) {
	t := r.t
	t.Helper()
	first := func() string { return "the incarnation's first handler call" }
	if !r.await(c, 30*time.Second, 0, first, func() bool { return r.lg.byInc[c.inc] > 0 }) {
		t.Logf("incarnation %d handled nothing within 30s; killing it anyway", c.inc)
	}
	if c.inc == r.brokerKillAt {
		r.killBroker()
	}
	if c.inc == r.brokerRestartAt {
		r.restartBroker()
	}
	// The kill schedule: a chosen moment, not a wait for work. The child
	// is watched meanwhile; it must not exit by itself.
	delay := time.Duration(r.rng.Int64N(int64(r.size.killDelay)))
	timer := time.NewTimer(delay)
	select {
	case <-timer.C:
	case <-c.done:
		t.Fatalf("incarnation %d exited by itself: %s", c.inc, r.childLog(c))
	}
	if err := c.cmd.Process.Kill(); err != nil {
		t.Fatalf("killing incarnation %d: %v", c.inc, err)
	}
	select {
	case <-c.done:
	case <-time.After(30 * time.Second):
		t.Fatalf("incarnation %d still running 30s after SIGKILL", c.inc)
	}
	if err := r.lg.refresh(); err != nil {
		t.Fatalf("reading the ledger: %v", err)
	}
	k := crashKill{inc: c.inc, at: time.Now(), after: time.Since(c.started), calls: r.lg.byInc[c.inc]}
	k.committed = r.committed()
	for _, key := range r.keys[:r.produced] {
		if !r.lg.terminal[key] {
			k.outstanding++
			if r.lg.lastFailed[key] {
				k.retrying++
			}
		}
	}
	r.kills = append(r.kills, k)
}

// killBroker SIGKILLs the leader of the first tier's partition 0 while
// the child works.
func (r *crashRun) killBroker() {
	t := r.t
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	tier := r.plan.Tiers[0].Topic
	victim, err := r.nodes.Leader(ctx, tier, 0)
	what := fmt.Sprintf("leader of %s[0]", tier)
	if r.cfg.ExactlyOnce {
		// Exactly once, the broker that matters most is the
		// transaction coordinator of the listener's transactional ID.
		id := crashTransactionalID(r.cfg)
		victim, err = -1, nil
		for _, resp := range r.nodes.Admin.FindTxnCoordinators(ctx, id) {
			victim, err = resp.NodeID, resp.Err
		}
		what = fmt.Sprintf("transaction coordinator of %q", id)
	}
	if err != nil || victim < 1 {
		t.Fatalf("%s: %d, %v", what, victim, err)
	}
	r.victim, r.victimRole, r.brokerDown = victim, what, time.Now()
	r.nodes.Kill(victim)
	t.Logf("killed node %d, %s, during incarnation %d (%d keys outstanding)",
		victim, what, r.brokerKillAt, r.produced-len(r.lg.terminal))
}

// restartBroker starts the killed node again in the background;
// awaitBroker waits for it.
func (r *crashRun) restartBroker() {
	r.restarted = make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
		defer cancel()
		r.restarted <- r.nodes.RestartNode(ctx, r.victim)
	}()
}

func (r *crashRun) awaitBroker() {
	if r.restarted == nil {
		return
	}
	select {
	case err := <-r.restarted:
		if err != nil {
			r.t.Fatalf("restarting node %d: %v", r.victim, err)
		}
	case <-time.After(4 * time.Minute):
		r.t.Fatalf("node %d not back within 4 minutes", r.victim)
	}
	r.brokerNote = fmt.Sprintf("node %d (%s) SIGKILLed during incarnation %d, restarted during incarnation %d, back in full ISR %v after its kill; ",
		r.victim, r.victimRole, r.brokerKillAt, r.brokerRestartAt, time.Since(r.brokerDown).Round(100*time.Millisecond))
	r.restarted = nil
}

// committed reads the group's committed offsets of the plan's topics, or
// returns nil if they cannot be read within 10 s.
func (r *crashRun) committed() map[topicPartition]int64 {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	resp, err := r.c.Admin.FetchOffsets(ctx, r.cfg.Group)
	if err == nil {
		err = resp.Error()
	}
	if err != nil {
		r.t.Logf("committed offsets after a kill: %v; this kill's commit check is skipped", err)
		return nil
	}
	out := map[topicPartition]int64{}
	topics := r.plan.Topics()
	resp.Each(func(o kadm.OffsetResponse) {
		if slices.Contains(topics, o.Topic) && o.At > 0 {
			out[topicPartition{o.Topic, o.Partition}] = o.At
		}
	})
	return out
}

// lag describes the partitions of the plan's topics that the group has
// not committed to their end; "" when there are none.
func (r *crashRun) lag() (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ends, err := r.c.Admin.ListEndOffsets(ctx, r.plan.Topics()...)
	if err == nil {
		err = ends.Error()
	}
	if err != nil {
		return "", err
	}
	committed, err := r.c.Admin.FetchOffsets(ctx, r.cfg.Group)
	if err != nil {
		return "", err
	}
	var behind []string
	ends.Each(func(o kadm.ListedOffset) {
		var at int64
		if c, ok := committed.Lookup(o.Topic, o.Partition); ok && c.Err == nil && c.At > 0 {
			at = c.At
		}
		if at < o.Offset && !(r.cfg.ExactlyOnce && o.Topic != r.plan.Main && r.onlyMarkers(ctx, o.Topic, o.Partition, at, o.Offset)) {
			behind = append(behind, fmt.Sprintf("%s[%d] committed %d of %d", o.Topic, o.Partition, at, o.Offset))
		}
	})
	slices.Sort(behind)
	return strings.Join(behind, ", "), nil
}

// onlyMarkers reports whether topic[partition] holds nothing a
// read_committed consumer would get between from and end: only
// transaction markers (and aborted records). A consumer commits the offset
// after the last record it got, so exactly once a partition is caught up
// when its commit stops short of its end by markers alone. Past a few
// hundred offsets it reports false without reading.
func (r *crashRun) onlyMarkers(ctx context.Context, topic string, partition int32, from, end int64) bool {
	if end-from > 500 {
		return false
	}
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(r.c.Seeds...),
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: {partition: kgo.NewOffset().At(from)}})},
		kafkatest.ReadCommittedOpts()...)...)
	if err != nil {
		return false
	}
	defer cl.Close()
	for {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil || fs.Err() != nil {
			return false
		}
		data, last := false, int64(-1)
		fs.EachRecord(func(rc *kgo.Record) {
			data = data || !rc.Attrs.IsControl()
			last = max(last, rc.Offset)
		})
		if data {
			return false
		}
		if last >= end-1 {
			return true
		}
	}
}

// finish lets the last incarnation run until every key has its outcome
// and the group has committed every record of every topic (so no
// duplicate is still on its way), then stops it with SIGTERM.
func (r *crashRun) finish(c *crashChild) {
	t := r.t
	t.Helper()
	// On a timeout or a stall the test goes on to its verdict, which
	// says what is missing and what the ledger knows of it.
	outcomes := func() string { return "every record to reach a terminal outcome: " + r.missing() }
	if !r.await(c, r.size.finish, r.size.stall, outcomes, func() bool {
		return len(r.lg.terminal) >= len(r.keys) && r.missing() == ""
	}) {
		t.Errorf("gave up waiting for %s", outcomes())
	} else {
		r.doneAt = time.Now()
		var last string
		commits := func() string { return "the group to commit every record: " + last }
		if !r.await(c, time.Minute, 0, commits, func() bool {
			behind, err := r.lag()
			if err != nil {
				last = err.Error()
				return false
			}
			last = behind
			return behind == ""
		}) {
			t.Errorf("after a minute, still waiting for %s", commits())
		}
	}
	if err := c.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatalf("SIGTERM: %v", err)
	}
	select {
	case <-c.done:
	case <-time.After(time.Minute):
		t.Fatalf("the last incarnation did not stop within a minute of SIGTERM: %s", r.childLog(c))
	}
	if c.err != nil {
		t.Fatalf("the last incarnation failed: %s", r.childLog(c))
	}
	if err := r.lg.refresh(); err != nil {
		t.Fatal(err)
	}
	if !r.lg.ends[c.inc] {
		t.Errorf("the last incarnation exited without its E line: %s", r.childLog(c))
	}
}

// missing lists a few keys without a terminal outcome, for messages.
func (r *crashRun) missing() string {
	var ks []string
	for _, k := range r.keys {
		if !r.lg.terminal[k] {
			ks = append(ks, k)
		}
	}
	if len(ks) == 0 {
		return ""
	}
	return fmt.Sprintf("%d keys without an outcome, e.g. %v", len(ks), ks[:min(len(ks), 5)])
}

// run is the crash loop: incarnations 1..kills are killed, the last one
// finishes the work and is stopped cleanly. Then the verdict.
func (r *crashRun) run() {
	t := r.t
	t.Helper()
	r.start = time.Now()
	for inc := 1; inc <= r.size.kills+1; inc++ {
		c := r.startChild(inc)
		r.produceBurst(inc)
		if inc <= r.size.kills {
			r.kill(c)
			continue
		}
		r.awaitBroker()
		r.finish(c)
	}
	took := time.Since(r.start)
	v := r.verify()
	t.Logf("%s", r.summary(v, took))
	var per []string
	for _, c := range r.children {
		per = append(per, fmt.Sprintf("%d:%d/%d", c.inc, r.lg.byInc[c.inc], v.rereadsBy[c.inc]))
	}
	t.Logf("calls/re-reads by incarnation: %s", strings.Join(per, " "))
	t.Logf("the children logged %s", r.childWarnings())
}

var crashLogMsg = regexp.MustCompile(`level=(WARN|ERROR) msg=(?:"((?:[^"\\]|\\.)*)"|(\S+))`)

// childWarnings counts the warnings and errors in the children's logs by
// message, leaving out the DLT handler's "record dead-lettered" lines,
// which are its normal output.
func (r *crashRun) childWarnings() string {
	count := map[string]int{}
	for _, c := range r.children {
		b, err := os.ReadFile(c.logPath)
		if err != nil {
			return err.Error()
		}
		for _, m := range crashLogMsg.FindAllStringSubmatch(string(b), -1) {
			if msg := m[2] + m[3]; msg != "kretry: record dead-lettered" {
				count[m[1]+" "+msg]++
			}
		}
	}
	if len(count) == 0 {
		return "no warnings or errors"
	}
	var parts []string
	for m, n := range count {
		parts = append(parts, fmt.Sprintf("%d× %s", n, m))
	}
	slices.Sort(parts)
	return strings.Join(parts, "; ")
}

// TestCrashLoop runs the crash loop on kfake, or on the broker in
// KRETRY_BROKERS.
func TestCrashLoop(t *testing.T) {
	c := kafkatest.New(t)
	r := newCrashRun(t, c, nil, crashSizeFor(false))
	c.CreateTopic(r.cfg.Topic, r.size.partitions)
	r.run()
}

// TestCrashLoopBatch runs the crash loop with a batch handler (NewBatch,
// batches of up to 50 records): the same kills, the same verdict.
func TestCrashLoopBatch(t *testing.T) {
	runCrashLoop(t, func(cfg *crashChildConfig) { cfg.Batch = true })
}

// runCrashLoop runs the crash loop on kfake, or on the broker in
// KRETRY_BROKERS, with the children's configuration set by mode.
func runCrashLoop(t *testing.T, mode func(cfg *crashChildConfig)) {
	c := kafkatest.New(t)
	r := newCrashRun(t, c, nil, crashSizeFor(false))
	mode(&r.cfg)
	c.CreateTopic(r.cfg.Topic, r.size.partitions)
	r.run()
}

// TestCrashLoopExactlyOnce runs the crash loop exactly once
// (ExactlyOnce): the handler produces a record per call, and read back
// with read_committed every key has exactly one output, from its
// successful call, and every tier and DLT copy is there once.
func TestCrashLoopExactlyOnce(t *testing.T) {
	c := kafkatest.New(t)
	r := newCrashRun(t, c, nil, crashSizeFor(false))
	r.cfg.ExactlyOnce, r.cfg.Output = true, c.Name("output")
	c.CreateTopic(r.cfg.Topic, r.size.partitions)
	c.CreateTopic(r.cfg.Output, r.size.partitions)
	r.run()
}

// verifyExactlyOnce adds the exactly-once checks: one copy of each key and
// attempt in the tiers, one DLT copy per dead-lettered key, and one
// output per key that was handled — from a successful call of its last
// attempt — and none for a dead-lettered key.
func (r *crashRun) verifyExactlyOnce(p *crashProblems, v *crashVerdict, index map[string]int) {
	rb := readPlan(r.c, r.plan, true)
	for ka, n := range rb.tierCopies {
		if n != 1 {
			p.add("EXACTLY ONCE", "%s attempt %d: %d copies in the tiers (read_committed), want 1", ka.key, ka.attempt, n)
		}
	}
	for key, refs := range rb.dltByKey {
		if len(refs) != 1 {
			p.add("EXACTLY ONCE", "%s: %d copies in the DLT (read_committed), want 1", key, len(refs))
		}
	}
	outs := map[string][]string{}
	for _, rc := range r.c.ReadCommitted(r.cfg.Output) {
		outs[string(rc.Key)] = append(outs[string(rc.Key)], string(rc.Value))
		v.outputs++
	}
	for i, key := range r.keys {
		f := r.cfg.fate(i)
		final := f.last(crashAttempts)
		want := 1
		if f.deadReason(crashAttempts) != "" {
			want = 0
		}
		if len(outs[key]) != want {
			p.add("EXACTLY ONCE", "%s (%+v): %d outputs visible %q, want %d", key, f, len(outs[key]), outs[key], want)
			continue
		}
		if want == 1 {
			var attempt int32
			var outcome string
			var inc int
			if _, err := fmt.Sscanf(strings.ReplaceAll(outs[key][0], "\t", " "), "%d %s %d", &attempt, &outcome, &inc); err != nil ||
				attempt != final || outcome != "ok" {
				p.add("EXACTLY ONCE", "%s: the visible output is %q, want the one of its successful attempt %d", key, outs[key][0], final)
			}
		}
	}
	for key := range outs {
		if _, ok := index[key]; !ok {
			p.add("UNKNOWN KEY", "%q in the output topic", key)
		}
	}
}

// TestClusterCrashLoopBrokerKilled runs the crash loop on the three-node
// cluster (RF 3, min ISR 2) and SIGKILLs the leader of a tier partition a
// third of the way through, restarting it three incarnations later.
func TestClusterCrashLoopBrokerKilled(t *testing.T) {
	nodes := kafkatest.NewNodes(t)
	r := newCrashRun(t, nodes.Cluster, nodes, crashSizeFor(true))
	nodes.CreateReplicatedTopic(r.cfg.Topic, r.size.partitions, 3, map[string]*string{"min.insync.replicas": new("2")})
	// Every partition left on the cluster lengthens the next restart's
	// wait for full ISR.
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if _, err := nodes.Admin.DeleteTopics(ctx, r.plan.Topics()...); err != nil {
			t.Logf("deleting the test's topics: %v", err)
		}
	})
	r.brokerKillAt = max(1, r.size.kills/3)
	r.brokerRestartAt = r.brokerKillAt + 3
	r.run()
}

// TestClusterCrashLoopExactlyOnceCoordinatorKilled runs the exactly-once
// crash loop on the three-node cluster and SIGKILLs the transaction
// coordinator of the listener's transactional ID a third of the way
// through, restarting it three incarnations later.
func TestClusterCrashLoopExactlyOnceCoordinatorKilled(t *testing.T) {
	nodes := kafkatest.NewNodes(t)
	r := newCrashRun(t, nodes.Cluster, nodes, crashSizeFor(true))
	r.cfg.ExactlyOnce, r.cfg.Output = true, nodes.Name("output")
	isr := map[string]*string{"min.insync.replicas": new("2")}
	nodes.CreateReplicatedTopic(r.cfg.Topic, r.size.partitions, 3, isr)
	nodes.CreateReplicatedTopic(r.cfg.Output, r.size.partitions, 3, isr)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if _, err := nodes.Admin.DeleteTopics(ctx, append(r.plan.Topics(), r.cfg.Output)...); err != nil {
			t.Logf("deleting the test's topics: %v", err)
		}
	})
	r.brokerKillAt = max(1, r.size.kills/3)
	r.brokerRestartAt = r.brokerKillAt + 3
	r.run()
}

// crashProblems collects failures by kind and reports each kind once,
// with its count and a few examples.
type crashProblems struct {
	kinds    []string
	count    map[string]int
	examples map[string][]string
}

func (p *crashProblems) add(kind, format string, args ...any) {
	if p.count == nil {
		p.count, p.examples = map[string]int{}, map[string][]string{}
	}
	if p.count[kind] == 0 {
		p.kinds = append(p.kinds, kind)
	}
	p.count[kind]++
	if len(p.examples[kind]) < 5 {
		p.examples[kind] = append(p.examples[kind], fmt.Sprintf(format, args...))
	}
}

func (p *crashProblems) report(t *testing.T) {
	t.Helper()
	for _, k := range p.kinds {
		t.Errorf("%s: %d cases, e.g.:\n\t%s", k, p.count[k], strings.Join(p.examples[k], "\n\t"))
	}
}

// crashVerdict holds the figures of a verified run.
type crashVerdict struct {
	handledFirst, handledRetried    int
	deadPermanent, deadExhausted    int
	calls, dltCalls, tierN, dltN    int
	dupCalls, dupOK                 int // handler calls beyond one per key and attempt; ok calls beyond one per key
	rereads, extraReads             int // duplicate calls: the same record again, or another copy of it
	extraTier, extraDLT, dupDLT     int // copies beyond one per key and attempt; DLT handler calls beyond one per key
	byLaterInc, byRevoke            int // how the re-reads are explained
	early                           int
	lateP50, lateP99, lateMax       time.Duration
	restartP50, restartMax          time.Duration // child start to its first handler call
	killsOutstanding, killsRetrying int           // kills that found keys outstanding, or waiting for a retry
	noOutcome, unexplained          int           // failures: keys without an outcome, unexplained duplicates
	rereadsBy                       map[int]int   // handler re-reads by the incarnation that made them
	commitSamples, commitChecked    int           // kills whose committed offsets were checked; records checked
	aborts                          int           // exactly once: transactions aborted
	outputs                         int           // exactly once: output records read back (read_committed)
	ko                              keyOrderFigures
}

// keyOrderFigures are the key-order checks' figures (TestCrashLoopKeyOrder
// and the storm's key-order mode).
type keyOrderFigures struct {
	keys, perKeyMax int // keys, and the most records of one key
	twoPartitions   int // keys found on more than one main partition
	follows         int // EventFollowed: follower publishes acknowledged
	staleCopies     int // key order: stale copies passed over (EventSkipped, ReasonStaleCopy)
	followerCopies  int // follower copies in the tiers
	keysFollowed    int // keys with at least one follower copy
	outOfOrder      int // records first handled before an earlier record of their key
	callsAhead      int // records handed to the handler before an earlier record of their key had its outcome
	laterReread     int // handler calls of a record after a later record of its key had been called: re-reads of a record with its outcome
	released        int // records handled after an earlier record of their key was dead-lettered (FollowersRelease)
	unordered       int // keys whose order could not be checked: a record without an outcome
	// crash loop only: the most distinct copies of one record and attempt
	// one incarnation handed to the handler; the records the last
	// incarnation (never killed) handled successfully more than once, and
	// the most successful calls of one of them
	maxCopies, againLast, againLastMax int
	cutOff                             int // crash loop only: follower copies a kill cut off before their acknowledgement
}

func (f keyOrderFigures) String() string {
	s := fmt.Sprintf("key order: %d keys (up to %d records each, %d on two partitions), %d follower publishes acknowledged, %d follower copies in the tiers (%d keys); "+
		"%d out-of-order first successes, %d records handed to the handler before an earlier record of their key had its outcome, "+
		"%d re-reads of an earlier record after a later one (at least once), %d records handled after an earlier one of their key was dead-lettered",
		f.keys, f.perKeyMax, f.twoPartitions, f.follows, f.followerCopies, f.keysFollowed, f.outOfOrder, f.callsAhead, f.laterReread, f.released)
	if f.staleCopies > 0 {
		s += fmt.Sprintf(", %d stale copies passed over", f.staleCopies)
	}
	if f.maxCopies > 0 {
		s += fmt.Sprintf("; %d follower copies published but not acknowledged before a kill; copies: up to %d distinct copies of one record and attempt handled in one incarnation, %d records handled successfully more than once by the last, unkilled incarnation",
			f.cutOff, f.maxCopies, f.againLast)
		if f.againLast > 0 {
			s += fmt.Sprintf(" (up to %d times)", f.againLastMax)
		}
	}
	return s
}

// verify checks the ledger against the fates and against Kafka.
func (r *crashRun) verify() crashVerdict {
	t := r.t
	t.Helper()
	var p crashProblems
	var v crashVerdict
	lg := r.lg
	plan := r.plan
	index := map[string]int{}
	for i, k := range r.keys {
		index[k] = i
	}

	// What Kafka holds, read back with a plain client.
	rb := readPlan(r.c, plan, r.cfg.ExactlyOnce)
	for _, b := range rb.bad {
		p.add("BAD RECORD", "%s", b)
	}
	mainKey, mainCopies := rb.mainKey, rb.mainCopies
	tier, tierCopies, tierStamps := rb.tier, rb.tierCopies, rb.tierStamps
	dltRec, dltByKey := rb.dlt, rb.dltByKey
	for ref, k := range mainKey {
		if _, ok := index[k]; !ok {
			p.add("UNKNOWN KEY", "%q in %v", k, ref)
		}
	}
	for ref, cp := range tier {
		if _, ok := index[cp.key]; !ok {
			p.add("UNKNOWN KEY", "%q in %v", cp.key, ref)
		}
		// A follower (key order) waits in its key's tier, whatever its
		// attempt.
		if want, _ := plan.TierForAttempt(int(cp.attempt)); want.Topic != ref.topic && !cp.follower {
			p.add("BAD TIER RECORD", "%v: %s attempt %d belongs in %q", ref, cp.key, cp.attempt, want.Topic)
		}
	}
	v.tierN = len(tier)
	for ref, cp := range dltRec {
		if _, ok := index[cp.key]; !ok {
			p.add("UNKNOWN KEY", "%q in %v", cp.key, ref)
		}
		if cp.original != plan.Main {
			p.add("BAD DLT RECORD", "%v: %s original topic %q", ref, cp.key, cp.original)
		}
	}
	v.dltN = len(dltRec)

	// The ledger.
	if len(lg.torn) > r.size.kills {
		p.add("LEDGER", "%d torn lines for %d kills (at most one per kill): %q", len(lg.torn), r.size.kills, lg.torn[0])
	}
	for inc := 1; inc <= len(r.children); inc++ {
		if _, ok := lg.starts[inc]; !ok {
			p.add("LEDGER", "incarnation %d wrote no S line", inc)
		}
	}
	v.calls, v.dltCalls = len(lg.calls), len(lg.dltCalls)
	byKA := map[keyAttempt][]crashCall{}
	byRef := map[recordRef][]crashCall{}
	var lates []time.Duration
	for _, c := range lg.calls {
		if _, ok := index[c.key]; !ok {
			p.add("UNKNOWN KEY", "%q handled from %v", c.key, c.ref)
			continue
		}
		byKA[keyAttempt{c.key, c.attempt}] = append(byKA[keyAttempt{c.key, c.attempt}], c)
		byRef[c.ref] = append(byRef[c.ref], c)
		// The record handed to the handler is in Kafka, as that key and
		// attempt. (A key-order follower is handed to it from a tier, on
		// its first attempt.)
		if c.ref.topic == plan.Main {
			if c.attempt != 1 || mainKey[c.ref] != c.key {
				p.add("CALL NOT IN KAFKA", "%s attempt %d read from %v, which the main topic holds as %q", c.key, c.attempt, c.ref, mainKey[c.ref])
			}
			continue
		}
		if got, ok := tier[c.ref]; !ok || got.key != c.key || got.attempt != c.attempt {
			p.add("CALL NOT IN KAFKA", "%s attempt %d read from %v, which the tiers hold as %+v (found %v)", c.key, c.attempt, c.ref, got, ok)
		}
		switch {
		case c.due.IsZero():
			p.add("NO DUE TIME", "%s attempt %d from %v", c.key, c.attempt, c.ref)
		case c.at.Before(c.due):
			v.early++
			p.add("EARLY", "%s attempt %d from %v handled %v before its due time (incarnation %d)", c.key, c.attempt, c.ref, c.due.Sub(c.at), c.inc)
		default:
			lates = append(lates, c.at.Sub(c.due))
		}
	}
	if len(lates) > 0 {
		slices.Sort(lates)
		v.lateP50, v.lateP99, v.lateMax = lates[len(lates)/2], lates[len(lates)*99/100], lates[len(lates)-1]
	}
	dltCallsByRef := map[recordRef][]crashCall{}
	dltCallsByKey := map[string]int{}
	for _, c := range lg.dltCalls {
		dltCallsByRef[c.ref] = append(dltCallsByRef[c.ref], c)
		dltCallsByKey[c.key]++
		if got, ok := dltRec[c.ref]; !ok || got.key != c.key || got.reason != c.reason || got.attempt != c.attempt {
			p.add("CALL NOT IN KAFKA", "DLT handler got %s (%q, attempt %d) from %v, which the DLT holds as %+v (found %v)", c.key, c.reason, c.attempt, c.ref, got, ok)
		}
	}
	fwdFails := map[recordRef]int{}
	followed := map[recordRef][]crashEvent{} // key order: records published as followers, acknowledged
	for _, e := range lg.events {
		switch e.kind {
		case 'F':
			fwdFails[e.ref]++
		case 'W':
			followed[e.ref] = append(followed[e.ref], e)
		case 'K':
			// A stale copy passed over (key order): its outcome is the
			// live copy's.
			followed[e.ref] = append(followed[e.ref], e)
			v.ko.staleCopies++
		}
	}
	// A tier record is handed to the handler or, under key order, moves
	// behind its key's last record as a follower.
	for ref, cp := range tier {
		if len(byRef[ref]) == 0 && len(followed[ref]) == 0 {
			p.add("TIER RECORD NEVER HANDLED", "%v (%s attempt %d) was never handed to the handler", ref, cp.key, cp.attempt)
		}
	}
	for ref, cp := range dltRec {
		if len(dltCallsByRef[ref]) == 0 {
			p.add("DLT RECORD NEVER HANDLED", "%v (%s, %s) was never handed to the DLT handler", ref, cp.key, cp.reason)
		}
	}

	// Every key: exactly one terminal outcome, the right one.
	for i, key := range r.keys {
		f := r.cfg.fate(i)
		final := f.last(crashAttempts)
		if mainCopies[key] != 1 {
			p.add("MAIN TOPIC", "%s: %d copies on the main topic, want 1", key, mainCopies[key])
		}
		okCalls := 0
		for a := int32(1); a <= final; a++ {
			cs := byKA[keyAttempt{key, a}]
			if len(cs) == 0 {
				p.add("MISSING", "%s (%+v) never got delivery %d", key, f, a)
			}
			wantOK := a == final && f.deadReason(crashAttempts) == ""
			for _, c := range cs {
				if c.ok != wantOK {
					p.add("WRONG FATE", "%s attempt %d returned ok=%v, want %v", key, a, c.ok, wantOK)
				}
				if c.ok {
					okCalls++
				}
			}
		}
		handled, dead := okCalls > 0, len(dltByKey[key]) > 0
		switch reason := f.deadReason(crashAttempts); {
		case handled && dead:
			p.add("TWO OUTCOMES", "%s (%+v): handled and in the DLT", key, f)
		case !handled && !dead:
			p.add("NO OUTCOME", "%s (%+v): neither handled nor in the DLT", key, f)
		case handled && reason != "":
			p.add("WRONG OUTCOME", "%s (%+v): handled, want the DLT with reason %q", key, f, reason)
		case dead && reason == "":
			p.add("WRONG OUTCOME", "%s (%+v): in the DLT, want handled", key, f)
		case handled && final == 1:
			v.handledFirst++
		case handled:
			v.handledRetried++
		case reason == retry.ReasonPermanent:
			v.deadPermanent++
		default:
			v.deadExhausted++
		}
		v.dupOK += max(0, okCalls-1)
		v.dupDLT += max(0, dltCallsByKey[key]-1)
		for _, ref := range dltByKey[key] {
			if cp := dltRec[ref]; cp.reason != f.deadReason(crashAttempts) || cp.attempt != final {
				p.add("WRONG OUTCOME", "%s (%+v): DLT record %v has reason %q after %d deliveries, want %q after %d",
					key, f, ref, cp.reason, cp.attempt, f.deadReason(crashAttempts), final)
			}
		}
	}
	for ka := range byKA {
		if i, ok := index[ka.key]; ok && (ka.attempt < 1 || ka.attempt > r.cfg.fate(i).last(crashAttempts)) {
			p.add("WRONG FATE", "%s (%+v) delivered as attempt %d", ka.key, r.cfg.fate(i), ka.attempt)
		}
	}

	// Duplicates. A record read again (the same offset) is explained when
	// the later read came from a later incarnation: a killed incarnation
	// had not committed it. Within one incarnation only a revocation of
	// the record's partition between the two reads explains it.
	var revokes []crashEvent
	for _, e := range lg.events {
		if e.kind == 'R' || e.kind == 'X' { // X: an aborted transaction re-reads every partition
			revokes = append(revokes, e)
			if e.kind == 'X' {
				v.aborts++
			}
		}
	}
	revokedBetween := func(c0, c1 crashCall) bool {
		return slices.ContainsFunc(revokes, func(e crashEvent) bool {
			return e.inc == c1.inc && (e.kind == 'X' || e.ref.topic == c1.ref.topic && e.ref.partition == c1.ref.partition) &&
				e.seq > c0.seq && e.seq < c1.seq
		})
	}
	v.rereadsBy = map[int]int{}
	rereads := func(what string, byRef map[recordRef][]crashCall, by map[int]int) int {
		n := 0
		for ref, cs := range byRef {
			for i := 1; i < len(cs); i++ { // cs is in ledger order
				by[cs[i].inc]++
				if c := cs[i]; c.inc >= 2 {
					// Incarnation c.inc started from what was committed
					// when its predecessor was killed, or later.
					if from, ok := r.kills[c.inc-2].committed[topicPartition{ref.topic, ref.partition}]; ok && ref.offset < from {
						p.add("RE-READ BELOW THE COMMIT", "%s %v (%s) read again in incarnation %d, below the offset %d committed when incarnation %d was killed",
							what, ref, c.key, c.inc, from, c.inc-1)
					}
				}
				switch prev, c := cs[i-1], cs[i]; {
				case c.inc > prev.inc:
					v.byLaterInc++
				case revokedBetween(prev, c):
					v.byRevoke++
				default:
					p.add("UNEXPLAINED DUPLICATE", "%s %v (%s) read again in incarnation %d, which had read it already at %s, with no revocation in between",
						what, ref, c.key, c.inc, prev.at.Format(time.StampMicro))
				}
				n++
			}
		}
		return n
	}
	v.rereads = rereads("handler call:", byRef, v.rereadsBy)
	rereads("DLT handler call:", dltCallsByRef, map[int]int{})
	// A copy of a record in a tier (or the DLT) comes from a failed call at
	// the previous attempt (or the last one), or from a publish kretry
	// retried after a failure. Each of those calls was checked above to be
	// the first read of its record or an explained re-read, so the copies
	// are explained when they are no more than those calls and retries.
	sources := func(ka keyAttempt) int {
		n := 0
		for _, c := range byKA[ka] {
			if !c.ok {
				n += 1 + fwdFails[c.ref]
			}
		}
		return n
	}
	for ka, n := range tierCopies {
		if allowed := sources(keyAttempt{ka.key, ka.attempt - 1}); n > allowed {
			p.add("UNEXPLAINED DUPLICATE", "%s attempt %d: %d copies in the tiers, from %d failed calls of attempt %d and their failed publishes",
				ka.key, ka.attempt, n, allowed, ka.attempt-1)
		}
		v.extraTier += n - 1
	}
	for _, cs := range byKA {
		refs := map[recordRef]bool{}
		for _, c := range cs {
			refs[c.ref] = true
		}
		v.extraReads += max(0, len(refs)-1)
	}
	if r.cfg.KeyOrder {
		r.verifyFollowers(&p, &v, rb, followed, fwdFails)
	}
	for key, refs := range dltByKey {
		i, ok := index[key]
		if !ok {
			continue
		}
		ka := keyAttempt{key, r.cfg.fate(i).last(crashAttempts)}
		if allowed := sources(ka); len(refs) > allowed {
			p.add("UNEXPLAINED DUPLICATE", "%s: %d copies in the DLT, from %d failed calls of attempt %d and their failed publishes",
				key, len(refs), allowed, ka.attempt)
		}
		v.extraDLT += len(refs) - 1
	}
	if r.cfg.ExactlyOnce {
		r.verifyExactlyOnce(&p, &v, index)
	}
	if r.cfg.KeyOrder {
		r.verifyKeyOrder(&p, &v, rb)
	}
	v.dupCalls = v.rereads + v.extraReads
	if distinct := len(byKA); v.calls-distinct != v.dupCalls {
		p.add("LEDGER", "%d handler calls for %d keys and attempts, but %d re-reads and %d reads of extra copies",
			v.calls, distinct, v.rereads, v.extraReads)
	}

	// Commits never pass a record without an outcome. After each kill,
	// every record below the committed offsets must have been settled by
	// the incarnations so far: handled (an ok call); or failed, with a copy
	// of its key's next attempt in a tier, or its DLT copy, in Kafka and
	// stamped before the kill; or, in the DLT, handed to the DLT handler.
	settled := func(ref recordRef, inc int, before time.Time) bool {
		if r.cfg.ExactlyOnce && ref.topic != plan.Main {
			if _, ok := tier[ref]; !ok {
				if _, ok := dltRec[ref]; !ok {
					return true // a transaction marker, or an aborted record: nothing to settle
				}
			}
		}
		if ref.topic == plan.DLT {
			return slices.ContainsFunc(dltCallsByRef[ref], func(c crashCall) bool { return c.inc <= inc })
		}
		// Key order: published as a follower, acknowledged.
		if slices.ContainsFunc(followed[ref], func(e crashEvent) bool { return e.inc <= inc }) {
			return true
		}
		return slices.ContainsFunc(byRef[ref], func(c crashCall) bool {
			if c.inc > inc {
				return false
			}
			if c.ok {
				return true
			}
			if slices.ContainsFunc(tierStamps[keyAttempt{c.key, c.attempt + 1}], func(ts time.Time) bool { return ts.Before(before) }) {
				return true
			}
			return slices.ContainsFunc(dltByKey[c.key], func(d recordRef) bool {
				return dltRec[d].attempt == c.attempt && dltRec[d].ts.Before(before)
			})
		})
	}
	checked := map[topicPartition]int64{}
	for _, k := range r.kills {
		if k.committed != nil {
			v.commitSamples++
		}
		for tp, at := range k.committed {
			for o := checked[tp]; o < at; o++ {
				if ref := (recordRef{tp.topic, tp.partition, o}); !settled(ref, k.inc, k.at) {
					p.add("COMMIT AHEAD", "after kill %d, %s[%d] was committed at %d, but offset %d had no outcome by then",
						k.inc, tp.topic, tp.partition, at, o)
					break
				}
				v.commitChecked++
			}
			checked[tp] = max(checked[tp], at)
		}
	}

	// Commits: the group has committed the main topic to its end (and the
	// tiers and the DLT, which finish checked before the SIGTERM).
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	ends, err := r.c.Admin.ListEndOffsets(ctx, plan.Main)
	if err != nil {
		t.Fatalf("end offsets: %v", err)
	}
	committed := r.c.Committed(r.cfg.Group, plan.Main)
	ends.Each(func(o kadm.ListedOffset) {
		if committed[o.Partition] != o.Offset {
			p.add("COMMIT", "%s[%d]: committed %d, end %d", o.Topic, o.Partition, committed[o.Partition], o.Offset)
		}
	})
	if behind, err := r.lag(); err != nil || behind != "" {
		p.add("COMMIT", "after the clean stop: %s %v", behind, err)
	}

	// The kills and the restarts.
	for _, k := range r.kills {
		if k.outstanding > 0 {
			v.killsOutstanding++
		}
		if k.retrying > 0 {
			v.killsRetrying++
		}
	}
	if v.killsRetrying < len(r.kills)/2 {
		p.add("KILLS", "only %d of %d kills found records waiting for a retry; the test lost its point", v.killsRetrying, len(r.kills))
	}
	var restarts []time.Duration
	for _, c := range r.children {
		if at, ok := lg.firstCall[c.inc]; ok {
			restarts = append(restarts, at.Sub(c.started))
		}
	}
	if len(restarts) > 0 {
		slices.Sort(restarts)
		v.restartP50, v.restartMax = restarts[len(restarts)/2], restarts[len(restarts)-1]
	}
	v.noOutcome, v.unexplained = p.count["NO OUTCOME"], p.count["UNEXPLAINED DUPLICATE"]
	p.report(t)
	return v
}

// summary is the run's one-line report: the figures of docs/reliability.md.
func (r *crashRun) summary(v crashVerdict, took time.Duration) string {
	var b strings.Builder
	mode := ""
	if r.cfg.Batch {
		mode = ", batch handler"
	}
	if r.cfg.ExactlyOnce {
		mode += fmt.Sprintf(", exactly once: %d outputs read_committed, %d transactions aborted", v.outputs, v.aborts)
	}
	if r.cfg.KeyOrder {
		mode += ", " + v.ko.String()
	}
	fmt.Fprintf(&b, "crash loop: %d records on %d partitions (%d attempts, tiers %v%s); %d SIGKILLs, %d incarnations; %s",
		len(r.keys), r.size.partitions, crashAttempts, tierDelays(r.plan), mode, len(r.kills), len(r.children), r.brokerNote)
	fmt.Fprintf(&b, "outcomes: %d handled (%d first try, %d after retries), %d dead-lettered (%d permanent, %d exhausted), %d without an outcome; ",
		v.handledFirst+v.handledRetried, v.handledFirst, v.handledRetried, v.deadPermanent+v.deadExhausted, v.deadPermanent, v.deadExhausted, v.noOutcome)
	fmt.Fprintf(&b, "%d handler calls, %d DLT handler calls, %d tier records, %d DLT records; ", v.calls, v.dltCalls, v.tierN, v.dltN)
	fmt.Fprintf(&b, "duplicates (%d unexplained): %d handler calls (%d re-reads of a record, %d of an extra copy; %d extra successful calls), "+
		"%d extra tier copies, %d extra DLT copies, %d extra DLT handler calls; re-reads (handler and DLT handler) explained by a later incarnation %d, by a revocation %d; ",
		v.unexplained, v.dupCalls, v.rereads, v.extraReads, v.dupOK, v.extraTier, v.extraDLT, v.dupDLT, v.byLaterInc, v.byRevoke)
	fmt.Fprintf(&b, "%d early; retry lateness p50 %v, p99 %v, max %v; restart to first call p50 %v, max %v; "+
		"kills that found records outstanding %d, waiting for a retry %d; committed offsets checked after %d kills, %d records below them all settled; %d torn ledger lines; ",
		v.early, v.lateP50.Round(time.Millisecond), v.lateP99.Round(time.Millisecond), v.lateMax.Round(time.Millisecond),
		v.restartP50.Round(time.Millisecond), v.restartMax.Round(time.Millisecond), v.killsOutstanding, v.killsRetrying,
		v.commitSamples, v.commitChecked, len(r.lg.torn))
	if !r.doneAt.IsZero() {
		fmt.Fprintf(&b, "all outcomes %v after the start, ", r.doneAt.Sub(r.start).Round(100*time.Millisecond))
	}
	fmt.Fprintf(&b, "run took %v", took.Round(100*time.Millisecond))
	return b.String()
}

// TestCrashLoopKeyOrder runs the crash loop key-ordered (KeyOrder): the
// 20,000 records share 2,000 keys (crashOrderKey), a fifth of them fail
// one to three times and 3% are dead-lettered (crashOrderFates), and the
// verdict adds the order check (checkKeyOrder) to the usual one: per key,
// first successes in main-topic order, no record handed to the handler
// while an earlier record of its key had no outcome, and every follower
// copy in the tiers acknowledged or cut short by a kill.
func TestCrashLoopKeyOrder(t *testing.T) {
	runCrashLoop(t, func(cfg *crashChildConfig) { cfg.KeyOrder = true })
}

// verifyKeyOrder adds the order check to the verdict.
func (r *crashRun) verifyKeyOrder(p *crashProblems, v *crashVerdict, rb readBack) {
	calls := make([]orderCall, 0, len(r.lg.calls))
	index := map[string]int{}
	for i, k := range r.keys {
		index[k] = i
	}
	for _, c := range r.lg.calls {
		i, ok := index[c.key]
		if !ok {
			continue // reported as an unknown key
		}
		f := r.cfg.fate(i)
		calls = append(calls, orderCall{id: c.key, ok: c.ok,
			terminal: c.ok || f.deadReason(crashAttempts) != "" && c.attempt == f.last(crashAttempts),
			what:     fmt.Sprintf("incarnation %d, attempt %d from %v, ledger line %d", c.inc, c.attempt, c.ref, c.seq)})
	}
	fig := checkKeyOrder(rb, calls, p.add)
	fig.follows, fig.cutOff = v.ko.follows, v.ko.cutOff
	// How far the copies of one record multiply: the most distinct
	// copies of one record and attempt handed to the handler by one
	// incarnation, and the records handled more than once by the last
	// incarnation, which is never killed.
	type incKA struct {
		inc int
		ka  keyAttempt
	}
	refs := map[incKA]map[recordRef]bool{}
	okLast := map[string]int{}
	for _, c := range r.lg.calls {
		k := incKA{c.inc, keyAttempt{c.key, c.attempt}}
		if refs[k] == nil {
			refs[k] = map[recordRef]bool{}
		}
		refs[k][c.ref] = true
		if c.ok && c.inc == len(r.children) {
			okLast[c.key]++
		}
	}
	for _, rs := range refs {
		fig.maxCopies = max(fig.maxCopies, len(rs))
	}
	for _, n := range okLast {
		if n > 1 {
			fig.againLast++
			fig.againLastMax = max(fig.againLastMax, n)
		}
	}
	fig.staleCopies = v.ko.staleCopies
	v.ko = fig
	if fig.follows == 0 || fig.laterReread+fig.released == 0 {
		p.add("KEY ORDER", "%d follower publishes, %d re-reads of an earlier record, %d records released behind a dead-lettered one: the test lost its point",
			fig.follows, fig.laterReread, fig.released)
	}
}

// verifyFollowers checks, under key order, the follower copies in the
// tiers. A follower is published without a handler call, so no ledger
// line precedes its publish; its acknowledgement is a W line
// (EventFollowed). Each follower copy of a record and attempt is thus
// explained by a W line of the incarnation that published it (the one
// running at the copy's timestamp), by a publish kretry retried after a
// failure, or by a publish a kill cut off before its acknowledgement:
// those of a killed incarnation are counted, not bounded per record (when
// copies of a record multiply, see keyOrderFigures.maxCopies, so do its
// publishes in flight); the last incarnation, stopped cleanly, must have
// acknowledged every follower copy it wrote.
func (r *crashRun) verifyFollowers(p *crashProblems, v *crashVerdict, rb readBack, followed map[recordRef][]crashEvent, fwdFails map[recordRef]int) {
	type kaInc struct {
		ka  keyAttempt
		inc int
	}
	source := func(ref recordRef) (keyAttempt, bool) {
		if id, ok := rb.mainKey[ref]; ok {
			return keyAttempt{id, 1}, true
		}
		cp, ok := rb.tier[ref]
		return keyAttempt{cp.key, cp.attempt}, ok
	}
	acked := map[kaInc]int{}
	for ref, es := range followed {
		ka, ok := source(ref)
		if !ok {
			p.add("FOLLOWER NOT IN KAFKA", "a follower publish of %v, which is neither on the main topic nor in a tier", ref)
			continue
		}
		for _, e := range es {
			acked[kaInc{ka, e.inc}] += 1 + fwdFails[ref]
			v.ko.follows++
		}
	}
	// The incarnation running at ts: the children run one at a time.
	incAt := func(ts time.Time) int {
		inc := 0
		for _, c := range r.children {
			if !c.started.After(ts) {
				inc = c.inc
			}
		}
		return inc
	}
	copies := map[kaInc]int{}
	for _, cp := range rb.tier {
		if cp.follower {
			copies[kaInc{keyAttempt{cp.key, cp.attempt}, incAt(cp.ts)}]++
		}
	}
	for ki, n := range copies {
		switch {
		case n <= acked[ki]:
		case ki.inc <= len(r.kills):
			v.ko.cutOff += n - acked[ki]
		default:
			p.add("UNEXPLAINED DUPLICATE", "%s attempt %d: %d follower copies stamped during the last incarnation, %d, which acknowledged %d follower publishes of it",
				ki.ka.key, ki.ka.attempt, n, ki.inc, acked[ki])
		}
	}
}
