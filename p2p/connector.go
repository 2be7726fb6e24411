package p2p

import (
	"context"
	"errors"
	"fmt"
	mathrand "math/rand/v2"
	"net"
	"slices"
	"sync/atomic"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/p2p/net/swarm"
	ma "github.com/multiformats/go-multiaddr"
	manet "github.com/multiformats/go-multiaddr/net"
)

const (
	// firstYield is how long a node that does not lead lets the peer dial
	// first at the start: the leader's dial and handshake at a few
	// hundred ms RTT. It ends as soon as the leader's connection is up.
	firstYield     = time.Second
	maxDirectRetry = 5 * time.Minute // the longest wait between tries for a direct path
)

// connector keeps one configured peer connected on its best path: it dials
// the peer until connected, redials with backoff when it goes away, moves
// to better paths as they appear, and pings the peer while connected, for
// its RTT and to notice a dead connection before the transport does. A
// relayed peer is retried for a direct path after directRetry, then less
// often while that keeps failing: DCUtR tries once per relayed connection
// only.
type connector struct {
	n    *Node
	p    peer.ID
	kick chan struct{} // a connection to p or p's addresses changed
	// cancel stops run, which closes done (nil until start).
	cancel context.CancelFunc
	done   chan struct{}

	backoff    time.Duration // the wait after the next failed dial
	told       network.Conn  // the connection our addresses were last sent on
	path       string        // the path p was last reached on, to log a change once
	nextDirect time.Time     // when a relayed p is next tried for a direct path
	directWait time.Duration // the wait after the next failed try for a direct path
	netKey     string        // this node's interface addresses when last looked
	repunches  int           // relayed connections closed to punch again
	silent     int           // pings in a row that failed while nothing arrived from p
	nextTCP    time.Time     // when p, on QUIC on a LAN, may next move to TCP
	yieldFor   time.Duration // how long a node that does not lead lets p dial first
	pingedOn   network.Conn  // the connection this node last had an answer from p on
	roundAt    time.Time     // when the last liveness round ran
	roundRx    uint64        // packets from p counted then

	heard atomic.Int64 // when p last pinged this node on the connection packets use (Unix ns)

	keep      atomic.Bool  // on demand: connected all the same (Peer.Keep)
	demanded  atomic.Int64 // on demand: when packets last asked for p (Unix ns)
	lastAct   uint64       // on demand: packets to and from p when last looked
	lastActAt time.Time    // on demand: when they last changed
}

func newConnector(n *Node, p peer.ID) *connector {
	return &connector{n: n, p: p, kick: make(chan struct{}, 1), backoff: minBackoff,
		directWait: directRetry, yieldFor: firstYield}
}

// then is what a round asks of the connector's loop.
type then int

const (
	thenWait  then = iota // until the round's wait is over, a kick, or the end
	thenAgain             // the next round at once
	thenStop              // the context ended
)

// start runs the connector under ctx until ctx ends or stop.
func (c *connector) start(ctx context.Context) {
	ctx, c.cancel = context.WithCancel(ctx)
	c.done = make(chan struct{})
	c.n.wg.Add(1)
	go c.run(ctx)
}

// stop ends the connector's loop and waits for it; one never started
// has nothing to stop.
func (c *connector) stop() {
	if c.cancel != nil {
		c.cancel()
		<-c.done
	}
}

// run is the connector's loop: a round at a time until ctx ends.
func (c *connector) run(ctx context.Context) {
	defer c.n.wg.Done()
	defer close(c.done)
	for {
		wait, next := c.round(ctx)
		switch next {
		case thenStop:
			return
		case thenAgain:
			continue
		}
		select {
		case <-ctx.Done():
			return
		case <-c.kick:
		case <-time.After(wait):
		}
	}
}

// wake makes the connector look at its peer again now.
func (c *connector) wake() {
	select {
	case c.kick <- struct{}{}:
	default:
	}
}

// round looks at the connection to the peer and acts on it once.
func (c *connector) round(ctx context.Context) (time.Duration, then) {
	if best := c.n.bestConn(c.p); best != nil {
		if c.idle(best) {
			c.closeIdle()
			return c.sleepIdle()
		}
		wait, next := c.tend(ctx, best)
		return c.untilIdle(wait), next
	}
	if !c.wanted() {
		return c.sleepIdle()
	}
	if c.yieldFor > 0 && !c.n.leads(c.p) && len(c.n.host.Peerstore().Addrs(c.p)) > 0 {
		return c.yield(ctx)
	}
	return c.dial(ctx)
}

