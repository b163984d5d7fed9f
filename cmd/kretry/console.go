package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"regexp"
	"time"

	"github.com/kretry/kretry/internal/console"
	"github.com/kretry/kretry/strategy"
)

// defaultListen is the default of console --listen: loopback only.
const defaultListen = "127.0.0.1:8080"

const consoleHelp = `Usage: kretry console [--listen HOST:PORT] [--allow-replay] [--state-dir DIR]
                      [--plans REGEXP] [--retry-suffix S] [--dlt-suffix S] [CONNECTION FLAGS]

Serves a small web UI for the retry tiers and dead-letter topics (DLTs) of
the cluster, until interrupted (Ctrl-C):
  - an overview of every kretry plan found on the cluster (a topic
    BASE-retry[-N[-M]] is a retry tier of BASE, BASE-dlt its DLT), with the
    records of each DLT and, for each consumer group with committed offsets
    on a plan's topics, the records waiting in each tier: not yet due and
    overdue (as "kretry tiers lag");
  - a page per DLT: the records grouped by error type, original topic,
    consumer group and age (as "kretry dlt inspect"), with filters, a chart
    of arrivals over time and the records, newest first, page by page;
  - a page per record: key and value as text, hex and pretty-printed JSON
    (large ones cut, with a download link), every header decoded, and the
    retry history its headers tell;
  - a replay form that runs the engine of "kretry dlt replay": a dry run
    first, then, once the run ID is typed again to confirm, the replay, with
    its progress and summary. Each record goes to the first retry tier of
    the group that dead-lettered it, found by topic names (with
    groupTopics, the plan named after the topic and the group), or to its
    original topic when it has no group; a record whose listener no plan
    names is skipped and listed. Replays need --allow-replay; without it the
    console is read-only (dry runs only).

It reads every topic with direct partition consumers: it joins no consumer
group and commits nothing. It has no login: anyone who can reach its
address can use it, so it listens on the loopback interface unless --listen
says otherwise, and then answers only to the Host names of that address.
Every change is a POST carrying a per-process CSRF token; no page runs
script; record contents are escaped; connection settings and the SASL
password never appear in pages or in its log (one line per request, on
standard error).

Flags:
  --listen HOST:PORT      address to serve on (default 127.0.0.1:8080; port 0
                          picks a free one). An address other than loopback
                          exposes the console to the network: put it behind an
                          authenticating proxy
  --allow-replay          let the replay form send records (default: read-only)
  --state-dir DIR         directory of the replays' state files, as "kretry dlt
                          replay --state-dir" (default: $XDG_STATE_HOME/kretry or
                          ~/.local/state/kretry). An interrupted run resumes
                          when started again with the same run ID and filters
  --plans REGEXP          show only the plans whose name (the main topic, or with
                          groupTopics the main topic and group) matches REGEXP
                          (Go syntax) in the overview; on a large cluster the
                          overview then reads only their tiers (default: all)
  --retry-suffix S        retry suffix plans are found by (default -retry)
  --dlt-suffix S          DLT suffix plans are found by (default -dlt)

` + clientFlagsHelp + `
Exit status: 0 stopped by Ctrl-C or SIGTERM, 2 usage error, 3 the cluster
cannot be reached, or the address cannot be listened on.
`

func consoleCmd(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	const cmd = "console"
	fs := flag.NewFlagSet(cmd, flag.ContinueOnError)
	var cf clientFlags
	cf.register(fs)
	listen := fs.String("listen", defaultListen, "")
	allow := fs.Bool("allow-replay", false, "")
	stateDir := fs.String("state-dir", "", "")
	plans := fs.String("plans", "", "")
	var naming strategy.Naming
	fs.StringVar(&naming.RetrySuffix, "retry-suffix", strategy.DefaultRetrySuffix, "")
	fs.StringVar(&naming.DLTSuffix, "dlt-suffix", strategy.DefaultDLTSuffix, "")
	pos, code, done := parse(fs, args, consoleHelp, stdout, stderr)
	if done {
		return code
	}
	if len(pos) > 0 {
		return usagef(stderr, cmd, "unexpected argument %q", pos[0])
	}
	if _, port, err := net.SplitHostPort(*listen); err != nil || port == "" {
		return usagef(stderr, cmd, "--listen: want HOST:PORT (such as 127.0.0.1:8080), got %q", *listen)
	}
	var plansRE *regexp.Regexp
	if *plans != "" {
		re, err := regexp.Compile(*plans)
		if err != nil {
			return usagef(stderr, cmd, "--plans: want a Go regular expression: %v", err)
		}
		plansRE = re
	}
	if err := naming.Validate(); err != nil {
		var se *strategy.SettingError
		if errors.As(err, &se) {
			return usagef(stderr, cmd, "--%s: %v", map[string]string{"retrySuffix": "retry-suffix", "dltSuffix": "dlt-suffix"}[se.Key], se.Err)
		}
		return usageError(stderr, cmd, err)
	}
	opts, err := cf.opts()
	if err != nil {
		return usageError(stderr, cmd, err)
	}
	dir, err := replayStateDir(*stateDir, !*allow)
	if err != nil {
		return usageError(stderr, cmd, err)
	}
	if err := ping(ctx, &cf); err != nil {
		fmt.Fprintf(stderr, "kretry %s: %v\n", cmd, err)
		return exitFailed
	}
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		fmt.Fprintf(stderr, "kretry %s: --listen: %v\n", cmd, err)
		return exitFailed
	}
	addr := ln.Addr().String()
	hosts := console.LoopbackHosts(addr)
	if hosts != nil {
		// Also the name given, such as localhost:8080.
		hosts = append(hosts, *listen)
	}
	logger := slog.New(slog.NewTextHandler(stderr, nil))
	srv, err := console.New(ctx, console.Config{ClientOpts: opts, Brokers: cf.brokers, AllowReplay: *allow, StateDir: dir,
		Naming: naming, Plans: plansRE, Decoder: dltDecoder(), AllowedHosts: hosts, Logger: logger})
	if err != nil {
		ln.Close()
		fmt.Fprintf(stderr, "kretry %s: %v\n", cmd, err)
		return exitFailed
	}
	defer srv.Close()
	mode := "read-only"
	if *allow {
		mode = "replay allowed"
	}
	if hosts == nil {
		fmt.Fprintf(stderr, "kretry %s: warning: %s is not a loopback address; anyone who can reach it can use the console\n", cmd, addr)
	}
	fmt.Fprintf(stdout, "kretry console: serving http://%s/ (%s); Ctrl-C stops\n", addr, mode)
	hs := &http.Server{Handler: srv, ReadHeaderTimeout: 10 * time.Second, ErrorLog: slog.NewLogLogger(logger.Handler(), slog.LevelWarn)}
	errc := make(chan error, 1)
	go func() { errc <- hs.Serve(ln) }()
	select {
	case err := <-errc:
		fmt.Fprintf(stderr, "kretry %s: %v\n", cmd, err)
		return exitFailed
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	hs.Shutdown(sctx)
	fmt.Fprintf(stdout, "kretry console: stopped\n")
	return exitOK
}
