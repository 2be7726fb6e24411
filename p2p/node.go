// Package p2p is the node's control plane: the libp2p host and its
// transports (QUIC, TCP), peer discovery (configured addresses, mDNS, the
// Kademlia DHT), the connector that keeps every configured peer connected
// on its best path, the address book, and what strangers may cost; it
// hands the packets to its tunnel.Transport.
package p2p

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p"
	dht "github.com/libp2p/go-libp2p-kad-dht"
	"github.com/libp2p/go-libp2p-kad-dht/dual"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/peerstore"
	"github.com/libp2p/go-libp2p/p2p/discovery/mdns"
	"github.com/libp2p/go-libp2p/p2p/net/swarm"
	"github.com/libp2p/go-libp2p/p2p/protocol/ping"
	ma "github.com/multiformats/go-multiaddr"
	manet "github.com/multiformats/go-multiaddr/net"

	"github.com/mynetwork/mynetwork/p2p/conns"
	"github.com/mynetwork/mynetwork/p2p/limits"
	"github.com/mynetwork/mynetwork/p2p/tunnel"
)

// MDNSService is the mDNS service name VPN nodes announce themselves under.
const MDNSService = "_mynetwork._udp"

const (
	dialTimeout   = 15 * time.Second
	directRetry   = 30 * time.Second
	directGrace   = 8 * time.Second  // DCUtR's own punch on a new relayed connection runs first
	findTimeout   = 10 * time.Second // FindPeer can hang to its deadline on relay-only peers
	maxRepunch    = 5
	pingInterval  = 10 * time.Second
	tcpRetry      = 5 * time.Minute // between moves of a LAN peer from QUIC to TCP
	pingTimeout   = 5 * time.Second
	silentRetry   = time.Second // the next ping after one failed
	redialYield   = 300 * time.Millisecond
	deadAfter     = 2 // failed pings, with no packets between, that close a connection
	minBackoff    = 500 * time.Millisecond
	maxBackoff    = 30 * time.Second
	protectTag    = "mynetwork-vpn-peer"
	userAgentName = "mynetwork"
)

// Peer is a configured VPN peer as the node needs it.
type Peer struct {
	ID    peer.ID
	Addrs []ma.Multiaddr // known addresses from the config; may be empty
}

// Options configure a Node. Bootstrap nil and empty both mean no DHT: the
// caller resolves "absent = public list" from the config.
type Options struct {
	Key       crypto.PrivKey
	Listen    []string
	Bootstrap []peer.AddrInfo
	MDNS      bool
	Peers     []Peer
	// Relays are extra relays besides the configured peers.
	Relays []peer.AddrInfo
	// Reachability is "public", "private", or "" / "auto" for AutoNAT.
	Reachability string
	// AddrBook is a file that remembers peers' addresses across restarts;
	// empty means none.
	AddrBook string
	// NoDatagrams turns the QUIC datagram path off, as in a node that
	// predates it; packets then all ride the stream.
	NoDatagrams bool
	MaxPacket   int
	// VirtioHeaders: the device's packets carry a virtio-net header, and
	// the node offers tunnel.GSOProtocol.
	VirtioHeaders bool
	Log           *slog.Logger
	// limits bound strangers' connections; 0s are the defaults.
	limits limits.Config
}

// Node is a running libp2p host with its discovery and packet transport.
type Node struct {
	host      host.Host
	kad       *dual.DHT
	mdns      mdns.Service
	transport *tunnel.Transport
	conns     *conns.Registry // the host's TCP connections, for the send gate
	log       *slog.Logger
	peers     map[peer.ID]chan struct{} // kick a peer's connector; fixed at New
	bootstrap []peer.AddrInfo
	relays    []peer.AddrInfo
	addrBook  string
	known     map[peer.ID]struct{} // peers, relays and bootstrap peers; fixed at New
	strangers *limits.Strangers

	bookMu sync.Mutex
	whyMu  sync.Mutex
	why    map[peer.ID]string // why a peer is not connected

	cancel    context.CancelFunc
	wg        sync.WaitGroup
	closeOnce sync.Once
}

