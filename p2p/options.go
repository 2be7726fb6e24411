package p2p

import (
	"context"

	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/p2p/host/autorelay"
	"github.com/libp2p/go-libp2p/p2p/muxer/yamux"
	"github.com/libp2p/go-libp2p/p2p/net/swarm"
	relayv2 "github.com/libp2p/go-libp2p/p2p/protocol/circuitv2/relay"
	libp2pquic "github.com/libp2p/go-libp2p/p2p/transport/quic"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/mynetwork/mynetwork/p2p/conns"
)

// hostOptions are the libp2p settings of a VPN node.
func (n *Node) hostOptions(opts Options) []libp2p.Option {
	listen := libp2p.ListenAddrStrings(opts.Listen...)
	if len(opts.Listen) == 0 {
		// An empty list means a node that only dials out; without this,
		// libp2p would fall back to its own defaults on every interface.
		// NoListenAddrs also turns the relay transport off, and autorelay
		// (below) refuses to start without it: keep it, so that a node
		// that listens nowhere can still be reached through a relay.
		listen = libp2p.ChainOptions(libp2p.NoListenAddrs, libp2p.EnableRelay())
	}
	o := []libp2p.Option{
		libp2p.Identity(opts.Key),
		listen,
		libp2p.Transport(libp2pquic.NewTransport),
		libp2p.Muxer(yamux.ID, conns.Yamux()),
		libp2p.UserAgent(userAgentName),
		libp2p.Ping(false), // the node answers pings itself: see answerPing
		libp2p.AddrsFactory(withoutMesh),
		libp2p.ConnectionGater(meshGater{n.strangers, n.isBlocked}),
		libp2p.SwarmOpts(swarm.WithDialRanker(lanTCPFirst)),
		// Hole punching (DCUtR) upgrades a relayed connection to a direct one.
		libp2p.EnableHolePunching(),
		// Every node can relay for its configured peers, and only for them,
		// without the public relay limits (2 min / 128 KiB per circuit): a
		// VPN's fallback path must carry bulk traffic. libp2p runs the relay
		// service only while this node is publicly reachable.
		libp2p.EnableRelayService(relayv2.WithInfiniteLimits(), relayv2.WithACL(vpnOnly{n})),
		// When this node is private, reserve a slot on a peer or relay so
		// others can reach it; candidates are the configured peers and relays.
		libp2p.EnableAutoRelayWithPeerSource(n.relayCandidates,
			autorelay.WithMinCandidates(1), autorelay.WithBootDelay(0), autorelay.WithNumRelays(2)),
		// Serve AutoNAT to known peers (see autonat.go), so that on "auto"
		// a mesh with no public libp2p nodes still learns who is private.
		// libp2p serves v1 only while reachability is not forced private.
		libp2p.EnableNATService(),
		libp2p.AutoNATServiceRateLimit(autonatGlobal, autonatPerPeer, autonatInterval),
		libp2p.EnableAutoNATv2(),
	}
	o = append(o, n.socketOptions(opts)...) // TCP: see conns/coalesce.go
	if opts.Metrics != nil {
		o = append(o, libp2p.PrometheusRegisterer(opts.Metrics))
	} else {
		o = append(o, libp2p.DisableMetrics())
	}
	switch opts.Reachability {
	case "public":
		o = append(o, libp2p.ForceReachabilityPublic())
	case "private":
		o = append(o, libp2p.ForceReachabilityPrivate())
	}
	return o
}

// relayCandidates offers autorelay the configured relays and peers.
func (n *Node) relayCandidates(ctx context.Context, num int) <-chan peer.AddrInfo {
	peers := *n.peers.Load()
	out := make(chan peer.AddrInfo, len(n.relays)+len(peers))
	for _, r := range n.relays {
		out <- r
	}
	if n.host != nil {
		for p := range peers {
			if ai := n.host.Peerstore().PeerInfo(p); len(ai.Addrs) > 0 {
				out <- ai
			}
		}
	}
	close(out)
	return out
}

// vpnOnly is the relay's access list: reservations and circuits only for
// configured peers.
type vpnOnly struct{ n *Node }

func (a vpnOnly) AllowReserve(p peer.ID, _ ma.Multiaddr) bool {
	return a.n.configured(p)
}

func (a vpnOnly) AllowConnect(src peer.ID, _ ma.Multiaddr, dest peer.ID) bool {
	return a.n.configured(src) && a.n.configured(dest)
}

var _ relayv2.ACLFilter = vpnOnly{}
