package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/kretry/kretry/listener"
	"github.com/kretry/kretry/retry"
	"github.com/kretry/kretry/strategy"
)

// The machinery of interop_test.go: the Spring peer's interop scenarios
// (bench/peers/spring, Interop.java) driven over stdin and stdout, and a
// recorder for the kretry side. Waits are on conditions with deadlines; a
// change on either side wakes the waiters through one signal.

// signal wakes every waiter when something changed.
type signal struct {
	mu sync.Mutex
	ch chan struct{}
}

// changed returns a channel closed at the next broadcast. Take it before
// checking the condition, so that no change is missed.
func (s *signal) changed() <-chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ch == nil {
		s.ch = make(chan struct{})
	}
	return s.ch
}

func (s *signal) broadcast() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ch != nil {
		close(s.ch)
		s.ch = nil
	}
}

// waitUntil waits until cond holds, failing the test with what after
// timeout or when abort is closed first (abort may be nil).
func waitUntil(t *testing.T, sig *signal, timeout time.Duration, abort <-chan struct{}, what string, cond func() bool) {
	t.Helper()
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		ch := sig.changed()
		if cond() {
			return
		}
		select {
		case <-ch:
		case <-abort:
			if cond() {
				return
			}
			t.Fatalf("%s: the Spring peer exited first", what)
		case <-deadline.C:
			t.Fatalf("%s: not within %s", what, timeout)
		}
	}
}

// springEvent is one JSON line of the Spring peer (InteropEvents.java):
// "delivery" (the @RetryableTopic listener was called), "dlt" (the
// @DltHandler was called), "published" (Kafka acknowledged a republish),
// "topics", "stopping", "stopped". Header fields are the last copy of each
// header, decoded the way Spring decodes it; nil when absent.
type springEvent struct {
	Event       string `json:"event"`
	Topic       string `json:"topic"`
	Partition   int32  `json:"partition"`
	Offset      int64  `json:"offset"`
	Key         string `json:"key"`
	TimestampMs int64  `json:"timestamp_ms"`
	NowMs       int64  `json:"now_ms"`
	Fail        bool   `json:"fail"`

	HeaderKeys               []string `json:"header_keys"`
	Attempts                 *int32   `json:"attempts"`
	AttemptsHex              string   `json:"attempts_hex"`
	AttemptsCopies           int      `json:"attempts_copies"`
	BackoffMs                *int64   `json:"backoff_ms"`
	BackoffHex               string   `json:"backoff_hex"`
	RetryOriginalTimestampMs *int64   `json:"retry_original_timestamp_ms"`
	OriginalTopic            *string  `json:"original_topic"`
	OriginalPartition        *int32   `json:"original_partition"`
	OriginalPartitionHex     string   `json:"original_partition_hex"`
	OriginalOffset           *int64   `json:"original_offset"`
	OriginalOffsetHex        string   `json:"original_offset_hex"`
	OriginalTimestampMs      *int64   `json:"original_timestamp_ms"`
	OriginalTimestampType    *string  `json:"original_timestamp_type"`
	ExceptionFqcn            *string  `json:"exception_fqcn"`
	ExceptionCauseFqcn       *string  `json:"exception_cause_fqcn"`
	ExceptionMessage         *string  `json:"exception_message"`
	StacktraceBytes          *int     `json:"stacktrace_bytes"`

	Bound  map[string]*string `json:"bound"`  // "dlt": the @DltHandler's @Header parameters
	Topics []springTopic      `json:"topics"` // "topics"
	Error  string             `json:"error"`  // "publish_error"
}

// springTopic is one container's topic as Spring configured it.
type springTopic struct {
	Topic      string `json:"topic"`
	Role       string `json:"role"` // main, retry, dlt
	DelayMs    int64  `json:"delay_ms"`
	Group      string `json:"group"`
	ListenerID string `json:"listener_id"`
	Reusable   bool   `json:"reusable"`
}

// springInterop is a running Spring peer in an interop scenario.
type springInterop struct {
	t      *testing.T
	sig    *signal
	stdin  io.WriteCloser
	stderr string // file with the JVM's stderr
	cancel context.CancelFunc

	mu     sync.Mutex
	events []springEvent
	marks  map[string]time.Time // INITIALIZED, READY: when the line was read
	bad    []string             // lines that did not parse

	exited  chan struct{}
	exitErr error
	exitAt  time.Time
}

