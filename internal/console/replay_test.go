package console

import (
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/kretry/kretry/retry"
)

// dryRun starts a dry run of the fixture's DLT and returns its page.
func dryRun(t *testing.T, s *Server, f *fixture, run string, extra url.Values) (string, string) {
	t.Helper()
	form := url.Values{"csrf": {csrf(t, s, "/replay?topic="+f.dlt)}, "action": {"dry-run"}, "topic": {f.dlt}, "run": {run}}
	for k, v := range extra {
		form[k] = v
	}
	rec := post(t, s, "/replay", form)
	if rec.Code != http.StatusSeeOther {
		t.Fatalf("dry run: %d:\n%s", rec.Code, rec.Body.String())
	}
	loc := rec.Header().Get("Location")
	return loc, finish(t, s, loc)
}

// The replay flow: a dry run shows what would be sent and where; the
// replay needs that dry run and the run ID typed again; it sends each
// selected record once to its group's first retry tier and says so.
func TestReplayFlow(t *testing.T) {
	f := newFixture(t, 9)
	s, _ := newServer(t, f.c, Config{AllowReplay: true, StateDir: t.TempDir()})
	loc, dry := dryRun(t, s, f, "fix-1", url.Values{"error_type": {"*json.SyntaxError"}})
	if cell(dry, "status") != "dry-run" || cell(dry, "would-send") != "3" || cell(dry, "sum-matched") != "3" {
		t.Fatalf("dry run: status %q would send %q matched %q:\n%s", cell(dry, "status"), cell(dry, "would-send"), cell(dry, "sum-matched"), dry)
	}
	if !strings.Contains(dry, "<code>"+f.tier1+"</code></td><td class=\"n\">3</td><td>only group "+f.group) {
		t.Errorf("dry run does not say the 3 records go to %s for group %s only:\n%s", f.tier1, f.group, dry)
	}
	if got := replayedFrom(t, f, "fix-1"); len(got) != 0 {
		t.Fatalf("the dry run sent %d records", len(got))
	}
	id := strings.TrimPrefix(loc, "/jobs/")
	tok := csrf(t, s, loc)
	for name, form := range map[string]url.Values{
		"no confirmation":    {"csrf": {tok}, "action": {"replay"}, "dry_run": {id}},
		"wrong confirmation": {"csrf": {tok}, "action": {"replay"}, "dry_run": {id}, "confirm": {"fix-2"}},
		"no dry run":         {"csrf": {tok}, "action": {"replay"}, "confirm": {"fix-1"}},
		"unknown dry run":    {"csrf": {tok}, "action": {"replay"}, "dry_run": {"feed"}, "confirm": {"fix-1"}},
		"unknown action":     {"csrf": {tok}, "action": {"delete"}},
		"bad run ID":         {"csrf": {tok}, "action": {"dry-run"}, "topic": {f.dlt}, "run": {"a/b"}},
		"bad rate":           {"csrf": {tok}, "action": {"dry-run"}, "topic": {f.dlt}, "run": {"r"}, "rate": {"-1"}},
	} {
		if rec := post(t, s, "/replay", form); rec.Code != http.StatusBadRequest || !strings.Contains(rec.Body.String(), "field ") {
			t.Errorf("%s: %d, want 400 naming the field:\n%s", name, rec.Code, rec.Body.String())
		}
	}
	if got := replayedFrom(t, f, "fix-1"); len(got) != 0 {
		t.Fatalf("a refused replay sent %d records", len(got))
	}

	rec := post(t, s, "/replay", url.Values{"csrf": {tok}, "action": {"replay"}, "dry_run": {id}, "confirm": {"fix-1"}})
	if rec.Code != http.StatusSeeOther {
		t.Fatalf("replay: %d:\n%s", rec.Code, rec.Body.String())
	}
	done := finish(t, s, rec.Header().Get("Location"))
	if cell(done, "status") != "done" || cell(done, "sent") != "3" || !strings.Contains(done, `<progress id="progress" max="100" value="100">`) {
		t.Fatalf("replay: status %q sent %q:\n%s", cell(done, "status"), cell(done, "sent"), done)
	}
	got := replayedFrom(t, f, "fix-1")
	if len(got) != 3 {
		t.Fatalf("%s holds %d records of run fix-1, want 3: %v", f.tier1, len(got), got)
	}
	for src, n := range got {
		if n != 1 {
			t.Errorf("%s sent %d times", src, n)
		}
	}
	// The same run again: its dry run says it is done and offers no replay.
	_, again := dryRun(t, s, f, "fix-1", url.Values{"error_type": {"*json.SyntaxError"}})
	if cell(again, "status") != "already-done" || strings.Contains(again, `id="confirm-form"`) || len(replayedFrom(t, f, "fix-1")) != 3 {
		t.Errorf("a finished run: status %q:\n%s", cell(again, "status"), again)
	}
}

