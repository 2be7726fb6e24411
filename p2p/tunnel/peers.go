package tunnel

import (
	"github.com/libp2p/go-libp2p/core/peer"
)

// SetPeers makes ids the configured peers: an added peer gets its queue
// and send loop; a removed one's loop and datagram readers stop, its
// incoming streams are reset, and SetPeers waits until its goroutines have
// ended. Packets queued for a removed peer are dropped. The peers kept
// carry on untouched: their queues, loops and streams are the same.
//
// The packet path reads the peer map without locks: SetPeers replaces it
// whole. A packet for a removed peer that a batch had already looked up
// goes into a queue nobody takes from any more.
func (t *Transport) SetPeers(ids []peer.ID) {
	added, gone := t.swapPeers(ids)
	for _, ps := range gone {
		ps.wg.Wait()
		for pk := t.next(ps); pk != nil; pk = t.next(ps) {
			t.put(pk)
		}
	}
	if t.notifee == nil {
		return
	}
	for _, ps := range added {
		for _, c := range t.h.Network().ConnsToPeer(ps.id) {
			t.connected(c) // the notifee heard of these before the peer was ours
		}
	}
}

// swapPeers replaces the peer map, starts the added peers' loops and stops
// the removed peers', returning both.
func (t *Transport) swapPeers(ids []peer.ID) (added, gone []*peerSender) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.isClosed {
		return nil, nil
	}
	old := *t.peers.Load()
	next := make(map[peer.ID]*peerSender, len(ids))
	for _, p := range ids {
		if ps := old[p]; ps != nil {
			next[p] = ps
			continue
		}
		if next[p] == nil {
			next[p] = t.newPeer(p)
			added = append(added, next[p])
		}
	}
	for p, ps := range old {
		if next[p] == nil {
			gone = append(gone, ps)
		}
	}
	t.peers.Store(&next)
	for _, ps := range added {
		t.startPeer(ps)
	}
	for _, ps := range gone {
		ps.removed = true
		ps.cancel()
		for _, s := range ps.inbound {
			s.Reset() // its reader ends and untracks it
		}
	}
	return added, gone
}
