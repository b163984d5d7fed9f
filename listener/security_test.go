package listener_test

// Security on a real broker: SASL/SCRAM authentication and ACLs enforced by
// the StandardAuthorizer. These tests need the broker that
// `scripts/kafka.sh start secure --dir DIR` starts, and the credentials it
// writes to DIR/secure.env:
//
//	bash scripts/kafka.sh start secure --dir /tmp/kretry-secure
//	. /tmp/kretry-secure/secure.env
//	go test -race -count=1 ./listener -run Secur
//
// TestSecureListenerTLS also needs KRETRY_SECURE_TLS_BROKERS and
// KRETRY_SECURE_CA (the SASL_SSL listener, present when keytool was found).
//
// Every test grants the app user (who starts with no ACLs) exactly what it
// wants it to have, as the admin user (a super user). The minimal set for a
// Listener, found by TestSecureListenerMinimalACLs and
// TestSecureListenerMissingACLs (principal User:<app>, literal names):
//
//	READ   on the group
//	READ   on the main topic
//	READ   and WRITE on every retry tier and DLT topic
//	CREATE on every retry tier and DLT topic, only if the listener is to
//	       create them (topics pre-created by an admin need no CREATE)
//
// DESCRIBE is implied by READ and WRITE and need not be granted, and no
// cluster ACL is needed: the idempotent producer's InitProducerId is allowed
// by WRITE on any topic. The main topic needs no WRITE (nothing is ever
// published to it).

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl/scram"

	"github.com/kretry/kretry/internal/kafkatest"
	"github.com/kretry/kretry/listener"
	"github.com/kretry/kretry/strategy"
)

// The environment of the secure tests; scripts/kafka.sh start secure writes
// all but the last to DIR/secure.env.
const (
	envSecureBrokers = "KRETRY_SECURE_BROKERS"     // SASL_PLAINTEXT bootstrap list
	envSASLMechanism = "KRETRY_SASL_MECHANISM"     // SCRAM-SHA-256 or SCRAM-SHA-512
	envSASLUser      = "KRETRY_SASL_USER"          // the app user: no ACLs of its own
	envSASLPass      = "KRETRY_SASL_PASS"          //
	envSASLAdminUser = "KRETRY_SASL_ADMIN_USER"    // a super user
	envSASLAdminPass = "KRETRY_SASL_ADMIN_PASS"    //
	envTLSBrokers    = "KRETRY_SECURE_TLS_BROKERS" // SASL_SSL bootstrap list (optional)
	envTLSCA         = "KRETRY_SECURE_CA"          // PEM file of the certificate to trust
	// With KRETRY_REQUIRE_BROKERS=1 as well, a missing secure broker fails
	// the tests instead of skipping them.
	envRequireSecure = "KRETRY_REQUIRE_SECURE"
)

// secureCluster is the secure broker as seen by one test: an admin client,
// the app user's credentials, and names unique to the test.
type secureCluster struct {
	t          *testing.T
	seeds      []string
	mechanism  string
	user, pass string
	admin      *kgo.Client
	adm        *kadm.Client
	prefix     string
}

func newSecureCluster(t *testing.T) *secureCluster {
	t.Helper()
	env := map[string]string{}
	var missing []string
	for _, k := range []string{envSecureBrokers, envSASLMechanism, envSASLUser, envSASLPass, envSASLAdminUser, envSASLAdminPass} {
		if env[k] = os.Getenv(k); env[k] == "" {
			missing = append(missing, k)
		}
	}
	if len(missing) > 0 {
		msg := fmt.Sprintf("needs a SASL/SCRAM broker with ACLs: run `scripts/kafka.sh start secure --dir DIR` and `. DIR/secure.env` (unset: %s)",
			strings.Join(missing, ", "))
		if os.Getenv(kafkatest.EnvRequire) == "1" && os.Getenv(envRequireSecure) == "1" {
			t.Fatalf("%s=1 and %s=1: %s", kafkatest.EnvRequire, envRequireSecure, msg)
		}
		t.Skip(msg)
	}
	c := &secureCluster{t: t, seeds: strings.Split(env[envSecureBrokers], ","), mechanism: env[envSASLMechanism],
		user: env[envSASLUser], pass: env[envSASLPass], prefix: kafkatest.UniquePrefix(t)}
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.seeds...), c.sasl(env[envSASLAdminUser], env[envSASLAdminPass]),
		kgo.ProducerLinger(0))
	if err != nil {
		t.Fatalf("admin client: %v", err)
	}
	t.Cleanup(cl.Close)
	c.admin, c.adm = cl, kadm.NewClient(cl)
	return c
}

