//go:build soak

package p2p_test

import (
	"bufio"
	"context"
	"runtime"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/peer"
	"golang.zx2c4.com/wireguard/tun/tuntest"

	"github.com/mynetwork/mynetwork/p2p/tunnel"
)

// TestSoak connects and disconnects a configured peer 1,000 times, each
// time sending a packet through the node's engine, and checks that the
// goroutine count and the heap come back to their baseline. Run by
// `make soak`, not by every CI run.
func TestSoak(t *testing.T) {
	const cycles = 1000
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	a := startEngineNode(t, ctx)
	node, dev, kb, idA, addrA, addrB := a.node, a.dev, a.keyB, a.idA, a.addrA, a.addrB

	hb, err := libp2p.New(libp2p.Identity(kb), libp2p.NoListenAddrs)
	if err != nil {
		t.Fatal(err)
	}
	defer hb.Close()
	ai := peer.AddrInfo{ID: idA, Addrs: node.ListenAddrs()}

	cycle := func() {
		cctx, ccancel := context.WithTimeout(ctx, 10*time.Second)
		defer ccancel()
		if err := hb.Connect(cctx, ai); err != nil {
			t.Fatal(err)
		}
		s, err := hb.NewStream(cctx, idA, tunnel.PacketProtocol)
		if err != nil {
			t.Fatal(err)
		}
		w := bufio.NewWriter(s)
		tunnel.WriteFrame(w, tuntest.Ping(addrA, addrB))
		w.Flush()
		select {
		case <-dev.Inbound:
		case <-cctx.Done():
			t.Fatal("packet not delivered")
		}
		s.Close()
		hb.Network().ClosePeer(idA)
	}
	settle := func() (int, uint64) {
		// Let connection teardown and the connector's redial attempts finish.
		time.Sleep(2 * time.Second)
		runtime.GC()
		var m runtime.MemStats
		runtime.ReadMemStats(&m)
		return runtime.NumGoroutine(), m.HeapInuse
	}
	for range 10 { // warm up: caches, pools, first-use allocations
		cycle()
	}
	g0, h0 := settle()
	start := time.Now()
	for range cycles {
		cycle()
	}
	g1, h1 := settle()
	t.Logf("%d cycles in %s; goroutines %d → %d; heap in use %.1f → %.1f MiB",
		cycles, time.Since(start).Round(time.Millisecond), g0, g1, float64(h0)/(1<<20), float64(h1)/(1<<20))
	if g1 > g0+20 {
		t.Errorf("goroutines grew from %d to %d", g0, g1)
	}
	if h1 > h0+8<<20 {
		t.Errorf("heap grew from %d to %d bytes", h0, h1)
	}
}
