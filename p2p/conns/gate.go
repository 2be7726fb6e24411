package conns

import (
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	ma "github.com/multiformats/go-multiaddr"
)

// gateRecheck bounds each wait of a Gate, so that a stream that is to
// move (ResetPeer) or a count that never completes does not hold it.
const gateRecheck = 100 * time.Millisecond

// Gate holds a peer's packets in its flow queues while the TCP connection
// under its stream holds more than it should. Frames written to a yamux
// stream reach the connection only when yamux's send loop gets to them (it
// queues up to 64 frames), so after writing about the connection's limit
// the gate first waits until as many bytes have reached it.
type Gate struct {
	c        *Conn
	cancel   <-chan struct{} // closed: stop waiting, for good
	moving   func() bool     // true: the stream is to move, stop waiting
	base     int64           // c.received once all written before had reached it
	unsynced int64           // bytes written to the stream since
	timer    *time.Timer
	recheck  time.Duration // gateRecheck; tests change it
}

// NewGate returns the gate of the connection c, or nil for none.
func NewGate(c *Conn, cancel <-chan struct{}, moving func() bool) *Gate {
	if c == nil {
		return nil
	}
	g := &Gate{c: c, cancel: cancel, moving: moving, base: c.received.Load(), timer: time.NewTimer(time.Hour), recheck: gateRecheck}
	g.timer.Stop()
	return g
}

// Wrote counts n bytes written to the stream.
func (g *Gate) Wrote(n int) { g.unsynced += int64(n) }

// Full says whether to stop taking packets: once about the connection's
// limit has been written since the last check, it waits (flushing first)
// until those bytes have reached the connection, then asks it.
func (g *Gate) Full(flush func() error) bool {
	if g.unsynced < g.c.limit.Load() {
		return false
	}
	if flush() != nil {
		return false
	}
	// The bytes written are counted short (without frame headers), so they
	// all arrive; a wait is bounded all the same, by one gateRecheck.
	target := g.base + g.unsynced
	g.c.waiting.Store(true)
	for deadline := time.Now().Add(g.recheck); g.c.received.Load() < target && !g.c.failed() && !g.moving() && time.Now().Before(deadline); {
		if !g.wait(g.c.progress) {
			break
		}
	}
	g.c.waiting.Store(false)
	g.base, g.unsynced = g.c.received.Load(), 0
	return g.c.Backlogged()
}

// WaitRoom waits while the connection is backlogged, rechecking every
// gateRecheck whether the stream is to move; false: cancelled.
func (g *Gate) WaitRoom() bool {
	for g.c.Backlogged() && !g.c.failed() && !g.moving() {
		if !g.wait(g.c.room) {
			return false
		}
	}
	return true
}

// wait waits for a token on ch, at most gateRecheck; false: cancelled.
func (g *Gate) wait(ch <-chan struct{}) bool {
	g.timer.Reset(g.recheck)
	defer g.timer.Stop()
	select {
	case <-g.cancel:
		return false
	case <-ch:
	case <-g.timer.C:
	}
	return true
}

// Registry finds the Conn under a libp2p connection by its
// addresses, for the packet transport.
type Registry struct {
	mu sync.Mutex
	m  map[string]*Conn
}

// NewRegistry returns an empty registry, for one host's TCP transport.
func NewRegistry() *Registry { return &Registry{m: map[string]*Conn{}} }

func connKey(local, remote ma.Multiaddr) string { return local.String() + " " + remote.String() }

func (r *Registry) add(c *Conn) {
	if r == nil {
		return
	}
	r.mu.Lock()
	r.m[connKey(c.LocalMultiaddr(), c.RemoteMultiaddr())] = c
	r.mu.Unlock()
}

func (r *Registry) remove(c *Conn) {
	if r == nil {
		return
	}
	k := connKey(c.LocalMultiaddr(), c.RemoteMultiaddr())
	r.mu.Lock()
	if r.m[k] == c {
		delete(r.m, k)
	}
	r.mu.Unlock()
}

// Lookup returns the Conn under a libp2p connection, or nil (a
// QUIC or relayed connection).
func (r *Registry) Lookup(c network.Conn) *Conn {
	if r == nil {
		return nil
	}
	k := connKey(c.LocalMultiaddr(), c.RemoteMultiaddr())
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.m[k]
}