func (c *secureCluster) name(suffix string) string { return c.prefix + "-" + suffix }

// sasl returns the client option that authenticates as user.
func (c *secureCluster) sasl(user, pass string) kgo.Opt {
	a := scram.Auth{User: user, Pass: pass}
	switch c.mechanism {
	case "SCRAM-SHA-256":
		return kgo.SASL(a.AsSha256Mechanism())
	case "SCRAM-SHA-512":
		return kgo.SASL(a.AsSha512Mechanism())
	}
	c.t.Fatalf("%s=%q: want SCRAM-SHA-256 or SCRAM-SHA-512", envSASLMechanism, c.mechanism)
	return nil
}

func (c *secureCluster) ctx() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), 30*time.Second)
}

// createTopics creates topics as the admin, and deletes them when the test ends.
func (c *secureCluster) createTopics(partitions int32, topics ...string) {
	c.t.Helper()
	ctx, cancel := c.ctx()
	defer cancel()
	resp, err := c.adm.CreateTopics(ctx, partitions, -1, nil, topics...)
	if err == nil {
		err = resp.Error()
	}
	if err != nil {
		c.t.Fatalf("create topics %v: %v", topics, err)
	}
	c.deleteTopicsAtEnd(topics...)
}

// deleteTopicsAtEnd deletes topics (if they exist) when the test ends.
func (c *secureCluster) deleteTopicsAtEnd(topics ...string) {
	c.t.Cleanup(func() {
		ctx, cancel := c.ctx()
		defer cancel()
		_, _ = c.adm.DeleteTopics(ctx, topics...)
	})
}

// acl is one grant to the app user: ops on topics, or on a group.
type acl struct {
	topics []string
	group  string
	ops    []kadm.ACLOperation
}

func (a acl) String() string {
	var ops []string
	for _, o := range a.ops {
		ops = append(ops, o.String())
	}
	if a.group != "" {
		return fmt.Sprintf("%s on group %s", strings.Join(ops, "+"), a.group)
	}
	return fmt.Sprintf("%s on topics %s", strings.Join(ops, "+"), strings.Join(a.topics, ","))
}

func (c *secureCluster) builder(a acl) *kadm.ACLBuilder {
	b := kadm.NewACLs().Allow("User:" + c.user).Operations(a.ops...).ResourcePatternType(kadm.ACLPatternLiteral)
	// Maybe*: with no names, match nothing (plain Topics() would match all
	// topics when deleting).
	b.MaybeTopics(a.topics...)
	if a.group != "" {
		b.Groups(a.group)
	} else {
		b.MaybeGroups()
	}
	return b
}

// grant creates the ACLs as the admin, and deletes them when the test ends.
func (c *secureCluster) grant(acls ...acl) {
	c.t.Helper()
	ctx, cancel := c.ctx()
	defer cancel()
	for _, a := range acls {
		res, err := c.adm.CreateACLs(ctx, c.builder(a))
		if err != nil {
			c.t.Fatalf("grant %v: %v", a, err)
		}
		for _, r := range res {
			if r.Err != nil {
				c.t.Fatalf("grant %v: %s %s on %s: %v %s", a, r.Principal, r.Operation, r.Name, r.Err, r.ErrMessage)
			}
		}
		c.t.Cleanup(func() {
			ctx, cancel := c.ctx()
			defer cancel()
			_, _ = c.adm.DeleteACLs(ctx, c.builder(a).AllowHosts())
		})
	}
}

