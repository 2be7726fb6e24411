package tunnel

import (
	"context"
	"encoding/binary"
	"runtime"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"

	"github.com/mynetwork/mynetwork/internal/packet"
	"github.com/mynetwork/mynetwork/internal/packet/packettest"
	"github.com/mynetwork/mynetwork/p2p/p2ptest"
)

// rawHost is a libp2p host that speaks the packet protocols by hand, as a
// hostile peer would: it has a configured peer's key, nothing else.
func rawHost(t *testing.T) (host.Host, peer.ID) {
	t.Helper()
	k, id := p2ptest.NewKey(t)
	h, err := libp2p.New(libp2p.Identity(k), libp2p.ListenAddrStrings("/ip4/127.0.0.1/tcp/0"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close() })
	return h, id
}

// rawStream connects h to n and opens a stream on proto.
func rawStream(t *testing.T, h host.Host, n *testNode, proto protocol.ID) network.Stream {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := h.Connect(ctx, peer.AddrInfo{ID: n.Host().ID(), Addrs: n.Host().Addrs()}); err != nil {
		t.Fatal(err)
	}
	s, err := h.NewStream(ctx, n.Host().ID(), proto)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// waitReset waits until the node has reset s: a write fails. (Reads end at
// once: the node closes its side for writing when it takes a stream.)
func waitReset(t *testing.T, s network.Stream) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		if _, err := s.Write([]byte{0}); err != nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("the node did not reset the stream")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestMalformedFramesResetTheStream: frames no node sends, from a
// configured peer, to a node whose device takes offload headers and to one
// whose device does not (a kernel TUN at MTU 65000, userspace mode; macOS
// and Windows): each resets its stream and is counted, and the node goes
// on taking packets. The first one crashed a node of the second kind
// (issue 15): a 4-byte IPv4 packet whose header asks for a checksum to be
// completed.
func TestMalformedFramesResetTheStream(t *testing.T) {
	frames := []struct {
		name  string
		proto protocol.ID
		frame []byte
	}{
		{"checksum in a 4-byte IPv4 packet", GSOProtocol, []byte{0, 4, packet.NeedsCsum, 0, 0, 0, 0, 0, 0, 0, 2, 0, 0x40, 0, 0xbf, 0xff}},
		{"checksum inside the IP header", GSOProtocol, append([]byte{0, 28, packet.NeedsCsum, 0, 0, 0, 0, 0, 10, 0, 6, 0}, packettest.IPv4(17, 28, 0, 0)...)},
		{"empty frame", GSOProtocol, []byte{0, 0}},
		{"empty frame, plain stream", PacketProtocol, []byte{0, 0}},
		{"segmentation of a UDP packet", GSOProtocol, append([]byte{0, 28, packet.NeedsCsum, packet.GSOTCPv4, 0, 0, 0x18, 2, 20, 0, 16, 0}, packettest.IPv4(17, 28, 0, 0)...)},
	}
	for _, offload := range []bool{false, true} {
		evil, ide := rawHost(t)
		k, _ := p2ptest.NewKey(t)
		n := newNode(t, nodeOptions{Key: k, Listen: []string{"/ip4/127.0.0.1/tcp/0"}, Peers: []testPeer{{ID: ide}}, MaxPacket: MaxFrame, VirtioHeaders: offload})
		start(t, n)
		for i, f := range frames {
			s := rawStream(t, evil, n, f.proto)
			if _, err := s.Write(f.frame); err != nil {
				t.Fatal(err)
			}
			waitReset(t, s)
			if got := n.Transport().Stats(ide).Malformed.Load(); got != uint64(i+1) {
				t.Fatalf("offload %v, %s: %d malformed frames counted, want %d", offload, f.name, got, i+1)
			}
		}
		// A well-formed packet on a new stream still arrives.
		s := rawStream(t, evil, n, GSOProtocol)
		pkt := packettest.IPv4(17, 100, 0, 1)
		if _, err := s.Write(append(append([]byte{0, 100}, make([]byte, packet.VirtioHdrLen)...), pkt...)); err != nil {
			t.Fatal(err)
		}
		bufs, sizes, from := [][]byte{make([]byte, Headroom+MaxFrame)}, []int{0}, []peer.ID{""}
		if _, err := n.Transport().Receive(bufs, sizes, from, Headroom); err != nil || from[0] != ide || sizes[0] != len(pkt) {
			t.Fatalf("offload %v: after the malformed frames, received %d bytes from %s (%v)", offload, sizes[0], from[0], err)
		}
	}
}

// TestInboundStreamsAreBounded: a configured peer that opens packet
// streams and leaves each in the middle of a frame holds a buffer per
// stream; it keeps at most maxInbound, the oldest reset.
func TestInboundStreamsAreBounded(t *testing.T) {
	evil, ide := rawHost(t)
	k, _ := p2ptest.NewKey(t)
	n := newNode(t, nodeOptions{Key: k, Listen: []string{"/ip4/127.0.0.1/tcp/0"}, Peers: []testPeer{{ID: ide}}, MaxPacket: MaxFrame})
	start(t, n)
	var streams []network.Stream
	for range maxInbound + 3 {
		s := rawStream(t, evil, n, PacketProtocol)
		s.Write([]byte{0xff, 0xff, 0x45}) // a 64 KiB frame's first byte
		streams = append(streams, s)
	}
	p2ptest.Eventually(t, "three streams reset", func() bool {
		reset := 0
		for _, s := range streams {
			if _, err := s.Write([]byte{0}); err != nil {
				reset++
			}
		}
		return reset == 3
	})
	tr := n.Transport()
	p2ptest.Eventually(t, "the reset streams to be let go", func() bool {
		tr.mu.Lock()
		defer tr.mu.Unlock()
		return len(tr.peer(ide).inbound) == maxInbound
	})
}

// TestPeerThatStopsReading: a configured peer accepts the packet stream and
// never reads. The sender's memory stays within the peer's queue bound
// (3000-byte packets each hold a 64 KiB buffer at MTU 65000: counted by
// their bytes, 8192 of them pinned 512 MiB), and the stalled stream is
// reset.
func TestPeerThatStopsReading(t *testing.T) {
	sink, ids := rawHost(t)
	for _, p := range []protocol.ID{PacketProtocol, GSOProtocol} {
		sink.SetStreamHandler(p, func(network.Stream) {}) // open, never read
	}
	k, _ := p2ptest.NewKey(t)
	a := newNode(t, nodeOptions{Key: k, Listen: []string{"/ip4/127.0.0.1/tcp/0"}, Peers: []testPeer{{ID: ids, Addrs: sink.Addrs()}}, MaxPacket: MaxFrame})
	a.Transport().stall = 300 * time.Millisecond
	start(t, a)
	p2ptest.Eventually(t, "a connection", func() bool { return len(a.Host().Network().ConnsToPeer(ids)) > 0 })
	heap := func() uint64 {
		runtime.GC()
		var m runtime.MemStats
		runtime.ReadMemStats(&m)
		return m.HeapAlloc
	}
	before := heap()
	pkt := packettest.IPv4(17, 3000, 0, 1)
	batch := make([][]byte, 64)
	for i := range batch {
		batch[i] = pkt
	}
	tr := a.Transport()
	st := tr.Stats(ids)
	deadline := time.Now().Add(15 * time.Second)
	for st.Stalled.Load() < 2 {
		if time.Now().After(deadline) {
			t.Fatalf("no stalled stream reset; %+v", st)
		}
		for range 16 {
			for i := range batch {
				binary.BigEndian.PutUint16(pkt[20:], uint16(i)) // many flows
			}
			tr.Send(ids, batch)
		}
		time.Sleep(10 * time.Millisecond)
	}
	_, queued := tr.peer(ids).queue.len()
	grew := int64(heap()) - int64(before)
	t.Logf("heap grew %d MiB with %d bytes queued; %d stalled streams reset, %d packets dropped", grew>>20, queued, st.Stalled.Load(), st.DropQueue.Load())
	if grew > 2*queueMem {
		t.Fatalf("heap grew by %d MiB under a peer that does not read, over twice the queue's %d MiB", grew>>20, queueMem>>20)
	}
}
