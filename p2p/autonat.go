package p2p

import (
	"fmt"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
	"github.com/libp2p/go-libp2p/p2p/host/autonat"
	"github.com/libp2p/go-libp2p/p2p/protocol/autonatv2"
)

// AutoNAT: a private mesh has no public libp2p nodes to tell its members
// that they are behind NAT, so every node answers AutoNAT (v1, which
// drives libp2p's reachability and so autorelay, and v2, which checks
// single addresses) for the peers it knows: configured peers, relays and
// bootstrap peers. That is the same circle that may reserve a slot on its
// relay, so a node that can learn it is private from a peer can also be
// reached through it. Strangers are refused when they choose the
// protocol: a dial-back is a probe of a third party's reachability, and
// nothing in the mesh needs strangers to have one.
//
// Known peers are rate-limited as well, so that a misbehaving one cannot
// make the node dial without end. v1: autonatGlobal requests a minute in
// all and autonatPerPeer from one peer; a v1 client asks again every
// 90 s while unsure and every 15 min once sure, so a mesh of 100 nodes
// restarting together is answered within a few of those rounds. v1 dials
// back only the requester's observed IP. v2 keeps libp2p's limits, which
// its option does not expose: 60 requests a minute, 12 per peer, 12 that
// need dial data, 2 at a time per peer; it dials another IP than the
// observed one only after the requester sent 30-100 KB (amplification).
const (
	autonatGlobal   = 30
	autonatPerPeer  = 3
	autonatInterval = time.Minute
)

// autonatRequests are the protocols on which a peer asks this node to dial
// it back. The v2 dial-back protocol is not among them: it is this node's
// own answer coming in, from the server's throwaway peer ID.
var autonatRequests = map[protocol.ID]bool{
	autonat.AutoNATProto:   true,
	autonatv2.DialProtocol: true,
}

// autonatGate is the resource manager with inbound AutoNAT requests from
// strangers refused: the resource manager sees every stream's protocol
// before its handler runs, whoever registered the handler (libp2p does,
// for both AutoNAT versions).
type autonatGate struct {
	network.ResourceManager
	knows func(peer.ID) bool
}

func (g autonatGate) OpenStream(p peer.ID, dir network.Direction) (network.StreamManagementScope, error) {
	s, err := g.ResourceManager.OpenStream(p, dir)
	if err != nil || dir != network.DirInbound || g.knows(p) {
		return s, err
	}
	return strangerStream{s, p}, nil
}

// GetConnLimit keeps libp2p's check of the connection manager against the
// resource manager's connection limit, which looks for this method.
func (g autonatGate) GetConnLimit() int {
	if l, ok := g.ResourceManager.(interface{ GetConnLimit() int }); ok {
		return l.GetConnLimit()
	}
	return 0
}

// strangerStream is a stranger's inbound stream, which may not be an
// AutoNAT request.
type strangerStream struct {
	network.StreamManagementScope
	p peer.ID
}

func (s strangerStream) SetProtocol(proto protocol.ID) error {
	if autonatRequests[proto] {
		return fmt.Errorf("%s from %s: AutoNAT is served to known peers only", proto, s.p)
	}
	return s.StreamManagementScope.SetProtocol(proto)
}
