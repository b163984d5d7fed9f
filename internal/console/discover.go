package console

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"

	"github.com/kretry/kretry/internal/dltops"
	"github.com/kretry/kretry/internal/tierlag"
	"github.com/kretry/kretry/strategy"
)

// overviewMaxRead bounds the tier records the overview reads per partition
// (tierlag.Options.MaxRead), the default of "kretry tiers lag".
const overviewMaxRead = 100000

// Plan is a kretry plan found on the cluster by the names of its topics:
// every topic named <base><retry suffix>[-N[-M]] is a retry tier of base,
// every topic named <base><DLT suffix> its dead-letter topic.
type Plan struct {
	// Base is the stem of the plan's topic names: the main topic, or with
	// naming.groupTopics the main topic and the group ("orders-billing").
	Base string
	// Main is the main topic: Base when a topic of that name exists,
	// otherwise the longest existing topic that Base starts with followed
	// by "-", or "" when there is none.
	Main string
	// NameGroup is what Base holds after Main and "-" (with
	// naming.groupTopics, the consumer group), or "".
	NameGroup string
	// Tiers are the retry tiers in hop order, as their suffix numbers
	// sort: by delay (or index) ascending.
	Tiers []TopicCount
	// DLTs are the plan's dead-letter topics: <base><DLT suffix> first,
	// then the error-routed ones (<base><route><DLT suffix>).
	DLTs []TopicCount
	// Groups are the consumer groups with committed offsets on the main
	// topic or a tier, with what waits for each in the tiers.
	Groups []GroupLag
}

// TopicCount is a topic and the records it holds: the sum over its
// partitions of end offset minus log start offset (transaction markers
// count too, so it is an upper bound).
type TopicCount struct {
	Topic   string
	Records int64
	// Suffix is, for a tier, what follows the base: "-retry-1000".
	Suffix string
}

// GroupLag is what waits in a plan's tiers for one consumer group
// (internal/tierlag).
type GroupLag struct {
	Group string
	// Tiers are in the plan's tier order.
	Tiers []tierlag.TopicLag
	Total tierlag.Counts
	// Err is why the group could not be measured.
	Err error
}

// FirstTier returns the plan's first retry tier, or "" when it has none.
func (p *Plan) FirstTier() string {
	if len(p.Tiers) == 0 {
		return ""
	}
	return p.Tiers[0].Topic
}

// DLTRecords sums the records of the plan's DLTs.
func (p *Plan) DLTRecords() int64 {
	var n int64
	for _, d := range p.DLTs {
		n += d.Records
	}
	return n
}

// TierRecords sums the records of the plan's tiers.
func (p *Plan) TierRecords() int64 {
	var n int64
	for _, t := range p.Tiers {
		n += t.Records
	}
	return n
}

// Overview is every plan found on the cluster.
type Overview struct {
	Now   time.Time
	Plans []Plan
	// Filter is the expression of Config.Plans, or "".
	Filter string
	// GroupsErr says why the consumer groups could not be listed (the
	// plans then have no Groups).
	GroupsErr error
	// Elapsed is how long the overview took to build.
	Elapsed time.Duration
}

// tierSuffix reports whether rest (what follows base and the retry suffix
// in a topic name) is a tier suffix: "", "-N" or "-N-M", and returns the
// numbers to sort tiers by.
func tierSuffix(rest string) (n, m int64, ok bool) {
	if rest == "" {
		return -1, 0, true
	}
	if rest[0] != '-' {
		return 0, 0, false
	}
	parts := strings.Split(rest[1:], "-")
	if len(parts) > 2 {
		return 0, 0, false
	}
	nums := make([]int64, 2)
	for i, s := range parts {
		v, err := strconv.ParseInt(s, 10, 64)
		if err != nil || v < 0 || s == "" || s[0] == '+' {
			return 0, 0, false
		}
		nums[i] = v
	}
	return nums[0], nums[1], true
}

// tierOrder is the order of tiers within a plan.
type tierOrder struct {
	topic string
	n, m  int64
	rest  string
}

