package daemon

import (
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"testing"
	"time"

	"github.com/mynetwork/mynetwork/config"
	"github.com/mynetwork/mynetwork/internal/control"
	"github.com/mynetwork/mynetwork/p2p/p2ptest"
)

// TestReload: a reload adds, renames and removes peers and their routes
// while the peer kept stays connected; a config that does not load is
// refused with Load's error and changes nothing.
func TestReload(t *testing.T) {
	a, b := newTestNode(t, "rla"), newTestNode(t, "rlb")
	c := newTestNode(t, "rlc") // configured, never started
	b.cfg.Peers = []config.Peer{{Name: "a", ID: a.id}}
	b.cfg.ListenAddresses = []string{fmt.Sprintf("/ip4/127.0.0.1/tcp/%d", freePort(t, "tcp"))}
	b.up(t, "rlb", Options{SOCKS5: "off"})
	a.cfg.Peers = []config.Peer{{Name: "b", ID: b.id, Addrs: b.cfg.ListenAddresses}}
	a.up(t, "rla", Options{SOCKS5: "off"})
	ctx := context.Background()
	connected := func() bool {
		st, err := a.client.Status(ctx)
		return err == nil && len(st.Peers) > 0 && st.Peers[0].Connected
	}
	a.reach(t, "b")
	p2ptest.Eventually(t, "a connected to b", connected)

	save := func(edit func(*config.Config)) {
		cfg, err := config.Load(a.cfgPath)
		if err != nil {
			t.Fatal(err)
		}
		edit(cfg)
		if err := cfg.Save(a.cfgPath); err != nil { // Save writes what it is given, valid or not
			t.Fatal(err)
		}
	}
	save(func(cfg *config.Config) {
		cfg.Peers[0].Name = "bee"
		cfg.Peers = append(cfg.Peers, config.Peer{Name: "c", ID: c.id, Routes: []config.Route{{Net: "10.9.0.0/24"}}})
	})
	res, err := a.client.Reload(ctx)
	if err != nil || res.Peers != 2 || !slices.Equal(res.Added, []string{"c"}) || !slices.Equal(res.Renamed, []string{"b -> bee"}) || len(res.Removed)+len(res.Restart) != 0 {
		t.Fatalf("reload: %+v, %v", res, err)
	}
	if !connected() {
		t.Fatal("the peer kept lost its connection in the reload")
	}
	want := routeNets(t, a)
	if !slices.Contains(want, "10.9.0.0/24") || len(want) != 5 {
		t.Fatalf("routes after the reload: %v", want)
	}

	good, err := config.Load(a.cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	save(func(cfg *config.Config) { cfg.Peers[1].Routes[0].Net = "10.9.0.0/33" })
	_, loadErr := config.Load(a.cfgPath)
	_, err = a.client.Reload(ctx)
	if loadErr == nil || err == nil || !errors.Is(err, control.ErrConflict) || err.Error() != loadErr.Error() {
		t.Fatalf("reload of a bad config: %v, want %v", err, loadErr)
	}
	if got := routeNets(t, a); !slices.Equal(got, want) || !connected() {
		t.Fatalf("a refused reload changed the routes (%v) or the connection", got)
	}

	good.Peers, good.MTU = good.Peers[:1], 1400
	if err := good.Save(a.cfgPath); err != nil {
		t.Fatal(err)
	}
	res, err = a.client.Reload(ctx)
	if err != nil || !slices.Equal(res.Removed, []string{"c"}) || !slices.Equal(res.Restart, []string{"mtu"}) || len(routeNets(t, a)) != 2 {
		t.Fatalf("reload that removes c: %+v, %v, routes %v", res, err, routeNets(t, a))
	}
}

func routeNets(t *testing.T, n *testNode) []string {
	t.Helper()
	routes, err := n.client.Routes(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, r := range routes {
		out = append(out, r.Net)
	}
	slices.Sort(out)
	return out
}

// TestReloadForwards: in userspace mode a forward added to the config
// listens after a reload and shows in status, and one taken out stops.
func TestReloadForwards(t *testing.T) {
	a, b := newTestNode(t, "rfa"), newTestNode(t, "rfb") // b: configured, never started
	a.cfg.Peers = []config.Peer{{Name: "b", ID: b.id}}
	a.up(t, "rfa", Options{SOCKS5: "off"})
	ctx := context.Background()
	listen := fmt.Sprintf("127.0.0.1:%d", freePort(t, "tcp"))
	listening := func() bool {
		c, err := net.DialTimeout("tcp", listen, time.Second)
		if err == nil {
			c.Close()
		}
		return err == nil
	}
	reloadWith := func(u *config.Userspace) control.ReloadResult {
		t.Helper()
		cfg, err := config.Load(a.cfgPath)
		if err != nil {
			t.Fatal(err)
		}
		cfg.Userspace = u
		if err := cfg.Save(a.cfgPath); err != nil {
			t.Fatal(err)
		}
		res, err := a.client.Reload(ctx)
		if err != nil {
			t.Fatalf("reload: %v", err)
		}
		return res
	}
	if listening() {
		t.Fatal("something listens on the forward's address already")
	}
	res := reloadWith(&config.Userspace{Forwards: []config.Forward{{Listen: listen, To: "b:80"}}})
	if len(res.Restart) != 0 || !listening() {
		t.Fatalf("after adding the forward: restart %v, listening %v", res.Restart, listening())
	}
	if st, err := a.client.Status(ctx); err != nil || st.Userspace == nil || len(st.Userspace.Forwards) != 1 {
		t.Fatalf("status after the reload: %+v, %v", st.Userspace, err)
	}
	reloadWith(nil)
	if listening() {
		t.Fatal("the forward taken out of the config still listens")
	}
}
