package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"flag"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl/plain"
	"github.com/twmb/franz-go/pkg/sasl/scram"
)

// Environment variables read by the commands that talk to a cluster.
const (
	envBrokers      = "KRETRY_BROKERS"       // default of --brokers
	envSASLPassword = "KRETRY_SASL_PASSWORD" // the SASL password (never a flag: flags show in ps)
)

// clientFlags are the connection flags shared by every command that talks
// to a cluster.
type clientFlags struct {
	brokers  string
	tls      bool
	tlsCA    string
	saslMech string
	saslUser string
	timeout  time.Duration
}

// clientFlagsHelp documents the flags clientFlags registers, for the
// commands' --help texts.
const clientFlagsHelp = `Connection flags:
  --brokers HOSTS        comma-separated bootstrap brokers (default: $KRETRY_BROKERS,
                         or localhost:9092)
  --tls                  connect with TLS
  --tls-ca FILE          PEM file of the CAs to trust (implies --tls; default: the
                         system's)
  --sasl MECHANISM       plain, scram-sha-256 or scram-sha-512; the password is read
                         from $KRETRY_SASL_PASSWORD
  --sasl-user USER       SASL user name
  --request-timeout D    how long one request to the cluster may take (default 30s)
`

func (c *clientFlags) register(fs *flag.FlagSet) {
	def := os.Getenv(envBrokers)
	if def == "" {
		def = "localhost:9092"
	}
	fs.StringVar(&c.brokers, "brokers", def, "")
	fs.BoolVar(&c.tls, "tls", false, "")
	fs.StringVar(&c.tlsCA, "tls-ca", "", "")
	fs.StringVar(&c.saslMech, "sasl", "", "")
	fs.StringVar(&c.saslUser, "sasl-user", "", "")
	fs.DurationVar(&c.timeout, "request-timeout", 30*time.Second, "")
}

// seeds returns the bootstrap brokers.
func (c *clientFlags) seeds() []string {
	var out []string
	for _, s := range strings.Split(c.brokers, ",") {
		if s = strings.TrimSpace(s); s != "" {
			out = append(out, s)
		}
	}
	return out
}

// opts returns the client options for the connection flags, or an error
// naming the flag that is wrong.
func (c *clientFlags) opts() ([]kgo.Opt, error) {
	seeds := c.seeds()
	if len(seeds) == 0 {
		return nil, fmt.Errorf("--brokers: want at least one host:port")
	}
	if c.timeout <= 0 {
		return nil, fmt.Errorf("--request-timeout: must be > 0, got %v", c.timeout)
	}
	opts := []kgo.Opt{kgo.SeedBrokers(seeds...), kgo.RequestTimeoutOverhead(c.timeout),
		kgo.RetryTimeout(c.timeout), kgo.ClientID("kretry-cli")}
	if c.tls || c.tlsCA != "" {
		cfg := &tls.Config{MinVersion: tls.VersionTLS12}
		if c.tlsCA != "" {
			pem, err := os.ReadFile(c.tlsCA)
			if err != nil {
				return nil, fmt.Errorf("--tls-ca: %v", err)
			}
			pool := x509.NewCertPool()
			if !pool.AppendCertsFromPEM(pem) {
				return nil, fmt.Errorf("--tls-ca: %s holds no PEM certificate", c.tlsCA)
			}
			cfg.RootCAs = pool
		}
		opts = append(opts, kgo.DialTLSConfig(cfg))
	}
	if c.saslMech != "" || c.saslUser != "" {
		if c.saslUser == "" {
			return nil, fmt.Errorf("--sasl-user: required with --sasl")
		}
		pass := os.Getenv(envSASLPassword)
		switch strings.ToLower(c.saslMech) {
		case "plain":
			opts = append(opts, kgo.SASL(plain.Auth{User: c.saslUser, Pass: pass}.AsMechanism()))
		case "scram-sha-256":
			opts = append(opts, kgo.SASL(scram.Auth{User: c.saslUser, Pass: pass}.AsSha256Mechanism()))
		case "scram-sha-512":
			opts = append(opts, kgo.SASL(scram.Auth{User: c.saslUser, Pass: pass}.AsSha512Mechanism()))
		case "":
			return nil, fmt.Errorf("--sasl: required with --sasl-user (plain, scram-sha-256 or scram-sha-512)")
		default:
			return nil, fmt.Errorf("--sasl: unknown mechanism %q; want plain, scram-sha-256 or scram-sha-512", c.saslMech)
		}
	}
	return opts, nil
}

// client connects with the connection flags plus extra options and checks
// that the cluster answers, so that a wrong address fails at once with a
// message that says so.
func (c *clientFlags) client(ctx context.Context, extra ...kgo.Opt) (*kgo.Client, *kadm.Client, error) {
	opts, err := c.opts()
	if err != nil {
		return nil, nil, err
	}
	cl, err := kgo.NewClient(append(opts, extra...)...)
	if err != nil {
		return nil, nil, err
	}
	pctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	if err := cl.Ping(pctx); err != nil {
		cl.Close()
		return nil, nil, fmt.Errorf("cannot reach the cluster at %s (check --brokers and the connection flags): %w", c.brokers, err)
	}
	return cl, kadm.NewClient(cl), nil
}
