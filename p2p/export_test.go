package p2p

import ma "github.com/multiformats/go-multiaddr"

// ListenAddrs are all the addresses the node announces, loopback
// included, for p2p_test's hosts to dial (Addrs leaves loopback out).
func (n *Node) ListenAddrs() []ma.Multiaddr { return n.host.Addrs() }