// produce writes records as the admin.
func (c *secureCluster) produce(rs ...*kgo.Record) {
	c.t.Helper()
	ctx, cancel := c.ctx()
	defer cancel()
	if err := c.admin.ProduceSync(ctx, rs...).FirstErr(); err != nil {
		c.t.Fatalf("produce: %v", err)
	}
}

// committed returns the group's committed offsets for topic, read as the
// admin; an unknown group has none.
func (c *secureCluster) committed(group, topic string) map[int32]int64 {
	c.t.Helper()
	ctx, cancel := c.ctx()
	defer cancel()
	resp, err := c.adm.FetchOffsets(ctx, group)
	if err != nil && !errors.Is(err, kerr.GroupIDNotFound) {
		c.t.Fatalf("fetch offsets of %s: %v", group, err)
	}
	out := map[int32]int64{}
	resp.Each(func(o kadm.OffsetResponse) {
		if o.Topic == topic && o.Err == nil && o.At >= 0 {
			out[o.Partition] = o.At
		}
	})
	return out
}

// readAll reads every record in topic up to its current end, as the admin.
func (c *secureCluster) readAll(topic string) []*kgo.Record {
	c.t.Helper()
	return kafkatest.ReadTopic(c.t, c.adm, c.seeds, topic, c.sasl(os.Getenv(envSASLAdminUser), os.Getenv(envSASLAdminPass)))
}

// secureApp is one listener's main topic, group and plan topics.
type secureApp struct {
	c      *secureCluster
	topic  string
	group  string
	tiers  []string
	dlt    string
	logs   *logBuffer
	script *script
}

// newSecureApp creates the main topic as the admin and returns a listener
// for it that authenticates as user/pass. The plan's retry and DLT topics
// are deleted when the test ends; pre-create them with createPlanTopics.
func (c *secureCluster) newSecureApp(s *script, user, pass string, opts ...listener.Opt) (*secureApp, *listener.Listener) {
	c.t.Helper()
	return c.newSecureAppAt(s, c.seeds, []kgo.Opt{c.sasl(user, pass)}, opts...)
}

