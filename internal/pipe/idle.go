package pipe

import (
	"sync"
	"sync/atomic"
	"time"
)

// IdleTimer calls a function once nothing has happened for a while: its
// user calls Touch on every sign of life (bytes read either way). Touch is
// an atomic store, cheap enough for every read; the timer wakes once per
// idle period at most, to look at the last Touch and either sleep until
// that plus the period or expire.
//
// A nil *IdleTimer never expires, and its methods do nothing.
type IdleTimer struct {
	d      time.Duration
	start  time.Time    // monotonic reference for last
	last   atomic.Int64 // time.Since(start) at the last Touch
	expire func()

	mu      sync.Mutex
	timer   *time.Timer
	stopped bool
}

// NewIdleTimer starts a timer that calls expire, once and in a goroutine of
// its own, when d has passed without a Touch. It returns nil for d <= 0.
func NewIdleTimer(d time.Duration, expire func()) *IdleTimer {
	if d <= 0 {
		return nil
	}
	t := &IdleTimer{d: d, start: time.Now(), expire: expire}
	t.mu.Lock()
	t.timer = time.AfterFunc(d, t.check)
	t.mu.Unlock()
	return t
}

// Touch records activity now.
func (t *IdleTimer) Touch() {
	if t != nil {
		t.last.Store(int64(time.Since(t.start)))
	}
}

// Stop stops the timer; expire is not called after Stop returns, unless it
// had already started.
func (t *IdleTimer) Stop() {
	if t == nil {
		return
	}
	t.mu.Lock()
	t.stopped = true
	t.timer.Stop()
	t.mu.Unlock()
}

func (t *IdleTimer) check() {
	t.mu.Lock()
	if t.stopped {
		t.mu.Unlock()
		return
	}
	quiet := time.Since(t.start) - time.Duration(t.last.Load())
	if quiet < t.d {
		t.timer.Reset(t.d - quiet)
		t.mu.Unlock()
		return
	}
	t.stopped = true
	t.mu.Unlock()
	t.expire()
}
