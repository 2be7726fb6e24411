package tunnel

import (
	"bytes"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/mynetwork/mynetwork/internal/engine"
	"github.com/mynetwork/mynetwork/internal/packet"
	"github.com/mynetwork/mynetwork/internal/packet/packettest"
	"github.com/mynetwork/mynetwork/p2p/p2ptest"
)

// sizedDevice is a packet.Device with an MTU and, when read is set, reads
// as large as a TCP super-packet: only its sizes are used.
type sizedDevice struct {
	packet.Device
	mtu, read int
}

func (d sizedDevice) MTU() (int, error) { return d.mtu, nil }
func (d sizedDevice) ReadSize() int {
	return max(d.mtu, d.read)
}

// TestLargePacketsChangeHands sends a mix of large and small packets as the
// engine does (SendBuffers from buffers of the engine's size for the
// device) and receives them into such buffers: every packet arrives intact
// and in order, and the large ones moved by buffer, not by copy, at both
// ends.
func TestLargePacketsChangeHands(t *testing.T) {
	devices := map[string]sizedDevice{"TUN with offload": {mtu: 1420, read: 0xFFFF}, "TUN at 65000": {mtu: 65000}}
	for _, listen := range []string{"/ip4/127.0.0.1/tcp/0", "/ip4/127.0.0.1/udp/0/quic-v1"} {
		for name, dev := range devices {
			t.Run(listen+"/"+name, func(t *testing.T) {
				largePacketsChangeHands(t, listen, dev)
			})
		}
	}
}

func largePacketsChangeHands(t *testing.T, listen string, dev sizedDevice) {
	ka, ida := p2ptest.NewKey(t)
	kb, idb := p2ptest.NewKey(t)
	b := newNode(t, nodeOptions{Key: kb, Listen: []string{listen}, Peers: []testPeer{{ID: ida}}, MaxPacket: MaxFrame})
	a := newNode(t, nodeOptions{Key: ka, Listen: []string{listen}, Peers: []testPeer{{ID: idb, Addrs: b.Host().Addrs()}}, MaxPacket: MaxFrame})
	start(t, a, b)
	maxPacket, bufLen := dev.ReadSize(), engine.BufferSize(dev, a.Transport())
	engineBufs := func(n int) [][]byte {
		bufs := make([][]byte, n)
		for i := range bufs {
			bufs[i] = make([]byte, bufLen)
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
	probe := packettest.IPv4(6, 60, 0x18, 0)
	openStream(t, a, idb, probe, got)

	var want [][]byte
	tx := engineBufs(4)
	txSizes := make([]int, len(tx))
	swappedTx, largeTx, largeRx := 0, 0, 0
	for round := range 10 {
		for i := range tx {
			size := []int{maxPacket, 100, 30000, 1400}[i]
			p := packettest.IPv4(6, size, 0x18, round*4+i)
			txSizes[i] = copy(tx[i][Headroom:], p)
			want = append(want, p)
			if size > bufTiers[len(bufTiers)-1] { // smaller ones are copied into a buffer of their size
				largeTx++
			}
			if size > smallPacket { // received into a full-size buffer
				largeRx++
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
			if len(tx[i]) < bufLen {
				t.Fatalf("SendBuffers left a %d-byte buffer in place of a %d-byte one", len(tx[i]), bufLen)
			}
		}
		// Each round arrives before the next is sent: ten rounds at once
		// queue 2.6 MB, and on a loaded machine CoDel dropped a packet
		// that waited there 70 ms, which is its job, not this test's.
		receiveRound(t, got, probe, want[round*4:], round*4, a.Transport().Stats(idb))
	}
	if swappedTx != largeTx || swappedRx != largeRx {
		t.Errorf("large packets moved by buffer: %d of %d sent, %d of %d received", swappedTx, largeTx, swappedRx, largeRx)
	}
}

// receiveRound takes the four packets of a round from got, in order, and
// checks each against want (first is the first one's index).
func receiveRound(t *testing.T, got <-chan []byte, probe []byte, want [][]byte, first int, st *PeerCounters) {
	t.Helper()
	for i, w := range want[:4] {
		select {
		case p := <-got:
			for bytes.Equal(p, probe) { // a late probe: not one of ours
				p = <-got
			}
			if !bytes.Equal(p, w) {
				t.Fatalf("packet %d: got %d bytes, want %d (or the bytes differ); sender dropped %d (delay %d, queue %d)",
					first+i, len(p), len(w), st.DropDelay.Load()+st.DropQueue.Load()+st.DropNoLink.Load(), st.DropDelay.Load(), st.DropQueue.Load())
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("packet %d not received; sender sent %d packets", first+i, st.TxPackets.Load())
		}
	}
}

// openStream sends probe from a to peer to until something arrives on got
// (the first packets may be dropped while the stream opens), then lets
// late probes arrive and drains got.
func openStream[T any](t *testing.T, a *testNode, to peer.ID, probe []byte, got chan T) {
	t.Helper()
	p2ptest.Eventually(t, "the packet stream", func() bool {
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
