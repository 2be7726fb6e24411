package config

import (
	"crypto/sha256"
	"encoding/binary"
	"net/netip"

	"github.com/libp2p/go-libp2p/core/peer"
)

// MeshPrefix4 is the IPv4 network every node's address lives in.
var MeshPrefix4 = netip.MustParsePrefix("100.64.0.0/16")

// MeshPrefix6 is the fixed ULA /64 every node's IPv6 address lives in.
// fd6d:796e:6574::/48 spells "mynet" in ASCII after the fd; subnet 0.
var MeshPrefix6 = netip.MustParsePrefix("fd6d:796e:6574::/64")

// Addresses is a node's pair of virtual addresses.
type Addresses struct {
	IPv4 netip.Addr
	IPv6 netip.Addr
}

// AddressesOf derives a node's virtual addresses from its peer ID.
//
// h = SHA-256 of the peer ID's binary multihash (the bytes of peer.ID).
// IPv4: n = 1 + (big-endian uint32 of h[0:4]) mod 65534, giving 1..65534 so the
// /16's network (.0.0) and broadcast (.255.255) addresses are never used; the
// address is 100.64.(n>>8).(n&255).
// IPv6: the 64-bit prefix of MeshPrefix6 followed by h[4:12] as interface ID.
func AddressesOf(id peer.ID) Addresses {
	h := sha256.Sum256([]byte(id))
	n := 1 + binary.BigEndian.Uint32(h[0:4])%65534
	v4 := netip.AddrFrom4([4]byte{100, 64, byte(n >> 8), byte(n)})
	var b16 [16]byte
	p := MeshPrefix6.Addr().As16()
	copy(b16[:8], p[:8])
	copy(b16[8:], h[4:12])
	return Addresses{IPv4: v4, IPv6: netip.AddrFrom16(b16)}
}

// Prefixes returns the host prefixes (/32 and /128) of the addresses.
func (a Addresses) Prefixes() []netip.Prefix {
	return []netip.Prefix{netip.PrefixFrom(a.IPv4, 32), netip.PrefixFrom(a.IPv6, 128)}
}
