package console

import (
	"cmp"
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/kretry/kretry/internal/dltops"
)

// maxPages bounds how deep the DLT page paginates: the page keeps the
// newest (page+1)*PageSize matched records while it reads, so deeper
// pages would hold more in memory. Narrow the filters to see older ones.
const maxPages = 200

// filterParams are the query parameters of the DLT filters, each a
// dltops.Filter field; lists are repeated parameters.
var filterParams = []string{"error_type", "reason", "original_topic", "group", "since", "until", "key", "key_hex"}

// dltQuery is a DLT page's request: the topic, the filters and the page.
type dltQuery struct {
	Topic  string
	Filter dltops.Filter
	// Values are the filter parameters as given (not topic, not page).
	Values url.Values
	Page   int
}

// parseDLTQuery reads the DLT, the filters and the page from q, with
// errors that name the parameter.
func parseDLTQuery(q url.Values, now time.Time) (dltQuery, error) {
	d := dltQuery{Topic: q.Get("topic"), Values: url.Values{}}
	if d.Topic == "" {
		return d, errors.New("parameter topic: want the DLT to show")
	}
	for _, p := range filterParams {
		for _, v := range q[p] {
			if v != "" {
				d.Values.Add(p, v)
			}
		}
	}
	f := &d.Filter
	f.ErrorTypes, f.Reasons = d.Values["error_type"], d.Values["reason"]
	f.OriginalTopics, f.Groups = d.Values["original_topic"], d.Values["group"]
	var err error
	if f.Since, err = dltops.ParseTimeBound(d.Values.Get("since"), now); err != nil {
		return d, fmt.Errorf("parameter since: %w", err)
	}
	if f.Until, err = dltops.ParseTimeBound(d.Values.Get("until"), now); err != nil {
		return d, fmt.Errorf("parameter until: %w", err)
	}
	if !f.Since.At.IsZero() && !f.Until.At.IsZero() && !f.Since.At.Before(f.Until.At) {
		return d, fmt.Errorf("parameters since and until: since (%s) must be before until (%s)", d.Values.Get("since"), d.Values.Get("until"))
	}
	switch k, kh := d.Values["key"], d.Values["key_hex"]; {
	case len(k) > 0 && len(kh) > 0:
		return d, errors.New("parameters key and key_hex exclude each other")
	case len(k) > 0:
		f.Key, f.HasKey = []byte(k[0]), true
	case len(kh) > 0:
		if f.Key, err = hex.DecodeString(kh[0]); err != nil {
			return d, fmt.Errorf("parameter key_hex: %q is not hex", kh[0])
		}
		f.HasKey = true
	}
	if p := q.Get("page"); p != "" {
		n, err := strconv.Atoi(p)
		if err != nil || n < 1 || n > maxPages {
			return d, fmt.Errorf("parameter page: want a number from 1 to %d, got %q", maxPages, p)
		}
		d.Page = n - 1
	}
	return d, nil
}

// groupFilter returns the filters that select the records of g, on top of
// base: its error type, original topic, group and age (as since and until
// around now, so that the same records are selected whatever the page's
// clock says later).
func groupFilter(base url.Values, g dltops.GroupKey, now time.Time) url.Values {
	v := url.Values{}
	for k, vs := range base {
		v[k] = slices.Clone(vs)
	}
	v.Set("error_type", g.ErrorType)
	v.Set("original_topic", g.OriginalTopic)
	v.Set("group", g.ConsumerGroup)
	// AgeBucket: lower <= age < upper, that is now-upper < ts <= now-lower.
	var lower, upper time.Duration
	switch g.Age {
	case dltops.AgeHour:
		upper = time.Hour
	case dltops.AgeDay:
		lower, upper = time.Hour, 24*time.Hour
	case dltops.AgeWeek:
		lower, upper = 24*time.Hour, 7*24*time.Hour
	case dltops.AgeOlder:
		lower = 7 * 24 * time.Hour
	}
	rfc := func(t time.Time) string { return t.UTC().Format(time.RFC3339Nano) }
	if upper > 0 && base.Get("since") == "" {
		v.Set("since", rfc(now.Add(-upper+time.Nanosecond)))
	}
	if lower > 0 && base.Get("until") == "" {
		v.Set("until", rfc(now.Add(-lower+time.Nanosecond)))
	}
	return v
}

