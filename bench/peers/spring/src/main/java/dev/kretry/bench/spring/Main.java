package dev.kretry.bench.spring;

import java.io.IOException;
import java.io.InputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.Set;

import org.apache.kafka.common.utils.AppInfoParser;

import org.springframework.context.annotation.AnnotationConfigApplicationContext;
import org.springframework.core.env.MapPropertySource;
import org.springframework.core.retry.RetryPolicy;
import org.springframework.kafka.config.KafkaListenerEndpointRegistry;
import org.springframework.kafka.listener.MessageListenerContainer;
import org.springframework.kafka.retrytopic.BackOffValuesGenerator;
import org.springframework.kafka.retrytopic.DestinationTopic;
import org.springframework.kafka.retrytopic.DestinationTopicContainer;
import org.springframework.util.backoff.BackOff;
import org.springframework.util.backoff.FixedBackOff;

/**
 * The Spring Kafka peer of the kretry benchmark: runs one scenario against a real broker and prints
 * one line of JSON on stdout (S3 prints READY first, once every container has its partitions).
 * Everything else goes to stderr. The interop scenarios (wire compatibility with kretry) are
 * {@link Interop}'s.
 */
public final class Main {

	private Main() {
	}

	public static void main(String[] argv) {
		PrintStream out = new PrintStream(System.out, false, StandardCharsets.UTF_8);
		// Nothing but our lines on stdout.
		System.setOut(System.err);
		Args args;
		try {
			args = Args.parse(argv);
		}
		catch (IllegalArgumentException ex) {
			System.err.println("kretry-bench-spring: " + ex.getMessage());
			System.exit(2);
			return;
		}
		try {
			run(args, out);
		}
		catch (Throwable ex) {
			System.err.println("kretry-bench-spring: " + args.scenario() + " failed:");
			ex.printStackTrace();
			System.exit(1);
		}
		System.exit(0);
	}

	private static void run(Args args, PrintStream out) throws Exception {
		if (args.interop()) {
			Interop.run(args, out);
			return;
		}
		Map<String, Object> props = new HashMap<>();
		props.put("bench.topic", args.topic());
		props.put("bench.group", args.group());
		props.put("bench.partitions", Integer.toString(args.partitions()));
		if (!args.scenario().equals("s1")) {
			props.put("bench.attempts", Integer.toString(args.delaysMs().length + 1));
			props.putAll(backOffProperties(args.delaysMs()));
		}

		Tracker tracker = new Tracker(args.records(), args.scenario().equals("s3") ? args.delaysMs() : new long[0]);
		AssignmentWatcher watcher = new AssignmentWatcher();
		AnnotationConfigApplicationContext ctx = new AnnotationConfigApplicationContext();
		ctx.getEnvironment().getPropertySources().addFirst(new MapPropertySource("bench", props));
		ctx.registerBean(Args.class, () -> args);
		ctx.registerBean(Tracker.class, () -> tracker);
		ctx.registerBean(AssignmentWatcher.class, () -> watcher);
		ctx.register(KafkaConfig.class);
		switch (args.scenario()) {
			case "s1" -> ctx.register(args.batchListener() ? HappyListener.Batch.class : HappyListener.class);
			default -> ctx.register(RetryConfig.class, RetryListener.class);
		}
		ctx.refresh(); // creates the retry topics and starts every container

		KafkaListenerEndpointRegistry registry = ctx.getBean(KafkaListenerEndpointRegistry.class);
		List<String> layout = new ArrayList<>();
		Set<String> topics = new LinkedHashSet<>();
		DestinationTopicContainer destinations = args.scenario().equals("s1") ? null
				: ctx.getBean(DestinationTopicContainer.class);
		List<Long> retryDelays = new ArrayList<>();
		for (MessageListenerContainer c : registry.getAllListenerContainers()) {
			String[] ts = c.getContainerProperties().getTopics();
			for (String t : ts == null ? new String[0] : ts) {
				topics.add(t);
				String d = "";
				if (destinations != null) {
					DestinationTopic dt = destinations.getDestinationTopicByName("bench", t);
					if (dt != null && !dt.isMainTopic() && !dt.isDltTopic()) {
						retryDelays.add(dt.getDestinationDelay());
						d = " " + dt.getDestinationDelay() + "ms";
					}
				}
				layout.add(c.getListenerId() + "[" + t + d + "]");
			}
		}
		System.err.println("kretry-bench-spring: " + args.scenario() + " containers " + layout);
		if (!args.scenario().equals("s1")) {
			checkTiers(args.delaysMs(), retryDelays);
		}

		if (args.scenario().equals("s3")) {
			int expected = topics.size() * args.partitions();
			watcher.expect(() -> expected);
			watcher.awaitReady();
			out.println("READY");
			out.flush();
		}
		tracker.await();

		String note = note(args, topics.size());
		if (args.scenario().equals("s3")) {
			out.println("{\"lateness_ns\":" + json(tracker.lateness()) + ",\"note\":" + json(note) + "}");
		}
		else {
			out.println("{\"records\":" + tracker.successes() + ",\"elapsed_ns\":" + tracker.elapsedNs()
					+ ",\"last90_records\":" + (tracker.successes() - tracker.successes() / 10) + ",\"last90_ns\":"
					+ tracker.last90Ns() + ",\"note\":" + json(note) + "}");
		}
		out.flush();
		ctx.close();
	}

