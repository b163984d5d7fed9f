// Package kretryprom exports Prometheus metrics for kretry listeners. It is
// a module of its own, so that Prometheus never enters the dependency graph
// of kretry itself: only programs that import kretryprom depend on it.
//
// A Metrics value does three jobs, each wired in with one line:
//
//   - As a listener.Hook it counts every record's outcome (handled, retried,
//     dead-lettered, dropped), publish failures and DLT handler failures,
//     and times handler calls and the lateness of retry-tier deliveries;
//     for a batch handler (listener.NewBatch), the size and run time of
//     each batch.
//   - Watch reads the state of a listener's partitions (owned, paused,
//     records held, publishes not yet acknowledged) each time the registry
//     is gathered; with the TierLag option it also reports the records
//     waiting in the listener's retry tiers, split into not yet due and
//     overdue.
//   - ClientMetrics returns franz-go's kprom metrics for the listener's
//     Kafka client (connections, bytes read and written per broker, bytes
//     fetched and produced per topic, buffered records) in the same
//     registry and namespace.
//
// Usage:
//
//	reg := prometheus.NewRegistry()
//	m, err := kretryprom.New(reg)
//	if err != nil {
//		return err
//	}
//	l, err := listener.New(seeds, "orders", handle,
//		listener.Hooks(m),
//		listener.ClientOpts(kgo.WithHooks(m.ClientMetrics())),
//	)
//	if err != nil {
//		return err
//	}
//	defer m.Watch(l)()
//	http.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
//	return l.Run(ctx)
//
// # Metrics
//
// Names are shown with the default namespace, "kretry". Every label is
// bounded by the listeners' plans and configuration: topic names, roles,
// dead-letter topics and reasons. Offsets, keys and error texts never
// become labels.
//
// Counters, from events:
//
//	kretry_records_total{topic,role,outcome}          outcome: handled, retried, dead_lettered, dropped
//	kretry_dead_lettered_total{topic,role,dlt,reason} records published to a DLT
//	kretry_dropped_total{topic,role,reason}           records ended without a DLT
//	kretry_forward_failures_total{topic,target}       failed publishes to a tier or DLT (each is retried)
//	kretry_dlt_handler_failures_total{topic}          DLT handler calls that returned an error
//	kretry_batch_errors_invalid_total{topic,role}     records a BatchErrors named wrongly: not in the batch, or twice
//	kretry_transactions_total{outcome}                exactly-once transactions committed or aborted
//
// Histograms, from events:
//
//	kretry_handler_duration_seconds{topic,role}  handler and DLT handler run time, one record at a time
//	kretry_delivery_lateness_seconds{topic}      how long after its due time a retry-tier delivery started
//	kretry_batch_records{topic,role}             records given to each batch handler call
//	kretry_batch_duration_seconds{topic,role}    batch handler run time
//
// A batch handler call is timed once, in kretry_batch_duration_seconds;
// the records of a batch each count their outcome in the counters and
// their lateness, but not in kretry_handler_duration_seconds, which
// therefore only times calls of one record. The batch series of a topic
// appear with its first batch, so listeners that handle one record at a
// time have none. (A retry tier's records are batched as the main topic's
// are; DLT records are handled one at a time.)
//
// Gauges, read from watched listeners when the registry is gathered:
//
//	kretry_partitions_owned{topic,role}    partitions the listeners own
//	kretry_partitions_paused{topic,role}   partitions paused in the client (waiting for a due time or a backlog)
//	kretry_records_held{topic,role}        records fetched and not yet handled
//	kretry_publishes_unacked{topic,role}   publishes to tiers and DLTs Kafka has not yet acknowledged
//
// With TierLag, measured at most once per TierLagInterval; a tier that
// cannot be measured is left out:
//
//	kretry_tier_records_waiting{group,topic,state}  state: not_due, overdue, corrupt, unread
//	kretry_tier_oldest_overdue_seconds{group,topic} how long the most overdue record has been due
//	kretry_tier_lag_errors_total                   measurements that failed or were incomplete
//
// The role label is the part a topic plays in its listener's plan: "main",
// "tier" or "dlt" (strategy.TopicRole).
//
// # Cost
//
// Events arrive synchronously on the listener's goroutines, including
// franz-go's produce callbacks. OnEvent resolves each topic's label values
// once and then only increments atomics: it does not allocate.
package kretryprom
