package tunnel

import (
	"math"
	"time"
)

// Active queue management on a peer's queue: CoDel (RFC 8289).
//
// The packets a peer's queue holds wait for the connection to the peer, so
// when that connection is slower than the applications sending into the
// tunnel, the queue fills. A loss-based inner TCP (CUBIC, the default on
// most Linux systems, or gVisor's Reno in userspace mode) keeps growing
// its window while nothing is dropped, and the tunnel never drops: with
// one CUBIC stream over a 100 Mbit/s link, ping through the tunnel waited
// 140 ms behind it, and 700 ms behind a userspace node's upload. CoDel
// drops a packet when packets have waited more than codelTarget for at
// least codelInterval, then more often while that lasts, which tells the
// inner TCP to slow down before a standing queue forms, while a burst that
// drains is left alone.
const (
	codelTarget   = 5 * time.Millisecond
	codelInterval = 100 * time.Millisecond
	// codelMinBacklog: with less than this queued behind a packet, the
	// queue is no more than one super-packet and is never dropped from.
	codelMinBacklog = 64 << 10
)

// codel is one queue's CoDel state, used by its sendLoop only. Times are
// durations since the transport's start.
type codel struct {
	firstAbove time.Duration // when the sojourn time may be over target for an interval; 0: it is under
	dropNext   time.Duration // the next drop, while dropping
	count      uint32        // drops in this dropping state
	lastCount  uint32        // count when the last dropping state began
	dropping   bool
}

// drop says whether the packet leaving the queue at now, after sojourn in
// it, with backlog bytes still queued, is to be dropped.
func (c *codel) drop(now, sojourn time.Duration, backlog int64) bool {
	ok := c.okToDrop(now, sojourn, backlog)
	if c.dropping {
		if !ok {
			c.dropping = false
			return false
		}
		if now < c.dropNext {
			return false
		}
		c.count++
		c.dropNext = c.controlLaw(c.dropNext)
		return true
	}
	if !ok {
		return false
	}
	// Enter the dropping state, at the rate of the last one if that
	// ended recently (RFC 8289, 5.6).
	c.dropping = true
	if delta := c.count - c.lastCount; delta > 1 && now-c.dropNext < 16*codelInterval {
		c.count = delta
	} else {
		c.count = 1
	}
	c.lastCount = c.count
	c.dropNext = c.controlLaw(now)
	return true
}

func (c *codel) okToDrop(now, sojourn time.Duration, backlog int64) bool {
	if sojourn < codelTarget || backlog < codelMinBacklog {
		c.firstAbove = 0
		return false
	}
	if c.firstAbove == 0 {
		c.firstAbove = now + codelInterval
		return false
	}
	return now >= c.firstAbove
}

// controlLaw is the time of the next drop: interval/sqrt(count) after t.
func (c *codel) controlLaw(t time.Duration) time.Duration {
	return t + time.Duration(float64(codelInterval)/math.Sqrt(float64(c.count)))
}
