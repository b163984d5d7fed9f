package main

import "strings"

// allSystems lists every system the bench knows, in table order.
func allSystems() []System {
	all := []System{kretrySystem{}, rawSystem{name: "raw", v: rawBest}, watermillSystem{}, konsumerSystem{}, springSystem{},
		// Not in the default -systems: kretry with metrics, and with metrics
		// and tracing (docs/benchmarks.md, "Observability overhead").
		observedSystem{name: "kretry-metrics", metrics: true},
		observedSystem{name: "kretry-observed", metrics: true, tracing: true}}
	// Nor are the variants of the raw pipeline ("raw-variants" names them
	// all; docs/benchmarks.md, "Raw franz-go baselines").
	all = append(all, rawVariants()...)
	// Nor kretry with a batch handler in S2 (docs/benchmarks.md, "Batch
	// handlers"); selectSystems sets its BatchSize.
	all = append(all, kretryBatchSystem{}, kretryBatchSystem{each: true})
	// Nor kretry with KeyOrder (docs/benchmarks.md, "Key order").
	all = append(all, kretryKeyOrderSystem{})
	// raw-headers is raw writing and reading kretry's headers: what the
	// wire format costs, apart from the listener (docs/benchmarks.md).
	return append(all, rawHeaders())
}

func selectSystems(cfg config) []System {
	var out []System
	for _, s := range allSystems() {
		if cfg.systems[s.Name()] || cfg.systems["raw-variants"] && strings.HasPrefix(s.Name(), "raw-") && s.Name() != "raw-headers" {
			if k, ok := s.(kretryBatchSystem); ok {
				k.size = cfg.s2BatchSize
				s = k
			}
			out = append(out, s)
		}
	}
	return append(out, eosSystems(cfg.systems)...) // exactly once (eos.go)
}

// rawHeaders is the raw pipeline that writes and reads kretry's headers
// ("raw-headers"; see rawVariant.headers).
func rawHeaders() rawSystem {
	v := rawBest
	v.headers = true
	return rawSystem{name: v.name(), v: v}
}