// newSecureAppAt is newSecureApp with the listener's seeds and
// authentication options given.
func (c *secureCluster) newSecureAppAt(s *script, seeds []string, auth []kgo.Opt, opts ...listener.Opt) (*secureApp, *listener.Listener) {
	c.t.Helper()
	a := &secureApp{c: c, topic: c.name("orders"), group: c.name("group"), logs: &logBuffer{}, script: s}
	c.createTopics(1, a.topic)
	logger := slog.New(slog.NewTextHandler(a.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	base := []listener.Opt{listener.Group(a.group), listener.Logger(logger),
		listener.FetchMaxWait(20 * time.Millisecond), listener.ShutdownTimeout(10 * time.Second),
		listener.Backoff(strategy.FixedBackoff(300 * time.Millisecond)),
		listener.DLTHandler(s), listener.Hooks(s),
		listener.ClientOpts(append([]kgo.Opt{kgo.AutoCommitInterval(200 * time.Millisecond)}, auth...)...)}
	l, err := listener.New(seeds, a.topic, s, append(base, opts...)...)
	if err != nil {
		c.t.Fatalf("New: %v", err)
	}
	plan := l.Plan()
	for _, tier := range plan.Tiers {
		a.tiers = append(a.tiers, tier.Topic)
	}
	a.dlt = plan.DLT
	c.deleteTopicsAtEnd(a.planTopics()...)
	c.t.Cleanup(func() {
		// Registered before the test starts the listener, so this runs
		// after it has stopped and left the group.
		ctx, cancel := c.ctx()
		defer cancel()
		_, _ = c.adm.DeleteGroup(ctx, a.group)
		if c.t.Failed() {
			c.t.Logf("listener log:\n%s", a.logs.String())
		}
	})
	return a, l
}

// planTopics lists the retry tiers and the DLT.
func (a *secureApp) planTopics() []string { return append(append([]string(nil), a.tiers...), a.dlt) }

// createPlanTopics creates the retry and DLT topics as the admin.
func (a *secureApp) createPlanTopics() { a.c.createTopics(1, a.planTopics()...) }

// minimalACLs is everything the app user needs to run the listener; with
// create, the listener may also create its retry and DLT topics.
func (a *secureApp) minimalACLs(create bool) []acl {
	acls := []acl{
		{group: a.group, ops: []kadm.ACLOperation{kadm.OpRead}},
		{topics: []string{a.topic}, ops: []kadm.ACLOperation{kadm.OpRead}},
		{topics: a.tiers, ops: []kadm.ACLOperation{kadm.OpRead, kadm.OpWrite}},
		{topics: []string{a.dlt}, ops: []kadm.ACLOperation{kadm.OpRead, kadm.OpWrite}},
	}
	if create {
		acls = append(acls, acl{topics: a.planTopics(), ops: []kadm.ACLOperation{kadm.OpCreate}})
	}
	return acls
}

// logBuffer collects a listener's log lines.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// permanentFor fails key "dead" permanently (straight to the DLT), fails
// key "retry" on its first delivery only, and handles everything else.
func permanentFor(key string, n int) error {
	switch {
	case key == "dead":
		return strategy.Permanent(fmt.Errorf("delivery %d of %s: %w", n, key, errBoom))
	case key == "retry" && n == 1:
		return fmt.Errorf("delivery %d of %s: %w", n, key, errBoom)
	}
	return nil
}

const secureWait = 60 * time.Second

// TestSecureListenerMinimalACLs runs the listener end to end as a user
// holding only the minimal ACLs: a record retried once then handled, one
// dead-lettered, one handled at once, and every offset committed.
func TestSecureListenerMinimalACLs(t *testing.T) {
	for _, tc := range []struct {
		name   string
		create bool // the listener creates its retry and DLT topics
	}{
		{"listener creates its topics", true},
		{"admin pre-creates the topics", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := newSecureCluster(t)
			s := newScript(permanentFor)
			a, l := c.newSecureApp(s, c.user, c.pass)
			if !tc.create {
				a.createPlanTopics()
			}
			c.grant(a.minimalACLs(tc.create)...)
			c.produce(rec(a.topic, "retry"), rec(a.topic, "dead"), rec(a.topic, "ok"))
			stop := started(t, l)
			kafkatest.Eventually(t, secureWait, func() bool {
				return s.count("retry") == 2 && s.count("dead") == 1 && s.count("ok") == 1 && len(s.dltOf("dead")) == 1
			}, "retry handled on its 2nd delivery, dead in the DLT handler, ok handled (counts: retry %d, dead %d, ok %d, dlt %d)",
				s.count("retry"), s.count("dead"), s.count("ok"), len(s.dltOf("dead")))
			kafkatest.Eventually(t, secureWait, func() bool {
				return c.committed(a.group, a.topic)[0] == 3 && c.committed(a.group, a.dlt)[0] == 1 &&
					c.committed(a.group, a.tiers[0])[0] == 1
			}, "main, tier and DLT offsets committed (main %v, tier %v, DLT %v)",
				c.committed(a.group, a.topic), c.committed(a.group, a.tiers[0]), c.committed(a.group, a.dlt))
			if err := stop(); err != nil {
				t.Fatalf("Run: %v", err)
			}
			if ds := s.of("retry"); ds[1].topic != a.tiers[0] || ds[1].state.Attempt != 2 {
				t.Errorf("retry's 2nd delivery from %s attempt %d, want %s attempt 2", ds[1].topic, ds[1].state.Attempt, a.tiers[0])
			}
			if d := s.dltOf("dead")[0]; d.topic != a.dlt || d.state.Reason != "permanent" {
				t.Errorf("dead reached the DLT handler from %s with reason %q, want %s, permanent", d.topic, d.state.Reason, a.dlt)
			}
			if fs := s.eventsOf(listener.EventForwardFailed); len(fs) != 0 {
				t.Errorf("%d publishes failed, want none; first: %v", len(fs), fs[0].Err)
			}
		})
	}
}

// TestSecureListenerMissingACLs takes one ACL away from the minimal set at
// a time: Run must fail, promptly, with an error that names the
// authorization failure and the topic or group, and commit nothing it did
// not handle. (WRITE on a tier or the DLT is different: Run goes on and the
// publish is retried until it is granted; see
// TestSecureListenerDLTWriteDenied.)
func TestSecureListenerMissingACLs(t *testing.T) {
	for _, tc := range []struct {
		name   string
		create bool                      // topics left for the listener to create
		drop   func(a *secureApp) acl    // the ACL taken away
		want   error                     // in Run's error chain; nil: the text only
		msg    func(a *secureApp) string // in Run's error text
	}{
		{"READ on the group", false,
			func(a *secureApp) acl { return acl{group: a.group, ops: []kadm.ACLOperation{kadm.OpRead}} },
			kerr.GroupAuthorizationFailed, func(*secureApp) string { return "GROUP_AUTHORIZATION_FAILED" }},
		{"READ on the main topic", false,
			func(a *secureApp) acl { return acl{topics: []string{a.topic}, ops: []kadm.ACLOperation{kadm.OpRead}} },
			kerr.TopicAuthorizationFailed, func(a *secureApp) string { return a.topic }},
		{"READ on the retry tier", false,
			func(a *secureApp) acl { return acl{topics: a.tiers, ops: []kadm.ACLOperation{kadm.OpRead}} },
			kerr.TopicAuthorizationFailed, func(a *secureApp) string { return a.tiers[0] }},
		{"READ on the DLT", false,
			func(a *secureApp) acl { return acl{topics: []string{a.dlt}, ops: []kadm.ACLOperation{kadm.OpRead}} },
			kerr.TopicAuthorizationFailed, func(a *secureApp) string { return a.dlt }},
		{"CREATE on the retry and DLT topics", true,
			func(a *secureApp) acl { return acl{topics: a.planTopics(), ops: []kadm.ACLOperation{kadm.OpCreate}} },
			// The listener formats a CreateTopics error with %s, so it is
			// not in the chain; the text still names it.
			nil, func(a *secureApp) string { return "TOPIC_AUTHORIZATION_FAILED" }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := newSecureCluster(t)
			s := newScript(permanentFor)
			a, l := c.newSecureApp(s, c.user, c.pass)
			if !tc.create {
				a.createPlanTopics()
			}
			drop := tc.drop(a).String()
			var keep []acl
			for _, g := range a.minimalACLs(tc.create) {
				// Split multi-operation grants, so exactly one
				// operation on one resource set goes missing.
				for _, op := range g.ops {
					one := acl{topics: g.topics, group: g.group, ops: []kadm.ACLOperation{op}}
					if one.String() != drop {
						keep = append(keep, one)
					}
				}
			}
			c.grant(keep...)
			c.produce(rec(a.topic, "ok"))
			err := runUntilError(t, l, 30*time.Second)
			t.Logf("without %s, Run returned: %v", drop, err)
			if tc.want != nil && !errors.Is(err, tc.want) {
				t.Errorf("Run returned %v; want an error wrapping %v", err, tc.want)
			}
			if want := tc.msg(a); !strings.Contains(err.Error(), want) {
				t.Errorf("Run's error %q does not mention %q", err, want)
			}
			// A fetch error on one partition may come with records of
			// another in the same poll; whatever was committed was handled.
			if got, n := c.committed(a.group, a.topic)[0], s.count("ok"); got > int64(n) {
				t.Errorf("main topic committed at %d with %d record(s) handled", got, n)
			}
		})
	}
}