// startSpringInterop starts the jar with args (after --brokers). The JVM
// is stopped when the test ends: STOP on stdin, then killed. Its stderr
// (Spring's WARN and ERROR log) is shown when the test fails, or always
// with KRETRY_INTEROP_STDERR=1.
func startSpringInterop(t *testing.T, env *Env, sig *signal, args ...string) *springInterop {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	jar, err := springJar(ctx)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	java := os.Getenv("KRETRY_SPRING_JAVA")
	if java == "" {
		java = "java"
	}
	argv := strings.Fields(os.Getenv("KRETRY_SPRING_JVM_OPTS"))
	argv = append(argv, "-jar", jar, "--brokers", strings.Join(env.Brokers, ","))
	argv = append(argv, args...)
	cmd := exec.CommandContext(ctx, java, argv...)
	cmd.WaitDelay = 5 * time.Second
	p := &springInterop{t: t, sig: sig, cancel: cancel, marks: map[string]time.Time{}, exited: make(chan struct{}),
		stderr: filepath.Join(t.TempDir(), "spring.stderr")}
	errf, err := os.Create(p.stderr)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	cmd.Stderr = errf
	if p.stdin, err = cmd.StdinPipe(); err != nil {
		cancel()
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		cancel()
		t.Fatalf("spring: starting %s: %v", java, err)
	}
	t.Logf("spring: started %s", strings.Join(args, " "))
	go func() {
		sc := bufio.NewScanner(stdout)
		sc.Buffer(make([]byte, 1<<16), 1<<22)
		for sc.Scan() {
			at := time.Now()
			line := strings.TrimSpace(sc.Text())
			p.mu.Lock()
			switch {
			case strings.HasPrefix(line, "{"):
				var e springEvent
				if err := json.Unmarshal([]byte(line), &e); err != nil {
					p.bad = append(p.bad, line)
				} else {
					p.events = append(p.events, e)
				}
			case line != "":
				p.marks[line] = at
			}
			p.mu.Unlock()
			sig.broadcast()
		}
		werr := cmd.Wait()
		errf.Close()
		p.mu.Lock()
		p.exitErr, p.exitAt = werr, time.Now()
		p.mu.Unlock()
		close(p.exited)
		sig.broadcast()
	}()
	t.Cleanup(func() {
		p.send("STOP")
		p.stdin.Close()
		select {
		case <-p.exited:
		case <-time.After(30 * time.Second):
			t.Errorf("spring: did not exit 30 s after STOP; killing it")
		}
		cancel()
		<-p.exited
		if t.Failed() || os.Getenv("KRETRY_INTEROP_STDERR") != "" {
			p.dumpStderr()
		}
	})
	return p
}

func (p *springInterop) send(cmd string) {
	_, _ = io.WriteString(p.stdin, cmd+"\n") // a closed pipe: the JVM is gone, which the waits report
}

// mark waits for a line such as READY and returns when it was read.
func (p *springInterop) mark(name string, timeout time.Duration) time.Time {
	p.t.Helper()
	var at time.Time
	waitUntil(p.t, p.sig, timeout, p.exited, "spring: "+name, func() bool {
		p.mu.Lock()
		defer p.mu.Unlock()
		at = p.marks[name]
		return !at.IsZero()
	})
	return at
}

