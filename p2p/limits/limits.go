// Package limits bounds what strangers (peers that are not configured, not
// relays, not bootstrap peers) can make a node hold: inbound connections
// in total and per source network, at the connection gater, and streams
// and memory per stranger in libp2p's resource manager, with the known
// peers allowlisted so that strangers never lock them out.
package limits

import (
	"net/netip"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	rcmgr "github.com/libp2p/go-libp2p/p2p/host/resource-manager"
	ma "github.com/multiformats/go-multiaddr"
	manet "github.com/multiformats/go-multiaddr/net"
)

// Strangers are the peers a node does not know: not configured, not relays,
// not bootstrap peers. They are not refused, since the DHT, identify and
// AutoNAT need them to connect (a bootstrap node serves the DHT to members
// of the mesh that it does not list), but bounded: 252 connections from
// strangers (six per source address, redialing) once filled libp2p's limit
// on inbound connections, which scales with the machine's memory, and a
// configured peer got no packet through for 30 s. Now the connection gater
// refuses strangers' connections beyond Config, and the resource
// manager keeps limits of their own for known peers: connections that
// find the system's limits full count against the allowlisted ones, and
// strangers' streams and memory are capped per peer, with the system's
// limits raised by what strangers may hold together (see
// NewResourceManager).

// Config bound strangers' inbound connections. Outbound ones are this
// node's own doing (DHT lookups), and libp2p's connection manager trims
// them.
type Config struct {
	// Strangers is how many inbound connections strangers may hold
	// together, and PerIP how many of them may come from one IPv4 address
	// or IPv6 /64 (one host, whose temporary addresses rotate within its
	// /64), so that one host cannot take them all.
	Strangers, PerIP int
	// SystemIn, if not 0, replaces libp2p's system limit on inbound
	// connections (tests lower it, so that a small flood would reach it).
	SystemIn int
	// SystemStreams, if not 0, replaces libp2p's system and transient
	// limits on inbound streams, before strangers' share is added (tests
	// lower it, so that a small flood would fill it).
	SystemStreams int
}

// StrangerPeer caps each stranger's streams, both ways, and the memory
// they reserve (its connections keep libp2p's limits). The memory holds
// 16 streams (yamux reserves 256 KiB of receive window for each, more as
// a window grows if the limits allow) and the small messages of
// identify, the DHT and AutoNAT. A stranger needs a few streams: one
// each for identify, a DHT query, AutoNAT.
// Known peers keep libp2p's default per-peer limits (256 inbound streams
// and 64 MiB at least).
var StrangerPeer = rcmgr.BaseLimit{
	StreamsInbound:  8,
	StreamsOutbound: 8,
	Streams:         16,
	Memory:          5 << 20,
}

// defaults: libp2p's own limit per address is 8 (loopback
// exempt); half of it leaves a host room for two transports and a redial.
// 128 strangers leave a bootstrap node room for the DHT queries of a mesh
// of a hundred nodes that do not list it; libp2p's system limit on inbound
// connections is 64 with 1 GiB of memory and 128 with 8 GiB, so on smaller
// machines that binds first (known peers have the allowlist there).
var defaults = Config{Strangers: 128, PerIP: 4}

// pendingFor bounds how long a stranger's connection that the gater let
// through counts as pending, before it shows in the swarm's list (one
// that closes in between stops counting then).
const pendingFor = time.Second

// WithDefaults fills the limits left 0.
func (l Config) WithDefaults() Config {
	if l.Strangers == 0 {
		l.Strangers = defaults.Strangers
	}
	if l.PerIP == 0 {
		l.PerIP = defaults.PerIP
	}
	return l
}

