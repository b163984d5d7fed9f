package dev.kretry.bench.spring;

import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;

import org.springframework.context.annotation.AnnotationConfigApplicationContext;
import org.springframework.core.env.MapPropertySource;
import org.springframework.kafka.config.KafkaListenerEndpointRegistry;
import org.springframework.kafka.listener.MessageListenerContainer;
import org.springframework.kafka.retrytopic.DestinationTopic;
import org.springframework.kafka.retrytopic.DestinationTopicContainer;

/**
 * The wire-compatibility scenarios that bench/interop_test.go drives against kretry. Both run the
 * same application ({@link InteropListener}, with {@link KafkaConfig} and {@link RetryConfig}) and
 * the same protocol, lines on stdin and stdout:
 * <ol>
 * <li>The context is refreshed with every container stopped (the retry topics and the DLT are created
 * by the {@code KafkaAdmin} then). Prints a {@code topics} event (every container's topic, role,
 * delay and group id) and {@code INITIALIZED}.
 * <li>On {@code START} it starts every container, and prints {@code READY} once the consumers own
 * every partition of every topic.
 * <li>interop-produce: once the main topic has had --records deliveries and every failed one has
 * been republished (Kafka acknowledged it), it prints a {@code stopping} event, closes the context
 * (containers stop and commit) and prints {@code stopped}. interop-consume: it runs until
 * {@code STOP}. Either way it also stops on {@code STOP} or the end of stdin.
 * </ol>
 * In between, {@link InteropEvents} prints one JSON line per listener call, DLT handler call and
 * acknowledged republish.
 */
final class Interop {

	static final String LISTENER_ID = "interop";

	/** How long interop-produce waits for its records before giving up. */
	private static final long PRODUCE_TIMEOUT_MS = 120_000;

	private Interop() {
	}

	static void run(Args args, PrintStream out) throws Exception {
		Map<String, Object> props = new HashMap<>();
		props.put("bench.topic", args.topic());
		props.put("bench.group", args.group());
		props.put("bench.partitions", Integer.toString(args.partitions()));
		props.put("bench.attempts", Integer.toString(args.delaysMs().length + 1));
		props.putAll(Main.backOffProperties(args.delaysMs()));

		InteropEvents events = new InteropEvents(out, args);
		AnnotationConfigApplicationContext ctx = new AnnotationConfigApplicationContext();
		ctx.getEnvironment().getPropertySources().addFirst(new MapPropertySource("bench", props));
		ctx.registerBean(Args.class, () -> args);
		ctx.registerBean(InteropEvents.class, () -> events);
		AssignmentWatcher watcher = new AssignmentWatcher();
		ctx.registerBean(AssignmentWatcher.class, () -> watcher);
		ctx.register(KafkaConfig.class, RetryConfig.class, InteropListener.class);
		ctx.refresh(); // creates the retry topics and the DLT; starts no container (KafkaConfig)

		KafkaListenerEndpointRegistry registry = ctx.getBean(KafkaListenerEndpointRegistry.class);
		DestinationTopicContainer destinations = ctx.getBean(DestinationTopicContainer.class);
		List<InteropEvents.Json> layout = new ArrayList<>();
		Set<String> topics = new LinkedHashSet<>();
		List<Long> retryDelays = new ArrayList<>();
		for (MessageListenerContainer c : registry.getAllListenerContainers()) {
			String[] ts = c.getContainerProperties().getTopics();
			for (String t : ts == null ? new String[0] : ts) {
				topics.add(t);
				DestinationTopic dt = destinations.getDestinationTopicByName(LISTENER_ID, t);
				String role = dt == null || dt.isMainTopic() ? "main" : dt.isDltTopic() ? "dlt" : "retry";
				long delay = dt == null ? 0 : dt.getDestinationDelay();
				if (role.equals("retry")) {
					retryDelays.add(delay);
				}
				layout.add(new InteropEvents.Json().put("topic", t)
					.put("role", role)
					.put("delay_ms", delay)
					.put("group", c.getGroupId())
					.put("listener_id", c.getListenerId())
					.put("reusable", dt != null && dt.isReusableRetryTopic()));
			}
		}
		Main.checkTiers(args.delaysMs(), retryDelays);
		events.emit(new InteropEvents.Json().put("event", "topics").put("topics", layout).toString());
		events.emit("INITIALIZED");

		BlockingQueue<String> commands = stdin();
		if (!awaitCommand(commands, "START", Long.MAX_VALUE)) {
			ctx.close();
			return;
		}
		for (MessageListenerContainer c : registry.getAllListenerContainers()) {
			c.start();
		}
		int expected = topics.size() * args.partitions();
		watcher.expect(() -> expected);
		watcher.awaitReady();
		events.emit("READY");

		if (args.scenario().equals("interop-produce")) {
			long end = System.currentTimeMillis() + PRODUCE_TIMEOUT_MS;
			boolean done = false;
			while (!done && System.currentTimeMillis() < end && !stopRequested(commands)) {
				done = events.awaitProduced(args.records(), 100);
			}
			if (!done) {
				System.err.println("kretry-bench-spring: interop-produce stopped before its " + args.records()
						+ " main-topic deliveries were done");
			}
		}
		else {
			awaitCommand(commands, "STOP", Long.MAX_VALUE);
		}
		events.emit(new InteropEvents.Json().put("event", "stopping")
			.put("now_ms", System.currentTimeMillis())
			.toString());
		ctx.close(); // stops every container; each commits what it acknowledged
		events.emit(new InteropEvents.Json().put("event", "stopped")
			.put("now_ms", System.currentTimeMillis())
			.toString());
	}

	/** Lines from stdin, then "EOF". */
	private static BlockingQueue<String> stdin() {
		BlockingQueue<String> q = new LinkedBlockingQueue<>();
		Thread t = new Thread(() -> {
			try (BufferedReader r = new BufferedReader(new InputStreamReader(System.in, StandardCharsets.UTF_8))) {
				for (String line = r.readLine(); line != null; line = r.readLine()) {
					q.add(line.trim());
				}
			}
			catch (IOException ex) {
				// as if stdin ended
			}
			q.add("EOF");
		}, "interop-stdin");
		t.setDaemon(true);
		t.start();
		return q;
	}

	/** Waits for want; false on STOP or the end of stdin. */
	private static boolean awaitCommand(BlockingQueue<String> q, String want, long timeoutMs)
			throws InterruptedException {

		while (true) {
			String cmd = q.poll(timeoutMs, TimeUnit.MILLISECONDS);
			if (cmd == null) {
				return false;
			}
			if (cmd.equals(want)) {
				return true;
			}
			if (cmd.equals("STOP") || cmd.equals("EOF")) {
				return false;
			}
			System.err.println("kretry-bench-spring: ignoring command " + cmd + " (want " + want + ")");
		}
	}

	private static boolean stopRequested(BlockingQueue<String> q) {
		String cmd = q.poll();
		return cmd != null && (cmd.equals("STOP") || cmd.equals("EOF"));
	}

}
