package p2p

import (
	"context"
	"fmt"
	"io"
	"net/netip"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
	"github.com/libp2p/go-libp2p/p2p/net/swarm"

	"github.com/mynetwork/mynetwork/internal/packet/packettest"
	"github.com/mynetwork/mynetwork/p2p/limits"
	"github.com/mynetwork/mynetwork/p2p/p2ptest"
)

// TestStrangersDoNotLockOutPeers: stranger hosts flood a node with
// connections, more than their limits allow, from four addresses,
// redialing whenever refused; then a configured peer that the node cannot
// dial (it knows no address of it) connects and gets a packet through at
// once. With the strangers' limit below the system limit, the gater
// refuses the excess; with the system limit below it, libp2p's resource
// manager does, and the configured peer gets in through the allowlist.
func TestStrangersDoNotLockOutPeers(t *testing.T) {
	for _, c := range []struct {
		name   string
		limits limits.Config
		hosts  int
		strays int // stranger connections the node holds under the flood
	}{
		{"no flood", limits.Config{Strangers: 6, PerIP: 2, SystemIn: 12}, 0, 0},
		{"strangers' limit", limits.Config{Strangers: 6, PerIP: 2, SystemIn: 12}, 12, 6},
		{"system limit", limits.Config{Strangers: 6, PerIP: 2, SystemIn: 4}, 12, 4},
	} {
		t.Run(c.name, func(t *testing.T) {
			ka, ida := p2ptest.NewKey(t)
			kb, idb := p2ptest.NewKey(t)
			a := newNode(t, Options{Key: ka, Listen: []string{"/ip4/127.0.0.1/tcp/0"}, Peers: []Peer{{ID: idb}}, MaxPacket: 1500, limits: c.limits})
			start(t, a)
			hosts := flood(t, a, c.hosts, 4)
			p2ptest.Eventually(t, "the flood to fill its limit", func() bool { return len(strayConns(a)) >= c.strays })

			b := newNode(t, Options{Key: kb, Listen: []string{"/ip4/127.0.0.1/tcp/0"}, Peers: []Peer{{ID: ida, Addrs: a.host.Addrs()}}, MaxPacket: 1500})
			start(t, b)
			took := deliver(t, b, a, packettest.IPv4(17, 100, 0, 1))
			t.Logf("%d strangers: the configured peer's first packet after %s", c.hosts, took.Round(time.Millisecond))

			strays := strayConns(a)
			perIP := map[netip.Prefix]int{}
			for _, s := range strays {
				perIP[limits.SourceOf(s.RemoteMultiaddr())]++
			}
			for src, n := range perIP {
				if n > c.limits.PerIP {
					t.Errorf("%d stranger connections from %s, limit %d", n, src, c.limits.PerIP)
				}
			}
			if len(strays) > c.strays {
				t.Errorf("%d stranger connections, want at most %d", len(strays), c.strays)
			}
			refused := 0
			for _, h := range hosts {
				if h.Network().Connectedness(ida) != network.Connected {
					refused++
				}
			}
			if c.hosts > 0 && refused == 0 {
				t.Error("no stranger was refused: the flood did not reach the limits")
			}
		})
	}
}

