package listener_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/kretry/kretry/internal/kafkatest"
	"github.com/kretry/kretry/listener"
	"github.com/kretry/kretry/retry"
	"github.com/kretry/kretry/strategy"
)

// misbehaveHeader returns the value of header key in hs, and whether it
// is there.
func misbehaveHeader(hs []kgo.RecordHeader, key string) (string, bool) {
	for _, h := range hs {
		if h.Key == key {
			return string(h.Value), true
		}
	}
	return "", false
}

// misbehaveProduce writes records to the partitions they name.
func misbehaveProduce(t *testing.T, seeds []string, recs ...*kgo.Record) {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(seeds...), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		t.Fatalf("produce: %v", err)
	}
}

// misbehavePanic returns the *listener.PanicError in err, if any.
func misbehavePanic(err error) (*listener.PanicError, bool) {
	var pe *listener.PanicError
	ok := errors.As(err, &pe)
	return pe, ok
}

// misbehaveEvents returns the events of kind about the record at offset in
// topic (the topic it was read from).
func misbehaveEvents(s *script, kind listener.EventKind, topic string, offset int64) []listener.Event {
	var out []listener.Event
	for _, e := range s.eventsOf(kind) {
		if e.Topic == topic && e.Offset == offset {
			out = append(out, e)
		}
	}
	return out
}

// misbehaveDLT is a DLT handler that records every call in a script and
// then does what plan says for that key's n-th DLT call (1-based): return
// nil, return an error, or panic.
type misbehaveDLT struct {
	s      *script
	mu     sync.Mutex
	counts map[string]int
	plan   func(key string, n int) error
}

func (d *misbehaveDLT) HandleDLT(ctx context.Context, rec *kgo.Record, st retry.State) error {
	_ = d.s.HandleDLT(ctx, rec, st)
	d.mu.Lock()
	d.counts[string(rec.Key)]++
	n := d.counts[string(rec.Key)]
	d.mu.Unlock()
	return d.plan(string(rec.Key), n)
}

