package names

import (
	"net"
	"net/netip"
	"strings"

	"github.com/miekg/dns"
)

// TTL is how long, in seconds, resolvers may keep an answer: short,
// because a config change can rename a peer.
const TTL = 60

// Handler answers DNS queries for the mesh's zones from a name table. A
// name outside them gets NXDOMAIN, unless Forward takes it.
type Handler struct {
	table func() *Table
	// Forward, if set, answers a query outside the mesh's zones from the
	// client at from, or returns nil to leave it NXDOMAIN: an exit node
	// forwards its clients' queries, a node using one forwards its own to
	// it (so that no query leaves beside the tunnel).
	Forward func(r *dns.Msg, from netip.Addr) *dns.Msg
}

var _ dns.Handler = (*Handler)(nil)

// NewHandler answers from the table that table returns at each query, so
// that a new config can swap it while the server runs.
func NewHandler(table func() *Table) *Handler { return &Handler{table: table} }

// ServeDNS answers one query. A write error (the client is gone) leaves
// nothing to do.
func (h *Handler) ServeDNS(w dns.ResponseWriter, r *dns.Msg) {
	if h.Forward != nil && len(r.Question) == 1 && r.Opcode == dns.OpcodeQuery {
		if _, mesh := zoneOf(r.Question[0].Name); !mesh {
			if m := h.Forward(r, addrOf(w.RemoteAddr())); m != nil {
				m.Id = r.Id
				w.WriteMsg(m)
				return
			}
		}
	}
	w.WriteMsg(h.Answer(r))
}

// addrOf is the IP address of a client's net.Addr.
func addrOf(a net.Addr) netip.Addr {
	if ap, err := netip.ParseAddrPort(a.String()); err == nil {
		return ap.Addr().Unmap()
	}
	return netip.Addr{}
}

// Answer is the reply to the query r.
func (h *Handler) Answer(r *dns.Msg) *dns.Msg {
	m := new(dns.Msg)
	m.SetReply(r)
	if opt := r.IsEdns0(); opt != nil {
		m.SetEdns0(dns.DefaultMsgSize, false)
	}
	switch {
	case r.Opcode != dns.OpcodeQuery:
		m.Rcode = dns.RcodeNotImplemented
		return m
	case len(r.Question) != 1:
		m.Rcode = dns.RcodeFormatError
		return m
	}
	q := r.Question[0]
	zone, ok := zoneOf(q.Name)
	if !ok || q.Qclass != dns.ClassINET {
		m.Rcode = dns.RcodeNameError
		return m
	}
	m.Authoritative = true
	found := true
	switch {
	case strings.EqualFold(strings.TrimSuffix(q.Name, "."), zone):
		if q.Qtype == dns.TypeSOA {
			m.Answer = append(m.Answer, soa(zone))
		}
	case strings.HasSuffix(zone, ".arpa"):
		found = h.reverse(m, q)
	default:
		found = h.forward(m, q)
	}
	if !found {
		m.Rcode = dns.RcodeNameError
	}
	if len(m.Answer) == 0 {
		m.Ns = append(m.Ns, soa(zone)) // lets resolvers cache the negative answer
	}
	return m
}

// zoneOf is the mesh zone that name falls in, in lower case without the
// final dot.
func zoneOf(name string) (string, bool) {
	name = strings.ToLower(strings.TrimSuffix(name, "."))
	for _, z := range append([]string{Domain, ShortDomain}, ReverseZones...) {
		if name == z || strings.HasSuffix(name, "."+z) {
			return z, true
		}
	}
	return "", false
}

// forward answers a node's name with its A and AAAA records; it is false
// when no node has the name.
func (h *Handler) forward(m *dns.Msg, q dns.Question) bool {
	e, ok := h.table().Lookup(q.Name)
	if !ok {
		return false
	}
	if q.Qtype == dns.TypeA || q.Qtype == dns.TypeANY {
		m.Answer = append(m.Answer, &dns.A{Hdr: header(q.Name, dns.TypeA), A: e.Addrs.IPv4.AsSlice()})
	}
	if q.Qtype == dns.TypeAAAA || q.Qtype == dns.TypeANY {
		m.Answer = append(m.Answer, &dns.AAAA{Hdr: header(q.Name, dns.TypeAAAA), AAAA: e.Addrs.IPv6.AsSlice()})
	}
	return true
}

// reverse answers a mesh address's reverse name with its node's name under
// Domain; it is false for an address no node holds, and for a name that is
// not a whole address (no resolver asks for one in earnest).
func (h *Handler) reverse(m *dns.Msg, q dns.Question) bool {
	a, ok := ParseReverse(q.Name)
	if !ok {
		return false
	}
	name, ok := h.table().Name(a)
	if !ok {
		return false
	}
	if q.Qtype == dns.TypePTR || q.Qtype == dns.TypeANY {
		m.Answer = append(m.Answer, &dns.PTR{Hdr: header(q.Name, dns.TypePTR), Ptr: dns.Fqdn(name + "." + Domain)})
	}
	return true
}

func header(name string, t uint16) dns.RR_Header {
	return dns.RR_Header{Name: name, Rrtype: t, Class: dns.ClassINET, Ttl: TTL}
}

// soa is the zone's start of authority: what a resolver needs to cache a
// negative answer for TTL seconds. The numbers other than the last serve
// secondary servers, of which there are none.
func soa(zone string) dns.RR {
	z := dns.Fqdn(zone)
	return &dns.SOA{
		Hdr: header(z, dns.TypeSOA), Ns: z, Mbox: "hostmaster." + z,
		Serial: 1, Refresh: 3600, Retry: 600, Expire: 86400, Minttl: TTL,
	}
}