// findPlans groups topics into plans by the naming rules of n (its
// suffixes; the delay or index suffixes are recognised either way).
func findPlans(topics []string, n strategy.Naming) []Plan {
	n = n.Normalize()
	exists := map[string]bool{}
	for _, t := range topics {
		exists[t] = true
	}
	tiers := map[string][]tierOrder{}
	dlts := map[string]string{} // base → DLT topic
	for _, t := range topics {
		if base, ok := strings.CutSuffix(t, n.DLTSuffix); ok && base != "" {
			dlts[base] = t
			continue
		}
		// The retry suffix may occur twice in a name ("a-retry-b-retry-5"):
		// the last occurrence that leaves a tier suffix wins.
		for i := strings.LastIndex(t, n.RetrySuffix); i > 0; i = strings.LastIndex(t[:i], n.RetrySuffix) {
			rest := t[i+len(n.RetrySuffix):]
			if a, b, ok := tierSuffix(rest); ok {
				base := t[:i]
				tiers[base] = append(tiers[base], tierOrder{topic: t, n: a, m: b, rest: n.RetrySuffix + rest})
				break
			}
		}
	}
	roots := map[string]bool{}
	for base := range tiers {
		roots[base] = true
	}
	for base := range dlts {
		if exists[base] {
			roots[base] = true
		}
	}
	// A DLT whose base is neither a main topic nor has tiers is a route
	// DLT of the longest root its base starts with, or a plan of its own.
	routes := map[string][]string{}
	for base, dlt := range dlts {
		if roots[base] {
			continue
		}
		owner := ""
		for r := range roots {
			if strings.HasPrefix(base, r) && len(r) > len(owner) {
				owner = r
			}
		}
		if owner == "" {
			roots[base] = true
			continue
		}
		routes[owner] = append(routes[owner], dlt)
	}
	var plans []Plan
	for base := range roots {
		p := Plan{Base: base}
		if exists[base] {
			p.Main = base
		} else {
			for _, t := range topics {
				if strings.HasPrefix(base, t+"-") && len(t) > len(p.Main) {
					p.Main = t
				}
			}
			if p.Main != "" {
				p.NameGroup = base[len(p.Main)+1:]
			}
		}
		ts := tiers[base]
		slices.SortFunc(ts, func(a, b tierOrder) int { return cmp.Or(cmp.Compare(a.n, b.n), cmp.Compare(a.m, b.m)) })
		for _, t := range ts {
			p.Tiers = append(p.Tiers, TopicCount{Topic: t.topic, Suffix: t.rest})
		}
		if d, ok := dlts[base]; ok {
			p.DLTs = append(p.DLTs, TopicCount{Topic: d})
		}
		rs := routes[base]
		slices.Sort(rs)
		for _, d := range rs {
			p.DLTs = append(p.DLTs, TopicCount{Topic: d})
		}
		plans = append(plans, p)
	}
	slices.SortFunc(plans, func(a, b Plan) int { return cmp.Compare(a.Base, b.Base) })
	return plans
}