// waitExit waits for the JVM to exit by itself and returns when it did.
func (p *springInterop) waitExit(timeout time.Duration) time.Time {
	p.t.Helper()
	select {
	case <-p.exited:
	case <-time.After(timeout):
		p.t.Fatalf("spring: still running after %s", timeout)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.exitErr != nil {
		p.t.Fatalf("spring: %v", p.exitErr)
	}
	return p.exitAt
}

// of returns the events of a kind, in the order printed.
func (p *springInterop) of(kind string) []springEvent {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []springEvent
	for _, e := range p.events {
		if e.Event == kind {
			out = append(out, e)
		}
	}
	return out
}

// count waits until there are n events of kind (no more are checked here).
func (p *springInterop) count(kind string, n int, timeout time.Duration) {
	p.t.Helper()
	waitUntil(p.t, p.sig, timeout, p.exited, fmt.Sprintf("spring: %d %q events", n, kind), func() bool {
		return len(p.of(kind)) >= n
	})
}

// checkClean fails the test for unparsable lines and failed republishes.
func (p *springInterop) checkClean() {
	p.t.Helper()
	p.mu.Lock()
	bad := slices.Clone(p.bad)
	p.mu.Unlock()
	for _, l := range bad {
		p.t.Errorf("spring: unparsable stdout line: %s", l)
	}
	for _, e := range p.of("publish_error") {
		p.t.Errorf("spring: republish of %s to %s failed: %s", e.Key, e.Topic, e.Error)
	}
}

func (p *springInterop) dumpStderr() {
	b, err := os.ReadFile(p.stderr)
	if err != nil {
		return
	}
	if len(b) > 16<<10 {
		b = b[len(b)-16<<10:]
	}
	p.t.Logf("spring: stderr ends:\n%s", b)
}

// checkSpringTopics fails unless Spring's containers consume exactly the
// kretry plan's topics with the plan's delays: the names must agree for a
// hand-over. It returns Spring's group id per topic.
func checkSpringTopics(t *testing.T, plan strategy.Plan, topics []springTopic) map[string]string {
	t.Helper()
	type tt struct {
		Role    string
		DelayMs int64
	}
	want := map[string]tt{plan.Main: {"main", 0}, plan.DLT: {"dlt", 0}}
	for _, tier := range plan.Tiers {
		want[tier.Topic] = tt{"retry", tier.Delay.Milliseconds()}
	}
	got := map[string]tt{}
	groups := map[string]string{}
	for _, st := range topics {
		got[st.Topic] = tt{st.Role, st.DelayMs}
		groups[st.Topic] = st.Group
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("topic names differ:\nSpring %v\nkretry %v", got, want)
	}
	return groups
}

// kretryCall is one handler or DLT handler call of the kretry listener.
type kretryCall struct {
	Key       string
	Topic     string
	Partition int32
	Offset    int64
	At        time.Time
	State     retry.State
	HasState  bool
}

// kretryRecorder records a kretry listener's handler calls, DLT handler
// calls and events, and wakes waiters on each.
type kretryRecorder struct {
	sig  *signal
	fail map[string]bool

	mu     sync.Mutex
	calls  []kretryCall
	dlt    []kretryCall
	events []listener.Event
}

func newKretryRecorder(sig *signal, fail map[string]bool) *kretryRecorder {
	return &kretryRecorder{sig: sig, fail: fail}
}

// Handle fails the keys in fail, on every delivery.
func (r *kretryRecorder) Handle(ctx context.Context, rec *kgo.Record) error {
	c := kretryCall{Key: string(rec.Key), Topic: rec.Topic, Partition: rec.Partition, Offset: rec.Offset, At: time.Now()}
	c.State, c.HasState = retry.FromContext(ctx)
	r.mu.Lock()
	r.calls = append(r.calls, c)
	r.mu.Unlock()
	r.sig.broadcast()
	if r.fail[c.Key] {
		return errInteropFail
	}
	return nil
}

var errInteropFail = fmt.Errorf("interop: planned failure")

func (r *kretryRecorder) HandleDLT(_ context.Context, rec *kgo.Record, st retry.State) error {
	c := kretryCall{Key: string(rec.Key), Topic: rec.Topic, Partition: rec.Partition, Offset: rec.Offset,
		At: time.Now(), State: st, HasState: true}
	r.mu.Lock()
	r.dlt = append(r.dlt, c)
	r.mu.Unlock()
	r.sig.broadcast()
	return nil
}

func (r *kretryRecorder) OnEvent(e listener.Event) {
	r.mu.Lock()
	r.events = append(r.events, e)
	r.mu.Unlock()
	r.sig.broadcast()
}

func (r *kretryRecorder) snapshot() (calls, dlt []kretryCall, events []listener.Event) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.calls), slices.Clone(r.dlt), slices.Clone(r.events)
}

