package dev.kretry.bench.spring;

import java.io.PrintStream;
import java.math.BigInteger;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.List;
import java.util.Map;

import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.clients.producer.RecordMetadata;
import org.apache.kafka.common.header.Header;
import org.apache.kafka.common.header.Headers;

import org.springframework.kafka.retrytopic.RetryTopicHeaders;
import org.springframework.kafka.support.KafkaHeaders;
import org.springframework.kafka.support.ProducerListener;

/**
 * The interop scenarios' stdout: one line of JSON per listener delivery, per DLT handler call and
 * per republish Kafka acknowledged, each with the retry headers as Spring itself reads them (the
 * last copy of each; {@code retry_topic-attempts} as 1 unsigned byte or a 4-byte int, the
 * timestamps as {@code new BigInteger(bytes).longValue()}) and in hex. Also the counters that tell
 * {@link Interop} when interop-produce is done. Lines are written whole and flushed at once.
 */
final class InteropEvents {

	private final PrintStream out;

	private final String mainTopic;

	private int mainDeliveries;

	private int mainFailures;

	private int published;

	InteropEvents(PrintStream out, Args args) {
		this.out = out;
		this.mainTopic = args.topic();
	}

	synchronized void emit(String line) {
		this.out.println(line);
		this.out.flush();
	}

	/** A call of the {@code @RetryableTopic} listener method; fail: it is about to throw. */
	void delivery(ConsumerRecord<String, byte[]> r, long nowMs, boolean fail) {
		Json j = record("delivery", r, nowMs).put("fail", fail);
		headers(j, r.headers());
		emit(j.toString());
		if (r.topic().equals(this.mainTopic)) {
			synchronized (this) {
				this.mainDeliveries++;
				if (fail) {
					this.mainFailures++;
				}
				notifyAll();
			}
		}
	}

	/** A call of the {@code @DltHandler} method, with the values Spring bound to its parameters. */
	void dlt(ConsumerRecord<String, byte[]> r, long nowMs, Map<String, Object> bound) {
		Json j = record("dlt", r, nowMs);
		headers(j, r.headers());
		Json b = new Json();
		bound.forEach(b::put);
		j.put("bound", b);
		emit(j.toString());
	}

	/** Reports the republishes of the retry-topic template (RetryConfig). */
	ProducerListener<String, byte[]> producerListener() {
		return new ProducerListener<>() {

			@Override
			public void onSuccess(ProducerRecord<String, byte[]> pr, RecordMetadata md) {
				Json j = new Json().put("event", "published")
					.put("topic", md.topic())
					.put("partition", md.partition())
					.put("offset", md.offset())
					.put("key", pr.key())
					.put("now_ms", System.currentTimeMillis());
				headers(j, pr.headers());
				emit(j.toString());
				synchronized (InteropEvents.this) {
					InteropEvents.this.published++;
					InteropEvents.this.notifyAll();
				}
			}

			@Override
			public void onError(ProducerRecord<String, byte[]> pr, RecordMetadata md, Exception ex) {
				emit(new Json().put("event", "publish_error")
					.put("topic", pr.topic())
					.put("key", pr.key())
					.put("error", String.valueOf(ex))
					.toString());
			}

		};
	}

	/**
	 * Waits until the main topic has had {@code records} deliveries and every failed one has been
	 * republished and acknowledged, or until timeoutMs passes; returns whether it got there.
	 */
	synchronized boolean awaitProduced(int records, long timeoutMs) throws InterruptedException {
		long end = System.currentTimeMillis() + timeoutMs;
		while (this.mainDeliveries < records || this.published < this.mainFailures) {
			long left = end - System.currentTimeMillis();
			if (left <= 0) {
				return false;
			}
			wait(left);
		}
		return true;
	}

	private static Json record(String event, ConsumerRecord<String, byte[]> r, long nowMs) {
		return new Json().put("event", event)
			.put("topic", r.topic())
			.put("partition", r.partition())
			.put("offset", r.offset())
			.put("key", r.key())
			.put("timestamp_ms", r.timestamp())
			.put("now_ms", nowMs)
			.put("thread", Thread.currentThread().getName());
	}

