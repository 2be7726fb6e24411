package tunnel

import (
	"context"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/mynetwork/mynetwork/p2p/p2ptest"
)

// TestAwaitConn: a wait for a connection ends when the connection comes,
// woken by the change (the periodic look is turned off here), and gives up
// at its deadline or for a peer that is not configured.
func TestAwaitConn(t *testing.T) {
	defer func(d time.Duration) { awaitRecheck = d }(awaitRecheck)
	awaitRecheck = time.Hour
	ka, ida := p2ptest.NewKey(t)
	kb, idb := p2ptest.NewKey(t)
	_, stranger := p2ptest.NewKey(t)
	b := newNode(t, nodeOptions{Key: kb, Listen: []string{"/ip4/127.0.0.1/tcp/0"}, Peers: []testPeer{{ID: ida}}, MaxPacket: 1500})
	a := newNode(t, nodeOptions{Key: ka, Peers: []testPeer{{ID: idb}}, MaxPacket: 1500})
	ctx := context.Background()

	if a.tr.AwaitConn(ctx, stranger, time.Hour) {
		t.Fatal("AwaitConn reported a connection to a peer that is not configured")
	}
	if a.tr.AwaitConn(ctx, idb, 50*time.Millisecond) {
		t.Fatal("AwaitConn reported a connection before there was one")
	}

	got := make(chan bool, 1)
	go func() { got <- a.tr.AwaitConn(ctx, idb, time.Hour) }()
	time.Sleep(20 * time.Millisecond) // let it start waiting
	if err := a.h.Connect(ctx, peer.AddrInfo{ID: idb, Addrs: b.h.Addrs()}); err != nil {
		t.Fatal(err)
	}
	select {
	case ok := <-got:
		if !ok {
			t.Fatal("AwaitConn gave up although the connection came")
		}
	case <-time.After(30 * time.Second):
		t.Fatal("AwaitConn was not woken by the new connection")
	}

	cctx, cancel := context.WithCancel(ctx)
	cancel()
	a.h.Network().ClosePeer(idb)
	if a.tr.AwaitConn(cctx, idb, time.Hour) {
		t.Fatal("AwaitConn reported a connection after the peer's were closed")
	}
}
