package kretrytest

import (
	"cmp"
	"context"
	"fmt"
	"maps"
	"slices"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/kretry/kretry/retry"
)

// Record is a record read back from a topic, with the retry state its
// kretry headers carry (retry.Decode): on a DLT record, why it was
// dead-lettered (State.Reason), after how many deliveries (State.Attempt)
// and the last error (State.Error); on a retry-tier record, the delivery
// it waits for and when it is due.
type Record struct {
	*kgo.Record
	// State is the decoded retry state; zero when the record carries no
	// kretry headers (a main-topic record) or when they are corrupt.
	State retry.State
	// HasState reports whether the record carries kretry headers.
	HasState bool
	// StateErr is the decoding error of corrupt kretry headers, else nil.
	StateErr error
}

// Read returns every record in topic at the time of the call, from the
// start up to the end offsets it finds, ordered by partition and offset,
// each with its decoded retry state. Reading a DLT shows what was
// dead-lettered and why; reading a retry tier, what waits there. It reads
// with a client of its own and joins no group. The topic must not be
// written transactionally.
func (c *Cluster) Read(ctx context.Context, topic string) ([]Record, error) {
	ends, err := c.adm.ListEndOffsets(ctx, topic)
	if err == nil {
		err = ends.Error()
	}
	if err != nil {
		return nil, fmt.Errorf("kretrytest: end offsets of %s: %w", topic, err)
	}
	want := map[int32]int64{} // partition → end offset, while records remain
	start := map[int32]kgo.Offset{}
	ends.Each(func(o kadm.ListedOffset) {
		if o.Offset > 0 {
			want[o.Partition] = o.Offset
			start[o.Partition] = kgo.NewOffset().AtStart()
		}
	})
	if len(want) == 0 {
		return nil, nil
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.seeds...),
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: start}))
	if err != nil {
		return nil, fmt.Errorf("kretrytest: client reading %s: %w", topic, err)
	}
	defer cl.Close()
	var out []Record
	for len(want) > 0 {
		fs := cl.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			return nil, fmt.Errorf("kretrytest: reading %s: %w (read %d records; partitions %v not read to their end)",
				topic, context.Cause(ctx), len(out), slices.Sorted(maps.Keys(want)))
		}
		var ferr error
		fs.EachError(func(t string, p int32, err error) {
			ferr = fmt.Errorf("kretrytest: reading %s[%d]: %w", t, p, err)
		})
		if ferr != nil {
			return nil, ferr
		}
		fs.EachRecord(func(r *kgo.Record) {
			end, ok := want[r.Partition]
			if !ok || r.Offset >= end {
				return
			}
			st, has, derr := retry.Decode(r.Headers)
			out = append(out, Record{Record: r, State: st, HasState: has, StateErr: derr})
			if r.Offset >= end-1 {
				delete(want, r.Partition)
			}
		})
	}
	slices.SortFunc(out, func(a, b Record) int {
		return cmp.Or(cmp.Compare(a.Partition, b.Partition), cmp.Compare(a.Offset, b.Offset))
	})
	return out, nil
}
