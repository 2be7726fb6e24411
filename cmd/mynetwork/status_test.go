package main

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/mynetwork/mynetwork/internal/buildinfo"
	"github.com/mynetwork/mynetwork/internal/control"
)

// TestStatusText: the bootstrap peers get a line each, after the peers,
// and no heading when there are none.
func TestStatusText(t *testing.T) {
	st := control.Status{
		PeerID: "12D3KooWSelf", Interface: "mynetwork", Mode: "kernel", MTU: 1420,
		IPv4: "100.64.0.1", IPv6: "fd6d:796e:6574::1",
		Addresses: []string{"/ip4/192.168.1.10/tcp/8001"},
		BootstrapPeers: []control.BootstrapPeer{
			{ID: "12D3KooWBoot", Name: "r", State: "dht-server"},
			{ID: "12D3KooWGone", State: "unreachable", Error: "/ip4/192.0.2.1/tcp/4001: connection refused"},
			{ID: "12D3KooWPlain", State: "not-dht-server", Error: "speaks neither /ipfs/kad/1.0.0 nor /ipfs/lan/kad/1.0.0"},
		},
	}
	var out bytes.Buffer
	writeStatus(&out, st)
	want := `Connected VPN nodes: 0/0
DHT bootstrap peers:
    @r 12D3KooWBoot dht-server
    12D3KooWGone unreachable: /ip4/192.0.2.1/tcp/4001: connection refused
    12D3KooWPlain not-dht-server: speaks neither /ipfs/kad/1.0.0 nor /ipfs/lan/kad/1.0.0
Addresses:
    /ip4/192.168.1.10/tcp/8001
`
	if !strings.HasSuffix(out.String(), want) {
		t.Errorf("status:\n%s\nwant it to end with:\n%s", out.String(), want)
	}

	st.BootstrapPeers = nil
	out.Reset()
	writeStatus(&out, st)
	if strings.Contains(out.String(), "bootstrap") {
		t.Errorf("status of a node without bootstrap peers:\n%s", out.String())
	}

	st.Addresses = nil // a node on loopback only
	out.Reset()
	writeStatus(&out, st)
	if !strings.HasSuffix(out.String(), "Addresses: none that other machines can dial\n") {
		t.Errorf("status of a node no other machine can dial:\n%s", out.String())
	}
}

// TestStatusSaysWhy: every peer not connected gets one line with why, the
// idle ones a list of names, and the daemon's version has a line of its
// own.
func TestStatusSaysWhy(t *testing.T) {
	st := control.Status{
		Interface: "mynetwork", Mode: "kernel", IdleTimeoutSeconds: 600,
		Version: buildinfo.Info{Version: "v0.4.0", Commit: "d9eff1c", Go: "go1.26.8"},
		Peers: []control.PeerStatus{
			{Name: "pi", IPv4: "100.64.0.2", Why: "/ip4/192.0.2.1/tcp/8001: connection refused; /ip4/192.0.2.1/udp/8001/quic-v1: timed out"},
			{Name: "nas", IPv4: "100.64.0.3", Why: "failed to find\n  * routing: not found"},
			{Name: "new", IPv4: "100.64.0.4"},
			{Name: "laptop", IPv4: "100.64.0.5", Idle: true, Why: "idle: connects when there is traffic for it"},
			{Name: "phone", IPv4: "100.64.0.6", Idle: true, Why: "idle: connects when there is traffic for it"},
		},
	}
	var out bytes.Buffer
	writeStatus(&out, st)
	for _, want := range []string{
		"Version: v0.4.0 (commit d9eff1c), go1.26.8\nInterface: mynetwork (kernel mode)\n",
		"    @pi (100.64.0.2) not connected: /ip4/192.0.2.1/tcp/8001: connection refused; /ip4/192.0.2.1/udp/8001/quic-v1: timed out\n",
		"    @nas (100.64.0.3) not connected: failed to find * routing: not found\n",
		"    @new (100.64.0.4) not connected: connecting (no try has failed yet)\n",
		"Connections: on demand, each closed after 10m without packets\nConnected VPN nodes: 0/5, 2 idle\n",
		"    idle, connected when there is traffic for them:\n        @laptop @phone\n",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("status:\n%s\nlacks:\n%s", out.String(), want)
		}
	}
}

func TestShortDuration(t *testing.T) {
	for d, want := range map[time.Duration]string{
		10 * time.Minute: "10m", time.Hour: "1h", 90 * time.Minute: "1h30m", 90 * time.Second: "1m30s", 5 * time.Second: "5s",
	} {
		if got := shortDuration(d); got != want {
			t.Errorf("shortDuration(%s) = %q, want %q", d, got, want)
		}
	}
}
