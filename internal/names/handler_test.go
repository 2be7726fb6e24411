package names

import (
	"io"
	"net"
	"slices"
	"testing"
	"time"

	"github.com/miekg/dns"
)

func query(name string, qtype uint16) *dns.Msg {
	m := new(dns.Msg)
	m.SetQuestion(name, qtype)
	return m
}

// records renders an answer section as text, without the headers.
func records(rrs []dns.RR) []string {
	var out []string
	for _, rr := range rrs {
		switch rr := rr.(type) {
		case *dns.A:
			out = append(out, "A "+rr.A.String())
		case *dns.AAAA:
			out = append(out, "AAAA "+rr.AAAA.String())
		case *dns.PTR:
			out = append(out, "PTR "+rr.Ptr)
		case *dns.SOA:
			out = append(out, "SOA "+rr.Hdr.Name)
		default:
			out = append(out, rr.String())
		}
	}
	return out
}

func TestHandler(t *testing.T) {
	h := NewHandler(testTable)
	for _, tc := range []struct {
		name   string
		q      *dns.Msg
		rcode  int
		answer []string
		ns     []string // the authority section
	}{
		{"A", query("pi.mynetwork.internal.", dns.TypeA), dns.RcodeSuccess, []string{"A 100.64.0.2"}, nil},
		{"AAAA", query("pi.mynetwork.internal.", dns.TypeAAAA), dns.RcodeSuccess, []string{"AAAA fd6d:796e:6574::2"}, nil},
		{"ANY", query("pi.mynetwork.internal.", dns.TypeANY), dns.RcodeSuccess, []string{"A 100.64.0.2", "AAAA fd6d:796e:6574::2"}, nil},
		{"case-insensitive", query("Pi.MYNETWORK.internal.", dns.TypeA), dns.RcodeSuccess, []string{"A 100.64.0.2"}, nil},
		{"config's case", query("nas.mynetwork.internal.", dns.TypeA), dns.RcodeSuccess, []string{"A 100.64.0.3"}, nil},
		{"short domain", query("pi.mynetwork.", dns.TypeA), dns.RcodeSuccess, []string{"A 100.64.0.2"}, nil},
		{"self", query("self.mynetwork.internal.", dns.TypeA), dns.RcodeSuccess, []string{"A 100.64.0.1"}, nil},
		{"no record of the type", query("pi.mynetwork.internal.", dns.TypeMX), dns.RcodeSuccess, nil, []string{"SOA mynetwork.internal."}},
		{"unknown name", query("printer.mynetwork.internal.", dns.TypeA), dns.RcodeNameError, nil, []string{"SOA mynetwork.internal."}},
		{"below a name", query("www.pi.mynetwork.internal.", dns.TypeA), dns.RcodeNameError, nil, []string{"SOA mynetwork.internal."}},
		{"the zone", query("mynetwork.internal.", dns.TypeSOA), dns.RcodeSuccess, []string{"SOA mynetwork.internal."}, nil},
		{"outside name", query("example.com.", dns.TypeA), dns.RcodeNameError, nil, nil},
		{"outside name with a mesh label", query("pi.", dns.TypeA), dns.RcodeNameError, nil, nil},
		{"PTR IPv4", query("2.0.64.100.in-addr.arpa.", dns.TypePTR), dns.RcodeSuccess, []string{"PTR pi.mynetwork.internal."}, nil},
		{"PTR IPv6", query(dns.Fqdn(revOf(t, "fd6d:796e:6574::3")), dns.TypePTR), dns.RcodeSuccess, []string{"PTR NAS.mynetwork.internal."}, nil},
		{"PTR of no node", query("9.0.64.100.in-addr.arpa.", dns.TypePTR), dns.RcodeNameError, nil, []string{"SOA 64.100.in-addr.arpa."}},
		{"PTR outside the mesh", query("8.8.8.8.in-addr.arpa.", dns.TypePTR), dns.RcodeNameError, nil, nil},
		{"PTR partial", query("0.64.100.in-addr.arpa.", dns.TypePTR), dns.RcodeNameError, nil, []string{"SOA 64.100.in-addr.arpa."}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := h.Answer(tc.q)
			if m.Rcode != tc.rcode || !slices.Equal(records(m.Answer), tc.answer) || !slices.Equal(records(m.Ns), tc.ns) {
				t.Errorf("got %s %q ns %q, want %s %q ns %q", dns.RcodeToString[m.Rcode], records(m.Answer), records(m.Ns),
					dns.RcodeToString[tc.rcode], tc.answer, tc.ns)
			}
			if m.Id != tc.q.Id || !m.Response {
				t.Errorf("not a reply to the query: %v", m)
			}
		})
	}
}

