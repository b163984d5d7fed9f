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
	return append(all, rawVariants()...)
}

func selectSystems(cfg config) []System {
	var out []System
	for _, s := range allSystems() {
		if cfg.systems[s.Name()] || cfg.systems["raw-variants"] && strings.HasPrefix(s.Name(), "raw-") {
			out = append(out, s)
		}
	}
	return out
}
