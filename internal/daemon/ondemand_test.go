package daemon

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/mynetwork/mynetwork/config"
	"github.com/mynetwork/mynetwork/internal/control"
	"github.com/mynetwork/mynetwork/p2p/p2ptest"
)

// TestOnDemand: with an idle timeout, two peers stay unconnected (status
// says idle) until one has traffic for the other; the first connection
// through the mesh is carried; the connection closes after the idle
// timeout without packets, and the next traffic opens it again; a ping
// wakes an idle peer too.
func TestOnDemand(t *testing.T) {
	a, b := newTestNode(t, "oda"), newTestNode(t, "odb")
	for _, n := range []*testNode{a, b} {
		n.cfg.IdleTimeout = "5s"
	}
	b.cfg.Peers = []config.Peer{{Name: "a", ID: a.id}}
	b.cfg.ListenAddresses = []string{fmt.Sprintf("/ip4/127.0.0.1/tcp/%d", freePort(t, "tcp"))}
	b.up(t, "odb", Options{SOCKS5: "off"})
	a.cfg.Peers = []config.Peer{{Name: "b", ID: b.id, Addrs: b.cfg.ListenAddresses}}
	a.up(t, "oda", Options{SOCKS5: "off"})
	ctx := context.Background()
	idle := func(n *testNode) bool {
		s, err := n.client.Status(ctx)
		return err == nil && len(s.Peers) == 1 && !s.Peers[0].Connected && s.Peers[0].Idle
	}
	time.Sleep(time.Second)
	if !idle(a) || !idle(b) {
		t.Fatal("the peers connected with nothing to send")
	}

	// b's mesh DNS answers on TCP port 53 in its stack: a connection
	// through the mesh to it is the first traffic for b.
	bAddr := config.AddressesOf(mustID(t, b.id)).IPv4.String()
	start := time.Now()
	conn, err := a.client.Dial(ctx, bAddr, 53)
	if err != nil {
		t.Fatalf("first connection to an idle peer: %v", err)
	}
	conn.Close()
	t.Logf("first connection through the mesh to an idle peer took %s", time.Since(start).Round(time.Millisecond))
	p2ptest.Eventually(t, "the idle connection closed", func() bool { return idle(a) && idle(b) })
	if _, err := a.client.Ping(ctx, control.PingRequest{Peer: "b"}); err != nil {
		t.Fatalf("ping wakes an idle peer: %v", err)
	}
	if s, _ := a.client.Status(ctx); !slices.ContainsFunc(s.Peers, func(p control.PeerStatus) bool { return p.Connected }) {
		t.Fatal("not connected after the ping")
	}
}

func mustID(t *testing.T, s string) peer.ID {
	t.Helper()
	id, err := peer.Decode(s)
	if err != nil {
		t.Fatal(err)
	}
	return id
}
