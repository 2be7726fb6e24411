package daemon

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/mynetwork/mynetwork/config"
	"github.com/mynetwork/mynetwork/internal/control"
)

// TestPing: two userspace nodes on loopback; A pings B by every name B
// goes by, over the connection its packets use, and refuses what is not
// a peer.
func TestPing(t *testing.T) {
	a, b, c := newTestNode(t, "upa"), newTestNode(t, "upb"), newTestNode(t, "upc")
	b.cfg.Peers = []config.Peer{{Name: "ms0", ID: a.id}}
	b.cfg.ListenAddresses = []string{fmt.Sprintf("/ip4/127.0.0.1/tcp/%d", freePort(t, "tcp"))}
	b.up(t, "upb", Options{SOCKS5: "off"})
	// C is configured but never started: A cannot reach it.
	a.cfg.Peers = []config.Peer{
		{Name: "ms1", ID: b.id, Addrs: b.cfg.ListenAddresses, Routes: []config.Route{{Net: "10.77.0.0/24"}}},
		{Name: "ms2", ID: c.id, Addrs: []string{fmt.Sprintf("/ip4/127.0.0.1/tcp/%d", freePort(t, "tcp"))}},
	}
	a.up(t, "upa", Options{SOCKS5: "off"})
	ctx := context.Background()
	ping := func(peer string) (control.PingReply, error) {
		return a.client.Ping(ctx, control.PingRequest{Peer: peer, TimeoutMillis: 2000})
	}
	deadline := time.Now().Add(15 * time.Second)
	for _, err := ping("ms1"); err != nil; _, err = ping("ms1") {
		if time.Now().After(deadline) {
			t.Fatalf("A never reached B: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	bID, _ := b.cfg.ID()
	bAddrs := config.AddressesOf(bID)
	for _, target := range []string{"ms1", "MS1.mynetwork", "ms1.mynetwork.internal.", b.id, bAddrs.IPv4.String(), "[" + bAddrs.IPv6.String() + "]", "10.77.0.9"} {
		r, err := ping(target)
		if err != nil {
			t.Fatalf("ping %s: %v", target, err)
		}
		if r.Name != "ms1" || r.ID != b.id || r.IPv4 != bAddrs.IPv4.String() || r.Path == "" || r.Transport != "tcp" || !strings.HasPrefix(r.Addr, "/ip4/127.0.0.1/tcp/") || r.RTTMillis <= 0 {
			t.Errorf("ping %s: %+v", target, r)
		}
	}
	aID, _ := a.cfg.ID()
	for _, tc := range []struct {
		name, peer string
		kind       error
		want       string
	}{
		{"no peer", "", control.ErrBadRequest, "ping needs a peer: a name, a peer ID or a mesh IP address"},
		{"unknown name", "ms9", control.ErrNotFound, `ping ms9: no configured peer is named or has the ID "ms9"`},
		{"unrouted address", "192.0.2.1", control.ErrNotFound, "ping 192.0.2.1: no configured peer has this address or a route to it"},
		{"own address", config.AddressesOf(aID).IPv4.String(), control.ErrBadRequest, "ping " + config.AddressesOf(aID).IPv4.String() + ": that is this node's own address"},
		{"unreachable peer", "ms2", control.ErrMesh, "ms2: not connected"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ping(tc.peer)
			if err == nil || !strings.HasPrefix(err.Error(), tc.want) {
				t.Fatalf("got %v, want %s", err, tc.want)
			}
			for _, kind := range []error{control.ErrBadRequest, control.ErrNotFound, control.ErrMesh} {
				if errors.Is(err, kind) != (kind == tc.kind) {
					t.Errorf("errors.Is(%v, %v) = %v", err, kind, !(kind == tc.kind))
				}
			}
		})
	}
	if st, err := a.client.Status(ctx); err != nil || st.Version.Version == "" || st.Version.Go == "" {
		t.Errorf("status has no version: %+v %v", st.Version, err)
	}
}
