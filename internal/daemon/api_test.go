package daemon

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mynetwork/mynetwork/config"
	"github.com/mynetwork/mynetwork/internal/control"
	"github.com/mynetwork/mynetwork/internal/engine"
	"github.com/mynetwork/mynetwork/p2p/tunnel"
)

// TestRouteErrorKinds: the daemon's refusals reach the client over the
// control socket with their message and kind (so their status code: see
// control.TestErrorStatusCodes), and a refused change leaves the table as
// it was.
func TestRouteErrorKinds(t *testing.T) {
	n := newTestNode(t, "use")
	b := newTestNode(t, "usf") // configured, never started
	n.cfg.Peers = []config.Peer{{Name: "b", ID: b.id, Routes: []config.Route{{Net: "10.9.0.0/24"}}}}
	n.up(t, "use", Options{SOCKS5: "off"})
	bID, _ := b.cfg.ID()
	bIPv4 := config.AddressesOf(bID).IPv4.String()
	ctx := context.Background()
	add := func(net, peer string, persist bool) error {
		_, err := n.client.AddRoute(ctx, control.RouteRequest{Net: net, Peer: peer, Persist: persist})
		return err
	}
	del := func(net string) error { return n.client.DelRoute(ctx, control.RouteRequest{Net: net}) }
	dial := func(host string) error {
		c, err := n.client.Dial(ctx, host, 22)
		if c != nil {
			c.Close()
		}
		return err
	}
	for _, tc := range []struct {
		name string
		err  error
		kind error
		want string // the message, or its start when it ends in "..."
	}{
		{"add a bad CIDR", add("10.113.0.0/33", "b", false), control.ErrBadRequest, `"10.113.0.0/33" is not a CIDR (like 10.1.2.0/24 or fd00:1::/64)`},
		{"add to no such peer", add("10.113.0.0/24", "nobody", false), control.ErrNotFound, `no configured peer is named or has the ID "nobody"`},
		{"add a route that exists", add("10.9.0.0/24", "b", false), control.ErrConflict, "10.9.0.0/24 is already routed to b: delete it first with 'mynetwork route del 10.9.0.0/24'"},
		{"delete a bad CIDR", del("x"), control.ErrBadRequest, `"x" is not a CIDR`},
		{"delete no such route", del("10.8.0.0/24"), control.ErrNotFound, "route 10.8.0.0/24: no such route"},
		{"delete a mesh address", del(bIPv4 + "/32"), control.ErrConflict, bIPv4 + "/32 is the mesh address of peer b and cannot be deleted"},
		{"dial no such peer", dial("ms9"), control.ErrNotFound, `dial ms9:22: "ms9" is neither a configured peer's name nor an IP address`},
		{"dial off the mesh", dial("192.0.2.1"), control.ErrNotFound, "dial 192.0.2.1:22: 192.0.2.1 is not on the mesh (no peer or route covers it)"},
		{"persist what the file's routes refuse", persistAfter(t, n, func(c *config.Config) { c.Routes = []config.Route{{Net: "10.114.0.0/24"}} }, add), control.ErrConflict,
			"persist: peers[0].routes[1].net: 10.114.0.0/24 is already routed at ..."},
		{"persist to a file with other peers", persistAfter(t, n, func(c *config.Config) { c.Peers = nil }, add), control.ErrConflict,
			"persist: " + n.cfgPath + " changed its peers since 'up'; restart to use them"},
		{"persist to a file that is gone", persistAfter(t, n, nil, add), control.ErrInternal, "persist: config file " + n.cfgPath + "..."},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := tc.err; err == nil || !errors.Is(err, tc.kind) {
				t.Fatalf("got %v, want an error of kind %v", err, tc.kind)
			}
			if prefix, ok := strings.CutSuffix(tc.want, "..."); ok && !strings.HasPrefix(tc.err.Error(), prefix) || !ok && tc.err.Error() != tc.want {
				t.Fatalf("got  %v\nwant %s", tc.err, tc.want)
			}
		})
	}
	routes, err := n.client.Routes(ctx)
	if err != nil || len(routes) != 3 { // b's two mesh addresses and 10.9.0.0/24
		t.Fatalf("routes after refused changes: %+v %v", routes, err)
	}
}

