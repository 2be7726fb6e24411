package p2p

import (
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/mynetwork/mynetwork/internal/packet"
	"github.com/mynetwork/mynetwork/internal/packet/packettest"
	"github.com/mynetwork/mynetwork/p2p/conns"
	"github.com/mynetwork/mynetwork/p2p/p2ptest"
	"github.com/mynetwork/mynetwork/p2p/tunnel"
)

// pair starts two nodes on loopback that know each other's address.
func pair(t *testing.T, listen string) (*Node, *Node) {
	t.Helper()
	return pairWith(t, listen, false, false)
}

// pairWith is pair with the datagram path off on a or b.
func pairWith(t *testing.T, listen string, noDgA, noDgB bool) (*Node, *Node) {
	t.Helper()
	ka, ida := p2ptest.NewKey(t)
	kb, idb := p2ptest.NewKey(t)
	b := newNode(t, Options{Key: kb, Listen: []string{listen}, Peers: []Peer{{ID: ida}}, MaxPacket: 1500, NoDatagrams: noDgB})
	a := newNode(t, Options{Key: ka, Listen: []string{listen}, Peers: []Peer{{ID: idb, Addrs: b.host.Addrs()}}, MaxPacket: 1500, NoDatagrams: noDgA})
	start(t, a, b)
	return a, b
}

// newNode creates a node that is closed when the test ends.
func newNode(t testing.TB, opts Options) *Node {
	t.Helper()
	n, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Close() })
	return n
}

// start starts nodes, in order, until the test ends.
func start(t testing.TB, nodes ...*Node) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	for _, n := range nodes {
		if err := n.Start(ctx); err != nil {
			t.Fatal(err)
		}
	}
}

// newHost is a plain libp2p host listening on listen (and dialing from
// there), closed when the test ends.
func newHost(t testing.TB, listen string) host.Host {
	t.Helper()
	h, err := libp2p.New(libp2p.ListenAddrStrings(listen))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close() })
	return h
}

// deliver sends pkt from src to dst until dst receives it (the first
// packets may be dropped while the connection or stream opens), and
// returns how long that took.
func deliver(t testing.TB, src, dst *Node, pkt []byte) time.Duration {
	t.Helper()
	begin := time.Now()
	bufs := [][]byte{make([]byte, tunnel.Headroom+len(pkt))}
	sizes, from := make([]int, 1), make([]peer.ID, 1)
	got := make(chan error, 1)
	go func() {
		_, err := dst.Transport().Receive(bufs, sizes, from, tunnel.Headroom)
		got <- err
	}()
	p2ptest.Eventually(t, "a packet", func() bool {
		src.Transport().Send(dst.host.ID(), [][]byte{pkt})
		select {
		case err := <-got:
			if err != nil {
				t.Fatal(err)
			}
			return true
		case <-time.After(50 * time.Millisecond):
			return false
		}
	})
	if !bytes.Equal(bufs[0][tunnel.Headroom:tunnel.Headroom+sizes[0]], pkt) || from[0] != src.host.ID() {
		t.Fatalf("packet changed on the way, or came from %s", from[0])
	}
	return time.Since(begin)
}

func TestPacketsBothWays(t *testing.T) {
	for _, listen := range []string{"/ip4/127.0.0.1/tcp/0", "/ip4/127.0.0.1/udp/0/quic-v1"} {
		t.Run(listen, func(t *testing.T) {
			a, b := pair(t, listen)
			ida, idb := a.host.ID(), b.host.ID()
			p2ptest.Eventually(t, "connection", func() bool { return a.State(idb).Connected && b.State(ida).Connected })

			bufs := [][]byte{make([]byte, 1600), make([]byte, 1600)}
			sizes, from := make([]int, 2), make([]peer.ID, 2)
			for i, c := range []struct {
				src, dst *Node
			}{{a, b}, {b, a}} {
				want := bytes.Repeat([]byte{byte(0x45 + i)}, 1400)
				got := 0
				// The first packets may be dropped while the stream opens.
				done := make(chan struct{})
				go func() {
					defer close(done)
					n, err := c.dst.Transport().Receive(bufs, sizes, from, 16)
					if err != nil || n < 1 {
						t.Errorf("receive: %v", err)
						return
					}
					if !bytes.Equal(bufs[0][16:16+sizes[0]], want) || from[0] != c.src.host.ID() {
						t.Errorf("wrong packet or sender %s", from[0])
					}
					got = n
				}()
				for sent := false; !sent; {
					c.src.Transport().Send(c.dst.host.ID(), [][]byte{want})
					select {
					case <-done:
						sent = true
					case <-time.After(100 * time.Millisecond):
					}
				}
				if got == 0 {
					t.Fatal("nothing received")
				}
			}
			if st := a.State(idb); st.Addr == nil || st.Path == PathRelay || a.Transport().Stats(idb).TxPackets.Load() == 0 {
				t.Errorf("state %+v", st)
			}
		})
	}
}

