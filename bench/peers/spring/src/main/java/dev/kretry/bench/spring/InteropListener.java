package dev.kretry.bench.spring;

import java.util.LinkedHashMap;
import java.util.Map;

import org.apache.kafka.clients.consumer.ConsumerRecord;

import org.springframework.kafka.annotation.BackOff;
import org.springframework.kafka.annotation.DltHandler;
import org.springframework.kafka.annotation.KafkaListener;
import org.springframework.kafka.annotation.RetryableTopic;
import org.springframework.kafka.retrytopic.RetryTopicHeaders;
import org.springframework.kafka.support.KafkaHeaders;
import org.springframework.messaging.handler.annotation.Header;

/**
 * The interop scenarios' listener: an ordinary {@code @RetryableTopic} listener with a
 * {@code @DltHandler}, at Spring's defaults except the values taken from the command line
 * (attempts, the {@code @BackOff} from --delays, partitions). Spring names the topics
 * {@code <topic>-retry…} and {@code <topic>-dlt} and consumes each in group {@code <group><suffix>}.
 * <p>
 * The listener method reports every call ({@link InteropEvents#delivery}) and throws for the keys
 * in --fail-keys, on every delivery; other keys succeed. The DLT handler reports the record and what
 * Spring bound to its {@code @Header} parameters: the original topic, partition and offset, the
 * exception cause class and the attempts header, as a Spring user would bind them.
 */
public class InteropListener {

	private final Args args;

	private final InteropEvents events;

	public InteropListener(Args args, InteropEvents events) {
		this.args = args;
		this.events = events;
	}

	@RetryableTopic(attempts = "${bench.attempts}",
			backOff = @BackOff(delayString = "${bench.backoff.delay}", multiplierString = "${bench.backoff.multiplier}",
					maxDelayString = "${bench.backoff.max-delay}"),
			numPartitions = "${bench.partitions}", replicationFactor = "1", autoCreateTopics = "true")
	@KafkaListener(id = Interop.LISTENER_ID, topics = "${bench.topic}", groupId = "${bench.group}",
			concurrency = "${bench.partitions}")
	public void onRecord(ConsumerRecord<String, byte[]> record) {
		long now = System.currentTimeMillis();
		boolean fail = this.args.failKeys().contains(record.key());
		this.events.delivery(record, now, fail);
		if (fail) {
			throw new RetryListener.PlannedFailure();
		}
	}

	@DltHandler
	public void onDlt(ConsumerRecord<String, byte[]> record,
			@Header(name = KafkaHeaders.ORIGINAL_TOPIC, required = false) String originalTopic,
			@Header(name = KafkaHeaders.ORIGINAL_PARTITION, required = false) byte[] originalPartition,
			@Header(name = KafkaHeaders.ORIGINAL_OFFSET, required = false) byte[] originalOffset,
			@Header(name = KafkaHeaders.EXCEPTION_CAUSE_FQCN, required = false) String causeFqcn,
			@Header(name = RetryTopicHeaders.DEFAULT_HEADER_ATTEMPTS, required = false) byte[] attempts) {
		long now = System.currentTimeMillis();
		Map<String, Object> bound = new LinkedHashMap<>();
		bound.put("original_topic", originalTopic);
		bound.put("original_partition_hex", hex(originalPartition));
		bound.put("original_offset_hex", hex(originalOffset));
		bound.put("exception_cause_fqcn", causeFqcn);
		bound.put("attempts_hex", hex(attempts));
		this.events.dlt(record, now, bound);
	}

	private static String hex(byte[] v) {
		return v == null ? null : java.util.HexFormat.of().formatHex(v);
	}

}
