package browsertest

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/kretry/kretry/internal/kafkatest"
	"github.com/kretry/kretry/retry"
)

// Environment variables of the browser test.
const (
	envRequire   = "KRETRY_REQUIRE_BROWSER"   // 1: no Chromium is a failure, not a skip
	envArtifacts = "KRETRY_BROWSER_ARTIFACTS" // directory for the screenshots
	envChromium  = "KRETRY_CHROMIUM"          // the browser binary, when not on PATH
)

// timeout bounds the whole test.
const timeout = 3 * time.Minute

// chromium returns the browser to drive, or skips (fails with
// KRETRY_REQUIRE_BROWSER=1) when there is none.
func chromium(t *testing.T) string {
	t.Helper()
	if p := os.Getenv(envChromium); p != "" {
		return p
	}
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome", "google-chrome-stable"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv(envRequire) == "1" {
		t.Fatalf("no Chromium on PATH and %s=1: install it (apt-get install -y chromium) or set %s", envRequire, envChromium)
	}
	t.Skipf("no Chromium on PATH (set %s=1 to make this a failure)", envRequire)
	return ""
}

// artifacts returns the screenshot directory.
func artifacts(t *testing.T) string {
	t.Helper()
	dir := os.Getenv(envArtifacts)
	if dir == "" {
		var err error
		if dir, err = os.MkdirTemp("", "kretry-console-screenshots-"); err != nil {
			t.Fatal(err)
		}
	} else if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshots in %s", dir)
	return dir
}

// deadLetter is a DLT record a kretry listener of group wrote for the
// record at offset of topic, after attempts deliveries.
func deadLetter(dlt, topic, group string, offset int64, key string, value []byte, errType string, at time.Time,
	user ...kgo.RecordHeader) *kgo.Record {
	st := retry.State{Attempt: 3, OriginalTopic: topic, OriginalOffset: offset, OriginalTimestamp: at.Add(-time.Minute),
		FirstFailure: at.Add(-50 * time.Second), Error: "boom " + key, ErrorType: errType, Reason: retry.ReasonExhausted, Group: group}
	return &kgo.Record{Topic: dlt, Key: []byte(key), Value: value, Timestamp: at, Headers: st.Append(user, 0)}
}

// seeded is the cluster the console shows: plan orders with two tiers and
// a DLT of 30 records of group billing (10 *json.SyntaxError, 20
// *net.OpError, from 3 hours to an hour ago) plus one hostile record, and 2
// records not yet due and 1 overdue in the first tier.
type seeded struct {
	c                         *kafkatest.Cluster
	orders, tier1, tier2, dlt string
	group                     string
}

func seed(t *testing.T) *seeded {
	t.Helper()
	c := kafkatest.New(t)
	s := &seeded{c: c, orders: c.Name("orders"), group: c.Name("billing")}
	s.tier1, s.tier2, s.dlt = s.orders+"-retry-1000", s.orders+"-retry-5000", s.orders+"-dlt"
	for _, tp := range []string{s.orders, s.tier1, s.tier2, s.dlt} {
		c.CreateTopic(tp, 1)
	}
	now := time.Now()
	var rs []*kgo.Record
	for i := range 30 {
		typ := "*net.OpError"
		if i%3 == 0 {
			typ = "*json.SyntaxError"
		}
		rs = append(rs, deadLetter(s.dlt, s.orders, s.group, int64(i), fmt.Sprintf("order-%02d", i),
			[]byte(fmt.Sprintf(`{"order":%d,"items":[{"sku":"A-%d","qty":2}]}`, i, i)), typ, now.Add(-3*time.Hour+time.Duration(i)*4*time.Minute),
			kgo.RecordHeader{Key: "trace-id", Value: []byte(fmt.Sprintf("trace-%02d", i))}))
	}
	rs = append(rs, deadLetter(s.dlt, s.orders, s.group, 99, `<script>alert("key")</script>`, []byte(`<img src=x onerror=alert(1)>`),
		"*errors.errorString", now, kgo.RecordHeader{Key: `<b onmouseover=alert(2)>h</b>`, Value: []byte{0xff, '<', '>'}}))
	for _, due := range []time.Duration{time.Hour, 2 * time.Hour, -time.Minute} {
		st := retry.State{Attempt: 2, Due: now.Add(due), OriginalTopic: s.orders, OriginalTimestamp: now.Add(-time.Hour),
			FirstFailure: now.Add(-time.Hour), Group: s.group}
		rs = append(rs, &kgo.Record{Topic: s.tier1, Value: []byte("t"), Headers: st.Append(nil, 0)})
	}
	c.ProduceToPartitions(rs...)
	var os kadm.Offsets
	os.AddOffset(s.orders, 0, 0, -1)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := c.Admin.CommitAllOffsets(ctx, s.group, os); err != nil {
		t.Fatal(err)
	}
	return s
}

