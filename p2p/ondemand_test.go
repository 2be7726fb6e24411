package p2p

import (
	"context"
	"testing"
	"time"

	"github.com/mynetwork/mynetwork/p2p/p2ptest"
)

// TestKeepOnDemand: a node that connects on demand leaves a peer
// unconnected with nothing to send, and connects to it at once when the
// peer becomes one it keeps (Peer.Keep, an exit node in use).
func TestKeepOnDemand(t *testing.T) {
	ka, ida := p2ptest.NewKey(t)
	kb, idb := p2ptest.NewKey(t)
	listen := []string{"/ip4/127.0.0.1/tcp/0"}
	b := newNode(t, Options{Key: kb, Listen: listen, Peers: []Peer{{ID: ida}}, MaxPacket: 1500, IdleTimeout: time.Minute})
	toB := Peer{ID: idb, Addrs: b.host.Addrs()}
	a := newNode(t, Options{Key: ka, Listen: listen, Peers: []Peer{toB}, MaxPacket: 1500, IdleTimeout: time.Minute})
	start(t, a, b)
	time.Sleep(500 * time.Millisecond)
	if st := a.State(idb); st.Connected || !st.Idle {
		t.Fatalf("connected with nothing to send: %+v", st)
	}
	toB.Keep = true
	if err := a.SetPeers([]Peer{toB}); err != nil {
		t.Fatal(err)
	}
	p2ptest.Eventually(t, "a kept peer connected", func() bool { return a.State(idb).Connected })
}

// TestOnDemandRedialsABrokenConnection: a connection in use that breaks
// (not one closed idle) is redialed by the side that did not ask for it
// too: here the side that asked can no longer find the other, as when
// the other's address changed.
func TestOnDemandRedialsABrokenConnection(t *testing.T) {
	ka, ida := p2ptest.NewKey(t)
	kb, idb := p2ptest.NewKey(t)
	listen := []string{"/ip4/127.0.0.1/tcp/0"}
	b := newNode(t, Options{Key: kb, Listen: listen, Peers: []Peer{{ID: ida}}, MaxPacket: 1500, IdleTimeout: time.Minute})
	a := newNode(t, Options{Key: ka, Listen: listen, Peers: []Peer{{ID: idb, Addrs: b.host.Addrs()}}, MaxPacket: 1500, IdleTimeout: time.Minute})
	start(t, a, b)
	if _, err := a.Ping(context.Background(), idb); err != nil {
		t.Fatal(err)
	}
	p2ptest.Eventually(t, "b connected", func() bool { return b.State(ida).Connected })
	time.Sleep(200 * time.Millisecond) // b's connector looks at the connection
	a.host.Peerstore().ClearAddrs(idb)
	a.host.Network().ClosePeer(idb)
	p2ptest.Eventually(t, "b redialing a", func() bool { return a.State(idb).Connected })
}