// Panics are recovered wherever the user's code runs, and surface as a
// *listener.PanicError: on the main topic and on the retry tiers they are
// retried like any error, with the panic value and the stack in the
// kretry-error header of the next hop and in the events; when the attempts
// run out the DLT record carries the last panic; a panicking DLT handler is
// called again after DLTHandlerBackoff and, when it keeps panicking, is
// given up on (EventDropped) and its record committed. The worker survives
// every panic: the records behind them are handled.
func TestMisbehavingPanicsOnTiersAndInDLTHandler(t *testing.T) {
	f := newFixture(t, 1)
	sentinel := errors.New("panic with an error value")
	s := newScript(func(key string, n int) error {
		switch key {
		case "p": // panics on every delivery: main, the retry tier twice, then the DLT
			panic(fmt.Sprintf("panic %d of p", n))
		case "q": // panics once, with an error value, then succeeds from the tier
			if n == 1 {
				panic(sentinel)
			}
		case "d": // straight to the DLT, whose handler always panics
			return strategy.Permanent(errBoom)
		}
		return nil
	})
	dh := &misbehaveDLT{s: s, counts: map[string]int{}, plan: func(key string, n int) error {
		switch {
		case key == "p" && n == 1:
			panic("dlt panic 1 of p")
		case key == "d":
			panic(fmt.Sprintf("dlt panic %d of d", n))
		}
		return nil
	}}
	l := f.listener(t, s, listener.Attempts(3), listener.Backoff(strategy.FixedBackoff(50*time.Millisecond)),
		listener.DLTHandler(dh), listener.DLTHandlerAttempts(2), listener.DLTHandlerBackoff(50*time.Millisecond))
	plan := l.Plan()
	f.c.Produce(rec(f.topic, "p"), rec(f.topic, "q"), rec(f.topic, "d"), rec(f.topic, "ok"))
	started(t, l)
	kafkatest.Eventually(t, waitFor, func() bool {
		return len(s.dltOf("p")) == 2 && len(s.eventsOf(listener.EventDropped)) == 1 && s.count("q") == 2 && s.count("ok") == 1
	}, "p through every tier to the DLT (handled on the DLT handler's second call), d dropped, q retried, ok handled")
	// Everything is committed: main (p, q, d, ok), the retry tier (p twice,
	// q) and the DLT (p, d).
	kafkatest.Eventually(t, waitFor, func() bool {
		return f.c.Committed(f.group, plan.Main)[0] == 4 && f.c.Committed(f.group, plan.Tiers[0].Topic)[0] == 3 &&
			f.c.Committed(f.group, plan.DLT)[0] == 2
	}, "main, tier and DLT committed to their ends")

	wantPanic := func(what, text, errType, value string) {
		t.Helper()
		if errType != "*listener.PanicError" {
			t.Errorf("%s: error type %q, want *listener.PanicError", what, errType)
		}
		if !strings.Contains(text, value) || !strings.Contains(text, "goroutine ") {
			t.Errorf("%s: error text %q: want the panic value %q and a stack", what, text, value)
		}
	}
	// p's retries carry the previous delivery's panic, in the decoded state
	// and in the raw kretry-error header.
	ps := s.of("p")
	if len(ps) != 3 {
		t.Fatalf("p delivered %d times, want 3 (main, then the retry tier twice)", len(ps))
	}
	for i, d := range ps[1:] {
		value := fmt.Sprintf("panic %d of p", i+1)
		wantPanic(fmt.Sprintf("p attempt %d (%s)", d.state.Attempt, d.topic), d.state.Error, d.state.ErrorType, value)
		raw, ok := misbehaveHeader(d.headers, retry.HeaderError)
		if !ok || !strings.Contains(raw, value) {
			t.Errorf("p attempt %d: %s header %q (present %v), want the panic value %q", d.state.Attempt, retry.HeaderError, raw, ok, value)
		}
		if typ, _ := misbehaveHeader(d.headers, retry.HeaderErrorType); typ != "*listener.PanicError" {
			t.Errorf("p attempt %d: %s header %q", d.state.Attempt, retry.HeaderErrorType, typ)
		}
	}
	for i, d := range ps[1:] {
		if tier, _ := plan.TierForAttempt(i + 2); d.topic != tier.Topic {
			t.Errorf("p attempt %d read from %s, want the tier %s", i+2, d.topic, tier.Topic)
		}
	}
	// The DLT record carries the third panic and the reason.
	dl := s.dltOf("p")[0]
	wantPanic("p in the DLT", dl.state.Error, dl.state.ErrorType, "panic 3 of p")
	if dl.state.Reason != listener.ReasonExhausted || dl.state.Attempt != 3 {
		t.Errorf("p in the DLT: reason %q attempt %d, want %q after 3", dl.state.Reason, dl.state.Attempt, listener.ReasonExhausted)
	}

	// Events carry the *PanicError itself, with its value.
	for i, d := range ps {
		topic, kind := d.topic, listener.EventRetried
		if i == 2 {
			kind = listener.EventDeadLettered
		}
		evs := misbehaveEvents(s, kind, topic, d.offset)
		if len(evs) != 1 {
			t.Errorf("p attempt %d: %d %v events, want 1", i+1, len(evs), kind)
			continue
		}
		pe, ok := misbehavePanic(evs[0].Err)
		if want := fmt.Sprintf("panic %d of p", i+1); !ok || pe.Value != want || !strings.Contains(string(pe.Stack), "goroutine ") {
			t.Errorf("p attempt %d: %v event error %#v, want a *PanicError with value %q and a stack", i+1, kind, evs[0].Err, want)
		}
	}
	// q panicked with an error: the value is that error.
	if qs := s.of("q"); len(qs) == 2 {
		wantPanic("q attempt 2", qs[1].state.Error, qs[1].state.ErrorType, sentinel.Error())
		evs := misbehaveEvents(s, listener.EventRetried, plan.Main, qs[0].offset)
		if len(evs) != 1 {
			t.Errorf("q: %d retried events, want 1", len(evs))
		} else if pe, ok := misbehavePanic(evs[0].Err); !ok || pe.Value != any(sentinel) {
			t.Errorf("q: retried event error %#v, want a *PanicError whose value is the panicked error", evs[0].Err)
		}
	}

	// The DLT handler's panics: one for p, then success; two for d, then
	// dropped with the panic.
	pOff, dOff := dl.offset, s.dltOf("d")[0].offset
	failed := misbehaveEvents(s, listener.EventDLTHandlerFailed, plan.DLT, pOff)
	if len(failed) != 1 {
		t.Errorf("p: %d DLT handler failures, want 1", len(failed))
	} else if pe, ok := misbehavePanic(failed[0].Err); !ok || pe.Value != "dlt panic 1 of p" {
		t.Errorf("p: DLT handler failure %#v, want a *PanicError with value %q", failed[0].Err, "dlt panic 1 of p")
	}
	if n := len(misbehaveEvents(s, listener.EventHandled, plan.DLT, pOff)); n != 1 {
		t.Errorf("p: %d handled events from the DLT, want 1", n)
	}
	failed = misbehaveEvents(s, listener.EventDLTHandlerFailed, plan.DLT, dOff)
	if len(failed) != 2 {
		t.Errorf("d: %d DLT handler failures, want 2 (DLTHandlerAttempts)", len(failed))
	}
	for i, e := range failed {
		if pe, ok := misbehavePanic(e.Err); !ok || pe.Value != fmt.Sprintf("dlt panic %d of d", i+1) {
			t.Errorf("d: DLT handler failure %d: %#v, want a *PanicError", i+1, e.Err)
		}
	}
	dropped := s.eventsOf(listener.EventDropped)[0]
	if pe, ok := misbehavePanic(dropped.Err); dropped.Offset != dOff || dropped.Reason != "dlt-handler-failed" || !ok || pe.Value != "dlt panic 2 of d" {
		t.Errorf("dropped event %+v: want d's DLT record, reason dlt-handler-failed, the last panic", dropped)
	}
	if n := len(s.dltOf("d")); n != 2 {
		t.Errorf("d: DLT handler called %d times, want 2", n)
	}
	panicked := func(kinds ...listener.EventKind) int {
		n := 0
		for _, k := range kinds {
			for _, e := range s.eventsOf(k) {
				if _, ok := misbehavePanic(e.Err); ok {
					n++
				}
			}
		}
		return n
	}
	t.Logf("FIGURES panics: %d handler calls (%d panicked), %d DLT handler calls (%d panicked); every panic became a *listener.PanicError in headers and events",
		len(s.deliveries), panicked(listener.EventRetried, listener.EventDeadLettered), len(s.dlt), panicked(listener.EventDLTHandlerFailed))
}

