package names

import (
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"

	"github.com/mynetwork/mynetwork/config"
)

// ReverseZones are the reverse-lookup zones of the mesh ranges, in DNS
// form: 64.100.in-addr.arpa and the nibbles of the IPv6 prefix.
var ReverseZones = []string{reverseZone(config.MeshPrefix4), reverseZone(config.MeshPrefix6)}

// reverseZone writes a prefix whose length is a whole number of octets
// (IPv4) or nibbles (IPv6) as its reverse zone, without the final dot.
func reverseZone(p netip.Prefix) string {
	var labels []string
	b := p.Addr().AsSlice()
	if p.Addr().Is4() {
		for _, o := range b[:p.Bits()/8] {
			labels = append(labels, strconv.Itoa(int(o)))
		}
		slices.Reverse(labels)
		return strings.Join(labels, ".") + ".in-addr.arpa"
	}
	for i := range p.Bits() / 4 {
		labels = append(labels, fmt.Sprintf("%x", b[i/2]>>(4*(1-i%2))&0xf))
	}
	slices.Reverse(labels)
	return strings.Join(labels, ".") + ".ip6.arpa"
}

// ParseReverse reads the address of a full reverse name
// (4.3.2.1.in-addr.arpa, or 32 nibbles then ip6.arpa), in any case, with or
// without the final dot.
func ParseReverse(name string) (netip.Addr, bool) {
	name = strings.ToLower(strings.TrimSuffix(name, "."))
	if s, ok := strings.CutSuffix(name, ".in-addr.arpa"); ok {
		return parseReverse(s, 4, 10, 8, 3)
	}
	if s, ok := strings.CutSuffix(name, ".ip6.arpa"); ok {
		return parseReverse(s, 32, 16, 4, 1)
	}
	return netip.Addr{}, false
}

// parseReverse reads n labels, each a number in base of at most digits
// digits that fits bits bits, lowest first, into an address of n*bits bits.
func parseReverse(s string, n, base, bits, digits int) (netip.Addr, bool) {
	labels := strings.Split(s, ".")
	if len(labels) != n {
		return netip.Addr{}, false
	}
	var b [16]byte
	for i, l := range labels {
		v, err := strconv.ParseUint(l, base, bits)
		if err != nil || len(l) > digits {
			return netip.Addr{}, false
		}
		pos := (n - 1 - i) * bits // bit offset from the left
		b[pos/8] |= byte(v) << (8 - bits - pos%8)
	}
	if n == 4 {
		return netip.AddrFrom4([4]byte(b[:4])), true
	}
	return netip.AddrFrom16(b), true
}
