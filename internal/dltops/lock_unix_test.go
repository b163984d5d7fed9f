//go:build unix

package dltops

import (
	"context"
	"errors"
	"testing"
)

func TestReplayLockedRun(t *testing.T) {
	dir := t.TempDir()
	unlock, err := lock(dir + "/kretry-replay-r.lock")
	if err != nil {
		t.Fatal(err)
	}
	defer unlock()
	_, err = Replay(context.Background(), ReplayConfig{Run: "r", DLTs: []string{"d"}, StateDir: dir})
	if !errors.Is(err, ErrLocked) {
		t.Errorf("second attempt while locked: %v, want ErrLocked", err)
	}
}
