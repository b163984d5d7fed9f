package console

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"embed"
	"encoding/hex"
	"errors"
	"fmt"
	"html/template"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/kretry/kretry/internal/dltops"
	"github.com/kretry/kretry/strategy"
)

// Defaults of Config.
const (
	DefaultPageSize      = 50
	DefaultMaxValueBytes = 64 << 10
	DefaultRequestWait   = 2 * time.Minute
)

// ErrReadOnly is the error of a replay requested of a console started
// without Config.AllowReplay.
var ErrReadOnly = errors.New("the console is read-only: start it with --allow-replay to replay")

//go:embed templates/*.html static/*
var assets embed.FS

// Config says what a Server reads and what it allows. Only ClientOpts is
// required; every other zero value is its documented default.
type Config struct {
	// ClientOpts are the connection options (seed brokers, TLS, SASL) of
	// every client the console makes. They must not name a consumer group.
	// They are never shown in a page or written to the log.
	ClientOpts []kgo.Opt
	// Brokers is the text the pages show as the cluster's address (the
	// seed brokers only). Default "": not shown.
	Brokers string
	// AllowReplay lets the replay form send records back. Default false:
	// the console is read-only and every replay request is refused
	// (ErrReadOnly); dry runs are allowed.
	AllowReplay bool
	// StateDir is the directory of the replays' state files (as
	// "kretry dlt replay --state-dir"). Required with AllowReplay.
	StateDir string
	// Naming holds the retry and DLT suffixes plans are found by. Default:
	// strategy's defaults ("-retry", "-dlt").
	Naming strategy.Naming
	// Plans, when set, limits the overview to the plans whose base name
	// (see Plan.Base) it matches, so that the overview of a large cluster
	// reads only what it shows. Default nil: every plan.
	Plans *regexp.Regexp
	// Decoder decodes DLT records. Default: kretry headers only.
	Decoder dltops.Decoder
	// AllowedHosts are the Host header values (host:port) requests may
	// carry; any other is refused (a DNS-rebinding page cannot then talk
	// to the console). Default nil: any host.
	AllowedHosts []string
	// Logger receives one line per request and the errors. Default: no
	// logging.
	Logger *slog.Logger
	// PageSize is how many records a DLT page lists. Default
	// DefaultPageSize.
	PageSize int
	// MaxValueBytes is how much of a key or value the record page shows;
	// the rest is offered as a download. Default DefaultMaxValueBytes.
	MaxValueBytes int
	// RequestWait bounds the cluster reads of one page. Default
	// DefaultRequestWait.
	RequestWait time.Duration
	// Now is the clock ages and due times are measured with. Default
	// time.Now.
	Now func() time.Time
}

// Server is the console: an http.Handler. Make one with New and Close it
// when done.
type Server struct {
	cfg   Config
	cl    *kgo.Client
	adm   *kadm.Client
	pages map[string]*template.Template
	mux   *http.ServeMux
	token string // the CSRF token of every form

	ctx    context.Context // of the replay jobs
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu   sync.Mutex // guards jobs
	jobs map[string]*job
}

