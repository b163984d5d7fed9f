package dev.kretry.bench.spring;

import org.apache.kafka.clients.consumer.ConsumerRecord;

import org.springframework.kafka.annotation.BackOff;
import org.springframework.kafka.annotation.KafkaListener;
import org.springframework.kafka.annotation.RetryableTopic;

/**
 * S2 and S3: one record listener with {@code @RetryableTopic}. Spring creates a container (and a
 * consumer group, {@code <group><suffix>}) for the main topic, for each retry topic and for the DLT,
 * each with the main container's concurrency (= partitions), and calls this same method for all of
 * them. Every value comes from the command line through placeholders (see {@link Main}).
 * <ul>
 * <li>S2: attempts 2, {@code @BackOff(delay = 0)} = {@code FixedBackOff(0)}: one retry topic
 * {@code <prefix>-retry}. A delivery from the main topic throws; the retry delivery succeeds.
 * <li>S3: attempts 4, {@code @BackOff(delay = 100, multiplier = 10, maxDelay = 5000)}: retry topics
 * {@code <prefix>-retry-100}, {@code -retry-1000}, {@code -retry-5000}. Key "k&lt;i&gt;" throws
 * 1 + i % 3 times, then succeeds; each retry delivery's lateness is measured.
 * </ul>
 */
public class RetryListener {

	private final Tracker tracker;

	private final Args args;

	public RetryListener(Tracker tracker, Args args) {
		this.tracker = tracker;
		this.args = args;
	}

	@RetryableTopic(attempts = "${bench.attempts}",
			backOff = @BackOff(delayString = "${bench.backoff.delay}", multiplierString = "${bench.backoff.multiplier}",
					maxDelayString = "${bench.backoff.max-delay}"),
			numPartitions = "${bench.partitions}", replicationFactor = "1", autoCreateTopics = "true")
	@KafkaListener(id = "bench", topics = "${bench.topic}", groupId = "${bench.group}",
			concurrency = "${bench.partitions}")
	public void onRecord(ConsumerRecord<String, byte[]> record) {
		long now = this.tracker.begin();
		if (this.args.delaysMs().length > 0 && this.args.scenario().equals("s3")) {
			String key = record.key();
			int i = keyIndex(key);
			int failedBefore = this.tracker.failedBefore(key, now);
			if (i >= 0 && failedBefore < this.args.fails(i)) {
				this.tracker.failed(key);
				throw new PlannedFailure();
			}
		}
		else if (record.topic().equals(this.args.topic())) {
			throw new PlannedFailure();
		}
		this.tracker.succeeded();
	}

	/** The index in a key "k&lt;i&gt;", or -1 (bench/env.go KeyIndex). */
	static int keyIndex(String key) {
		if (key == null || key.length() < 2 || key.charAt(0) != 'k') {
			return -1;
		}
		try {
			return Integer.parseInt(key, 1, key.length(), 10);
		}
		catch (NumberFormatException ex) {
			return -1;
		}
	}

	/** The failure the scenarios ask for: an ordinary, retryable exception. */
	static final class PlannedFailure extends RuntimeException {

		private static final long serialVersionUID = 1L;

		PlannedFailure() {
			super("kretry bench: planned failure");
		}

	}

}
