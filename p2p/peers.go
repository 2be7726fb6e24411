package p2p

import (
	"errors"
	"maps"
	"slices"

	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/peerstore"
)

// knownWith is the known set with peers as the configured peers: they,
// the relays and the bootstrap peers.
func (n *Node) knownWith(peers []Peer) map[peer.ID]struct{} {
	known := make(map[peer.ID]struct{}, len(peers)+len(n.relays)+len(n.bootstrap))
	for _, p := range peers {
		known[p.ID] = struct{}{}
	}
	for _, ai := range n.relays {
		known[ai.ID] = struct{}{}
	}
	for _, ai := range n.bootstrap {
		known[ai.ID] = struct{}{}
	}
	return known
}

// SetPeers makes peers the configured peers while the node runs (a
// config reload). A peer kept keeps its connector, connections and packet
// streams; its configured addresses are added. An added peer becomes
// known (the gater, the resource manager's allowlist and per-peer
// limits, the relay's ACL), gets its packet queue and a connector; a
// removed one loses all that, its connections are closed unless it is
// still a relay or bootstrap peer, and SetPeers returns once its
// connector and packet loops have ended.
func (n *Node) SetPeers(peers []Peer) error {
	n.setMu.Lock()
	defer n.setMu.Unlock()
	old := *n.peers.Load()
	next := make(map[peer.ID]*connector, len(peers))
	keep := make(map[peer.ID]bool)
	for _, p := range peers {
		keep[p.ID] = keep[p.ID] || p.Keep
		n.host.Peerstore().AddAddrs(p.ID, p.Addrs, peerstore.PermanentAddrTTL)
		switch {
		case next[p.ID] != nil: // listed twice: the daemon's old and new peers
		case old[p.ID] != nil:
			next[p.ID] = old[p.ID]
		default:
			next[p.ID] = newConnector(n, p.ID)
		}
	}
	// Known first, so the gater and the resource manager let an added
	// peer in; the transport before the connectors, so a connection an
	// added connector makes finds its packet path ready.
	oldKnown, known := *n.known.Load(), n.knownWith(peers)
	n.known.Store(&known)
	err := n.allow(oldKnown, known)
	n.transport.SetPeers(slices.Collect(maps.Keys(next)))
	n.peers.Store(&next)
	for id, c := range next {
		if c.keep.Swap(keep[id]) != keep[id] {
			c.wake()
		}
		if old[id] == nil {
			n.host.ConnManager().Protect(id, protectTag)
			if n.ctx != nil && n.ctx.Err() == nil {
				c.start(n.ctx)
			}
		}
	}
	for id, c := range old {
		if next[id] == nil {
			c.stop()
			n.forget(id, known)
		}
	}
	return err
}

// allow updates the resource manager to the known set's change.
func (n *Node) allow(old, known map[peer.ID]struct{}) error {
	var err error
	for p := range known {
		if _, ok := old[p]; !ok {
			err = errors.Join(err, n.rm.SetKnown(p, true))
		}
	}
	for p := range old {
		if _, ok := known[p]; !ok {
			err = errors.Join(err, n.rm.SetKnown(p, false))
		}
	}
	return err
}

// forget undoes what the node did for a configured peer that was removed;
// a peer that is still a relay or bootstrap peer keeps its connections
// and addresses.
func (n *Node) forget(p peer.ID, known map[peer.ID]struct{}) {
	n.whyMu.Lock()
	delete(n.why, p)
	n.whyMu.Unlock()
	if _, ok := known[p]; ok {
		return
	}
	n.host.ConnManager().Unprotect(p, protectTag)
	n.host.Peerstore().ClearAddrs(p)
	n.host.Network().ClosePeer(p)
}

// SetBlocked makes ids the peers the node refuses outright (revoked
// members): the gater refuses their connections both ways, and those
// they have are closed. A configured peer is never blocked.
func (n *Node) SetBlocked(ids []peer.ID) {
	set := make(map[peer.ID]struct{}, len(ids))
	for _, p := range ids {
		if !n.configured(p) {
			set[p] = struct{}{}
		}
	}
	n.blocked.Store(&set)
	for p := range set {
		n.host.Network().ClosePeer(p)
	}
}

// isBlocked says whether SetBlocked blocked p.
func (n *Node) isBlocked(p peer.ID) bool {
	b := n.blocked.Load()
	if b == nil {
		return false
	}
	_, ok := (*b)[p]
	return ok
}
