package strategy

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// MaxAttempts is the largest attempts NewPlan accepts. The attempt number
// travels in a retry header whose readers clamp it to [1, 32767], so longer
// plans could not be followed on the wire.
const MaxAttempts = 32767

// Tier is one retry topic of a plan.
type Tier struct {
	// Topic is the retry topic's name.
	Topic string
	// Delay is the nominal delay a record waits in this tier before it is
	// delivered again (before any jitter).
	Delay time.Duration
	// Index is the tier's 0-based position in Plan.Tiers.
	Index int
	// Reusable is true when this tier, always the last, carries every
	// remaining retry: records that fail in it go back into it until the
	// attempts run out.
	Reusable bool
}

// RouteTopic is an error-routed dead-letter topic of a plan.
type RouteTopic struct {
	// Suffix is the route suffix, as given to NewPlan and in Route.Suffix.
	Suffix string
	// Topic is <main><Suffix><DLTSuffix>, for example
	// "orders-validation-dlt" (with Naming.GroupTopics,
	// <main>-<group><Suffix><DLTSuffix>).
	Topic string
}

// Plan is the set of topics a main topic's records travel through: the main
// topic, the retry tiers in hop order, the default dead-letter topic and any
// error-routed dead-letter topics. Build one with NewPlan; the zero value is
// an empty plan.
type Plan struct {
	// Main is the topic the records are first consumed from.
	Main string
	// Attempts is the total number of deliveries, including the first.
	Attempts int
	// Tiers are the retry topics in hop order. There are Attempts-1 of
	// them, or fewer when the last one is Reusable.
	Tiers []Tier
	// DLT is the default dead-letter topic, <main><DLTSuffix> (with
	// Naming.GroupTopics, <main>-<group><DLTSuffix>).
	DLT string
	// Routes are the error-routed dead-letter topics, in the order their
	// suffixes were given.
	Routes []RouteTopic
}

// NewPlan builds the plan for main with the given attempts, backoff and
// naming, which are normalized first, plus one dead-letter topic per route
// suffix. Its names follow Spring Kafka's rules exactly, so both can share
// topics; see the package documentation for the rules. A Naming with
// GroupTopics needs the consumer group: use NewPlanFor.
//
// It fails, naming the setting and the rule, when main is not a legal Kafka
// topic name (1 to 249 of [a-zA-Z0-9._-], not "." or ".."), attempts is not
// within [1, MaxAttempts] (NewPlan has no default attempts; see
// retry.Policy), b or n is invalid (every problem of b.ValidateFor(attempts)
// and n.Validate, joined), a route suffix is empty, illegal or repeated, a
// generated name is too long or used twice, or, with SingleTopic, a delay
// repeats anywhere but at the end of the schedule (which Spring rejects
// too; use MultipleTopics). Attempts 1 gives no tiers, only the dead-letter
// topics.
func NewPlan(main string, attempts int, b Backoff, n Naming, routeSuffixes ...string) (Plan, error) {
	if n.GroupTopics {
		return Plan{}, fmt.Errorf("strategy: naming.groupTopics needs the consumer group: use NewPlanFor")
	}
	return NewPlanFor(main, "", attempts, b, n, routeSuffixes...)
}

