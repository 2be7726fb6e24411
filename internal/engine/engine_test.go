package engine

import (
	"context"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/mynetwork/mynetwork/internal/engine/enginetest"
	"go.uber.org/goleak"
	"golang.zx2c4.com/wireguard/tun"
	"golang.zx2c4.com/wireguard/tun/tuntest"
)

var (
	idA = peer.ID("node-a")
	idB = peer.ID("node-b")
	idC = peer.ID("node-c")
	ipA = netip.MustParseAddr("100.64.0.1")
	ipB = netip.MustParseAddr("100.64.0.2")
	ipC = netip.MustParseAddr("100.64.0.3")
)

func pfx(s string) netip.Prefix { return netip.MustParsePrefix(s) }

// localOf is what a test node's table delivers: its own mesh address.
func localOf(id peer.ID) netip.Prefix {
	return netip.PrefixFrom(map[peer.ID]netip.Addr{idA: ipA, idB: ipB, idC: ipC}[id], 32)
}

func TestTableLookup(t *testing.T) {
	tab := NewTable([]Route{
		{pfx("100.64.0.2/32"), idB},
		{pfx("10.0.0.0/8"), idB},
		{pfx("10.1.0.0/16"), idC},
		{pfx("fd00::/64"), idC},
	})
	tests := []struct {
		name string
		dst  string
		want peer.ID
		ok   bool
	}{
		{"host route", "100.64.0.2", idB, true},
		{"longest prefix wins", "10.1.2.3", idC, true},
		{"shorter prefix", "10.2.0.1", idB, true},
		{"ipv6", "fd00::5", idC, true},
		{"no route", "192.0.2.1", "", false},
		{"other mesh address", "100.64.0.9", "", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := tab.Lookup(netip.MustParseAddr(tc.dst))
			if got != tc.want || ok != tc.ok {
				t.Errorf("Lookup(%s) = %q %v, want %q %v", tc.dst, got, ok, tc.want, tc.ok)
			}
		})
	}
	if !tab.Allowed(netip.MustParseAddr("10.1.0.1"), idC) || tab.Allowed(netip.MustParseAddr("10.1.0.1"), idB) {
		t.Error("Allowed must follow the longest prefix")
	}
	t2 := tab.With(Route{pfx("10.1.0.0/16"), idB}).Without(pfx("10.0.0.0/8"))
	if p, _ := t2.Lookup(netip.MustParseAddr("10.1.0.1")); p != idB {
		t.Errorf("With did not replace the route: %v", p)
	}
	if _, ok := t2.Lookup(netip.MustParseAddr("10.2.0.1")); ok {
		t.Error("Without did not remove the route")
	}
	if _, ok := tab.Lookup(netip.MustParseAddr("10.2.0.1")); !ok {
		t.Error("tables must be immutable")
	}
}

type node struct {
	tun *tuntest.ChannelTUN
	tr  *enginetest.MemTransport
	eng *Engine
}

func startNode(t *testing.T, ctx context.Context, mesh *enginetest.Mesh, id peer.ID, routes []Route) *node {
	t.Helper()
	tr := mesh.Join(id)
	n := startNodeOn(t, ctx, tr, NewTable(routes, localOf(id)))
	n.tr = tr
	return n
}

