package main

import (
	"context"
	"encoding/json"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/kretry/kretry/internal/kafkatest"
)

// The cluster commands' help and usage errors, which need no cluster, with
// golden stdout and stderr.
func TestRunClusterCommands(t *testing.T) {
	tests := []struct {
		golden string
		args   string
		code   int
	}{
		{"lag-help", "tiers lag --help", exitOK},
		{"lag-nothing", "tiers lag", exitUsage},
		{"lag-argument", "tiers lag --topic orders extra", exitUsage},
		{"lag-file-and-flags", "tiers lag --file testdata/cluster/orders.yaml --attempts 3", exitUsage},
		{"lag-max-read-negative", "tiers lag --topic orders --max-read -1", exitUsage},
		{"lag-fail-overdue-negative", "tiers lag --topic orders --fail-overdue -1s", exitUsage},
		{"lag-fail-overdue-invalid", "tiers lag --topic orders --fail-overdue soon", exitUsage},
		{"lag-flags-invalid", "tiers lag --topic orders --attempts -1", exitInvalid},
		{"lag-file-invalid", "tiers lag --file testdata/invalid.yaml", exitInvalid},
		{"lag-file-missing", "tiers lag --file testdata/missing.yaml", exitUsage},
		{"lag-unknown-flag", "tiers lag --topic orders --fail-overdeu 1m", exitUsage},
		{"lag-request-timeout", "tiers lag --topic orders --request-timeout 0s", exitUsage},
		{"create-help", "topics create --help", exitOK},
		{"create-nothing", "topics create", exitUsage},
		{"create-argument", "topics create --file testdata/cluster/orders.yaml extra", exitUsage},
		{"create-file-and-flags", "topics create --file testdata/cluster/orders.yaml --partitions 3", exitUsage},
		{"create-file-invalid", "topics create --file testdata/invalid.yaml", exitInvalid},
		{"create-file-missing", "topics create --file testdata/missing.yaml", exitUsage},
		{"create-unknown-flag", "topics create --file testdata/cluster/orders.yaml --dryrun", exitUsage},
		{"create-sasl", "topics create --topic orders --sasl-user me", exitUsage},
		{"verify-help", "topics verify --help", exitOK},
		{"verify-nothing", "topics verify --json", exitUsage},
		{"verify-file-and-flags", "topics verify --file testdata/cluster/orders.yaml --attempts 2", exitUsage},
		{"verify-flags-invalid", "topics verify --topic orders --partitions -2", exitInvalid},
		{"verify-file-missing", "topics verify --file testdata/missing.yaml", exitUsage},
		{"verify-sasl", "topics verify --topic orders --sasl gssapi --sasl-user me", exitUsage},
	}
	runGoldens(t, tests)
}

// createTopicWithConfigs creates a topic with configs and waits until it
// is usable. It uses a new client: the cluster's may have cached that the
// topic does not exist.
func createTopicWithConfigs(t *testing.T, c *kafkatest.Cluster, topic string, partitions int32, configs map[string]*string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.Seeds...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	resp, err := adm.CreateTopic(ctx, partitions, -1, configs, topic)
	if err == nil {
		err = resp.Err
	}
	if err == nil {
		err = kafkatest.WaitTopic(ctx, adm, topic, partitions)
	}
	if err != nil {
		t.Fatalf("create topic %s: %v", topic, err)
	}
}

