package main

import (
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/kretry/kretry/listener"
	"github.com/kretry/kretry/retry"
	"github.com/kretry/kretry/retry/spring"
	"github.com/kretry/kretry/strategy"
)

// Wire compatibility with the real Spring Kafka 4.1.2 application in
// bench/peers/spring (Interop.java, InteropListener.java), on a real
// broker: a hand-over in each direction while records are in flight.
//
//	KRETRY_BROKERS=127.0.0.1:PORT go test -count=1 -run Interop -v .
//
// Both need java on PATH (and mvn for the first build of the jar, which
// bench/spring.go does). Each takes about 30 s, mostly the retry delays.

// The main topic's shape: keys k0..k11 over 3 partitions; the even keys
// fail on every delivery, in Spring and in kretry, the odd ones succeed.
const (
	interopPartitions = 3
	interopRecords    = 12
)

// springPlannedFailure is the class of the exception the Spring listener
// throws (RetryListener.PlannedFailure), as Spring names the root cause.
const springPlannedFailure = "dev.kretry.bench.spring.RetryListener$PlannedFailure"

// Spring → kretry. A Spring @RetryableTopic service (attempts 4, fixed
// 8 s back-off: topics T-retry, reused for every retry, and T-dlt) fails
// the even keys on the main topic, republishes each to T-retry and stops
// before any of them is due. A kretry listener with the same policy,
// SpringHeaders(spring.Read) and Spring's main group id then takes over:
// it must deliver each Spring record from T-retry as attempt 2, at or
// after Spring's due time, with the original coordinates Spring recorded,
// then attempts 3 and 4 through its own T-retry records, then dead-letter
// it to T-dlt after 4 deliveries. Nothing is lost or delivered twice.
//
// Offsets. kretry consumes main, tiers and DLT in the one group it is
// given. With Spring's main group id the main topic resumes at Spring's
// committed offsets (checked: every record committed), so no main record
// is delivered again. Spring's retry container (group <group>-retry)
// fetched the records, found them not due, paused, and stopped without
// committing anything (checked below); kretry's group has no offsets for
// T-retry and starts it from the earliest offset, which is exactly the
// set of records Spring had not handled. Copying Spring's retry-group
// offsets (docs/interop-spring.md) would be a no-op here.
func TestInteropSpringToKretry(t *testing.T) {
	env := springTestEnv(t)
	const delay = 8 * time.Second
	start := time.Now()
	id := "interop-s2k-" + strconv.FormatInt(time.Now().UnixNano(), 36)
	topic, group := id, id+"-g"
	failKeys, fail := interopFailKeys(interopRecords)
	main := interopFill(t, env, topic, interopPartitions, interopRecords)

	sig := &signal{}
	rec := newKretryRecorder(sig, fail)
	l, err := listener.New(env.Brokers, topic, rec,
		listener.Group(group),
		listener.Attempts(4), listener.Backoff(strategy.FixedBackoff(delay)),
		listener.SpringHeaders(spring.Read),
		listener.DLTHandler(rec), listener.Hooks(rec), listener.Logger(interopLogger(t)))
	if err != nil {
		t.Fatal(err)
	}
	plan := l.Plan()
	if len(plan.Tiers) != 1 || !plan.Tiers[0].Reusable {
		t.Fatalf("kretry plan %+v: want one reusable tier", plan)
	}
	tier := plan.Tiers[0].Topic

	// Spring: consume the main topic, republish the failures, stop.
	sp := startSpringInterop(t, env, sig, "--scenario", "interop-produce", "--topic", topic, "--group", group,
		"--partitions", strconv.Itoa(interopPartitions), "--records", strconv.Itoa(interopRecords),
		"--delays", "8000,8000,8000", "--fail-keys", strings.Join(failKeys, ","))
	sp.mark("INITIALIZED", 2*time.Minute)
	topics := sp.of("topics")
	if len(topics) != 1 {
		t.Fatalf("spring: %d topics events", len(topics))
	}
	groups := checkSpringTopics(t, plan, topics[0].Topics)
	sp.send("START")
	springExit := sp.waitExit(time.Minute)
	sp.checkClean()
	springTook := springExit.Sub(start)

	// What Spring did: every main record delivered once, every failure
	// republished once to T-retry as attempt 2, nothing delivered from T-retry.
	published := map[string]springEvent{}
	for _, e := range sp.of("published") {
		if _, dup := published[e.Key]; dup || !fail[e.Key] {
			t.Errorf("spring published %s to %s unexpectedly (again, or a key that succeeds)", e.Key, e.Topic)
		}
		published[e.Key] = e
	}
	mainSeen := map[string]int{}
	for _, e := range sp.of("delivery") {
		if e.Topic != topic {
			t.Errorf("spring delivered %s from %s[%d]@%d (attempts %v) before it stopped; the retry delay is too short for this machine",
				e.Key, e.Topic, e.Partition, e.Offset, deref(e.Attempts))
			continue
		}
		mainSeen[e.Key]++
	}
	var firstDue time.Time
	for key, m := range main {
		if mainSeen[key] != 1 {
			t.Errorf("spring delivered %s %d times from the main topic, want 1", key, mainSeen[key])
		}
		if !fail[key] {
			continue
		}
		p, ok := published[key]
		switch {
		case !ok:
			t.Errorf("spring never republished %s", key)
			continue
		case p.Topic != tier || p.Partition != m.Partition:
			t.Errorf("spring republished %s to %s[%d], want %s[%d] (same partition)", key, p.Topic, p.Partition, tier, m.Partition)
		case p.Attempts == nil || *p.Attempts != 2 || p.AttemptsCopies != 1 || p.BackoffMs == nil:
			t.Errorf("spring's record for %s: attempts %v (%d copies), backoff %v; want 2, 1 copy, a due time",
				key, deref(p.Attempts), p.AttemptsCopies, deref(p.BackoffMs))
		case p.OriginalTopic == nil || *p.OriginalTopic != topic || p.OriginalPartition == nil ||
			*p.OriginalPartition != m.Partition || p.OriginalOffset == nil || *p.OriginalOffset != m.Offset:
			t.Errorf("spring's record for %s: original %v[%v]@%v, want %s[%d]@%d", key,
				deref(p.OriginalTopic), deref(p.OriginalPartition), deref(p.OriginalOffset), topic, m.Partition, m.Offset)
		}
		if p.BackoffMs != nil && (firstDue.IsZero() || epochMs(*p.BackoffMs).Before(firstDue)) {
			firstDue = epochMs(*p.BackoffMs)
		}
	}
	if t.Failed() {
		t.FailNow()
	}
	if !springExit.Before(firstDue) {
		t.Fatalf("spring exited at %s, %s after the first due time: raise the delay", springExit.Format(time.StampMilli),
			springExit.Sub(firstDue))
	}
	ex := published[failKeys[0]]
	var stopping, stopped int64
	if e := sp.of("stopping"); len(e) == 1 {
		stopping = e[0].NowMs
	}
	if e := sp.of("stopped"); len(e) == 1 {
		stopped = e[0].NowMs
	}
	t.Logf("spring: closing its context took %d ms", stopped-stopping)
	t.Logf("spring: %d main deliveries, %d republished to %s and exited %s after the test began, %s before the first due time; "+
		"e.g. %s: retry_topic-attempts %s, retry_topic-backoff-timestamp %s (%d), kafka_original-partition %s, kafka_original-offset %s, %d-byte stack trace",
		len(sp.of("delivery")), len(published), tier, springTook.Round(time.Millisecond), firstDue.Sub(springExit).Round(time.Millisecond),
		ex.Key, ex.AttemptsHex, ex.BackoffHex, deref(ex.BackoffMs), ex.OriginalPartitionHex, ex.OriginalOffsetHex, deref(ex.StacktraceBytes))

	// Offsets Spring left: the main topic fully committed in the main group;
	// nothing committed by the retry container's group.
	if got, want := committed(t, env, group, topic), endOffsets(t, env, topic); !maps.Equal(got, want) {
		t.Fatalf("spring's committed main-topic offsets %v, want the end offsets %v", got, want)
	}
	springRetryGroup := groups[tier]
	lowest := map[int32]int64{}
	for _, p := range published {
		if o, ok := lowest[p.Partition]; !ok || p.Offset < o {
			lowest[p.Partition] = p.Offset
		}
	}
	retryCommitted := committed(t, env, springRetryGroup, tier)
	for part, at := range retryCommitted {
		if at > lowest[part] {
			t.Errorf("spring's group %s committed %s[%d] at %d, past its first record (%d): it handled a record it was not due to",
				springRetryGroup, tier, part, at, lowest[part])
		}
	}
	t.Logf("spring's group %s committed on %s: %v (none: it fetched and paused, never acknowledged)", springRetryGroup, tier, retryCommitted)

	// kretry takes over.
	kretryStart := time.Now()
	stop := startKretry(t, l)
	waitUntil(t, sig, time.Until(firstDue)+3*delay+30*time.Second, nil, "kretry: every failed key in its DLT handler", func() bool {
		_, dlt, _ := rec.snapshot()
		return len(dlt) >= len(failKeys)
	})
	stop()
	calls, dlt, events := rec.snapshot()

	// Exactly attempts 2, 3, 4 per failing key, from T-retry; nothing else.
	// No record is redelivered: there is one kretry member, no rebalance
	// while it runs and no crash, and Spring committed what it handled.
	byKey := map[string][]kretryCall{}
	for _, c := range calls {
		if !fail[c.Key] {
			t.Errorf("kretry delivered %s (it succeeded in Spring) from %s[%d]@%d", c.Key, c.Topic, c.Partition, c.Offset)
			continue
		}
		byKey[c.Key] = append(byKey[c.Key], c)
	}
	var lateness []time.Duration
	for _, key := range failKeys {
		m, p, cs := main[key], published[key], byKey[key]
		var got []int32
		for _, c := range cs {
			got = append(got, c.State.Attempt)
		}
		if !slices.Equal(got, []int32{2, 3, 4}) {
			t.Errorf("kretry delivered %s as attempts %v, want [2 3 4]", key, got)
			continue
		}
		for i, c := range cs {
			st := c.State
			if !c.HasState || c.Topic != tier || st.OriginalTopic != topic || st.OriginalPartition != m.Partition ||
				st.OriginalOffset != m.Offset {
				t.Errorf("kretry's delivery %d of %s: from %s, original %s[%d]@%d; want from %s, original %s[%d]@%d",
					st.Attempt, key, c.Topic, st.OriginalTopic, st.OriginalPartition, st.OriginalOffset, tier, topic, m.Partition, m.Offset)
			}
			if c.At.Before(st.Due) {
				t.Errorf("kretry delivered %s attempt %d at %s, before its due time %s", key, st.Attempt,
					c.At.Format(time.StampMilli), st.Due.Format(time.StampMilli))
			}
			if i == 0 {
				// Spring's record itself, read with Spring's due time and error.
				if c.Partition != p.Partition || c.Offset != p.Offset {
					t.Errorf("kretry's attempt 2 of %s came from %s[%d]@%d, want Spring's record %s[%d]@%d", key,
						c.Topic, c.Partition, c.Offset, p.Topic, p.Partition, p.Offset)
				}
				if !st.Due.Equal(epochMs(*p.BackoffMs)) || st.ErrorType != springPlannedFailure ||
					!st.OriginalTimestamp.Equal(epochMs(m.Timestamp.UnixMilli())) {
					t.Errorf("kretry's view of Spring's record for %s: due %s, error type %q, original timestamp %s; "+
						"want due %s (retry_topic-backoff-timestamp), %q, %s", key, st.Due.Format(time.StampMilli), st.ErrorType,
						st.OriginalTimestamp.Format(time.StampMilli), epochMs(*p.BackoffMs).Format(time.StampMilli), springPlannedFailure,
						m.Timestamp.Format(time.StampMilli))
				}
				lateness = append(lateness, c.At.Sub(st.Due))
			} else if prev := cs[i-1]; st.Due.Before(prev.At.Add(delay)) {
				t.Errorf("kretry's attempt %d of %s due %s, less than %s after attempt %d at %s", st.Attempt, key,
					st.Due.Format(time.StampMilli), delay, prev.State.Attempt, prev.At.Format(time.StampMilli))
			}
		}
	}
	dltByKey := map[string]int{}
	for _, d := range dlt {
		dltByKey[d.Key]++
		m, st := main[d.Key], d.State
		if d.Topic != plan.DLT || st.Attempt != 4 || st.Reason != retry.ReasonExhausted || st.OriginalTopic != topic ||
			st.OriginalPartition != m.Partition || st.OriginalOffset != m.Offset {
			t.Errorf("kretry's DLT record for %s: %s, attempt %d, reason %q, original %s[%d]@%d; want %s, 4, %q, %s[%d]@%d",
				d.Key, d.Topic, st.Attempt, st.Reason, st.OriginalTopic, st.OriginalPartition, st.OriginalOffset,
				plan.DLT, retry.ReasonExhausted, topic, m.Partition, m.Offset)
		}
	}
	for _, key := range failKeys {
		if dltByKey[key] != 1 {
			t.Errorf("kretry's DLT handler got %s %d times, want 1", key, dltByKey[key])
		}
	}
	// With spring.Read alone, what kretry forwards carries its own headers
	// only: Spring's are removed, not left stale.
	for _, r := range readTopic(t, env, plan.DLT) {
		st, ok, err := retry.Decode(r.Headers)
		if !ok || err != nil || st.Attempt != 4 {
			t.Errorf("%s[%d]@%d: kretry headers %+v, %v, %v; want attempt 4", r.Topic, r.Partition, r.Offset, st, ok, err)
		}
		for _, h := range r.Headers {
			if spring.IsSpringHeader(h.Key) {
				t.Errorf("%s[%d]@%d carries Spring header %s", r.Topic, r.Partition, r.Offset, h.Key)
			}
		}
	}
	// kretry waited for Spring's due time: it paused the tier partitions
	// at Spring's records' due times.
	springDues := map[int64]bool{}
	for _, p := range published {
		springDues[*p.BackoffMs] = true
	}
	paused := 0
	assigned := map[string]int{}
	for _, e := range events {
		if e.Kind == listener.EventPaused && e.Topic == tier && springDues[e.Due.UnixMilli()] {
			paused++
		}
		if e.Kind == listener.EventAssigned {
			tp := fmt.Sprintf("%s[%d]", e.Topic, e.Partition)
			if assigned[tp]++; assigned[tp] > 1 {
				t.Errorf("kretry: %s assigned again: a rebalance, which could redeliver records", tp)
			}
		}
	}
	if paused == 0 {
		t.Errorf("kretry never paused %s for a due time Spring wrote; it started %s after the first one",
			tier, kretryStart.Sub(firstDue))
	}
	if n, want := rec.countEvents(listener.EventRetried, strategy.RoleTier), 2*len(failKeys); n != want {
		t.Errorf("kretry forwarded %d records to its tier, want %d", n, want)
	}
	if n, want := rec.countEvents(listener.EventDeadLettered, strategy.RoleTier), len(failKeys); n != want {
		t.Errorf("kretry dead-lettered %d records, want %d", n, want)
	}
	slices.Sort(lateness)
	if len(lateness) > 0 {
		t.Logf("kretry: started %s before the first due time; %d handler calls, %d DLT handler calls; attempt 2 late by %s (min) .. %s (max) after Spring's due time; %d pauses at Spring's due times; whole test %s",
			firstDue.Sub(kretryStart).Round(time.Millisecond), len(calls), len(dlt), lateness[0].Round(time.Millisecond),
			lateness[len(lateness)-1].Round(time.Millisecond), paused, time.Since(start).Round(time.Millisecond))
	}
}

