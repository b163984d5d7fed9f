package console

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/kretry/kretry/internal/dltops"
	"github.com/kretry/kretry/retry"
)

// maxHexBytes bounds the bytes of a key or value the hex view shows.
const maxHexBytes = 16 << 10

// errNoRecord: the offset holds no record a read_committed reader sees.
var errNoRecord = errors.New("no record at this offset")

// recordRef names one record, from a request's query.
type recordRef struct {
	Topic     string
	Partition int32
	Offset    int64
}

func parseRecordRef(q url.Values) (recordRef, error) {
	ref := recordRef{Topic: q.Get("topic")}
	if ref.Topic == "" {
		return ref, errors.New("parameter topic: want the record's topic")
	}
	p, err := strconv.ParseInt(q.Get("partition"), 10, 32)
	if err != nil || p < 0 {
		return ref, fmt.Errorf("parameter partition: want a partition number, got %q", q.Get("partition"))
	}
	o, err := strconv.ParseInt(q.Get("offset"), 10, 64)
	if err != nil || o < 0 {
		return ref, fmt.Errorf("parameter offset: want an offset, got %q", q.Get("offset"))
	}
	ref.Partition, ref.Offset = int32(p), o
	return ref, nil
}

// fetchRecord reads the record at ref, read_committed, with the same
// direct reader as the DLT page.
func (s *Server) fetchRecord(ctx context.Context, ref recordRef) (*kgo.Record, error) {
	rs, err := dltops.ListRanges(ctx, s.adm, []string{ref.Topic}, time.Time{})
	if err != nil {
		return nil, err
	}
	r, ok := rs[ref.Topic][ref.Partition]
	if !ok {
		return nil, fmt.Errorf("%s has no partition %d", ref.Topic, ref.Partition)
	}
	if ref.Offset < r.Start || ref.Offset >= r.End {
		return nil, fmt.Errorf("%w: %s/%d holds offsets %d to %d", errNoRecord, ref.Topic, ref.Partition, r.Start, r.End-1)
	}
	one := dltops.Ranges{ref.Topic: {ref.Partition: {Start: ref.Offset, End: ref.Offset + 1}}}
	var got *kgo.Record
	err = dltops.Scan(ctx, s.readerOpts(), one, dltops.ScanOptions{ReadCommitted: true}, func(rec *kgo.Record) error {
		if rec.Offset == ref.Offset {
			got = rec
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if got == nil {
		return nil, fmt.Errorf("%w: offset %d of %s/%d is a transaction marker, or its record was aborted or compacted",
			errNoRecord, ref.Offset, ref.Topic, ref.Partition)
	}
	return got, nil
}

// bytesView is a key or value as the record page shows it.
type bytesView struct {
	Null      bool
	Size      int
	Shown     int // bytes shown in the text and JSON views
	Truncated bool
	Valid     bool   // the shown bytes are valid UTF-8
	Text      string // visible text of the shown bytes
	JSON      string // pretty-printed, when the whole value is JSON
	Hex       string // hex dump of up to maxHexBytes
	HexCut    bool
	RawURL    string
	View      string // the view open by default: json, text or hex
}

func newBytesView(b []byte, limit int, rawURL string) bytesView {
	v := bytesView{Null: b == nil, Size: len(b), RawURL: rawURL}
	shown := b
	if len(b) > limit {
		// Cut before a character that would be cut in two.
		cut := limit
		for i := 0; i < utf8.UTFMax-1 && cut > 0 && !utf8.RuneStart(b[cut]); i++ {
			cut--
		}
		shown, v.Truncated = b[:cut], true
	}
	v.Shown = len(shown)
	v.Valid = utf8.Valid(shown)
	v.Text = visible(string(shown))
	if !v.Truncated && json.Valid(b) {
		var out bytes.Buffer
		if json.Indent(&out, b, "", "  ") == nil {
			v.JSON = visible(out.String())
		}
	}
	hb := shown
	if len(hb) > maxHexBytes {
		hb, v.HexCut = hb[:maxHexBytes], true
	}
	v.Hex = hexDump(hb)
	switch {
	case v.JSON != "":
		v.View = "json"
	case v.Valid:
		v.View = "text"
	default:
		v.View = "hex"
	}
	return v
}

// hexDump is b as lines of 16 bytes: offset, hex bytes and printable
// ASCII.
func hexDump(b []byte) string {
	var sb strings.Builder
	for i := 0; i < len(b); i += 16 {
		line := b[i:min(i+16, len(b))]
		fmt.Fprintf(&sb, "%08x  %-47s  |", i, spacedHex(line))
		for _, c := range line {
			if c >= 0x20 && c < 0x7f {
				sb.WriteByte(c)
			} else {
				sb.WriteByte('.')
			}
		}
		sb.WriteString("|\n")
	}
	return sb.String()
}

func spacedHex(b []byte) string {
	parts := make([]string, len(b))
	for i, c := range b {
		parts[i] = hex.EncodeToString([]byte{c})
	}
	return strings.Join(parts, " ")
}

// headerView is one record header, decoded.
type headerView struct {
	Key     string // visible
	Size    int
	Kind    string // how Value was decoded: int32, int64, time, text, hex, empty
	Value   string
	Problem string
	Retry   bool // a retry header a replay removes
}

// headerKinds are the fixed-width encodings of the headers kretry and
// Spring Kafka write (retry/headers.go; Spring's are big-endian too).
var headerKinds = map[string]string{
	retry.HeaderAttempt: "int32", retry.HeaderOriginalPartition: "int32",
	retry.HeaderOriginalOffset: "int64",
	retry.HeaderDue:            "time", retry.HeaderOriginalTimestamp: "time", retry.HeaderFirstFailure: "time",
	retry.HeaderReplayedAt:     "time",
	"kafka_original-partition": "int32", "kafka_dlt-original-partition": "int32",
	"kafka_original-offset": "int64", "kafka_dlt-original-offset": "int64",
	"kafka_original-timestamp": "time", "kafka_dlt-original-timestamp": "time",
	"retry_topic-backoff-timestamp": "time",
}

func decodeHeader(h kgo.RecordHeader) headerView {
	v := headerView{Key: visible(h.Key), Size: len(h.Value), Retry: dltops.IsRetryHeader(h.Key)}
	want := headerKinds[h.Key]
	switch {
	case len(h.Value) == 0:
		v.Kind = "empty"
	case want == "int32" && len(h.Value) == 4:
		v.Kind, v.Value = want, strconv.FormatInt(int64(int32(binary.BigEndian.Uint32(h.Value))), 10)
	case want == "int64" && len(h.Value) == 8:
		v.Kind, v.Value = want, strconv.FormatInt(int64(binary.BigEndian.Uint64(h.Value)), 10)
	case want == "time" && len(h.Value) == 8:
		ms := int64(binary.BigEndian.Uint64(h.Value))
		v.Kind, v.Value = want, fmt.Sprintf("%s (%d ms)", fmtTime(time.UnixMilli(ms)), ms)
	case printable(h.Value):
		v.Kind, v.Value = "text", visible(string(h.Value))
		if want != "" {
			v.Problem = fmt.Sprintf("want %s, got %d bytes of text", want, len(h.Value))
		}
	default:
		v.Kind, v.Value = "hex", hex.EncodeToString(h.Value[:min(len(h.Value), maxHexBytes)])
		if len(h.Value) > maxHexBytes {
			v.Value += "…"
		}
		if want != "" {
			v.Problem = fmt.Sprintf("want %s, got %d bytes", want, len(h.Value))
		}
	}
	if len(v.Value) > 4*keyChars*10 {
		v.Value = v.Value[:4*keyChars*10] + "…"
	}
	return v
}

// printable reports whether b is valid UTF-8 made of graphic characters
// and white space.
func printable(b []byte) bool {
	if !utf8.Valid(b) {
		return false
	}
	for _, r := range string(b) {
		if !unicode.IsGraphic(r) && !unicode.IsSpace(r) {
			return false
		}
	}
	return true
}

// event is one line of a record's retry history.
type event struct {
	At     time.Time
	What   string
	Detail string
}

// history is what the record's retry and replay headers say happened to
// it, oldest first.
func history(rec *kgo.Record, info dltops.Info) []event {
	var out []event
	st := info.State
	if info.Kind != dltops.KindNone && (info.Kind != dltops.KindCorrupt || info.Salvaged) {
		out = append(out, event{At: st.OriginalTimestamp, What: "original record",
			Detail: fmt.Sprintf("%s partition %d offset %d", visible(st.OriginalTopic), st.OriginalPartition, st.OriginalOffset)})
	}
	if info.Kind == dltops.KindKretry || info.Kind == dltops.KindFallback {
		if !st.FirstFailure.IsZero() {
			out = append(out, event{At: st.FirstFailure, What: "first failure"})
		}
		detail := fmt.Sprintf("after %d deliveries; last error %s", st.Attempt, visible(st.ErrorType))
		if st.Error != "" {
			detail += ": " + visible(st.Error)
		}
		out = append(out, event{At: rec.Timestamp, What: "dead-lettered (reason " + visible(info.Reason()) + ", group " + visible(info.Group()) + ")", Detail: detail})
	} else {
		what := "written to the DLT"
		if info.Kind == dltops.KindCorrupt {
			what += "; its retry headers do not decode"
		} else {
			what += "; it carries no retry header"
		}
		d := ""
		if info.Err != nil {
			d = visible(info.Err.Error())
		}
		out = append(out, event{At: rec.Timestamp, What: what, Detail: d})
	}
	var run, from string
	var at time.Time
	for _, h := range rec.Headers {
		switch h.Key {
		case retry.HeaderReplayRun:
			run = visible(string(h.Value))
		case retry.HeaderReplayedFrom:
			from = visible(string(h.Value))
		case retry.HeaderReplayedAt:
			if len(h.Value) == 8 {
				at = time.UnixMilli(int64(binary.BigEndian.Uint64(h.Value)))
			}
		}
	}
	if run != "" || from != "" {
		out = append(out, event{At: at, What: "replayed earlier by run " + run, Detail: "from " + from + "; it failed again after that replay"})
	}
	return out
}

// recordPage is the data of the record page.
type recordPage struct {
	recordRef
	Timestamp time.Time
	Now       time.Time
	Key       bytesView
	Value     bytesView
	Headers   []headerView
	History   []event
	Kind      string
	ErrorType string
	Reason    string
	Group     string
	DLTURL    string
	ReplayURL string
}

func (s *Server) handleRecord(w http.ResponseWriter, r *http.Request) {
	ref, err := parseRecordRef(r.URL.Query())
	if err != nil {
		s.fail(w, r, http.StatusBadRequest, err)
		return
	}
	ctx, cancel := s.withTimeout(r)
	defer cancel()
	rec, err := s.fetchRecord(ctx, ref)
	if err != nil {
		code := http.StatusBadGateway
		if errors.Is(err, errNoRecord) {
			code = http.StatusNotFound
		}
		s.fail(w, r, code, err)
		return
	}
	info := s.cfg.Decoder.Decode(rec)
	raw := func(part string) string {
		return "/record/raw?" + url.Values{"topic": {ref.Topic}, "partition": {strconv.Itoa(int(ref.Partition))},
			"offset": {strconv.FormatInt(ref.Offset, 10)}, "part": {part}}.Encode()
	}
	p := recordPage{recordRef: ref, Timestamp: rec.Timestamp.UTC(), Now: s.now(),
		Key: newBytesView(rec.Key, s.cfg.MaxValueBytes, raw("key")), Value: newBytesView(rec.Value, s.cfg.MaxValueBytes, raw("value")),
		History: history(rec, info), ErrorType: info.ErrorType(), Reason: info.Reason(), Group: info.Group(),
		DLTURL: dltURL(ref.Topic, nil)}
	p.Kind = map[dltops.Kind]string{dltops.KindKretry: "kretry headers", dltops.KindFallback: "Spring Kafka headers",
		dltops.KindCorrupt: "corrupt retry headers", dltops.KindNone: "no retry headers"}[info.Kind]
	for _, h := range rec.Headers {
		p.Headers = append(p.Headers, decodeHeader(h))
	}
	p.ReplayURL = "/replay?" + url.Values{"topic": {ref.Topic}, "key_hex": {hex.EncodeToString(rec.Key)},
		"error_type": {info.ErrorType()}, "original_topic": {info.OriginalTopic()}, "group": {info.Group()}}.Encode()
	s.render(w, r, http.StatusOK, "record", fmt.Sprintf("%s/%d/%d", ref.Topic, ref.Partition, ref.Offset), p)
}

// handleRaw sends a record's whole key or value as a download: never
// rendered by the browser (attachment, octet-stream, nosniff).
func (s *Server) handleRaw(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	ref, err := parseRecordRef(q)
	if err != nil {
		s.fail(w, r, http.StatusBadRequest, err)
		return
	}
	part := q.Get("part")
	if part != "key" && part != "value" {
		s.fail(w, r, http.StatusBadRequest, fmt.Errorf("parameter part: want key or value, got %q", part))
		return
	}
	ctx, cancel := s.withTimeout(r)
	defer cancel()
	rec, err := s.fetchRecord(ctx, ref)
	if err != nil {
		s.fail(w, r, http.StatusNotFound, err)
		return
	}
	b := rec.Value
	if part == "key" {
		b = rec.Key
	}
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Header().Set("Content-Disposition", fmt.Sprintf(`attachment; filename="%s-%d-%d.%s.bin"`,
		safeFileName(ref.Topic), ref.Partition, ref.Offset, part))
	w.Header().Set("Content-Length", strconv.Itoa(len(b)))
	w.Write(b)
}

// safeFileName keeps the characters of a topic name ([a-zA-Z0-9._-]).
func safeFileName(s string) string {
	return strings.Map(func(r rune) rune {
		if r < 0x80 && (unicode.IsLetter(r) || unicode.IsDigit(r) || r == '.' || r == '_' || r == '-') {
			return r
		}
		return '_'
	}, s)
}
