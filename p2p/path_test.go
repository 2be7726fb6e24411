package p2p

import (
	"testing"

	ma "github.com/multiformats/go-multiaddr"

	"github.com/mynetwork/mynetwork/internal/packet/packettest"
	"github.com/mynetwork/mynetwork/p2p/p2ptest"
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

// A LAN peer first reached over QUIC (here: the only address configured)
// moves to TCP once its TCP address is known, and packets flow on it.
func TestLANPeerMovesFromQUICToTCP(t *testing.T) {
	ka, ida := p2ptest.NewKey(t)
	kb, idb := p2ptest.NewKey(t)
	listen := []string{"/ip4/127.0.0.1/tcp/0", "/ip4/127.0.0.1/udp/0/quic-v1"}
	b := newNode(t, Options{Key: kb, Listen: listen, Peers: []Peer{{ID: ida}}, MaxPacket: 1500})
	var quicOnly []ma.Multiaddr
	for _, a := range b.host.Addrs() {
		if _, err := a.ValueForProtocol(ma.P_QUIC_V1); err == nil {
			quicOnly = append(quicOnly, a)
		}
	}
	a := newNode(t, Options{Key: ka, Listen: listen, Peers: []Peer{{ID: idb, Addrs: quicOnly}}, MaxPacket: 1500})
	start(t, a)
	p2ptest.Eventually(t, "a QUIC connection", func() bool { c := a.bestConn(idb); return c != nil && isQUIC(c) })
	start(t, b)
	p2ptest.Eventually(t, "the move to TCP", func() bool {
		c := a.bestConn(idb)
		return c != nil && !isQUIC(c) && pathOf(c) == PathLAN
	})
	for i := range 10 {
		deliver(t, a, b, packettest.IPv4(17, 100, 0, i))
	}
}
