package names

import (
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"

	"github.com/miekg/dns"
)

// serveOn serves h on loopback UDP and TCP; it returns the UDP address.
func serveOn(t *testing.T, h dns.Handler) string {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv, err := Serve(h, pc, ln)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	return pc.LocalAddr().String()
}

// TestForward: a mesh server hands names outside the mesh to Forward with
// the client's address, and answers NXDOMAIN when Forward declines; the
// mesh's own names never go to Forward. Upstream asks the resolvers of a
// resolv.conf.
func TestForward(t *testing.T) {
	// The "internet's" resolver: example.test is 192.0.2.7.
	up := serveOn(t, dns.HandlerFunc(func(w dns.ResponseWriter, r *dns.Msg) {
		m := new(dns.Msg)
		m.SetReply(r)
		m.Answer = append(m.Answer, &dns.A{Hdr: header(r.Question[0].Name, dns.TypeA), A: net.IPv4(192, 0, 2, 7)})
		w.WriteMsg(m)
	}))
	host, port, _ := net.SplitHostPort(up)
	conf := filepath.Join(t.TempDir(), "resolv.conf")
	if err := os.WriteFile(conf, []byte("nameserver "+host+"\noptions ndots:1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	upstream := NewUpstream(conf)
	upstream.port = port // resolv.conf has no port; the test's resolver is not on 53

	var mu sync.Mutex
	var asked []netip.Addr
	h := NewHandler(testTable)
	h.Forward = func(r *dns.Msg, from netip.Addr) *dns.Msg {
		mu.Lock()
		asked = append(asked, from)
		mu.Unlock()
		if r.Question[0].Name == "declined.test." {
			return nil
		}
		return upstream.Exchange(r)
	}
	srv := serveOn(t, h)
	c := new(dns.Client)
	for _, tc := range []struct {
		name  string
		want  []string
		rcode int
	}{
		{"example.test.", []string{"A 192.0.2.7"}, dns.RcodeSuccess},
		{"declined.test.", nil, dns.RcodeNameError},
		{"pi.mynetwork.internal.", []string{"A 100.64.0.2"}, dns.RcodeSuccess},
	} {
		m, _, err := c.Exchange(query(tc.name, dns.TypeA), srv)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if got := records(m.Answer); m.Rcode != tc.rcode || !slices.Equal(got, tc.want) {
			t.Errorf("%s: rcode %d, answer %q; want %d, %q", tc.name, m.Rcode, got, tc.rcode, tc.want)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if want := []netip.Addr{netip.MustParseAddr("127.0.0.1"), netip.MustParseAddr("127.0.0.1")}; !slices.Equal(asked, want) {
		t.Errorf("Forward asked for %v, want %v (never for the mesh's names)", asked, want)
	}

	// No resolver answers: SERVFAIL.
	if err := os.WriteFile(conf, []byte("nameserver 127.0.0.1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	dead := NewUpstream(conf)
	dead.port = "9" // discard: nothing answers DNS there
	if m := dead.Exchange(query("example.test.", dns.TypeA)); m.Rcode != dns.RcodeServerFailure {
		t.Errorf("no resolver: rcode %d, want SERVFAIL", m.Rcode)
	}
}
