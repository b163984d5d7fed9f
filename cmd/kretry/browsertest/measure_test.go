package browsertest

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/kretry/kretry/internal/kafkatest"
	"github.com/kretry/kretry/retry"
)

// envMeasure turns on TestMeasureConsole; envMeasureRecords sets its DLT
// size (default 100000).
const (
	envMeasure        = "KRETRY_CONSOLE_MEASURE"
	envMeasureRecords = "KRETRY_CONSOLE_MEASURE_RECORDS"
)

// serverLog collects the console's log lines, for the request times it
// logs.
type serverLog struct {
	mu    sync.Mutex
	lines []string
}

func (l *serverLog) Write(b []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.lines = append(l.lines, strings.Split(strings.TrimRight(string(b), "\n"), "\n")...)
	return len(b), nil
}

var elapsedField = regexp.MustCompile(`msg=request method=GET path=(\S+) status=(\d+) elapsed=(\S+)`)

// elapsed returns the server-side times the console logged for path.
func (l *serverLog) elapsed(path string) []time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []time.Duration
	for _, line := range l.lines {
		if m := elapsedField.FindStringSubmatch(line); m != nil && m[1] == path && m[2] == "200" {
			if d, err := time.ParseDuration(m[3]); err == nil {
				out = append(out, d)
			}
		}
	}
	return out
}

// procMem returns the resident set size and its peak (VmRSS, VmHWM) of
// process pid, in MiB.
func procMem(t *testing.T, pid int) (rss, peak float64) {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Skipf("no /proc: %v", err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) < 2 {
			continue
		}
		kb, _ := strconv.ParseFloat(f[1], 64)
		switch f[0] {
		case "VmRSS:":
			rss = kb / 1024
		case "VmHWM:":
			peak = kb / 1024
		}
	}
	return rss, peak
}

// fetch GETs target, or POSTs form to it, and returns where a redirect
// pointed (not followed) and the body; any other status than 200 or 303
// fails the test.
func fetch(t *testing.T, target string, form url.Values) (string, string) {
	t.Helper()
	noFollow := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	var resp *http.Response
	var err error
	if form == nil {
		resp, err = noFollow.Get(target)
	} else {
		resp, err = noFollow.PostForm(target, form)
	}
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK && resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("%s: %d\n%.2000s", target, resp.StatusCode, body)
	}
	loc := resp.Header.Get("Location")
	if loc != "" {
		loc = strings.TrimSuffix(target, resp.Request.URL.RequestURI()) + loc
	}
	return loc, string(body)
}

