package dev.kretry.bench.spring;

import java.util.HashMap;
import java.util.Map;

import org.apache.kafka.clients.admin.AdminClientConfig;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.common.serialization.ByteArraySerializer;
import org.apache.kafka.common.serialization.StringSerializer;

import org.springframework.beans.factory.ObjectProvider;
import org.springframework.context.annotation.Bean;
import org.springframework.context.annotation.Configuration;
import org.springframework.kafka.core.DefaultKafkaProducerFactory;
import org.springframework.kafka.core.KafkaAdmin;
import org.springframework.kafka.core.KafkaTemplate;
import org.springframework.kafka.retrytopic.RetryTopicBeanNames;
import org.springframework.kafka.retrytopic.RetryTopicComponentFactory;
import org.springframework.kafka.retrytopic.RetryTopicConfigurationSupport;
import org.springframework.kafka.retrytopic.RetryTopicNamesProviderFactory;
import org.springframework.scheduling.TaskScheduler;
import org.springframework.scheduling.concurrent.ThreadPoolTaskScheduler;

/**
 * The non-blocking retry infrastructure for S2 and S3, set up as the retry-topic docs describe for
 * global settings: one {@code @Configuration} class extending {@link RetryTopicConfigurationSupport}
 * (so no {@code @EnableKafkaRetryTopic}; {@code @EnableKafka} is on {@link KafkaConfig}). Defaults
 * everywhere except: retry/DLT topic names start with --prefix (custom names provider), and the
 * error handler's {@code seekAfterError=false} as in the docs' global-settings example ("avoid
 * re-fetching the same records after a pause"; --seek-after-error true restores Spring's default).
 * --verify-partition false turns off the recoverer's partition check (a metadata request on the
 * consumer per republished record).
 * <p>
 * Beans the feature needs: a {@link KafkaTemplate} to republish (looked up by the default name
 * {@code defaultRetryTopicKafkaTemplate}), a {@link TaskScheduler} that resumes paused retry
 * partitions at their due time (Spring Boot's default scheduler has one thread, so has this one),
 * and a {@link KafkaAdmin} that creates the retry topics and the DLT.
 * <p>
 * The interop scenarios keep Spring's default topic names ({@code <topic>-retry…}, {@code <topic>-dlt})
 * and report each republish through the template's {@code ProducerListener} ({@link InteropEvents}).
 */
@Configuration
public class RetryConfig extends RetryTopicConfigurationSupport {

	private final Args args;

	public RetryConfig(Args args) {
		this.args = args;
	}

	@Bean
	public KafkaAdmin kafkaAdmin() {
		Map<String, Object> props = new HashMap<>();
		props.put(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, this.args.brokers());
		KafkaAdmin admin = new KafkaAdmin(props);
		admin.setFatalIfBrokerNotAvailable(true);
		return admin;
	}

	@Bean(name = RetryTopicBeanNames.DEFAULT_KAFKA_TEMPLATE_BEAN_NAME)
	public KafkaTemplate<String, byte[]> retryTemplate(ObjectProvider<InteropEvents> events) {
		Map<String, Object> props = new HashMap<>();
		props.put(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, this.args.brokers());
		KafkaTemplate<String, byte[]> template = new KafkaTemplate<>(
				new DefaultKafkaProducerFactory<>(props, new StringSerializer(), new ByteArraySerializer()));
		// interop: report every republish Kafka acknowledged (or refused), with the headers Spring wrote
		events.ifAvailable(e -> template.setProducerListener(e.producerListener()));
		return template;
	}

	@Bean
	public TaskScheduler taskScheduler() {
		ThreadPoolTaskScheduler scheduler = new ThreadPoolTaskScheduler();
		scheduler.setPoolSize(1);
		scheduler.setThreadNamePrefix("retry-resume-");
		return scheduler;
	}

	/** Called by the superclass constructor: read {@link #args} only when a factory method runs. */
	@Override
	protected RetryTopicComponentFactory createComponentFactory() {
		return new RetryTopicComponentFactory() {

			@Override
			public RetryTopicNamesProviderFactory retryTopicNamesProviderFactory() {
				if (RetryConfig.this.args.interop()) {
					// Spring's own names, <topic><suffix>: what a kretry policy must match
					return super.retryTopicNamesProviderFactory();
				}
				return new PrefixNamesProviderFactory(RetryConfig.this.args.prefix());
			}

		};
	}

	@Override
	protected void configureCustomizers(CustomizersConfigurer customizersConfigurer) {
		if (!this.args.seekAfterError()) {
			customizersConfigurer.customizeErrorHandler(eh -> eh.setSeekAfterError(false));
		}
		if (!this.args.verifyPartition()) {
			customizersConfigurer.customizeDeadLetterPublishingRecoverer(dlpr -> dlpr.setVerifyPartition(false));
		}
	}

}
