package p2p

import (
	"context"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/mynetwork/mynetwork/p2p/tunnel"
)

// On demand (Options.IdleTimeout): a connector dials its peer only while
// the peer is wanted (see wanted); it keeps a connection, whoever made it,
// while packets pass either way, and closes it after the idle timeout
// without any. An idle peer costs no connection, no pings, no address
// exchange and no lookups.

// idleWait is how long an idle connector sleeps: it is woken by demand or
// by a connection the peer makes.
const idleWait = time.Hour

// whyIdle is what status says of a peer without a connection because
// nothing needed one.
const whyIdle = "idle: connects when there is traffic for it"

// demandFunc is the transport's Config.Demand: nil unless the node
// connects on demand.
func (n *Node) demandFunc() func(peer.ID) {
	if !n.onDemand() {
		return nil
	}
	return n.demand
}

// demand wakes p's connector to dial: packets for p are waiting.
func (n *Node) demand(p peer.ID) {
	if c := n.connector(p); c != nil {
		c.demanded.Store(time.Now().UnixNano())
		c.wake()
	}
}

// onDemand says whether the node connects on demand.
func (n *Node) onDemand() bool { return n.idleTimeout > 0 }

// wanted says whether the connector should dial now: always, unless the
// node connects on demand, the peer is not one it keeps (Peer.Keep), no
// packet asked for it lately, and it had no connection in use lately. The
// last makes both sides redial a connection that broke rather than closed
// idle: the side whose address changed is the one that can find the other.
func (c *connector) wanted() bool {
	if !c.n.onDemand() || c.keep.Load() {
		return true
	}
	return time.Since(time.Unix(0, c.demanded.Load())) < c.n.idleTimeout || time.Since(c.lastActAt) < c.n.idleTimeout
}

// idle says, on a node that connects on demand, whether the connection to
// the peer has carried no packet either way for the idle timeout (counted
// from when the connector first saw it) and no packet asked for the peer
// meanwhile: then the connector closes it.
func (c *connector) idle(best network.Conn) bool {
	if !c.n.onDemand() {
		return false
	}
	now := time.Now()
	if act := c.n.activity(c.p); act != c.lastAct || best != c.told {
		c.lastAct, c.lastActAt = act, now
	}
	return now.Sub(c.lastActAt) >= c.n.idleTimeout && !c.wanted() && !c.n.relaying(c.p)
}

// relaying says whether p carries this node's relayed connections or its
// relay reservation (an address of this node's through p): the few peers
// a node needs for being reached stay connected, idle or not.
func (n *Node) relaying(p peer.ID) bool {
	for _, c := range n.host.Network().Conns() {
		if pathOf(c) == PathRelay && relayOf(c) == p {
			return true
		}
	}
	for _, a := range n.host.Addrs() {
		if relay, err := a.ValueForProtocol(ma.P_P2P); err == nil && relay == p.String() {
			return true
		}
	}
	return false
}

// untilIdle shortens a connected connector's wait to when its peer would
// turn idle (a kept one never does), so that an idle connection closes on
// time, not at the next ping.
func (c *connector) untilIdle(wait time.Duration) time.Duration {
	if !c.n.onDemand() || c.keep.Load() {
		return wait
	}
	last := c.lastActAt
	if d := time.Unix(0, c.demanded.Load()); d.After(last) {
		last = d
	}
	return min(wait, max(time.Until(last.Add(c.n.idleTimeout))+10*time.Millisecond, 100*time.Millisecond))
}

// activity counts the packets the transport carried to and from p.
func (n *Node) activity(p peer.ID) uint64 {
	s := n.transport.Stats(p)
	if s == nil {
		return 0
	}
	return s.RxPackets.Load() + s.RxDatagrams.Load() + s.TxPackets.Load() + s.TxDatagrams.Load()
}

// closeIdle closes the connections to an idle peer.
func (c *connector) closeIdle() {
	c.n.log.Info("closing the idle connection to peer", "peer", c.p, "idle", c.n.idleTimeout)
	c.n.whyMu.Lock()
	c.n.why[c.p] = whyIdle
	c.n.whyMu.Unlock()
	for _, conn := range c.n.host.Network().ConnsToPeer(c.p) {
		conn.Close()
	}
	c.told = nil
}

// sleepIdle notes that the peer is idle and sleeps until woken.
func (c *connector) sleepIdle() (time.Duration, then) {
	c.n.whyMu.Lock()
	c.n.why[c.p] = whyIdle
	c.n.whyMu.Unlock()
	c.yieldFor = 0 // demand is this side's: no one else will dial
	return idleWait, thenWait
}

// Reach connects to p, a configured peer, if the node has no connection
// to it, as packets for p would (on demand, the connector dials at once),
// and waits up to tunnel.DemandWait; it reports whether a connection is
// up.
func (n *Node) Reach(ctx context.Context, p peer.ID) bool {
	if n.bestConn(p) != nil {
		return true
	}
	return n.configured(p) && n.connectNow(ctx, p) != nil
}

// connectNow asks for a connection to p, as packets for it do, and waits
// up to tunnel.DemandWait for it; nil if none came.
func (n *Node) connectNow(ctx context.Context, p peer.ID) network.Conn {
	n.demand(p)
	if !n.transport.AwaitConn(ctx, p, tunnel.DemandWait) {
		return nil
	}
	return n.bestConn(p)
}