// recordRow is one record of a DLT page's list.
type recordRow struct {
	Partition int32
	Offset    int64
	Timestamp time.Time
	Key       string // shown: visible, cut to keyChars
	KeyCut    bool
	ErrorType string
	Reason    string
	Group     string
	Attempt   int32
}

const keyChars = 80

// newer orders rows newest first, then by partition and offset.
func newer(a, b recordRow) int {
	return cmp.Or(b.Timestamp.Compare(a.Timestamp), cmp.Compare(a.Partition, b.Partition), cmp.Compare(a.Offset, b.Offset))
}

// dltRead is what one read of a DLT found.
type dltRead struct {
	Report dltops.Report
	Lost   int64
	Chart  chart
	Rows   []recordRow // the newest keep matched records, newest first
}

// readDLT reads the DLT of q and groups its matched records, keeps the
// newest keep of them, and counts their arrivals by minute for the chart.
func (s *Server) readDLT(ctx context.Context, q dltQuery, now time.Time, keep int) (dltRead, error) {
	var out dltRead
	ranges, err := dltops.ListRanges(ctx, s.adm, []string{q.Topic}, q.Filter.Since.At)
	if err != nil {
		return out, err
	}
	agg := dltops.NewAggregator([]string{q.Topic}, now, 0)
	minutes := map[int64]int64{}
	so := dltops.ScanOptions{ReadCommitted: true, Lost: func(_ string, _ int32, from, to int64) { out.Lost += to - from }}
	err = dltops.Scan(ctx, s.readerOpts(), ranges, so, func(rec *kgo.Record) error {
		info := s.cfg.Decoder.Decode(rec)
		matched := q.Filter.Match(rec, info)
		agg.Add(rec, info, matched)
		if !matched {
			return nil
		}
		minutes[rec.Timestamp.Unix()/60]++
		if keep == 0 {
			return nil
		}
		row := recordRow{Partition: rec.Partition, Offset: rec.Offset, Timestamp: rec.Timestamp.UTC()}
		if len(out.Rows) >= keep && newer(row, out.Rows[keep-1]) > 0 {
			return nil // older than every row kept
		}
		row.Key, row.KeyCut = shortText(rec.Key, keyChars)
		row.ErrorType, row.Reason, row.Group = info.ErrorType(), info.Reason(), info.Group()
		if info.Kind == dltops.KindKretry || info.Kind == dltops.KindFallback {
			row.Attempt = info.State.Attempt
		}
		out.Rows = append(out.Rows, row)
		if len(out.Rows) >= 2*keep {
			slices.SortFunc(out.Rows, newer)
			out.Rows = out.Rows[:keep]
		}
		return nil
	})
	slices.SortFunc(out.Rows, newer)
	if len(out.Rows) > keep {
		out.Rows = out.Rows[:keep]
	}
	out.Report = agg.Report()
	out.Chart = newChart(minutes)
	return out, err
}

// Fetch sizes of the console's reads: far below kgo's defaults (50 MiB a
// fetch, 1 MiB a partition). A DLT's records compress well and expand to
// about 1 KiB of Go objects each, so a default fetch of a large DLT held
// over 100 MiB live; with these a 100000-record DLT page peaks at about a
// third of the memory in the same time (docs/benchmarks.md, "kretry
// console").
const (
	readerFetchMaxBytes          = 1 << 20
	readerFetchMaxPartitionBytes = 256 << 10
)

// readerOpts are the client options of the console's reads: the
// connection options with smaller fetches.
func (s *Server) readerOpts() []kgo.Opt {
	return append(slices.Clip(s.cfg.ClientOpts), kgo.FetchMaxBytes(readerFetchMaxBytes),
		kgo.FetchMaxPartitionBytes(readerFetchMaxPartitionBytes))
}

