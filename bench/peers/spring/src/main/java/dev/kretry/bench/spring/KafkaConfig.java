package dev.kretry.bench.spring;

import java.util.HashMap;
import java.util.Map;

import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.common.serialization.ByteArrayDeserializer;
import org.apache.kafka.common.serialization.StringDeserializer;

import org.springframework.context.annotation.Bean;
import org.springframework.context.annotation.Configuration;
import org.springframework.kafka.annotation.EnableKafka;
import org.springframework.kafka.config.ConcurrentKafkaListenerContainerFactory;
import org.springframework.kafka.core.ConsumerFactory;
import org.springframework.kafka.core.DefaultKafkaConsumerFactory;
import org.springframework.kafka.listener.ContainerProperties.AckMode;

/**
 * Consumer side, shared by all scenarios: the consumer factory and the default container factory
 * ("kafkaListenerContainerFactory", which the retry-topic feature also decorates for its retry and
 * DLT containers). Everything not set here is the Kafka client's or Spring's default:
 * max.poll.records 500, fetch sizes, poll timeout 5 s, enable.auto.commit false (set by Spring),
 * ack mode BATCH unless --ack-mode record. --consumer-props adds consumer properties (experiments).
 * In the interop scenarios no container starts with the context (autoStartup false).
 */
@Configuration(proxyBeanMethods = false)
@EnableKafka
public class KafkaConfig {

	@Bean
	public ConsumerFactory<String, byte[]> consumerFactory(Args args) {
		Map<String, Object> props = new HashMap<>();
		props.put(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, args.brokers());
		props.put(ConsumerConfig.AUTO_OFFSET_RESET_CONFIG, "earliest");
		props.putAll(args.consumerProps());
		return new DefaultKafkaConsumerFactory<>(props, new StringDeserializer(), new ByteArrayDeserializer());
	}

	@Bean
	public ConcurrentKafkaListenerContainerFactory<String, byte[]> kafkaListenerContainerFactory(
			ConsumerFactory<String, byte[]> consumerFactory, Args args, AssignmentWatcher watcher) {

		ConcurrentKafkaListenerContainerFactory<String, byte[]> factory = new ConcurrentKafkaListenerContainerFactory<>();
		factory.setConsumerFactory(consumerFactory);
		factory.getContainerProperties().setAckMode(AckMode.valueOf(args.ackMode()));
		factory.getContainerProperties().setConsumerRebalanceListener(watcher);
		if (args.interop()) {
			// The interop scenarios start the containers when the Go test says so (Interop); the
			// factory's setting reaches the retry and DLT containers too.
			factory.setAutoStartup(false);
		}
		return factory;
	}

}