// NewResourceManager is libp2p's default resource manager (limits scaled
// to the machine's memory) with room that strangers cannot take from
// known peers; opts are passed on (its metrics, on or off).
//
// Connections: the known peers are allowlisted at any address: when the
// system or transient limits are reached, a new connection counts against
// separate, allowlisted limits until its handshake shows who it is; a
// stranger then goes back to the ordinary limits, and is refused if they
// are full: strangers hold allowlisted limits only while they shake
// hands. Relayed connections among known peers are allowlisted the same
// way (their address is the relay's).
//
// Streams: the allowlist does not cover them. rcmgr charges every
// stream, an allowlisted peer's too, to its peer, the transient scope
// (until its protocol is chosen), its protocol and service, and the
// ordinary system scope; yamux reserves its windows in the peer's scope,
// which is charged to the ordinary system scope as well. And when yamux
// cannot reserve an inbound stream's window, it closes the whole
// connection. With libp2p's per-peer limits (256 inbound streams and
// 64 MiB at least), 4 strangers holding streams filled the system's 1024
// inbound streams (with 1 GiB of memory), 2 its 128 MiB, and then a
// configured peer's packet stream or ping failed (with memory full, its
// connection too). So:
//   - each stranger has StrangerPeer's limits (8 inbound streams, 16 in
//     all, 5 MiB), the known peers libp2p's default per-peer limits;
//   - strangers are at most S = the gater's 128 with inbound connections
//     plus those this node dialed, at most libp2p's system limit on
//     outbound connections (128 with 1 GiB of memory, 384 with 16 GiB):
//     S = 256 to 512 peers. Together they can hold 8·S inbound streams
//     (2048 to 4096), 16·S streams and reserve 5 MiB·S (1.25 to 2.5 GiB,
//     almost all of it yamux windows of 256 KiB, allocated only as data
//     comes in);
//   - the system and transient limits on streams are libp2p's plus these,
//     so the known peers keep libp2p's whole limits whatever strangers
//     hold; the system's memory is libp2p's plus twice theirs, since
//     yamux grows a window only while the scope is less than half full;
//   - the protocols' and services' own totals (the ping service's 64
//     inbound streams, 2 per peer, identify's 64, 16 per peer, the DHT's
//     512, 64 per peer) are lifted: 32 strangers would fill ping's, 4
//     identify's. Their limits per peer stay.
//
// The known peers can change at run time: isKnown says who they are now,
// for the peer scopes made from here on, and SetKnown updates the
// allowlist and a peer's scope when one joins or leaves.
func NewResourceManager(known []peer.ID, isKnown func(peer.ID) bool, l Config, opts ...rcmgr.Option) (*Manager, error) {
	scaling := rcmgr.DefaultLimits
	libp2p.SetDefaultServiceLimits(&scaling)
	limits := scaling.AutoScale()
	if l.SystemIn > 0 || l.SystemStreams > 0 {
		var system, transient rcmgr.ResourceLimits
		if l.SystemIn > 0 {
			system.ConnsInbound = rcmgr.LimitVal(l.SystemIn)
		}
		if l.SystemStreams > 0 {
			system.StreamsInbound = rcmgr.LimitVal(l.SystemStreams)
			transient.StreamsInbound = rcmgr.LimitVal(l.SystemStreams)
		}
		limits = rcmgr.PartialLimitConfig{System: system, Transient: transient}.Build(limits)
	}
	knownPeer := rcmgr.NewFixedLimiter(limits).GetPeerLimits("") // libp2p's own, before strangersShare
	limits = strangersShare(limits, known, l.Strangers)
	var allow []ma.Multiaddr
	for _, p := range known {
		as, err := anywhere(p)
		if err != nil {
			return nil, err
		}
		allow = append(allow, as...)
	}
	lim := knownLimiter{Limiter: rcmgr.NewFixedLimiter(limits), known: isKnown, peer: knownPeer}
	rm, err := rcmgr.NewResourceManager(lim, append(opts, rcmgr.WithAllowlistedMultiaddrs(allow))...)
	if err != nil {
		return nil, err
	}
	return &Manager{ResourceManager: rm, lim: lim}, nil
}

