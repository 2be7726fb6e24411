package tunnel

import (
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/mynetwork/mynetwork/internal/packet/packettest"
	"github.com/mynetwork/mynetwork/p2p/p2ptest"
)

// TestSetPeers: a peer added at run time is heard and sent to; a peer
// kept carries on with the same queue and loop; a removed peer's packets
// are refused and its goroutines end (the package's leak check).
func TestSetPeers(t *testing.T) {
	for _, listen := range []string{"/ip4/127.0.0.1/tcp/0", "/ip4/127.0.0.1/udp/0/quic-v1"} {
		t.Run(listen, func(t *testing.T) { testSetPeers(t, listen) })
	}
}

func testSetPeers(t *testing.T, listen string) {
	ka, ida := p2ptest.NewKey(t)
	kb, idb := p2ptest.NewKey(t)
	kc, idc := p2ptest.NewKey(t)
	a := newNode(t, nodeOptions{Key: ka, Listen: []string{listen}, Peers: []testPeer{{ID: idb}}, MaxPacket: 1500})
	b := newNode(t, nodeOptions{Key: kb, Peers: []testPeer{{ID: ida, Addrs: a.Host().Addrs()}}, MaxPacket: 1500})
	c := newNode(t, nodeOptions{Key: kc, Peers: []testPeer{{ID: ida, Addrs: a.Host().Addrs()}}, MaxPacket: 1500})
	start(t, b, c)
	in := receiver(t, a)
	warmUp(t, b, a, in, false)
	kept := a.Transport().peer(idb)

	// c is not a's peer yet: its stream is refused.
	p2ptest.Eventually(t, "c refused", func() bool {
		c.Transport().Send(ida, [][]byte{packettest.IPv4(6, 1000, 0x18, 0)}) // not a datagram
		time.Sleep(20 * time.Millisecond)
		return a.Transport().Refused.Load() > 0
	})
	if err := a.Transport().Send(idc, [][]byte{packettest.IPv4(17, 60, 0, 0)}); err == nil {
		t.Fatal("Send to a peer not configured: no error")
	}

	a.Transport().SetPeers([]peer.ID{idb, idc})
	if a.Transport().peer(idb) != kept {
		t.Fatal("SetPeers replaced the state of a peer it kept")
	}
	warmUp(t, c, a, in, false)
	exchange(t, b, a, in, 10, func(i int) []byte { return packettest.IPv4(17, 100, 0, i) })
	inC := receiver(t, c)
	warmUp(t, a, c, inC, false)

	a.Transport().SetPeers([]peer.ID{idc})
	if a.Transport().Stats(idb) != nil || a.Transport().Send(idb, [][]byte{packettest.IPv4(17, 60, 0, 0)}) == nil {
		t.Fatal("a removed peer is still configured")
	}
	if kept.ctx.Err() == nil {
		t.Fatal("a removed peer's loops were not told to stop")
	}
	refused := a.Transport().Refused.Load()
	p2ptest.Eventually(t, "b refused", func() bool {
		b.Transport().Send(ida, [][]byte{packettest.IPv4(6, 1000, 0x18, 0)})
		time.Sleep(20 * time.Millisecond)
		return a.Transport().Refused.Load() > refused
	})
	exchange(t, c, a, in, 10, func(i int) []byte { return packettest.IPv4(17, 100, 0, i) })
}
