package console

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl/plain"

	"github.com/kretry/kretry/internal/kafkatest"
	"github.com/kretry/kretry/retry"
)

// fixture is a cluster with one plan: main topic orders, tiers
// orders-retry-1000 and orders-retry-5000, DLT orders-dlt holding n
// records of group billing (every third a *json.SyntaxError, the others
// *net.OpError), and in the first tier 2 records not yet due and 1
// overdue, committed by billing up to none of them.
type fixture struct {
	c                         *kafkatest.Cluster
	orders, tier1, tier2, dlt string
	group                     string
	n                         int
	now                       time.Time
}

func newFixture(t *testing.T, n int) *fixture {
	t.Helper()
	c := kafkatest.New(t)
	f := &fixture{c: c, orders: c.Name("orders"), group: c.Name("billing"), n: n, now: time.Now()}
	f.tier1, f.tier2, f.dlt = f.orders+"-retry-1000", f.orders+"-retry-5000", f.orders+"-dlt"
	for _, tp := range []string{f.orders, f.tier1, f.tier2} {
		c.CreateTopic(tp, 1)
	}
	c.CreateTopic(f.dlt, 2)
	var rs []*kgo.Record
	for i := range n {
		typ := "*net.OpError"
		if i%3 == 0 {
			typ = "*json.SyntaxError"
		}
		rs = append(rs, deadLetter(f.dlt, int32(i%2), f.orders, f.group, 0, int64(i), []byte(fmt.Sprintf("k%03d", i)),
			[]byte(fmt.Sprintf(`{"order":%d}`, i)), typ, retry.ReasonExhausted, 3, f.now.Add(-2*time.Hour+time.Duration(i)*time.Second)))
	}
	rs = append(rs, tierRec(f.tier1, f.orders, f.group, f.now.Add(time.Hour)), tierRec(f.tier1, f.orders, f.group, f.now.Add(2*time.Hour)),
		tierRec(f.tier1, f.orders, f.group, f.now.Add(-time.Minute)))
	c.ProduceToPartitions(rs...)
	commit(t, c, f.group, f.orders, 0, 0)
	return f
}

func TestOverviewPage(t *testing.T) {
	f := newFixture(t, 12)
	s, _ := newServer(t, f.c, Config{})
	code, body := get(t, s, "/")
	if code != http.StatusOK {
		t.Fatalf("GET / = %d:\n%s", code, body)
	}
	row := regexp.MustCompile(`<tr><td><a href="#plan-` + regexp.QuoteMeta(f.orders) + `">.*</tr>`).FindString(body)
	if !strings.Contains(row, `<td class="n">2</td><td class="n">3</td><td><div class="group-lag"><code>`+f.group+`</code>: 2 not yet due, <span class="warn">1 overdue</span> (oldest`) ||
		!strings.Contains(row, `<td class="n">12</td></tr>`) {
		t.Errorf("summary row: 2 tiers, 3 tier records, 2 not due, 1 overdue, 12 DLT records, got:\n%s", row)
	}
	sec := section(t, body, "plan-"+f.orders)
	for _, want := range []string{
		`<a class="dlt-link" href="/dlt?topic=` + f.dlt + `">` + f.dlt + `</a></td><td class="n dlt-count">12</td>`,
		`<h3>Group <code>` + f.group + `</code></h3>`,
		`<td class="n not-due">2</td><td class="n overdue">1</td>`,
		`<code>` + f.tier1 + `</code></td><td class="n">3</td>`,
	} {
		if !strings.Contains(sec, want) {
			t.Errorf("the plan's section lacks %s:\n%s", want, sec)
		}
	}
	if i, j := strings.Index(sec, f.tier1), strings.Index(sec, f.tier2); i < 0 || j < i {
		t.Errorf("tiers not in hop order (1000 before 5000):\n%s", sec)
	}
}

// section returns the <section> of body with id.
func section(t *testing.T, body, id string) string {
	t.Helper()
	i := strings.Index(body, `<section class="plan" id="`+id+`">`)
	if i < 0 {
		t.Fatalf("no section %s in:\n%s", id, body)
	}
	j := strings.Index(body[i:], "</section>")
	return body[i : i+j]
}

