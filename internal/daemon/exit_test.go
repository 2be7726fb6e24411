package daemon

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"net/netip"
	"slices"
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
	srv, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	go func() {
		for {
			c, err := srv.Accept()
			if err != nil {
				return
			}
			fmt.Fprintf(c, "hello from the internet\n")
			c.Close()
		}
	}()
	var mu sync.Mutex
	var dialed []string
	toServer := func(ctx context.Context, network, address string) (net.Conn, error) {
		mu.Lock()
		dialed = append(dialed, network+" "+address)
		mu.Unlock()
		var d net.Dialer
		return d.DialContext(ctx, "tcp", srv.Addr().String())
	}

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
	mu.Lock()
	defer mu.Unlock()
	if !slices.Equal(dialed, []string{"tcp 198.51.100.7:80"}) {
		t.Errorf("the exit node dialed %v", dialed)
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
