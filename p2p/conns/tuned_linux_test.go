package conns

import (
	"context"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/p2p/muxer/yamux"
	libp2pquic "github.com/libp2p/go-libp2p/p2p/transport/quic"
	"golang.org/x/sys/unix"

	"github.com/mynetwork/mynetwork/p2p/p2ptest"
)

// registeredHost is a libp2p host whose TCP connections are this
// package's, in reg, closed when the test ends.
func registeredHost(t *testing.T, listen string, reg *Registry) host.Host {
	t.Helper()
	k, _ := p2ptest.NewKey(t)
	h, err := libp2p.New(libp2p.Identity(k), libp2p.ListenAddrStrings(listen), libp2p.DisableRelay(),
		libp2p.Transport(reg.TCPTransport), libp2p.Transport(libp2pquic.NewTransport),
		libp2p.Muxer(yamux.ID, Yamux()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close() })
	return h
}

// TestTCPConnectionsAreTuned: a libp2p connection's TCP connection is
// found in the registry, its socket is tuned from its delivery rate while
// it is busy, and the unsent limit the kernel holds is the one the writer
// set; a QUIC connection has none.
func TestTCPConnectionsAreTuned(t *testing.T) {
	for _, listen := range []string{"/ip4/127.0.0.1/tcp/0", "/ip4/127.0.0.1/udp/0/quic-v1"} {
		t.Run(listen, func(t *testing.T) {
			reg := NewRegistry()
			a, b := registeredHost(t, listen, reg), registeredHost(t, listen, NewRegistry())
			b.SetStreamHandler("/sink", func(s network.Stream) { io.Copy(io.Discard, s) })
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			if err := a.Connect(ctx, peer.AddrInfo{ID: b.ID(), Addrs: b.Addrs()}); err != nil {
				t.Fatal(err)
			}
			c := a.Network().ConnsToPeer(b.ID())[0]
			cc := reg.Lookup(c)
			if !strings.Contains(listen, "/tcp/") {
				if cc != nil {
					t.Fatal("a QUIC connection found as a TCP one")
				}
				return
			}
			if cc == nil || cc.sock == nil {
				t.Fatalf("TCP connection %v: not found, or its socket not tunable", cc)
			}
			lowat := func() int64 {
				var v int
				var err error
				cc.sock.raw.Control(func(fd uintptr) {
					v, err = unix.GetsockoptInt(int(fd), unix.IPPROTO_TCP, unix.TCP_NOTSENT_LOWAT)
				})
				if err != nil {
					t.Fatal(err)
				}
				return int64(uint32(v))
			}
			s, err := OpenStream(ctx, c, "/sink")
			if err != nil {
				t.Fatal(err)
			}
			defer s.Reset()
			chunk := make([]byte, 64<<10)
			p2ptest.Eventually(t, "the socket's unsent limit set to the connection's", func() bool {
				for range 32 {
					if _, err := s.Write(chunk); err != nil {
						t.Fatal(err)
					}
				}
				return lowat() == cc.limit.Load()
			})
		})
	}
}
