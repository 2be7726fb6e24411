package daemon

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/miekg/dns"

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

// TestUserspaceExitNode: a userspace node using a userspace exit node
// reaches an address outside the mesh through it (the exit node's stack
// takes the connection and opens it from its host: here, to a loopback
// server, so nothing leaves the machine), and resolves a name outside the
// mesh through the exit node's DNS, which asks the host's resolvers.
func TestUserspaceExitNode(t *testing.T) {
	toServer, dialed := greeter(t, "hello from the internet")

	a, b := newTestNode(t, "uxa"), newTestNode(t, "uxb")
	b.cfg.Peers = []config.Peer{{Name: "a", ID: a.id}}
	b.cfg.ListenAddresses = []string{fmt.Sprintf("/ip4/127.0.0.1/tcp/%d", freePort(t, "tcp"))}
	resolver := dnsServer(t, "example.test.", "198.51.100.7")
	b.up(t, "uxb", Options{SOCKS5: "off", ExitNodeOffer: true, forwardDial: toServer, dnsServers: []string{resolver}})
	a.cfg.Peers = []config.Peer{{Name: "b", ID: b.id, Addrs: b.cfg.ListenAddresses}}
	a.up(t, "uxa", Options{SOCKS5: "off", ExitNode: "b"})
	ctx := context.Background()
	p2ptest.Eventually(t, "a connected to its exit node", func() bool {
		s, err := a.client.Status(ctx)
		return err == nil && s.ExitNode != nil && s.ExitNode.Connected
	})
	conn, err := a.client.Dial(ctx, "example.test", 80) // a name outside the mesh: b's DNS, b's resolver
	if err != nil {
		t.Fatalf("dial through the exit node: %v", err)
	}
	line, _ := bufio.NewReader(conn).ReadString('\n')
	conn.Close()
	if line != "hello from the internet\n" {
		t.Fatalf("read %q", line)
	}
	if got := dialed(); !slices.Equal(got, []string{"tcp 198.51.100.7:80"}) {
		t.Errorf("the exit node dialed %v", got)
	}
	if s, err := b.client.Status(ctx); err != nil || s.Forwarding == nil || s.ExitNode == nil || !s.ExitNode.Offer {
		t.Errorf("the exit node's status: %+v, %v", s, err)
	}
}

// dnsServer serves name's A record on loopback UDP; it returns the address.
func dnsServer(t *testing.T, name, ip string) string {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &dns.Server{PacketConn: pc, Handler: dns.HandlerFunc(func(w dns.ResponseWriter, r *dns.Msg) {
		m := new(dns.Msg)
		m.SetReply(r)
		if r.Question[0].Name == name && r.Question[0].Qtype == dns.TypeA {
			m.Answer = append(m.Answer, &dns.A{Hdr: dns.RR_Header{Name: name, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 60}, A: net.ParseIP(ip)})
		}
		w.WriteMsg(m)
	})}
	go srv.ActivateAndServe()
	t.Cleanup(func() { srv.Shutdown() })
	return pc.LocalAddr().String()
}

// TestUserspaceSubnetRouter: a userspace node that serves a network (its
// config's routes) carries a peer's connections into it from its host;
// the peer reaches it because its own config routes that network through
// the node, and nothing else of the host.
func TestUserspaceSubnetRouter(t *testing.T) {
	toServer, dialed := greeter(t, "hello from the LAN")
	a, b := newTestNode(t, "sra"), newTestNode(t, "srb")
	b.cfg.Peers = []config.Peer{{Name: "a", ID: a.id}}
	b.cfg.Routes = []config.Route{{Net: "192.0.2.0/24"}}
	b.cfg.ListenAddresses = []string{fmt.Sprintf("/ip4/127.0.0.1/tcp/%d", freePort(t, "tcp"))}
	b.up(t, "srb", Options{SOCKS5: "off", forwardDial: toServer})
	a.cfg.Peers = []config.Peer{{Name: "b", ID: b.id, Addrs: b.cfg.ListenAddresses, Routes: []config.Route{{Net: "192.0.2.0/24"}}}}
	a.up(t, "sra", Options{SOCKS5: "off"})
	ctx := context.Background()
	var line string
	p2ptest.Eventually(t, "a reaches 192.0.2.10 behind b", func() bool {
		conn, err := a.client.Dial(ctx, "192.0.2.10", 22)
		if err != nil {
			return false
		}
		defer conn.Close()
		line, _ = bufio.NewReader(conn).ReadString('\n')
		return true
	})
	if line != "hello from the LAN\n" {
		t.Fatalf("read %q", line)
	}
	if _, err := a.client.Dial(ctx, "198.51.100.7", 80); err == nil {
		t.Error("a reached an address b does not serve")
	}
	if got := dialed(); !slices.Contains(got, "tcp 192.0.2.10:22") || slices.ContainsFunc(got, func(s string) bool { return strings.Contains(s, "198.51.100.7") }) {
		t.Errorf("b dialed %v", got)
	}
}

// greeter is a forwarding dial function for tests: every address it is
// asked for goes to a loopback server that writes greeting and a newline,
// so nothing leaves the machine; dialed lists what was asked.
func greeter(t *testing.T, greeting string) (dial func(ctx context.Context, network, address string) (net.Conn, error), dialed func() []string) {
	t.Helper()
	srv := serveTCP(t, func(c net.Conn) { fmt.Fprintf(c, "%s\n", greeting) })
	var mu sync.Mutex
	var asked []string
	dial = func(ctx context.Context, network, address string) (net.Conn, error) {
		mu.Lock()
		asked = append(asked, network+" "+address)
		mu.Unlock()
		var d net.Dialer
		return d.DialContext(ctx, "tcp", srv)
	}
	return dial, func() []string {
		mu.Lock()
		defer mu.Unlock()
		return slices.Clone(asked)
	}
}

// TestExitClients: an exit node offered to named clients serves those
// alone; offered to none named, every peer; not offered, nobody.
func TestExitClients(t *testing.T) {
	d := &Daemon{peers: []peerInfo{{name: "a", id: "A"}, {name: "b", id: "B", member: true}}}
	for _, tc := range []struct {
		exit exitState
		want []peer.ID
	}{
		{exitState{offer: true, clients: []string{"b"}}, []peer.ID{"B"}},
		{exitState{offer: true}, []peer.ID{"A", "B"}},
		{exitState{clients: []string{"a"}}, nil},
	} {
		d.exit = tc.exit
		if got := d.exitClients(); !slices.Equal(got, tc.want) {
			t.Errorf("%+v: clients %v, want %v", tc.exit, got, tc.want)
		}
	}
}