// flood starts hosts that keep a connection to dst open, redialing every
// 200 ms when refused, from sources addresses 127.0.0.2 and up, until the
// test ends.
func flood(t *testing.T, dst *Node, hosts, sources int) []host.Host {
	ai := peer.AddrInfo{ID: dst.host.ID(), Addrs: dst.host.Addrs()}
	var hs []host.Host
	for i := range hosts {
		hs = append(hs, newHost(t, fmt.Sprintf("/ip4/127.0.0.%d/tcp/0", 2+i%sources)))
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	t.Cleanup(func() { cancel(); wg.Wait() })
	for _, h := range hs {
		wg.Go(func() {
			for ctx.Err() == nil {
				if h.Network().Connectedness(ai.ID) != network.Connected {
					h.Network().(*swarm.Swarm).Backoff().Clear(ai.ID)
					dctx, dcancel := context.WithTimeout(ctx, 5*time.Second)
					h.Connect(dctx, ai)
					dcancel()
				}
				sleep(ctx, 200*time.Millisecond)
			}
		})
	}
	return hs
}

// strayConns are n's inbound connections from strangers.
func strayConns(n *Node) []network.Conn {
	var out []network.Conn
	for _, c := range n.host.Network().Conns() {
		if c.Stat().Direction == network.DirInbound && !n.knows(c.RemotePeer()) {
			out = append(out, c)
		}
	}
	return out
}

// TestStrangersStreamsDoNotLockOutPeers: stranger hosts open as many
// streams as they can to a node, on a protocol it serves, and hold them;
// then a configured peer connects and gets a packet through at once. The
// node's system limit on inbound streams is lowered to 16, before
// strangers' share: the strangers hold more streams than that, 8 each;
// before their limits per peer, they held all 16 (retrying every 100 ms
// for any that freed), the configured peer's streams were refused and
// its packet did not get through in 15 s.
func TestStrangersStreamsDoNotLockOutPeers(t *testing.T) {
	const hold = "/mynetwork/test/hold/1.0.0"
	for _, c := range []struct {
		name  string
		hosts int
	}{
		{"no flood", 0},
		{"stream flood", 12},
	} {
		t.Run(c.name, func(t *testing.T) {
			ka, ida := p2ptest.NewKey(t)
			kb, idb := p2ptest.NewKey(t)
			lim := limits.Config{Strangers: 6, PerIP: 2, SystemStreams: 16}
			a := newNode(t, Options{Key: ka, Listen: []string{"/ip4/127.0.0.1/tcp/0"}, Peers: []Peer{{ID: idb}}, MaxPacket: 1500, limits: lim})
			a.host.SetStreamHandler(hold, func(s network.Stream) {
				s.Write([]byte{1})
				io.Copy(io.Discard, s)
				s.Reset()
			})
			start(t, a)
			hosts := flood(t, a, c.hosts, 4)
			var held atomic.Int64
			holdStreams(t, hosts, ida, hold, &held)
			if c.hosts > 0 {
				// All they can hold: 8 each, or, before their limits per
				// peer, the system's 16.
				p2ptest.Eventually(t, "strangers to hold streams", func() bool { return held.Load() >= int64(lim.SystemStreams) })
				for end := time.Now().Add(3 * time.Second); time.Now().Before(end) && held.Load() < int64(lim.Strangers*limits.StrangerPeer.StreamsInbound); {
					time.Sleep(20 * time.Millisecond)
				}
				time.Sleep(200 * time.Millisecond) // the refused keep trying
			}

			b := newNode(t, Options{Key: kb, Listen: []string{"/ip4/127.0.0.1/tcp/0"}, Peers: []Peer{{ID: ida, Addrs: a.host.Addrs()}}, MaxPacket: 1500})
			start(t, b)
			took := deliver(t, b, a, packettest.IPv4(17, 100, 0, 1))
			t.Logf("strangers hold %d streams: the configured peer's first packet after %s", held.Load(), took.Round(time.Millisecond))

			for _, sc := range strayConns(a) {
				in := 0
				for _, s := range sc.GetStreams() {
					if s.Stat().Direction == network.DirInbound {
						in++
					}
				}
				if in > limits.StrangerPeer.StreamsInbound {
					t.Errorf("stranger %s holds %d inbound streams, limit %d", sc.RemotePeer(), in, limits.StrangerPeer.StreamsInbound)
				}
			}
		})
	}
}

// holdStreams has each host open streams on proto to dst, one at a time,
// and hold those that dst answers, until the test ends; held counts
// them.
func holdStreams(t *testing.T, hosts []host.Host, dst peer.ID, proto protocol.ID, held *atomic.Int64) {
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	t.Cleanup(func() { cancel(); wg.Wait() })
	for _, h := range hosts {
		wg.Go(func() {
			var mine []network.Stream
			defer func() {
				for _, s := range mine {
					s.Reset()
				}
			}()
			for ctx.Err() == nil {
				if h.Network().Connectedness(dst) != network.Connected {
					sleep(ctx, 100*time.Millisecond)
					continue
				}
				sctx, scancel := context.WithTimeout(ctx, 5*time.Second)
				s, err := h.NewStream(network.WithNoDial(sctx, "hold"), dst, proto)
				scancel()
				if err == nil {
					var b [1]byte
					s.SetDeadline(time.Now().Add(5 * time.Second))
					if _, err = s.Write(b[:]); err == nil {
						_, err = io.ReadFull(s, b[:])
					}
					if err != nil {
						s.Reset()
					}
				}
				if err != nil {
					sleep(ctx, 100*time.Millisecond)
					continue
				}
				s.SetDeadline(time.Time{})
				mine = append(mine, s)
				held.Add(1)
			}
		})
	}
}
