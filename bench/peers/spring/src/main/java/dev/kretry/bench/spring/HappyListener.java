package dev.kretry.bench.spring;

import java.util.List;

import org.apache.kafka.clients.consumer.ConsumerRecord;

import org.springframework.kafka.annotation.KafkaListener;

/** S1: a no-op record listener, concurrency = partitions. */
public class HappyListener {

	private final Tracker tracker;

	public HappyListener(Tracker tracker) {
		this.tracker = tracker;
	}

	@KafkaListener(id = "bench", topics = "${bench.topic}", groupId = "${bench.group}",
			concurrency = "${bench.partitions}", batch = "false")
	public void onRecord(ConsumerRecord<String, byte[]> record) {
		this.tracker.begin();
		this.tracker.succeeded();
	}

	/** S1 with --listener batch: a no-op batch listener (one call per poll). */
	public static class Batch {

		private final Tracker tracker;

		public Batch(Tracker tracker) {
			this.tracker = tracker;
		}

		@KafkaListener(id = "bench", topics = "${bench.topic}", groupId = "${bench.group}",
				concurrency = "${bench.partitions}", batch = "true")
		public void onBatch(List<ConsumerRecord<String, byte[]>> records) {
			this.tracker.begin();
			for (int i = 0; i < records.size(); i++) {
				this.tracker.succeeded();
			}
		}

	}

}