// startNodeOn runs an engine on a channel TUN and the given transport.
func startNodeOn(t *testing.T, ctx context.Context, tr Transport, table *Table) *node {
	t.Helper()
	n := &node{tun: tuntest.NewChannelTUN()}
	eng, err := New(n.tun.TUN(), tr, table, nil)
	if err != nil {
		t.Fatal(err)
	}
	n.eng = eng
	done := make(chan error, 1)
	go func() { done <- eng.Run(ctx) }()
	t.Cleanup(func() {
		eng.Close()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	return n
}

func recv(t *testing.T, ch chan []byte) []byte {
	t.Helper()
	select {
	case p := <-ch:
		return p
	case <-time.After(5 * time.Second):
		t.Fatal("no packet")
		return nil
	}
}

func waitFor(t *testing.T, what string, f func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !f() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestEnginePingBothWays(t *testing.T) {
	defer goleak.VerifyNone(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	mesh := enginetest.NewMesh()
	a := startNode(t, ctx, mesh, idA, []Route{{netip.PrefixFrom(ipB, 32), idB}})
	b := startNode(t, ctx, mesh, idB, []Route{{netip.PrefixFrom(ipA, 32), idA}})

	ping := tuntest.Ping(ipB, ipA)
	a.tun.Outbound <- ping
	if got := recv(t, b.tun.Inbound); string(got) != string(ping) {
		t.Fatalf("B got %x, want %x", got, ping)
	}
	pong := tuntest.Ping(ipA, ipB)
	b.tun.Outbound <- pong
	if got := recv(t, a.tun.Inbound); string(got) != string(pong) {
		t.Fatalf("A got %x", got)
	}
	// The engine counts a received packet after writing it to the device,
	// so the count may trail the packet by a moment.
	waitFor(t, "A's counters", func() bool {
		c := &a.eng.Counters
		return c.TxPackets.Load() == 1 && c.RxPackets.Load() == 1 && c.TxBytes.Load() == uint64(len(ping))
	})
}

// TestEngineHandsBuffersOver: over a transport that takes the buffers
// packets were read into, every packet arrives intact, so the engine reads
// the next batch into the buffers it got back, not the ones it gave away.
func TestEngineHandsBuffersOver(t *testing.T) {
	defer goleak.VerifyNone(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	mesh := enginetest.NewMesh()
	taking := &enginetest.TakingTransport{MemTransport: mesh.Join(idA)}
	a := startNodeOn(t, ctx, taking, NewTable([]Route{{netip.PrefixFrom(ipB, 32), idB}}, localOf(idA)))
	b := startNode(t, ctx, mesh, idB, []Route{{netip.PrefixFrom(ipA, 32), idA}})

	const count = 200
	var want [][]byte
	for i := range count {
		p := tuntest.Ping(ipB, ipA)
		p[len(p)-1], p[len(p)-2] = byte(i), byte(i>>8)
		want = append(want, p)
		a.tun.Outbound <- p
	}
	for i := range count {
		if got := recv(t, b.tun.Inbound); string(got) != string(want[i]) {
			t.Fatalf("packet %d arrived as %x, want %x", i, got, want[i])
		}
	}
	waitFor(t, "A's counters", func() bool { return a.eng.Counters.TxPackets.Load() == count })
	if taken := taking.Taken.Load(); taken != count {
		t.Fatalf("the transport took %d buffers, want %d", taken, count)
	}
}

func TestEngineDrops(t *testing.T) {
	defer goleak.VerifyNone(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	mesh := enginetest.NewMesh()
	tr := mesh.Join(idA)
	a := startNodeOn(t, ctx, tr, NewTable([]Route{{netip.PrefixFrom(ipB, 32), idB}, {pfx("10.9.0.0/16"), idB}},
		localOf(idA), pfx("192.168.7.0/24"))) // A serves a LAN
	a.tr = tr
	mesh.Join(idB)
	c := mesh.Join(idC)

	t.Run("no route", func(t *testing.T) {
		a.tun.Outbound <- tuntest.Ping(ipC, ipA)
		waitFor(t, "DropNoRoute", func() bool { return a.eng.Counters.DropNoRoute.Load() == 1 })
	})
	t.Run("not a packet", func(t *testing.T) {
		a.tun.Outbound <- []byte{0x10, 1, 2}
		waitFor(t, "DropInvalid", func() bool { return a.eng.Counters.DropInvalid.Load() == 1 })
	})
	t.Run("spoofed source from a configured peer", func(t *testing.T) {
		// B may use 100.64.0.2 and 10.9/16, nothing else.
		a.tr.Inject(idB, tuntest.Ping(ipA, ipC))
		waitFor(t, "DropSource", func() bool { return a.eng.Counters.DropSource.Load() == 1 })
	})
	t.Run("unknown peer", func(t *testing.T) {
		_ = c
		a.tr.Inject(idC, tuntest.Ping(ipA, ipC))
		waitFor(t, "DropSource", func() bool { return a.eng.Counters.DropSource.Load() == 2 })
	})
	t.Run("routed subnet is allowed", func(t *testing.T) {
		p := tuntest.Ping(ipA, netip.MustParseAddr("10.9.1.1"))
		a.tr.Inject(idB, p)
		if got := recv(t, a.tun.Inbound); string(got) != string(p) {
			t.Fatal("routed source not delivered")
		}
	})
	t.Run("to a network this node serves", func(t *testing.T) {
		p := tuntest.Ping(netip.MustParseAddr("192.168.7.9"), ipB)
		a.tr.Inject(idB, p)
		if got := recv(t, a.tun.Inbound); string(got) != string(p) {
			t.Fatal("packet to a served network not delivered")
		}
	})
	t.Run("to an address this node does not serve", func(t *testing.T) {
		// The host's other addresses (a LAN, docker0), another mesh node's.
		for i, dst := range []string{"192.168.8.1", "172.17.0.1", "100.64.0.3", "10.9.1.1"} {
			a.tr.Inject(idB, tuntest.Ping(netip.MustParseAddr(dst), ipB))
			waitFor(t, "DropDestination", func() bool { return a.eng.Counters.DropDestination.Load() == uint64(i+1) })
		}
		select {
		case p := <-a.tun.Inbound:
			t.Fatalf("delivered % x", p)
		default:
		}
	})
	t.Run("exit client", func(t *testing.T) {
		// B may use A as its exit node: anywhere no peer is routed, not
		// through A to another peer's networks.
		a.eng.SetExitClients([]peer.ID{idB})
		defer a.eng.SetExitClients(nil)
		for _, dst := range []string{"192.168.8.1", "198.51.100.7"} {
			p := tuntest.Ping(netip.MustParseAddr(dst), ipB)
			a.tr.Inject(idB, p)
			if got := recv(t, a.tun.Inbound); string(got) != string(p) {
				t.Fatalf("exit client's packet to %s not delivered", dst)
			}
		}
		a.tr.Inject(idB, tuntest.Ping(netip.MustParseAddr("10.9.1.1"), ipB)) // routed to B itself
		waitFor(t, "DropDestination", func() bool { return a.eng.Counters.DropDestination.Load() == 5 })
	})
	t.Run("route swap", func(t *testing.T) {
		a.eng.SetTable(a.eng.Table().Without(pfx("10.9.0.0/16")))
		a.tr.Inject(idB, tuntest.Ping(ipA, netip.MustParseAddr("10.9.1.1")))
		waitFor(t, "DropSource", func() bool { return a.eng.Counters.DropSource.Load() == 3 })
		if !a.eng.Table().Delivers(netip.MustParseAddr("192.168.7.1")) {
			t.Fatal("a changed table no longer delivers to the served network")
		}
	})
}

// smallMTU is a device whose MTU is smaller than its peers'.
type smallMTU struct{ tun.Device }

func (smallMTU) MTU() (int, error) { return 1280, nil }

// maxPacketTransport is a MemTransport that says it carries packets up to
// 65000 bytes, as the libp2p transport does.
type maxPacketTransport struct{ *enginetest.MemTransport }

func (maxPacketTransport) MaxPacket() int { return 65000 }

// TestPeerWithLargerMTU: a peer whose MTU is larger than this node's sends
// a packet larger than this node's MTU (ping -s 9000, say, which its kernel
// need not fragment); it reaches the device whole, not cut to the MTU.
func TestPeerWithLargerMTU(t *testing.T) {
	defer goleak.VerifyNone(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	mesh := enginetest.NewMesh()
	tr := maxPacketTransport{mesh.Join(idA)}
	ch := tuntest.NewChannelTUN()
	eng, err := New(smallMTU{ch.TUN()}, tr, NewTable([]Route{{netip.PrefixFrom(ipB, 32), idB}}, localOf(idA)), nil)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- eng.Run(ctx) }()
	defer func() {
		eng.Close()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	}()

	big := append(tuntest.Ping(ipA, ipB), make([]byte, 9000)...)
	big[len(big)-1] = 0xEE
	tr.Inject(idB, big)
	if got := recv(t, ch.Inbound); len(got) != len(big) || got[len(got)-1] != 0xEE {
		t.Fatalf("a %d-byte packet reached the device as %d bytes", len(big), len(got))
	}
}

// panickyTransport panics in its first Receive, as a bug on the packet
// path would.
type panickyTransport struct {
	*enginetest.MemTransport
	once sync.Once
}

func (p *panickyTransport) Receive(bufs [][]byte, sizes []int, from []peer.ID, offset int) (int, error) {
	p.once.Do(func() { panic("a bug on the packet path") })
	return p.MemTransport.Receive(bufs, sizes, from, offset)
}

// TestPanicIsContained: a panic while handling packets costs its batch,
// is counted, and the engine goes on; the process does not end.
func TestPanicIsContained(t *testing.T) {
	defer goleak.VerifyNone(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	mesh := enginetest.NewMesh()
	tr := &panickyTransport{MemTransport: mesh.Join(idA)}
	a := startNodeOn(t, ctx, tr, NewTable([]Route{{netip.PrefixFrom(ipB, 32), idB}}, localOf(idA)))
	p := tuntest.Ping(ipA, ipB)
	tr.Inject(idB, p)
	if got := recv(t, a.tun.Inbound); string(got) != string(p) {
		t.Fatal("packet after the panic not delivered")
	}
	if n := a.eng.Counters.Panics.Load(); n != 1 {
		t.Fatalf("Panics = %d, want 1", n)
	}
}
