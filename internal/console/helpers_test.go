package console

import (
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/kretry/kretry/internal/kafkatest"
	"github.com/kretry/kretry/retry"
)

// wait bounds every wait of these tests on the cluster.
const wait = 60 * time.Second

// deadLetter is a DLT record as a kretry listener of group writes it for
// the record at (topic, partition, offset) that failed attempts times with
// an error of errType, dead-lettered at at for reason.
func deadLetter(dlt string, dltPart int32, topic, group string, partition int32, offset int64, key, value []byte,
	errType, reason string, attempts int32, at time.Time, user ...kgo.RecordHeader) *kgo.Record {
	st := retry.State{Attempt: attempts, OriginalTopic: topic, OriginalPartition: partition, OriginalOffset: offset,
		OriginalTimestamp: at.Add(-10 * time.Minute), FirstFailure: at.Add(-9 * time.Minute),
		Error: "handler failed: " + errType, ErrorType: errType, Reason: reason, Group: group}
	return &kgo.Record{Topic: dlt, Partition: dltPart, Key: key, Value: value, Timestamp: at,
		Headers: st.Append(append([]kgo.RecordHeader(nil), user...), 0)}
}

// tierRec is a retry-tier record of group due at due.
func tierRec(tier, topic, group string, due time.Time) *kgo.Record {
	st := retry.State{Attempt: 2, Due: due, OriginalTopic: topic, OriginalOffset: 1,
		OriginalTimestamp: due.Add(-time.Hour), FirstFailure: due.Add(-time.Minute), Group: group}
	return &kgo.Record{Topic: tier, Partition: 0, Value: []byte("t"), Headers: st.Append(nil, 0)}
}

// commit commits offsets for group.
func commit(t *testing.T, c *kafkatest.Cluster, group string, topic string, partition int32, at int64) {
	t.Helper()
	var os kadm.Offsets
	os.AddOffset(topic, partition, at, -1)
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	if err := c.Admin.CommitAllOffsets(ctx, group, os); err != nil {
		t.Fatalf("commit: %v", err)
	}
}

// logFile is a log the console writes while the test reads it: a file,
// whose writes and reads need no lock of the test's.
type logFile struct{ f *os.File }

func newLogFile(t *testing.T) *logFile {
	t.Helper()
	f, err := os.Create(filepath.Join(t.TempDir(), "console.log"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return &logFile{f}
}

func (l *logFile) logger() *slog.Logger { return slog.New(slog.NewTextHandler(l.f, nil)) }

func (l *logFile) String() string {
	b, _ := os.ReadFile(l.f.Name())
	return string(b)
}

// newServer returns a console on c with cfg (its ClientOpts default to
// c's seeds) and its log.
func newServer(t *testing.T, c *kafkatest.Cluster, cfg Config) (*Server, *logFile) {
	t.Helper()
	if cfg.ClientOpts == nil {
		cfg.ClientOpts = []kgo.Opt{kgo.SeedBrokers(c.Seeds...)}
	}
	if cfg.Plans == nil {
		// A shared real broker holds other tests' plans too.
		cfg.Plans = regexp.MustCompile("^" + regexp.QuoteMeta(c.Name("")))
	}
	log := newLogFile(t)
	cfg.Logger = log.logger()
	s, err := New(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return s, log
}

// get serves a GET of target and returns the status and body.
func get(t *testing.T, h http.Handler, target string) (int, string) {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, target, nil))
	return rec.Code, rec.Body.String()
}

// post serves a form POST and returns the response.
func post(t *testing.T, h http.Handler, target string, form url.Values, hdr ...string) *httptest.ResponseRecorder {
	t.Helper()
	req := httptest.NewRequest(http.MethodPost, target, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec
}

var csrfField = regexp.MustCompile(`name="csrf" value="([0-9a-f]+)"`)

// csrf returns the token of the form on page target.
func csrf(t *testing.T, h http.Handler, target string) string {
	t.Helper()
	_, body := get(t, h, target)
	m := csrfField.FindStringSubmatch(body)
	if m == nil {
		t.Fatalf("%s has no CSRF field:\n%s", target, body)
	}
	return m[1]
}

// finish waits until the job at location has finished and returns its
// page.
func finish(t *testing.T, h http.Handler, location string) string {
	t.Helper()
	var body string
	kafkatest.Eventually(t, wait, func() bool {
		_, body = get(t, h, location)
		return !strings.Contains(body, "running…")
	}, "job %s did not finish", location)
	return body
}

// cell returns the text of the element with id in body, or "".
func cell(body, id string) string {
	m := regexp.MustCompile(`id="` + regexp.QuoteMeta(id) + `"[^>]*>([^<]*)<`).FindStringSubmatch(body)
	if m == nil {
		return ""
	}
	return m[1]
}

// producer is a client that can write records up to 4 MiB.
func producer(t *testing.T, c *kafkatest.Cluster) *kgo.Client {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.Seeds...), kgo.ProducerBatchMaxBytes(4<<20), kgo.ProducerLinger(0))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return cl
}

// produce writes rs synchronously.
func produce(t *testing.T, cl *kgo.Client, rs ...*kgo.Record) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	if err := cl.ProduceSync(ctx, rs...).FirstErr(); err != nil {
		t.Fatalf("produce: %v", err)
	}
}

// createTopic creates topic with configs (the test's retention and
// record size) and waits until it is listed.
func createTopic(t *testing.T, c *kafkatest.Cluster, topic string, partitions int32) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	keep, max := "-1", "4194304"
	resp, err := c.Admin.CreateTopic(ctx, partitions, -1, map[string]*string{"retention.ms": &keep, "max.message.bytes": &max}, topic)
	if err == nil {
		err = resp.Err
	}
	if err == nil {
		err = kafkatest.WaitTopic(ctx, c.Admin, topic, partitions)
	}
	if err != nil {
		t.Fatalf("create topic %s: %v", topic, err)
	}
}