// New creates the host, listening on opts.Listen, and the packet transport.
// It starts no background work; Start does.
func New(opts Options) (_ *Node, err error) {
	if opts.Key == nil {
		return nil, errors.New("p2p: a private key is required")
	}
	if opts.Log == nil {
		opts.Log = slog.Default()
	}
	n := &Node{log: opts.Log, peers: make(map[peer.ID]chan struct{}), bootstrap: opts.Bootstrap,
		relays: opts.Relays, addrBook: opts.AddrBook, conns: conns.NewRegistry(),
		why: make(map[peer.ID]string)}
	n.known = make(map[peer.ID]struct{})
	for _, p := range opts.Peers {
		n.peers[p.ID] = make(chan struct{}, 1)
		n.known[p.ID] = struct{}{}
	}
	for _, ai := range opts.Relays {
		n.known[ai.ID] = struct{}{}
	}
	for _, ai := range opts.Bootstrap {
		n.known[ai.ID] = struct{}{}
	}
	n.strangers = limits.NewStrangers(opts.limits, n.knows)
	rm, err := limits.NewResourceManager(slices.Collect(maps.Keys(n.known)), opts.limits.WithDefaults())
	if err != nil {
		return nil, fmt.Errorf("p2p: resource manager: %w", err)
	}
	h, err := libp2p.New(append(n.hostOptions(opts), libp2p.ResourceManager(rm))...)
	if err != nil {
		rm.Close()
		return nil, fmt.Errorf("start libp2p host on %s: %w", strings.Join(opts.Listen, ", "), err)
	}
	n.host = h
	n.strangers.Attach(h.Network())
	defer func() {
		if err != nil {
			n.Close()
		}
	}()
	ids := make([]peer.ID, 0, len(opts.Peers))
	for _, p := range opts.Peers {
		ids = append(ids, p.ID)
		h.Peerstore().AddAddrs(p.ID, p.Addrs, peerstore.PermanentAddrTTL)
		h.ConnManager().Protect(p.ID, protectTag)
	}
	for _, r := range opts.Relays {
		h.Peerstore().AddAddrs(r.ID, r.Addrs, peerstore.PermanentAddrTTL)
		h.ConnManager().Protect(r.ID, protectTag)
	}
	n.loadAddrBook()
	h.SetStreamHandler(AddrsProtocol, n.handleAddrs)
	n.transport, err = tunnel.New(h, ids, tunnel.Config{
		MaxPacket: opts.MaxPacket, VirtioHeaders: opts.VirtioHeaders, NoDatagrams: opts.NoDatagrams,
		Conn: n.bestConn, Conns: n.conns, Log: opts.Log,
	})
	if err != nil {
		return nil, err
	}
	// A node joins the DHT through its bootstrap peers; a public node with
	// none is itself a bootstrap node and serves the DHT to the others.
	if len(opts.Bootstrap) > 0 || opts.Reachability == "public" {
		mode := dht.ModeAuto
		if opts.Reachability == "public" {
			mode = dht.ModeServer
		}
		if n.kad, err = newDHT(h, mode, opts.Bootstrap); err != nil {
			return nil, fmt.Errorf("start DHT: %w", err)
		}
	}
	if opts.MDNS {
		n.mdns = mdns.NewMdnsService(h, MDNSService, mdnsNotifee{n})
	}
	return n, nil
}

// knows says whether p is a known peer: configured, a relay or a
// bootstrap peer. Other peers are strangers (see package limits).
func (n *Node) knows(p peer.ID) bool {
	_, ok := n.known[p]
	return ok
}

// Host returns the libp2p host.
func (n *Node) Host() host.Host { return n.host }

// Transport returns the packet transport.
func (n *Node) Transport() *tunnel.Transport { return n.transport }

// Start begins discovery and the connector for every configured peer.
func (n *Node) Start(ctx context.Context) error {
	ctx, n.cancel = context.WithCancel(ctx)
	n.host.Network().Notify(&network.NotifyBundle{
		ConnectedF: func(_ network.Network, c network.Conn) {
			if _, ok := n.peers[c.RemotePeer()]; ok {
				n.log.Info("connection to peer", "peer", c.RemotePeer(), "path", pathOf(c), "addr", c.RemoteMultiaddr())
			}
			n.connChanged(c.RemotePeer())
		},
		DisconnectedF: func(_ network.Network, c network.Conn) { n.connChanged(c.RemotePeer()) },
	})
	if n.mdns != nil {
		if err := n.mdns.Start(); err != nil {
			return fmt.Errorf("start mDNS: %w", err)
		}
	}
	if n.kad != nil && len(n.bootstrap) > 0 {
		n.wg.Add(1)
		go n.joinDHT(ctx)
	}
	for p, kick := range n.peers {
		n.wg.Add(1)
		go n.keepConnected(ctx, p, kick)
	}
	return nil
}