// NewPlanFor is NewPlan for the consumer group group. Without
// n.GroupTopics the group plays no part and the plan is NewPlan's. With
// it, every retry and dead-letter topic is named after main and group:
// "<main>-<group><RetrySuffix>…", "<main>-<group><DLTSuffix>" and
// "<main>-<group><route suffix><DLTSuffix>", as in
// "orders-billing-retry-1000" and "orders-billing-dlt"; group must then be
// a valid topic-name fragment (1 to 248 of [a-zA-Z0-9._-]; otherwise the
// error is a *SettingError with Key "group") and every name must fit
// MaxTopicLength.
func NewPlanFor(main, group string, attempts int, b Backoff, n Naming, routeSuffixes ...string) (Plan, error) {
	if err := checkTopic("main topic", main); err != nil {
		return Plan{}, err
	}
	b, n = b.Normalize(), n.Normalize()
	var ps problems
	if attempts < 1 || attempts > MaxAttempts {
		ps.add("attempts", "must be >= 1 and <= %d, got %d", MaxAttempts, attempts)
	}
	b.validate(&ps)
	b.validateFor(&ps, attempts)
	n.validate(&ps)
	if err := ps.join(); err != nil {
		return Plan{}, err
	}
	base := main
	if n.GroupTopics {
		if err := fragmentRule(group); err != nil {
			return Plan{}, &SettingError{Key: "group", Err: fmt.Errorf("cannot be part of topic names (naming.groupTopics): %w", err)}
		}
		base = main + "-" + group
	}
	seen := make(map[string]int, len(routeSuffixes))
	for i, s := range routeSuffixes {
		field := fmt.Sprintf("route suffix %d", i)
		if err := checkFragment(field, s); err != nil {
			return Plan{}, err
		}
		if j, dup := seen[s]; dup {
			return Plan{}, fmt.Errorf("strategy: %s must be unique, %q is also route suffix %d", field, s, j)
		}
		seen[s] = i
	}

	tiers, err := buildTiers(base, b.Schedule(attempts-1), n)
	if err != nil {
		return Plan{}, err
	}
	p := Plan{Main: main, Attempts: attempts, Tiers: tiers, DLT: base + n.DLTSuffix}
	for _, s := range routeSuffixes {
		p.Routes = append(p.Routes, RouteTopic{Suffix: s, Topic: base + s + n.DLTSuffix})
	}

	used := map[string]string{main: "main topic"}
	claim := func(name, role string) error {
		if err := checkTopic(role+" name", name); err != nil {
			if n.GroupTopics {
				err = fmt.Errorf("%w; with naming.groupTopics the names include the consumer group %q", err, group)
			}
			return err
		}
		if other, dup := used[name]; dup {
			return fmt.Errorf("strategy: generated topic %q is both the %s and the %s; choose other suffixes", name, other, role)
		}
		used[name] = role
		return nil
	}
	for _, t := range p.Tiers {
		if err := claim(t.Topic, fmt.Sprintf("retry tier %d", t.Index)); err != nil {
			return Plan{}, err
		}
	}
	if err := claim(p.DLT, "dead-letter topic"); err != nil {
		return Plan{}, err
	}
	for _, r := range p.Routes {
		if err := claim(r.Topic, fmt.Sprintf("dead-letter topic of route %q", r.Suffix)); err != nil {
			return Plan{}, err
		}
	}
	return p, nil
}

// buildTiers applies Spring Kafka's naming rules to a nominal schedule
// (one delay per retry); base is the main topic, or with GroupTopics the
// main topic and the group. Delays are compared in whole milliseconds, the unit
// of topic names.
func buildTiers(base string, delays []time.Duration, n Naming) ([]Tier, error) {
	retries := len(delays)
	if retries == 0 {
		return nil, nil
	}
	ms := make([]int64, retries)
	count := make(map[int64]int, retries)
	first := make(map[int64]int, retries)
	for i, d := range delays {
		ms[i] = d.Milliseconds()
		if _, ok := first[ms[i]]; !ok {
			first[ms[i]] = i
		}
		count[ms[i]]++
	}
	last := ms[retries-1]
	single := n.SameInterval == SingleTopic
	byIndex := n.Suffixing == SuffixByIndex || retries > 1 && len(count) == 1

	topics := retries
	if single {
		// Only the trailing run of the final delay may repeat: it becomes
		// one reusable tier. A repeat anywhere else would need a reusable
		// tier in the middle of the chain.
		runStart := retries - count[last]
		for i, v := range ms {
			if count[v] > 1 && (v != last || i < runStart) {
				return nil, fmt.Errorf("strategy: backoff delay %v repeats before the end of the schedule (retry %d); sameInterval single can reuse a topic only for the final delay, use multiple",
					delays[i], i+1)
			}
		}
		topics = runStart + 1
	}

	tiers := make([]Tier, topics)
	for i := range tiers {
		var suffix string
		switch {
		case single && topics == 1:
			suffix = n.RetrySuffix
		case byIndex:
			suffix = n.RetrySuffix + "-" + strconv.Itoa(i)
		default:
			suffix = n.RetrySuffix + "-" + strconv.FormatInt(ms[i], 10)
			if !single && count[ms[i]] > 1 {
				suffix += "-" + strconv.Itoa(i-first[ms[i]])
			}
		}
		tiers[i] = Tier{
			Topic:    base + suffix,
			Delay:    delays[i],
			Index:    i,
			Reusable: single && count[ms[i]] > 1,
		}
	}
	return tiers, nil
}

