// Package ratelimit lets log lines on hot paths through at a bounded rate.
package ratelimit

import (
	"sync/atomic"
	"time"
)

// Every lets one event through per interval; it is lock-free and its zero
// value lets every event through.
type Every struct {
	Interval time.Duration
	next     atomic.Int64
}

// Allow reports whether this event may pass.
func (r *Every) Allow() bool {
	now := time.Now().UnixNano()
	next := r.next.Load()
	return now >= next && r.next.CompareAndSwap(next, now+int64(r.Interval))
}
