package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/kretry/kretry/dlt"
	"github.com/kretry/kretry/listener"
	"github.com/kretry/kretry/retry"
	"github.com/kretry/kretry/strategy"
)

// kretrySystem runs the scenarios with a kretry listener at its defaults,
// except where a scenario names a setting.
type kretrySystem struct{}

func (kretrySystem) Name() string { return "kretry" }

var errFail = errors.New("bench: induced failure")

func quietLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// runListener runs l until tr is done or ctx ends, then stops it.
func runListener(ctx context.Context, l *listener.Listener, tr *Tracker) error {
	return runListenerThen(ctx, l, tr, nil)
}

// runListenerThen is runListener that also calls whenDone (if not nil)
// once tr is done, before l is stopped, and returns its error.
func runListenerThen(ctx context.Context, l *listener.Listener, tr *Tracker, whenDone func() error) error {
	rctx, cancel := context.WithCancel(ctx)
	errc := make(chan error, 1)
	go func() { errc <- l.Run(rctx) }()
	var err error
	select {
	case <-tr.Done():
		if whenDone != nil {
			err = whenDone()
		}
	case err = <-errc:
		cancel()
		if err == nil {
			err = ctx.Err()
		}
		tr.Close()
		return fmt.Errorf("kretry: Run returned before the scenario finished: %v", err)
	case <-ctx.Done():
		err = fmt.Errorf("%w (%d of %d successes)", errTimeout, tr.Successes(), tr.want)
	}
	cancel()
	if rerr := <-errc; rerr != nil && err == nil {
		err = rerr
	}
	tr.Close()
	return err
}

func (kretrySystem) HappyPath(ctx context.Context, env *Env, in HappyPathInput) (Throughput, error) {
	tr := NewTracker(in.Records, nil)
	h := listener.HandlerFunc(func(_ context.Context, r *kgo.Record) error {
		k := string(r.Key)
		tr.Begin(k)
		tr.SucceededIn(r.Partition)
		return nil
	})
	l, err := listener.New(env.Brokers, in.Topic, h, listener.Group(in.Group), listener.Logger(quietLogger()))
	if err != nil {
		return Throughput{}, err
	}
	if err := runListener(ctx, l, tr); err != nil {
		return Throughput{}, err
	}
	return tr.Throughput("defaults"), nil
}

func (kretrySystem) RetryHop(ctx context.Context, env *Env, in RetryHopInput) (Throughput, error) {
	tr := NewTracker(in.Records, nil)
	h := listener.HandlerFunc(func(ctx context.Context, r *kgo.Record) error {
		tr.Begin(string(r.Key))
		// The retry is told by its context; Tracker.Failed, a per-key
		// count for handlers that cannot tell (watermill's), is not
		// needed, and costs a map insert per record.
		if _, retried := retry.FromContext(ctx); !retried {
			return errFail
		}
		tr.SucceededIn(r.Partition)
		return nil
	})
	l, err := listener.New(env.Brokers, in.Topic, h, listener.Group(in.Group), listener.Logger(quietLogger()),
		listener.Attempts(2), listener.Backoff(strategy.ListBackoff(0)))
	if err != nil {
		return Throughput{}, err
	}
	if err := runListener(ctx, l, tr); err != nil {
		return Throughput{}, err
	}
	return tr.EndToEnd("1 tier, 0 ms, acks=all"), nil
}

// DeadLetter: the handler returns strategy.Permanent, so each record goes
// straight to the DLT. A record counts once Kafka has acknowledged its DLT
// copy, seen by a franz-go hook on the listener's client (the listener's
// own Hooks would switch on its per-delivery clock reads). The listener
// also reads its DLT back and calls the DLT handler, as it always does;
// that work is part of what is measured, and the handler is a no-op.
func (kretrySystem) DeadLetter(ctx context.Context, env *Env, in DeadLetterInput) (Throughput, error) {
	tr := NewTracker(in.Records, nil)
	h := listener.HandlerFunc(func(_ context.Context, r *kgo.Record) error {
		tr.Begin(string(r.Key))
		return strategy.Permanent(errFail)
	})
	noop := dlt.HandlerFunc(func(context.Context, *kgo.Record, retry.State) error { return nil })
	l, err := listener.New(env.Brokers, in.Topic, h, listener.Group(in.Group), listener.Logger(quietLogger()),
		listener.DLTHandler(noop), listener.ClientOpts(kgo.WithHooks(dltAcks{tr})))
	if err != nil {
		return Throughput{}, err
	}
	if err := runListener(ctx, l, tr); err != nil {
		return Throughput{}, err
	}
	return tr.EndToEnd("defaults, strategy.Permanent, no-op DLT handler (the DLT is read back)"), nil
}

