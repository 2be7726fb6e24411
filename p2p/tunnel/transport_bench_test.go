package tunnel

import (
	"log/slog"
	"sync/atomic"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/mynetwork/mynetwork/internal/packet/packettest"
	"github.com/mynetwork/mynetwork/p2p/p2ptest"
)

// BenchmarkStream moves packets from one node to another over loopback on
// the packet stream alone (no TUN, no engine): what one peer's transport
// costs per byte, per transport and packet size. At most window packets are
// in flight, so the queue never fills; CoDel may drop from it (the window
// does not slow down for that, as a TCP would), and those count as gone. Packets go in and out of
// engine-sized buffers, as the engine hands them over.
func BenchmarkStream(b *testing.B) {
	const window = 256
	for _, tc := range []struct {
		name, listen string
		size         int
	}{
		{"tcp/60000B", "/ip4/127.0.0.1/tcp/0", 60000},
		{"tcp/1400B", "/ip4/127.0.0.1/tcp/0", 1400},
		{"quic/60000B", "/ip4/127.0.0.1/udp/0/quic-v1", 60000},
		{"quic/1400B", "/ip4/127.0.0.1/udp/0/quic-v1", 1400},
	} {
		b.Run(tc.name, func(b *testing.B) {
			ka, ida := p2ptest.NewKey(b)
			kb, idb := p2ptest.NewKey(b)
			quiet := slog.New(slog.DiscardHandler)
			rx := newNode(b, nodeOptions{Key: kb, Listen: []string{tc.listen}, Peers: []testPeer{{ID: ida}},
				MaxPacket: 65535, NoDatagrams: true, Log: quiet})
			tx := newNode(b, nodeOptions{Key: ka, Listen: []string{tc.listen}, Peers: []testPeer{{ID: idb, Addrs: rx.Host().Addrs()}},
				MaxPacket: 65535, NoDatagrams: true, Log: quiet})
			start(b, tx, rx)

			pumpPackets(b, tx, rx, ida, idb, tc.size, window)
		})
	}
}

// pumpPackets sends b.N packets of size bytes from tx to rx as the engine
// would, at most window of them in flight, and returns once all arrived or
// were dropped by CoDel (reported as codel-drops/op).
func pumpPackets(b *testing.B, tx, rx *testNode, ida, idb peer.ID, size, window int) {
	const batch = 16
	var received atomic.Int64
	more := make(chan struct{}, 1)
	go func() {
		bufs := make([][]byte, 64)
		for i := range bufs {
			bufs[i] = make([]byte, Headroom+65535)
		}
		sizes, from := make([]int, len(bufs)), make([]peer.ID, len(bufs))
		for {
			n, err := rx.Transport().Receive(bufs, sizes, from, Headroom)
			if err != nil {
				return
			}
			received.Add(int64(n))
			select {
			case more <- struct{}{}:
			default:
			}
		}
	}()
	// gone counts the packets that arrived or that CoDel dropped.
	gone := func() int64 { return received.Load() + int64(tx.Transport().Stats(idb).DropDelay.Load()) }
	// waitFor blocks until gone reaches n.
	waitFor := func(n int64) {
		for gone() < n {
			select {
			case <-more:
			case <-time.After(10 * time.Second):
				b.Fatalf("packets lost: %d of %d arrived or were dropped by CoDel; sender %+v, receiver %+v", gone(), n, tx.Transport().Stats(idb), rx.Transport().Stats(ida))
			}
		}
	}
	bufs, sizes := make([][]byte, batch), make([]int, batch)
	for i := range bufs {
		bufs[i] = make([]byte, Headroom+65535)
	}
	// fill writes the batch's packets, as a device read would.
	fill := func(k int) {
		for i := range k {
			sizes[i] = copy(bufs[i][Headroom:], packettest.IPv4(6, size, 0x18, i))
		}
	}
	p2ptest.Eventually(b, "the packet stream", func() bool {
		fill(1)
		tx.Transport().SendBuffers(idb, bufs[:1], sizes[:1], Headroom)
		time.Sleep(10 * time.Millisecond)
		return received.Load() > 0
	})
	time.Sleep(100 * time.Millisecond)
	base, drops := gone(), tx.Transport().Stats(idb).DropDelay.Load()
	fill(batch) // the buffers that come back are left as they are

	b.SetBytes(int64(size))
	b.ResetTimer()
	for sent := 0; sent < b.N; {
		k := min(batch, b.N-sent)
		waitFor(base + int64(sent+k-window))
		tx.Transport().SendBuffers(idb, bufs[:k], sizes[:k], Headroom)
		sent += k
	}
	waitFor(base + int64(b.N))
	b.ReportMetric(float64(tx.Transport().Stats(idb).DropDelay.Load()-drops)/float64(b.N), "codel-drops/op")
}
