package p2p

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
	ma "github.com/multiformats/go-multiaddr"
)

// AddrsProtocol lets VPN peers tell each other all their listen addresses,
// private ones included. libp2p's identify drops private addresses on
// connections it considers public (a relayed one, say), so two nodes behind
// the same NAT would never learn each other's LAN addresses without mDNS.
const AddrsProtocol protocol.ID = "/mynetwork/addrs/1.0.0"

const (
	maxAddrsMsg = 16 << 10 // bytes of one message
	maxAddrs    = 32       // addresses taken from one message
	lanAddrTTL  = time.Hour
)

// localAddrs are this node's dialable listen addresses: every interface
// address others can use (see forOthers).
func (n *Node) localAddrs() []string {
	addrs, err := n.host.Network().InterfaceListenAddresses()
	if err != nil {
		return nil
	}
	var out []string
	for _, a := range addrs {
		if forOthers(a) {
			out = append(out, a.String())
		}
	}
	return out
}

// forOthers says whether another machine could dial a: not loopback, not
// link-local (a multiaddr has no zone to say which link), and not in the
// mesh, which the host never announces either (withoutMesh). Addresses
// that are not IP (DNS names) pass.
func forOthers(a ma.Multiaddr) bool {
	addr, ok := ipOf(a)
	return !ok || !addr.IsLoopback() && !addr.IsLinkLocalUnicast() && !inMesh(a)
}

// sendAddrs tells peer p our addresses, on any connection (relayed too).
func (n *Node) sendAddrs(ctx context.Context, p peer.ID) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	s, err := n.host.NewStream(network.WithNoDial(network.WithAllowLimitedConn(ctx, "addrs"), "addrs"), p, AddrsProtocol)
	if err != nil {
		return
	}
	defer s.Close()
	s.SetDeadline(time.Now().Add(10 * time.Second))
	json.NewEncoder(s).Encode(n.localAddrs())
}

// readAddrs reads an address message, a JSON list of multiaddrs of at
// most maxAddrsMsg bytes, and returns the first maxAddrs dialable ones: a
// peer can make this node remember (and dial) only so many.
func readAddrs(r io.Reader) ([]ma.Multiaddr, error) {
	var list []string
	if err := json.NewDecoder(io.LimitReader(r, maxAddrsMsg)).Decode(&list); err != nil {
		return nil, fmt.Errorf("address message: %w", err)
	}
	addrs := dialable(list)
	return addrs[:min(len(addrs), maxAddrs)], nil
}

func (n *Node) handleAddrs(s network.Stream) {
	defer s.Close()
	from := s.Conn().RemotePeer()
	if !n.configured(from) {
		s.Reset()
		return
	}
	s.SetDeadline(time.Now().Add(10 * time.Second))
	addrs, err := readAddrs(s)
	if err != nil {
		s.Reset()
		return
	}
	n.host.Peerstore().AddAddrs(from, addrs, lanAddrTTL)
	if n.State(from).Path != PathLAN {
		n.connChanged(from) // a direct path may now be possible
	}
}