// kretry → Spring. A kretry listener with SpringHeaders(spring.Write),
// attempts 4 and exponential back-off 7 s × 1.2 capped at 8.4 s (topics
// T-retry-7000, T-retry-8400 reused, T-dlt) fails the even keys on the
// main topic, forwards each to T-retry-7000 and stops before any is due.
// The Spring service with the same @RetryableTopic then takes over: it
// must deliver each of kretry's records as attempt 2, not before kretry's
// due time, then run attempts 3 and 4 through its own T-retry-8400, then
// hand the record to its @DltHandler with the original-topic headers
// kretry wrote. Nothing is lost or delivered twice. The first delay leaves
// room for kretry to stop and for Spring's 12 consumers (4 containers ×
// concurrency 3) to join before the first record is due, so that Spring
// is seen holding kretry's records until their due time.
//
// Offsets: Spring's main container uses kretry's group id and resumes at
// kretry's commits; its retry and DLT containers (groups <group>-retry-7000,
// …) have no offsets and start at the earliest, which holds exactly the
// records kretry forwarded and did not handle.
func TestInteropKretryToSpring(t *testing.T) {
	env := springTestEnv(t)
	start := time.Now()
	id := "interop-k2s-" + strconv.FormatInt(time.Now().UnixNano(), 36)
	topic, group := id, id+"-g"
	failKeys, fail := interopFailKeys(interopRecords)
	main := interopFill(t, env, topic, interopPartitions, interopRecords)

	sig := &signal{}
	rec := newKretryRecorder(sig, fail)
	l, err := listener.New(env.Brokers, topic, rec,
		listener.Group(group),
		listener.Attempts(4), listener.Backoff(strategy.ExponentialBackoff(7*time.Second, 1.2, 8400*time.Millisecond)),
		listener.SpringHeaders(spring.Write),
		listener.DLTHandler(rec), listener.Hooks(rec), listener.Logger(interopLogger(t)))
	if err != nil {
		t.Fatal(err)
	}
	plan := l.Plan()
	if len(plan.Tiers) != 2 || !plan.Tiers[1].Reusable {
		t.Fatalf("kretry plan %+v: want two tiers, the second reusable", plan)
	}
	tier1, tier2 := plan.Tiers[0].Topic, plan.Tiers[1].Topic

	// The Spring service is deployed with its containers stopped; its
	// KafkaAdmin has created the topics (kretry finds them).
	sp := startSpringInterop(t, env, sig, "--scenario", "interop-consume", "--topic", topic, "--group", group,
		"--partitions", strconv.Itoa(interopPartitions), "--delays", "7000,8400,8400",
		"--fail-keys", strings.Join(failKeys, ","))
	sp.mark("INITIALIZED", 2*time.Minute)
	topics := sp.of("topics")
	if len(topics) != 1 {
		t.Fatalf("spring: %d topics events", len(topics))
	}
	checkSpringTopics(t, plan, topics[0].Topics)

	// kretry: handle the main topic, forward the failures, stop.
	stop := startKretry(t, l)
	waitUntil(t, sig, time.Minute, nil, "kretry: every main record handled or forwarded", func() bool {
		return rec.countEvents(listener.EventRetried, strategy.RoleMain) >= len(failKeys) &&
			rec.countEvents(listener.EventHandled, strategy.RoleMain) >= interopRecords-len(failKeys)
	})
	stop()
	kretryStopped := time.Now()
	calls, kdlt, events := rec.snapshot()
	due := map[string]time.Time{} // kretry's due time by key
	keyAt := map[mainRecord]string{}
	for k, m := range main {
		keyAt[mainRecord{Partition: m.Partition, Offset: m.Offset}] = k
	}
	var firstDue time.Time
	for _, e := range events {
		if e.Kind != listener.EventRetried {
			continue
		}
		key := keyAt[mainRecord{Partition: e.Partition, Offset: e.Offset}]
		if e.Role != strategy.RoleMain || e.Target != tier1 || !fail[key] {
			t.Errorf("kretry forwarded %s[%d]@%d (%q, role %v) to %s; want only failing main records, to %s",
				e.Topic, e.Partition, e.Offset, key, e.Role, e.Target, tier1)
		}
		if _, dup := due[key]; dup {
			t.Errorf("kretry forwarded %s twice", key)
		}
		due[key] = e.Due
		if firstDue.IsZero() || e.Due.Before(firstDue) {
			firstDue = e.Due
		}
	}
	if len(calls) != interopRecords || len(kdlt) != 0 {
		t.Errorf("kretry: %d handler calls, %d DLT handler calls; want %d, 0", len(calls), len(kdlt), interopRecords)
	}
	if !kretryStopped.Before(firstDue) {
		t.Fatalf("kretry stopped %s after the first due time: raise the delay", kretryStopped.Sub(firstDue))
	}

	// Spring takes over.
	sp.send("START")
	started := time.Now()
	ready := sp.mark("READY", time.Minute)
	if !ready.Before(firstDue) {
		t.Fatalf("spring's consumers owned their partitions %s after the first due time; it could not show that it waits: raise the delay",
			ready.Sub(firstDue))
	}
	sp.count("dlt", len(failKeys), time.Until(firstDue)+2*8400*time.Millisecond+30*time.Second)
	sp.send("STOP")
	sp.waitExit(time.Minute)
	sp.checkClean()

	// Spring's deliveries: attempts 2 (kretry's record), 3 and 4 (its
	// own), each at or after the due time in the record; none from the
	// main topic and none of a key that succeeded.
	byKey := map[string][]springEvent{}
	for _, e := range sp.of("delivery") {
		if e.Topic == topic || !fail[e.Key] {
			t.Errorf("spring delivered %s from %s[%d]@%d; want only failing keys from the retry topics", e.Key, e.Topic, e.Partition, e.Offset)
			continue
		}
		byKey[e.Key] = append(byKey[e.Key], e)
	}
	type hop struct {
		topic    string
		attempts int32
		copies   int
	}
	// Spring appends a retry_topic-attempts header on every hop (its
	// retainAllRetryHeaderValues is true), after the one kretry wrote.
	wantHops := []hop{{tier1, 2, 1}, {tier2, 3, 2}, {tier2, 4, 3}}
	var lateness []time.Duration
	for _, key := range failKeys {
		m, es := main[key], byKey[key]
		var got []hop
		for _, e := range es {
			got = append(got, hop{e.Topic, deref32(e.Attempts), e.AttemptsCopies})
		}
		if !slices.Equal(got, wantHops) {
			t.Errorf("spring delivered %s as %+v, want %+v", key, got, wantHops)
			continue
		}
		for i, e := range es {
			if e.BackoffMs == nil || e.NowMs < *e.BackoffMs {
				t.Errorf("spring delivered %s attempt %d at %d ms, before its due time %v ms", key, got[i].attempts, e.NowMs, deref(e.BackoffMs))
			}
			if e.OriginalTopic == nil || *e.OriginalTopic != topic || e.OriginalPartition == nil || *e.OriginalPartition != m.Partition ||
				e.OriginalOffset == nil || *e.OriginalOffset != m.Offset {
				t.Errorf("spring's delivery %d of %s: original %v[%v]@%v, want %s[%d]@%d", got[i].attempts, key,
					deref(e.OriginalTopic), deref(e.OriginalPartition), deref(e.OriginalOffset), topic, m.Partition, m.Offset)
			}
		}
		first := es[0]
		// kretry writes its due time rounded up to the millisecond.
		wantMs := due[key].Add(time.Millisecond - time.Nanosecond).UnixMilli()
		if first.Partition != m.Partition || first.BackoffMs == nil || *first.BackoffMs != wantMs {
			t.Errorf("spring's attempt 2 of %s: %s[%d], retry_topic-backoff-timestamp %v; want partition %d, %d (kretry's due %s)",
				key, first.Topic, first.Partition, deref(first.BackoffMs), m.Partition, wantMs, due[key].Format(time.StampMicro))
		} else {
			lateness = append(lateness, time.Duration(first.NowMs-wantMs)*time.Millisecond)
		}
		if epochMs(first.NowMs).Before(ready) {
			t.Errorf("spring delivered %s before its consumers were ready", key)
		}
	}

	// Spring's DLT: one @DltHandler call per failing key, with the
	// original-topic headers kretry wrote, bound as Spring binds them.
	dltTopic := plan.DLT
	dltByKey := map[string]int{}
	for _, e := range sp.of("dlt") {
		dltByKey[e.Key]++
		m := main[e.Key]
		b := e.Bound
		wantPart, wantOff := hex32(m.Partition), hex64(m.Offset)
		if e.Topic != dltTopic || deref32(e.Attempts) != 5 || e.AttemptsCopies != 4 ||
			b["original_topic"] == nil || *b["original_topic"] != topic ||
			b["original_partition_hex"] == nil || *b["original_partition_hex"] != wantPart ||
			b["original_offset_hex"] == nil || *b["original_offset_hex"] != wantOff ||
			b["exception_cause_fqcn"] == nil || *b["exception_cause_fqcn"] != springPlannedFailure {
			t.Errorf("spring's DLT handler got %s from %s with attempts %v (%d copies) and @Header values %v; "+
				"want %s, 5 (Spring's count after 4 deliveries), 4 copies, original %s / %s / %s, cause %s",
				e.Key, e.Topic, deref(e.Attempts), e.AttemptsCopies, strs(b), dltTopic, topic, wantPart, wantOff, springPlannedFailure)
		}
	}
	for _, key := range failKeys {
		if dltByKey[key] != 1 {
			t.Errorf("spring's DLT handler got %s %d times, want 1", key, dltByKey[key])
		}
	}
	if got, want := committed(t, env, group, topic), endOffsets(t, env, topic); !maps.Equal(got, want) {
		t.Errorf("committed main-topic offsets %v after both, want the end offsets %v", got, want)
	}

	// Back the other way: the records Spring wrote after kretry's carry
	// both header families (Spring copies kretry's, now stale, and appends
	// its own). kretry's spring.Resolve, what a listener with spring.Read
	// uses, must pick Spring's: the state Spring itself acted on.
	springSaw := map[string]springEvent{} // topic/partition/offset → Spring's delivery
	for _, e := range append(sp.of("delivery"), sp.of("dlt")...) {
		springSaw[fmt.Sprintf("%s[%d]@%d", e.Topic, e.Partition, e.Offset)] = e
	}
	resolved := 0
	for _, topicRead := range []string{tier2, dltTopic} {
		dead := topicRead == dltTopic
		for _, r := range readTopic(t, env, topicRead) {
			where := fmt.Sprintf("%s[%d]@%d", r.Topic, r.Partition, r.Offset)
			e, ok := springSaw[where]
			if !ok {
				t.Errorf("%s (key %s) was never delivered by Spring", where, r.Key)
				continue
			}
			st, ok, err := spring.Resolve(r.Headers, dead)
			m := main[string(r.Key)]
			wantAttempt := deref32(e.Attempts)
			if dead {
				wantAttempt-- // Spring counts the DLT hop; kretry counts deliveries
			}
			switch {
			case !ok || err != nil:
				t.Errorf("spring.Resolve(%s, deadLetter %v): found %v, %v", where, dead, ok, err)
			case st.Attempt != wantAttempt || st.OriginalTopic != topic || st.OriginalPartition != m.Partition ||
				st.OriginalOffset != m.Offset || st.ErrorType != springPlannedFailure:
				t.Errorf("spring.Resolve(%s): attempt %d, original %s[%d]@%d, error type %q; want %d, %s[%d]@%d, %q",
					where, st.Attempt, st.OriginalTopic, st.OriginalPartition, st.OriginalOffset, st.ErrorType,
					wantAttempt, topic, m.Partition, m.Offset, springPlannedFailure)
			case dead && st.Reason != spring.ReasonSpring:
				t.Errorf("spring.Resolve(%s): reason %q, want %q", where, st.Reason, spring.ReasonSpring)
			case !dead && st.Due.UnixMilli() != deref64(e.BackoffMs):
				t.Errorf("spring.Resolve(%s): due %d ms, want Spring's %v", where, st.Due.UnixMilli(), deref(e.BackoffMs))
			default:
				resolved++
			}
		}
	}
	if want := 3 * len(failKeys); resolved != want {
		t.Errorf("spring.Resolve read %d of Spring's records as Spring did, want %d (2 per key on %s, 1 on %s)", resolved, want, tier2, dltTopic)
	}
	slices.Sort(lateness)
	if len(lateness) > 0 {
		ex := byKey[failKeys[0]][0]
		t.Logf("kretry stopped %s before the first due time; spring ready %s after START, %s before it; spring's attempt 2 late by %s .. %s after kretry's due time; "+
			"e.g. %s on %s: retry_topic-attempts %s, retry_topic-backoff-timestamp %s, kafka_original-offset %s, header keys %v; whole test %s",
			firstDue.Sub(kretryStopped).Round(time.Millisecond), ready.Sub(started).Round(time.Millisecond), firstDue.Sub(ready).Round(time.Millisecond),
			lateness[0], lateness[len(lateness)-1], ex.Key, ex.Topic, ex.AttemptsHex, ex.BackoffHex, ex.OriginalOffsetHex,
			ex.HeaderKeys, time.Since(start).Round(time.Millisecond))
	}
}

func deref32(p *int32) int32 {
	if p == nil {
		return 0
	}
	return *p
}

func deref64(p *int64) int64 {
	if p == nil {
		return 0
	}
	return *p
}

// hex32 and hex64 are the big-endian bytes of v in hex, as Java's
// ByteBuffer.putInt and putLong write them.
func hex32(v int32) string { return fmt.Sprintf("%08x", uint32(v)) }
func hex64(v int64) string { return fmt.Sprintf("%016x", uint64(v)) }

func strs(m map[string]*string) map[string]string {
	out := map[string]string{}
	for k, v := range m {
		out[k] = "<absent>"
		if v != nil {
			out[k] = *v
		}
	}
	return out
}
