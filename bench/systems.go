package main

// allSystems lists every system the bench knows, in table order.
func allSystems() []System {
	return []System{kretrySystem{}, rawSystem{}, watermillSystem{}, konsumerSystem{}, springSystem{}}
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
