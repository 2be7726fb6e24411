package p2p

import (
	"errors"
	"sort"
	"strings"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/p2p/net/swarm"
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
func pathOf(c network.Conn) string { return addrPath(c.RemoteMultiaddr()) }

// addrPath classifies an address the way pathOf does its connection.
func addrPath(a ma.Multiaddr) string {
	if _, err := a.ValueForProtocol(ma.P_CIRCUIT); err == nil {
		return PathRelay
	}
	if manet.IsPrivateAddr(a) {
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

// bestConn returns the connection to p on the best path: LAN, then direct,
// then relayed; among equals the preferred transport (see preferQUIC), then
// the newest. A new connection to a connected peer often means the old one
// is dead (the peer restarted or moved) and the transport has not noticed
// yet. The swarm's own choice (most open streams) would stay on the old
// one, so the packet stream and the liveness ping open their streams on
// this one.
func (n *Node) bestConn(p peer.ID) network.Conn { return bestConn(n.host.Network(), p) }

func bestConn(nw network.Network, p peer.ID) network.Conn {
	var best network.Conn
	for _, c := range nw.ConnsToPeer(p) {
		if best == nil || betterConn(c, best) {
			best = c
		}
	}
	return best
}

func betterConn(a, b network.Conn) bool {
	path := pathOf(a)
	if ra, rb := rank(path), rank(pathOf(b)); ra != rb {
		return ra < rb
	}
	if qa, qb := isQUIC(a), isQUIC(b); qa != qb {
		return qa == preferQUIC(path)
	}
	return a.Stat().Opened.After(b.Stat().Opened)
}

// preferQUIC says which transport carries packets best on a path. On a LAN,
// TCP: the kernel segments and reassembles 64 KiB writes (TSO/GRO) where
// QUIC pays a system call, a header and an AEAD seal per 1.4 KB packet;
// make bench measured TCP at 1.8-2x QUIC's throughput on a veth, and ahead
// of it at 1% loss too, where the low RTT lets the outer TCP recover at
// once. Over the internet, QUIC: it is what hole punching opens, and only
// QUIC carries datagrams, which keep UDP and ICMP out of the reliable stream
// and avoid TCP-in-TCP collapse at high RTT and loss.
func preferQUIC(path string) bool { return path != PathLAN }

// lanTCPFirst ranks dials as go-libp2p's default does, except that private
// (LAN) TCP addresses go first and private QUIC ones lanQUICDelay later (the
// default is the other way round): see preferQUIC. The delay covers TCP's
// whole upgrade (TCP, TLS and muxer handshakes), which took over 30 ms on a
// busy machine: QUIC then won the race and carried the bench at half the
// speed. If TCP is blocked, QUIC still connects lanQUICDelay later.
const lanQUICDelay = 250 * time.Millisecond

func lanTCPFirst(addrs []ma.Multiaddr) []network.AddrDelay {
	res := swarm.DefaultDialRanker(addrs)
	for i, ad := range res {
		if addrPath(ad.Addr) != PathLAN {
			continue
		}
		if _, err := ad.Addr.ValueForProtocol(ma.P_TCP); err == nil {
			res[i].Delay = max(0, ad.Delay-swarm.PrivateTCPDelay)
		} else {
			res[i].Delay += lanQUICDelay
		}
	}
	sort.SliceStable(res, func(i, j int) bool { return res[i].Delay < res[j].Delay })
	return res
}

func isQUIC(c network.Conn) bool {
	_, err := c.RemoteMultiaddr().ValueForProtocol(ma.P_QUIC_V1)
	return err == nil
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

// noteUnreachable records why a peer is not connected, for status, in one
// line: a failed dial's error lists every address tried, a line each.
func (n *Node) noteUnreachable(p peer.ID, err error) {
	n.whyMu.Lock()
	n.why[p] = whyUnreachable(err)
	n.whyMu.Unlock()
	n.log.Debug("peer not reachable yet", "peer", p, "err", err)
}

// whyUnreachable is a failed connect's error in a line: a dial error by
// dialProblem, anything else with its line breaks folded.
func whyUnreachable(err error) string {
	var de *swarm.DialError
	if errors.As(err, &de) {
		return dialProblem(err)
	}
	return strings.Join(strings.Fields(err.Error()), " ")
}
