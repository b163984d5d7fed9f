package main

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Every exactly-once system runs S1 (or says which variant it equals
// there) and S2 on a small kfake topic, counts exactly the records given,
// and leaves the cluster as exactly once must: every offset committed, no
// transaction open, and — read read_committed — one copy of every record in
// its retry topic (and with out, one output per record).
func TestEOSSystems(t *testing.T) {
	all := eosSystems(map[string]bool{"kretry-eos": true, "kretry-eos-out": true, "raw-eos": true,
		"raw-eos-headers": true, "raw-eos-out": true, "raw-eos-variants": true})
	if len(all) != 9 {
		t.Fatalf("%d exactly-once systems, want 9", len(all))
	}
	for _, s := range all {
		out := s.Name() == "kretry-eos-out" || s.Name() == "raw-eos-out"
		t.Run(s.Name(), func(t *testing.T) {
			t.Run("s1", func(t *testing.T) {
				if r, ok := s.(rawEOSSystem); ok && r.variant && r.v.split {
					_, err := r.HappyPath(peerCtx(t, time.Minute), nil, HappyPathInput{})
					if !errors.Is(err, ErrUnsupported) {
						t.Fatalf("err = %v, want ErrUnsupported", err)
					}
					return
				}
				env, ctx := peerEnv(t), peerCtx(t, 2*time.Minute)
				in := HappyPathInput{Topic: "s1", Group: "s1-group", Partitions: peerPartitions, Records: peerRecords, ValueBytes: 100}
				peerFill(t, ctx, env, in.Topic, in.Partitions, in.Records, in.ValueBytes)
				res, err := s.(HappyPather).HappyPath(ctx, env, in)
				if err != nil {
					t.Fatal(err)
				}
				peerCheckThroughput(t, res, peerRecords-peerRecords/10)
				// The output topic of S1 is deleted by the run (its input
				// topic is shared): nothing but the input is left.
				eosCheck(t, ctx, env, in.Topic, peerRecords, nil)
			})
			t.Run("s2", func(t *testing.T) {
				env, ctx := peerEnv(t), peerCtx(t, 3*time.Minute)
				in := RetryHopInput{Topic: "s2", Group: "s2-g", Prefix: "s2", Partitions: peerPartitions, Records: peerRecords}
				peerFill(t, ctx, env, in.Topic, in.Partitions, in.Records, 100)
				res, err := s.(RetryHopper).RetryHop(ctx, env, in)
				if err != nil {
					t.Fatal(err)
				}
				peerCheckThroughput(t, res, peerRecords)
				want := []string{"retry"}
				if out {
					want = append(want, "out")
				}
				eosCheck(t, ctx, env, in.Topic, peerRecords, want)
			})
		})
	}
}

// When the broker refuses a transaction's offset commit with
// CONCURRENT_TRANSACTIONS — as Kafka does when it follows the previous
// transaction's end too closely — the session aborts the transaction and
// its records come again. Each system still counts every record once,
// handles every record and leaves exactly one committed copy of each in
// its retry topic. Refused: the first transaction (main-topic offsets and
// forwards) and, for raw, the first that commits retry-topic offsets (its
// successes come again: the loop must not count them twice). Not refused
// for kretry: a transaction that settled retries, whose successes its
// handler would count again, and which may be its last, at shutdown — a
// listener whose last transaction aborts leaves its records to be
// delivered again, by design.
func TestEOSAbortedTransaction(t *testing.T) {
	const n = 20_000
	for _, s := range eosSystems(map[string]bool{"kretry-eos": true, "raw-eos": true, "raw-eos-poll-1s": true, "raw-eos-poll-2s": true}) {
		t.Run(s.Name(), func(t *testing.T) {
			c, err := kfake.NewCluster(kfake.NumBrokers(1))
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(c.Close)
			env, ctx := &Env{Brokers: c.ListenAddrs(), Fake: true}, peerCtx(t, 3*time.Minute)
			in := RetryHopInput{Topic: "s2", Group: "s2-g", Prefix: "s2", Partitions: peerPartitions, Records: n}
			peerFill(t, ctx, env, in.Topic, in.Partitions, in.Records, 100)
			_, raw := s.(rawEOSSystem)
			adm, done, err := env.admin()
			if err != nil {
				t.Fatal(err)
			}
			topics, err := adm.ListTopics(ctx, in.Topic)
			done()
			if err != nil {
				t.Fatal(err)
			}
			// Offset commits name topics by ID (TxnOffsetCommit v6+): the
			// one that is not the input's is the retry topic.
			inputID := topics[in.Topic].ID
			var first, retry bool // refused: the first commit; the first of retry-topic offsets (raw)
			c.ControlKey(int16(kmsg.TxnOffsetCommit), func(kreq kmsg.Request) (kmsg.Response, error, bool) {
				c.KeepControl()
				req := kreq.(*kmsg.TxnOffsetCommitRequest)
				refuse := !first
				first = true
				if raw && !retry && slices.ContainsFunc(req.Topics, func(t kmsg.TxnOffsetCommitRequestTopic) bool {
					return t.TopicID != inputID && t.Topic != in.Topic
				}) {
					refuse, retry = true, true
				}
				if !refuse {
					return nil, nil, false
				}
				return concurrentTransactions(req), nil, true
			})
			res, err := s.(RetryHopper).RetryHop(ctx, env, in)
			if err != nil {
				t.Fatal(err)
			}
			peerCheckThroughput(t, res, n)
			if raw && !strings.Contains(res.Note, "2 transactions aborted") {
				t.Errorf("note %q does not count the 2 aborted transactions", res.Note)
			}
			eosCheck(t, ctx, env, in.Topic, n, []string{"retry"})
		})
	}
}

// concurrentTransactions is the broker's answer refusing every partition
// of req with CONCURRENT_TRANSACTIONS.
func concurrentTransactions(req *kmsg.TxnOffsetCommitRequest) *kmsg.TxnOffsetCommitResponse {
	resp := req.ResponseKind().(*kmsg.TxnOffsetCommitResponse)
	resp.Version = req.Version
	for _, rt := range req.Topics {
		st := kmsg.NewTxnOffsetCommitResponseTopic()
		st.Topic, st.TopicID = rt.Topic, rt.TopicID
		for _, rp := range rt.Partitions {
			sp := kmsg.NewTxnOffsetCommitResponseTopicPartition()
			sp.Partition, sp.ErrorCode = rp.Partition, kerr.ConcurrentTransactions.Code
			st.Partitions = append(st.Partitions, sp)
		}
		resp.Topics = append(resp.Topics, st)
	}
	return resp
}

// eosCheck checks the cluster an exactly-once run left: no transaction is
// open (every partition's last stable offset is its end); read
// read_committed, every topic but the input and the internal ones is
// either empty or holds each of the n keys exactly once, and those are the
// topics whose names contain want's words, one each; and every partition
// of the input and of the retry topics (all but the outputs) has a
// committed offset past its last record.
func eosCheck(t *testing.T, ctx context.Context, env *Env, input string, n int, want []string) {
	t.Helper()
	adm, done, err := env.admin()
	if err != nil {
		t.Fatal(err)
	}
	defer done()
	ends, err := adm.ListEndOffsets(ctx)
	if err != nil {
		t.Fatal(err)
	}
	stable, err := adm.ListCommittedOffsets(ctx)
	if err != nil {
		t.Fatal(err)
	}
	ends.Each(func(o kadm.ListedOffset) {
		if s, ok := stable.Lookup(o.Topic, o.Partition); !ok || s.Offset != o.Offset {
			t.Errorf("%s[%d]: last stable offset %d, end %d: a transaction is still open", o.Topic, o.Partition, s.Offset, o.Offset)
		}
	})
	// The newest committed offset of each partition, over every group.
	groups, err := adm.ListGroups(ctx)
	if err != nil {
		t.Fatal(err)
	}
	committed := map[string]map[int32]int64{}
	for _, g := range groups.Groups() {
		offs, err := adm.FetchOffsets(ctx, g)
		if err != nil {
			t.Fatal(err)
		}
		offs.Each(func(o kadm.OffsetResponse) {
			if committed[o.Topic] == nil {
				committed[o.Topic] = map[int32]int64{}
			}
			committed[o.Topic][o.Partition] = max(committed[o.Topic][o.Partition], o.At)
		})
	}
	var full []string
	for _, topic := range ends.Offsets().TopicsSet().Topics() {
		if strings.HasPrefix(topic, "__") {
			continue
		}
		recs, last := readCommitted(t, ctx, env, topic, ends)
		if topic != input && len(recs) > 0 {
			keys := map[string]int{}
			for _, r := range recs {
				keys[string(r.Key)]++
			}
			for i := range n {
				if c := keys[fmt.Sprintf("k%d", i)]; c != 1 {
					t.Errorf("%s: k%d %d times, want once (read_committed)", topic, i, c)
				}
			}
			if len(recs) != n {
				t.Errorf("%s: %d records, want %d", topic, len(recs), n)
			}
			full = append(full, topic)
		}
		if strings.HasSuffix(topic, "-out") {
			continue // outputs: nobody consumes them
		}
		for p, off := range last {
			if c := committed[topic][p]; c <= off {
				t.Errorf("%s[%d]: committed offset %d, last record at %d", topic, p, c, off)
			}
		}
	}
	slices.Sort(full)
	if len(full) != len(want) {
		t.Fatalf("topics holding every record: %v, want one for each of %v", full, want)
	}
	for _, w := range want {
		if !slices.ContainsFunc(full, func(topic string) bool { return strings.Contains(topic, w) }) {
			t.Errorf("topics holding every record: %v, none for %q", full, w)
		}
	}
}

// readCommitted reads topic from the start, read_committed, to the ends
// given, and returns its data records and each partition's last data
// record's offset. Control records are kept so that the read can stop at
// the end of a partition whose last record is a transaction marker.
func readCommitted(t *testing.T, ctx context.Context, env *Env, topic string, ends kadm.ListedOffsets) ([]*kgo.Record, map[int32]int64) {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(env.Brokers...), kgo.ConsumeTopics(topic),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()), kgo.KeepControlRecords(), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	left := map[int32]int64{} // partition -> its end, until read
	ends.Each(func(o kadm.ListedOffset) {
		if o.Topic == topic && o.Offset > 0 {
			left[o.Partition] = o.Offset
		}
	})
	var recs []*kgo.Record
	last := map[int32]int64{}
	for len(left) > 0 {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("%s: reading: %v; partitions not read to their end: %v", topic, ctx.Err(), left)
		}
		fs.EachRecord(func(r *kgo.Record) {
			if !r.Attrs.IsControl() {
				recs = append(recs, r)
				last[r.Partition] = r.Offset
			}
			if end, ok := left[r.Partition]; ok && r.Offset >= end-1 {
				delete(left, r.Partition)
			}
		})
	}
	return recs, last
}

// The ratios of the exactly-once section pair repetitions by index and
// pool the times.
func TestPrintEOSRatios(t *testing.T) {
	r := &Results{S2: []ThroughputResult{
		{System: "kretry", Rates: []float64{100, 200}, Elapsed: []float64{1, 1}, Timed: []int{100, 200}},
		{System: "kretry-eos", Rates: []float64{50, 50}, Elapsed: []float64{2, 4}, Timed: []int{100, 200}},
	}}
	var b strings.Builder
	printEOSRatios(&b, r)
	// Per repetition 0.5 and 0.25; summed: 300 records in 6 s against 300 in 2 s.
	if want := "| S2 | kretry-eos / kretry | 0.375 (0.250–0.500) | 0.333 |"; !strings.Contains(b.String(), want) {
		t.Fatalf("got\n%s\nwant a line %q", b.String(), want)
	}
}
