package names

import (
	"context"
	"net"
	"strconv"
	"sync"
	"time"

	"github.com/miekg/dns"
)

// Bounds of forwarding: how long one upstream may take, how many queries
// may be on their way at once (more get SERVFAIL at once), and how long
// the resolver list read from resolv.conf is kept.
const (
	upstreamTimeout = 2 * time.Second
	maxInFlight     = 64
	resolvConfTTL   = 30 * time.Second
)

// Upstream sends queries on to the host's resolvers, as resolv.conf names
// them: what an exit node does for its clients.
type Upstream struct {
	ResolvConf string   // absent: /etc/resolv.conf
	Servers    []string // host:port; when set, used instead of ResolvConf's
	port       string   // replaces resolv.conf's port (53) when set: tests
	sem        chan struct{}
	mu         sync.Mutex
	servers    []string
	read       time.Time
}

// NewUpstream makes an Upstream for the resolvers in resolvConf (empty:
// /etc/resolv.conf).
func NewUpstream(resolvConf string) *Upstream {
	if resolvConf == "" {
		resolvConf = "/etc/resolv.conf"
	}
	return &Upstream{ResolvConf: resolvConf, sem: make(chan struct{}, maxInFlight)}
}

// resolvers are the host's resolvers as host:port, re-read after
// resolvConfTTL (a laptop's network changes).
func (u *Upstream) resolvers() []string {
	if len(u.Servers) > 0 {
		return u.Servers
	}
	u.mu.Lock()
	defer u.mu.Unlock()
	if time.Since(u.read) < resolvConfTTL && len(u.servers) > 0 {
		return u.servers
	}
	u.read = time.Now()
	cc, err := dns.ClientConfigFromFile(u.ResolvConf)
	if err != nil {
		return u.servers
	}
	u.servers = u.servers[:0]
	port := cc.Port
	if u.port != "" {
		port = u.port
	}
	for _, s := range cc.Servers {
		u.servers = append(u.servers, net.JoinHostPort(s, port))
	}
	return u.servers
}

// Exchange asks the host's resolvers r, one after another, over UDP and
// over TCP when the answer was cut; it answers SERVFAIL when none
// answers or too many queries are on their way.
func (u *Upstream) Exchange(r *dns.Msg) *dns.Msg {
	select {
	case u.sem <- struct{}{}:
		defer func() { <-u.sem }()
	default:
		return servfail(r)
	}
	for _, s := range u.resolvers() {
		if m := exchange(r, s); m != nil {
			return m
		}
	}
	return servfail(r)
}

// exchange asks the DNS server at addr r, over UDP, then TCP if the
// answer was cut; nil if it did not answer.
func exchange(r *dns.Msg, addr string) *dns.Msg {
	ctx, cancel := context.WithTimeout(context.Background(), upstreamTimeout)
	defer cancel()
	c := &dns.Client{Net: "udp", Timeout: upstreamTimeout}
	m, _, err := c.ExchangeContext(ctx, r, addr)
	if err == nil && m.Truncated {
		c.Net = "tcp"
		m, _, err = c.ExchangeContext(ctx, r, addr)
	}
	if err != nil {
		return nil
	}
	return m
}

// ExchangeWith asks the DNS server at addr (host:port) r over conn, a
// connection the caller dialed (a mesh address through the tunnel); nil
// if it did not answer.
func ExchangeWith(conn net.Conn, r *dns.Msg) *dns.Msg {
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(upstreamTimeout))
	co := &dns.Conn{Conn: conn}
	if err := co.WriteMsg(r); err != nil {
		return nil
	}
	m, err := co.ReadMsg()
	if err != nil {
		return nil
	}
	return m
}

// ServerAddr is the mesh DNS server's address on a node's IPv4 address.
func ServerAddr(ip string) string { return net.JoinHostPort(ip, strconv.Itoa(53)) }

// ServFail is the SERVFAIL answer to r: the server could not get an
// answer (resolvers do not cache it as they do NXDOMAIN).
func ServFail(r *dns.Msg) *dns.Msg { return servfail(r) }

func servfail(r *dns.Msg) *dns.Msg {
	m := new(dns.Msg)
	m.SetRcode(r, dns.RcodeServerFailure)
	return m
}
