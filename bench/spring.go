package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"
)

// springSystem is the Spring Kafka peer: Spring Kafka 4.1.2's @KafkaListener
// and @RetryableTopic in a plain Spring context (bench/peers/spring, a Java
// 17 Maven project), run as one JVM per scenario. The JVM measures from
// inside its listener the way Tracker does and prints one line of JSON; S3
// prints READY first, once every listener container has its partitions.
//
// The jar is bench/peers/spring/target/kretry-bench-spring.jar, built by
// "mvn -q -f bench/peers/spring/pom.xml package"; it is built (or rebuilt
// when a source is newer) on first use. KRETRY_SPRING_JAR names another jar
// (used as is), KRETRY_SPRING_JAVA another java, KRETRY_SPRING_JVM_OPTS adds
// JVM options and KRETRY_SPRING_ARGS adds arguments to the jar, for variants
// such as "--verify-partition false" or "--seek-after-error true" (see
// bench/peers/spring/README.md).
type springSystem struct{}

func (springSystem) Name() string { return "spring" }

// springJarName is the shaded jar's file name under target/.
const springJarName = "kretry-bench-spring.jar"

// springBuildCmd is the command that builds the jar, for messages.
const springBuildCmd = "mvn -q -f bench/peers/spring/pom.xml package"

// springExitWait bounds how long the JVM may take to close its context
// after printing its result; then it is killed.
const springExitWait = 30 * time.Second

var springBuild struct {
	sync.Mutex
	jar string // built or checked this process
}

// springJar returns the path of the jar, building it when it is missing or
// older than its sources.
func springJar(ctx context.Context) (string, error) {
	if jar := os.Getenv("KRETRY_SPRING_JAR"); jar != "" {
		if _, err := os.Stat(jar); err != nil {
			return "", fmt.Errorf("spring: KRETRY_SPRING_JAR: %w", err)
		}
		return jar, nil
	}
	springBuild.Lock()
	defer springBuild.Unlock()
	if springBuild.jar != "" {
		return springBuild.jar, nil
	}
	dir, err := springProjectDir()
	if err != nil {
		return "", err
	}
	jar := filepath.Join(dir, "target", springJarName)
	stale, why := springStale(dir, jar)
	if stale {
		if _, err := exec.LookPath("mvn"); err != nil {
			return "", fmt.Errorf("spring: %s; build it with: %s (mvn is not on PATH)", why, springBuildCmd)
		}
		fmt.Fprintf(os.Stderr, "spring: %s; building it: mvn -q -f %s package\n", why, filepath.Join(dir, "pom.xml"))
		start := time.Now()
		cmd := exec.CommandContext(ctx, "mvn", "-q", "-B", "-f", filepath.Join(dir, "pom.xml"), "package")
		out, err := cmd.CombinedOutput() // -q: only errors, shown if it fails
		if err != nil {
			os.Stderr.Write(out)
			return "", fmt.Errorf("spring: building the jar failed (%w); run: %s", err, springBuildCmd)
		}
		if _, err := os.Stat(jar); err != nil {
			return "", fmt.Errorf("spring: the build made no %s: %w", jar, err)
		}
		fmt.Fprintf(os.Stderr, "spring: built %s in %s\n", jar, time.Since(start).Round(100*time.Millisecond))
	}
	springBuild.jar = jar
	return jar, nil
}

// springProjectDir finds bench/peers/spring from the working directory (the
// bench module or the repository root) or from the executable's directory.
func springProjectDir() (string, error) {
	var bases []string
	if wd, err := os.Getwd(); err == nil {
		bases = append(bases, wd)
	}
	if exe, err := os.Executable(); err == nil {
		bases = append(bases, filepath.Dir(exe))
	}
	for _, base := range bases {
		for _, rel := range []string{"peers/spring", "bench/peers/spring"} {
			dir := filepath.Join(base, rel)
			if _, err := os.Stat(filepath.Join(dir, "pom.xml")); err == nil {
				return dir, nil
			}
		}
	}
	return "", fmt.Errorf("spring: cannot find bench/peers/spring/pom.xml from %v; run from the bench module or set KRETRY_SPRING_JAR", bases)
}