// tend looks after a connected peer: the best path (relay grace, direct
// retry, the LAN move from QUIC to TCP), then liveness.
func (c *connector) tend(ctx context.Context, best network.Conn) (time.Duration, then) {
	c.yieldFor = redialYield // if it goes away
	c.backoff = minBackoff
	c.n.prune(c.p)
	if best != c.told {
		c.told = best
		c.silent = 0 // failed pings count per connection
		c.notePath(best)
		c.n.sendAddrs(ctx, c.p)
		if pathOf(best) == PathRelay {
			// Closing the relayed connection or dialing the peer
			// while DCUtR punches on it makes the punch fail.
			c.nextDirect = later(c.nextDirect, time.Now().Add(directGrace))
		}
	}
	if pathOf(best) != PathRelay {
		c.directWait, c.repunches = directRetry, 0
	} else if c.networkChanged() || time.Now().After(c.nextDirect) {
		c.nextDirect = time.Now().Add(jitter(c.directWait))
		c.directWait = min(2*c.directWait, maxDirectRetry)
		c.tryDirect(ctx, best)
		return 0, thenAgain
	}
	if c.moveToTCP(ctx, best) || !c.alive(ctx, best) {
		return 0, thenAgain
	}
	return c.pingWait(best), thenWait
}

// pingWait is the wait until the next round on a live connection: the ping
// interval, or less after a failed ping, and no later than the next try for
// a direct path or the move to TCP.
func (c *connector) pingWait(best network.Conn) time.Duration {
	wait := pingInterval
	if c.silent > 0 {
		wait = silentRetry
	}
	if pathOf(best) == PathRelay {
		wait = max(min(wait, time.Until(c.nextDirect)), 100*time.Millisecond)
	}
	if c.movesToTCP(best) {
		tcpAt := max(time.Until(c.nextTCP), time.Until(best.Stat().Opened.Add(time.Second)))
		wait = max(min(wait, tcpAt+10*time.Millisecond), 100*time.Millisecond)
	}
	return wait
}

// yield waits up to yieldFor for the peer to dial first: at the start,
// when both know the other's addresses, and after a lost connection, when
// both redial it. Two TCP dials between the listen ports (libp2p dials from
// them) at once are one simultaneous open that both take as outgoing, and
// its security handshake fails on both sides: the side that does not lead
// lets the other dial first.
func (c *connector) yield(ctx context.Context) (time.Duration, then) {
	d := c.yieldFor
	c.yieldFor = 0
	if !c.awaitConn(ctx, d) {
		return 0, thenStop
	}
	return 0, thenAgain
}

// dial connects to the peer, or sets the wait before the next try, which
// doubles with every failure up to maxBackoff. The wait is jittered: two
// nodes whose dials collided must not retry in step and collide again.
func (c *connector) dial(ctx context.Context) (time.Duration, then) {
	if err := c.connect(ctx); err != nil {
		c.n.noteUnreachable(c.p, err)
		wait := jitter(c.backoff)
		c.backoff = min(c.backoff*2, maxBackoff)
		return wait, thenWait
	}
	c.n.saveAddrBook()
	return 0, thenAgain
}

// notePath logs the path p is reached on when it changes (relay to direct,
// direct to relay) at Info, and a new connection on the same path at Debug:
// a relayed peer reconnects through the relay each time it is punched again.
func (c *connector) notePath(best network.Conn) {
	path := pathOf(best)
	if path == c.path {
		c.n.log.Debug("new connection to peer", "peer", c.p, "path", path, "addr", best.RemoteMultiaddr())
		return
	}
	c.n.log.Info("connected to peer", "peer", c.p, "path", path, "was", c.path, "addr", best.RemoteMultiaddr())
	c.path = path
}

