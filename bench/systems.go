package main

// allSystems lists every system the bench knows, in table order.
func allSystems() []System {
	return []System{kretrySystem{}, rawSystem{}, watermillSystem{}, konsumerSystem{}, springSystem{},
		// Not in the default -systems: kretry with metrics, and with metrics
		// and tracing (docs/benchmarks.md, "Observability overhead").
		observedSystem{name: "kretry-metrics", metrics: true},
		observedSystem{name: "kretry-observed", metrics: true, tracing: true}}
}

func selectSystems(cfg config) []System {
	var out []System
	for _, s := range allSystems() {
		if cfg.systems[s.Name()] {
			out = append(out, s)
		}
	}
	return out
}