// springStale says whether the jar must be built, and why.
func springStale(dir, jar string) (bool, string) {
	st, err := os.Stat(jar)
	if err != nil {
		return true, jar + " is missing"
	}
	newer := ""
	check := func(path string) {
		if fi, err := os.Stat(path); err == nil && fi.ModTime().After(st.ModTime()) && newer == "" {
			newer = path
		}
	}
	check(filepath.Join(dir, "pom.xml"))
	_ = filepath.WalkDir(filepath.Join(dir, "src"), func(path string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			check(path)
		}
		return nil
	})
	if newer != "" {
		return true, jar + " is older than " + newer
	}
	return false, ""
}

// springResult is the JVM's one line of JSON.
type springResult struct {
	Records   int   `json:"records"`
	ElapsedNs int64 `json:"elapsed_ns"` // first call to last success (S2)
	// The last 90% of the successes and the time they took (S1, as the Go
	// Tracker measures it).
	Last90Records int       `json:"last90_records"`
	Last90Ns      int64     `json:"last90_ns"`
	Lateness      [][]int64 `json:"lateness_ns"`
	Note          string    `json:"note"`
}

// run runs the jar with args, calls ready (if not nil) when it prints
// READY, and returns its JSON result.
func (springSystem) run(ctx context.Context, env *Env, args []string, ready func()) (springResult, error) {
	var res springResult
	if env.Fake {
		return res, fmt.Errorf("%w: Spring Kafka runs against a real broker only (-brokers)", ErrUnsupported)
	}
	if len(env.Brokers) == 0 {
		return res, errors.New("spring: no brokers")
	}
	jar, err := springJar(ctx)
	if err != nil {
		return res, err
	}
	java := os.Getenv("KRETRY_SPRING_JAVA")
	if java == "" {
		java = "java"
	}
	argv := strings.Fields(os.Getenv("KRETRY_SPRING_JVM_OPTS"))
	argv = append(argv, "-jar", jar, "--brokers", strings.Join(env.Brokers, ","))
	argv = append(argv, args...)
	argv = append(argv, strings.Fields(os.Getenv("KRETRY_SPRING_ARGS"))...)

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	cmd := exec.CommandContext(ctx, java, argv...)
	var tail tailBuffer
	cmd.Stderr = io.MultiWriter(os.Stderr, &tail)
	cmd.WaitDelay = 5 * time.Second
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return res, err
	}
	if err := cmd.Start(); err != nil {
		return res, fmt.Errorf("spring: starting %s: %w", java, err)
	}

	got := false
	var parseErr error
	var exitTimer *time.Timer
	defer func() {
		if exitTimer != nil {
			exitTimer.Stop()
		}
	}()
	r := bufio.NewReaderSize(stdout, 1<<16)
	for {
		line, err := r.ReadBytes('\n')
		line = bytes.TrimSpace(line)
		switch {
		case string(line) == "READY":
			if ready != nil {
				ready()
				ready = nil
			}
		case len(line) > 0 && line[0] == '{' && !got:
			if perr := json.Unmarshal(line, &res); perr != nil {
				parseErr = fmt.Errorf("spring: bad result line: %w", perr)
			} else {
				got = true
				// The result is in; the JVM only closes its context now.
				exitTimer = time.AfterFunc(springExitWait, cancel)
			}
		case len(line) > 0:
			fmt.Fprintf(os.Stderr, "spring: stdout: %s\n", line)
		}
		if err != nil {
			break
		}
	}
	werr := cmd.Wait()
	switch {
	case got:
		return res, nil
	case ctx.Err() != nil:
		return res, ctx.Err()
	case parseErr != nil:
		return res, parseErr
	case werr != nil:
		return res, fmt.Errorf("spring: %w; stderr ends: %s", werr, tail.String())
	default:
		return res, fmt.Errorf("spring: exited without a result; stderr ends: %s", tail.String())
	}
}

