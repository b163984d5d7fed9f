package kretrytest

import (
	"context"
	"errors"
	"fmt"

	"github.com/kretry/kretry/listener"
)

// errStopped is the cause of a Running's context once its listeners have
// returned without an error.
var errStopped = errors.New("kretrytest: the listeners stopped")

// Running is a set of listeners running in the background, started by
// Start. Stop them with Stop.
type Running struct {
	life context.Context    // done once the listeners have returned
	stop context.CancelFunc // cancels the listeners' context
	done chan struct{}      // closed when the listeners have returned
	err  error              // what they returned, once done is closed
}

// Start runs the listeners (listener.RunAll) in a goroutine until ctx is
// canceled, Stop is called, or one of them fails, which stops the others.
func Start(ctx context.Context, ls ...*listener.Listener) *Running {
	runCtx, stop := context.WithCancel(ctx)
	life, end := context.WithCancelCause(ctx)
	r := &Running{life: life, stop: stop, done: make(chan struct{})}
	go func() {
		defer close(r.done)
		r.err = listener.RunAll(runCtx, ls...)
		if err := r.err; err != nil {
			end(fmt.Errorf("kretrytest: a listener stopped: %w", err))
		} else {
			end(errStopped)
		}
	}()
	return r
}

// Context returns a context that is done once the listeners have stopped
// (or once the context given to Start is done), with the reason as its
// cause: the listeners' error when one failed. Pass it to Recorder.Wait,
// so that a wait ends as soon as the listeners cannot make progress.
func (r *Running) Context() context.Context { return r.life }

// Stop cancels the listeners' context, waits until they have shut down
// (drained, committed and left their group, within their
// ShutdownTimeout) and returns what listener.RunAll returned: nil after a
// clean stop. Stop may be called more than once, and returns the same
// each time.
func (r *Running) Stop() error {
	r.stop()
	<-r.done
	return r.err
}
