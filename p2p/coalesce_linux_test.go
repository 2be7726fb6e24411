package p2p

import (
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// TestTCPConnectionsAreTuned: the packet stream's TCP connection is found
// under libp2p (the gate has it), its socket is tuned from its delivery
// rate, and the unsent limit the kernel holds is the one the writer set;
// a QUIC connection has none.
func TestTCPConnectionsAreTuned(t *testing.T) {
	for _, listen := range []string{"/ip4/127.0.0.1/tcp/0", "/ip4/127.0.0.1/udp/0/quic-v1"} {
		t.Run(listen, func(t *testing.T) {
			a, b := pair(t, listen)
			idb := b.Host().ID()
			eventually(t, "a connection", func() bool { return bestConn(a.Host().Network(), idb) != nil })
			cc := conns.lookup(bestConn(a.Host().Network(), idb))
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
			pkt := ipv4(17, 1400, 0, 1)
			eventually(t, "the socket's unsent limit set to the connection's", func() bool {
				for range 100 {
					a.Transport().Send(idb, [][]byte{pkt})
				}
				return lowat() == cc.limit.Load()
			})
		})
	}
}
