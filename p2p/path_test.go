package p2p

import (
	"testing"

	ma "github.com/multiformats/go-multiaddr"
)

// On a LAN address TCP is dialed first and QUIC only after it had time to
// connect; public addresses keep go-libp2p's order, QUIC first.
func TestLANTCPFirst(t *testing.T) {
	addrs := []ma.Multiaddr{
		ma.StringCast("/ip4/10.1.0.2/udp/8001/quic-v1"),
		ma.StringCast("/ip4/10.1.0.2/tcp/8001"),
		ma.StringCast("/ip4/198.51.100.7/udp/8001/quic-v1"),
		ma.StringCast("/ip4/198.51.100.7/tcp/8001"),
	}
	delay := map[string]int64{}
	for _, ad := range lanTCPFirst(addrs) {
		delay[ad.Addr.String()] = ad.Delay.Milliseconds()
	}
	if len(delay) != len(addrs) {
		t.Fatalf("ranked %d of %d addresses: %v", len(delay), len(addrs), delay)
	}
	if lanTCP, lanQUIC := delay["/ip4/10.1.0.2/tcp/8001"], delay["/ip4/10.1.0.2/udp/8001/quic-v1"]; lanTCP != 0 || lanQUIC <= lanTCP {
		t.Errorf("LAN: TCP at %d ms, QUIC at %d ms; want TCP at 0 and QUIC later", lanTCP, lanQUIC)
	}
	if pubTCP, pubQUIC := delay["/ip4/198.51.100.7/tcp/8001"], delay["/ip4/198.51.100.7/udp/8001/quic-v1"]; pubQUIC >= pubTCP {
		t.Errorf("public: QUIC at %d ms, TCP at %d ms; want QUIC first", pubQUIC, pubTCP)
	}
}