// HandlerTimeout(d) gives each handler call a context that expires after d.
// A handler that honours it is canceled after d, and its record takes the
// next step with context.DeadlineExceeded as its error — in the
// kretry-error header of the next hop and in the events: retried from the
// main topic and from a tier, then handled. The DLT handler gets the same
// bound: a DLT handler that waits for its context fails with
// context.DeadlineExceeded, is called again, and is given up on.
func TestMisbehavingHandlerTimeoutCancelsHandlerThatHonoursContext(t *testing.T) {
	f := newFixture(t, 1)
	const timeout = 200 * time.Millisecond
	type call struct {
		key         string
		attempt     int32
		deadlineIn  time.Duration // the context's deadline, from the call's start
		canceledIn  time.Duration // when ctx.Done fired, from the call's start
		pastDue     time.Duration // when ctx.Done fired, from the deadline
		err         error
		errHeader   string
		errTypeHdr  string
		hasDeadline bool
	}
	var mu sync.Mutex
	var calls []call
	var dltCalls []call
	// wait waits for ctx, as a handler that honours it would, and notes
	// when it ends. The listener sets the deadline just before the call.
	wait := func(ctx context.Context, c *call) {
		start := time.Now()
		dl, ok := ctx.Deadline()
		<-ctx.Done()
		c.deadlineIn, c.canceledIn, c.pastDue, c.hasDeadline, c.err = dl.Sub(start), time.Since(start), time.Since(dl), ok, ctx.Err()
	}
	h := listener.HandlerFunc(func(ctx context.Context, r *kgo.Record) error {
		st, _ := retry.FromContext(ctx)
		c := call{key: string(r.Key), attempt: max(st.Attempt, 1)}
		c.errHeader, _ = misbehaveHeader(r.Headers, retry.HeaderError)
		c.errTypeHdr, _ = misbehaveHeader(r.Headers, retry.HeaderErrorType)
		if c.key == "slow" && c.attempt <= 2 {
			wait(ctx, &c)
		} else if c.key == "dslow" {
			c.err = strategy.Permanent(errBoom)
		}
		mu.Lock()
		calls = append(calls, c)
		mu.Unlock()
		return c.err
	})
	dh := misbehaveDLTFunc(func(ctx context.Context, r *kgo.Record) error {
		c := call{key: string(r.Key)}
		wait(ctx, &c)
		mu.Lock()
		dltCalls = append(dltCalls, c)
		mu.Unlock()
		return c.err
	})
	s := newScript(nil) // for its events
	l := f.listener(t, h, listener.HandlerTimeout(timeout), listener.Attempts(3),
		listener.Backoff(strategy.FixedBackoff(50*time.Millisecond)), listener.Hooks(s),
		listener.DLTHandler(dh), listener.DLTHandlerAttempts(2), listener.DLTHandlerBackoff(50*time.Millisecond))
	plan := l.Plan()
	f.c.Produce(rec(f.topic, "slow"), rec(f.topic, "fast"), rec(f.topic, "dslow"))
	started(t, l)
	kafkatest.Eventually(t, waitFor, func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(calls) == 5 && len(dltCalls) == 2 && len(s.eventsOf(listener.EventDropped)) == 1
	}, "slow delivered 3 times, fast and dslow once, dslow's DLT handler twice and given up on")
	kafkatest.Eventually(t, waitFor, func() bool {
		return f.c.Committed(f.group, plan.Main)[0] == 3 && f.c.Committed(f.group, plan.DLT)[0] == 1
	}, "main and DLT committed to their ends")

	mu.Lock()
	defer mu.Unlock()
	want := context.DeadlineExceeded.Error()
	checkBound := func(what string, c call) {
		t.Helper()
		if !c.hasDeadline || c.deadlineIn > timeout || c.deadlineIn < timeout/2 {
			t.Errorf("%s: context deadline %v after the call began (set %v), want %v", what, c.deadlineIn, c.hasDeadline, timeout)
		}
		if c.pastDue < 0 || c.canceledIn > timeout+2*time.Second {
			t.Errorf("%s: context canceled %v after the call began, %v after its deadline; want at the %v deadline", what, c.canceledIn, c.pastDue, timeout)
		}
		if !errors.Is(c.err, context.DeadlineExceeded) {
			t.Errorf("%s: context error %v, want context.DeadlineExceeded", what, c.err)
		}
	}
	var slow []call
	for _, c := range calls {
		if c.key == "slow" {
			slow = append(slow, c)
		}
	}
	if len(slow) != 3 {
		t.Fatalf("slow delivered %d times, want 3", len(slow))
	}
	for i, c := range slow {
		if c.attempt != int32(i+1) {
			t.Errorf("slow delivery %d has attempt %d", i+1, c.attempt)
		}
		if i < 2 {
			checkBound(fmt.Sprintf("slow attempt %d", c.attempt), c)
		}
		if i > 0 && (c.errHeader != want || c.errTypeHdr != fmt.Sprintf("%T", context.DeadlineExceeded)) {
			t.Errorf("slow attempt %d: %s %q, %s %q; want %q and %T", c.attempt, retry.HeaderError, c.errHeader,
				retry.HeaderErrorType, c.errTypeHdr, want, context.DeadlineExceeded)
		}
	}
	retried := s.eventsOf(listener.EventRetried)
	if len(retried) != 2 {
		t.Errorf("%d retried events, want 2 (slow from main and from tier 1)", len(retried))
	}
	for _, e := range retried {
		if !errors.Is(e.Err, context.DeadlineExceeded) || e.Latency < timeout {
			t.Errorf("retried event from %s: error %v latency %v, want context.DeadlineExceeded after %v", e.Topic, e.Err, e.Latency, timeout)
		}
	}
	for i, c := range dltCalls {
		checkBound(fmt.Sprintf("DLT handler call %d", i+1), c)
	}
	for _, e := range s.eventsOf(listener.EventDLTHandlerFailed) {
		if !errors.Is(e.Err, context.DeadlineExceeded) {
			t.Errorf("DLT handler failure event error %v, want context.DeadlineExceeded", e.Err)
		}
	}
	t.Logf("FIGURES HandlerTimeout %v, handler honouring ctx: 2 calls canceled after %v and %v, retried with %q; DLT handler canceled after %v and %v, given up on",
		timeout, slow[0].canceledIn.Round(time.Millisecond), slow[1].canceledIn.Round(time.Millisecond), want,
		dltCalls[0].canceledIn.Round(time.Millisecond), dltCalls[1].canceledIn.Round(time.Millisecond))
}

