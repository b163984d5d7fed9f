package dltops

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/kretry/kretry/retry"
	"github.com/kretry/kretry/retry/spring"
)

// springPrefixes are the prefixes of the header names Spring Kafka writes
// on retry-topic and DLT records: kafka_original-topic, kafka_dlt-exception-
// message, kafka_exception-stacktrace, retry_topic-attempts and the like.
// They cover names spring.IsSpringHeader does not list (custom or newer
// ones of the same families).
func springPrefixes() []string {
	return []string{"kafka_original-", "kafka_exception-", "kafka_dlt-", "retry_topic-"}
}

// IsRetryHeader reports whether a replay removes the header named key: a
// kretry header (retry.IsKretryHeader), a Spring Kafka retry or DLT header
// (spring.IsSpringHeader, or a name starting with kafka_original-,
// kafka_exception-, kafka_dlt- or retry_topic-), or one of the replay audit
// headers (which the replay writes anew).
func IsRetryHeader(key string) bool {
	if retry.IsKretryHeader(key) || retry.IsReplayHeader(key) || spring.IsSpringHeader(key) {
		return true
	}
	for _, p := range springPrefixes() {
		if strings.HasPrefix(key, p) {
			return true
		}
	}
	return false
}

// SourceOf returns where rec was read, as "TOPIC/PARTITION/OFFSET": the
// value of retry.HeaderReplayedFrom.
func SourceOf(rec *kgo.Record) string {
	return rec.Topic + "/" + strconv.FormatInt(int64(rec.Partition), 10) + "/" + strconv.FormatInt(rec.Offset, 10)
}

// parseSource splits a HeaderReplayedFrom value.
func parseSource(s string) (topic string, partition int32, offset int64, err error) {
	i := strings.LastIndexByte(s, '/')
	j := -1
	if i > 0 {
		j = strings.LastIndexByte(s[:i], '/')
	}
	if j <= 0 {
		return "", 0, 0, fmt.Errorf("%q: want TOPIC/PARTITION/OFFSET", s)
	}
	p, perr := strconv.ParseInt(s[j+1:i], 10, 32)
	o, oerr := strconv.ParseInt(s[i+1:], 10, 64)
	if perr != nil || oerr != nil {
		return "", 0, 0, fmt.Errorf("%q: want TOPIC/PARTITION/OFFSET", s)
	}
	return s[:j], int32(p), o, nil
}

// ReplayRecord returns the record a replay of run sends for src, a DLT
// record: src's key and value (shared, not copied), src's headers without
// the retry headers (IsRetryHeader) in their order and byte for byte, then
// the audit headers retry.HeaderReplayRun (run), HeaderReplayedFrom
// (SourceOf(src)) and HeaderReplayedAt (now). Topic is topic, Partition is
// partition (-1: by key), and Timestamp is now, so that the policy's time
// budget starts again (see the package doc).
func ReplayRecord(src *kgo.Record, topic string, partition int32, run string, now time.Time) *kgo.Record {
	return replayRecord(src, topic, partition, nil, run, now)
}

// replayRecord is ReplayRecord, with the retry headers of st after the
// user headers when st is not nil (TierRecord).
func replayRecord(src *kgo.Record, topic string, partition int32, st *retry.State, run string, now time.Time) *kgo.Record {
	headers := make([]kgo.RecordHeader, 0, len(src.Headers)+3+12)
	for _, h := range src.Headers {
		if !IsRetryHeader(h.Key) {
			headers = append(headers, h)
		}
	}
	if st != nil {
		headers = st.Append(headers, 0)
	}
	headers = retry.Replay{Run: run, From: SourceOf(src), At: now}.Append(headers)
	return &kgo.Record{Key: src.Key, Value: src.Value, Headers: headers, Topic: topic,
		Partition: partition, Timestamp: time.UnixMilli(now.UnixMilli())}
}

// replayedBy returns the HeaderReplayedFrom value of rec when rec was sent
// by run, or "".
func replayedBy(rec *kgo.Record, run string) string {
	var by, from string
	var hasBy, hasFrom bool
	for _, h := range rec.Headers {
		switch {
		case h.Key == retry.HeaderReplayRun && !hasBy:
			by, hasBy = string(h.Value), true
		case h.Key == retry.HeaderReplayedFrom && !hasFrom:
			from, hasFrom = string(h.Value), true
		}
	}
	if hasBy && by == run {
		return from
	}
	return ""
}