// startConsole builds kretry and runs "kretry console --allow-replay" on
// a free loopback port, showing only the plans named with prefix plans,
// and returns its URL.
func startConsole(t *testing.T, ctx context.Context, brokers []string, plans string) string {
	t.Helper()
	base, _ := runConsole(t, ctx, brokers, &logWriter{t: t}, "--plans", "^"+regexp.QuoteMeta(plans))
	return base
}

// runConsole builds kretry and runs "kretry console --allow-replay" on a
// free loopback port with its log to stderr and the extra flags, and
// returns its URL and process ID. The console is interrupted when the test ends.
func runConsole(t *testing.T, ctx context.Context, brokers []string, stderr io.Writer, extra ...string) (string, int) {
	t.Helper()
	dir := t.TempDir()
	bin := filepath.Join(dir, "kretry")
	// Built in kretry's own module (three levels up), with its go.sum.
	build := exec.CommandContext(ctx, "go", "build", "-o", bin, "./cmd/kretry")
	build.Dir = filepath.Join("..", "..", "..")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	state := filepath.Join(dir, "state")
	if err := os.Mkdir(state, 0o700); err != nil {
		t.Fatal(err)
	}
	cmd := exec.CommandContext(ctx, bin, append([]string{"console", "--listen", "127.0.0.1:0", "--allow-replay", "--state-dir", state,
		"--brokers", strings.Join(brokers, ",")}, extra...)...)
	cmd.Stderr = stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Signal(os.Interrupt)
		cmd.Wait()
	})
	lines := bufio.NewScanner(out)
	if !lines.Scan() {
		t.Fatalf("kretry console printed nothing: %v", lines.Err())
	}
	m := regexp.MustCompile(`serving (http://127\.0\.0\.1:\d+)/ \(replay allowed\)`).FindStringSubmatch(lines.Text())
	if m == nil {
		t.Fatalf("kretry console's first line: %q", lines.Text())
	}
	go func() {
		for lines.Scan() {
		}
	}()
	return m[1], cmd.Process.Pid
}

// logWriter passes the console's log to the test log.
type logWriter struct{ t *testing.T }

func (w *logWriter) Write(b []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(b), "\n"))
	return len(b), nil
}

// text reads the text of the first element matching sel.
func text(sel string, out *string) chromedp.Action {
	return chromedp.Text(sel, out, chromedp.ByQuery, chromedp.NodeVisible)
}

// shot saves a full-page PNG screenshot as dir/name.
func shot(dir, name string) chromedp.Action {
	return chromedp.ActionFunc(func(ctx context.Context) error {
		var buf []byte
		if err := chromedp.FullScreenshot(&buf, 100).Do(ctx); err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(dir, name), buf, 0o644)
	})
}

// waitFor waits, for up to a minute, until the JavaScript expression
// cond is true on the page shown. It evaluates cond every 100ms on
// whatever page is current, so it may span navigations: a click on a
// link, a form's POST and redirect, the job page reloading itself every
// second until the job ends. An evaluation that fails because the page
// is being replaced counts as false.
func waitFor(cond string) chromedp.Action {
	return chromedp.ActionFunc(func(ctx context.Context) error {
		ctx, cancel := context.WithTimeout(ctx, time.Minute)
		defer cancel()
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
		var last error
		for {
			var ok bool
			if last = chromedp.Evaluate(cond, &ok).Do(ctx); last == nil && ok {
				return nil
			}
			select {
			case <-ctx.Done():
				return fmt.Errorf("waiting for %s: %w (last evaluation: %v)", cond, ctx.Err(), last)
			case <-tick.C:
			}
		}
	})
}

