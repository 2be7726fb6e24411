package limits

import (
	"testing"

	ma "github.com/multiformats/go-multiaddr"
)

func TestSourceOf(t *testing.T) {
	for _, c := range []struct {
		name, addr, want string
	}{
		{"IPv4", "/ip4/192.0.2.7/tcp/4001", "192.0.2.7/32"},
		{"IPv6 host's /64", "/ip6/2001:db8:1:2:aaaa::1/udp/4001/quic-v1", "2001:db8:1:2::/64"},
		{"IPv4 in IPv6", "/ip6/::ffff:192.0.2.7/tcp/4001", "192.0.2.7/32"},
		{"relayed", "/ip4/192.0.2.7/tcp/4001/p2p/12D3KooWGSrXQQXYp31AUbZ64eJMb3hGywN4dmzpaZW3rWW22EfF/p2p-circuit", "invalid Prefix"},
	} {
		t.Run(c.name, func(t *testing.T) {
			if got := SourceOf(ma.StringCast(c.addr)).String(); got != c.want {
				t.Errorf("SourceOf(%s) = %s, want %s", c.addr, got, c.want)
			}
		})
	}
}
