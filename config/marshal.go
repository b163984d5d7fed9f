package config

import (
	"bytes"
	"encoding/json"
	"fmt"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/kretry/kretry/strategy"
)

// fileDoc is the policy file format as written by MarshalYAML and
// MarshalJSON: every listener fully resolved, every setting explicit.
type fileDoc struct {
	Version   int       `yaml:"version" json:"version"`
	Listeners []specDoc `yaml:"listeners" json:"listeners"`
}

// specDoc is one resolved listener. Fields that do not apply to the
// backoff kind are left out, and so are empty lists and a false
// groupTopics (so that files without per-group names stay readable by
// kretry versions before groupTopics, whose loader rejects unknown keys).
// The batch settings are left out when they are the defaults, for the
// same reason and because listener.Register refuses them in the entry of a
// single-record handler. The exactly-once settings are written for an
// exactly-once listener only (its interval explicit), and the key-order
// settings for a key-ordered listener only (followersOnDeadLetter and
// maxKeysInRetry explicit), for the first reason.
type specDoc struct {
	Topic              string             `yaml:"topic" json:"topic"`
	Group              string             `yaml:"group" json:"group"`
	Attempts           int                `yaml:"attempts" json:"attempts"`
	Backoff            string             `yaml:"backoff" json:"backoff"`
	Delay              *string            `yaml:"delay,omitempty" json:"delay,omitempty"`
	Multiplier         *float64           `yaml:"multiplier,omitempty" json:"multiplier,omitempty"`
	MaxDelay           *string            `yaml:"maxDelay,omitempty" json:"maxDelay,omitempty"`
	Jitter             float64            `yaml:"jitter" json:"jitter"`
	Delays             []string           `yaml:"delays,omitempty" json:"delays,omitempty"`
	RetrySuffix        string             `yaml:"retrySuffix" json:"retrySuffix"`
	DLTSuffix          string             `yaml:"dltSuffix" json:"dltSuffix"`
	Suffixing          string             `yaml:"suffixing" json:"suffixing"`
	SameInterval       string             `yaml:"sameInterval" json:"sameInterval"`
	GroupTopics        bool               `yaml:"groupTopics,omitempty" json:"groupTopics,omitempty"`
	Include            []string           `yaml:"include,omitempty" json:"include,omitempty"`
	Exclude            []string           `yaml:"exclude,omitempty" json:"exclude,omitempty"`
	Routes             []routeDoc         `yaml:"routes,omitempty" json:"routes,omitempty"`
	Timeout            string             `yaml:"timeout" json:"timeout"`
	MaxErrorBytes      int                `yaml:"maxErrorBytes" json:"maxErrorBytes"`
	DLTStrategy        string             `yaml:"dltStrategy" json:"dltStrategy"`
	DLTHandlerAttempts int                `yaml:"dltHandlerAttempts" json:"dltHandlerAttempts"`
	DLTHandlerBackoff  string             `yaml:"dltHandlerBackoff" json:"dltHandlerBackoff"`
	CreateTopics       bool               `yaml:"createTopics" json:"createTopics"`
	Partitions         int32              `yaml:"partitions" json:"partitions"`
	ReplicationFactor  int16              `yaml:"replicationFactor" json:"replicationFactor"`
	TopicConfigs       map[string]*string `yaml:"topicConfigs,omitempty" json:"topicConfigs,omitempty"`
	Batch              int                `yaml:"batch,omitempty" json:"batch,omitempty"`
	BatchWait          string             `yaml:"batchWait,omitempty" json:"batchWait,omitempty"`
	ExactlyOnce        bool               `yaml:"exactlyOnce,omitempty" json:"exactlyOnce,omitempty"`
	TransactionalID    string             `yaml:"transactionalId,omitempty" json:"transactionalId,omitempty"`
	TxnInterval        string             `yaml:"transactionInterval,omitempty" json:"transactionInterval,omitempty"`
	KeyOrder           bool               `yaml:"keyOrder,omitempty" json:"keyOrder,omitempty"`
	Followers          string             `yaml:"followersOnDeadLetter,omitempty" json:"followersOnDeadLetter,omitempty"`
	MaxKeys            int                `yaml:"maxKeysInRetry,omitempty" json:"maxKeysInRetry,omitempty"`
}

type routeDoc struct {
	Suffix string `yaml:"suffix" json:"suffix"`
	Error  string `yaml:"error" json:"error"`
}

// MarshalYAML writes specs as a policy file (version 1, one listener entry
// per spec, every setting explicit but groupTopics, written only when
// true, batch and batchWait, written only when not their defaults, the
// exactly-once settings, written only for an exactly-once listener, and
// the key-order settings, written only for a key-ordered listener)
// that Parse reads back to the same specs. Policies are normalized first.
// It fails for a spec whose enums are out of range.
func MarshalYAML(specs ...Spec) ([]byte, error) {
	doc, err := document(specs)
	if err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	if err := enc.Encode(doc); err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	if err := enc.Close(); err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	return buf.Bytes(), nil
}

