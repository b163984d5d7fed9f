package strategy

import (
	"fmt"
	"strings"
)

// Suffixing chooses what follows the retry suffix in a retry topic's name.
// The zero value is SuffixByDelay.
type Suffixing int

const (
	// SuffixByDelay appends the tier's nominal delay in milliseconds, as in
	// "orders-retry-2000". It is the default, as in Spring Kafka. When every
	// delay of the schedule is equal, index suffixes are used instead.
	SuffixByDelay Suffixing = iota
	// SuffixByIndex appends the tier's 0-based index, as in "orders-retry-1".
	SuffixByIndex
)

var suffixingNames = [...]string{"delay", "index"}

// springSuffixingNames are Spring Kafka's TopicSuffixingStrategy constants,
// accepted by UnmarshalText so that Spring configuration can be reused.
var springSuffixingNames = [...]string{"suffix_with_delay_value", "suffix_with_index_value"}

// String returns "delay" or "index", and "Suffixing(N)" for any other value.
func (s Suffixing) String() string {
	if s < 0 || int(s) >= len(suffixingNames) {
		return fmt.Sprintf("Suffixing(%d)", int(s))
	}
	return suffixingNames[s]
}

// MarshalText implements encoding.TextMarshaler with the names String
// returns. It fails for a value that is not one of the constants.
func (s Suffixing) MarshalText() ([]byte, error) {
	if s < 0 || int(s) >= len(suffixingNames) {
		return nil, fmt.Errorf("unrecognized suffixing: %d", int(s))
	}
	return []byte(suffixingNames[s]), nil
}

// UnmarshalText implements encoding.TextUnmarshaler. It accepts "delay" and
// "index", and Spring Kafka's "SUFFIX_WITH_DELAY_VALUE" and
// "SUFFIX_WITH_INDEX_VALUE", in any letter case; empty text means the
// default, SuffixByDelay. Anything else fails with
// `unrecognized suffixing: "x"`.
func (s *Suffixing) UnmarshalText(text []byte) error {
	v, ok := parseEnum(string(text), suffixingNames[:], springSuffixingNames[:])
	if !ok {
		return fmt.Errorf("unrecognized suffixing: %q", text)
	}
	*s = Suffixing(v)
	return nil
}

// SameInterval chooses how retries that share a delay share topics. The
// zero value is SingleTopic.
type SameInterval int

const (
	// SingleTopic lets the retries at the end of the schedule that repeat the
	// last delay share one reusable topic, and gives a schedule that needs
	// only one retry topic the bare retry suffix ("orders-retry"). It is the
	// default, as in Spring Kafka 3.2 and later.
	SingleTopic SameInterval = iota
	// MultipleTopics gives every retry its own topic; repeated delays are
	// told apart by a further index ("orders-retry-4000-0", "-4000-1", ...).
	MultipleTopics
)

var sameIntervalNames = [...]string{"single", "multiple"}

// springSameIntervalNames are Spring Kafka's SameIntervalTopicReuseStrategy
// constants, accepted by UnmarshalText.
var springSameIntervalNames = [...]string{"single_topic", "multiple_topics"}

// String returns "single" or "multiple", and "SameInterval(N)" for any other
// value.
func (s SameInterval) String() string {
	if s < 0 || int(s) >= len(sameIntervalNames) {
		return fmt.Sprintf("SameInterval(%d)", int(s))
	}
	return sameIntervalNames[s]
}

// MarshalText implements encoding.TextMarshaler with the names String
// returns. It fails for a value that is not one of the constants.
func (s SameInterval) MarshalText() ([]byte, error) {
	if s < 0 || int(s) >= len(sameIntervalNames) {
		return nil, fmt.Errorf("unrecognized same interval: %d", int(s))
	}
	return []byte(sameIntervalNames[s]), nil
}

// UnmarshalText implements encoding.TextUnmarshaler. It accepts "single" and
// "multiple", and Spring Kafka's "SINGLE_TOPIC" and "MULTIPLE_TOPICS", in
// any letter case; empty text means the default, SingleTopic. Anything else
// fails with `unrecognized same interval: "x"`.
func (s *SameInterval) UnmarshalText(text []byte) error {
	v, ok := parseEnum(string(text), sameIntervalNames[:], springSameIntervalNames[:])
	if !ok {
		return fmt.Errorf("unrecognized same interval: %q", text)
	}
	*s = SameInterval(v)
	return nil
}

// parseEnum finds text among names or aliases (same order, any case); empty
// text is the zero value.
func parseEnum(text string, names, aliases []string) (int, bool) {
	if text == "" {
		return 0, true
	}
	for i := range names {
		if strings.EqualFold(text, names[i]) || strings.EqualFold(text, aliases[i]) {
			return i, true
		}
	}
	return 0, false
}

// Default suffixes, the same as Spring Kafka's.
const (
	DefaultRetrySuffix = "-retry"
	DefaultDLTSuffix   = "-dlt"
)

// MaxTopicLength is the longest topic name Kafka accepts.
const MaxTopicLength = 249