// runUntilError runs l and returns Run's error, failing the test if Run is
// still running after limit (it is then canceled).
func runUntilError(t *testing.T, l *listener.Listener, limit time.Duration) error {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	start := time.Now()
	go func() { done <- l.Run(ctx) }()
	select {
	case err := <-done:
		t.Logf("Run returned after %v", time.Since(start).Round(time.Millisecond))
		if err == nil {
			t.Fatal("Run returned nil without being canceled")
		}
		return err
	case <-time.After(limit):
		cancel()
		err := <-done
		t.Fatalf("Run still running %v after start; after cancel it returned %v", limit, err)
		return nil
	}
}

// TestSecureListenerWrongPassword: bad credentials make Run return
// promptly with an error naming SASL authentication; nothing is consumed
// and nothing is committed.
func TestSecureListenerWrongPassword(t *testing.T) {
	c := newSecureCluster(t)
	s := newScript(permanentFor)
	a, l := c.newSecureApp(s, c.user, c.pass+"-wrong")
	c.grant(a.minimalACLs(true)...) // everything but the right password
	c.produce(rec(a.topic, "ok"), rec(a.topic, "dead"))
	err := runUntilError(t, l, 30*time.Second)
	t.Logf("Run returned: %v", err)
	if !errors.Is(err, kerr.SaslAuthenticationFailed) {
		t.Errorf("Run returned %v; want an error wrapping %v", err, kerr.SaslAuthenticationFailed)
	}
	if err != nil && !strings.Contains(err.Error(), "SASL") {
		t.Errorf("Run's error %q does not mention SASL", err)
	}
	s.mu.Lock()
	handled := len(s.deliveries) + len(s.dlt)
	s.mu.Unlock()
	if handled != 0 {
		t.Errorf("handlers called %d times, want 0", handled)
	}
	if got := c.committed(a.group, a.topic); len(got) != 0 {
		t.Errorf("committed %v, want nothing", got)
	}
	ctx, cancel := c.ctx()
	defer cancel()
	if listed, err := c.adm.ListTopics(ctx, a.planTopics()...); err != nil {
		t.Errorf("list topics: %v", err)
	} else {
		for _, d := range listed {
			if d.Err == nil {
				t.Errorf("topic %s was created, want no retry or DLT topic", d.Topic)
			}
		}
	}
}