func TestStrangerIsRefused(t *testing.T) {
	a, _ := pair(t, "/ip4/127.0.0.1/tcp/0")
	h := newHost(t, "/ip4/127.0.0.1/tcp/0")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := h.Connect(ctx, peer.AddrInfo{ID: a.host.ID(), Addrs: a.host.Addrs()}); err != nil {
		t.Fatal(err)
	}
	s, err := h.NewStream(ctx, a.host.ID(), tunnel.PacketProtocol)
	if err == nil {
		var hdr = []byte{0, 20}
		s.Write(append(hdr, make([]byte, 20)...))
		buf := make([]byte, 1)
		s.Read(buf) // the reset arrives here
		s.Close()
	}
	p2ptest.Eventually(t, "refusal counted", func() bool { return a.Transport().Refused.Load() == 1 })
	if err := a.Transport().Send(h.ID(), [][]byte{{0x45}}); err == nil {
		t.Error("sending to a stranger must fail")
	}
}

func TestMeshAddressesNeverAnnouncedOrDialed(t *testing.T) {
	for _, c := range []struct {
		addr string
		mesh bool
	}{
		{"/ip4/100.64.3.4/tcp/8001", true},
		{"/ip6/fd6d:796e:6574:0:1:2:3:4/udp/8001/quic-v1", true},
		{"/ip4/100.65.0.1/tcp/8001", false},
		{"/ip4/10.0.0.1/tcp/8001", false},
		{"/dns4/example.invalid/tcp/8001", false},
	} {
		a, err := ma.NewMultiaddr(c.addr)
		if err != nil {
			t.Fatal(err)
		}
		if inMesh(a) != c.mesh || (len(withoutMesh([]ma.Multiaddr{a})) == 0) != c.mesh {
			t.Errorf("%s: inMesh=%v, want %v", c.addr, inMesh(a), c.mesh)
		}
		if (meshGater{}).InterceptAddrDial("", a) == c.mesh {
			t.Errorf("%s: gater allows dial = %v", c.addr, !c.mesh)
		}
	}
}

// TestNodeThatListensNowhere: "listenAddresses": [] makes a node that only
// dials out; it must start, reach its peer and carry packets both ways.
func TestNodeThatListensNowhere(t *testing.T) {
	ka, ida := p2ptest.NewKey(t)
	kb, idb := p2ptest.NewKey(t)
	b := newNode(t, Options{Key: kb, Listen: []string{"/ip4/127.0.0.1/tcp/0"}, Peers: []Peer{{ID: ida}}, MaxPacket: 1500})
	a := newNode(t, Options{Key: ka, Peers: []Peer{{ID: idb, Addrs: b.host.Addrs()}}, MaxPacket: 1500})
	start(t, a, b)
	// Only the relay transport's /p2p-circuit: reachable through a relay.
	for _, addr := range a.host.Network().ListenAddresses() {
		if addr.String() != "/p2p-circuit" {
			t.Fatalf("listens on %v", addr)
		}
	}
	p2ptest.Eventually(t, "connection", func() bool { return a.State(idb).Connected && b.State(ida).Connected })
	deliver(t, a, b, packettest.IPv4(17, 100, 0, 1))
	deliver(t, b, a, packettest.IPv4(17, 100, 0, 1))
}

// TestYamuxMessageHoldsAFrame: a whole frame of the packet stream, the
// largest super-packet with its length and virtio-net header, fits one
// yamux message (its 12-byte header included).
func TestYamuxMessageHoldsAFrame(t *testing.T) {
	if got, want := conns.Yamux().MaxMessageSize, uint32(12+2+packet.VirtioHdrLen+tunnel.MaxFrame); got < want {
		t.Fatalf("yamux messages of %d bytes; a frame needs %d", got, want)
	}
}