// MarshalJSON writes specs in the same shape as MarshalYAML, as indented
// JSON; a JSON document is also valid YAML, so Parse reads it back.
func MarshalJSON(specs ...Spec) ([]byte, error) {
	doc, err := document(specs)
	if err != nil {
		return nil, err
	}
	out, err := json.MarshalIndent(doc, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	return append(out, '\n'), nil
}

func document(specs []Spec) (fileDoc, error) {
	doc := fileDoc{Version: FileVersion, Listeners: make([]specDoc, 0, len(specs))}
	for _, s := range specs {
		d, err := specDocOf(s)
		if err != nil {
			return fileDoc{}, fmt.Errorf("config: topic %q: %w", s.Topic, err)
		}
		doc.Listeners = append(doc.Listeners, d)
	}
	return doc, nil
}

func specDocOf(s Spec) (specDoc, error) {
	p := s.Policy.Normalize()
	s.Topics = s.Topics.normalize()
	b, n := p.Backoff, p.Naming
	kind, err := b.Kind.MarshalText()
	if err != nil {
		return specDoc{}, err
	}
	suffixing, err := n.Suffixing.MarshalText()
	if err != nil {
		return specDoc{}, err
	}
	same, err := n.SameInterval.MarshalText()
	if err != nil {
		return specDoc{}, err
	}
	dltStrategy, err := p.DLT.MarshalText()
	if err != nil {
		return specDoc{}, err
	}
	d := specDoc{
		Topic:              s.Topic,
		Group:              s.Group,
		Attempts:           p.Attempts,
		Backoff:            string(kind),
		Jitter:             b.Jitter,
		RetrySuffix:        n.RetrySuffix,
		DLTSuffix:          n.DLTSuffix,
		Suffixing:          string(suffixing),
		SameInterval:       string(same),
		GroupTopics:        n.GroupTopics,
		Include:            names(p.Classifier.Include),
		Exclude:            names(p.Classifier.Exclude),
		Timeout:            p.Timeout.String(),
		MaxErrorBytes:      p.MaxErrorBytes,
		DLTStrategy:        string(dltStrategy),
		DLTHandlerAttempts: p.DLTHandlerAttempts,
		DLTHandlerBackoff:  p.DLTHandlerBackoff.String(),
		CreateTopics:       s.Topics.Create,
		Partitions:         s.Topics.Partitions,
		ReplicationFactor:  s.Topics.ReplicationFactor,
	}
	switch b.Kind {
	case strategy.Fixed:
		d.Delay = new(b.Delay.String())
	case strategy.Exponential:
		d.Delay = new(b.Delay.String())
		d.Multiplier = new(b.Multiplier)
		d.MaxDelay = new(b.MaxDelay.String())
	case strategy.List:
		d.Delays = durations(b.Delays)
	}
	for _, r := range p.Classifier.Routes {
		d.Routes = append(d.Routes, routeDoc{Suffix: r.Suffix, Error: r.Matcher.Name})
	}
	if len(s.Topics.Configs) > 0 {
		d.TopicConfigs = s.Topics.Configs
	}
	if b := s.Batch.normalize(); b.Size != DefaultBatchSize {
		d.Batch = b.Size
	}
	if s.Batch.Wait != 0 {
		d.BatchWait = s.Batch.Wait.String()
	}
	// A spec that is not exactly once has no transactional ID or interval
	// (Resolve drops them); one given anyway is written, so that reading
	// it back reports the mistake rather than losing it.
	e := s.ExactlyOnce.normalize()
	d.ExactlyOnce, d.TransactionalID = e.Enabled, e.TransactionalID
	if e.Enabled || e.Interval != DefaultTransactionInterval {
		d.TxnInterval = e.Interval.String()
	}
	// The same for the key-order settings without key order.
	k := s.KeyOrder.normalize()
	d.KeyOrder = k.Enabled
	if k.Enabled || k.OnDeadLetter != FollowersRelease {
		d.Followers = k.OnDeadLetter
	}
	if k.Enabled || k.MaxKeys != DefaultMaxKeysInRetry {
		d.MaxKeys = k.MaxKeys
	}
	return d, nil
}

func names(ms []strategy.Matcher) []string {
	if len(ms) == 0 {
		return nil
	}
	out := make([]string, len(ms))
	for i, m := range ms {
		out[i] = m.Name
	}
	return out
}

func durations(ds []time.Duration) []string {
	out := make([]string, len(ds))
	for i, d := range ds {
		out[i] = d.String()
	}
	return out
}
