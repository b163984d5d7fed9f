package dev.kretry.bench.spring;

import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * The command line of one benchmark run: one scenario per invocation.
 *
 * <pre>
 * --scenario s1|s2|s3 --brokers host:port,... --topic T --group G --prefix P
 * --partitions N --records N [--delays 100,1000,5000]
 * [--listener record|batch] (s1) [--ack-mode batch|record] [--seek-after-error false|true]
 * [--verify-partition true|false] [--consumer-props k=v,k=v] (extra consumer properties)
 *
 * --scenario interop-produce|interop-consume --brokers host:port,... --topic T --group G
 * --partitions N --delays 8000,8000,8000 [--fail-keys k0,k2,...] [--records N] (interop-produce: the
 * main-topic deliveries after which it stops)
 * </pre>
 * <p>
 * Defaults: record listener, ack mode BATCH (the container's default), seekAfterError false (the
 * retry-topic docs' global-settings example; Spring's own default is true, see README.md) and
 * verifyPartition true (Spring's default).
 */
record Args(String scenario, String brokers, String topic, String group, String prefix, int partitions,
		int records, long[] delaysMs, boolean batchListener, String ackMode, boolean seekAfterError,
		boolean verifyPartition, Map<String, String> consumerProps, Set<String> failKeys) {

	/** The wire-compatibility scenarios (see {@link Interop}). */
	static final List<String> INTEROP = List.of("interop-produce", "interop-consume");

	static Args parse(String[] argv) {
		Map<String, String> m = new HashMap<>();
		for (int i = 0; i < argv.length; i++) {
			String a = argv[i];
			if (!a.startsWith("--")) {
				throw new IllegalArgumentException("unexpected argument " + a);
			}
			String name = a.substring(2);
			String value;
			int eq = name.indexOf('=');
			if (eq >= 0) {
				value = name.substring(eq + 1);
				name = name.substring(0, eq);
			}
			else {
				if (i + 1 >= argv.length) {
					throw new IllegalArgumentException("--" + name + " needs a value");
				}
				value = argv[++i];
			}
			m.put(name, value);
		}
		String scenario = need(m, "scenario");
		boolean interop = INTEROP.contains(scenario);
		if (!interop && !List.of("s1", "s2", "s3").contains(scenario)) {
			throw new IllegalArgumentException(
					"--scenario must be s1, s2, s3, interop-produce or interop-consume, not " + scenario);
		}
		String topic = need(m, "topic");
		int partitions = Integer.parseInt(need(m, "partitions"));
		// interop-consume runs until told to stop; interop-produce needs a count
		int records = Integer.parseInt(scenario.equals("interop-consume") ? m.getOrDefault("records", "1")
				: need(m, "records"));
		if (partitions < 1 || records < 1) {
			throw new IllegalArgumentException("--partitions and --records must be positive");
		}
		long[] delays;
		switch (scenario) {
			case "s2" -> delays = new long[] { 0 };
			case "s3" -> delays = parseDelays(m.getOrDefault("delays", "100,1000,5000"));
			case "interop-produce", "interop-consume" -> delays = parseDelays(need(m, "delays"));
			default -> delays = new long[0];
		}
		Set<String> failKeys = new LinkedHashSet<>();
		for (String k : m.getOrDefault("fail-keys", "").split(",")) {
			if (!k.isBlank()) {
				failKeys.add(k.trim());
			}
		}
		if (!interop && !failKeys.isEmpty()) {
			throw new IllegalArgumentException("--fail-keys is for the interop scenarios only");
		}
		String listener = m.getOrDefault("listener", "record");
		if (!listener.equals("record") && !listener.equals("batch")) {
			throw new IllegalArgumentException("--listener must be record or batch");
		}
		if (listener.equals("batch") && !scenario.equals("s1")) {
			throw new IllegalArgumentException("--listener batch is for s1 only: Spring's retry topics need a record listener");
		}
		String ackMode = m.getOrDefault("ack-mode", "batch").toUpperCase();
		if (!ackMode.equals("BATCH") && !ackMode.equals("RECORD")) {
			throw new IllegalArgumentException("--ack-mode must be batch or record");
		}
		return new Args(scenario, need(m, "brokers"), topic, m.getOrDefault("group", "kretry-bench-spring-" + topic),
				m.getOrDefault("prefix", topic), partitions, records, delays, listener.equals("batch"), ackMode,
				bool(m, "seek-after-error", false), bool(m, "verify-partition", true),
				keyValues(m.getOrDefault("consumer-props", "")), Set.copyOf(failKeys));
	}

	/** Whether this is one of the wire-compatibility scenarios. */
	boolean interop() {
		return INTEROP.contains(this.scenario);
	}

	private static boolean bool(Map<String, String> m, String name, boolean def) {
		String v = m.getOrDefault(name, Boolean.toString(def));
		if (!v.equals("true") && !v.equals("false")) {
			throw new IllegalArgumentException("--" + name + " must be true or false");
		}
		return Boolean.parseBoolean(v);
	}

	private static Map<String, String> keyValues(String s) {
		Map<String, String> out = new java.util.LinkedHashMap<>();
		for (String kv : s.split(",")) {
			if (kv.isBlank()) {
				continue;
			}
			int eq = kv.indexOf('=');
			if (eq <= 0) {
				throw new IllegalArgumentException("--consumer-props wants k=v,k=v, not " + kv);
			}
			out.put(kv.substring(0, eq).trim(), kv.substring(eq + 1).trim());
		}
		return Map.copyOf(out);
	}

	private static String need(Map<String, String> m, String name) {
		String v = m.get(name);
		if (v == null || v.isEmpty()) {
			throw new IllegalArgumentException("--" + name + " is required");
		}
		return v;
	}

	private static long[] parseDelays(String s) {
		List<Long> out = new ArrayList<>();
		for (String part : s.split(",")) {
			long d = Long.parseLong(part.trim());
			if (d < 0) {
				throw new IllegalArgumentException("--delays must not be negative");
			}
			out.add(d);
		}
		if (out.isEmpty()) {
			throw new IllegalArgumentException("--delays is empty");
		}
		return out.stream().mapToLong(Long::longValue).toArray();
	}

	/** How many times the record with key index i fails in S3 (PrecisionInput.Fails on the Go side). */
	int fails(int i) {
		return 1 + i % this.delaysMs.length;
	}

	@Override
	public boolean equals(Object o) {
		return this == o;
	}

	@Override
	public int hashCode() {
		return System.identityHashCode(this);
	}

	@Override
	public String toString() {
		return "Args[" + this.scenario + " " + this.topic + "]";
	}

}