// topicState is what the cluster says about a topic: its partition count
// (0 when it does not exist) and its retention.ms. It asks with a new
// client, which has no metadata cached from before the command ran.
func topicState(t *testing.T, c *kafkatest.Cluster, topic string) (int, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.Seeds...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	details, err := adm.ListTopics(ctx, topic)
	if err != nil {
		t.Fatal(err)
	}
	d, ok := details[topic]
	if !ok || d.Err != nil {
		return 0, ""
	}
	rcs, err := adm.DescribeTopicConfigs(ctx, topic)
	if err != nil {
		t.Fatal(err)
	}
	rc, err := rcs.On(topic, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, cfg := range rc.Configs {
		if cfg.Key == "retention.ms" {
			return len(d.Partitions), cfg.MaybeValue()
		}
	}
	return len(d.Partitions), ""
}

func strp(v string) *string { return &v }

// ordersPolicy is a listener on main with two tiers, a DLT and a routed
// DLT, creating topics with retention.ms 3600000.
func ordersPolicy(main, extra string) string {
	return `version: 1
listeners:
  - topic: ` + main + `
    attempts: 3
    delay: 1s
    multiplier: 2
    routes:
      - {suffix: -validation, error: validation}
    topicConfigs:
      retention.ms: "3600000"
` + extra
}

// topics create creates exactly the missing topics, with the main topic's
// partition count and the policy's configs, leaves the others alone, and
// is idempotent.
func TestTopicsCreate(t *testing.T) {
	c := kafkatest.New(t)
	main := c.Name("orders")
	c.CreateTopic(main, 3)
	dlt := main + "-dlt"
	createTopicWithConfigs(t, c, dlt, 1, nil)
	file := writePolicy(t, ordersPolicy(main, ""))
	planned := []string{main + "-retry-1000", main + "-retry-2000", dlt, main + "-validation-dlt"}

	code, stdout, stderr := runCluster(t, c, "topics", "create", "--file", file, "--dry-run")
	if code != exitOK {
		t.Fatalf("--dry-run: exit %d\n%s", code, stderr)
	}
	wantDry := planned[0] + ": would create (3 partitions, the broker's default replication factor, retention.ms=3600000)\n" +
		planned[1] + ": would create (3 partitions, the broker's default replication factor, retention.ms=3600000)\n" +
		dlt + ": exists\n" +
		planned[3] + ": would create (3 partitions, the broker's default replication factor, retention.ms=3600000)\n"
	if stdout != wantDry {
		t.Errorf("--dry-run printed\n%s\nwant\n%s", stdout, wantDry)
	}
	for _, topic := range []string{planned[0], planned[1], planned[3]} {
		if n, _ := topicState(t, c, topic); n != 0 {
			t.Errorf("--dry-run created %s", topic)
		}
	}

	code, stdout, stderr = runCluster(t, c, "topics", "create", "--file", file)
	if code != exitOK {
		t.Fatalf("exit %d\n%s", code, stderr)
	}
	created := regexp.MustCompile(`^(.+): created \(3 partitions, replication factor \d+, retention.ms=3600000\)$`)
	lines := strings.Split(strings.TrimSuffix(stdout, "\n"), "\n")
	if len(lines) != 4 {
		t.Fatalf("%d lines, want 4:\n%s", len(lines), stdout)
	}
	for i, l := range lines {
		if i == 2 {
			if l != dlt+": exists" {
				t.Errorf("line %d: %q, want %q", i, l, dlt+": exists")
			}
			continue
		}
		if m := created.FindStringSubmatch(l); m == nil || m[1] != planned[i] {
			t.Errorf("line %d: %q, want %s created with 3 partitions and retention.ms=3600000", i, l, planned[i])
		}
	}
	for _, topic := range []string{planned[0], planned[1], planned[3]} {
		if n, ret := topicState(t, c, topic); n != 3 || ret != "3600000" {
			t.Errorf("%s: %d partitions, retention.ms %q; want 3 and 3600000", topic, n, ret)
		}
	}
	if n, ret := topicState(t, c, dlt); n != 1 || ret == "3600000" {
		t.Errorf("existing %s was changed: %d partitions, retention.ms %q", dlt, n, ret)
	}

	code, stdout, stderr = runCluster(t, c, "topics", "create", "--file", file)
	want := planned[0] + ": exists\n" + planned[1] + ": exists\n" + dlt + ": exists\n" + planned[3] + ": exists\n"
	if code != exitOK || stdout != want {
		t.Errorf("second run: exit %d, printed\n%s\nwant\n%s\nstderr:\n%s", code, stdout, want, stderr)
	}
}

// topics create from setting flags uses their partitions and replication
// factor; it creates nothing when the main topic is missing.
func TestTopicsCreateFlags(t *testing.T) {
	c := kafkatest.New(t)
	main := c.Name("orders")
	c.CreateTopic(main, 1)
	code, stdout, stderr := runCluster(t, c, "topics", "create", "--topic", main, "--attempts", "2",
		"--partitions", "2", "--replication-factor", "1", "--dlt-strategy", "none")
	want := main + "-retry: created (2 partitions, replication factor 1)\n"
	if code != exitOK || stdout != want {
		t.Errorf("exit %d, printed\n%s\nwant\n%s\nstderr:\n%s", code, stdout, want, stderr)
	}
	if n, _ := topicState(t, c, main+"-retry"); n != 2 {
		t.Errorf("%s has %d partitions, want 2", main+"-retry", n)
	}
	if n, _ := topicState(t, c, main+"-dlt"); n != 0 {
		t.Errorf("%s was created although dltStrategy is none", main+"-dlt")
	}

	missing := c.Name("nomain")
	code, stdout, stderr = runCluster(t, c, "topics", "create", "--topic", missing, "--attempts", "2")
	wantErr := `kretry topics create: main topic "` + missing + `" of listener "` + missing +
		`" does not exist; create it first (kretry creates only retry and DLT topics)` + "\n"
	if code != exitInvalid || stdout != "" || stderr != wantErr {
		t.Errorf("missing main topic: exit %d, stdout %q, stderr %q; want %d, nothing, %q", code, stdout, stderr, exitInvalid, wantErr)
	}
	for _, topic := range []string{missing + "-retry", missing + "-dlt"} {
		if n, _ := topicState(t, c, topic); n != 0 {
			t.Errorf("%s created although its main topic is missing", topic)
		}
	}
}

// topics verify passes topics as created, and names the topic, the setting
// and the rule of each problem: a missing topic, too few partitions, a
// wrong config, a wrong exact count and replication factor, a missing main
// topic.
func TestTopicsVerify(t *testing.T) {
	c := kafkatest.New(t)
	main := c.Name("orders")
	c.CreateTopic(main, 3)
	file := writePolicy(t, ordersPolicy(main, ""))
	if code, _, stderr := runCluster(t, c, "topics", "create", "--file", file); code != exitOK {
		t.Fatalf("create: exit %d\n%s", code, stderr)
	}
	code, stdout, stderr := runCluster(t, c, "topics", "verify", "--file", file)
	want := main + ": OK\n" + main + "-retry-1000: OK\n" + main + "-retry-2000: OK\n" + main + "-dlt: OK\n" + main + "-validation-dlt: OK\n"
	if code != exitOK || stdout != want || stderr != "" {
		t.Errorf("verify after create: exit %d, printed\n%s\nwant\n%s\nstderr:\n%s", code, stdout, want, stderr)
	}

	// A second listener whose topics are wrong in every way.
	bad := c.Name("payments")
	c.CreateTopic(bad, 3)
	createTopicWithConfigs(t, c, bad+"-retry-1000", 3, map[string]*string{"retention.ms": strp("3600000")})
	createTopicWithConfigs(t, c, bad+"-retry-2000", 1, map[string]*string{"retention.ms": strp("3600000")})
	createTopicWithConfigs(t, c, bad+"-dlt", 3, map[string]*string{"retention.ms": strp("1000")})
	badFile := writePolicy(t, ordersPolicy(bad, ""))
	code, stdout, stderr = runCluster(t, c, "topics", "verify", "--file", badFile)
	want = bad + ": OK\n" +
		bad + "-retry-1000: OK\n" +
		bad + "-retry-2000: problem: partitions: has 1, want at least 3, the main topic's count (partitions: -1)\n" +
		bad + `-dlt: problem: topicConfigs.retention.ms: has "1000", want "3600000"` + "\n" +
		bad + `-validation-dlt: problem: exists: the topic does not exist ("kretry topics create" creates it)` + "\n"
	if code != exitInvalid || stdout != want || stderr != "kretry topics verify: 3 problems in 5 topics\n" {
		t.Errorf("exit %d, printed\n%s\nwant\n%s\nstderr:\n%s", code, stdout, want, stderr)
	}

	code, stdout, stderr = runCluster(t, c, "topics", "verify", "--file", badFile, "--json")
	var got verifyJSON
	if err := json.Unmarshal([]byte(stdout), &got); err != nil {
		t.Fatalf("--json: %v\n%s", err, stdout)
	}
	if code != exitInvalid || got.OK || len(got.Listeners) != 1 || len(got.Listeners[0].Topics) != 5 {
		t.Fatalf("--json: exit %d\n%s\nstderr:\n%s", code, stdout, stderr)
	}
	var settings []string
	for _, tc := range got.Listeners[0].Topics {
		for _, p := range tc.Problems {
			settings = append(settings, tc.Topic+" "+p.Setting)
		}
	}
	wantSettings := []string{bad + "-retry-2000 partitions", bad + "-dlt topicConfigs.retention.ms", bad + "-validation-dlt exists"}
	if strings.Join(settings, ",") != strings.Join(wantSettings, ",") {
		t.Errorf("--json problems %v, want %v", settings, wantSettings)
	}
	if tc := got.Listeners[0].Topics[2]; tc.Role != "retry" || !tc.Exists || tc.Partitions != 1 || tc.OK {
		t.Errorf("--json %s: %+v", tc.Topic, tc)
	}

	// Exact partitions and a replication factor the topics do not have.
	code, stdout, _ = runCluster(t, c, "topics", "verify", "--topic", bad, "--attempts", "3", "--multiplier", "2", "--partitions", "1",
		"--replication-factor", "3", "--dlt-strategy", "none")
	wantRe := regexp.MustCompile(`^` + regexp.QuoteMeta(bad) + `: OK
` + regexp.QuoteMeta(bad) + `-retry-1000: problem: partitions: has 3, want exactly 1 \(partitions: 1\)
` + regexp.QuoteMeta(bad) + `-retry-1000: problem: replicationFactor: want 3 replicas per partition \(replicationFactor: 3\); partition 0 has \d, partition 1 has \d, partition 2 has \d
` + regexp.QuoteMeta(bad) + `-retry-2000: problem: replicationFactor: want 3 replicas per partition \(replicationFactor: 3\); partition 0 has \d
$`)
	if code != exitInvalid || !wantRe.MatchString(stdout) {
		t.Errorf("exit %d, printed\n%s", code, stdout)
	}

	// No main topic.
	gone := c.Name("gone")
	code, stdout, _ = runCluster(t, c, "topics", "verify", "--topic", gone, "--attempts", "2", "--dlt-strategy", "none")
	want = gone + ": problem: exists: the main topic does not exist (kretry never creates it); the partition counts of the other topics, which must reach its count (partitions: -1), are not checked\n" +
		gone + `-retry: problem: exists: the topic does not exist ("kretry topics create" creates it)` + "\n"
	if code != exitInvalid || stdout != want {
		t.Errorf("no main topic: exit %d, printed\n%s\nwant\n%s", code, stdout, want)
	}
}

// A config the policy sets to null must not be overridden on the topic.
func TestTopicsVerifyNullConfig(t *testing.T) {
	c := kafkatest.New(t)
	main := c.Name("orders")
	c.CreateTopic(main, 1)
	createTopicWithConfigs(t, c, main+"-retry-1000", 1, map[string]*string{"retention.ms": strp("1000")})
	createTopicWithConfigs(t, c, main+"-retry-2000", 1, nil)
	file := writePolicy(t, `version: 1
listeners:
  - topic: `+main+`
    attempts: 3
    delay: 1s
    multiplier: 2
    dltStrategy: none
    topicConfigs:
      retention.ms: null
`)
	code, stdout, _ := runCluster(t, c, "topics", "verify", "--file", file)
	want := main + ": OK\n" +
		main + `-retry-1000: problem: topicConfigs.retention.ms: is set on the topic to "1000", want the broker's default (retention.ms: null)` + "\n" +
		main + "-retry-2000: OK\n"
	if code != exitInvalid || stdout != want {
		t.Errorf("exit %d, printed\n%s\nwant\n%s", code, stdout, want)
	}
}