	/**
	 * The {@code @BackOff} attributes that give exactly the delays asked for: one delay or equal
	 * delays, {@code delay} alone (Spring's FixedBackOff); otherwise {@code delay} = the first,
	 * {@code multiplier} = second / first, {@code maxDelay} = the largest. The schedule is checked here
	 * with Spring's own BackOffValuesGenerator, built the way the annotation's BackOffFactory builds it.
	 */
	static Map<String, String> backOffProperties(long[] delays) {
		Map<String, String> p = new HashMap<>();
		BackOff backOff;
		boolean fixed = Arrays.stream(delays).distinct().count() == 1;
		if (fixed) {
			p.put("bench.backoff.delay", Long.toString(delays[0]));
			p.put("bench.backoff.multiplier", "");
			p.put("bench.backoff.max-delay", "");
			backOff = new FixedBackOff(delays[0]);
		}
		else {
			if (delays[0] <= 0) {
				throw new IllegalArgumentException("--delays: an exponential @BackOff needs a first delay > 0");
			}
			double multiplier = (double) delays[1] / delays[0];
			long max = Arrays.stream(delays).max().getAsLong();
			p.put("bench.backoff.delay", Long.toString(delays[0]));
			p.put("bench.backoff.multiplier", Double.toString(multiplier));
			p.put("bench.backoff.max-delay", Long.toString(max));
			backOff = RetryPolicy.builder().maxRetries(Long.MAX_VALUE).delay(Duration.ofMillis(delays[0]))
				.multiplier(multiplier).maxDelay(Duration.ofMillis(max)).build().getBackOff();
		}
		List<Long> got = new BackOffValuesGenerator(delays.length + 1, backOff).generateValues();
		List<Long> want = Arrays.stream(delays).boxed().toList();
		if (!got.equals(want)) {
			throw new IllegalArgumentException("--delays " + want + " is not a @BackOff schedule (delay, multiplier, "
					+ "maxDelay) can give; it would give " + got);
		}
		return p;
	}

	/** The retry containers Spring made must have the tiers asked for (a reused last topic counts once). */
	static void checkTiers(long[] want, List<Long> got) {
		List<Long> distinctWant = Arrays.stream(want).distinct().boxed().toList();
		List<Long> sorted = got.stream().sorted().toList();
		if (!sorted.equals(distinctWant.stream().sorted().toList())) {
			throw new IllegalStateException("retry topics have delays " + got + ", want " + Arrays.toString(want));
		}
	}

	private static String note(Args args, int topics) {
		String common = "spring-kafka " + springKafkaVersion() + ", kafka-clients " + AppInfoParser.getVersion()
				+ ", java " + Runtime.version().feature() + "; ";
		String containers = topics + " containers x concurrency " + args.partitions() + " (main, retry, DLT: one group each)";
		String ack = "ack " + args.ackMode() + (args.consumerProps().isEmpty() ? "" : ", consumer " + args.consumerProps());
		if (!args.scenario().equals("s1")) {
			ack += ", seekAfterError=" + args.seekAfterError() + (args.verifyPartition() ? "" : ", verifyPartition=false");
		}
		return switch (args.scenario()) {
			case "s1" -> common + (args.batchListener() ? "batch" : "record") + " listener, concurrency "
					+ args.partitions() + ", " + ack + ", defaults (max.poll.records 500)";
			case "s2" -> common + "@RetryableTopic attempts=2 FixedBackOff(0), " + containers + ", " + ack
					+ ", DLPR republishes with exception headers and waits for the send";
			default -> common + "@RetryableTopic attempts=" + (args.delaysMs().length + 1) + " delays "
					+ Arrays.toString(args.delaysMs()) + " ms, " + containers + ", " + ack
					+ ", partition pause + TaskScheduler resume (consumer wakeup)";
		};
	}

	private static String springKafkaVersion() {
		Properties p = new Properties();
		try (InputStream in = Main.class.getResourceAsStream("/kretry-bench-spring.properties")) {
			if (in != null) {
				p.load(in);
			}
		}
		catch (IOException ex) {
			// the note says "?"
		}
		return p.getProperty("spring-kafka.version", "?");
	}

	static String json(long[][] a) {
		StringBuilder sb = new StringBuilder(a.length * 16 + 2);
		sb.append('[');
		for (int i = 0; i < a.length; i++) {
			if (i > 0) {
				sb.append(',');
			}
			sb.append('[');
			for (int j = 0; j < a[i].length; j++) {
				if (j > 0) {
					sb.append(',');
				}
				sb.append(a[i][j]);
			}
			sb.append(']');
		}
		return sb.append(']').toString();
	}

	static String json(String s) {
		StringBuilder sb = new StringBuilder(s.length() + 2).append('"');
		for (int i = 0; i < s.length(); i++) {
			char c = s.charAt(i);
			switch (c) {
				case '"' -> sb.append("\\\"");
				case '\\' -> sb.append("\\\\");
				case '\n' -> sb.append("\\n");
				case '\r' -> sb.append("\\r");
				case '\t' -> sb.append("\\t");
				default -> {
					if (c < 0x20) {
						sb.append(String.format("\\u%04x", (int) c));
					}
					else {
						sb.append(c);
					}
				}
			}
		}
		return sb.append('"').toString();
	}

}