	/** The retry-topic headers of hs, decoded as Spring decodes them, and their raw bytes. */
	static void headers(Json j, Headers hs) {
		List<String> keys = new ArrayList<>();
		int attemptCopies = 0;
		for (Header h : hs) {
			keys.add(h.key());
			if (h.key().equals(RetryTopicHeaders.DEFAULT_HEADER_ATTEMPTS)) {
				attemptCopies++;
			}
		}
		j.put("header_keys", keys);
		Header a = hs.lastHeader(RetryTopicHeaders.DEFAULT_HEADER_ATTEMPTS);
		j.put("attempts", a == null ? null : attempts(a.value()));
		j.put("attempts_hex", hex(a));
		j.put("attempts_copies", attemptCopies);
		Header due = hs.lastHeader(RetryTopicHeaders.DEFAULT_HEADER_BACKOFF_TIMESTAMP);
		j.put("backoff_ms", due == null ? null : bigInteger(due.value()));
		j.put("backoff_hex", hex(due));
		Header ots = hs.lastHeader(RetryTopicHeaders.DEFAULT_HEADER_ORIGINAL_TIMESTAMP);
		j.put("retry_original_timestamp_ms", ots == null ? null : bigInteger(ots.value()));
		j.put("original_topic", text(hs.lastHeader(KafkaHeaders.ORIGINAL_TOPIC), 300));
		Header op = hs.lastHeader(KafkaHeaders.ORIGINAL_PARTITION);
		j.put("original_partition", op == null || op.value().length != Integer.BYTES ? null
				: ByteBuffer.wrap(op.value()).getInt());
		j.put("original_partition_hex", hex(op));
		Header oo = hs.lastHeader(KafkaHeaders.ORIGINAL_OFFSET);
		j.put("original_offset", oo == null || oo.value().length != Long.BYTES ? null
				: ByteBuffer.wrap(oo.value()).getLong());
		j.put("original_offset_hex", hex(oo));
		Header ot = hs.lastHeader(KafkaHeaders.ORIGINAL_TIMESTAMP);
		j.put("original_timestamp_ms", ot == null || ot.value().length != Long.BYTES ? null
				: ByteBuffer.wrap(ot.value()).getLong());
		j.put("original_timestamp_type", text(hs.lastHeader(KafkaHeaders.ORIGINAL_TIMESTAMP_TYPE), 100));
		j.put("exception_fqcn", text(hs.lastHeader(KafkaHeaders.EXCEPTION_FQCN), 300));
		j.put("exception_cause_fqcn", text(hs.lastHeader(KafkaHeaders.EXCEPTION_CAUSE_FQCN), 300));
		j.put("exception_message", text(hs.lastHeader(KafkaHeaders.EXCEPTION_MESSAGE), 300));
		Header st = hs.lastHeader(KafkaHeaders.EXCEPTION_STACKTRACE);
		j.put("stacktrace_bytes", st == null ? null : st.value().length);
	}

	/**
	 * retry_topic-attempts as DeadLetterPublishingRecovererFactory.getAttempts reads it: 1 unsigned
	 * byte or a 4-byte int; anything else, or a value outside [1, 32767], counts as 1 there, reported
	 * here as -1 so that the test sees it.
	 */
	static int attempts(byte[] v) {
		int raw;
		if (v.length == Byte.BYTES) {
			raw = Byte.toUnsignedInt(v[0]);
		}
		else if (v.length == Integer.BYTES) {
			raw = ByteBuffer.wrap(v).getInt();
		}
		else {
			return -1;
		}
		return raw >= 1 && raw <= Short.MAX_VALUE ? raw : -1;
	}

	/**
	 * A timestamp header as KafkaBackoffAwareMessageListenerAdapter reads it (1 to 8 bytes), or null.
	 */
	static Long bigInteger(byte[] v) {
		return v == null || v.length == 0 || v.length > Long.BYTES ? null : new BigInteger(v).longValue();
	}

	static String hex(Header h) {
		return h == null || h.value() == null ? null : HexFormat.of().formatHex(h.value());
	}

	static String text(Header h, int max) {
		if (h == null || h.value() == null) {
			return null;
		}
		String s = new String(h.value(), StandardCharsets.UTF_8);
		return s.length() > max ? s.substring(0, max) + "…" : s;
	}

	static String text(byte[] v) {
		return v == null ? null : new String(v, StandardCharsets.UTF_8);
	}

	/** A JSON object built in insertion order; values are null, numbers, booleans, strings, lists or Json. */
	static final class Json {

		private final StringBuilder sb = new StringBuilder("{");

		Json put(String key, Object value) {
			if (this.sb.length() > 1) {
				this.sb.append(',');
			}
			this.sb.append(Main.json(key)).append(':');
			value(value);
			return this;
		}

		private void value(Object v) {
			if (v == null) {
				this.sb.append("null");
			}
			else if (v instanceof Number || v instanceof Boolean) {
				this.sb.append(v);
			}
			else if (v instanceof Json j) {
				this.sb.append(j);
			}
			else if (v instanceof List<?> l) {
				this.sb.append('[');
				for (int i = 0; i < l.size(); i++) {
					if (i > 0) {
						this.sb.append(',');
					}
					value(l.get(i));
				}
				this.sb.append(']');
			}
			else {
				this.sb.append(Main.json(v.toString()));
			}
		}

		@Override
		public String toString() {
			return this.sb + "}";
		}

	}

}
