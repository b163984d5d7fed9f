package listener

import (
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/kretry/kretry/internal/kafkatest"
)

func pausedSet(cl *kgo.Client) map[topicPartition]bool {
	out := map[topicPartition]bool{}
	for t, ps := range cl.PauseFetchPartitions(nil) {
		for _, p := range ps {
			out[topicPartition{t, p}] = true
		}
	}
	return out
}

// The pauser carries each partition's last request to the client, and a
// rebalance's direct resume wins over requests still pending for the
// partitions it covers.
func TestPauserAppliesLastRequestAndRebalanceWins(t *testing.T) {
	cl, err := kgo.NewClient(kgo.SeedBrokers("127.0.0.1:1")) // never dialed
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	p := newPauser()
	p.start(cl)
	defer p.close()

	const n = 5000
	for i := range n {
		p.set(topicPartition{"t", int32(i)}, true)
	}
	p.set(topicPartition{"t", 7}, false) // the last request wins
	kafkatest.Eventually(t, 10*time.Second, func() bool { return len(pausedSet(cl)) == n-1 },
		"%d partitions paused", n-1)
	if pausedSet(cl)[topicPartition{"t", 7}] {
		t.Fatalf("t[7] paused; its last request was a resume")
	}

	// A pause still pending when the partition is revoked or assigned
	// must not land after the rebalance's resume.
	p.applyMu.Lock() // hold batches back, as if the pauser were busy
	p.set(topicPartition{"u", 0}, true)
	resumed := make(chan struct{})
	go func() { // waits for applyMu, as a rebalance callback would
		defer close(resumed)
		p.resumeNow(cl, map[string][]int32{"u": {0}})
	}()
	p.applyMu.Unlock()
	<-resumed
	p.apply() // anything still pending lands now
	if pausedSet(cl)[topicPartition{"u", 0}] {
		t.Fatalf("u[0] paused after the rebalance resumed it")
	}
}