// overview lists the topics, finds the plans, counts their records and
// measures each group's tiers.
func (s *Server) overview(ctx context.Context) (Overview, error) {
	start := time.Now()
	ov := Overview{Now: s.now()}
	listed, err := s.adm.ListTopics(ctx)
	if err != nil {
		return ov, fmt.Errorf("listing the topics: %w", err)
	}
	ov.Plans = findPlans(listed.Names(), s.cfg.Naming)
	if re := s.cfg.Plans; re != nil {
		ov.Plans = slices.DeleteFunc(ov.Plans, func(p Plan) bool { return !re.MatchString(p.Base) })
		ov.Filter = re.String()
	}
	var counted []string
	for _, p := range ov.Plans {
		for _, t := range p.Tiers {
			counted = append(counted, t.Topic)
		}
		for _, d := range p.DLTs {
			counted = append(counted, d.Topic)
		}
	}
	records := map[string]int64{}
	if len(counted) > 0 {
		records, err = s.topicRecords(ctx, counted)
		if err != nil {
			return ov, err
		}
	}
	commits, gerr := s.groupTopics(ctx)
	ov.GroupsErr = gerr
	for i := range ov.Plans {
		p := &ov.Plans[i]
		var tierTopics []string
		for j := range p.Tiers {
			p.Tiers[j].Records = records[p.Tiers[j].Topic]
			tierTopics = append(tierTopics, p.Tiers[j].Topic)
		}
		for j := range p.DLTs {
			p.DLTs[j].Records = records[p.DLTs[j].Topic]
		}
		if len(tierTopics) == 0 {
			continue
		}
		for _, g := range groupsOn(commits, append([]string{p.Main}, tierTopics...)) {
			gl := GroupLag{Group: g}
			rep, err := tierlag.Measure(ctx, s.adm, g, tierTopics, tierlag.Options{Now: ov.Now,
				ReaderOpts: s.readerOpts(), MaxRead: overviewMaxRead})
			if err != nil {
				if ctx.Err() != nil {
					return ov, ctx.Err()
				}
				gl.Err = err
			}
			gl.Tiers, gl.Total = rep.Topics, rep.Total()
			p.Groups = append(p.Groups, gl)
		}
	}
	ov.Elapsed = time.Since(start)
	return ov, nil
}

// topicRecords returns the records of each topic: end minus start
// offsets, summed over its partitions.
func (s *Server) topicRecords(ctx context.Context, topics []string) (map[string]int64, error) {
	rs, err := dltops.ListRanges(ctx, s.adm, topics, time.Time{})
	if err != nil {
		return nil, fmt.Errorf("listing offsets: %w", err)
	}
	out := map[string]int64{}
	for topic, ps := range rs {
		for _, r := range ps {
			out[topic] += r.End - r.Start
		}
	}
	return out, nil
}

// groupTopics returns, for each consumer group of the cluster, the
// topics it has committed offsets on.
func (s *Server) groupTopics(ctx context.Context) (map[string][]string, error) {
	listed, err := s.adm.ListGroups(ctx)
	if err != nil {
		return nil, fmt.Errorf("listing the consumer groups: %w", err)
	}
	groups := listed.Groups()
	if len(groups) == 0 {
		return nil, nil
	}
	out := map[string][]string{}
	var errs []error
	for g, r := range s.adm.FetchManyOffsets(ctx, groups...) {
		if r.Err != nil {
			errs = append(errs, fmt.Errorf("group %s: %w", g, r.Err))
			continue
		}
		r.Fetched.Each(func(o kadm.OffsetResponse) {
			if o.Err == nil && o.At >= 0 && !slices.Contains(out[g], o.Topic) {
				out[g] = append(out[g], o.Topic)
			}
		})
	}
	if len(errs) > 0 {
		return out, fmt.Errorf("fetching committed offsets: %w", errors.Join(errs...))
	}
	return out, nil
}

// groupsOn returns, sorted, the groups that committed on any of topics.
func groupsOn(commits map[string][]string, topics []string) []string {
	var out []string
	for g, ts := range commits {
		for _, t := range ts {
			if t != "" && slices.Contains(topics, t) {
				out = append(out, g)
				break
			}
		}
	}
	slices.Sort(out)
	return out
}

// firstTiers returns the first retry tier of the listener of each
// (original topic, group) in keys, from plans: with naming.groupTopics
// the plan named after the topic and the group, otherwise the topic's
// plan ("" when that plan has no tier). A key no plan matches is left
// out; dltops.Replay skips its records (SkipNoListener).
func firstTiers(plans []Plan, keys []dltops.ListenerKey) map[dltops.ListenerKey]string {
	byBase := map[string]*Plan{}
	for i := range plans {
		byBase[plans[i].Base] = &plans[i]
	}
	out := map[dltops.ListenerKey]string{}
	for _, k := range keys {
		if p, ok := byBase[k.Topic+"-"+k.Group]; ok && p.Main == k.Topic {
			out[k] = p.FirstTier()
		} else if p, ok := byBase[k.Topic]; ok && p.Main == k.Topic {
			out[k] = p.FirstTier()
		}
	}
	return out
}