// TestMeasureConsole measures "kretry console" on a DLT of 100000 records
// (KRETRY_CONSOLE_MEASURE_RECORDS) and 10000 records waiting in a tier
// for a group: the server-side time of the overview
// and of the DLT page (from the console's own request log), and the
// resident memory of the console process. It runs only with
// KRETRY_CONSOLE_MEASURE=1; the figures are in docs/benchmarks.md.
func TestMeasureConsole(t *testing.T) {
	if os.Getenv(envMeasure) != "1" {
		t.Skipf("set %s=1 to measure the console", envMeasure)
	}
	n := 100000
	if s := os.Getenv(envMeasureRecords); s != "" {
		var err error
		if n, err = strconv.Atoi(s); err != nil || n < 1 {
			t.Fatalf("%s=%q: want a positive number", envMeasureRecords, s)
		}
	}
	c := kafkatest.New(t)
	orders, group := c.Name("orders"), c.Name("billing")
	dlt := orders + "-dlt"
	c.CreateTopic(orders, 4)
	c.CreateTopic(orders+"-retry-1000", 4)
	c.CreateTopic(dlt, 4)
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.Seeds...), kgo.ProducerLinger(5*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	start := time.Now()
	now := time.Now()
	types := []string{"*net.OpError", "*json.SyntaxError", "*errors.errorString", "*pq.Error", "context.deadlineExceededError"}
	const batch = 5000
	for i := 0; i < n; i += batch {
		var rs []*kgo.Record
		for j := i; j < min(i+batch, n); j++ {
			value := fmt.Sprintf(`{"order":%d,"customer":"c-%d","items":[{"sku":"A-%d","qty":2,"price":"19.99"}],"note":"%s"}`,
				j, j%977, j%113, strings.Repeat("x", 60))
			r := deadLetter(dlt, orders, group, int64(j), fmt.Sprintf("order-%07d", j), []byte(value), types[j%len(types)],
				now.Add(-time.Duration(n-j)*(7*24*time.Hour/time.Duration(n))), kgo.RecordHeader{Key: "trace-id", Value: []byte(strconv.Itoa(j))})
			r.Partition = int32(j % 4)
			rs = append(rs, r)
		}
		if err := cl.ProduceSync(ctx, rs...).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	// 10000 records waiting in the first tier for group billing, half of
	// them overdue, so that the overview reads a tier too.
	var tier []*kgo.Record
	for j := range 10000 {
		st := retry.State{Attempt: 2, Due: now.Add(time.Duration(j-5000) * time.Second), OriginalTopic: orders,
			OriginalOffset: int64(j), OriginalTimestamp: now.Add(-time.Hour), FirstFailure: now.Add(-time.Hour), Group: group}
		tier = append(tier, &kgo.Record{Topic: orders + "-retry-1000", Partition: int32(j % 4), Value: []byte("v"), Headers: st.Append(nil, 0)})
	}
	if err := cl.ProduceSync(ctx, tier...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	var commits kadm.Offsets
	commits.AddOffset(orders, 0, 0, -1)
	if err := c.Admin.CommitAllOffsets(ctx, group, commits); err != nil {
		t.Fatal(err)
	}
	t.Logf("seeded %d DLT records and 10000 tier records in %v", n, time.Since(start).Round(time.Millisecond))

	log := &serverLog{}
	base, pid := runConsole(t, ctx, c.Seeds, log)
	_, idle := procMem(t, pid)
	get := func(path string) { fetch(t, base+path, nil) }
	const reps = 5
	for range reps {
		get("/")
		get("/dlt?topic=" + dlt)
	}
	ov, dl := log.elapsed("/"), log.elapsed("/dlt")
	for range reps {
		get("/dlt?topic=" + dlt + "&error_type=*pq.Error&page=10")
	}
	deep := log.elapsed("/dlt")[len(dl):]
	pageRSS, pagePeak := procMem(t, pid)

	// A dry run of every record, from the form's POST to its summary.
	form := url.Values{"action": {"dry-run"}, "topic": {dlt}, "run": {"measure-1"}}
	_, page := fetch(t, base+"/replay?topic="+dlt, nil)
	form.Set("csrf", regexp.MustCompile(`name="csrf" value="([0-9a-f]+)"`).FindStringSubmatch(page)[1])
	dryStart := time.Now()
	loc, _ := fetch(t, base+"/replay", form)
	var dry time.Duration
	kafkatest.Eventually(t, 5*time.Minute, func() bool {
		_, job := fetch(t, loc, nil)
		dry = time.Since(dryStart)
		return strings.Contains(job, `id="would-send">`+strconv.Itoa(n)+`<`)
	}, "the dry run did not report %d records", n)
	rss, peak := procMem(t, pid)
	median := func(ds []time.Duration) time.Duration {
		if len(ds) == 0 {
			t.Fatal("no request time in the console's log")
		}
		ds = slices.Clone(ds)
		slices.Sort(ds)
		return ds[len(ds)/2]
	}
	t.Logf("FIGURES console, %d DLT records in 4 partitions and 10000 in a tier, %d requests each: overview median %v (max %v); "+
		"DLT page median %v (max %v); DLT page filtered to one error type, page 10: median %v (max %v); "+
		"console RSS %.0f MiB before the first page, %.0f MiB after the pages (peak %.0f MiB); "+
		"dry run of all %d records %v, then RSS %.0f MiB (peak %.0f MiB)",
		n, reps, median(ov), slices.Max(ov), median(dl), slices.Max(dl), median(deep), slices.Max(deep),
		idle, pageRSS, pagePeak, n, dry.Round(time.Millisecond), rss, peak)
}