// strangersShare gives strangers StrangerPeer's limits and the known
// peers libp2p's, adds what strangers may hold together to the system and
// transient limits, and lifts the protocols' and services' totals (see
// NewResourceManager).
func strangersShare(limits rcmgr.ConcreteLimitConfig, known []peer.ID, inbound int) rcmgr.ConcreteLimitConfig {
	cfg := limits.ToPartialLimitConfig()
	peers := inbound + int(cfg.System.ConnsOutbound)
	cfg.Peer = make(map[peer.ID]rcmgr.ResourceLimits, len(known))
	for _, p := range known {
		cfg.Peer[p] = cfg.PeerDefault
	}
	cfg.PeerDefault.StreamsInbound = rcmgr.LimitVal(StrangerPeer.StreamsInbound)
	cfg.PeerDefault.StreamsOutbound = rcmgr.LimitVal(StrangerPeer.StreamsOutbound)
	cfg.PeerDefault.Streams = rcmgr.LimitVal(StrangerPeer.Streams)
	cfg.PeerDefault.Memory = rcmgr.LimitVal64(StrangerPeer.Memory)
	for _, r := range []*rcmgr.ResourceLimits{&cfg.System, &cfg.Transient} {
		r.StreamsInbound += rcmgr.LimitVal(peers * StrangerPeer.StreamsInbound)
		r.StreamsOutbound += rcmgr.LimitVal(peers * StrangerPeer.StreamsOutbound)
		r.Streams += rcmgr.LimitVal(peers * StrangerPeer.Streams)
	}
	cfg.System.Memory += rcmgr.LimitVal64(2 * int64(peers) * StrangerPeer.Memory)
	cfg.Transient.Memory += rcmgr.LimitVal64(int64(peers) * StrangerPeer.Memory)
	lift := func(r *rcmgr.ResourceLimits) {
		r.StreamsInbound, r.StreamsOutbound, r.Streams = rcmgr.Unlimited, rcmgr.Unlimited, rcmgr.Unlimited
		r.Memory = rcmgr.Unlimited64
	}
	lift(&cfg.ServiceDefault)
	lift(&cfg.ProtocolDefault)
	for k, r := range cfg.Service {
		lift(&r)
		cfg.Service[k] = r
	}
	for k, r := range cfg.Protocol {
		lift(&r)
		cfg.Protocol[k] = r
	}
	return cfg.Build(limits)
}

// Strangers counts strangers' inbound connections against Config, for
// the connection gater: those in the swarm, and those let through that do
// not show there yet.
type Strangers struct {
	limits Config
	known  func(peer.ID) bool

	mu      sync.Mutex
	net     network.Network // nil until the host exists
	pending []pendingConn
}

// NewStrangers counts strangers' connections against l (its defaults
// filled in); known says who is not a stranger.
func NewStrangers(l Config, known func(peer.ID) bool) *Strangers {
	return &Strangers{limits: l.WithDefaults(), known: known}
}

// Knows says whether p is a known peer, not a stranger.
func (s *Strangers) Knows(p peer.ID) bool { return s.known(p) }

type pendingConn struct {
	conn   network.Conn
	source netip.Prefix // invalid for a relayed connection
	until  time.Time
}

// Attach gives s the host's network, whose connections it counts.
func (s *Strangers) Attach(nw network.Network) {
	s.mu.Lock()
	s.net = nw
	s.mu.Unlock()
}

// Admit says whether a stranger's new inbound connection c fits the
// limits; if it does, it counts as pending until it shows in the swarm.
func (s *Strangers) Admit(c network.Conn) bool {
	src := SourceOf(c.RemoteMultiaddr())
	now := time.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	total, same := 0, 0
	count := func(from netip.Prefix) {
		total++
		if src.IsValid() && from == src {
			same++
		}
	}
	live := make(map[network.Conn]bool)
	if s.net != nil {
		for _, lc := range s.net.Conns() {
			if lc.Stat().Direction == network.DirInbound && !s.known(lc.RemotePeer()) {
				live[lc] = true
				count(SourceOf(lc.RemoteMultiaddr()))
			}
		}
	}
	kept := s.pending[:0]
	for _, p := range s.pending {
		if !live[p.conn] && now.Before(p.until) {
			kept = append(kept, p)
			count(p.source)
		}
	}
	s.pending = kept
	if total >= s.limits.Strangers || same >= s.limits.PerIP {
		return false
	}
	s.pending = append(s.pending, pendingConn{c, src, now.Add(pendingFor)})
	return true
}

// SourceOf is the network a connection's remote address counts against
// for perIP; invalid for a relayed connection, whose address is the
// relay's.
func SourceOf(remote ma.Multiaddr) netip.Prefix {
	if _, err := remote.ValueForProtocol(ma.P_CIRCUIT); err == nil {
		return netip.Prefix{}
	}
	ip, err := manet.ToIP(remote)
	if err != nil {
		return netip.Prefix{}
	}
	addr, ok := netip.AddrFromSlice(ip)
	if !ok {
		return netip.Prefix{}
	}
	addr = addr.Unmap()
	bits := 32
	if addr.Is6() {
		bits = 64
	}
	p, _ := addr.Prefix(bits)
	return p
}
