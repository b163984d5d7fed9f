package due

import (
	"sync"
	"testing"
	"testing/synctest"
	"time"
)

type firing struct {
	key string
	at  time.Time
}

func recorder() (func(string), func() []firing) {
	var mu sync.Mutex
	var got []firing
	return func(k string) {
			mu.Lock()
			got = append(got, firing{k, time.Now()})
			mu.Unlock()
		}, func() []firing {
			mu.Lock()
			defer mu.Unlock()
			return append([]firing(nil), got...)
		}
}

func TestFiresInDueOrderNeverEarly(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		fire, got := recorder()
		tm := New(fire)
		start := time.Now()
		want := map[string]time.Duration{"c": 3 * time.Second, "a": time.Second, "b": 2 * time.Second, "z": 0}
		for k, d := range want {
			tm.Arm(k, start.Add(d))
		}
		time.Sleep(4 * time.Second) // virtual: inside the synctest bubble
		synctest.Wait()
		fs := got()
		if len(fs) != 4 {
			t.Fatalf("fired %d keys, want 4: %v", len(fs), fs)
		}
		order := ""
		for _, f := range fs {
			order += f.key
			if f.at.Before(start.Add(want[f.key])) {
				t.Errorf("key %s fired at +%v, before its due +%v", f.key, f.at.Sub(start), want[f.key])
			}
			if late := f.at.Sub(start.Add(want[f.key])); late != 0 {
				t.Errorf("key %s fired %v late on a virtual clock", f.key, late)
			}
		}
		if order != "zabc" {
			t.Errorf("fire order %q, want zabc", order)
		}
		if tm.Len() != 0 {
			t.Errorf("Len after firing = %d, want 0", tm.Len())
		}
	})
}

func TestRearmMovesAndDisarmRemoves(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		fire, got := recorder()
		tm := New(fire)
		start := time.Now()
		tm.Arm("a", start.Add(time.Second))
		tm.Arm("b", start.Add(time.Second))
		tm.Arm("a", start.Add(5*time.Second)) // moved later
		if !tm.Disarm("b") {
			t.Fatal("Disarm(b) = false, want true")
		}
		if tm.Disarm("b") {
			t.Fatal("second Disarm(b) = true, want false")
		}
		time.Sleep(2 * time.Second) // virtual: inside the synctest bubble
		synctest.Wait()
		if fs := got(); len(fs) != 0 {
			t.Fatalf("fired %v before any key was due", fs)
		}
		time.Sleep(3 * time.Second) // virtual: inside the synctest bubble
		synctest.Wait()
		fs := got()
		if len(fs) != 1 || fs[0].key != "a" || !fs[0].at.Equal(start.Add(5*time.Second)) {
			t.Fatalf("got %v, want a single firing of a at +5s", fs)
		}
	})
}

func TestStopDisarmsEverything(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		fire, got := recorder()
		tm := New(fire)
		tm.Arm("a", time.Now().Add(time.Second))
		tm.Stop()
		tm.Arm("b", time.Now().Add(time.Second))
		time.Sleep(2 * time.Second) // virtual: inside the synctest bubble
		synctest.Wait()
		if fs := got(); len(fs) != 0 {
			t.Fatalf("fired %v after Stop", fs)
		}
		if tm.Len() != 0 {
			t.Fatalf("Len after Stop = %d", tm.Len())
		}
	})
}

func TestManyKeysOneTimer(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		fire, got := recorder()
		tm := New(fire)
		start := time.Now()
		const n = 10000
		for i := range n {
			tm.Arm(string(rune('a'+i%26))+time.Duration(i).String(), start.Add(time.Duration(n-i)*time.Millisecond))
		}
		time.Sleep(time.Duration(n+1) * time.Millisecond) // virtual: inside the synctest bubble
		synctest.Wait()
		fs := got()
		if len(fs) != n {
			t.Fatalf("fired %d, want %d", len(fs), n)
		}
		for i := 1; i < len(fs); i++ {
			if fs[i].at.Before(fs[i-1].at) {
				t.Fatalf("firing %d at %v before firing %d at %v", i, fs[i].at, i-1, fs[i-1].at)
			}
		}
	})
}
