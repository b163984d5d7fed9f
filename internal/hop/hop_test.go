package hop

import (
	"errors"
	"fmt"
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

func TestPartitioner(t *testing.T) {
	p := Partitioner().ForTopic("orders-retry")
	for _, tt := range []struct {
		partition int32
		n         int
		want      int // -1: by key
	}{
		{3, 6, 3},
		{0, 1, 0},
		{5, 4, -1}, // the target has fewer partitions
		{-1, 6, -1},
	} {
		r := &kgo.Record{Key: []byte("order-42"), Partition: tt.partition}
		got := p.Partition(r, tt.n)
		want := tt.want
		if want < 0 {
			want = kgo.StickyKeyPartitioner(nil).ForTopic("t").Partition(&kgo.Record{Key: r.Key}, tt.n)
		}
		if got != want {
			t.Errorf("partition %d of %d: got %d, want %d", tt.partition, tt.n, got, want)
		}
		if !p.RequiresConsistency(r) {
			t.Errorf("partition %d: a keyed record must be partitioned consistently", tt.partition)
		}
	}
}

func TestRejected(t *testing.T) {
	for err, want := range map[error]bool{
		kerr.MessageTooLarge:                            true,
		kerr.RecordListTooLarge:                         true,
		kerr.InvalidRecord:                              true,
		kerr.InvalidTimestamp:                           true,
		fmt.Errorf("produce: %w", kerr.MessageTooLarge): true,
		kerr.TopicAuthorizationFailed:                   false,
		kerr.NotEnoughReplicas:                          false,
		errors.New("connection refused"):                false,
	} {
		if got := Rejected(err); got != want {
			t.Errorf("Rejected(%v) = %v, want %v", err, got, want)
		}
	}
}