func revOf(t *testing.T, ip string) string {
	r, err := dns.ReverseAddr(ip)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestHandlerOddQueries(t *testing.T) {
	h := NewHandler(testTable)
	notify := query("pi.mynetwork.internal.", dns.TypeA)
	notify.Opcode = dns.OpcodeNotify
	two := query("pi.mynetwork.internal.", dns.TypeA)
	two.Question = append(two.Question, two.Question[0])
	chaos := query("pi.mynetwork.internal.", dns.TypeA)
	chaos.Question[0].Qclass = dns.ClassCHAOS
	for _, tc := range []struct {
		name  string
		q     *dns.Msg
		rcode int
	}{
		{"not a query", notify, dns.RcodeNotImplemented},
		{"two questions", two, dns.RcodeFormatError},
		{"no question", new(dns.Msg), dns.RcodeFormatError},
		{"class CHAOS", chaos, dns.RcodeNameError},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if m := h.Answer(tc.q); m.Rcode != tc.rcode || len(m.Answer) != 0 {
				t.Errorf("got %s %v, want %s", dns.RcodeToString[m.Rcode], m.Answer, dns.RcodeToString[tc.rcode])
			}
		})
	}
}

// An answer keeps the query's case (resolvers that randomise it check),
// and speaks EDNS only to a client that does.
func TestHandlerEchoes(t *testing.T) {
	h := NewHandler(testTable)
	q := query("pI.MyNetwork.Internal.", dns.TypeA)
	m := h.Answer(q)
	if len(m.Answer) != 1 || m.Answer[0].Header().Name != "pI.MyNetwork.Internal." {
		t.Errorf("answer %v does not keep the query's name", m.Answer)
	}
	if m.IsEdns0() != nil || !m.Authoritative {
		t.Errorf("answer without EDNS in the query: OPT %v, authoritative %v", m.IsEdns0(), m.Authoritative)
	}
	q.SetEdns0(1232, false)
	if h.Answer(q).IsEdns0() == nil {
		t.Error("no OPT in the answer to a query with one")
	}
}

func TestServe(t *testing.T) {
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv, err := Serve(NewHandler(testTable), pc, ln)
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	for _, tc := range []struct{ net, addr string }{{"udp", pc.LocalAddr().String()}, {"tcp", ln.Addr().String()}} {
		c := &dns.Client{Net: tc.net}
		m, _, err := c.Exchange(query("pi.mynetwork.internal.", dns.TypeA), tc.addr)
		if err != nil {
			t.Fatalf("%s: %v", tc.net, err)
		}
		if got := records(m.Answer); !slices.Equal(got, []string{"A 100.64.0.2"}) {
			t.Errorf("%s: answer %q", tc.net, got)
		}
	}
	if err := srv.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
	if err := srv.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
}

// A TCP connection that sends nothing is closed after TCPReadTimeout.
func TestServeClosesIdleTCP(t *testing.T) {
	pc, _ := net.ListenPacket("udp", "127.0.0.1:0")
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	srv, err := Serve(NewHandler(testTable), pc, ln)
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetReadDeadline(time.Now().Add(TCPReadTimeout + 3*time.Second))
	if _, err := c.Read(make([]byte, 1)); err != io.EOF {
		t.Errorf("read on an idle connection: %v, want EOF", err)
	}
}
