package p2p

import (
	"fmt"
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
// refuses strangers' connections beyond connLimits, and the resource
// manager keeps limits of their own for known peers.

// connLimits bound strangers' inbound connections. Outbound ones are this
// node's own doing (DHT lookups), and libp2p's connection manager trims
// them.
type connLimits struct {
	// strangers is how many inbound connections strangers may hold
	// together, and perIP how many of them may come from one IPv4 address
	// or IPv6 /64 (one host, whose temporary addresses rotate within its
	// /64), so that one host cannot take them all.
	strangers, perIP int
	// systemIn, if not 0, replaces libp2p's system limit on inbound
	// connections (tests lower it, so that a small flood would reach it).
	systemIn int
}

// defaultConnLimits: libp2p's own limit per address is 8 (loopback
// exempt); half of it leaves a host room for two transports and a redial.
// 128 strangers leave a bootstrap node room for the DHT queries of a mesh
// of a hundred nodes that do not list it; libp2p's system limit on inbound
// connections is 64 with 1 GiB of memory and 128 with 8 GiB, so on smaller
// machines that binds first (known peers have the allowlist there).
var defaultConnLimits = connLimits{strangers: 128, perIP: 4}

// pendingFor bounds how long a stranger's connection that the gater let
// through counts as pending, before it shows in the swarm's list (one
// that closes in between stops counting then).
const pendingFor = time.Second

// withDefaults fills the limits left 0.
func (l connLimits) withDefaults() connLimits {
	if l.strangers == 0 {
		l.strangers = defaultConnLimits.strangers
	}
	if l.perIP == 0 {
		l.perIP = defaultConnLimits.perIP
	}
	return l
}

// newResourceManager is libp2p's default resource manager (limits scaled
// to the machine's memory) with the known peers allowlisted at any
// address: when the system or transient limits are reached, a new
// connection counts against separate, allowlisted limits until its
// handshake shows who it is; a stranger then goes back to the ordinary
// limits, and is refused if they are full: strangers hold allowlisted
// limits only while they shake hands. Relayed connections among known peers are allowlisted
// the same way (their address is the relay's).
func newResourceManager(known []peer.ID, l connLimits) (network.ResourceManager, error) {
	scaling := rcmgr.DefaultLimits
	libp2p.SetDefaultServiceLimits(&scaling)
	limits := scaling.AutoScale()
	if l.systemIn > 0 {
		limits = rcmgr.PartialLimitConfig{
			System: rcmgr.ResourceLimits{ConnsInbound: rcmgr.LimitVal(l.systemIn)},
		}.Build(limits)
	}
	var allow []ma.Multiaddr
	for _, p := range known {
		for _, any := range []string{"/ip4/0.0.0.0/ipcidr/0", "/ip6/::/ipcidr/0"} {
			a, err := ma.NewMultiaddr(any + "/p2p/" + p.String())
			if err != nil {
				return nil, fmt.Errorf("allowlist %s: %w", p, err)
			}
			allow = append(allow, a)
		}
	}
	return rcmgr.NewResourceManager(rcmgr.NewFixedLimiter(limits), rcmgr.WithAllowlistedMultiaddrs(allow))
}

// strangers counts strangers' inbound connections against connLimits, for
// the connection gater: those in the swarm, and those let through that do
// not show there yet.
type strangers struct {
	limits connLimits
	known  func(peer.ID) bool

	mu      sync.Mutex
	net     network.Network // nil until the host exists
	pending []pendingConn
}

type pendingConn struct {
	conn   network.Conn
	source netip.Prefix // invalid for a relayed connection
	until  time.Time
}

// attach gives s the host's network, whose connections it counts.
func (s *strangers) attach(nw network.Network) {
	s.mu.Lock()
	s.net = nw
	s.mu.Unlock()
}

// admit says whether a stranger's new inbound connection c fits the
// limits; if it does, it counts as pending until it shows in the swarm.
func (s *strangers) admit(c network.Conn) bool {
	src := sourceOf(c.RemoteMultiaddr())
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
				count(sourceOf(lc.RemoteMultiaddr()))
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
	if total >= s.limits.strangers || same >= s.limits.perIP {
		return false
	}
	s.pending = append(s.pending, pendingConn{c, src, now.Add(pendingFor)})
	return true
}

// sourceOf is the network a connection's remote address counts against
// for perIP; invalid for a relayed connection, whose address is the
// relay's.
func sourceOf(remote ma.Multiaddr) netip.Prefix {
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