func TestDLTPage(t *testing.T) {
	f := newFixture(t, 12)
	s, _ := newServer(t, f.c, Config{PageSize: 5})
	code, body := get(t, s, "/dlt?topic="+f.dlt)
	if code != http.StatusOK {
		t.Fatalf("GET /dlt = %d:\n%s", code, body)
	}
	if cell(body, "read") != "12" || cell(body, "matched") != "12" {
		t.Errorf("read %q matched %q, want 12 and 12", cell(body, "read"), cell(body, "matched"))
	}
	rows := regexp.MustCompile(`<a class="group-link" href="([^"]+)">([^<]+)</a></td><td>([^<]+)</td><td>([^<]+)</td><td>([^<]+)</td><td class="n count">(\d+)</td>`).
		FindAllStringSubmatch(body, -1)
	if len(rows) != 2 {
		t.Fatalf("groups table has %d rows, want 2:\n%s", len(rows), body)
	}
	if rows[0][2] != "*json.SyntaxError" || rows[0][6] != "4" || rows[1][2] != "*net.OpError" || rows[1][6] != "8" ||
		rows[0][3] != f.orders || rows[0][4] != f.group || rows[0][5] != "1h-1d" {
		t.Errorf("groups = %q", rows)
	}
	if n := strings.Count(body, "<rect "); n == 0 || !strings.Contains(body, `<svg id="arrivals"`) {
		t.Errorf("no arrivals chart:\n%s", body)
	}
	if n := strings.Count(body, `class="record-link"`); n != 5 {
		t.Errorf("page 1 lists %d records, want 5", n)
	}
	// Newest first: the last record written is the newest.
	if !strings.Contains(body, `<td class="key">k011</td>`) {
		t.Errorf("page 1 lacks the newest record k011")
	}

	// Drill into a group: its link selects its 4 records.
	link := strings.ReplaceAll(rows[0][1], "&amp;", "&")
	_, g := get(t, s, link)
	if cell(g, "matched") != "4" || strings.Count(g, `class="record-link"`) != 4 {
		t.Errorf("group page: matched %q, %d records, want 4 and 4:\n%s", cell(g, "matched"), strings.Count(g, `class="record-link"`), g)
	}

	// A reason links to the group's records with that reason.
	reason := regexp.MustCompile(`<a class="reason" href="([^"]+)">exhausted=4</a>`).FindStringSubmatch(body)
	if reason == nil {
		t.Fatalf("no reason link exhausted=4:\n%s", body)
	}
	_, rb := get(t, s, strings.ReplaceAll(reason[1], "&amp;", "&"))
	if cell(rb, "matched") != "4" || !strings.Contains(rb, `<span class="filter">reason = exhausted</span>`) {
		t.Errorf("reason page: matched %q:\n%s", cell(rb, "matched"), rb)
	}

	// Page 3 holds the 2 oldest; it has no next page.
	_, p3 := get(t, s, "/dlt?topic="+f.dlt+"&page=3")
	if n := strings.Count(p3, `class="record-link"`); n != 2 || !strings.Contains(p3, `<td class="key">k000</td>`) || strings.Contains(p3, `id="next"`) {
		t.Errorf("page 3 lists %d records (want 2, k000 last, no next page):\n%s", n, p3)
	}

	for _, bad := range []string{"/dlt", "/dlt?topic=x&since=yesterday", "/dlt?topic=x&page=0", "/dlt?topic=x&key=a&key_hex=61"} {
		if code, body := get(t, s, bad); code != http.StatusBadRequest || !strings.Contains(body, "parameter") {
			t.Errorf("GET %s = %d, want 400 naming the parameter:\n%s", bad, code, body)
		}
	}
	if code, _ := get(t, s, "/dlt?topic="+f.c.Name("missing")); code != http.StatusBadGateway {
		t.Errorf("a DLT that does not exist: %d, want 502", code)
	}
}

// hostile returns records whose keys, values and headers try to break
// out of the page, plus one not valid UTF-8 and one of 1 MiB.
func hostile(dlt, topic, group string, at time.Time) []*kgo.Record {
	script := []byte(`<script>alert("k")</script>`)
	big := bytes.Repeat([]byte("<b>x</b>"), 1<<20/8) // 1 MiB
	return []*kgo.Record{
		deadLetter(dlt, 0, topic, group, 0, 1, script, []byte(`"></pre><script>alert(1)</script><pre>`),
			`<img src=x onerror=alert(2)>`, retry.ReasonPermanent, 1, at,
			kgo.RecordHeader{Key: `<svg onload=alert(3)>`, Value: []byte(`"><script>alert(4)</script>`)}),
		deadLetter(dlt, 0, topic, group, 0, 2, []byte{0xff, 0xfe, '<', 0x00}, []byte{0xc3, 0x28, '<', '>', 0x1b, '[', '3', '1', 'm'},
			"x", retry.ReasonPermanent, 1, at, kgo.RecordHeader{Key: "bin\xff", Value: []byte{0x00, 0x01, 0xfe}}),
		deadLetter(dlt, 0, topic, group, 0, 3, []byte("big"), big, "x", retry.ReasonPermanent, 1, at),
		deadLetter(dlt, 0, topic, group, 0, 4, []byte("json"), []byte(`{"a":[1,2,{"b":"<i>"}]}`), "x", retry.ReasonPermanent, 1, at),
	}
}

