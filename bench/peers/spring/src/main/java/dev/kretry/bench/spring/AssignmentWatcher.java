package dev.kretry.bench.spring;

import java.util.Collection;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.CountDownLatch;
import java.util.function.IntSupplier;

import org.apache.kafka.clients.consumer.Consumer;
import org.apache.kafka.common.TopicPartition;

import org.springframework.kafka.listener.ConsumerAwareRebalanceListener;

/**
 * The readiness signal for S3: a {@link ConsumerAwareRebalanceListener} set on the container
 * factory, so every consumer of every container (main, each retry topic, the DLT) reports its
 * assignments. Ready when the set of assigned partitions covers every partition of every topic the
 * containers subscribe to (the expected count comes from the listener endpoint registry).
 */
final class AssignmentWatcher implements ConsumerAwareRebalanceListener {

	private final Set<TopicPartition> assigned = ConcurrentHashMap.newKeySet();

	private final CountDownLatch ready = new CountDownLatch(1);

	private volatile IntSupplier expected = () -> Integer.MAX_VALUE;

	void expect(IntSupplier expected) {
		this.expected = expected;
		check();
	}

	void awaitReady() throws InterruptedException {
		this.ready.await();
	}

	@Override
	public void onPartitionsAssigned(Consumer<?, ?> consumer, Collection<TopicPartition> partitions) {
		this.assigned.addAll(partitions);
		check();
	}

	@Override
	public void onPartitionsRevokedBeforeCommit(Consumer<?, ?> consumer, Collection<TopicPartition> partitions) {
		this.assigned.removeAll(partitions);
	}

	@Override
	public void onPartitionsLost(Consumer<?, ?> consumer, Collection<TopicPartition> partitions) {
		this.assigned.removeAll(partitions);
	}

	private void check() {
		if (this.ready.getCount() > 0 && this.assigned.size() >= this.expected.getAsInt()) {
			this.ready.countDown();
		}
	}

}
