package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"

	"github.com/twmb/franz-go/pkg/kgo"

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
	rctx, cancel := context.WithCancel(ctx)
	errc := make(chan error, 1)
	go func() { errc <- l.Run(rctx) }()
	var err error
	select {
	case <-tr.Done():
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
		k := string(r.Key)
		tr.Begin(k)
		if _, retried := retry.FromContext(ctx); !retried {
			tr.Failed(k)
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

func (kretrySystem) Precision(ctx context.Context, env *Env, in PrecisionInput) (Precision, error) {
	tr := NewTracker(in.Records, in.Delays)
	h := listener.HandlerFunc(func(_ context.Context, r *kgo.Record) error {
		k := string(r.Key)
		if tr.Begin(k) < in.Fails(KeyIndex(k)) {
			tr.Failed(k)
			return errFail
		}
		tr.SucceededIn(r.Partition)
		return nil
	})
	ready := make(chan struct{}, 1)
	hook := listener.HookFunc(func(e listener.Event) {
		if e.Kind == listener.EventAssigned {
			select {
			case ready <- struct{}{}:
			default:
			}
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
	return tr.Precision(fmt.Sprintf("tiers %v, FetchMaxWait %v", in.Delays, listener.DefaultFetchMaxWait)), nil
}
