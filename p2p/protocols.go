package p2p

import (
	"context"
	"slices"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
	ma "github.com/multiformats/go-multiaddr"
)

// ID is the node's peer ID.
func (n *Node) ID() peer.ID { return n.host.ID() }

// Handle serves a protocol of the daemon's own (membership) on the host.
// Strangers may open its streams too, within their limits (package
// limits): the handler decides what it takes from whom.
func (n *Node) Handle(proto protocol.ID, h network.StreamHandler) {
	n.host.SetStreamHandler(proto, h)
}

// NewStream opens a stream of proto to p on a connection the node has
// (relayed ones too); it never dials.
func (n *Node) NewStream(ctx context.Context, p peer.ID, proto protocol.ID) (network.Stream, error) {
	ctx = network.WithNoDial(network.WithAllowLimitedConn(ctx, string(proto)), string(proto))
	return n.host.NewStream(ctx, p, proto)
}

// PeerAddrs are the addresses the node knows for p, to pass on to
// another node: at most max, see shareable.
func (n *Node) PeerAddrs(p peer.ID, max int) []ma.Multiaddr {
	return shareable(n.host.Peerstore().Addrs(p), max)
}

// OwnAddrs are the node's own addresses to put in an invitation or pass
// on: at most max, see shareable.
// The host's announced addresses (public ones it learned) come first,
// then those of its interfaces.
func (n *Node) OwnAddrs(max int) []ma.Multiaddr {
	addrs := n.host.Addrs()
	if ifaces, err := n.host.Network().InterfaceListenAddresses(); err == nil {
		for _, a := range ifaces {
			if !slices.ContainsFunc(addrs, a.Equal) {
				addrs = append(addrs, a)
			}
		}
	}
	return shareable(addrs, max)
}

// shareable are the IP addresses of addrs another machine could dial
// (see forOthers), at most max; when there are none, the loopback ones, for a
// mesh on one machine (elsewhere a loopback address dials a port that
// fails the handshake as the wrong peer, or nothing).
func shareable(addrs []ma.Multiaddr, max int) []ma.Multiaddr {
	var out, loop []ma.Multiaddr
	for _, a := range addrs {
		ip, ok := ipOf(a)
		switch {
		case !ok: // a bare /p2p-circuit: the peer finds relays itself
		case ip.IsLoopback():
			loop = append(loop, a)
		case forOthers(a):
			out = append(out, a)
		}
	}
	if len(out) == 0 {
		out = loop
	}
	return out[:min(len(out), max)]
}

// AddHints adds addresses another node passed on for p (see
// membership), for an hour, and wakes p's connector if p is a peer: a
// member heard of through others may have no other way to be found.
func (n *Node) AddHints(p peer.ID, addrs []ma.Multiaddr) {
	n.host.Peerstore().AddAddrs(p, withoutMesh(addrs), lanAddrTTL)
	if c := n.connector(p); c != nil && n.bestConn(p) == nil {
		c.wake()
	}
}
