package listener

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/kretry/kretry/retry"
	"github.com/kretry/kretry/strategy"
)

// ensureTopics checks that the main topic exists and that every retry tier
// and DLT of the plan exists, creating the missing ones when allowed. It
// returns the errors of every topic that is neither found nor created; a
// missing main topic is ErrMainTopicMissing, missing topics it may not
// create ErrTopicsMissing.
func (l *Listener) ensureTopics(ctx context.Context, adm *kadm.Client) error {
	topics := l.consumedTopics()
	details, err := adm.ListTopics(ctx, topics...)
	if err != nil {
		hint := "check the seed brokers and credentials"
		if errors.Is(err, kerr.TopicAuthorizationFailed) {
			hint = "the principal needs READ on the main topic and READ and WRITE on the retry and DLT topics"
		}
		return fmt.Errorf("listener: listing topics %s: %w (%s)", strings.Join(topics, ", "), err, hint)
	}
	main, ok := details[l.plan.Main]
	if !ok || main.Err != nil {
		err := errors.New("not found")
		if ok && main.Err != nil {
			err = main.Err
		}
		err = fmt.Errorf("listener: main topic %q: %w; create it first (kretry creates only retry and DLT topics)", l.plan.Main, err)
		if !ok || errors.Is(main.Err, kerr.UnknownTopicOrPartition) {
			err = withKind(ErrMainTopicMissing, err)
		}
		return err
	}
	partitions := l.cfg.partitions
	if partitions < 0 {
		partitions = int32(len(main.Partitions))
	}
	var missing []string
	for _, t := range topics[1:] {
		d, ok := details[t]
		switch {
		case ok && d.Err == nil:
			if role, _ := l.plan.Lookup(t); l.cfg.keyOrder && role == strategy.RoleTier && len(d.Partitions) < len(main.Partitions) {
				return fmt.Errorf("listener: KeyOrder: retry tier %q has %d partitions, fewer than the main topic %q (%d): "+
					"records of a main partition must stay in the same partition of every tier; add partitions to the tier (kafka-topics --alter --partitions %d)",
					t, len(d.Partitions), l.plan.Main, len(main.Partitions), len(main.Partitions))
			}
			if n := len(d.Partitions); n < len(main.Partitions) {
				l.log.Warn("kretry: a retry or DLT topic has fewer partitions than the main topic; records from the higher partitions are partitioned by key there",
					"topic", t, "partitions", n, "main_partitions", len(main.Partitions))
			}
		case !ok || errors.Is(d.Err, kerr.UnknownTopicOrPartition):
			missing = append(missing, t)
		default:
			return fmt.Errorf("listener: topic %q: %w", t, d.Err)
		}
	}
	if len(missing) == 0 {
		return nil
	}
	if l.cfg.keyOrder && partitions < int32(len(main.Partitions)) {
		return fmt.Errorf("listener: KeyOrder: TopicPartitions %d is fewer than the main topic %q has (%d): every retry tier needs at least as many; raise it or leave it at the default",
			partitions, l.plan.Main, len(main.Partitions))
	}
	if !l.cfg.createTopics {
		return withKind(ErrTopicsMissing, fmt.Errorf("listener: topics %s do not exist and CreateTopics(false) forbids creating them; create them (see `kretry topics plan`) or allow creation", strings.Join(missing, ", ")))
	}
	resp, err := adm.CreateTopics(ctx, partitions, l.cfg.replicationFactor, l.cfg.topicConfigs, missing...)
	if err != nil {
		return fmt.Errorf("listener: creating topics %s: %w", strings.Join(missing, ", "), err)
	}
	var errs []error
	for _, t := range missing {
		r, ok := resp[t]
		switch {
		case !ok:
			errs = append(errs, fmt.Errorf("listener: creating topic %q: no answer from the broker", t))
		case r.Err == nil, errors.Is(r.Err, kerr.TopicAlreadyExists):
		default:
			rf := "the broker's default replication factor"
			if l.cfg.replicationFactor > 0 {
				rf = fmt.Sprintf("replication factor %d", l.cfg.replicationFactor)
			}
			detail := ""
			if r.ErrMessage != "" {
				detail = " (" + r.ErrMessage + ")"
			}
			hint := ""
			if errors.Is(r.Err, kerr.TopicAuthorizationFailed) || errors.Is(r.Err, kerr.ClusterAuthorizationFailed) {
				hint = "; grant CREATE on it or create it beforehand"
			}
			errs = append(errs, fmt.Errorf("listener: creating topic %q (%d partitions, %s): %w%s%s", t, partitions, rf, r.Err, detail, hint))
		}
	}
	return errors.Join(errs...)
}

// consumedTopics lists the main topic first, then every tier and DLT the
// listener consumes.
func (l *Listener) consumedTopics() []string {
	ts := []string{l.plan.Main}
	for _, t := range l.plan.Tiers {
		ts = append(ts, t.Topic)
	}
	if l.policy.DLT != retry.NoDLT {
		ts = append(ts, l.plan.DLT)
		for _, r := range l.plan.Routes {
			ts = append(ts, r.Topic)
		}
	}
	return ts
}

// publishLimits returns the max.message.bytes of each retry and DLT topic,
// the largest record batch each accepts, or nil when they cannot be read
// (the principal may lack DESCRIBE_CONFIGS; that is not an error). Run caps
// the producer's batch size per topic at them, so the client itself
// refuses a record too large for its target (kerr.MessageTooLarge, at
// once) and never builds a batch a target refuses for its combined size.
func (l *Listener) publishLimits(ctx context.Context, adm *kadm.Client) map[string]int32 {
	rcs, err := adm.DescribeTopicConfigs(ctx, l.consumedTopics()[1:]...)
	if err != nil {
		l.log.Debug("kretry: cannot read max.message.bytes of the retry and DLT topics; keeping the client's batch size", "error", err)
		return nil
	}
	limits := make(map[string]int32, len(rcs))
	for _, rc := range rcs {
		if rc.Err != nil {
			l.log.Debug("kretry: cannot read the configs of a retry or DLT topic; keeping the client's batch size for it", "topic", rc.Name, "error", rc.Err)
			continue
		}
		for _, c := range rc.Configs {
			if c.Key != "max.message.bytes" || c.Value == nil {
				continue
			}
			// Below 512 the client refuses the setting; such a topic
			// takes no kretry record anyway.
			if n, err := strconv.ParseInt(*c.Value, 10, 32); err == nil && n >= 512 {
				limits[rc.Name] = int32(n)
			}
		}
	}
	return limits
}