// TestSecureListenerDLTWriteDenied: without WRITE on the DLT a record that
// fails for good cannot be dead-lettered. Its offset must stay uncommitted
// (and so must every later one on its partition), the failure must be
// reported with the authorization error, nothing may be lost; once WRITE
// is granted, the record reaches the DLT and everything is committed.
func TestSecureListenerDLTWriteDenied(t *testing.T) {
	c := newSecureCluster(t)
	s := newScript(permanentFor)
	a, l := c.newSecureApp(s, c.user, c.pass)
	a.createPlanTopics()
	var dltWrite acl
	for _, g := range a.minimalACLs(false) {
		if len(g.topics) == 1 && g.topics[0] == a.dlt {
			g.ops = []kadm.ACLOperation{kadm.OpRead} // not WRITE
			dltWrite = acl{topics: g.topics, ops: []kadm.ACLOperation{kadm.OpWrite}}
		}
		c.grant(g)
	}
	c.produce(rec(a.topic, "dead"), rec(a.topic, "ok")) // offsets 0 and 1
	stop := started(t, l)

	denied := func() []listener.Event {
		var out []listener.Event
		for _, e := range s.eventsOf(listener.EventForwardFailed) {
			if e.Target == a.dlt && e.Offset == 0 && errors.Is(e.Err, kerr.TopicAuthorizationFailed) {
				out = append(out, e)
			}
		}
		return out
	}
	// Three failures are at least 100+200 ms of backoff apart, more than
	// the 200 ms auto-commit interval: a wrong commit would have happened.
	kafkatest.Eventually(t, secureWait, func() bool { return len(denied()) >= 3 && s.count("ok") == 1 },
		"3 publishes of dead to the DLT failing with TOPIC_AUTHORIZATION_FAILED, and ok handled (got %d failures, %d forward-failed events, ok handled %d times)",
		len(denied()), len(s.eventsOf(listener.EventForwardFailed)), s.count("ok"))
	t.Logf("forward failure reported: %v", denied()[0].Err)
	if got := c.committed(a.group, a.topic); got[0] > 0 {
		t.Errorf("main topic committed at %d while offset 0 is not dead-lettered; want nothing past 0", got[0])
	}
	if n := len(c.readAll(a.dlt)); n != 0 {
		t.Errorf("DLT holds %d records before WRITE is granted, want 0", n)
	}
	if logs := a.logs.String(); !strings.Contains(logs, "TOPIC_AUTHORIZATION_FAILED") || !strings.Contains(logs, a.dlt) {
		t.Errorf("no log line names TOPIC_AUTHORIZATION_FAILED and the DLT %s; log:\n%s", a.dlt, logs)
	}
	if n := s.count("dead"); n != 1 {
		t.Errorf("dead handled %d times while its DLT publish is retried, want 1", n)
	}

	c.grant(dltWrite)
	kafkatest.Eventually(t, secureWait, func() bool { return len(s.dltOf("dead")) == 1 },
		"dead reaches the DLT handler once WRITE on the DLT is granted")
	kafkatest.Eventually(t, secureWait, func() bool { return c.committed(a.group, a.topic)[0] == 2 },
		"main topic committed past both records (committed %v)", c.committed(a.group, a.topic))
	if err := stop(); err != nil {
		t.Fatalf("Run: %v", err)
	}
	dlt := c.readAll(a.dlt)
	if len(dlt) != 1 || string(dlt[0].Key) != "dead" {
		t.Fatalf("DLT holds %d records, want exactly dead once", len(dlt))
	}
	if n := len(s.eventsOf(listener.EventDeadLettered)); n != 1 {
		t.Errorf("%d dead-lettered events, want 1", n)
	}
	if n := s.count("dead"); n != 1 {
		t.Errorf("dead handled %d times, want 1 (the publish is retried, not the handler)", n)
	}
}

