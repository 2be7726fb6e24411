package tunnel

import (
	"log/slog"
	"net"
	"sync/atomic"
	"testing"
	"time"

	ma "github.com/multiformats/go-multiaddr"
	manet "github.com/multiformats/go-multiaddr/net"

	"github.com/mynetwork/mynetwork/internal/packet/packettest"
	"github.com/mynetwork/mynetwork/p2p/p2ptest"
)

// TestQUICQueueStaysInFQ: a bulk flow over QUIC through a 20 Mbit/s path
// with a 1 MB queue in front of it, as a shaped link has. quic-go's
// congestion control alone fills that queue, where a ping waits behind
// it; with the send gate the path's queue stays short and the backlog
// waits in the peer's flow queues, where FQ-CoDel serves a sparse flow
// first.
func TestQUICQueueStaysInFQ(t *testing.T) {
	ka, ida := p2ptest.NewKey(t)
	kb, idb := p2ptest.NewKey(t)
	quiet := slog.New(slog.DiscardHandler)
	rx := newNode(t, nodeOptions{Key: kb, Listen: []string{"/ip4/127.0.0.1/udp/0/quic-v1"}, Peers: []testPeer{{ID: ida}},
		MaxPacket: 1500, Log: quiet})
	path := shapeUDP(t, rx.Host().Addrs()[0], 20e6/8, 1<<20)
	tx := newNode(t, nodeOptions{Key: ka, Peers: []testPeer{{ID: idb, Addrs: []ma.Multiaddr{path.addr}}}, MaxPacket: 1500, Log: quiet})
	start(t, tx, rx)

	var i int
	bufs, sizes := make([][]byte, 16), make([]int, 16)
	feed := func() { // 16 TCP segments of a bulk flow: they ride the stream
		for k := range bufs {
			bufs[k] = make([]byte, Headroom+1400)
			sizes[k] = copy(bufs[k][Headroom:], packettest.IPv4(6, 1400, 0x18, i))
			i++
		}
		tx.Transport().SendBuffers(idb, bufs, sizes, Headroom)
	}
	p2ptest.Eventually(t, "the packet stream", func() bool {
		feed()
		time.Sleep(10 * time.Millisecond)
		return tx.Transport().Stats(idb).TxPackets.Load() > 0
	})
	ps := tx.Transport().peer(idb)
	var inFQ, samples int
	var inPath int64
	for end := time.Now().Add(3 * time.Second); time.Now().Before(end); {
		feed() // 180 Mbit/s if a round took 1 ms: more than the path takes
		time.Sleep(time.Millisecond)
		if n, _ := ps.queue.len(); n > 0 {
			inFQ++
		}
		inPath += path.queued.Load()
		samples++
	}
	t.Logf("path queue %d bytes on average; flow queues held packets at %d of %d looks", inPath/int64(samples), inFQ, samples)
	// At 20 Mbit/s, 2 ms of queue is 5 KB; a sample of the RTT comes a
	// round trip late, and a shared machine adds its own delays. Measured:
	// 20 KB on average with the gate, 101 KB without.
	if got := inPath / int64(samples); got > 48<<10 {
		t.Errorf("the path queued %d bytes on average: the queue is not in the flow queues", got)
	}
	if inFQ < samples/2 {
		t.Errorf("the flow queues held packets at %d of %d looks: the backlog is elsewhere", inFQ, samples)
	}
}

// shapedPath is a UDP path on loopback that forwards one client's
// datagrams to a target at a fixed rate, behind a tail-dropping queue, and
// the answers back at once.
type shapedPath struct {
	addr   ma.Multiaddr
	queued atomic.Int64 // bytes in its queue now
}

// shapeUDP starts a shaped path to target (a QUIC multiaddr) at rate bytes
// per second with a queue of limit bytes; it stops when the test ends.
func shapeUDP(t *testing.T, target ma.Multiaddr, rate float64, limit int64) *shapedPath {
	t.Helper()
	_, addr, err := manet.DialArgs(target)
	if err != nil {
		t.Fatal(err)
	}
	to, err := net.ResolveUDPAddr("udp4", addr)
	if err != nil {
		t.Fatal(err)
	}
	front, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	back, err := net.DialUDP("udp4", nil, to)
	if err != nil {
		t.Fatal(err)
	}
	p := &shapedPath{}
	queue := make(chan []byte, 1<<14)
	queued := &p.queued
	var client atomic.Pointer[net.UDPAddr]
	t.Cleanup(func() { front.Close(); back.Close() })
	go func() { // into the queue
		for {
			b := make([]byte, 2048)
			n, from, err := front.ReadFromUDP(b)
			if err != nil {
				close(queue)
				return
			}
			client.Store(from)
			if queued.Load()+int64(n) > limit {
				continue
			}
			queued.Add(int64(n))
			queue <- b[:n]
		}
	}()
	go func() { // out of it, at the rate
		next := time.Now()
		for b := range queue {
			if wait := time.Until(next); wait > 200*time.Microsecond {
				time.Sleep(wait)
			}
			next = maxTime(next, time.Now()).Add(time.Duration(float64(len(b)) / rate * float64(time.Second)))
			queued.Add(-int64(len(b)))
			back.Write(b)
		}
	}()
	go func() { // answers, unshaped
		b := make([]byte, 2048)
		for {
			n, err := back.Read(b)
			if err != nil {
				return
			}
			if c := client.Load(); c != nil {
				front.WriteToUDP(b[:n], c)
			}
		}
	}()
	m, err := manet.FromNetAddr(front.LocalAddr())
	if err != nil {
		t.Fatal(err)
	}
	p.addr = m.Encapsulate(ma.StringCast("/quic-v1"))
	return p
}

func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}
