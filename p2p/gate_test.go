package p2p_test

import (
	"bufio"
	"context"
	"net/netip"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
	"golang.zx2c4.com/wireguard/tun/tuntest"

	"github.com/mynetwork/mynetwork/config"
	"github.com/mynetwork/mynetwork/internal/engine"
	"github.com/mynetwork/mynetwork/p2p"
)

// TestWhoMayTalk drives a node's packet protocol from a real libp2p host
// that is a configured peer, and checks what reaches the device.
func TestWhoMayTalk(t *testing.T) {
	kb, _, _ := crypto.GenerateEd25519Key(nil)
	idB, _ := peer.IDFromPrivateKey(kb)
	ka, _, _ := crypto.GenerateEd25519Key(nil)
	idA, _ := peer.IDFromPrivateKey(ka)
	addrA, addrB := config.AddressesOf(idA).IPv4, config.AddressesOf(idB).IPv4
	routedToB := netip.MustParsePrefix("10.9.0.0/24")

	node, err := p2p.New(p2p.Options{Key: ka, Listen: []string{"/ip4/127.0.0.1/tcp/0"}, Peers: []p2p.Peer{{ID: idB}}, MaxPacket: 1500})
	if err != nil {
		t.Fatal(err)
	}
	defer node.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	node.Start(ctx)
	dev := tuntest.NewChannelTUN()
	eng, _ := engine.New(dev.TUN(), node.Transport(), engine.NewTable([]engine.Route{
		{Prefix: netip.PrefixFrom(addrB, 32), Peer: idB},
		{Prefix: routedToB, Peer: idB},
	}), nil)
	done := make(chan error, 1)
	go func() { done <- eng.Run(ctx) }()
	defer func() { cancel(); <-done }()

	hb, err := libp2p.New(libp2p.Identity(kb), libp2p.ListenAddrStrings("/ip4/127.0.0.1/tcp/0"))
	if err != nil {
		t.Fatal(err)
	}
	defer hb.Close()
	if err := hb.Connect(ctx, peer.AddrInfo{ID: idA, Addrs: node.Host().Addrs()}); err != nil {
		t.Fatal(err)
	}
	s, err := hb.NewStream(ctx, idA, p2p.PacketProtocol)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	w := bufio.NewWriter(s)
	send := func(src netip.Addr) {
		t.Helper()
		if err := p2p.WriteFrame(w, tuntest.Ping(addrA, src)); err != nil {
			t.Fatal(err)
		}
		if err := w.Flush(); err != nil {
			t.Fatal(err)
		}
	}
	expectDelivered := func(src netip.Addr) {
		t.Helper()
		send(src)
		select {
		case got := <-dev.Inbound:
			if netip.AddrFrom4([4]byte(got[12:16])) != src {
				t.Fatalf("delivered a packet from %v, want %v", got[12:16], src)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("packet from %s not delivered", src)
		}
	}
	expectDropped := func(src netip.Addr, want uint64) {
		t.Helper()
		send(src)
		deadline := time.Now().Add(5 * time.Second)
		for eng.Counters.DropSource.Load() != want {
			if time.Now().After(deadline) {
				t.Fatalf("packet from %s: DropSource = %d, want %d", src, eng.Counters.DropSource.Load(), want)
			}
			time.Sleep(5 * time.Millisecond)
		}
		select {
		case <-dev.Inbound:
			t.Fatalf("packet from %s reached the device", src)
		default:
		}
	}

	expectDelivered(addrB)                                // its own mesh address
	expectDelivered(netip.MustParseAddr("10.9.0.7"))      // a network routed to it
	expectDropped(addrA, 1)                               // spoofing this node's own address
	expectDropped(netip.MustParseAddr("100.64.77.77"), 2) // another mesh address
	expectDropped(netip.MustParseAddr("192.168.1.10"), 3) // a network not routed to it
	expectDelivered(addrB)                                // and the stream still works
}
