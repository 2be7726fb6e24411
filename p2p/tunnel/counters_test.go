package tunnel

import (
	"testing"
	"time"

	"github.com/mynetwork/mynetwork/internal/packet/packettest"
	"github.com/mynetwork/mynetwork/p2p/p2ptest"
)

// TestPeerByteCounters: a peer's bytes are counted each way, on the
// datagram path and the stream alike, though they are added per batch.
func TestPeerByteCounters(t *testing.T) {
	a, b := pair(t, "/ip4/127.0.0.1/udp/0/quic-v1")
	in := receiver(t, b)
	warmUp(t, a, b, in, true)
	// warmUp has waited 200 ms since its last packet: its bytes are counted.
	tx, rx := a.Transport().Stats(b.Host().ID()), b.Transport().Stats(a.Host().ID())
	tx0, rx0, dg0 := tx.TxBytes.Load(), rx.RxBytes.Load(), tx.TxDatagrams.Load()
	sizes := []int{60, 100, 1200, 1490}
	var want uint64
	exchange(t, a, b, in, 20, func(i int) []byte {
		size := sizes[i%len(sizes)]
		want += uint64(size)
		if i%2 == 1 {
			return packettest.IPv4(6, size, 0x18, i) // TCP data: on the stream
		}
		return packettest.IPv4(17, size, 0, i)
	})
	if tx.TxDatagrams.Load() == dg0 {
		t.Fatal("no datagrams sent: the test covers the stream only")
	}
	if got := rx.RxBytes.Load() - rx0; got != want {
		t.Errorf("received %d bytes, want %d", got, want)
	}
	p2ptest.Eventually(t, "sent bytes counted", func() bool { return tx.TxBytes.Load()-tx0 == want })
}

// TestFQSojourn: the queue keeps the wait of the last packet taken, for
// the send loop to publish as the peer's queue delay.
func TestFQSojourn(t *testing.T) {
	pk := flowPacket(17, 1000, 100)
	r := newFQRig(pk)
	r.add(pk, 2*time.Millisecond)
	if got := r.q.take(9 * time.Millisecond); got != pk {
		t.Fatal("the packet was not taken")
	}
	if r.q.sojourn != 7*time.Millisecond {
		t.Errorf("sojourn %v, want 7ms", r.q.sojourn)
	}
}