// shortText is b as text to show in a list: visible, at most n
// characters, hex when it is not valid UTF-8.
func shortText(b []byte, n int) (string, bool) {
	if b == nil {
		return "(null)", false
	}
	s := string(b)
	if !utf8.Valid(b) {
		s = "hex:" + hex.EncodeToString(b[:min(len(b), n)])
		return s, len(b) > n
	}
	s = visible(s)
	if utf8.RuneCountInString(s) <= n {
		return s, false
	}
	r := []rune(s)
	return string(r[:n]), true
}

// groupRow is one row of the DLT page's groups table.
type groupRow struct {
	dltops.Group
	URL     string
	Reasons []reasonLink
}

// reasonLink is one reason of a group, "reason=count", linking to the
// group's records with that reason.
type reasonLink struct {
	Text string
	URL  string
}

// dltPage is the data of the DLT page.
type dltPage struct {
	Topic     string
	Now       time.Time
	Filters   url.Values
	Described []string
	Report    dltops.Report
	Lost      int64
	Groups    []groupRow
	Chart     chart
	Rows      []recordRow
	Page      int // 1-based
	PrevURL   string
	NextURL   string
	ReplayURL string
	Elapsed   time.Duration
	Err       string
}

func (s *Server) handleDLT(w http.ResponseWriter, r *http.Request) {
	now := s.now()
	q, err := parseDLTQuery(r.URL.Query(), now)
	if err != nil {
		s.fail(w, r, http.StatusBadRequest, err)
		return
	}
	ctx, cancel := s.withTimeout(r)
	defer cancel()
	start := time.Now()
	keep := (q.Page + 1) * s.cfg.PageSize
	read, err := s.readDLT(ctx, q, now, keep)
	if err != nil && read.Report.Read == 0 {
		s.fail(w, r, http.StatusBadGateway, fmt.Errorf("reading %s: %w", q.Topic, err))
		return
	}
	p := dltPage{Topic: q.Topic, Now: now, Filters: q.Values, Report: read.Report, Lost: read.Lost, Chart: read.Chart,
		Page: q.Page + 1, Elapsed: time.Since(start)}
	if err != nil {
		p.Err = fmt.Sprintf("the read stopped early, the counts are partial: %v", err)
	}
	for k, vs := range q.Values {
		p.Described = append(p.Described, k+" = "+strings.Join(vs, ", "))
	}
	slices.Sort(p.Described)
	for _, g := range read.Report.Groups {
		gf := groupFilter(q.Values, g.GroupKey, now)
		row := groupRow{Group: g, URL: dltURL(q.Topic, gf)}
		for _, reason := range slices.Sorted(maps.Keys(g.Reasons)) {
			rf := maps.Clone(gf)
			rf["reason"] = []string{reason}
			row.Reasons = append(row.Reasons, reasonLink{Text: fmt.Sprintf("%s=%d", reason, g.Reasons[reason]), URL: dltURL(q.Topic, rf)})
		}
		p.Groups = append(p.Groups, row)
	}
	if from := q.Page * s.cfg.PageSize; from < len(read.Rows) {
		p.Rows = read.Rows[from:]
	}
	pageURL := func(n int) string {
		v := url.Values{}
		for k, vs := range q.Values {
			v[k] = vs
		}
		v.Set("page", strconv.Itoa(n))
		return dltURL(q.Topic, v)
	}
	if q.Page > 0 {
		p.PrevURL = pageURL(q.Page)
	}
	if int64(keep) < read.Report.Matched && q.Page+1 < maxPages {
		p.NextURL = pageURL(q.Page + 2)
	}
	p.ReplayURL = "/replay?" + withTopic(q.Values, q.Topic).Encode()
	s.render(w, r, http.StatusOK, "dlt", q.Topic, p)
}

func withTopic(v url.Values, topic string) url.Values {
	out := url.Values{}
	for k, vs := range v {
		out[k] = vs
	}
	out.Set("topic", topic)
	return out
}

func (s *Server) handleOverview(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := s.withTimeout(r)
	defer cancel()
	ov, err := s.overview(ctx)
	if err != nil {
		s.fail(w, r, http.StatusBadGateway, err)
		return
	}
	s.render(w, r, http.StatusOK, "overview", "Overview", ov)
}