// replayedFrom counts the records of the fixture's first tier sent by run,
// by the DLT record they came from (retry.HeaderReplayedFrom).
func replayedFrom(t *testing.T, f *fixture, run string) map[string]int {
	t.Helper()
	header := func(r *kgo.Record, key string) string {
		i := slices.IndexFunc(r.Headers, func(h kgo.RecordHeader) bool { return h.Key == key })
		if i < 0 {
			return ""
		}
		return string(r.Headers[i].Value)
	}
	out := map[string]int{}
	for _, r := range f.c.ReadAll(f.tier1) {
		if header(r, retry.HeaderReplayRun) == run {
			out[header(r, retry.HeaderReplayedFrom)]++
		}
	}
	return out
}

// Read-only by default: a dry run works, a replay is refused.
func TestReplayReadOnly(t *testing.T) {
	f := newFixture(t, 3)
	s, _ := newServer(t, f.c, Config{})
	loc, dry := dryRun(t, s, f, "ro-1", nil)
	if cell(dry, "would-send") != "3" || !strings.Contains(dry, `id="read-only"`) || strings.Contains(dry, `id="confirm-form"`) {
		t.Errorf("read-only dry run page:\n%s", dry)
	}
	rec := post(t, s, "/replay", url.Values{"csrf": {s.token}, "action": {"replay"}, "dry_run": {strings.TrimPrefix(loc, "/jobs/")}, "confirm": {"ro-1"}})
	if rec.Code != http.StatusForbidden || !strings.Contains(rec.Body.String(), "--allow-replay") {
		t.Errorf("replay on a read-only console: %d:\n%s", rec.Code, rec.Body.String())
	}
	if len(replayedFrom(t, f, "ro-1")) != 0 {
		t.Error("a read-only console replayed")
	}
}

// Every mutating request needs the CSRF token and a same-origin request;
// a GET never starts or stops anything.
func TestCSRFAndGET(t *testing.T) {
	f := newFixture(t, 3)
	s, _ := newServer(t, f.c, Config{AllowReplay: true, StateDir: t.TempDir()})
	form := func(tok string) url.Values {
		return url.Values{"csrf": {tok}, "action": {"dry-run"}, "topic": {f.dlt}, "run": {"c-1"}}
	}
	for name, rec := range map[string]interface{ Result() *http.Response }{
		"no token":         post(t, s, "/replay", url.Values{"action": {"dry-run"}, "topic": {f.dlt}, "run": {"c-1"}}),
		"wrong token":      post(t, s, "/replay", form(strings.Repeat("0", len(s.token)))),
		"short token":      post(t, s, "/replay", form(s.token[:10])),
		"cross-site":       post(t, s, "/replay", form(s.token), "Sec-Fetch-Site", "cross-site"),
		"other origin":     post(t, s, "/replay", form(s.token), "Origin", "http://evil.example"),
		"cancel no token":  post(t, s, "/jobs/x/cancel", url.Values{}),
		"token in the URL": post(t, s, "/replay?csrf="+s.token, url.Values{"action": {"dry-run"}, "topic": {f.dlt}, "run": {"c-1"}}),
	} {
		if code := rec.Result().StatusCode; code != http.StatusForbidden {
			t.Errorf("%s: %d, want 403", name, code)
		}
	}
	if rec := post(t, s, "/replay", form(s.token), "Origin", "http://example.com", "Sec-Fetch-Site", "same-origin"); rec.Code != http.StatusSeeOther {
		t.Errorf("same origin (httptest's host example.com): %d, want 303:\n%s", rec.Code, rec.Body.String())
	}
	jobs := func() int { s.mu.Lock(); defer s.mu.Unlock(); return len(s.jobs) }
	before := jobs()
	for _, target := range []string{"/replay?action=dry-run&topic=" + f.dlt + "&run=g-1&csrf=" + s.token,
		"/replay?action=replay&dry_run=x&confirm=g-1&csrf=" + s.token} {
		if code, body := get(t, s, target); code != http.StatusOK || !strings.Contains(body, `id="replay-form"`) {
			t.Errorf("GET %s: %d, want the form", target, code)
		}
	}
	if code, _ := get(t, s, "/jobs/x/cancel"); code != http.StatusMethodNotAllowed {
		t.Errorf("GET cancel: %d, want 405", code)
	}
	if jobs() != before {
		t.Errorf("GET requests started %d jobs", jobs()-before)
	}
}