// HappyPath runs S1: a no-op record @KafkaListener, concurrency =
// partitions.
func (s springSystem) HappyPath(ctx context.Context, env *Env, in HappyPathInput) (Throughput, error) {
	res, err := s.run(ctx, env, []string{"--scenario", "s1", "--topic", in.Topic, "--group", in.Group,
		"--prefix", in.Topic, "--partitions", strconv.Itoa(in.Partitions), "--records", strconv.Itoa(in.Records)}, nil)
	if err != nil {
		return Throughput{}, err
	}
	return Throughput{Records: res.Last90Records, Elapsed: time.Duration(res.Last90Ns), Note: res.Note}, nil
}

// RetryHop runs S2: @RetryableTopic with attempts 2 and FixedBackOff(0);
// the listener throws for a main-topic delivery and succeeds on the retry
// topic.
func (s springSystem) RetryHop(ctx context.Context, env *Env, in RetryHopInput) (Throughput, error) {
	res, err := s.run(ctx, env, []string{"--scenario", "s2", "--topic", in.Topic, "--group", in.Group,
		"--prefix", in.Prefix, "--partitions", strconv.Itoa(in.Partitions), "--records", strconv.Itoa(in.Records)}, nil)
	if err != nil {
		return Throughput{}, err
	}
	return Throughput{Records: res.Records, Elapsed: time.Duration(res.ElapsedNs), Note: res.Note}, nil
}

// Precision runs S3: @RetryableTopic with one retry topic per delay; Spring
// pauses a retry partition until the record's due time and a scheduler
// resumes it.
func (s springSystem) Precision(ctx context.Context, env *Env, in PrecisionInput) (Precision, error) {
	ms := make([]string, len(in.Delays))
	for i, d := range in.Delays {
		if d < 0 || d%time.Millisecond != 0 {
			return Precision{}, fmt.Errorf("%w: Spring's back-off delays are whole milliseconds, not %s", ErrUnsupported, d)
		}
		ms[i] = strconv.FormatInt(d.Milliseconds(), 10)
	}
	ready := in.Ready
	if ready == nil {
		ready = func() {}
	}
	res, err := s.run(ctx, env, []string{"--scenario", "s3", "--topic", in.Topic, "--group", in.Group,
		"--prefix", in.Prefix, "--partitions", strconv.Itoa(in.Partitions), "--records", strconv.Itoa(in.Records),
		"--delays", strings.Join(ms, ",")}, ready)
	if err != nil {
		return Precision{}, err
	}
	if len(res.Lateness) != len(in.Delays) {
		return Precision{}, fmt.Errorf("spring: %d lateness tiers, want %d", len(res.Lateness), len(in.Delays))
	}
	out := make([][]time.Duration, len(res.Lateness))
	for i, tier := range res.Lateness {
		out[i] = make([]time.Duration, len(tier))
		for j, ns := range tier {
			out[i][j] = time.Duration(ns)
		}
	}
	return Precision{Lateness: out, Note: res.Note}, nil
}

// tailBuffer keeps the last 4 KiB written to it.
type tailBuffer struct {
	mu  sync.Mutex
	buf []byte
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.buf = append(t.buf, p...)
	if over := len(t.buf) - 4096; over > 0 {
		t.buf = append(t.buf[:0], t.buf[over:]...)
	}
	return len(p), nil
}

func (t *tailBuffer) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return strings.TrimSpace(string(t.buf))
}

// Cap keeps S2 and S3 within minutes. S2: every retry hop waits for the
// republish's reply on the consumer thread (about 400 records/s here). S3:
// the 100 ms tier saturates near 1,000 records/s, below the input rate, so
// a longer run only grows the backlog.
func (springSystem) Cap(scenario string) (int, string) {
	switch scenario {
	case "s1":
		return 1_000_000, "about 200,000 records/s: 1 M records make a repetition of about 5 s"
	case "s2":
		return 5000, "each hop waits for the republish's acknowledgement on the consumer thread (hundreds of records/s)"
	case "s3":
		return 20000, "its 100 ms tier saturates near 1,000 records/s, below the input rate"
	}
	return 0, ""
}
