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
	"github.com/mynetwork/mynetwork/p2p/tunnel"
)

// engineNode is a node, A, running a packet engine on a channel TUN, with
// one configured peer, B, whose key a real libp2p host can use to play B.
type engineNode struct {
	node         *p2p.Node
	eng          *engine.Engine
	dev          *tuntest.ChannelTUN
	keyB         crypto.PrivKey
	idA, idB     peer.ID
	addrA, addrB netip.Addr
}

// startEngineNode starts A on loopback TCP with routes to B's mesh address
// and to extra, and stops it when the test ends.
func startEngineNode(t testing.TB, ctx context.Context, extra ...netip.Prefix) *engineNode {
	t.Helper()
	kb, _, _ := crypto.GenerateEd25519Key(nil)
	ka, _, _ := crypto.GenerateEd25519Key(nil)
	n := &engineNode{keyB: kb, dev: tuntest.NewChannelTUN()}
	n.idA, _ = peer.IDFromPrivateKey(ka)
	n.idB, _ = peer.IDFromPrivateKey(kb)
	n.addrA, n.addrB = config.AddressesOf(n.idA).IPv4, config.AddressesOf(n.idB).IPv4

	var err error
	n.node, err = p2p.New(p2p.Options{Key: ka, Listen: []string{"/ip4/127.0.0.1/tcp/0"}, Peers: []p2p.Peer{{ID: n.idB}}, MaxPacket: 1500})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(ctx)
	n.node.Start(ctx)
	routes := []engine.Route{{Prefix: netip.PrefixFrom(n.addrB, 32), Peer: n.idB}}
	for _, p := range extra {
		routes = append(routes, engine.Route{Prefix: p, Peer: n.idB})
	}
	n.eng, _ = engine.New(n.dev.TUN(), n.node.Transport(), engine.NewTable(routes, netip.PrefixFrom(n.addrA, 32)), nil)
	done := make(chan error, 1)
	go func() { done <- n.eng.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		<-done
		n.node.Close()
	})
	return n
}

// TestWhoMayTalk drives a node's packet protocol from a real libp2p host
// that is a configured peer, and checks what reaches the device.
func TestWhoMayTalk(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	routedToB := netip.MustParsePrefix("10.9.0.0/24")
	a := startEngineNode(t, ctx, routedToB)
	node, eng, dev, kb := a.node, a.eng, a.dev, a.keyB
	idA, addrA, addrB := a.idA, a.addrA, a.addrB

	hb, err := libp2p.New(libp2p.Identity(kb), libp2p.ListenAddrStrings("/ip4/127.0.0.1/tcp/0"))
	if err != nil {
		t.Fatal(err)
	}
	defer hb.Close()
	if err := hb.Connect(ctx, peer.AddrInfo{ID: idA, Addrs: node.ListenAddrs()}); err != nil {
		t.Fatal(err)
	}
	s, err := hb.NewStream(ctx, idA, tunnel.PacketProtocol)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	w := bufio.NewWriter(s)
	send := func(src netip.Addr) {
		t.Helper()
		if err := tunnel.WriteFrame(w, tuntest.Ping(addrA, src)); err != nil {
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

	// Only this node's address is B's to reach: not the host's others (a
	// LAN, docker0), nor networks behind it that it does not serve.
	for i, dst := range []string{"192.168.1.1", "172.17.0.1", "10.9.0.1"} {
		if err := tunnel.WriteFrame(w, tuntest.Ping(netip.MustParseAddr(dst), addrB)); err != nil {
			t.Fatal(err)
		}
		w.Flush()
		for deadline := time.Now().Add(5 * time.Second); eng.Counters.DropDestination.Load() != uint64(i+1); time.Sleep(5 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("packet to %s: DropDestination = %d, want %d", dst, eng.Counters.DropDestination.Load(), i+1)
			}
		}
	}
	select {
	case p := <-dev.Inbound:
		t.Fatalf("a packet to % x reached the device", p[16:20])
	default:
	}
}