// waitText waits until the element sel exists and its text is want.
func waitText(sel, want string) chromedp.Action {
	return waitFor(fmt.Sprintf(`(() => { const e = document.querySelector(%q); return !!e && e.textContent.trim() === %q; })()`, sel, want))
}

// waitElem waits until an element matches sel.
func waitElem(sel string) chromedp.Action {
	return waitFor(fmt.Sprintf(`!!document.querySelector(%q) && document.readyState === "complete"`, sel))
}

func TestConsoleInBrowser(t *testing.T) {
	browser := chromium(t)
	dir := artifacts(t)
	s := seed(t)
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	base := startConsole(t, ctx, s.c.Seeds, s.c.Name(""))

	actx, acancel := chromedp.NewExecAllocator(ctx, append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(browser), chromedp.NoSandbox, chromedp.DisableGPU, chromedp.WindowSize(1280, 900))...)
	defer acancel()
	bctx, bcancel := chromedp.NewContext(actx, chromedp.WithLogf(t.Logf))
	defer bcancel()
	// Any dialog (alert) would mean that a record's content ran as script.
	dialogs := make(chan string, 4)
	chromedp.ListenTarget(bctx, func(ev any) {
		if d, ok := ev.(*page.EventJavascriptDialogOpening); ok {
			dialogs <- d.Message
			go chromedp.Run(bctx, page.HandleJavaScriptDialog(true))
		}
	})

	// Overview: the plan, its DLT count and the tier lag of the group.
	plan := "#plan-" + s.orders
	var dltCount, notDue, overdue string
	if err := chromedp.Run(bctx,
		chromedp.Navigate(base+"/"),
		chromedp.WaitVisible(plan, chromedp.ByQuery),
		text(plan+" .dlt-count", &dltCount),
		text(plan+" .not-due", &notDue),
		text(plan+" .overdue", &overdue),
		shot(dir, "console-overview.png"),
	); err != nil {
		t.Fatalf("overview: %v", err)
	}
	if dltCount != "31" || notDue != "2" || overdue != "1" {
		t.Errorf("overview shows DLT count %q, not due %q, overdue %q; want 31, 2, 1", dltCount, notDue, overdue)
	}

	// The DLT page, then the *json.SyntaxError group.
	var matched, groupMatched string
	var groups []string
	if err := chromedp.Run(bctx,
		chromedp.Click(plan+" a.dlt-link", chromedp.ByQuery),
		waitElem("#arrivals"),
		text("#matched", &matched),
		chromedp.Evaluate(`[...document.querySelectorAll('#groups a.group-link')].map(a => a.textContent)`, &groups),
		shot(dir, "console-dlt.png"),
	); err != nil {
		t.Fatalf("DLT page: %v", err)
	}
	if matched != "31" || !slices.Contains(groups, "*json.SyntaxError") || !slices.Contains(groups, "*net.OpError") {
		t.Fatalf("DLT page: matched %q, groups %q", matched, groups)
	}
	if err := chromedp.Run(bctx,
		chromedp.Click(`//a[@class="group-link"][text()="*json.SyntaxError"]`, chromedp.BySearch),
		waitText("#matched", "10"),
		text("#matched", &groupMatched),
	); err != nil {
		t.Fatalf("group: %v", err)
	}

	// A record of the group: its headers decoded, its history.
	var attempt, trace, errType string
	var history []string
	if err := chromedp.Run(bctx,
		chromedp.Click("a.record-link", chromedp.ByQuery),
		waitElem("#headers"),
		chromedp.Text(`//tr[td[@class="hname"][text()="kretry-attempt"]]/td[4]`, &attempt, chromedp.BySearch),
		chromedp.Text(`//tr[td[@class="hname"][text()="trace-id"]]/td[4]`, &trace, chromedp.BySearch),
		text("#error-type", &errType),
		chromedp.Evaluate(`[...document.querySelectorAll('#history td:nth-child(2)')].map(td => td.textContent)`, &history),
		shot(dir, "console-record.png"),
	); err != nil {
		t.Fatalf("record page: %v", err)
	}
	if attempt != "3" || !strings.HasPrefix(trace, "trace-") || errType != "*json.SyntaxError" || len(history) != 3 {
		t.Errorf("record page: attempt %q, trace-id %q, error type %q, history %q", attempt, trace, errType, history)
	}

	// The hostile record is shown as text; no script runs.
	var hostileKey string
	var scripts int
	if err := chromedp.Run(bctx,
		chromedp.Navigate(base+"/record?topic="+s.dlt+"&partition=0&offset=30"),
		chromedp.WaitVisible("#headers", chromedp.ByQuery),
		chromedp.Text("details[open] pre", &hostileKey, chromedp.ByQuery),
		chromedp.Evaluate(`document.scripts.length + document.querySelectorAll('img,b').length`, &scripts),
	); err != nil {
		t.Fatalf("hostile record: %v", err)
	}
	if hostileKey != `<script>alert("key")</script>` || scripts != 0 {
		t.Errorf("hostile record: key shown as %q, %d script/img/b elements", hostileKey, scripts)
	}

	// Replay the group: the dry run, then the confirmed replay.
	run := "browser-" + strings.ToLower(time.Now().UTC().Format("150405.000"))
	var wouldSend, firstState, sent, status, progress string
	if err := chromedp.Run(bctx,
		chromedp.Navigate(base+"/dlt?topic="+s.dlt),
		chromedp.Click(`//a[@class="group-link"][text()="*json.SyntaxError"]`, chromedp.BySearch),
		waitText("#matched", "10"),
		chromedp.Click("#replay-link", chromedp.ByQuery),
		waitElem("#replay-form"),
		chromedp.SetValue("#run", run, chromedp.ByQuery),
		chromedp.SetValue(`input[name="rate"]`, "4", chromedp.ByQuery),
		chromedp.Click("#dry-run", chromedp.ByQuery),
		waitText("#status", "dry-run"),
		text("#would-send", &wouldSend),
		shot(dir, "console-dry-run.png"),
		chromedp.SendKeys("#confirm", run, chromedp.ByQuery),
		chromedp.Click("#replay", chromedp.ByQuery),
		waitFor(`(() => { const h = document.querySelector('h1'); return !!h && h.textContent.startsWith('Replay of run'); })()`),
		chromedp.Evaluate(`(document.querySelector('#state') || {}).textContent || 'finished'`, &firstState),
		shot(dir, "console-replay-progress.png"),
		waitText("#status", "done"),
		text("#sent", &sent),
		text("#status", &status),
		chromedp.AttributeValue("#progress", "value", &progress, nil, chromedp.ByQuery),
		shot(dir, "console-replay-done.png"),
	); err != nil {
		t.Fatalf("replay: %v", err)
	}
	if wouldSend != "10" || sent != "10" || status != "done" || progress != "100" {
		t.Errorf("replay: would send %q, sent %q, status %q, progress %q; want 10, 10, done, 100", wouldSend, sent, status, progress)
	}
	// At 4 records a second the 10 records take over 2 s: the page first
	// shows the replay running.
	if firstState != "running…" {
		t.Errorf("the replay's page first showed %q, want its progress while running", firstState)
	}
	n := 0
	for _, r := range s.c.ReadAll(s.tier1) {
		for _, h := range r.Headers {
			if h.Key == retry.HeaderReplayRun && string(h.Value) == run {
				n++
			}
		}
	}
	if n != 10 {
		t.Errorf("%s holds %d records of run %s, want 10", s.tier1, n, run)
	}
	select {
	case msg := <-dialogs:
		t.Errorf("a page opened a dialog: %q", msg)
	default:
	}
}
