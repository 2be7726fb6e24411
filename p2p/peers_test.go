package p2p

import (
	"testing"

	"github.com/mynetwork/mynetwork/internal/packet/packettest"
	"github.com/mynetwork/mynetwork/p2p/p2ptest"
)

// TestSetPeers: a peer added while the node runs is dialed and carries
// packets both ways; the peer kept keeps its connector; a removed peer is
// a stranger again, its connector stopped (the package's leak check sees
// its goroutines end).
func TestSetPeers(t *testing.T) {
	const listen = "/ip4/127.0.0.1/tcp/0"
	ka, ida := p2ptest.NewKey(t)
	kb, idb := p2ptest.NewKey(t)
	kc, idc := p2ptest.NewKey(t)
	b := newNode(t, Options{Key: kb, Listen: []string{listen}, Peers: []Peer{{ID: ida}}, MaxPacket: 1500})
	c := newNode(t, Options{Key: kc, Listen: []string{listen}, Peers: []Peer{{ID: ida}}, MaxPacket: 1500})
	peerB := Peer{ID: idb, Addrs: b.host.Addrs()}
	a := newNode(t, Options{Key: ka, Listen: []string{listen}, Peers: []Peer{peerB}, MaxPacket: 1500})
	start(t, a, b, c)
	deliver(t, a, b, packettest.IPv4(17, 100, 0, 1))
	kept := a.connector(idb)

	if err := a.SetPeers([]Peer{peerB, {ID: idc, Addrs: c.host.Addrs()}}); err != nil {
		t.Fatal(err)
	}
	if a.connector(idb) != kept || !a.knows(idc) {
		t.Fatal("SetPeers: kept peer's connector replaced, or the added peer not known")
	}
	deliver(t, a, c, packettest.IPv4(17, 100, 0, 2))
	deliver(t, c, a, packettest.IPv4(17, 100, 0, 3))
	deliver(t, b, a, packettest.IPv4(17, 100, 0, 4))

	if err := a.SetPeers([]Peer{{ID: idc}}); err != nil {
		t.Fatal(err)
	}
	if a.configured(idb) || a.knows(idb) || a.Transport().Stats(idb) != nil {
		t.Fatal("a removed peer is still configured or known")
	}
	select {
	case <-kept.done:
	default:
		t.Fatal("a removed peer's connector still runs")
	}
	deliver(t, c, a, packettest.IPv4(17, 100, 0, 5))
}
