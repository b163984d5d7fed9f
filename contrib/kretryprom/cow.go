package kretryprom

import (
	"sync"
	"sync/atomic"
)

// cowMap is a copy-on-write map for the label-resolved metrics of the event
// path: reads are one atomic load and a map lookup, without locks or
// allocation; writes, rare (once per new label value), copy the map. Its
// zero value is an empty map.
type cowMap[K comparable, V any] struct {
	mu sync.Mutex
	m  atomic.Pointer[map[K]V]
}

// load returns the value of k, if it has one.
func (c *cowMap[K, V]) load(k K) (V, bool) {
	if m := c.m.Load(); m != nil {
		v, ok := (*m)[k]
		return v, ok
	}
	var zero V
	return zero, false
}

// get returns the value of k, creating it with create on first use.
func (c *cowMap[K, V]) get(k K, create func(K) V) V {
	if v, ok := c.load(k); ok {
		return v
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	old := c.m.Load()
	if old != nil {
		if v, ok := (*old)[k]; ok {
			return v
		}
	}
	v := create(k)
	next := make(map[K]V, c.lenOf(old)+1)
	if old != nil {
		for kk, vv := range *old {
			next[kk] = vv
		}
	}
	next[k] = v
	c.m.Store(&next)
	return v
}

// len returns the number of keys.
func (c *cowMap[K, V]) len() int { return c.lenOf(c.m.Load()) }

func (c *cowMap[K, V]) lenOf(m *map[K]V) int {
	if m == nil {
		return 0
	}
	return len(*m)
}

// bounded returns the value of k in c, creating it with create on first
// use, unless c holds max keys already: then it returns the value of other.
// It keeps a label's values bounded when they come from outside.
func bounded[K comparable, V any](c *cowMap[K, V], k, other K, max int, create func(K) V) V {
	if v, ok := c.load(k); ok {
		return v
	}
	if c.len() >= max {
		k = other
	}
	return c.get(k, create)
}