// New checks cfg and returns a Server whose replay jobs run until ctx ends
// or Close is called.
func New(ctx context.Context, cfg Config) (*Server, error) {
	var errs []error
	if len(cfg.ClientOpts) == 0 {
		errs = append(errs, errors.New("console: ClientOpts must name the seed brokers"))
	}
	if cfg.AllowReplay && cfg.StateDir == "" {
		errs = append(errs, errors.New("console: StateDir is required with AllowReplay"))
	}
	if cfg.PageSize < 0 || cfg.MaxValueBytes < 0 || cfg.RequestWait < 0 {
		errs = append(errs, fmt.Errorf("console: PageSize, MaxValueBytes and RequestWait must be >= 0, got %d, %d and %v",
			cfg.PageSize, cfg.MaxValueBytes, cfg.RequestWait))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	if cfg.PageSize == 0 {
		cfg.PageSize = DefaultPageSize
	}
	if cfg.MaxValueBytes == 0 {
		cfg.MaxValueBytes = DefaultMaxValueBytes
	}
	if cfg.RequestWait == 0 {
		cfg.RequestWait = DefaultRequestWait
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	cfg.Naming = cfg.Naming.Normalize()
	if err := cfg.Naming.Validate(); err != nil {
		return nil, fmt.Errorf("console: naming: %w", err)
	}
	pages, err := parsePages()
	if err != nil {
		return nil, err
	}
	var tok [32]byte
	if _, err := rand.Read(tok[:]); err != nil {
		return nil, fmt.Errorf("console: CSRF token: %w", err)
	}
	cl, err := kgo.NewClient(cfg.ClientOpts...)
	if err != nil {
		return nil, fmt.Errorf("console: %w", err)
	}
	if g, _ := cl.OptValue(kgo.ConsumerGroup).(string); g != "" {
		cl.Close()
		return nil, fmt.Errorf("console: %w", dltops.ErrClientGroup)
	}
	s := &Server{cfg: cfg, cl: cl, adm: kadm.NewClient(cl), pages: pages, token: hex.EncodeToString(tok[:]),
		jobs: map[string]*job{}}
	s.ctx, s.cancel = context.WithCancel(ctx)
	s.routes()
	return s, nil
}

// Close interrupts the running replay jobs, waits for them to checkpoint
// and stop, and closes the console's client.
func (s *Server) Close() {
	s.cancel()
	s.wg.Wait()
	s.cl.Close()
}

func (s *Server) now() time.Time { return s.cfg.Now() }

func (s *Server) routes() {
	m := http.NewServeMux()
	static, _ := fs.Sub(assets, "static")
	m.Handle("GET /static/", http.StripPrefix("/static/", http.FileServerFS(static)))
	m.HandleFunc("GET /{$}", s.handleOverview)
	m.HandleFunc("GET /dlt", s.handleDLT)
	m.HandleFunc("GET /record", s.handleRecord)
	m.HandleFunc("GET /record/raw", s.handleRaw)
	m.HandleFunc("GET /replay", s.handleReplayForm)
	m.HandleFunc("POST /replay", s.handleReplayStart)
	m.HandleFunc("GET /jobs/{id}", s.handleJob)
	m.HandleFunc("POST /jobs/{id}/cancel", s.handleJobCancel)
	s.mux = m
}

// ServeHTTP serves the console's pages. Every response carries a strict
// Content-Security-Policy (no script at all); a Host not in
// Config.AllowedHosts is refused with 421; a POST without the console's
// CSRF token, or sent from another site, with 403.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	rw := &statusWriter{ResponseWriter: w, status: http.StatusOK}
	h := rw.Header()
	h.Set("Content-Security-Policy", "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("Cache-Control", "no-store")
	switch {
	case !s.hostAllowed(r.Host):
		http.Error(rw, "misdirected request: this console does not answer to host "+r.Host, http.StatusMisdirectedRequest)
	case r.Method != http.MethodGet && r.Method != http.MethodHead && !s.validPost(r):
		http.Error(rw, "forbidden: the form's CSRF token is missing or wrong, or it came from another site; reload the page and try again", http.StatusForbidden)
	default:
		s.mux.ServeHTTP(rw, r)
	}
	s.cfg.Logger.LogAttrs(r.Context(), slog.LevelInfo, "request", slog.String("method", r.Method),
		slog.String("path", r.URL.Path), slog.Int("status", rw.status), slog.Duration("elapsed", time.Since(start)))
}

// hostAllowed reports whether host may be served.
func (s *Server) hostAllowed(host string) bool {
	return len(s.cfg.AllowedHosts) == 0 || slices.Contains(s.cfg.AllowedHosts, strings.ToLower(host))
}

// validPost reports whether a mutating request carries the CSRF token and,
// when the browser says where it came from, comes from this origin.
func (s *Server) validPost(r *http.Request) bool {
	if site := r.Header.Get("Sec-Fetch-Site"); site != "" && site != "same-origin" && site != "none" {
		return false
	}
	if o := r.Header.Get("Origin"); o != "" && o != "null" && !sameOrigin(o, r.Host) {
		return false
	}
	r.Body = http.MaxBytesReader(nil, r.Body, 1<<20)
	if err := r.ParseForm(); err != nil {
		return false
	}
	got := r.PostForm.Get("csrf")
	return len(got) == len(s.token) && subtle.ConstantTimeCompare([]byte(got), []byte(s.token)) == 1
}

// sameOrigin reports whether origin (scheme://host[:port]) names host.
func sameOrigin(origin, host string) bool {
	_, rest, ok := strings.Cut(origin, "://")
	return ok && strings.EqualFold(rest, host)
}

// LoopbackHosts returns the Host header values a console listening on
// addr (host:port, as net.Listen resolved it) answers to when addr is a
// loopback address: addr itself, and localhost, 127.0.0.1 and [::1] with
// its port. For any other addr it returns nil: any host.
func LoopbackHosts(addr string) []string {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return nil
	}
	ip := net.ParseIP(host)
	if host != "localhost" && (ip == nil || !ip.IsLoopback()) {
		return nil
	}
	return []string{strings.ToLower(addr), "localhost:" + port, "127.0.0.1:" + port, "[::1]:" + port}
}

type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	w.status = code
	w.ResponseWriter.WriteHeader(code)
}

// withTimeout is the context of a page's cluster reads.
func (s *Server) withTimeout(r *http.Request) (context.Context, context.CancelFunc) {
	return context.WithTimeout(r.Context(), s.cfg.RequestWait)
}

// fail renders the error page with status code, and logs err.
func (s *Server) fail(w http.ResponseWriter, r *http.Request, code int, err error) {
	s.cfg.Logger.LogAttrs(r.Context(), slog.LevelWarn, "request failed", slog.String("path", r.URL.Path), slog.String("error", err.Error()))
	s.render(w, r, code, "error", "Error", struct{ Message string }{err.Error()})
}
