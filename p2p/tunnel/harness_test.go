package tunnel

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/peerstore"
	"github.com/libp2p/go-libp2p/p2p/muxer/yamux"
	libp2pquic "github.com/libp2p/go-libp2p/p2p/transport/quic"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/mynetwork/mynetwork/p2p/conns"
	"github.com/mynetwork/mynetwork/p2p/p2ptest"
)

// testNode is a libp2p host with a packet transport, the two built as the
// node builds them (coalescing TCP connections in a registry, yamux with
// large messages, QUIC) but with no discovery or connector: start
// connects the hosts, once, and the transport's streams move when
// connections change, as the node makes them.
type testNode struct {
	h     host.Host
	tr    *Transport
	peers []testPeer
}

type testPeer struct {
	ID    peer.ID
	Addrs []ma.Multiaddr // dialed by start
}

type nodeOptions struct {
	Key                        crypto.PrivKey
	Listen                     []string
	Peers                      []testPeer
	MaxPacket                  int
	VirtioHeaders, NoDatagrams bool
	Log                        *slog.Logger
}

func (n *testNode) Host() host.Host       { return n.h }
func (n *testNode) Transport() *Transport { return n.tr }

// newNode makes a test node, closed when the test ends.
func newNode(t testing.TB, o nodeOptions) *testNode {
	t.Helper()
	reg := conns.NewRegistry()
	listen := libp2p.NoListenAddrs
	if len(o.Listen) > 0 {
		listen = libp2p.ListenAddrStrings(o.Listen...)
	}
	h, err := libp2p.New(libp2p.Identity(o.Key), listen, libp2p.DisableRelay(),
		libp2p.Transport(reg.TCPTransport), libp2p.Transport(libp2pquic.NewTransport),
		libp2p.Muxer(yamux.ID, conns.Yamux()))
	if err != nil {
		t.Fatal(err)
	}
	var ids []peer.ID
	for _, p := range o.Peers {
		ids = append(ids, p.ID)
		h.Peerstore().AddAddrs(p.ID, p.Addrs, peerstore.PermanentAddrTTL)
	}
	tr, err := New(h, ids, Config{MaxPacket: o.MaxPacket, VirtioHeaders: o.VirtioHeaders, NoDatagrams: o.NoDatagrams,
		Conn: func(p peer.ID) network.Conn { return newest(h.Network().ConnsToPeer(p)) }, Conns: reg, Log: o.Log})
	if err != nil {
		h.Close()
		t.Fatal(err)
	}
	moved := func(_ network.Network, c network.Conn) { tr.ResetPeer(c.RemotePeer()) }
	h.Network().Notify(&network.NotifyBundle{ConnectedF: moved, DisconnectedF: moved})
	t.Cleanup(func() {
		tr.Close()
		h.Close()
	})
	return &testNode{h: h, tr: tr, peers: o.Peers}
}

// newest is the most recently opened of cs, or nil.
func newest(cs []network.Conn) network.Conn {
	var c network.Conn
	for _, o := range cs {
		if c == nil || o.Stat().Opened.After(c.Stat().Opened) {
			c = o
		}
	}
	return c
}

// start connects each node to those of its peers it has addresses for.
func start(t testing.TB, nodes ...*testNode) {
	t.Helper()
	for _, n := range nodes {
		for _, p := range n.peers {
			if len(p.Addrs) == 0 {
				continue
			}
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			err := n.h.Connect(ctx, peer.AddrInfo{ID: p.ID, Addrs: p.Addrs})
			cancel()
			if err != nil {
				t.Fatal(err)
			}
		}
	}
}

// pair starts two nodes on loopback, a dialing b.
func pair(t *testing.T, listen string) (*testNode, *testNode) {
	t.Helper()
	return pairWith(t, listen, false, false)
}

// pairWith is pair with the datagram path off on a or b.
func pairWith(t *testing.T, listen string, noDgA, noDgB bool) (*testNode, *testNode) {
	t.Helper()
	ka, ida := p2ptest.NewKey(t)
	kb, idb := p2ptest.NewKey(t)
	b := newNode(t, nodeOptions{Key: kb, Listen: []string{listen}, Peers: []testPeer{{ID: ida}}, MaxPacket: 1500, NoDatagrams: noDgB})
	a := newNode(t, nodeOptions{Key: ka, Listen: []string{listen}, Peers: []testPeer{{ID: idb, Addrs: b.Host().Addrs()}}, MaxPacket: 1500, NoDatagrams: noDgA})
	start(t, a, b)
	return a, b
}