// scriptTag finds any tag or attribute a hostile record could inject.
var scriptTag = regexp.MustCompile(`(?i)<script|<img|<svg onload|<b>x`)

func TestRecordPageHostile(t *testing.T) {
	c := kafkatest.New(t)
	dlt, orders, group := c.Name("weird-dlt"), c.Name("weird"), c.Name("g")
	createTopic(t, c, dlt, 1)
	rs := hostile(dlt, orders, group, time.Now().Add(-time.Minute))
	produce(t, producer(t, c), rs...)
	s, _ := newServer(t, c, Config{MaxValueBytes: 4096})

	pages := map[string]string{}
	for i, r := range rs {
		target := recordURL(dlt, 0, r.Offset)
		code, body := get(t, s, target)
		if code != http.StatusOK {
			t.Fatalf("GET %s = %d:\n%s", target, code, body)
		}
		pages[strconv.Itoa(i)] = body
		// Nothing the record carries may become markup (the page's own
		// <svg> appears only on DLT pages).
		if m := scriptTag.FindString(body); m != "" {
			t.Errorf("record %d: the page carries %q from the record:\n%s", i, m, body)
		}
	}
	_, list := get(t, s, dltURL(dlt, nil))
	if m := scriptTag.FindString(list); m != "" {
		t.Errorf("DLT page carries %q from a record", m)
	}
	for _, want := range []string{`&lt;script&gt;alert(&#34;k&#34;)&lt;/script&gt;`, `&lt;svg onload=alert(3)&gt;`,
		`&#34;&gt;&lt;script&gt;alert(4)&lt;/script&gt;`, `&lt;img src=x onerror=alert(2)&gt;`} {
		if !strings.Contains(pages["0"]+list, want) {
			t.Errorf("hostile record's page lacks the escaped %s", want)
		}
	}
	// Invalid UTF-8 and control characters are shown as escapes, headers
	// decoded by their encodings, binary ones in hex.
	for _, want := range []string{`\xff\xfe&lt;\x00`, `\xc3(&lt;&gt;\x1b[31m`, `bin\xff`, `>hex</td><td class="wrap hvalue">0001fe`} {
		if !strings.Contains(pages["1"], want) {
			t.Errorf("invalid UTF-8 record's page lacks %s:\n%s", want, pages["1"])
		}
	}
	for _, want := range []string{`>kretry-attempt</td><td class="n">4</td><td>int32</td><td class="wrap hvalue">1<`,
		`>kretry-original-offset</td><td class="n">8</td><td>int64</td><td class="wrap hvalue">2<`, `>kretry-original-timestamp</td><td class="n">8</td><td>time</td>`} {
		if !strings.Contains(pages["1"], want) {
			t.Errorf("headers lack %s", want)
		}
	}
	// 1 MiB: the page shows 4096 bytes and links the whole value.
	if n := len(pages["2"]); n > 64<<10 {
		t.Errorf("the 1 MiB record's page is %d bytes", n)
	}
	if !strings.Contains(pages["2"], "the first 4096 shown") || !strings.Contains(pages["2"], "download all 1048576 bytes") {
		t.Errorf("the 1 MiB record's page does not say it is cut:\n%.3000s", pages["2"])
	}
	raw := regexp.MustCompile(`href="(/record/raw[^"]*part=value[^"]*)"`).FindStringSubmatch(pages["2"])
	if raw == nil {
		t.Fatal("no download link")
	}
	code, body := get(t, s, strings.ReplaceAll(raw[1], "&amp;", "&"))
	if code != http.StatusOK || body != string(rs[2].Value) {
		t.Errorf("download: %d, %d bytes, want the whole value (%d bytes)", code, len(body), len(rs[2].Value))
	}
	// JSON is pretty-printed, escaped.
	if !strings.Contains(pages["3"], "{\n  &#34;a&#34;: [\n    1,") || !strings.Contains(pages["3"], `&#34;&lt;i&gt;&#34;`) {
		t.Errorf("JSON value not pretty-printed:\n%s", pages["3"])
	}
	// The retry history: original record, first failure, dead-lettered.
	if !strings.Contains(pages["0"], "original record") || !strings.Contains(pages["0"], "first failure") ||
		!strings.Contains(pages["0"], "dead-lettered (reason permanent, group "+group+")") {
		t.Errorf("no retry history:\n%s", pages["0"])
	}
	for _, bad := range []string{recordURL(dlt, 0, 99), recordURL(dlt, 5, 0)} {
		if code, _ := get(t, s, bad); code != http.StatusNotFound && code != http.StatusBadGateway {
			t.Errorf("GET %s = %d, want 404 or 502", bad, code)
		}
	}
	if code, _ := get(t, s, "/record?topic=x&partition=a&offset=1"); code != http.StatusBadRequest {
		t.Errorf("bad partition: %d, want 400", code)
	}
}

