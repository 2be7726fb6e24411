// Package p2p keeps this node connected to each of its configured peers on
// the best path there is: LAN, then direct, then through a relay. It is the
// node's control plane: the libp2p host (QUIC, TCP), discovery (configured
// addresses, the address book, mDNS, the Kademlia DHT), a connector per
// peer that dials, redials, punches holes and pings, the choice of path,
// and the relay service for configured peers only. p2p/limits bounds what
// strangers may cost; p2p/tunnel's Transport carries the packets.
package p2p

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/libp2p/go-libp2p"
	dht "github.com/libp2p/go-libp2p-kad-dht"
	"github.com/libp2p/go-libp2p-kad-dht/dual"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/event"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/peerstore"
	"github.com/libp2p/go-libp2p/p2p/discovery/mdns"
	rcmgr "github.com/libp2p/go-libp2p/p2p/host/resource-manager"
	"github.com/libp2p/go-libp2p/p2p/protocol/ping"
	"github.com/libp2p/go-libp2p/p2p/transport/quicreuse"
	ma "github.com/multiformats/go-multiaddr"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/mynetwork/mynetwork/p2p/conns"
	"github.com/mynetwork/mynetwork/p2p/limits"
	"github.com/mynetwork/mynetwork/p2p/tunnel"
)

// MDNSService is the mDNS service name VPN nodes announce themselves under.
const MDNSService = "_mynetwork._udp"

// pingInterval is the wait between a connector's liveness rounds on a live
// connection (a test shortens it).
var pingInterval = 10 * time.Second

