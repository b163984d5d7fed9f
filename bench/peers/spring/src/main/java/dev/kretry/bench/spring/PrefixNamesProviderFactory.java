package dev.kretry.bench.spring;

import org.springframework.kafka.retrytopic.DestinationTopic;
import org.springframework.kafka.retrytopic.RetryTopicNamesProviderFactory;
import org.springframework.kafka.retrytopic.SuffixingRetryTopicNamesProviderFactory.SuffixingRetryTopicNamesProvider;

/**
 * Names the retry topics and the DLT {@code <prefix><Spring's suffix>} (e.g. {@code P-retry-100},
 * {@code P-dlt}) instead of {@code <main topic><suffix>}: the harness gives each run a unique prefix
 * for the topics a system creates. Group ids, listener ids and client ids keep Spring's default
 * suffixing. This is the "Custom Naming Strategies" extension point of the retry-topic docs.
 */
final class PrefixNamesProviderFactory implements RetryTopicNamesProviderFactory {

	private final String prefix;

	PrefixNamesProviderFactory(String prefix) {
		this.prefix = prefix;
	}

	@Override
	public RetryTopicNamesProvider createRetryTopicNamesProvider(DestinationTopic.Properties properties) {
		if (properties.isMainEndpoint()) {
			return new SuffixingRetryTopicNamesProvider(properties);
		}
		String name = join(this.prefix, properties.suffix());
		return new SuffixingRetryTopicNamesProvider(properties) {

			@Override
			public String getTopicName(String topic) {
				return name;
			}

		};
	}

	/** prefix + suffix, without doubling a separator ("p-" + "-retry" is "p-retry"). */
	static String join(String prefix, String suffix) {
		if (!prefix.isEmpty() && suffix.startsWith("-") && "-._".indexOf(prefix.charAt(prefix.length() - 1)) >= 0) {
			return prefix + suffix.substring(1);
		}
		return prefix + suffix;
	}

}