// TierForAttempt returns the tier that carries delivery number attempt
// (2 for the first retry, up to Attempts). A Reusable last tier carries
// every attempt beyond its own position. It returns false for attempt <= 1
// (the main topic's delivery) or > Attempts (the record belongs in a
// dead-letter topic).
func (p Plan) TierForAttempt(attempt int) (Tier, bool) {
	if attempt <= 1 || attempt > p.Attempts || len(p.Tiers) == 0 {
		return Tier{}, false
	}
	return p.Tiers[min(attempt-2, len(p.Tiers)-1)], true
}

// DLTFor returns the dead-letter topic for a route suffix as found in
// Decision.Route: the route's topic, or DLT for "". For a suffix the plan
// does not know it returns DLT and false.
func (p Plan) DLTFor(route string) (string, bool) {
	if route == "" {
		return p.DLT, true
	}
	for _, r := range p.Routes {
		if r.Suffix == route {
			return r.Topic, true
		}
	}
	return p.DLT, false
}

// Topics returns every topic of the plan once: the main topic, the tiers in
// hop order, the default dead-letter topic, then the routed dead-letter
// topics. Empty names (as in the zero Plan) are left out.
func (p Plan) Topics() []string {
	names := make([]string, 0, 2+len(p.Tiers)+len(p.Routes))
	seen := make(map[string]bool, cap(names))
	add := func(name string) {
		if name != "" && !seen[name] {
			seen[name] = true
			names = append(names, name)
		}
	}
	add(p.Main)
	for _, t := range p.Tiers {
		add(t.Topic)
	}
	add(p.DLT)
	for _, r := range p.Routes {
		add(r.Topic)
	}
	return names
}

// TopicRole is the part a topic plays in a plan. The zero value is
// RoleUnknown.
type TopicRole int

const (
	// RoleUnknown is a topic that is not part of the plan.
	RoleUnknown TopicRole = iota
	// RoleMain is the plan's main topic.
	RoleMain
	// RoleTier is one of the plan's retry topics.
	RoleTier
	// RoleDLT is the default or an error-routed dead-letter topic.
	RoleDLT
)

var topicRoleNames = [...]string{"unknown", "main", "tier", "dlt"}

// String returns "unknown", "main", "tier" or "dlt", and "TopicRole(N)" for
// any other value.
func (r TopicRole) String() string {
	if r < 0 || int(r) >= len(topicRoleNames) {
		return fmt.Sprintf("TopicRole(%d)", int(r))
	}
	return topicRoleNames[r]
}

// Lookup returns the role of topic in the plan and, for RoleTier, the tier's
// index; the index is -1 for every other role. An empty topic is
// RoleUnknown.
func (p Plan) Lookup(topic string) (TopicRole, int) {
	switch {
	case topic == "":
		return RoleUnknown, -1
	case topic == p.Main:
		return RoleMain, -1
	case topic == p.DLT:
		return RoleDLT, -1
	}
	for _, t := range p.Tiers {
		if t.Topic == topic {
			return RoleTier, t.Index
		}
	}
	for _, r := range p.Routes {
		if r.Topic == topic {
			return RoleDLT, -1
		}
	}
	return RoleUnknown, -1
}

// String lists the plan's topics in the order of Topics, one per line as
// "TOPIC\tDELAY", each line ending in a newline. DELAY is the tier's
// nominal delay (time.Duration formatting) and "-" for the main and
// dead-letter topics.
func (p Plan) String() string {
	var sb strings.Builder
	delays := make(map[string]time.Duration, len(p.Tiers))
	for _, t := range p.Tiers {
		delays[t.Topic] = t.Delay
	}
	for _, name := range p.Topics() {
		sb.WriteString(name)
		sb.WriteByte('\t')
		if d, ok := delays[name]; ok {
			sb.WriteString(d.String())
		} else {
			sb.WriteByte('-')
		}
		sb.WriteByte('\n')
	}
	return sb.String()
}
