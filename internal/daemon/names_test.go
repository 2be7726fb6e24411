package daemon

import (
	"context"
	"fmt"
	"net"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/mynetwork/mynetwork/config"
	"github.com/mynetwork/mynetwork/internal/control"
)

// TestUserspaceDNS asks B's DNS server, inside B's stack, over the mesh
// from A: over TCP through nc's dial (by B's name under the new domain), and
// over UDP through a forward.
func TestUserspaceDNS(t *testing.T) {
	a, b := newTestNode(t, "dna"), newTestNode(t, "dnb")
	b.cfg.Peers = []config.Peer{{Name: "ms0", ID: a.id}}
	b.cfg.ListenAddresses = []string{fmt.Sprintf("/ip4/127.0.0.1/tcp/%d", freePort(t, "tcp"))}
	b.up(t, "dnb", Options{SOCKS5: "off"})
	fwdDNS := fmt.Sprintf("127.0.0.1:%d", freePort(t, "udp"))
	a.cfg.Peers = []config.Peer{{Name: "ms1", ID: b.id, Addrs: b.cfg.ListenAddresses}}
	a.up(t, "dna", Options{SOCKS5: "off", Forwards: []string{"udp:" + fwdDNS + "=ms1:53"}})
	ast, err := a.client.Status(context.Background())
	if err != nil {
		t.Fatal(err)
	}

	var tcp net.Conn
	for range 100 { // until A has connected to B
		if tcp, err = a.client.Dial(context.Background(), "MS1.mynetwork.internal", 53); err == nil {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err != nil {
		t.Fatal(err)
	}
	defer tcp.Close()
	tcp.SetDeadline(time.Now().Add(10 * time.Second))
	ask := func(t *testing.T, c *dns.Conn, name string, qtype uint16) *dns.Msg {
		q := new(dns.Msg)
		q.SetQuestion(name, qtype)
		if err := c.WriteMsg(q); err != nil {
			t.Fatal(err)
		}
		m, err := c.ReadMsg()
		if err != nil {
			t.Fatal(err)
		}
		return m
	}
	checkAnswers(t, ask, &dns.Conn{Conn: tcp}, ast)

	udp, err := net.Dial("udp", fwdDNS)
	if err != nil {
		t.Fatal(err)
	}
	defer udp.Close()
	udp.SetDeadline(time.Now().Add(10 * time.Second))
	checkAnswers(t, ask, &dns.Conn{Conn: udp}, ast)
}

// checkAnswers asks B for A's name (ms0 in B's config) and for one B does
// not know.
func checkAnswers(t *testing.T, ask func(*testing.T, *dns.Conn, string, uint16) *dns.Msg, c *dns.Conn, ast control.Status) {
	t.Helper()
	m := ask(t, c, "ms0.mynetwork.internal.", dns.TypeA)
	if len(m.Answer) != 1 || m.Answer[0].(*dns.A).A.String() != ast.IPv4 {
		t.Errorf("ms0 A: %v, want %s", m.Answer, ast.IPv4)
	}
	m = ask(t, c, "ms0.mynetwork.internal.", dns.TypeAAAA)
	if len(m.Answer) != 1 || m.Answer[0].(*dns.AAAA).AAAA.String() != ast.IPv6 {
		t.Errorf("ms0 AAAA: %v, want %s", m.Answer, ast.IPv6)
	}
	if m = ask(t, c, "nobody.mynetwork.internal.", dns.TypeA); m.Rcode != dns.RcodeNameError {
		t.Errorf("nobody: %s, want NXDOMAIN", dns.RcodeToString[m.Rcode])
	}
}