func (n *Node) connChanged(p peer.ID) {
	kick, ok := n.peers[p]
	if !ok {
		return
	}
	n.transport.ResetPeer(p)
	select {
	case kick <- struct{}{}:
	default:
	}
}

type mdnsNotifee struct{ n *Node }

func (m mdnsNotifee) HandlePeerFound(ai peer.AddrInfo) {
	if _, ok := m.n.peers[ai.ID]; !ok {
		return
	}
	m.n.host.Peerstore().AddAddrs(ai.ID, ai.Addrs, peerstore.TempAddrTTL)
	m.n.connChanged(ai.ID)
}

// joinDHT connects to the bootstrap peers and bootstraps the routing table,
// retrying while none is reachable.
func (n *Node) joinDHT(ctx context.Context) {
	defer n.wg.Done()
	backoff := minBackoff
	for {
		ok := 0
		for _, ai := range n.bootstrap {
			dctx, cancel := context.WithTimeout(ctx, dialTimeout)
			if err := n.host.Connect(dctx, ai); err == nil {
				ok++
			} else {
				n.log.Debug("bootstrap peer unreachable", "peer", ai.ID, "err", err)
			}
			cancel()
		}
		if ok > 0 {
			if err := n.kad.Bootstrap(ctx); err != nil {
				n.log.Warn("DHT bootstrap", "err", err)
			}
			return
		}
		if !sleep(ctx, backoff) {
			return
		}
		backoff = min(backoff*2, maxBackoff)
	}
}

// keepConnected dials a configured peer until connected, redials with
// backoff when it goes away, moves to better paths as they appear, and
// measures its RTT while connected. A relayed peer is retried for a direct
// path every directRetry: DCUtR tries once per relayed connection only.
func (n *Node) keepConnected(ctx context.Context, p peer.ID, kick chan struct{}) {
	defer n.wg.Done()
	backoff := minBackoff
	var told network.Conn // the connection our addresses were last sent on
	var nextDirect time.Time
	repunches := 0 // relayed connections closed to punch again
	silent := 0    // pings in a row that failed while nothing arrived from p
	var nextTCP time.Time
	lost := false // a connection went away and was not redialed yet
	for {
		wait := pingInterval
		if best := n.bestConn(p); best != nil {
			lost = true // if it goes away
			backoff = minBackoff
			n.prune(p)
			if best != told {
				told = best
				silent = 0 // failed pings count per connection
				n.sendAddrs(ctx, p)
				if pathOf(best) == PathRelay {
					// Closing the relayed connection or dialing the peer
					// while DCUtR punches on it makes the punch fail.
					nextDirect = time.Now().Add(directGrace)
				}
			}
			if pathOf(best) == PathRelay && time.Now().After(nextDirect) {
				nextDirect = time.Now().Add(directRetry)
				n.tryDirect(ctx, p, best, &repunches)
				continue
			}
			if n.movesToTCP(p, best) && time.Since(best.Stat().Opened) > time.Second && time.Now().After(nextTCP) {
				// A LAN peer reached over QUIC (its TCP listener was not up
				// yet when we dialed, say) moves to TCP, see preferQUIC: one
				// side closes the connection and the redial tries TCP first.
				nextTCP = time.Now().Add(tcpRetry)
				if n.lanTCPReachable(ctx, p) {
					n.log.Info("moving a LAN peer from QUIC to TCP", "peer", p)
					best.Close()
					continue
				}
			}
			// Anything that arrives while the ping is out also shows
			// the connection is alive: under load a ping can be slow.
			before := n.received(p)
			if n.measureRTT(ctx, best) || n.received(p) != before {
				silent = 0
			} else if silent++; silent < deadAfter {
				n.log.Debug("peer did not answer a ping", "peer", p, "addr", best.RemoteMultiaddr())
			} else {
				// The connection is dead (the peer crashed, its address
				// changed, the link went away) but the transport has not
				// noticed yet: it gives up only after 30-40 s. Close it,
				// and redial.
				n.log.Info("peer stopped answering; redialing", "peer", p, "addr", best.RemoteMultiaddr())
				for _, c := range n.host.Network().ConnsToPeer(p) {
					c.Close()
				}
				silent = 0
				continue
			}
			if silent > 0 {
				wait = silentRetry
			}
			if pathOf(best) == PathRelay {
				wait = max(min(wait, time.Until(nextDirect)), 100*time.Millisecond)
			}
			if n.movesToTCP(p, best) {
				tcpAt := max(time.Until(nextTCP), time.Until(best.Stat().Opened.Add(time.Second)))
				wait = max(min(wait, tcpAt+10*time.Millisecond), 100*time.Millisecond)
			}
		} else if lost && !n.leads(p) {
			// Both sides redial a lost connection. Two TCP dials between
			// the listen ports (libp2p dials from them) at once are one
			// simultaneous open that both take as outgoing, and its
			// security handshake fails: the side that does not lead lets
			// the other dial first.
			lost = false
			if !n.awaitConn(ctx, p, kick, redialYield) {
				return
			}
			continue
		} else if err := n.connect(ctx, p); err != nil {
			n.noteUnreachable(p, err)
			wait = backoff
			backoff = min(backoff*2, maxBackoff)
		} else {
			n.log.Info("connected to peer", "peer", p, "path", n.State(p).Path)
			n.saveAddrBook()
			continue
		}
		select {
		case <-ctx.Done():
			return
		case <-kick:
		case <-time.After(wait):
		}
	}
}

