package main

import (
	"bytes"
	"context"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl/scram"

	"github.com/kretry/kretry/internal/kafkatest"
)

// The connection flags against the SASL/SCRAM broker of
// "scripts/kafka.sh start secure" (load its secure.env); CI runs it with
// KRETRY_REQUIRE_BROKERS=1 KRETRY_REQUIRE_SECURE=1.
func TestSecureConnectionFlags(t *testing.T) {
	env := map[string]string{}
	for _, k := range []string{"KRETRY_SECURE_BROKERS", "KRETRY_SASL_MECHANISM", "KRETRY_SASL_ADMIN_USER", "KRETRY_SASL_ADMIN_PASS"} {
		if env[k] = os.Getenv(k); env[k] == "" {
			if os.Getenv(kafkatest.EnvRequire) == "1" && os.Getenv("KRETRY_REQUIRE_SECURE") == "1" {
				t.Fatalf("%s is empty: load the secure.env of scripts/kafka.sh start secure", k)
			}
			t.Skipf("needs the secure broker of scripts/kafka.sh start secure (%s is empty)", k)
		}
	}
	user, pass := env["KRETRY_SASL_ADMIN_USER"], env["KRETRY_SASL_ADMIN_PASS"]
	auth := scram.Auth{User: user, Pass: pass}
	mech := auth.AsSha512Mechanism()
	if strings.EqualFold(env["KRETRY_SASL_MECHANISM"], "SCRAM-SHA-256") {
		mech = auth.AsSha256Mechanism()
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(strings.Split(env["KRETRY_SECURE_BROKERS"], ",")...), kgo.SASL(mech))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	topic := kafkatest.UniquePrefix(t) + "-orders"
	if _, err := adm.CreateTopic(ctx, 2, 1, nil, topic); err != nil {
		t.Fatal(err)
	}
	if err := kafkatest.WaitTopic(ctx, adm, topic, 2); err != nil {
		t.Fatal(err)
	}
	policy := []string{"--topic", topic, "--attempts", "2"}
	cli := func(password string, args ...string) (int, string, string) {
		t.Helper()
		t.Setenv(envSASLPassword, password)
		var stdout, stderr bytes.Buffer
		code := runContext(ctx, append(args, "--sasl", env["KRETRY_SASL_MECHANISM"], "--sasl-user", user), &stdout, &stderr)
		return code, stdout.String(), stderr.String()
	}
	plain := []string{"--brokers", env["KRETRY_SECURE_BROKERS"]}

	code, out, errOut := cli(pass, append(append([]string{"topics", "create"}, policy...), plain...)...)
	if code != exitOK || !strings.Contains(out, topic+"-retry: created") || !strings.Contains(out, topic+"-dlt: created") {
		t.Fatalf("topics create over SASL: exit %d\n%s%s", code, out, errOut)
	}
	if code, out, errOut = cli(pass, append(append([]string{"topics", "verify"}, policy...), plain...)...); code != exitOK {
		t.Errorf("topics verify over SASL: exit %d\n%s%s", code, out, errOut)
	}
	if code, out, errOut = cli(pass, append([]string{"dlt", "inspect", topic + "-dlt"}, plain...)...); code != exitOK || !strings.Contains(out, "read 0 records") {
		t.Errorf("dlt inspect over SASL: exit %d\n%s%s", code, out, errOut)
	}
	code, out, errOut = cli(pass+"-wrong", append(append([]string{"topics", "verify"}, policy...), plain...)...)
	if code != exitFailed || !strings.Contains(errOut, "cannot reach the cluster") {
		t.Errorf("wrong password: exit %d, want %d and a message saying the cluster cannot be reached\n%s%s", code, exitFailed, out, errOut)
	}
	if tlsBrokers, ca := os.Getenv("KRETRY_SECURE_TLS_BROKERS"), os.Getenv("KRETRY_SECURE_CA"); tlsBrokers != "" && ca != "" {
		args := append(append([]string{"topics", "verify"}, policy...), "--brokers", tlsBrokers, "--tls-ca", ca)
		if code, out, errOut = cli(pass, args...); code != exitOK {
			t.Errorf("topics verify over SASL_SSL: exit %d\n%s%s", code, out, errOut)
		}
	}
}
