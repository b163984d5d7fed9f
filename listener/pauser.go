package listener

import (
	"sync"

	"github.com/twmb/franz-go/pkg/kgo"
)

// pauser applies partitions' pause and resume requests to the client in
// batches. franz-go copies its whole set of paused partitions on every
// PauseFetchPartitions and ResumeFetchPartitions call, so one call per
// partition costs O(paused partitions) each: with 10,000 partitions waiting
// in tiers, pausing them one by one took 10 s and resuming them when they
// all came due 8 s. Batched, each takes one copy per batch.
//
// The parts' own pause reasons stay the truth; the pauser only carries the
// last request per partition to the client, shortly after it was made.
type pauser struct {
	cl   *kgo.Client
	kick chan struct{}
	done chan struct{}

	mu      sync.Mutex
	pending map[topicPartition]bool // true: pause, false: resume
	closed  bool

	// applyMu orders batches against the rebalance callbacks, which
	// forget the pending requests of the partitions they assign or revoke
	// and set the client's state for them directly.
	applyMu sync.Mutex
}

// newPauser returns a pauser that keeps requests until start gives it the
// client. (The client may call the rebalance callbacks, which use the
// pauser, before its constructor has returned.)
func newPauser() *pauser {
	return &pauser{kick: make(chan struct{}, 1), done: make(chan struct{}),
		pending: make(map[topicPartition]bool)}
}

// start sets the client and starts applying requests.
func (p *pauser) start(cl *kgo.Client) {
	p.applyMu.Lock()
	p.cl = cl
	p.applyMu.Unlock()
	go p.loop()
	select { // apply what was asked before the start
	case p.kick <- struct{}{}:
	default:
	}
}

// set records that tp should be paused (on) or resumed.
func (p *pauser) set(tp topicPartition, on bool) {
	p.mu.Lock()
	if p.closed { // the listener has stopped; so has fetching
		p.mu.Unlock()
		return
	}
	p.pending[tp] = on
	select { // under mu: close cannot close kick in between
	case p.kick <- struct{}{}:
	default:
	}
	p.mu.Unlock()
}

func (p *pauser) loop() {
	defer close(p.done)
	for range p.kick {
		p.apply()
	}
}

// apply sends every pending request to the client: one pause call and one
// resume call for the whole batch.
func (p *pauser) apply() {
	p.applyMu.Lock()
	defer p.applyMu.Unlock()
	p.mu.Lock()
	if len(p.pending) == 0 || p.cl == nil {
		p.mu.Unlock()
		return
	}
	batch := p.pending
	p.pending = make(map[topicPartition]bool, len(batch))
	p.mu.Unlock()
	pause, resume := map[string][]int32{}, map[string][]int32{}
	for tp, on := range batch {
		if on {
			pause[tp.topic] = append(pause[tp.topic], tp.partition)
		} else {
			resume[tp.topic] = append(resume[tp.topic], tp.partition)
		}
	}
	if len(pause) > 0 {
		p.cl.PauseFetchPartitions(pause)
	}
	if len(resume) > 0 {
		p.cl.ResumeFetchPartitions(resume)
	}
}

// resumeNow drops the pending requests of tps and resumes them in the
// client at once: the rebalance callbacks' way to start assigned partitions
// unpaused and to leave revoked ones unpaused, whatever their old parts
// asked for.
func (p *pauser) resumeNow(cl *kgo.Client, tps map[string][]int32) {
	p.applyMu.Lock()
	defer p.applyMu.Unlock()
	p.mu.Lock()
	for topic, ps := range tps {
		for _, pn := range ps {
			delete(p.pending, topicPartition{topic, pn})
		}
	}
	p.mu.Unlock()
	cl.ResumeFetchPartitions(tps)
}

// close applies what is pending and stops the pauser.
func (p *pauser) close() {
	p.mu.Lock()
	p.closed = true
	close(p.kick)
	p.mu.Unlock()
	if p.cl != nil { // started
		<-p.done
	}
	p.apply()
}
