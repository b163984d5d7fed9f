package kretryprom

import (
	"errors"
	"fmt"
	"math"
	"regexp"
	"slices"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// DefaultNamespace is the prefix of every metric name unless Namespace
// sets another.
const DefaultNamespace = "kretry"

// Defaults of the tier lag measurement (see TierLag).
const (
	// DefaultTierLagInterval is how long a tier lag measurement is reused
	// before a gather measures again.
	DefaultTierLagInterval = 10 * time.Second
	// DefaultTierLagMaxRead is how many waiting records are read per tier
	// partition to tell not-due ones from overdue ones.
	DefaultTierLagMaxRead = 1000
	// DefaultTierLagTimeout bounds one measurement. A gather waits for it,
	// so it stays well under Prometheus's default scrape timeout (10 s).
	DefaultTierLagTimeout = 5 * time.Second
)

// DefaultHandlerBuckets are the buckets of kretry_handler_duration_seconds
// and kretry_batch_duration_seconds, in seconds: 1 ms to 1 min.
var DefaultHandlerBuckets = []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60}

// DefaultLatenessBuckets are the buckets of kretry_delivery_lateness_seconds,
// in seconds: 5 ms to 30 min. A healthy listener delivers within about its
// FetchMaxWait (100 ms by default); minutes mean a backlog in the tier.
var DefaultLatenessBuckets = []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800}

// DefaultBatchSizeBuckets are the buckets of kretry_batch_records, in
// records: 1 to 1000, around the listener's default batch size of 100.
var DefaultBatchSizeBuckets = []float64{1, 2, 5, 10, 25, 50, 75, 100, 250, 500, 1000}

// Opt configures Metrics; give options to New.
type Opt interface {
	apply(*cfg)
}

type opt func(*cfg)

func (o opt) apply(c *cfg) { o(c) }

type cfg struct {
	errs            []error
	namespace       string
	handlerBuckets  []float64
	latenessBuckets []float64
	batchBuckets    []float64

	lagAdmin    *kadm.Client
	lagReader   []kgo.Opt
	lagInterval time.Duration
	lagMaxRead  int64
	lagTimeout  time.Duration
}

func defaultCfg() cfg {
	return cfg{
		namespace:       DefaultNamespace,
		handlerBuckets:  slices.Clone(DefaultHandlerBuckets),
		latenessBuckets: slices.Clone(DefaultLatenessBuckets),
		batchBuckets:    slices.Clone(DefaultBatchSizeBuckets),
		lagInterval:     DefaultTierLagInterval,
		lagMaxRead:      DefaultTierLagMaxRead,
		lagTimeout:      DefaultTierLagTimeout,
	}
}

var validNamespace = regexp.MustCompile(`^[a-zA-Z_:][a-zA-Z0-9_:]*$`)

func (c *cfg) validate() error {
	errs := c.errs
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf("kretryprom: "+format, args...)) }
	if c.namespace != "" && !validNamespace.MatchString(c.namespace) {
		bad("Namespace must match %s (or be empty), got %q", validNamespace, c.namespace)
	}
	if err := checkBuckets(c.handlerBuckets); err != nil {
		bad("HandlerBuckets: %v", err)
	}
	if err := checkBuckets(c.latenessBuckets); err != nil {
		bad("LatenessBuckets: %v", err)
	}
	if err := checkBuckets(c.batchBuckets); err != nil {
		bad("BatchSizeBuckets: %v", err)
	}
	if c.lagInterval <= 0 {
		bad("TierLagInterval must be > 0, got %v", c.lagInterval)
	}
	if c.lagTimeout <= 0 {
		bad("TierLagTimeout must be > 0, got %v", c.lagTimeout)
	}
	if c.lagMaxRead < 0 {
		bad("TierLagMaxRead must be >= 0, got %d", c.lagMaxRead)
	}
	return errors.Join(errs...)
}