// networkChanged reports whether this node's interface addresses changed
// since it last looked, and if so starts the tries for a direct path over:
// a new network may have the path the old one had not.
func (c *connector) networkChanged() bool {
	addrs, err := c.n.host.Network().InterfaceListenAddresses()
	if err != nil {
		return false
	}
	keys := make([]string, len(addrs))
	for i, a := range addrs {
		keys[i] = a.String()
	}
	slices.Sort(keys)
	key := fmt.Sprint(keys)
	changed := c.netKey != "" && key != c.netKey
	c.netKey = key
	if changed {
		c.n.log.Debug("local addresses changed; trying for a direct path again", "peer", c.p)
		c.directWait, c.repunches = directRetry, 0
	}
	return changed
}

// alive pings the peer on best, unless it showed itself alive since the
// last round (heardFrom), and reports false when it closed the connections
// to the peer instead: deadAfter pings failed in a row, and nothing
// arrived meanwhile.
func (c *connector) alive(ctx context.Context, best network.Conn) bool {
	c.n.liveRounds.Add(1)
	if c.heardFrom(best) {
		c.silent = 0
		return true
	}
	c.n.livePings.Add(1)
	// Anything that arrives while the ping is out also shows the
	// connection is alive: under load a ping can be slow.
	before := c.n.received(c.p)
	if c.measureRTT(ctx, best) {
		c.pingedOn = best
		c.silent = 0
		return true
	}
	if c.n.received(c.p) != before {
		c.silent = 0
		return true
	}
	if c.silent++; c.silent < deadAfter {
		c.n.log.Debug("peer did not answer a ping", "peer", c.p, "addr", best.RemoteMultiaddr())
		return true
	}
	// The connection is dead (the peer crashed, its address changed, the
	// link went away) but the transport has not noticed yet: it gives up
	// only after 30-40 s. Close it, and redial.
	c.n.log.Info("peer stopped answering; redialing", "peer", c.p, "addr", best.RemoteMultiaddr())
	for _, conn := range c.n.host.Network().ConnsToPeer(c.p) {
		conn.Close()
	}
	c.silent = 0
	return false
}

// heardFrom says whether the peer showed itself alive on best since the
// last liveness round without this node's ping: packets arrived from it, or
// it pinged this node on best. Then one side's pings keep an idle pair
// alive for both, and a busy pair sends none; whichever side went a whole
// round without hearing pings, so some ping crosses in any two rounds and
// a dead peer is found as before, one round later at most. Each connection
// is pinged once all the same: its round trip is what status shows.
func (c *connector) heardFrom(best network.Conn) bool {
	since, rxBefore := c.roundAt, c.roundRx
	c.roundAt, c.roundRx = time.Now(), c.n.received(c.p)
	if c.pingedOn != best {
		return false
	}
	return c.roundRx != rxBefore || c.heard.Load() > since.UnixNano()
}

// moveToTCP closes best, a QUIC connection to a LAN peer (its TCP listener
// was not up yet when we dialed, say), when the peer's TCP listener
// answers, so that the redial tries TCP first (see preferQUIC). It tries
// once per tcpRetry, and not in a connection's first second.
func (c *connector) moveToTCP(ctx context.Context, best network.Conn) bool {
	if !c.movesToTCP(best) || time.Since(best.Stat().Opened) <= time.Second || !time.Now().After(c.nextTCP) {
		return false
	}
	c.nextTCP = time.Now().Add(tcpRetry)
	if !c.lanTCPReachable(ctx) {
		return false
	}
	c.n.log.Info("moving a LAN peer from QUIC to TCP", "peer", c.p)
	best.Close()
	return true
}

// movesToTCP says whether this node moves the peer, reached over QUIC on
// a LAN path, to TCP (one side of the pair does: see leads).
func (c *connector) movesToTCP(best network.Conn) bool {
	return pathOf(best) == PathLAN && isQUIC(best) && c.n.leads(c.p)
}

// lanTCPReachable reports whether the peer listens on TCP at a LAN address
// that accepts a connection right now (a plain TCP handshake, closed at
// once).
func (c *connector) lanTCPReachable(ctx context.Context) bool {
	for _, a := range c.n.host.Peerstore().Addrs(c.p) {
		if addrPath(a) != PathLAN || inMesh(a) {
			continue
		}
		if _, err := a.ValueForProtocol(ma.P_TCP); err != nil {
			continue
		}
		na, err := manet.ToNetAddr(a)
		if err != nil {
			continue
		}
		dctx, cancel := context.WithTimeout(ctx, time.Second)
		conn, err := (&net.Dialer{}).DialContext(dctx, "tcp", na.String())
		cancel()
		if err == nil {
			conn.Close()
			return true
		}
	}
	return false
}