// Every response forbids scripts, framing and sniffing.
func TestSecurityHeaders(t *testing.T) {
	c := kafkatest.New(t)
	s, _ := newServer(t, c, Config{})
	for _, target := range []string{"/", "/replay", "/nowhere", "/static/console.css"} {
		req, _ := http.NewRequest(http.MethodGet, target, nil)
		rec := httptest.NewRecorder()
		s.ServeHTTP(rec, req)
		h := rec.Header()
		if csp := h.Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'none'") || strings.Contains(csp, "script-src") {
			t.Errorf("%s: CSP %q", target, csp)
		}
		if h.Get("X-Content-Type-Options") != "nosniff" || h.Get("X-Frame-Options") != "DENY" {
			t.Errorf("%s: headers %v", target, h)
		}
	}
}

// A console bound to loopback answers only to loopback host names: a
// DNS-rebinding page (Host evil.example) is refused.
func TestHostCheck(t *testing.T) {
	c := kafkatest.New(t)
	hosts := LoopbackHosts("127.0.0.1:8080")
	s, _ := newServer(t, c, Config{AllowedHosts: hosts})
	for host, want := range map[string]int{"127.0.0.1:8080": 200, "localhost:8080": 200, "[::1]:8080": 200,
		"evil.example:8080": http.StatusMisdirectedRequest, "127.0.0.1:9090": http.StatusMisdirectedRequest} {
		req, _ := http.NewRequest(http.MethodGet, "/replay", nil)
		req.Host = host
		rec := httptest.NewRecorder()
		s.ServeHTTP(rec, req)
		if rec.Code != want {
			t.Errorf("Host %s: %d, want %d", host, rec.Code, want)
		}
	}
	if LoopbackHosts("0.0.0.0:8080") != nil || LoopbackHosts("10.1.2.3:80") != nil {
		t.Error("LoopbackHosts restricts a non-loopback address")
	}
}

// Connection settings never reach a page or the log: a console on a SASL
// cluster shows neither the password nor the user's credentials.
func TestNoCredentials(t *testing.T) {
	const user, pass = "console-user", "s3cret-pa55word"
	fc, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.EnableSASL(), kfake.Superuser("PLAIN", user, pass))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(fc.Close)
	opts := []kgo.Opt{kgo.SeedBrokers(fc.ListenAddrs()...), kgo.SASL(plain.Auth{User: user, Pass: pass}.AsMechanism())}
	adm, err := kgo.NewClient(opts...)
	if err != nil {
		t.Fatal(err)
	}
	defer adm.Close()
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	if _, err := kadm.NewClient(adm).CreateTopic(ctx, 1, -1, nil, "o-dlt"); err != nil {
		t.Fatal(err)
	}
	seed := []*kgo.Record{deadLetter("o-dlt", 0, "o", "g", 0, 0, []byte("k"), []byte("v"), "x", retry.ReasonPermanent, 1, time.Now())}
	if err := adm.ProduceSync(ctx, seed...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	log := newLogFile(t)
	s, err2 := New(ctx, Config{ClientOpts: opts, Brokers: strings.Join(fc.ListenAddrs(), ","), Logger: log.logger()})
	if err2 != nil {
		t.Fatal(err2)
	}
	defer s.Close()
	var all strings.Builder
	for _, target := range []string{"/", "/dlt?topic=o-dlt", recordURL("o-dlt", 0, 0), "/replay?topic=o-dlt", "/dlt?topic=nope", "/jobs/x"} {
		code, body := get(t, s, target)
		if target == "/dlt?topic=o-dlt" && code != http.StatusOK {
			t.Fatalf("GET %s = %d: the console cannot read a SASL cluster:\n%s", target, code, body)
		}
		all.WriteString(body)
	}
	tok := csrfField.FindStringSubmatch(all.String())
	loc := post(t, s, "/replay", url.Values{"csrf": {tok[1]}, "action": {"dry-run"}, "topic": {"o-dlt"}, "run": {"r1"}}).Header().Get("Location")
	all.WriteString(finish(t, s, loc))
	for _, secret := range []string{pass, "Pass", user} {
		if strings.Contains(all.String(), secret) || strings.Contains(log.String(), secret) {
			t.Errorf("%q appears in a page or in the log", secret)
		}
	}
	if !strings.Contains(log.String(), "path=/dlt") {
		t.Errorf("the log has no request lines:\n%s", log.String())
	}
}