// leads says whether this node, and not p, acts where only one side of a
// pair must (closing a connection to rebuild it, redialing first): the
// one with the smaller peer ID.
func (n *Node) leads(p peer.ID) bool { return n.host.ID() < p }

// awaitConn waits up to d for a connection to p, and reports false if ctx
// ended meanwhile.
func (n *Node) awaitConn(ctx context.Context, p peer.ID, kick chan struct{}, d time.Duration) bool {
	deadline := time.After(d)
	for n.bestConn(p) == nil {
		select {
		case <-ctx.Done():
			return false
		case <-kick:
		case <-deadline:
			return true
		}
	}
	return true
}

// movesToTCP says whether this node moves p, reached over QUIC on a LAN
// path, to TCP (one side of the pair does: see leads).
func (n *Node) movesToTCP(p peer.ID, c network.Conn) bool {
	return pathOf(c) == PathLAN && isQUIC(c) && n.leads(p)
}

// lanTCPReachable reports whether p listens on TCP at a LAN address that
// accepts a connection right now (a plain TCP handshake, closed at once).
func (n *Node) lanTCPReachable(ctx context.Context, p peer.ID) bool {
	for _, a := range n.host.Peerstore().Addrs(p) {
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
		c, err := (&net.Dialer{}).DialContext(dctx, "tcp", na.String())
		cancel()
		if err == nil {
			c.Close()
			return true
		}
	}
	return false
}

// tryDirect looks for a direct path to a peer reached only through a relay:
// first by dialing its known direct addresses, then, if that fails, by
// closing the relayed connection so that the next one through the relay
// starts a new hole punch.
func (n *Node) tryDirect(ctx context.Context, p peer.ID, relayed network.Conn, repunches *int) {
	ctx, cancel := context.WithTimeout(ctx, dialTimeout)
	defer cancel()
	var direct []ma.Multiaddr
	for _, a := range n.host.Peerstore().Addrs(p) {
		if addrPath(a) != PathRelay {
			direct = append(direct, a)
		}
	}
	if len(direct) > 0 {
		n.clearBackoff(p)
		err := n.host.Connect(network.WithForceDirectDial(ctx, "mynetwork direct"), peer.AddrInfo{ID: p, Addrs: direct})
		if err == nil && n.State(p).Path != PathRelay {
			n.log.Info("direct path found", "peer", p, "path", n.State(p).Path)
			return
		}
	}
	// Only one side closes the relayed connection, so that the pair does
	// not redial the relay from both ends and punch on two connections.
	if *repunches < maxRepunch && n.leads(p) {
		*repunches++
		n.log.Debug("no direct path yet; reconnecting through the relay to punch again", "peer", p)
		relayed.Close()
	}
}

