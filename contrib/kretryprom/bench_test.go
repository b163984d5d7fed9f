package kretryprom

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

// BenchmarkOnEvent measures the cost an exporter adds to each listener
// event, over a mix of every kind it counts, on topics already seen.
//
//	go test -run '^$' -bench BenchmarkOnEvent -benchmem
func BenchmarkOnEvent(b *testing.B) {
	m, err := New(prometheus.NewRegistry())
	if err != nil {
		b.Fatal(err)
	}
	for _, e := range eventsOfEveryKind {
		m.OnEvent(e)
	}
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		m.OnEvent(eventsOfEveryKind[i%len(eventsOfEveryKind)])
	}
}

// BenchmarkOnEventParallel is BenchmarkOnEvent from every P at once: the
// listener's workers and produce callbacks count at the same time.
func BenchmarkOnEventParallel(b *testing.B) {
	m, err := New(prometheus.NewRegistry())
	if err != nil {
		b.Fatal(err)
	}
	for _, e := range eventsOfEveryKind {
		m.OnEvent(e)
	}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for i := 0; pb.Next(); i++ {
			m.OnEvent(eventsOfEveryKind[i%len(eventsOfEveryKind)])
		}
	})
}
