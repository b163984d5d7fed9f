package listener_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/kretry/kretry/dlt"
	"github.com/kretry/kretry/internal/kafkatest"
	"github.com/kretry/kretry/listener"
	"github.com/kretry/kretry/retry"
	"github.com/kretry/kretry/strategy"
)

type spanKey struct{}

// spanTracer names each delivery "span-N" in the handler's context and
// records what each came to, and which span each record published for it
// carried (seen by a producer hook, as kotel would see it).
type spanTracer struct {
	mu         sync.Mutex
	n          int
	deliveries map[string]listener.Delivery
	outcomes   map[string]listener.Outcome
	handlerCtx map[string]bool   // span seen in the handler's context
	published  map[string]string // topic of a published record → span of its context
}

func newSpanTracer() *spanTracer {
	return &spanTracer{deliveries: map[string]listener.Delivery{}, outcomes: map[string]listener.Outcome{},
		handlerCtx: map[string]bool{}, published: map[string]string{}}
}

func (s *spanTracer) StartDelivery(ctx context.Context, rec *kgo.Record, d listener.Delivery) (context.Context, func(listener.Outcome)) {
	s.mu.Lock()
	s.n++
	span := fmt.Sprintf("span-%d", s.n)
	s.deliveries[span] = d
	s.mu.Unlock()
	return context.WithValue(ctx, spanKey{}, span), func(o listener.Outcome) {
		s.mu.Lock()
		defer s.mu.Unlock()
		if _, dup := s.outcomes[span]; dup {
			panic("finish called twice for " + span)
		}
		s.outcomes[span] = o
	}
}

func (s *spanTracer) OnProduceRecordBuffered(r *kgo.Record) {
	if r.Context == nil {
		return
	}
	if span, ok := r.Context.Value(spanKey{}).(string); ok {
		s.mu.Lock()
		s.published[r.Topic] = span
		s.mu.Unlock()
	}
}

// spanOf returns the span whose delivery had role and attempt.
func (s *spanTracer) spanOf(role strategy.TopicRole, attempt int32) (string, listener.Outcome, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for span, d := range s.deliveries {
		if d.Role == role && d.Attempt == attempt {
			o, done := s.outcomes[span]
			return span, o, done
		}
	}
	return "", listener.Outcome{}, false
}

// A Tracer wraps every delivery, its context reaches the handler and the
// records published for it, and it learns each delivery's outcome: the
// chain main → tier → DLT can be linked hop by hop.
func TestTracerFollowsEveryHop(t *testing.T) {
	f := newFixture(t, 1)
	tr := newSpanTracer()
	h := listener.HandlerFunc(func(ctx context.Context, rec *kgo.Record) error {
		span, _ := ctx.Value(spanKey{}).(string)
		tr.mu.Lock()
		tr.handlerCtx[span] = true
		tr.mu.Unlock()
		return errBoom
	})
	var dltSpan string
	dltDone := make(chan struct{})
	l, err := listener.New(f.c.Seeds, f.topic, h, listener.Group(f.group), listener.Logger(quiet(t)),
		listener.FetchMaxWait(20*time.Millisecond), listener.Attempts(2),
		listener.Backoff(strategy.FixedBackoff(50*time.Millisecond)), listener.Tracing(tr),
		listener.DLTHandler(dlt.HandlerFunc(func(ctx context.Context, _ *kgo.Record, _ retry.State) error {
			dltSpan, _ = ctx.Value(spanKey{}).(string)
			close(dltDone)
			return nil
		})),
		listener.ClientOpts(kgo.WithHooks(tr)))
	if err != nil {
		t.Fatal(err)
	}
	f.c.Produce(rec(f.topic, "k"))
	started(t, l)
	select {
	case <-dltDone:
	case <-time.After(waitFor):
		t.Fatal("the record did not reach the DLT handler")
	}
	plan := l.Plan()
	mainSpan, mainOut, ok := tr.spanOf(strategy.RoleMain, 1)
	if !ok || mainOut.Kind != listener.EventRetried || mainOut.Target != plan.Tiers[0].Topic || mainOut.Err == nil {
		t.Errorf("main delivery %s: outcome %+v (finished %v), want retried to %s with the error", mainSpan, mainOut, ok, plan.Tiers[0].Topic)
	}
	tierSpan, tierOut, ok := tr.spanOf(strategy.RoleTier, 2)
	if !ok || tierOut.Kind != listener.EventDeadLettered || tierOut.Target != plan.DLT || tierOut.Reason != listener.ReasonExhausted {
		t.Errorf("tier delivery %s: outcome %+v (finished %v), want dead-lettered to %s as exhausted", tierSpan, tierOut, ok, plan.DLT)
	}
	kafkatest.Eventually(t, waitFor, func() bool {
		_, o, done := tr.spanOf(strategy.RoleDLT, 2)
		return done && o.Kind == listener.EventHandled
	}, "the DLT delivery finished as handled")
	_, dltOut, _ := tr.spanOf(strategy.RoleDLT, 2)
	tr.mu.Lock()
	defer tr.mu.Unlock()
	if !tr.handlerCtx[mainSpan] || !tr.handlerCtx[tierSpan] {
		t.Errorf("handler contexts carried spans %v, want %s and %s", tr.handlerCtx, mainSpan, tierSpan)
	}
	if got := tr.published[plan.Tiers[0].Topic]; got != mainSpan {
		t.Errorf("the tier record was published under %q, want the main delivery's %q", got, mainSpan)
	}
	if got := tr.published[plan.DLT]; got != tierSpan {
		t.Errorf("the DLT record was published under %q, want the tier delivery's %q", got, tierSpan)
	}
	if d := tr.deliveries[tierSpan]; d.Due.IsZero() || d.Group != f.group {
		t.Errorf("tier delivery %+v: want its due time and group %s", d, f.group)
	}
	if dltSpan == "" || dltOut.Kind != listener.EventHandled {
		t.Errorf("DLT handler context span %q, outcome %+v", dltSpan, dltOut)
	}
}

// Events say which role their topic plays, and deliveries from a tier say
// how late they started.
func TestEventsCarryRoleAndLateness(t *testing.T) {
	f := newFixture(t, 1)
	s := newScript(failTimes(map[string]int{"k": 1}))
	l := f.listener(t, s, listener.Attempts(2), listener.Backoff(strategy.FixedBackoff(200*time.Millisecond)))
	f.c.Produce(rec(f.topic, "k"))
	started(t, l)
	kafkatest.Eventually(t, waitFor, func() bool { return len(s.eventsOf(listener.EventHandled)) == 1 }, "k handled on retry")
	retried := s.eventsOf(listener.EventRetried)
	if len(retried) != 1 || retried[0].Role != strategy.RoleMain || retried[0].Late != 0 {
		t.Errorf("retried events %+v: want one from the main topic, not late", retried)
	}
	h := s.eventsOf(listener.EventHandled)[0]
	if h.Role != strategy.RoleTier || h.Late < 0 || h.Late > 5*time.Second {
		t.Errorf("handled event %+v: want role tier and a lateness in [0, 5s)", h)
	}
	for _, e := range s.eventsOf(listener.EventAssigned) {
		if e.Role == strategy.RoleUnknown {
			t.Errorf("assigned event %+v has no role", e)
		}
	}
}