// persistAfter changes n's config file with edit (nil: removes it), then
// asks add to persist a new route, and returns its error.
func persistAfter(t *testing.T, n *testNode, edit func(*config.Config), add func(net, peer string, persist bool) error) error {
	t.Helper()
	if edit == nil {
		if err := os.Remove(n.cfgPath); err != nil {
			t.Fatal(err)
		}
	} else {
		c, err := config.Load(n.cfgPath)
		if err != nil {
			t.Fatal(err)
		}
		edit(c)
		if err := c.Save(n.cfgPath); err != nil {
			t.Fatal(err)
		}
	}
	return add("10.114.0.0/24", "b", true)
}

// TestCountersLoadedOnce: each counter lands in its own field of the API's
// types (every source counter holds a different value).
func TestCountersLoadedOnce(t *testing.T) {
	var e engine.Counters
	for i, c := range []interface{ Store(uint64) }{
		&e.TxPackets, &e.TxBytes, &e.RxPackets, &e.RxBytes, &e.DropNoRoute, &e.DropSource,
		&e.DropInvalid, &e.DropSend, &e.DropDevice, &e.DropDestination, &e.Panics,
	} {
		c.Store(uint64(i + 1))
	}
	var refused atomic.Uint64
	refused.Store(12)
	want := control.Counters{
		TxPackets: 1, TxBytes: 2, RxPackets: 3, RxBytes: 4, DropNoRoute: 5, DropSource: 6,
		DropInvalid: 7, DropSend: 8, DropDevice: 9, DropDestination: 10, Panics: 11, Refused: 12,
	}
	if got := engineCounters(&e, &refused); got != want {
		t.Errorf("engine counters:\ngot  %+v\nwant %+v", got, want)
	}

	var p tunnel.PeerCounters
	for i, c := range []interface{ Store(uint64) }{
		&p.TxPackets, &p.RxPackets, &p.TxDatagrams, &p.RxDatagrams, &p.TxSuperPackets, &p.TxSegmented,
		&p.DropQueue, &p.DropNoLink, &p.DropDelay, &p.MarkDelay, &p.Malformed, &p.Stalled,
	} {
		c.Store(uint64(1) << (i * 4))
	}
	wantPeer := control.PeerStatus{
		TxPackets: 1, RxPackets: 1 << 4, TxDatagrams: 1 << 8, RxDatagrams: 1 << 12, TxSuperPackets: 1 << 16, TxSegmented: 1 << 20,
		Dropped: 1<<24 | 1<<28 | 1<<32, DroppedForDelay: 1 << 32, MarkedForDelay: 1 << 36, MalformedFrames: 1 << 40, StalledStreams: 1 << 44,
	}
	var got control.PeerStatus
	if peerCounters(&got, &p); got != wantPeer {
		t.Errorf("peer counters:\ngot  %+v\nwant %+v", got, wantPeer)
	}
}

// TestStatusBootstrapAndAddresses: status names each bootstrap peer with
// its state and error (and its name when it is a configured peer too),
// and lists no loopback address, though the node listens on loopback only.
func TestStatusBootstrapAndAddresses(t *testing.T) {
	n := newTestNode(t, "usg")
	b := newTestNode(t, "ush") // configured, never started
	port := freePort(t, "tcp")
	boot := []string{fmt.Sprintf("/ip4/127.0.0.1/tcp/%d/p2p/%s", port, b.id)}
	n.cfg.BootstrapPeers = &boot
	n.cfg.Peers = []config.Peer{{Name: "b", ID: b.id}}
	n.up(t, "usg", Options{SOCKS5: "off"})

	var st control.Status
	deadline := time.Now().Add(15 * time.Second)
	for {
		var err error
		if st, err = n.client.Status(context.Background()); err != nil {
			t.Fatal(err)
		}
		if len(st.BootstrapPeers) == 1 && st.BootstrapPeers[0].State != "trying" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("bootstrap peers never tried: %+v", st.BootstrapPeers)
		}
		time.Sleep(50 * time.Millisecond)
	}
	got, err := json.Marshal(st.BootstrapPeers)
	if err != nil {
		t.Fatal(err)
	}
	want := fmt.Sprintf(`[{"id":"%s","name":"b","state":"unreachable","error":"/ip4/127.0.0.1/tcp/%d: connection refused"}]`, b.id, port)
	if string(got) != want {
		t.Errorf("bootstrapPeers:\ngot  %s\nwant %s", got, want)
	}
	if len(st.Addresses) != 0 {
		t.Errorf("addresses of a node on loopback only: %v", st.Addresses)
	}
}
