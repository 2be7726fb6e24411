package daemon

import (
	"context"
	"fmt"
	"net/netip"
	"slices"
	"testing"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/mynetwork/mynetwork/config"
	"github.com/mynetwork/mynetwork/internal/control"
	"github.com/mynetwork/mynetwork/internal/engine"
	"github.com/mynetwork/mynetwork/p2p/p2ptest"
)

// TestExitNodeAtRunTime: a userspace node takes an exit node at run
// time: its table routes everything to it and status says so; off puts
// the table back; a name that is no peer is refused.
func TestExitNodeAtRunTime(t *testing.T) {
	a, b := newTestNode(t, "exa"), newTestNode(t, "exb")
	b.cfg.Peers = []config.Peer{{Name: "a", ID: a.id}}
	b.cfg.ListenAddresses = []string{fmt.Sprintf("/ip4/127.0.0.1/tcp/%d", freePort(t, "tcp"))}
	b.up(t, "exb", Options{SOCKS5: "off"})
	a.cfg.Peers = []config.Peer{{Name: "b", ID: b.id, Addrs: b.cfg.ListenAddresses}}
	a.up(t, "exa", Options{SOCKS5: "off"})
	ctx := context.Background()
	before := routeNets(t, a)

	if _, err := a.client.SetExitNode(ctx, control.ExitNodeRequest{Peer: "nobody"}); err == nil {
		t.Fatal("an exit node that is no peer was taken")
	}
	st, err := a.client.SetExitNode(ctx, control.ExitNodeRequest{Peer: "b"})
	if err != nil || st.Use != "b" || st.ID != b.id {
		t.Fatalf("exit-node b: %+v, %v", st, err)
	}
	if got := routeNets(t, a); !slices.Contains(got, "0.0.0.0/0") || !slices.Contains(got, "::/0") {
		t.Fatalf("routes with exit node b: %v", got)
	}
	p2ptest.Eventually(t, "status: exit node b connected", func() bool {
		s, err := a.client.Status(ctx)
		return err == nil && s.ExitNode != nil && s.ExitNode.Use == "b" && s.ExitNode.Connected
	})
	if _, err := a.client.SetExitNode(ctx, control.ExitNodeRequest{Peer: "off"}); err != nil {
		t.Fatal(err)
	}
	if got := routeNets(t, a); !slices.Equal(got, before) {
		t.Fatalf("routes after off: %v, before: %v", got, before)
	}
	if s, _ := a.client.Status(ctx); s.ExitNode != nil {
		t.Fatalf("status after off: %+v", s.ExitNode)
	}
}

// TestNetsOf: the device is routed every network of the table but the
// default routes (policy routing's) and the mesh's own single addresses
// (the interface's prefixes cover them); a single address outside the
// mesh is routed too.
func TestNetsOf(t *testing.T) {
	var id peer.ID = "p"
	var routes []engine.Route
	for _, s := range []string{"100.64.1.2/32", "fd6d:796e:6574::1/128", "10.1.2.3/32", "192.168.5.0/24", "0.0.0.0/0", "::/0"} {
		routes = append(routes, engine.Route{Prefix: netip.MustParsePrefix(s), Peer: id})
	}
	var got []string
	for _, p := range netsOf(engine.NewTable(routes)) {
		got = append(got, p.String())
	}
	if want := []string{"10.1.2.3/32", "192.168.5.0/24"}; !slices.Equal(got, want) {
		t.Errorf("netsOf = %v, want %v", got, want)
	}
}
