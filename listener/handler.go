package listener

import (
	"context"

	"github.com/twmb/franz-go/pkg/kgo"
)

// Handler processes one record. It is called for the record's first
// delivery from the main topic and again for each retry, with a context that
// carries the retry state (retry.FromContext) and is canceled when the
// listener gives up on shutdown or the record's HandlerTimeout passes.
//
// Returning nil acknowledges the record. Returning an error sends it on to
// its next retry tier or to the dead-letter topic, as the policy decides; wrap
// the error with strategy.Permanent to skip the retries, or with
// strategy.RetryAfter to ask for a specific delay. A panic is recovered and
// treated as an error carrying the panic value and stack.
//
// Records of one partition are handled one at a time, in offset order;
// records of different partitions concurrently, up to the Concurrency option.
// The handler must not keep rec after returning.
type Handler interface {
	Handle(ctx context.Context, rec *kgo.Record) error
}

// HandlerFunc adapts a function to Handler.
type HandlerFunc func(ctx context.Context, rec *kgo.Record) error

// Handle calls f(ctx, rec).
func (f HandlerFunc) Handle(ctx context.Context, rec *kgo.Record) error { return f(ctx, rec) }