// TestSecureListenerTLS runs the listener over SASL_SSL: end to end with
// the broker's certificate trusted, and not at all without.
func TestSecureListenerTLS(t *testing.T) {
	c := newSecureCluster(t)
	seeds, caFile := os.Getenv(envTLSBrokers), os.Getenv(envTLSCA)
	if seeds == "" || caFile == "" {
		msg := fmt.Sprintf("needs the SASL_SSL listener of `scripts/kafka.sh start secure` (needs keytool): %s and %s unset", envTLSBrokers, envTLSCA)
		if os.Getenv(kafkatest.EnvRequire) == "1" && os.Getenv(envRequireSecure) == "1" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	pem, err := os.ReadFile(caFile)
	if err != nil {
		t.Fatalf("%s: %v", envTLSCA, err)
	}
	trusted := x509.NewCertPool()
	if !trusted.AppendCertsFromPEM(pem) {
		t.Fatalf("%s=%s holds no PEM certificate", envTLSCA, caFile)
	}
	tlsOpts := func(roots *x509.CertPool) []kgo.Opt {
		return []kgo.Opt{c.sasl(c.user, c.pass), kgo.DialTLSConfig(&tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12})}
	}

	t.Run("trusted", func(t *testing.T) {
		c := newSecureCluster(t)
		s := newScript(permanentFor)
		a, l := c.newSecureAppAt(s, strings.Split(seeds, ","), tlsOpts(trusted))
		c.grant(a.minimalACLs(true)...)
		c.produce(rec(a.topic, "retry"), rec(a.topic, "dead"))
		stop := started(t, l)
		kafkatest.Eventually(t, secureWait, func() bool {
			return s.count("retry") == 2 && len(s.dltOf("dead")) == 1 && c.committed(a.group, a.topic)[0] == 2
		}, "over TLS: retry handled on its 2nd delivery, dead in the DLT handler, main committed (retry %d, dlt %d, committed %v)",
			s.count("retry"), len(s.dltOf("dead")), c.committed(a.group, a.topic))
		if err := stop(); err != nil {
			t.Fatalf("Run: %v", err)
		}
	})

	t.Run("untrusted", func(t *testing.T) {
		c := newSecureCluster(t)
		s := newScript(permanentFor)
		a, l := c.newSecureAppAt(s, strings.Split(seeds, ","), tlsOpts(x509.NewCertPool()))
		c.grant(a.minimalACLs(true)...)
		c.produce(rec(a.topic, "ok"))
		err := runUntilError(t, l, 30*time.Second)
		t.Logf("Run returned: %v", err)
		var unknown x509.UnknownAuthorityError
		if !errors.As(err, &unknown) {
			t.Errorf("Run returned %v; want an x509.UnknownAuthorityError in its chain", err)
		}
		if n := s.count("ok"); n != 0 {
			t.Errorf("handler called %d times, want 0", n)
		}
	})
}
