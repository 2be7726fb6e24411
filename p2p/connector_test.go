package p2p

import (
	"testing"
	"time"
)

// TestJitter: waits spread over ±25% of the asked time, so two nodes that
// retry on one schedule drift apart, and never below three quarters of it.
func TestJitter(t *testing.T) {
	for _, d := range []time.Duration{minBackoff, directRetry, maxDirectRetry} {
		lo, hi := d, time.Duration(0)
		for range 1000 {
			j := jitter(d)
			lo, hi = min(lo, j), max(hi, j)
		}
		if lo < d*3/4 || hi > d*5/4 {
			t.Errorf("jitter(%s) ranged %s..%s, want within %s..%s", d, lo, hi, d*3/4, d*5/4)
		}
		if hi-lo < d/4 {
			t.Errorf("jitter(%s) ranged only %s..%s", d, lo, hi)
		}
	}
}
