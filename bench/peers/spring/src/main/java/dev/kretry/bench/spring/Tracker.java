package dev.kretry.bench.spring;

import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicInteger;

/**
 * Measures a scenario from inside the listener, the way bench/env.go's Tracker does: the first
 * listener call, the want-th success, and for S3 the lateness of every retry delivery = time of the
 * delivery - (time the previous delivery of the same key was about to throw + the tier's delay).
 * All times are System.nanoTime(), one clock for the whole process.
 */
final class Tracker {

	private final int want;

	private final long[] delaysNs;

	private final AtomicBoolean started = new AtomicBoolean();

	private volatile long first;

	private volatile long last;

	/** When want / 10 successes had been counted: S1 is timed over the last 90%, as in Go. */
	private volatile long warm;

	private final AtomicInteger successes = new AtomicInteger();

	private final CountDownLatch done = new CountDownLatch(1);

	/** key -> {failing deliveries so far, nanoTime of the last one}; the arrays are never changed. */
	private final ConcurrentHashMap<String, long[]> failures = new ConcurrentHashMap<>();

	private final LongList[] lateness;

	Tracker(int want, long[] delaysMs) {
		this.want = want;
		this.delaysNs = new long[delaysMs.length];
		this.lateness = new LongList[delaysMs.length];
		for (int i = 0; i < delaysMs.length; i++) {
			this.delaysNs[i] = TimeUnit.MILLISECONDS.toNanos(delaysMs[i]);
			this.lateness[i] = new LongList();
		}
	}

	/** Called first thing in every listener call; returns its time. */
	long begin() {
		long now = System.nanoTime();
		if (!this.started.get() && this.started.compareAndSet(false, true)) {
			this.first = now;
		}
		return now;
	}

	/**
	 * S3: called after {@link #begin()} for key; records the lateness of a retry delivery and
	 * returns how many times the key has failed so far.
	 */
	int failedBefore(String key, long now) {
		long[] f = this.failures.get(key);
		if (f == null) {
			return 0;
		}
		int n = (int) f[0];
		if (n > 0 && n <= this.delaysNs.length) {
			this.lateness[n - 1].add(now - (f[1] + this.delaysNs[n - 1]));
		}
		return n;
	}

	/** S3: called when the listener call for key is about to throw, as late as possible. */
	void failed(String key) {
		long now = System.nanoTime();
		// One key is never processed by two threads at once: its deliveries follow one another
		// through the main and retry topics. A new array per failure, published by the map.
		long[] f = this.failures.get(key);
		this.failures.put(key, new long[] { f == null ? 1 : f[0] + 1, now });
	}

	/** Called when a listener call is about to return normally. */
	void succeeded() {
		int n = this.successes.incrementAndGet();
		if (n == this.want / 10) {
			this.warm = System.nanoTime();
		}
		if (n == this.want) {
			this.last = System.nanoTime();
			this.done.countDown();
		}
	}

	void await() throws InterruptedException {
		this.done.await();
	}

	int successes() {
		return this.successes.get();
	}

	long elapsedNs() {
		return this.last - this.first;
	}

	/** The time the last 90% of the successes took (S1; see bench/env.go). */
	long last90Ns() {
		return this.last - (this.want / 10 == 0 ? this.first : this.warm);
	}

	long[][] lateness() {
		long[][] out = new long[this.lateness.length][];
		for (int i = 0; i < out.length; i++) {
			out[i] = this.lateness[i].toArray();
		}
		return out;
	}

	/** A growable long array; adds are synchronized (tiers are written by many consumer threads). */
	static final class LongList {

		private long[] a = new long[1024];

		private int n;

		synchronized void add(long v) {
			if (this.n == this.a.length) {
				this.a = java.util.Arrays.copyOf(this.a, this.n * 2);
			}
			this.a[this.n++] = v;
		}

		synchronized long[] toArray() {
			return java.util.Arrays.copyOf(this.a, this.n);
		}

	}

}
