package conns

import (
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	ma "github.com/multiformats/go-multiaddr"
	"github.com/quic-go/quic-go"
)

// gateRecheck bounds each wait of a Gate, so that a stream that is to
// move (ResetPeer) or a count that never completes does not hold it.
const gateRecheck = 100 * time.Millisecond

// On QUIC the queue forms elsewhere. quic-go's Write returns once its data
// is in packets, so little waits in its send buffer; but its congestion
// control (CUBIC) keeps sending until the path drops a packet, so the
// standing queue builds at the path's bottleneck, in arrival order: a ping
// beside a CUBIC upload through a 100 Mbit/s link with a 20 ms queue took
// 21.7 ms over QUIC where TCP (BBR beneath) took 12.4. quic-go tells
// neither bytes in flight nor acknowledged, but it does tell the RTT: the
// latest sample less the path's least is how long a packet now waits in
// the path's queues. The gate stops taking packets while that is above
// quicQueue, so the standing queue stays in the flow queues.
const (
	// quicQueue is the queue the gate leaves in the path: enough to keep a
	// link busy across a wake-up, short against CoDel's 5 ms target.
	quicQueue = 2 * time.Millisecond
	// quicRecheck is how often a waiting gate looks at the RTT again.
	quicRecheck = 500 * time.Microsecond
	// minRTTWindow is how long an RTT sample counts as the path's least: a
	// path that got longer (a new route, a queue that others keep full)
	// is the path from the next window on, as BBR's min_rtt filter does.
	minRTTWindow = 2 * time.Second
)

// Gate holds a peer's packets in its flow queues while the connection
// under its stream holds more than it should. On TCP: frames written to a
// yamux stream reach the connection only when yamux's send loop gets to
// them (it queues up to 64 frames), so after writing about the
// connection's limit the gate first waits until as many bytes have
// reached it. On QUIC: while packets queue in the path (see quicQueue).
type Gate struct {
	c        *Conn
	stats    func() quic.ConnectionStats // a QUIC connection's, when c is nil
	wake     <-chan struct{}             // QUIC: while holding, a token here...
	sparse   func()                      // ...runs this (WhileHolding)
	mins     [2]time.Duration            // least RTT of this window and the last
	minAt    time.Time                   // when this window began
	cancel   <-chan struct{}             // closed: stop waiting, for good
	moving   func() bool                 // true: the stream is to move, stop waiting
	base     int64                       // c.received once all written before had reached it
	unsynced int64                       // bytes written to the stream since
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

// NewQUICGate returns the gate of the QUIC connection q, or nil for none.
func NewQUICGate(q *quic.Conn, cancel <-chan struct{}, moving func() bool) *Gate {
	if q == nil {
		return nil
	}
	return newQUICGate(q.ConnectionStats, cancel, moving)
}

func newQUICGate(stats func() quic.ConnectionStats, cancel <-chan struct{}, moving func() bool) *Gate {
	g := &Gate{stats: stats, cancel: cancel, moving: moving, timer: time.NewTimer(time.Hour), recheck: quicRecheck}
	g.timer.Stop()
	g.mins = [2]time.Duration{time.Hour, time.Hour}
	return g
}

// Wrote counts n bytes written to the stream.
func (g *Gate) Wrote(n int) { g.unsynced += int64(n) }

// Full says whether to stop taking packets: once about the connection's
// limit has been written since the last check, it waits (flushing first)
// until those bytes have reached the connection, then asks it. On QUIC it
// asks after every packet (datagrams count too) whether packets queue in
// the path, flushing if they do.
func (g *Gate) Full(flush func() error) bool {
	if g.c == nil {
		return g.queued() > quicQueue && flush() == nil
	}
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
	if g.c == nil {
		return g.drain()
	}
	for g.c.Backlogged() && !g.c.failed() && !g.moving() {
		if !g.wait(g.c.room) {
			return false
		}
	}
	return true
}

// drain waits while packets queue in the QUIC connection's path, at most
// as long as that queue takes to drain once nothing more is sent (and at
// most gateRecheck): no RTT sample comes while nothing is in flight.
func (g *Gate) drain() bool {
	q := g.queued()
	for deadline := time.Now().Add(min(q, gateRecheck)); q > quicQueue && !g.moving() && time.Now().Before(deadline); q = g.queued() {
		g.timer.Reset(g.recheck)
		select {
		case <-g.cancel:
			g.timer.Stop()
			return false
		case <-g.wake:
			g.sparse()
		case <-g.timer.C:
		}
		g.timer.Stop()
	}
	return true
}

// WhileHolding has a QUIC gate call sparse at each token on wake while
// it holds the send loop back: packets that cannot wait (FQ-CoDel's new
// flows: a ping, a DNS query) still go while the bulk waits. Without it a
// ping beside an upload waited for the path's queue to drain (inner BBR:
// 6 ms became 10-13).
func (g *Gate) WhileHolding(wake <-chan struct{}, sparse func()) {
	g.wake, g.sparse = wake, sparse
}

// queued is how long a packet sent now would wait in the QUIC
// connection's path: the latest RTT sample less the least of the last
// one or two minRTTWindows (never below quic-go's least of all).
func (g *Gate) queued() time.Duration {
	st := g.stats()
	if now := time.Now(); now.Sub(g.minAt) > minRTTWindow {
		g.mins[1], g.mins[0], g.minAt = g.mins[0], st.LatestRTT, now
	}
	g.mins[0] = min(g.mins[0], st.LatestRTT)
	return st.LatestRTT - max(min(g.mins[0], g.mins[1]), st.MinRTT)
}

// wait waits for a token on ch, at most g.recheck; false: cancelled.
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