// HandlerTimeout only cancels the handler's context: a handler that ignores
// its context is not interrupted. Its call goes on past the timeout, the
// records behind it on its partition wait for it (order is kept), and what
// it finally returns decides the outcome — here nil, so the record is
// handled once, not retried, and committed.
func TestMisbehavingHandlerTimeoutDoesNotInterruptHandlerIgnoringContext(t *testing.T) {
	f := newFixture(t, 1)
	const timeout = 100 * time.Millisecond
	release := make(chan struct{})
	ctxDone := make(chan struct{})
	var returnedAt atomic.Pointer[time.Time]
	var mu sync.Mutex
	at := map[string][]time.Time{}
	h := listener.HandlerFunc(func(ctx context.Context, r *kgo.Record) error {
		key := string(r.Key)
		mu.Lock()
		at[key] = append(at[key], time.Now())
		first := len(at[key]) == 1
		mu.Unlock()
		if key == "hog" && first {
			context.AfterFunc(ctx, func() { close(ctxDone) })
			<-release // ignores ctx
			now := time.Now()
			returnedAt.Store(&now)
		}
		return nil
	})
	s := newScript(nil) // for its events
	l := f.listener(t, h, listener.HandlerTimeout(timeout), listener.Hooks(s))
	f.c.Produce(rec(f.topic, "hog"), rec(f.topic, "next"))
	released := false
	defer func() {
		if !released {
			close(release)
		}
	}()
	started(t, l)
	select {
	case <-ctxDone:
	case <-time.After(waitFor):
		t.Fatalf("the hog's context was not canceled within %v of a %v HandlerTimeout", waitFor, timeout)
	}
	// The context expired; the call is not interrupted and nothing moved on.
	mu.Lock()
	nextEarly := len(at["next"])
	mu.Unlock()
	if returnedAt.Load() != nil || nextEarly != 0 || len(s.eventsOf(listener.EventRetried)) != 0 {
		t.Fatalf("at the timeout: hog returned %v, next delivered %d times, %d retries; want the hog still running and nothing else",
			returnedAt.Load() != nil, nextEarly, len(s.eventsOf(listener.EventRetried)))
	}
	close(release)
	released = true
	kafkatest.Eventually(t, waitFor, func() bool { return f.c.Committed(f.group, f.topic)[0] == 2 }, "both records committed")

	mu.Lock()
	defer mu.Unlock()
	if len(at["hog"]) != 1 || len(at["next"]) != 1 {
		t.Errorf("hog delivered %d times, next %d; want once each", len(at["hog"]), len(at["next"]))
	}
	if ret := returnedAt.Load(); ret != nil && len(at["next"]) > 0 && at["next"][0].Before(*ret) {
		t.Errorf("next delivered %v before the hog returned: the partition moved on", ret.Sub(at["next"][0]))
	}
	var hogHandled []listener.Event
	for _, e := range s.eventsOf(listener.EventHandled) {
		if e.Offset == 0 {
			hogHandled = append(hogHandled, e)
		}
	}
	if len(hogHandled) != 1 || hogHandled[0].Latency < timeout {
		t.Errorf("hog handled events %+v, want one with a latency past the %v timeout", hogHandled, timeout)
	}
	if n := len(s.eventsOf(listener.EventRetried)) + len(s.eventsOf(listener.EventDeadLettered)); n != 0 {
		t.Errorf("%d records retried or dead-lettered, want 0", n)
	}
	if len(hogHandled) == 1 {
		t.Logf("FIGURES HandlerTimeout %v, handler ignoring ctx: ran %v, not interrupted, handled once; the record behind it waited",
			timeout, hogHandled[0].Latency.Round(time.Millisecond))
	}
}

// misbehaveDLTFunc adapts a function of the context and record to dlt.Handler.
type misbehaveDLTFunc func(ctx context.Context, rec *kgo.Record) error

func (f misbehaveDLTFunc) HandleDLT(ctx context.Context, rec *kgo.Record, _ retry.State) error {
	return f(ctx, rec)
}
