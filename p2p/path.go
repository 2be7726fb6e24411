package p2p

import (
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"
	manet "github.com/multiformats/go-multiaddr/net"
)

// Path kinds, best first.
const (
	PathLAN    = "lan"
	PathDirect = "direct"
	PathRelay  = "relay"
)

// pathOf classifies a connection: relayed, direct to a private (LAN)
// address, or direct over the internet.
func pathOf(c network.Conn) string {
	switch {
	case isRelayed(c):
		return PathRelay
	case manet.IsPrivateAddr(c.RemoteMultiaddr()):
		return PathLAN
	}
	return PathDirect
}

func rank(path string) int {
	switch path {
	case PathLAN:
		return 0
	case PathDirect:
		return 1
	}
	return 2
}

// relayOf returns the relay's peer ID of a relayed connection.
func relayOf(c network.Conn) peer.ID {
	var relay peer.ID
	ma.ForEach(c.RemoteMultiaddr(), func(comp ma.Component) bool {
		if comp.Protocol().Code == ma.P_P2P {
			relay, _ = peer.IDFromBytes(comp.RawValue())
			return false
		}
		return true
	})
	return relay
}

// bestConn returns the connection to p on the best path.
func (n *Node) bestConn(p peer.ID) network.Conn { return bestConn(n.host.Network(), p) }

func bestConn(nw network.Network, p peer.ID) network.Conn {
	var best network.Conn
	for _, c := range nw.ConnsToPeer(p) {
		if best == nil || rank(pathOf(c)) < rank(pathOf(best)) {
			best = c
		}
	}
	return best
}

// prune closes connections to p on worse paths than the best one, so that
// new streams (and the packet stream, reopened on connection changes) move
// to the best path. Traffic in flight on the old path is retransmitted by
// the inner TCP; flows are not dropped.
func (n *Node) prune(p peer.ID) {
	best := n.bestConn(p)
	if best == nil {
		return
	}
	for _, c := range n.host.Network().ConnsToPeer(p) {
		if c != best && rank(pathOf(c)) > rank(pathOf(best)) {
			n.log.Debug("moving to a better path", "peer", p, "from", c.RemoteMultiaddr(), "to", best.RemoteMultiaddr())
			c.Close()
		}
	}
}

// noteUnreachable records why a peer is not connected, for status.
func (n *Node) noteUnreachable(p peer.ID, err error) {
	n.whyMu.Lock()
	n.why[p] = err.Error()
	n.whyMu.Unlock()
	n.log.Debug("peer not reachable yet", "peer", p, "err", err)
}
