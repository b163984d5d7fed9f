package listener

import (
	"context"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/kretry/kretry/strategy"
)

// Tracer wraps every delivery of a record to the handler or the DLT
// handler, for tracing. kretry does not depend on a tracing library: the
// module github.com/kretry/kretry/contrib/kretryotel implements Tracer
// with OpenTelemetry and franz-go's kotel plugin.
//
// StartDelivery is called before the handler runs, on the worker's
// goroutine. The context it returns is passed to the handler (under the
// handler timeout) and becomes the Context of every record kretry
// publishes for this delivery — the retry-tier or DLT record — so a
// producer hook (kotel's, say) parents its publish span there and injects
// it into the record's headers; the next hop's delivery can then link back
// to it. finish is called exactly once, with the delivery's outcome, once
// kretry has decided it (before a publish is acknowledged). It must not
// block.
type Tracer interface {
	StartDelivery(ctx context.Context, rec *kgo.Record, d Delivery) (_ context.Context, finish func(Outcome))
}

// Delivery describes one delivery of a record to a handler.
type Delivery struct {
	Group   string
	Role    strategy.TopicRole // main topic, retry tier or DLT
	Attempt int32              // 1 for the first delivery; on a DLT, the deliveries before it was dead-lettered
	Due     time.Time          // a retry record's due time; zero otherwise
}

// Outcome is what a delivery came to.
type Outcome struct {
	// Kind is EventHandled, EventRetried, EventDeadLettered, EventDropped
	// or EventDLTHandlerFailed, or zero when the listener stopped during
	// the delivery and the record will be delivered again.
	Kind   EventKind
	Err    error  // the handler's error; nil when handled
	Target string // the tier or DLT the record is published to
	Reason string // why it was dead-lettered or dropped
}

// delivery carries one delivery's context from the handler call to the
// publishes it causes.
type delivery struct {
	ctx    context.Context // the handler's context, before the handler timeout
	traced bool
	finish func(Outcome)
	out    Outcome
	batch  int // the size of the record's batch; 0 for a single-record delivery
	// outs holds, exactly once, what the handler produced (Produce) until
	// the delivery's outcome is known; nil at least once.
	outs *outputs
}

// batchSize returns the size of d's batch: 0 for a single-record delivery
// or none.
func (d *delivery) batchSize() int {
	if d == nil {
		return 0
	}
	return d.batch
}

// startDelivery begins a delivery of rec; without a Tracer it costs
// nothing.
func (p *part) startDelivery(rec *kgo.Record, role strategy.TopicRole, attempt int32, due time.Time) delivery {
	c := p.c
	if c.cfg.tracer == nil {
		d := delivery{ctx: c.handlerCtx}
		p.withOutputs(&d, false)
		return d
	}
	ctx, finish := c.cfg.tracer.StartDelivery(c.handlerCtx, rec,
		Delivery{Group: c.cfg.group, Role: role, Attempt: attempt, Due: due})
	if ctx == nil {
		ctx = c.handlerCtx
	}
	d := delivery{ctx: ctx, traced: true, finish: finish}
	p.withOutputs(&d, true)
	return d
}

// withOutputs gives d, exactly once, the part's output slot (part.slot),
// which its handler's Produce calls fill, in its context: the part's own
// context for the slot when d's is the listener's, so that an untraced
// delivery allocates nothing.
func (p *part) withOutputs(d *delivery, traced bool) {
	if p.c.eos == nil {
		return
	}
	p.slot.open()
	d.outs = &p.slot
	if traced {
		d.ctx = context.WithValue(d.ctx, outputsKey{}, d.outs)
		return
	}
	if p.slotCtx == nil {
		p.slotCtx = context.WithValue(p.c.handlerCtx, outputsKey{}, &p.slot)
	}
	d.ctx = p.slotCtx
}

// end reports the delivery's outcome to the Tracer.
func (d *delivery) end() {
	if d.finish != nil {
		d.finish(d.out)
		d.finish = nil
	}
}

// decided records what the delivery came to.
func (d *delivery) decided(kind EventKind, err error, target, reason string) {
	if d != nil {
		d.out = Outcome{Kind: kind, Err: err, Target: target, Reason: reason}
	}
}

// recordContext is the Context for a record published for d: the
// delivery's values without its cancellation (the publish outlives the
// handler call).
func (d *delivery) recordContext() context.Context {
	if d == nil || !d.traced {
		return nil
	}
	return context.WithoutCancel(d.ctx)
}