func (n *Node) connect(ctx context.Context, p peer.ID) error {
	ctx, cancel := context.WithTimeout(ctx, dialTimeout)
	defer cancel()
	ai := n.host.Peerstore().PeerInfo(p)
	if len(ai.Addrs) == 0 && n.kad != nil {
		fctx, fcancel := context.WithTimeout(ctx, findTimeout)
		found, err := n.kad.FindPeer(fctx, p)
		fcancel()
		if err != nil {
			return fmt.Errorf("not found in the DHT yet: %w", err)
		}
		ai = found
	}
	if len(ai.Addrs) == 0 {
		if n.kad == nil {
			return errors.New("no known address, and no DHT: give its addrs in the config, or bootstrapPeers")
		}
		return errors.New("no known address")
	}
	n.clearBackoff(p)
	return n.host.Connect(network.WithAllowLimitedConn(ctx, "mynetwork"), ai)
}

// clearBackoff forgets the swarm's dial backoff for p: our connector paces
// redials itself, and the swarm's would hold a restarted peer off for minutes.
func (n *Node) clearBackoff(p peer.ID) {
	if sw, ok := n.host.Network().(*swarm.Swarm); ok {
		sw.Backoff().Clear(p)
	}
}

// measureRTT pings p on the connection packets use (not the swarm's pick),
// records the round trip and reports whether p answered.
func (n *Node) measureRTT(ctx context.Context, c network.Conn) bool {
	ctx, cancel := context.WithTimeout(ctx, pingTimeout)
	defer cancel()
	s, err := conns.OpenStream(ctx, c, ping.ID)
	if err != nil {
		return false
	}
	deadline, _ := ctx.Deadline()
	s.SetDeadline(deadline)
	var out, in [ping.PingSize]byte
	rand.Read(out[:])
	start := time.Now()
	if _, err := s.Write(out[:]); err != nil {
		s.Reset() // a reset waits for nothing; a close may, on a dead connection
		return false
	}
	if _, err := io.ReadFull(s, in[:]); err != nil || in != out {
		s.Reset()
		return false
	}
	n.host.Peerstore().RecordLatency(c.RemotePeer(), time.Since(start))
	s.Close()
	return true
}

// received counts the packets that have arrived from p on either path.
func (n *Node) received(p peer.ID) uint64 {
	if c := n.transport.Stats(p); c != nil {
		return c.RxPackets.Load() + c.RxDatagrams.Load()
	}
	return 0
}

// PeerState is what the node knows of one configured peer right now.
type PeerState struct {
	Connected bool
	Addr      ma.Multiaddr // remote address of the connection in use
	Path      string       // PathLAN, PathDirect or PathRelay when connected
	Relay     peer.ID      // the relay, on PathRelay
	Why       string       // when not connected: why, if known
	RTT       time.Duration
}

// State reports a configured peer's connection, preferring a direct one.
func (n *Node) State(p peer.ID) PeerState {
	var st PeerState
	if c := n.bestConn(p); c != nil {
		st.Connected = true
		st.Addr = c.RemoteMultiaddr()
		st.Path = pathOf(c)
		if st.Path == PathRelay {
			st.Relay = relayOf(c)
		}
		st.RTT = n.host.Peerstore().LatencyEWMA(p)
	} else {
		n.whyMu.Lock()
		st.Why = n.why[p]
		n.whyMu.Unlock()
	}
	return st
}

func isRelayed(c network.Conn) bool { return pathOf(c) == PathRelay }

func sleep(ctx context.Context, d time.Duration) bool {
	select {
	case <-ctx.Done():
		return false
	case <-time.After(d):
		return true
	}
}

// Close stops discovery and the connectors, closes the packet transport and
// the host, in reverse start order.
func (n *Node) Close() error {
	var err error
	n.closeOnce.Do(func() {
		if n.cancel != nil {
			n.cancel()
		}
		if n.mdns != nil {
			n.mdns.Close()
		}
		n.wg.Wait()
		n.saveAddrBook()
		if n.kad != nil {
			n.kad.Close()
		}
		if n.transport != nil {
			n.transport.Close()
		}
		err = n.host.Close()
	})
	return err
}
