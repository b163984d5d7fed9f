package dlt

import (
	"context"
	"log/slog"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/kretry/kretry/retry"
)

// Handler is called once a record has been read back from a dead-letter
// topic. s is the record's decoded retry history; when the record's kretry
// headers could not be decoded, s holds whatever could be read and
// s.Reason explains.
//
// A nil error acknowledges the record. A non-nil error is handled by the
// policy's DLT strategy (retry.DLTRetryOnError calls the handler again a
// bounded number of times). Whatever the handler returns, the record stays
// in the DLT topic, where `kretry dlt inspect` and replay can find it.
type Handler interface {
	HandleDLT(ctx context.Context, rec *kgo.Record, s retry.State) error
}

// HandlerFunc adapts a function to Handler.
type HandlerFunc func(ctx context.Context, rec *kgo.Record, s retry.State) error

// HandleDLT calls f(ctx, rec, s).
func (f HandlerFunc) HandleDLT(ctx context.Context, rec *kgo.Record, s retry.State) error {
	return f(ctx, rec, s)
}

// LogHandler returns the default DLT handler: it logs each dead-lettered
// record at Warn level on logger and acknowledges it. A nil logger uses
// slog.Default().
func LogHandler(logger *slog.Logger) Handler {
	if logger == nil {
		logger = slog.Default()
	}
	return HandlerFunc(func(ctx context.Context, rec *kgo.Record, s retry.State) error {
		logger.LogAttrs(ctx, slog.LevelWarn, "kretry: record dead-lettered",
			slog.String("dlt", rec.Topic),
			slog.Int("dlt_partition", int(rec.Partition)),
			slog.Int64("dlt_offset", rec.Offset),
			slog.String("original_topic", s.OriginalTopic),
			slog.Int("original_partition", int(s.OriginalPartition)),
			slog.Int64("original_offset", s.OriginalOffset),
			slog.Int("attempts", int(s.Attempt)),
			slog.String("reason", s.Reason),
			slog.String("error_type", s.ErrorType),
			slog.String("error", s.Error),
			slog.Time("first_failure", s.FirstFailure),
			slog.Duration("age", time.Since(s.FirstFailure).Round(time.Millisecond)),
		)
		return nil
	})
}