// dltAcks counts each record the listener's client produced and Kafka
// acknowledged; in S2b every one is a DLT publish.
type dltAcks struct{ tr *Tracker }

func (a dltAcks) OnProduceRecordUnbuffered(r *kgo.Record, err error) {
	if err == nil {
		a.tr.SucceededIn(r.Partition)
	}
}

// Resumes: a listener stopped after S3's first phase has committed every
// record it handled, so a new one in the same group starts after them.
func (kretrySystem) Resumes() {}

func (kretrySystem) Precision(ctx context.Context, env *Env, in PrecisionInput) (Precision, error) {
	tr := NewTracker(in.Records, in.Delays)
	h := listener.HandlerFunc(func(_ context.Context, r *kgo.Record) error {
		k := string(r.Key)
		i := KeyIndex(k)
		if i < in.FirstKey {
			return nil // an earlier phase's record delivered again: not this phase's to count
		}
		if tr.Begin(k) < in.Fails(i) {
			tr.Failed(k)
			return errFail
		}
		tr.SucceededIn(r.Partition)
		return nil
	})
	ready := make(chan struct{}, 1)
	// How long forwards take to be acknowledged, per tier: a retry cannot
	// be handled before its record is in the tier, so a forward slower
	// than the tier's delay makes the retry late by the difference.
	// Forwards slower than the shortest tier's delay are also counted, with
	// when they were made (since the first), to tell a start-up stall
	// from a steady tail.
	var (
		fwdMu               sync.Mutex
		firstFwd            time.Time
		slow                int
		slowFirst, slowLast time.Time
	)
	fwd := map[time.Duration][]time.Duration{}
	hook := listener.HookFunc(func(e listener.Event) {
		switch e.Kind {
		case listener.EventAssigned:
			select {
			case ready <- struct{}{}:
			default:
			}
		case listener.EventRetried:
			delay := in.Delays[min(int(e.Attempt)-1, len(in.Delays)-1)]
			at := e.Due.Add(-delay)
			took := time.Since(at)
			fwdMu.Lock()
			fwd[delay] = append(fwd[delay], took)
			if firstFwd.IsZero() || at.Before(firstFwd) {
				firstFwd = at
			}
			if took > in.Delays[0] {
				if slow == 0 || at.Before(slowFirst) {
					slowFirst = at
				}
				if at.After(slowLast) {
					slowLast = at
				}
				slow++
			}
			fwdMu.Unlock()
		}
	})
	l, err := listener.New(env.Brokers, in.Topic, h, listener.Group(in.Group), listener.Logger(quietLogger()),
		listener.Attempts(len(in.Delays)+1), listener.Backoff(strategy.ListBackoff(in.Delays...)),
		listener.Hooks(hook))
	if err != nil {
		return Precision{}, err
	}
	go func() {
		select {
		case <-ready:
			in.Ready()
		case <-ctx.Done():
		}
	}()
	if err := runListener(ctx, l, tr); err != nil {
		return Precision{}, err
	}
	note := fmt.Sprintf("tiers %v, FetchMaxWait %v; forward acknowledged after (p50/p99 per tier):", in.Delays, listener.DefaultFetchMaxWait)
	fwdMu.Lock()
	for _, d := range in.Delays {
		if t := summarize(d, fwd[d]); t.Samples > 0 {
			note += fmt.Sprintf(" %v: %s/%s", d, ms(t.P50), ms(t.P99))
		}
	}
	if slow > 0 {
		note += fmt.Sprintf("; %d forwards acknowledged after more than %v, made %v to %v after the first forward",
			slow, in.Delays[0], slowFirst.Sub(firstFwd).Round(100*time.Millisecond), slowLast.Sub(firstFwd).Round(100*time.Millisecond))
	}
	fwdMu.Unlock()
	prec := tr.Precision(note)
	for _, t := range l.Plan().Tiers {
		prec.TierTopics = append(prec.TierTopics, t.Topic)
	}
	return prec, nil
}
