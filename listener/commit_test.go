package listener_test

import (
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kretry/kretry/internal/kafkatest"
	"github.com/kretry/kretry/listener"
)

func TestCommitFailureRedeliversEverything(t *testing.T) {
	f := newFixture(t, 1)
	if f.c.Fake == nil {
		t.Skip("needs kfake fault injection")
	}
	s := newScript(failTimes(nil))
	fault := f.c.Fake.Fault(kfake.Fault{Keys: []kmsg.Key{kmsg.OffsetCommit}, Group: f.group,
		Err: kerr.CoordinatorNotAvailable, Count: -1})
	l := f.listener(t, s, listener.ShutdownTimeout(2*time.Second), listener.RevokeTimeout(time.Second))
	f.c.Produce(rec(f.topic, "a"), rec(f.topic, "b"))
	stop := started(t, l)
	kafkatest.Eventually(t, waitFor, func() bool { return s.count("a") == 1 && s.count("b") == 1 }, "handled once")
	_ = stop()
	if got := f.c.Committed(f.group, f.topic); len(got) != 0 {
		t.Fatalf("committed %v although every commit failed", got)
	}
	fault.Remove()
	l2 := f.listener(t, s)
	started(t, l2)
	kafkatest.Eventually(t, waitFor, func() bool { return s.count("a") == 2 && s.count("b") == 2 },
		"records redelivered to the next consumer")
}