// Naming decides the names of a plan's retry and dead-letter topics. Every
// name is the main topic (with GroupTopics, the main topic and the consumer
// group) followed by a suffix. The zero value, after Normalize, is Spring
// Kafka's default naming; as for every setting, a zero (empty) field means
// its default.
type Naming struct {
	// RetrySuffix starts the suffix of every retry topic. Empty means the
	// default, DefaultRetrySuffix ("-retry").
	RetrySuffix string
	// DLTSuffix ends the name of every dead-letter topic. Empty means the
	// default, DefaultDLTSuffix ("-dlt").
	DLTSuffix string
	// Suffixing chooses delay or index suffixes. Default SuffixByDelay.
	Suffixing Suffixing
	// SameInterval chooses how repeated delays share topics. Default
	// SingleTopic.
	SameInterval SameInterval
	// GroupTopics puts the consumer group in every retry and dead-letter
	// topic name, after the main topic: "<main>-<group><RetrySuffix>…" and
	// "<main>-<group><DLTSuffix>" (orders-billing-retry-1000,
	// orders-billing-dlt), so that several consumer groups of one main
	// topic each get their own tiers and DLTs. The group must then be a
	// valid topic-name fragment ([a-zA-Z0-9._-]) and the names must fit
	// MaxTopicLength. Plans need the group: NewPlanFor, or
	// retry.Policy.PlanFor. Default false: Spring Kafka's names, the same
	// for every group.
	GroupTopics bool
}

// Normalize returns n with empty suffixes replaced by their defaults.
func (n Naming) Normalize() Naming {
	if n.RetrySuffix == "" {
		n.RetrySuffix = DefaultRetrySuffix
	}
	if n.DLTSuffix == "" {
		n.DLTSuffix = DefaultDLTSuffix
	}
	return n
}

// Validate reports every problem with n, after Normalize, joined with
// errors.Join; each is a *SettingError naming the setting as policy files
// do ("retrySuffix"). Each suffix must consist of the characters Kafka
// allows in topic names ([a-zA-Z0-9._-]) and leave room for a main topic
// name, the two suffixes must differ, and Suffixing and SameInterval must
// be known constants.
func (n Naming) Validate() error {
	var ps problems
	n.validate(&ps)
	return ps.join()
}

func (n Naming) validate(ps *problems) {
	n = n.Normalize()
	retryOK := fragmentProblem(ps, "retrySuffix", n.RetrySuffix)
	dltOK := fragmentProblem(ps, "dltSuffix", n.DLTSuffix)
	if retryOK && dltOK && n.RetrySuffix == n.DLTSuffix {
		ps.add("dltSuffix", "retrySuffix and dltSuffix must differ, both are %q", n.RetrySuffix)
	}
	if n.Suffixing != SuffixByDelay && n.Suffixing != SuffixByIndex {
		ps.add("suffixing", "must be delay or index, got %v", n.Suffixing)
	}
	if n.SameInterval != SingleTopic && n.SameInterval != MultipleTopics {
		ps.add("sameInterval", "must be single or multiple, got %v", n.SameInterval)
	}
}

// fragmentProblem adds the problem of a topic-name fragment, if any, and
// reports whether s passed.
func fragmentProblem(ps *problems, key, s string) bool {
	if err := fragmentRule(s); err != nil {
		*ps = append(*ps, &SettingError{Key: key, Err: err})
		return false
	}
	return true
}

// fragmentRule is the rule for text appended to topic names.
func fragmentRule(s string) error {
	if s == "" {
		return fmt.Errorf("must not be empty")
	}
	if len(s) >= MaxTopicLength {
		return fmt.Errorf("must be at most %d characters, got %d", MaxTopicLength-1, len(s))
	}
	if i := strings.IndexFunc(s, notTopicRune); i >= 0 {
		return fmt.Errorf("may contain only [a-zA-Z0-9._-], got %q with %q at byte %d", s, s[i:i+1], i)
	}
	return nil
}

// checkFragment checks a suffix that will be appended to topic names.
func checkFragment(field, s string) error {
	if err := fragmentRule(s); err != nil {
		return fmt.Errorf("strategy: %s %w", field, err)
	}
	return nil
}

func notTopicRune(r rune) bool {
	return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.' || r == '_' || r == '-')
}

// checkTopic applies Kafka's rules for a whole topic name.
func checkTopic(field, name string) error {
	switch {
	case name == "":
		return fmt.Errorf("strategy: %s must not be empty", field)
	case name == "." || name == "..":
		return fmt.Errorf("strategy: %s must not be %q", field, name)
	case len(name) > MaxTopicLength:
		return fmt.Errorf("strategy: %s must be at most %d characters, got %d (%q)", field, MaxTopicLength, len(name), name)
	}
	if i := strings.IndexFunc(name, notTopicRune); i >= 0 {
		return fmt.Errorf("strategy: %s may contain only [a-zA-Z0-9._-], got %q with %q at byte %d", field, name, name[i:i+1], i)
	}
	return nil
}
