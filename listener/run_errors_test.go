package listener_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/kretry/kretry/internal/kafkatest"
	"github.com/kretry/kretry/listener"
)

// runErr runs l until it fails and returns its error; the failures tested
// here happen at start-up, before anything is consumed.
func runErr(t *testing.T, l *listener.Listener) error {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	err := l.Run(ctx)
	if ctx.Err() != nil {
		t.Fatalf("Run did not fail at start-up: %v", err)
	}
	return err
}

var runErrQuiet = listener.Logger(slog.New(slog.NewTextHandler(io.Discard, nil)))

// Run's start-up failures can be told apart with errors.Is; the messages
// are the specific ones.
func TestRunErrorsAreSentinels(t *testing.T) {
	c := kafkatest.New(t)
	present, missing := c.Name("present"), c.Name("missing")
	c.CreateTopic(present, 1)

	l, err := listener.New(c.Seeds, missing, nopHandler, runErrQuiet)
	if err != nil {
		t.Fatal(err)
	}
	err = runErr(t, l)
	if !errors.Is(err, listener.ErrMainTopicMissing) || errors.Is(err, listener.ErrTopicsMissing) {
		t.Errorf("main topic missing: errors.Is(ErrMainTopicMissing) false: %v", err)
	}
	if want := fmt.Sprintf("listener: main topic %q: ", missing); !strings.HasPrefix(err.Error(), want) ||
		!strings.HasSuffix(err.Error(), "; create it first (kretry creates only retry and DLT topics)") {
		t.Errorf("message changed: %v", err)
	}

	// A Listener runs once, even when its first run failed.
	if err := l.Run(context.Background()); !errors.Is(err, listener.ErrAlreadyRun) || err.Error() != "listener: Run called twice; a Listener runs once" {
		t.Errorf("second Run: %v", err)
	}

	l, err = listener.New(c.Seeds, present, nopHandler, runErrQuiet, listener.CreateTopics(false))
	if err != nil {
		t.Fatal(err)
	}
	err = runErr(t, l)
	if !errors.Is(err, listener.ErrTopicsMissing) || errors.Is(err, listener.ErrMainTopicMissing) {
		t.Errorf("tiers missing: errors.Is(ErrTopicsMissing) false: %v", err)
	}
	want := fmt.Sprintf("listener: topics %s-retry, %s-dlt do not exist and CreateTopics(false) forbids creating them; create them (see `kretry topics plan`) or allow creation", present, present)
	if err == nil || err.Error() != want {
		t.Errorf("message:\n%v\nwant:\n%s", err, want)
	}

	// RunAll keeps them.
	ls, err := listener.Register(c.Seeds, tagged(tf{"Missing", "topic=" + missing, nopHandler}), runErrQuiet)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := listener.RunAll(ctx, ls...); !errors.Is(err, listener.ErrMainTopicMissing) {
		t.Errorf("RunAll: %v", err)
	}
}