func checkBuckets(b []float64) error {
	if len(b) == 0 {
		return errors.New("at least one bucket is needed")
	}
	for i, v := range b {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return fmt.Errorf("bucket %d is %v; buckets must be finite", i, v)
		}
		if i > 0 && v <= b[i-1] {
			return fmt.Errorf("buckets must be strictly increasing, bucket %d (%v) is not above bucket %d (%v)", i, v, i-1, b[i-1])
		}
	}
	return nil
}

// Namespace sets the prefix of every metric name, "kretry" in
// "kretry_records_total"; ClientMetrics uses it too. An empty namespace
// leaves the names unprefixed ("records_total"). Default DefaultNamespace.
func Namespace(ns string) Opt { return opt(func(c *cfg) { c.namespace = ns }) }

// HandlerBuckets sets the upper bounds, in seconds and strictly increasing,
// of the kretry_handler_duration_seconds buckets, and of the
// kretry_batch_duration_seconds buckets. Default DefaultHandlerBuckets.
func HandlerBuckets(upper ...float64) Opt {
	return opt(func(c *cfg) { c.handlerBuckets = slices.Clone(upper) })
}

// LatenessBuckets sets the upper bounds, in seconds and strictly
// increasing, of the kretry_delivery_lateness_seconds buckets. Default
// DefaultLatenessBuckets.
func LatenessBuckets(upper ...float64) Opt {
	return opt(func(c *cfg) { c.latenessBuckets = slices.Clone(upper) })
}

// BatchSizeBuckets sets the upper bounds, in records and strictly
// increasing, of the kretry_batch_records buckets. Default
// DefaultBatchSizeBuckets.
func BatchSizeBuckets(upper ...float64) Opt {
	return opt(func(c *cfg) { c.batchBuckets = slices.Clone(upper) })
}

// TierLag makes Watch report the records waiting in each watched listener's
// retry tiers: the tier partitions' end offsets minus the listener group's
// committed offsets, listed with adm. When readerOpts are given (seed
// brokers and the connection options: TLS, SASL, dialer), up to
// TierLagMaxRead waiting records per partition are also read, with a plain
// consumer that never joins the group nor commits, and split by their due
// time into not yet due and overdue; without them every waiting record is
// reported as "unread". readerOpts must not name a consumer group, and
// should not carry the hooks of ClientMetrics (each measurement builds a new
// client).
//
// Committed offsets trail the listener by up to its client's auto-commit
// interval (kgo's default is 5 s), so a record handled moments ago can still
// count as waiting, and as overdue; alert on overdue records older than
// that (kretry_tier_oldest_overdue_seconds), not on any.
//
// A gather measures when the last complete measurement is older than
// TierLagInterval, and waits for it up to TierLagTimeout. A tier whose
// offsets could not all be listed (or that does not exist yet) is left out
// rather than under-reported, failures count in
// kretry_tier_lag_errors_total, and the next gather measures again.
// Default: no tier lag metrics.
func TierLag(adm *kadm.Client, readerOpts ...kgo.Opt) Opt {
	return opt(func(c *cfg) {
		if adm == nil {
			c.errs = append(c.errs, errors.New("kretryprom: TierLag: the admin client must not be nil"))
		}
		c.lagAdmin, c.lagReader = adm, nil
		if len(readerOpts) > 0 {
			c.lagReader = slices.Clone(readerOpts)
		}
	})
}

// TierLagInterval sets how long a tier lag measurement is reused before a
// gather measures again; it must be > 0. Default DefaultTierLagInterval
// (10 s).
func TierLagInterval(d time.Duration) Opt { return opt(func(c *cfg) { c.lagInterval = d }) }

// TierLagMaxRead sets how many waiting records per tier partition a
// measurement reads to tell not-due records from overdue ones; the rest
// are reported as "unread". 0 reads every waiting record. Default
// DefaultTierLagMaxRead (1000).
func TierLagMaxRead(n int64) Opt { return opt(func(c *cfg) { c.lagMaxRead = n }) }

// TierLagTimeout bounds one tier lag measurement; it must be > 0. A gather
// that needs a new measurement waits for it, so keep it under the scrape
// timeout. Default DefaultTierLagTimeout (5 s).
func TierLagTimeout(d time.Duration) Opt { return opt(func(c *cfg) { c.lagTimeout = d }) }
