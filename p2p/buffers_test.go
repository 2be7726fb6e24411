package p2p

import (
	"bytes"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
)

// TestLargePacketsChangeHands sends a mix of large and small packets as the
// engine does (SendBuffers from engine-sized buffers) and receives them into
// engine-sized buffers: every packet arrives intact and in order, and the
// large ones moved by buffer, not by copy, at both ends.
func TestLargePacketsChangeHands(t *testing.T) {
	const maxPacket = 65064
	for _, listen := range []string{"/ip4/127.0.0.1/tcp/0", "/ip4/127.0.0.1/udp/0/quic-v1"} {
		t.Run(listen, func(t *testing.T) {
			ka, ida := newKey(t)
			kb, idb := newKey(t)
			b := newNode(t, Options{Key: kb, Listen: []string{listen}, Peers: []Peer{{ID: ida}}, MaxPacket: maxPacket})
			a := newNode(t, Options{Key: ka, Listen: []string{listen}, Peers: []Peer{{ID: idb, Addrs: b.Host().Addrs()}}, MaxPacket: maxPacket})
			start(t, a, b)
			engineBufs := func(n int) [][]byte {
				bufs := make([][]byte, n)
				for i := range bufs {
					bufs[i] = make([]byte, Headroom+maxPacket)
				}
				return bufs
			}

			rx := engineBufs(8)
			sizes, from := make([]int, len(rx)), make([]peer.ID, len(rx))
			got := make(chan []byte, 100)
			swappedRx := 0
			go func() {
				for {
					before := make([]*byte, len(rx))
					for i := range rx {
						before[i] = &rx[i][0]
					}
					n, err := b.Transport().Receive(rx, sizes, from, Headroom)
					if err != nil {
						close(got)
						return
					}
					for i := range n {
						if &rx[i][0] != before[i] {
							swappedRx++
						}
						got <- bytes.Clone(rx[i][Headroom : Headroom+sizes[i]])
					}
				}
			}()
			probe := ipv4(6, 60, 0x18, 0)
			openStream(t, a, idb, probe, got)

			var want [][]byte
			tx := engineBufs(4)
			txSizes := make([]int, len(tx))
			swappedTx, large := 0, 0
			for round := range 10 {
				for i := range tx {
					size := []int{maxPacket, 100, 30000, 1400}[i]
					p := ipv4(6, size, 0x18, round*4+i)
					txSizes[i] = copy(tx[i][Headroom:], p)
					want = append(want, p)
					if size > smallPacket {
						large++
					}
				}
				before := make([]*byte, len(tx))
				for i := range tx {
					before[i] = &tx[i][0]
				}
				if err := a.Transport().SendBuffers(idb, tx, txSizes, Headroom); err != nil {
					t.Fatal(err)
				}
				for i := range tx {
					if &tx[i][0] != before[i] {
						swappedTx++
					}
					if len(tx[i]) < Headroom+maxPacket {
						t.Fatalf("SendBuffers left a %d-byte buffer in place of a %d-byte one", len(tx[i]), Headroom+maxPacket)
					}
				}
			}
			for i, w := range want {
				var p []byte
				select {
				case p = <-got:
					for bytes.Equal(p, probe) { // a late probe: not one of ours
						p = <-got
					}
					if !bytes.Equal(p, w) {
						t.Fatalf("packet %d: got %d bytes, want %d (or the bytes differ)", i, len(p), len(w))
					}
				case <-time.After(10 * time.Second):
					t.Fatalf("packet %d of %d not received; %+v", i, len(want), a.Transport().Stats(idb))
				}
			}
			if swappedTx != large || swappedRx != large {
				t.Errorf("large packets moved by buffer: %d sent, %d received, of %d", swappedTx, swappedRx, large)
			}
		})
	}
}

// openStream sends probe from a to peer to until something arrives on got
// (the first packets may be dropped while the stream opens), then lets
// late probes arrive and drains got.
func openStream[T any](t *testing.T, a *Node, to peer.ID, probe []byte, got chan T) {
	t.Helper()
	eventually(t, "the packet stream", func() bool {
		a.Transport().Send(to, [][]byte{probe})
		select {
		case <-got:
			return true
		case <-time.After(50 * time.Millisecond):
			return false
		}
	})
	time.Sleep(100 * time.Millisecond)
	for len(got) > 0 {
		<-got
	}
}
