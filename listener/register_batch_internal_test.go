package listener

import (
	"context"
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/kretry/kretry/retry"
)

// regBatchAndDLT is a batch handler that is its topic's DLT handler too.
type regBatchAndDLT struct{ batches, dead int }

func (h *regBatchAndDLT) HandleBatch(context.Context, []*kgo.Record) error { h.batches++; return nil }

func (h *regBatchAndDLT) HandleDLT(context.Context, *kgo.Record, retry.State) error {
	h.dead++
	return nil
}

// Register hands a batch handler field's value to NewBatch as it is: a
// plain func is called with the batch, a type with HandleDLT is the DLT
// handler, and a single-record field stays one.
func TestRegisterBuildsBatchListeners(t *testing.T) {
	var got []*kgo.Record
	both := &regBatchAndDLT{}
	h := &struct {
		Plain  func(context.Context, []*kgo.Record) error `kretry:"topic=a"`
		Both   *regBatchAndDLT                            `kretry:"topic=b"`
		Single HandlerFunc                                `kretry:"topic=c"`
	}{
		Plain:  func(_ context.Context, recs []*kgo.Record) error { got = recs; return nil },
		Both:   both,
		Single: func(context.Context, *kgo.Record) error { return nil },
	}
	ls, err := Register([]string{"127.0.0.1:1"}, h)
	if err != nil {
		t.Fatal(err)
	}
	plain, b, single := ls[0], ls[1], ls[2]

	if plain.batch == nil || plain.handler != nil {
		t.Fatal("the func(ctx, []*kgo.Record) error field did not make a batch listener")
	}
	recs := []*kgo.Record{{Offset: 1}, {Offset: 2}}
	if err := plain.batch.HandleBatch(context.Background(), recs); err != nil || len(got) != 2 || got[1] != recs[1] {
		t.Errorf("the listener's batch handler is not the field's func: err %v, got %v", err, got)
	}

	if b.batch != BatchHandler(both) || b.dltHandler == nil {
		t.Fatalf("batch %v, DLT handler %v: want the field's value for both", b.batch, b.dltHandler)
	}
	if err := b.dltHandler.HandleDLT(context.Background(), recs[0], retry.State{}); err != nil || both.dead != 1 {
		t.Errorf("the DLT handler is not the field's HandleDLT: err %v, calls %d", err, both.dead)
	}

	if single.handler == nil || single.batch != nil {
		t.Error("the single-record field did not make a single-record listener")
	}
}
