package p2p

import (
	"context"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
	"github.com/libp2p/go-libp2p/p2p/host/autonat"
	"github.com/libp2p/go-libp2p/p2p/protocol/autonatv2"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/mynetwork/mynetwork/p2p/p2ptest"
)

func TestAutoNATGate(t *testing.T) {
	_, known := p2ptest.NewKey(t)
	_, stranger := p2ptest.NewKey(t)
	g := autonatGate{&network.NullResourceManager{}, func(p peer.ID) bool { return p == known }}
	for _, tc := range []struct {
		name    string
		p       peer.ID
		dir     network.Direction
		proto   protocol.ID
		refused bool
	}{
		{"known peer asks v1", known, network.DirInbound, autonat.AutoNATProto, false},
		{"known peer asks v2", known, network.DirInbound, autonatv2.DialProtocol, false},
		{"stranger asks v1", stranger, network.DirInbound, autonat.AutoNATProto, true},
		{"stranger asks v2", stranger, network.DirInbound, autonatv2.DialProtocol, true},
		{"stranger's dial-back answers our v2 request", stranger, network.DirInbound, autonatv2.DialBackProtocol, false},
		{"stranger's identify", stranger, network.DirInbound, "/ipfs/id/1.0.0", false},
		{"our own request to a stranger", stranger, network.DirOutbound, autonat.AutoNATProto, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, err := g.OpenStream(tc.p, tc.dir)
			if err != nil {
				t.Fatal(err)
			}
			err = s.SetProtocol(tc.proto)
			if tc.refused != (err != nil) {
				t.Fatalf("SetProtocol(%s): %v, want refused=%v", tc.proto, err, tc.refused)
			}
			if err != nil && err.Error() != string(tc.proto)+" from "+tc.p.String()+": AutoNAT is served to known peers only" {
				t.Errorf("error: %v", err)
			}
		})
	}
}

// TestAutoNATServedToKnownPeersOnly: a node answers a configured peer's
// AutoNAT request (refusing the dial-back, since loopback is not public)
// and resets a stranger's.
func TestAutoNATServedToKnownPeersOnly(t *testing.T) {
	kk, known := p2ptest.NewKey(t)
	ks, _ := p2ptest.NewKey(t)
	k, _ := p2ptest.NewKey(t)
	n := newNode(t, Options{Key: k, Listen: []string{"/ip4/127.0.0.1/tcp/0"}, Peers: []Peer{{ID: known}}, MaxPacket: 1500})
	ask := func(key crypto.PrivKey) error {
		h, err := libp2p.New(libp2p.Identity(key), libp2p.ListenAddrStrings("/ip4/127.0.0.1/tcp/0"))
		if err != nil {
			t.Fatal(err)
		}
		defer h.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := h.Connect(ctx, peer.AddrInfo{ID: n.host.ID(), Addrs: n.host.Addrs()}); err != nil {
			t.Fatal(err)
		}
		cli := autonat.NewAutoNATClient(h, func() []ma.Multiaddr { return h.Addrs() }, nil)
		return cli.DialBack(ctx, n.host.ID())
	}
	if err := ask(kk); !autonat.IsDialRefused(err) {
		t.Errorf("known peer: %v, want the server's refusal to dial loopback", err)
	}
	if err := ask(ks); err == nil || autonat.IsDialError(err) || autonat.IsDialRefused(err) {
		t.Errorf("stranger: %v, want the stream reset before the service saw it", err)
	}
}