func (r *kretryRecorder) countEvents(kind listener.EventKind, role strategy.TopicRole) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, e := range r.events {
		if e.Kind == kind && e.Role == role {
			n++
		}
	}
	return n
}

// startKretry runs l until the returned stop is called (or the test ends)
// and returns when Run has returned, having committed.
func startKretry(t *testing.T, l *listener.Listener) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- l.Run(ctx) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			select {
			case err := <-errc:
				if err != nil {
					t.Errorf("kretry: Run: %v", err)
				}
			case <-time.After(time.Minute):
				t.Errorf("kretry: Run did not return a minute after cancel")
			}
		})
	}
	t.Cleanup(stop)
	return stop
}

// interopLogger logs the listener's warnings and errors to the test.
func interopLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelWarn}))
}

// mainRecord is where the test produced a key on the main topic.
type mainRecord struct {
	Partition int32
	Offset    int64
	Timestamp time.Time
}

// interopFill produces keys k0..k<n-1> to topic and returns where each went.
func interopFill(t *testing.T, env *Env, topic string, partitions, n int) map[string]mainRecord {
	t.Helper()
	springCreateTopic(t, env, topic, partitions)
	cl := springTestClient(t, env)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	recs := make([]*kgo.Record, n)
	for i := range recs {
		recs[i] = &kgo.Record{Topic: topic, Key: []byte("k" + strconv.Itoa(i)), Value: []byte("value " + strconv.Itoa(i))}
	}
	if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		t.Fatalf("produce to %s: %v", topic, err)
	}
	out := make(map[string]mainRecord, n)
	for _, r := range recs {
		out[string(r.Key)] = mainRecord{r.Partition, r.Offset, r.Timestamp}
	}
	return out
}

// interopFailKeys returns the even keys of k0..k<n-1>: the ones that fail.
func interopFailKeys(n int) (keys []string, set map[string]bool) {
	set = map[string]bool{}
	for i := 0; i < n; i += 2 {
		k := "k" + strconv.Itoa(i)
		keys = append(keys, k)
		set[k] = true
	}
	return keys, set
}

// committed returns group's committed offsets of topic by partition
// (absent: none committed).
func committed(t *testing.T, env *Env, group, topic string) map[int32]int64 {
	t.Helper()
	adm := kadm.NewClient(springTestClient(t, env))
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	resp, err := adm.FetchOffsetsForTopics(ctx, group, topic)
	if err != nil {
		t.Fatalf("offsets of group %s: %v", group, err)
	}
	out := map[int32]int64{}
	for _, o := range resp.Offsets().Sorted() {
		if o.Topic == topic && o.At >= 0 {
			out[o.Partition] = o.At
		}
	}
	return out
}

// endOffsets returns topic's end offsets by partition.
func endOffsets(t *testing.T, env *Env, topic string) map[int32]int64 {
	t.Helper()
	adm := kadm.NewClient(springTestClient(t, env))
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	resp, err := adm.ListEndOffsets(ctx, topic)
	if err != nil {
		t.Fatalf("end offsets of %s: %v", topic, err)
	}
	out := map[int32]int64{}
	resp.Each(func(o kadm.ListedOffset) { out[o.Partition] = o.Offset })
	return out
}

// epochMs is an epoch-millisecond time.
func epochMs(v int64) time.Time { return time.UnixMilli(v) }

func deref[T any](p *T) any {
	if p == nil {
		return "<absent>"
	}
	return *p
}

// readTopic returns every record of topic, reading up to the end offsets
// of the moment it is called.
func readTopic(t *testing.T, env *Env, topic string) []*kgo.Record {
	t.Helper()
	end := endOffsets(t, env, topic)
	want := int64(0)
	for _, o := range end {
		want += o
	}
	cl := springTestClient(t, env, kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var out []*kgo.Record
	for int64(len(out)) < want {
		fs := cl.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			t.Fatalf("read %s: %d of %d records: %v", topic, len(out), want, err)
		}
		fs.EachError(func(_ string, _ int32, err error) { t.Fatalf("read %s: %v", topic, err) })
		out = append(out, fs.Records()...)
	}
	return out
}
