package console

import (
	"bytes"
	"fmt"
	"html/template"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// page is what the layout template renders around a page's own data.
type page struct {
	Title       string
	Brokers     string
	AllowReplay bool
	CSRF        string
	Data        any
}

// funcs are the template helpers. None returns template.HTML: everything
// a page shows goes through html/template's escaping.
func funcs() template.FuncMap {
	return template.FuncMap{
		"ago":     fmtAgo,
		"dur":     fmtDuration,
		"time":    fmtTime,
		"dltURL":  dltURL,
		"recURL":  recordURL,
		"visible": visible,
		"errText": func(err error) string { return visible(err.Error()) },
	}
}

// parsePages parses each page template with the layout.
func parsePages() (map[string]*template.Template, error) {
	names := []string{"overview", "dlt", "record", "replay", "job", "error"}
	out := map[string]*template.Template{}
	for _, n := range names {
		t, err := template.New("layout.html").Funcs(funcs()).ParseFS(assets, "templates/layout.html", "templates/"+n+".html")
		if err != nil {
			return nil, fmt.Errorf("console: template %s: %w", n, err)
		}
		out[n] = t
	}
	return out, nil
}

// render executes page name into a buffer, so that a failing template
// never leaves half a page, and writes it with status code.
func (s *Server) render(w http.ResponseWriter, r *http.Request, code int, name, title string, data any) {
	var buf bytes.Buffer
	err := s.pages[name].Execute(&buf, page{Title: title, Brokers: s.cfg.Brokers, AllowReplay: s.cfg.AllowReplay,
		CSRF: s.token, Data: data})
	if err != nil {
		s.cfg.Logger.Error("template", "page", name, "error", err.Error())
		http.Error(w, "internal error rendering the page", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(code)
	if r.Method != http.MethodHead {
		w.Write(buf.Bytes())
	}
}

// visible returns s as valid UTF-8 with control characters other than
// newline and tab shown as \xNN (or \u{NNNN}), so that invalid bytes and
// terminal or bidi controls cannot disguise what a page shows.
func visible(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); {
		r, n := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && n == 1:
			fmt.Fprintf(&b, `\x%02x`, s[i])
		case r == '\n' || r == '\t':
			b.WriteRune(r)
		case unicode.IsControl(r) || unicode.Is(unicode.Bidi_Control, r) || r == '\u2028' || r == '\u2029':
			if r < 0x100 {
				fmt.Fprintf(&b, `\x%02x`, r)
			} else {
				fmt.Fprintf(&b, `\u{%04x}`, r)
			}
		default:
			b.WriteString(s[i : i+n])
		}
		i += n
	}
	return b.String()
}

func fmtTime(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format("2006-01-02 15:04:05.000Z")
}

func fmtDuration(d time.Duration) string {
	switch {
	case d <= 0:
		return "0s"
	case d < time.Second:
		return d.Round(time.Millisecond).String()
	case d < time.Minute:
		return d.Round(100 * time.Millisecond).String()
	case d < 48*time.Hour:
		return d.Round(time.Second).String()
	}
	return fmt.Sprintf("%dd%dh", d/(24*time.Hour), d%(24*time.Hour)/time.Hour)
}

// fmtAgo is how long before now t was.
func fmtAgo(now, t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	if d := now.Sub(t); d >= 0 {
		return fmtDuration(d) + " ago"
	}
	return "in " + fmtDuration(t.Sub(now))
}

func percent(done, total int64) int64 {
	if total <= 0 {
		return 100
	}
	return min(100, done*100/total)
}

// dltURL is the DLT page of topic with the filters q (nil: none).
func dltURL(topic string, q url.Values) string {
	v := url.Values{}
	for k, vs := range q {
		v[k] = vs
	}
	v.Set("topic", topic)
	return "/dlt?" + v.Encode()
}

// recordURL is the page of one record.
func recordURL(topic string, partition int32, offset int64) string {
	return "/record?" + url.Values{"topic": {topic}, "partition": {strconv.FormatInt(int64(partition), 10)},
		"offset": {strconv.FormatInt(offset, 10)}}.Encode()
}