// awaitConn waits up to d for a connection to the peer, and reports false
// if ctx ended meanwhile.
func (c *connector) awaitConn(ctx context.Context, d time.Duration) bool {
	deadline := time.After(d)
	for c.n.bestConn(c.p) == nil {
		select {
		case <-ctx.Done():
			return false
		case <-c.kick:
		case <-deadline:
			return true
		}
	}
	return true
}

// tryDirect looks for a direct path to a peer reached only through a relay:
// first by dialing its known direct addresses, then, if that fails, by
// closing the relayed connection so that the next one through the relay
// starts a new hole punch.
func (c *connector) tryDirect(ctx context.Context, relayed network.Conn) {
	ctx, cancel := context.WithTimeout(ctx, dialTimeout)
	defer cancel()
	var direct []ma.Multiaddr
	for _, a := range c.n.host.Peerstore().Addrs(c.p) {
		if addrPath(a) != PathRelay {
			direct = append(direct, a)
		}
	}
	if len(direct) > 0 {
		c.n.clearBackoff(c.p)
		err := c.n.host.Connect(network.WithForceDirectDial(ctx, "mynetwork direct"), peer.AddrInfo{ID: c.p, Addrs: direct})
		if err == nil && c.n.State(c.p).Path != PathRelay {
			return // notePath logs the new path
		}
	}
	c.n.log.Debug("no direct path to peer yet", "peer", c.p, "next", time.Until(c.nextDirect).Round(time.Second))
	// Only one side closes the relayed connection, so that the pair does
	// not redial the relay from both ends and punch on two connections.
	if c.repunches < maxRepunch && c.n.leads(c.p) {
		c.repunches++
		c.n.log.Debug("no direct path yet; reconnecting through the relay to punch again", "peer", c.p)
		relayed.Close()
	}
}

// connect dials the peer at its known addresses, or at those the DHT
// finds when it has none.
func (c *connector) connect(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, dialTimeout)
	defer cancel()
	ai := c.n.host.Peerstore().PeerInfo(c.p)
	if len(ai.Addrs) == 0 && c.n.kad != nil {
		fctx, fcancel := context.WithTimeout(ctx, findTimeout)
		found, err := c.n.kad.FindPeer(fctx, c.p)
		fcancel()
		if err != nil {
			return fmt.Errorf("not found in the DHT yet: %w", err)
		}
		ai = found
	}
	if len(ai.Addrs) == 0 {
		if c.n.kad == nil {
			return errors.New("no known address, and no DHT: give its addrs in the config, or bootstrapPeers")
		}
		return errors.New("no known address")
	}
	c.n.clearBackoff(c.p)
	return c.n.host.Connect(network.WithAllowLimitedConn(ctx, "mynetwork"), ai)
}

// measureRTT pings the peer on the connection packets use (not the
// swarm's pick) and reports whether it answered.
func (c *connector) measureRTT(ctx context.Context, conn network.Conn) bool {
	_, err := c.n.pingConn(ctx, conn)
	return err == nil
}

// jitter spreads d over ±25%, so that two nodes that wait the same time
// do not act in step.
func jitter(d time.Duration) time.Duration {
	return d*3/4 + mathrand.N(d/2+1)
}

// later is the later of two times.
func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// leads says whether this node, and not p, acts where only one side of a
// pair must (closing a connection to rebuild it, redialing first): the
// one with the smaller peer ID.
func (n *Node) leads(p peer.ID) bool { return n.host.ID() < p }

// clearBackoff forgets the swarm's dial backoff for p: our connector paces
// redials itself, and the swarm's would hold a restarted peer off for minutes.
func (n *Node) clearBackoff(p peer.ID) {
	if sw, ok := n.host.Network().(*swarm.Swarm); ok {
		sw.Backoff().Clear(p)
	}
}

// received counts the packets that have arrived from p on either path.
func (n *Node) received(p peer.ID) uint64 {
	if c := n.transport.Stats(p); c != nil {
		return c.RxPackets.Load() + c.RxDatagrams.Load()
	}
	return 0
}
