package p2p

import (
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	ma "github.com/multiformats/go-multiaddr"
)

// gateRecheck bounds each wait of a sendGate, so that a stream that is to
// move (ResetPeer) or a count that never completes does not hold it.
const gateRecheck = 100 * time.Millisecond

// sendGate holds a peer's packets in its flow queues while the TCP connection
// under its stream holds more than it should. Frames written to a yamux
// stream reach the connection only when yamux's send loop gets to them (it
// queues up to 64 frames), so after writing about the connection's limit
// the gate first waits until as many bytes have reached it.
type sendGate struct {
	c        *coalescingConn
	cancel   <-chan struct{} // closed: stop waiting, for good
	moving   func() bool     // true: the stream is to move, stop waiting
	base     int64           // c.received once all written before had reached it
	unsynced int64           // bytes written to the stream since
	timer    *time.Timer
	recheck  time.Duration // gateRecheck; tests change it
}

// newSendGate returns the gate of the connection c, or nil for none.
func newSendGate(c *coalescingConn, cancel <-chan struct{}, moving func() bool) *sendGate {
	if c == nil {
		return nil
	}
	g := &sendGate{c: c, cancel: cancel, moving: moving, base: c.received.Load(), timer: time.NewTimer(time.Hour), recheck: gateRecheck}
	g.timer.Stop()
	return g
}

// wrote counts n bytes written to the stream.
func (g *sendGate) wrote(n int) { g.unsynced += int64(n) }

// full says whether to stop taking packets: once about the connection's
// limit has been written since the last check, it waits (flushing first)
// until those bytes have reached the connection, then asks it.
func (g *sendGate) full(flush func() error) bool {
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

// waitRoom waits while the connection is backlogged, rechecking every
// gateRecheck whether the stream is to move; false: cancelled.
func (g *sendGate) waitRoom() bool {
	for g.c.Backlogged() && !g.c.failed() && !g.moving() {
		if !g.wait(g.c.room) {
			return false
		}
	}
	return true
}

// wait waits for a token on ch, at most gateRecheck; false: cancelled.
func (g *sendGate) wait(ch <-chan struct{}) bool {
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

// connRegistry finds the coalescingConn under a libp2p connection by its
// addresses, for the packet transport.
type connRegistry struct {
	mu sync.Mutex
	m  map[string]*coalescingConn
}

var conns = connRegistry{m: map[string]*coalescingConn{}}

func connKey(local, remote ma.Multiaddr) string { return local.String() + " " + remote.String() }

func (r *connRegistry) add(c *coalescingConn) {
	r.mu.Lock()
	r.m[connKey(c.LocalMultiaddr(), c.RemoteMultiaddr())] = c
	r.mu.Unlock()
}

func (r *connRegistry) remove(c *coalescingConn) {
	k := connKey(c.LocalMultiaddr(), c.RemoteMultiaddr())
	r.mu.Lock()
	if r.m[k] == c {
		delete(r.m, k)
	}
	r.mu.Unlock()
}

// lookup returns the coalescingConn under a libp2p connection, or nil (a
// QUIC or relayed connection).
func (r *connRegistry) lookup(c network.Conn) *coalescingConn {
	k := connKey(c.LocalMultiaddr(), c.RemoteMultiaddr())
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.m[k]
}
