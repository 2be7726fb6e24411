package p2p

import (
	"testing"

	ma "github.com/multiformats/go-multiaddr"
)

// TestForOthers: status and the address message keep only what another
// machine could dial.
func TestForOthers(t *testing.T) {
	for _, tc := range []struct {
		addr string
		want bool
	}{
		{"/ip4/192.168.1.10/tcp/8001", true},
		{"/ip4/203.0.113.7/udp/8001/quic-v1", true},
		{"/ip6/2001:db8::1/tcp/8001", true},
		{"/dns4/example.com/tcp/8001", true},
		{"/ip4/127.0.0.1/tcp/8001", false},
		{"/ip6/::1/udp/8001/quic-v1", false},
		{"/ip4/169.254.3.4/tcp/8001", false},
		{"/ip6/fe80::1/tcp/8001", false},
		{"/ip4/100.64.1.2/tcp/8001", false}, // the mesh's own
		{"/ip6/fd6d:796e:6574::1/tcp/8001", false},
	} {
		if got := forOthers(ma.StringCast(tc.addr)); got != tc.want {
			t.Errorf("forOthers(%s) = %v, want %v", tc.addr, got, tc.want)
		}
	}
}
