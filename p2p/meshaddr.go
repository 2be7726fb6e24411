package p2p

import (
	"net/netip"

	"github.com/libp2p/go-libp2p/core/control"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"
	manet "github.com/multiformats/go-multiaddr/net"

	"github.com/mynetwork/mynetwork/config"
	"github.com/mynetwork/mynetwork/p2p/limits"
)

// inMesh reports whether a multiaddr points into the VPN's own ranges. Such
// an address is only reachable through the tunnel, so libp2p must never
// announce or dial it: the tunnel would then carry itself.
func inMesh(a ma.Multiaddr) bool {
	addr, ok := ipOf(a)
	return ok && (config.MeshPrefix4.Contains(addr) || config.MeshPrefix6.Contains(addr))
}

// ipOf is the IP address a multiaddr starts with, if it starts with one.
func ipOf(a ma.Multiaddr) (netip.Addr, bool) {
	ip, err := manet.ToIP(a)
	if err != nil {
		return netip.Addr{}, false
	}
	addr, ok := netip.AddrFromSlice(ip)
	return addr.Unmap(), ok
}

// dialable parses multiaddrs learned from a peer or a file, keeping the
// valid ones outside the mesh.
func dialable(list []string) []ma.Multiaddr {
	var out []ma.Multiaddr
	for _, s := range list {
		if a, err := ma.NewMultiaddr(s); err == nil && !inMesh(a) {
			out = append(out, a)
		}
	}
	return out
}

// withoutMesh is the host's address factory: it drops mesh addresses.
func withoutMesh(addrs []ma.Multiaddr) []ma.Multiaddr {
	out := addrs[:0:0]
	for _, a := range addrs {
		if !inMesh(a) {
			out = append(out, a)
		}
	}
	return out
}

// meshGater refuses dials to mesh addresses, whoever learned them,
// strangers' inbound connections beyond their limits (see strangers), and
// every connection with a blocked peer (a revoked member).
type meshGater struct {
	strangers *limits.Strangers
	blocked   func(peer.ID) bool
}

func (g meshGater) InterceptPeerDial(p peer.ID) bool               { return !g.blocked(p) }
func (meshGater) InterceptAddrDial(_ peer.ID, a ma.Multiaddr) bool { return !inMesh(a) }
func (meshGater) InterceptAccept(network.ConnMultiaddrs) bool      { return true }
func (g meshGater) InterceptSecured(_ network.Direction, p peer.ID, _ network.ConnMultiaddrs) bool {
	return !g.blocked(p)
}

// InterceptUpgraded sees a connection when the resource manager has let it
// in too, and just before the swarm adds it.
func (g meshGater) InterceptUpgraded(c network.Conn) (bool, control.DisconnectReason) {
	return c.Stat().Direction != network.DirInbound || g.strangers.Knows(c.RemotePeer()) || g.strangers.Admit(c), 0
}
