package tunnel

import (
	"testing"
	"time"
)

// TestCodel: a burst that drains within an interval is never dropped from;
// a standing queue is, first after an interval, then at a rising rate
// (interval/sqrt(count)); the dropping stops once the queue drains.
func TestCodel(t *testing.T) {
	ms := time.Millisecond
	var c codel
	// 90 ms over target, then below: no drop.
	for now := ms; now < 90*ms; now += ms {
		if c.drop(now, 20*ms, 1<<20) {
			t.Fatalf("dropped at %v from a burst", now)
		}
	}
	if c.drop(90*ms, ms, 1<<20) {
		t.Fatal("dropped a packet under target")
	}
	// A standing queue: 20 ms of sojourn, every millisecond, for a second.
	var drops []time.Duration
	for now := 100 * ms; now < 1100*ms; now += ms {
		if c.drop(now, 20*ms, 1<<20) {
			drops = append(drops, now)
		}
	}
	if len(drops) < 3 || drops[0] != 200*ms {
		t.Fatalf("drops at %v, want the first at 200ms (one interval after the queue stood)", drops)
	}
	for i := 2; i < len(drops); i++ {
		if drops[i]-drops[i-1] > drops[i-1]-drops[i-2] {
			t.Errorf("drop spacing grew: %v", drops)
		}
	}
	// A small backlog (one super-packet) is never dropped from.
	if c.drop(1100*ms, 20*ms, 1000) {
		t.Error("dropped with a backlog under one super-packet")
	}
	if c.dropping {
		t.Error("still dropping after the queue drained")
	}
}
