//go:build nattest

package p2p

import (
	manet "github.com/multiformats/go-multiaddr/net"
)

// Test builds only (go build -tags nattest): NAT traversal tests run in
// network namespaces with the documentation ranges TEST-NET-2 and TEST-NET-3
// standing in for the internet, since no real public address may be used.
// libp2p treats those ranges as unroutable, and hole punching, AutoNAT and
// relay reservations only consider public addresses; this marks them public.
// Release builds never contain this file.
func init() {
	keep := manet.Unroutable4[:0:0]
	for _, n := range manet.Unroutable4 {
		if s := n.String(); s != "203.0.113.0/24" && s != "198.51.100.0/24" {
			keep = append(keep, n)
		}
	}
	manet.Unroutable4 = keep
}
