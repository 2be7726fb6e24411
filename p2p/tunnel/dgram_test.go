package tunnel

import (
	"bytes"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/mynetwork/mynetwork/internal/packet/packettest"
	"github.com/mynetwork/mynetwork/p2p/p2ptest"
)

func TestWantsDatagram(t *testing.T) {
	const ack, psh, syn, fin = 0x10, 0x08, 0x02, 0x01
	v6udp := make([]byte, 60)
	v6udp[0], v6udp[6] = 0x60, 17
	tests := []struct {
		name string
		pkt  []byte
		want bool
	}{
		{"UDP", packettest.IPv4(17, 100, 0, 0), true},
		{"ICMP", packettest.IPv4(1, 84, 0, 0), true},
		{"IPv6 UDP", v6udp, true},
		{"TCP pure ACK", packettest.IPv4(6, 40, ack, 0), true},
		{"TCP data", packettest.IPv4(6, 1000, ack|psh, 0), false},
		{"TCP SYN", packettest.IPv4(6, 40, syn, 0), false},
		{"TCP FIN", packettest.IPv4(6, 40, fin|ack, 0), false},
		{"truncated TCP", packettest.IPv4(6, 30, ack, 0), false},
		{"not IP", []byte{0x10, 0, 0}, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := wantsDatagram(tc.pkt); got != tc.want {
				t.Errorf("wantsDatagram = %v, want %v", got, tc.want)
			}
		})
	}
}

// receiver reads b's packets in the background until the test ends.
func receiver(t *testing.T, b *testNode) <-chan []byte {
	out := make(chan []byte, 1024)
	go func() {
		bufs := [][]byte{make([]byte, 2000)}
		sizes, from := make([]int, 1), make([]peer.ID, 1)
		for {
			n, err := b.Transport().Receive(bufs, sizes, from, 16)
			if err != nil {
				close(out)
				return
			}
			if n == 1 {
				out <- append([]byte(nil), bufs[0][16:16+sizes[0]]...)
			}
		}
	}()
	return out
}

// warmUp sends packets from a to b until one arrives and the path (stream
// or datagram, as wantDatagrams says) is in use, then drains.
func warmUp(t *testing.T, a, b *testNode, in <-chan []byte, wantDatagrams bool) {
	t.Helper()
	st := a.Transport().Stats(b.Host().ID())
	p2ptest.Eventually(t, "path ready", func() bool {
		a.Transport().Send(b.Host().ID(), [][]byte{packettest.IPv4(17, 60, 0, 0)})
		time.Sleep(20 * time.Millisecond)
		return len(in) > 0 && (!wantDatagrams || st.TxDatagrams.Load() > 0)
	})
	for {
		select {
		case <-in:
		case <-time.After(200 * time.Millisecond):
			return
		}
	}
}

// exchange sends count packets made by mk from a to b and checks that each
// arrives byte-exact, in order.
func exchange(t *testing.T, a, b *testNode, in <-chan []byte, count int, mk func(i int) []byte) {
	t.Helper()
	for i := range count {
		want := mk(i)
		a.Transport().Send(b.Host().ID(), [][]byte{want})
		select {
		case got := <-in:
			if !bytes.Equal(got, want) {
				t.Fatalf("packet %d: got %d bytes, not what was sent", i, len(got))
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("packet %d never arrived", i)
		}
	}
}

func TestDatagramPath(t *testing.T) {
	t.Run("direct QUIC: small UDP as datagrams, oversize and TCP data on the stream", func(t *testing.T) {
		a, b := pair(t, "/ip4/127.0.0.1/udp/0/quic-v1")
		in := receiver(t, b)
		warmUp(t, a, b, in, true)
		st := b.Transport().Stats(a.Host().ID())
		dg0, str0 := st.RxDatagrams.Load(), st.RxPackets.Load()
		exchange(t, a, b, in, 20, func(i int) []byte { return packettest.IPv4(17, 100+i*50, 0, i) })
		if got := st.RxDatagrams.Load() - dg0; got != 20 {
			t.Errorf("small UDP: %d datagrams received, want 20", got)
		}
		exchange(t, a, b, in, 5, func(i int) []byte { return packettest.IPv4(17, 1490, 0, i) })
		exchange(t, a, b, in, 5, func(i int) []byte { return packettest.IPv4(6, 1000, 0x18, i) })
		if got := st.RxPackets.Load() - str0; got != 10 {
			t.Errorf("oversize UDP and TCP data: %d stream packets, want 10", got)
		}
	})
	t.Run("TCP connection: everything on the stream", func(t *testing.T) {
		a, b := pair(t, "/ip4/127.0.0.1/tcp/0")
		in := receiver(t, b)
		warmUp(t, a, b, in, false)
		exchange(t, a, b, in, 10, func(i int) []byte { return packettest.IPv4(17, 100, 0, i) })
		if st := b.Transport().Stats(a.Host().ID()); st.RxDatagrams.Load() != 0 {
			t.Errorf("%d datagrams on a TCP connection", st.RxDatagrams.Load())
		}
	})
	t.Run("peer without datagram support: everything on the stream", func(t *testing.T) {
		a, b := pairWith(t, "/ip4/127.0.0.1/udp/0/quic-v1", false, true)
		in := receiver(t, b)
		warmUp(t, a, b, in, false)
		time.Sleep(2 * datagramRecheck) // identify has told a that b lacks support
		exchange(t, a, b, in, 10, func(i int) []byte { return packettest.IPv4(17, 100, 0, i) })
		if a.Transport().Stats(b.Host().ID()).TxDatagrams.Load() != 0 {
			t.Errorf("datagrams sent to a peer that does not read them")
		}
	})
}
