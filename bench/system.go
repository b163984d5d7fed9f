package main

import (
	"context"
	"errors"
	"time"
)

// A System is one way of consuming records with retries: kretry, raw
// franz-go, or a peer library. It implements the scenario interfaces it
// supports; the harness skips the others and says so in the table.
type System interface {
	// Name is the short name in the table and the JSON ("kretry", "raw",
	// "watermill", "konsumer", "spring").
	Name() string
}

// ErrUnsupported is returned (wrapped, with the reason) by a scenario a
// system cannot run in a comparable way; the table shows the reason.
var ErrUnsupported = errors.New("unsupported")

// HappyPathInput is S1: Records records of ValueBytes bytes are already in
// Topic, on Partitions partitions. Consume them all from the start with a
// no-op handler, in consumer group Group.
type HappyPathInput struct {
	Topic      string
	Group      string
	Partitions int
	Records    int
	ValueBytes int
}

// RetryHopInput is S2: Records records are already in Topic. Every record's
// first delivery fails; it is retried once through a retry topic with a
// zero delay and then succeeds. Retry topics must be named with Prefix
// (names are unique per run; the harness deletes the topics whose names
// start with Topic once the run is over).
type RetryHopInput struct {
	Topic      string
	Group      string
	Prefix     string
	Partitions int
	Records    int
}

// DeadLetterInput is S2b: Records records are already in Topic. Every
// record fails for good on its first delivery and is published to a
// dead-letter topic; a record counts once Kafka has acknowledged its DLT
// copy. DLT topics must be named with Prefix.
type DeadLetterInput struct {
	Topic      string
	Group      string
	Prefix     string
	Partitions int
	Records    int
}

// Throughput is the result of S1, S2 and S2b. S1 is measured by a Tracker over
// the last 90% of the successes, so that group joins and first fetches,
// which differ between clients, are left out for every system alike. S2 is
// measured end to end, from the first handler call to the last success:
// the successes are the retries, so the failures and forwards before them
// are the work being measured.
type Throughput struct {
	Records int           // successes timed
	Elapsed time.Duration // the time they took
	Note    string        // configuration worth stating in the table

	// Set by the harness around the system's run (its topic filled
	// already): heap allocations in the whole process, kfake included,
	// per record of the input.
	Mallocs, AllocBytes float64
}

// PrecisionInput is S3. The system starts consuming Topic (empty at first)
// in Group and calls Ready; the harness then produces Records records at a
// steady Rate per second, with keys "k<FirstKey>" to
// "k<FirstKey+Records-1>". The record with key index i (the key is
// "k<i>") fails Fails(i) times (1 to len(Delays)) and then succeeds; its
// n-th retry must wait Delays[n-1]. Retry topics are named with Prefix.
type PrecisionInput struct {
	Topic      string
	Group      string
	Prefix     string
	Partitions int
	Records    int
	Rate       int
	Delays     []time.Duration
	// FirstKey is 0 on fresh topics. A Resumer's warm phase runs on the
	// topics and in the group of an earlier phase, whose records had the
	// keys below FirstKey; one of those delivered again (a tier record not
	// yet committed at the earlier phase's end) is handled at once and not
	// counted.
	FirstKey int
	// Ready is called once the system is consuming; production starts then.
	Ready func()
}

// Fails returns how many times the record with key index i fails in S3.
func (in PrecisionInput) Fails(i int) int { return 1 + i%len(in.Delays) }

// Precision is the result of S3: for each retry tier (index into Delays),
// the lateness of every retry delivery, measured in the handler as the
// time of the delivery minus (the time the previous delivery of the same
// record returned its error + the tier's delay). Negative lateness is an
// early delivery.
type Precision struct {
	Lateness [][]time.Duration // [tier][sample]
	Note     string
	// TierTopics are the retry topics, in hop order (set by a Resumer:
	// the floor writes to them).
	TierTopics []string
}

// HappyPather runs S1.
type HappyPather interface {
	HappyPath(ctx context.Context, env *Env, in HappyPathInput) (Throughput, error)
}

// RetryHopper runs S2.
type RetryHopper interface {
	RetryHop(ctx context.Context, env *Env, in RetryHopInput) (Throughput, error)
}

// DeadLetterer runs S2b.
type DeadLetterer interface {
	DeadLetter(ctx context.Context, env *Env, in DeadLetterInput) (Throughput, error)
}

// Precisioner runs S3.
type Precisioner interface {
	Precision(ctx context.Context, env *Env, in PrecisionInput) (Precision, error)
}

// A Resumer is a Precisioner that can run S3 a second time on the topics
// and in the consumer group of a first run that has finished (every record
// handled and committed), honouring PrecisionInput.FirstKey. The harness then
// measures S3 twice: on fresh topics, and on the same topics once they have
// been written to ("warm tiers", docs/benchmarks.md).
type Resumer interface {
	Precisioner
	Resumes()
}

// A Capper is a system that cannot run a scenario at full size in a
// reasonable time. Cap returns the records to use instead (0: no cap) and
// why; the table states the cap. Rates stay comparable; a capped S3 runs
// at the same input rate for a shorter time.
type Capper interface {
	Cap(scenario string) (records int, why string)
}