const (
	dialTimeout   = 15 * time.Second
	directRetry   = 30 * time.Second
	directGrace   = 8 * time.Second  // DCUtR's own punch on a new relayed connection runs first
	findTimeout   = 10 * time.Second // FindPeer can hang to its deadline on relay-only peers
	maxRepunch    = 5
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
	// Keep keeps the peer connected on a node that connects on demand
	// (an exit node in use: the first packets of every new flow go there).
	Keep bool
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
	// Metrics is where libp2p registers its Prometheus metrics (resource
	// manager, swarm, identify, relay, ...); nil turns them off, so that
	// nothing fills the process-wide default registry.
	Metrics prometheus.Registerer
	// Control, if set, runs on every socket the node opens for itself, and
	// ReuseControl on a TCP dial from a listen port (see socketOptions).
	Control, ReuseControl SocketControl
	// IdleTimeout, if not 0, makes the node connect to a configured peer on
	// demand: when it has packets for it (or the peer connects), and close
	// the connection after this long without packets either way. 0 keeps
	// every configured peer connected all the time.
	IdleTimeout time.Duration
	// OnConnected, if set, is called with a peer each time the node gets
	// its first connection to it; it must not block.
	OnConnected func(peer.ID)
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
	// peers has one connector per configured peer, known the peers,
	// relays and bootstrap peers: both replaced whole by SetPeers and read
	// without locks (the gater and the relay ACL ask on every connection).
	peers     atomic.Pointer[map[peer.ID]*connector]
	known     atomic.Pointer[map[peer.ID]struct{}]
	blocked   atomic.Pointer[map[peer.ID]struct{}] // SetBlocked's; nil: none
	bootstrap []peer.AddrInfo
	relays    []peer.AddrInfo
	addrBook  string
	strangers *limits.Strangers
	rm        *limits.Manager         // its allowlist follows the known peers
	rcm       network.ResourceManager // rm as the host has it (autonatGate)
	setMu     sync.Mutex              // serialises SetPeers
	ctx       context.Context         // Start's: new connectors run under it

	bookMu sync.Mutex
	whyMu  sync.Mutex
	why    map[peer.ID]string // why a peer is not connected
	bootMu sync.Mutex
	boot   []BootstrapState // in n.bootstrap's order; written by joinDHT

	onConnected func(peer.ID)          // Options.OnConnected, or nil
	idleTimeout time.Duration          // Options.IdleTimeout
	quicCM      *quicreuse.ConnManager // with Options.Control: closed after the host

	// The connectors' liveness rounds and the pings they sent, all peers
	// together (for tests: see connector.heardFrom).
	liveRounds, livePings atomic.Uint64

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
	n := &Node{log: opts.Log, bootstrap: opts.Bootstrap,
		relays: opts.Relays, addrBook: opts.AddrBook, conns: conns.NewRegistry(), onConnected: opts.OnConnected,
		idleTimeout: opts.IdleTimeout,
		why:         make(map[peer.ID]string), boot: bootstrapStates(opts.Bootstrap)}
	peers := make(map[peer.ID]*connector)
	for _, p := range opts.Peers {
		peers[p.ID] = newConnector(n, p.ID)
		peers[p.ID].keep.Store(p.Keep)
	}
	n.peers.Store(&peers)
	known := n.knownWith(opts.Peers)
	n.known.Store(&known)
	n.strangers = limits.NewStrangers(opts.limits, n.knows)
	var rmOpts []rcmgr.Option
	if opts.Metrics == nil {
		rmOpts = append(rmOpts, rcmgr.WithMetricsDisabled())
	}
	rm, err := limits.NewResourceManager(slices.Collect(maps.Keys(known)), n.knows, opts.limits.WithDefaults(), rmOpts...)
	if err != nil {
		return nil, fmt.Errorf("p2p: resource manager: %w", err)
	}
	n.rm = rm
	n.rcm = autonatGate{rm, n.knows}
	h, err := libp2p.New(append(n.hostOptions(opts), libp2p.ResourceManager(n.rcm))...)
	if err != nil {
		if n.quicCM != nil {
			n.quicCM.Close()
		}
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
	ids := n.addConfigured(opts)
	n.loadAddrBook()
	h.SetStreamHandler(AddrsProtocol, n.handleAddrs)
	h.SetStreamHandler(ping.ID, n.answerPing)
	n.transport, err = tunnel.New(h, ids, tunnel.Config{
		MaxPacket: opts.MaxPacket, VirtioHeaders: opts.VirtioHeaders, NoDatagrams: opts.NoDatagrams,
		Conn: n.bestConn, Conns: n.conns, Demand: n.demandFunc(), Log: opts.Log,
	})
	if err != nil {
		return nil, err
	}
	if err = n.newDiscovery(opts); err != nil {
		return nil, err
	}
	return n, nil
}

// addConfigured puts the configured peers' and relays' addresses into the
// peerstore for good, and keeps the connection manager off their
// connections; it returns the peers' IDs.
func (n *Node) addConfigured(opts Options) []peer.ID {
	ids := make([]peer.ID, 0, len(opts.Peers))
	for _, p := range opts.Peers {
		ids = append(ids, p.ID)
		n.host.Peerstore().AddAddrs(p.ID, p.Addrs, peerstore.PermanentAddrTTL)
		n.host.ConnManager().Protect(p.ID, protectTag)
	}
	for _, r := range opts.Relays {
		n.host.Peerstore().AddAddrs(r.ID, r.Addrs, peerstore.PermanentAddrTTL)
		n.host.ConnManager().Protect(r.ID, protectTag)
	}
	return ids
}

// newDiscovery creates the DHT and mDNS as opts ask; Start starts mDNS
// and the DHT's join.
func (n *Node) newDiscovery(opts Options) error {
	// A node joins the DHT through its bootstrap peers; a public node with
	// none is itself a bootstrap node and serves the DHT to the others.
	if len(opts.Bootstrap) > 0 || opts.Reachability == "public" {
		mode := dht.ModeAuto
		if opts.Reachability == "public" {
			mode = dht.ModeServer
		}
		kad, err := newDHT(n.host, mode, opts.Bootstrap)
		if err != nil {
			return fmt.Errorf("start DHT: %w", err)
		}
		n.kad = kad
	}
	if opts.MDNS {
		n.mdns = mdns.NewMdnsService(n.host, MDNSService, mdnsNotifee{n})
	}
	return nil
}

// knows says whether p is a known peer: configured, a relay or a
// bootstrap peer. Other peers are strangers (see package limits).
func (n *Node) knows(p peer.ID) bool {
	_, ok := (*n.known.Load())[p]
	return ok
}

// connector is a configured peer's connector, or nil.
func (n *Node) connector(p peer.ID) *connector { return (*n.peers.Load())[p] }

// configured says whether p is a configured peer.
func (n *Node) configured(p peer.ID) bool { return n.connector(p) != nil }

// Transport returns the packet transport.
func (n *Node) Transport() *tunnel.Transport { return n.transport }

// Start begins discovery and the connector for every configured peer.
func (n *Node) Start(ctx context.Context) error {
	ctx, n.cancel = context.WithCancel(ctx)
	n.host.Network().Notify(&network.NotifyBundle{
		ConnectedF: func(_ network.Network, c network.Conn) {
			if n.configured(c.RemotePeer()) {
				// The connector logs a change of path at Info.
				n.log.Debug("connection to peer", "peer", c.RemotePeer(), "path", pathOf(c), "addr", c.RemoteMultiaddr())
			}
			n.connChanged(c.RemotePeer())
			if n.onConnected != nil && len(n.host.Network().ConnsToPeer(c.RemotePeer())) == 1 {
				n.onConnected(c.RemotePeer())
			}
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
	n.setMu.Lock()
	n.ctx = ctx
	for _, c := range *n.peers.Load() {
		c.start(ctx)
	}
	n.setMu.Unlock()
	return n.watchSelf(ctx)
}

// watchSelf wakes every connector when this node's reachability or its
// own addresses change: AutoNAT finding the node private, then a relay
// reservation, is what makes a peer behind NAT reachable, and the
// connectors' backoff would otherwise keep them waiting up to maxBackoff.
func (n *Node) watchSelf(ctx context.Context) error {
	sub, err := n.host.EventBus().Subscribe([]any{new(event.EvtLocalReachabilityChanged), new(event.EvtLocalAddressesUpdated)})
	if err != nil {
		return fmt.Errorf("watch own addresses: %w", err)
	}
	n.wg.Add(1)
	go func() {
		defer n.wg.Done()
		defer sub.Close()
		for {
			select {
			case <-ctx.Done():
				return
			case <-sub.Out():
				for _, c := range *n.peers.Load() {
					c.wake()
				}
			}
		}
	}()
	return nil
}

func (n *Node) connChanged(p peer.ID) {
	c := n.connector(p)
	if c == nil {
		return
	}
	n.transport.ResetPeer(p)
	c.wake()
}

type mdnsNotifee struct{ n *Node }

func (m mdnsNotifee) HandlePeerFound(ai peer.AddrInfo) {
	if !m.n.configured(ai.ID) {
		return
	}
	// Kept an hour, not libp2p's 2 min for such addresses: mDNS reports a
	// peer again only once its record's TTL (3200 s) has passed, and a
	// node that connects on demand may want the peer long after.
	m.n.host.Peerstore().AddAddrs(ai.ID, ai.Addrs, peerstore.AddressTTL)
	m.n.connChanged(ai.ID)
}

// PeerState is what the node knows of one configured peer right now.
type PeerState struct {
	Connected bool
	Addr      ma.Multiaddr // remote address of the connection in use
	Path      string       // PathLAN, PathDirect or PathRelay when connected
	Relay     peer.ID      // the relay, on PathRelay
	Why       string       // when not connected: why, if known
	Idle      bool         // not connected because nothing needed it (on demand)
	RTT       time.Duration
}

// Addrs are the addresses others can reach the node at: those it
// announces, without loopback and link-local ones, which only this
// machine or this link could dial.
func (n *Node) Addrs() []ma.Multiaddr {
	var out []ma.Multiaddr
	for _, a := range n.host.Addrs() {
		if forOthers(a) {
			out = append(out, a)
		}
	}
	return out
}

// ConnectedPeers are the peers the node has a connection to, configured
// or not.
func (n *Node) ConnectedPeers() []peer.ID { return n.host.Network().Peers() }

// ConnAddrs are the remote addresses of the node's connections to p.
func (n *Node) ConnAddrs(p peer.ID) []ma.Multiaddr {
	var out []ma.Multiaddr
	for _, c := range n.host.Network().ConnsToPeer(p) {
		out = append(out, c.RemoteMultiaddr())
	}
	return out
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
		st.Idle = st.Why == whyIdle
	}
	return st
}

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
		n.setMu.Lock()
		if n.cancel != nil {
			n.cancel()
		}
		n.setMu.Unlock()
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
		if n.quicCM != nil {
			err = errors.Join(err, n.quicCM.Close())
		}
	})
	return err
}
