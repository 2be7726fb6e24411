package config

import (
	"fmt"
	"net"
	"net/netip"
	"regexp"
	"strconv"
	"strings"

	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"
)

// peerName is what a peer's name may look like: it is used as a host name
// (name.mynetwork) and on the command line.
var peerName = regexp.MustCompile(`^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?$`)

// Validate checks the whole config and returns every problem found, joined,
// each naming its JSON path and the offending value.
func (c *Config) Validate() error {
	var probs []*Problem
	add := func(path, format string, args ...any) {
		probs = append(probs, &Problem{path, fmt.Sprintf(format, args...)})
	}

	var self peer.ID
	if c.PrivateKey == "" {
		add("privateKey", "missing (run 'mynetwork init' to create a key)")
	} else if id, err := c.ID(); err != nil {
		add("privateKey", "%v", err)
	} else {
		self = id
	}
	for i, a := range c.ListenAddresses {
		if _, err := ma.NewMultiaddr(a); err != nil {
			add(fmt.Sprintf("listenAddresses[%d]", i), "%q is not a multiaddr: %v", a, err)
		}
	}
	if c.BootstrapPeers != nil {
		for i, a := range *c.BootstrapPeers {
			if _, err := peer.AddrInfoFromString(a); err != nil {
				add(fmt.Sprintf("bootstrapPeers[%d]", i), "%q is not a multiaddr ending in /p2p/<peer ID>: %v", a, err)
			}
		}
	}

	for i, a := range c.Relays {
		if _, err := peer.AddrInfoFromString(a); err != nil {
			add(fmt.Sprintf("relays[%d]", i), "%q is not a multiaddr ending in /p2p/<peer ID>: %v", a, err)
		}
	}
	if c.MTU != 0 && (c.MTU < MinMTU || c.MTU > MaxMTU) {
		add("mtu", "%d is outside %d..%d (leave it out for the default)", c.MTU, MinMTU, MaxMTU)
	}
	switch c.Reachability {
	case "", "auto", "public", "private":
	default:
		add("reachability", "%q is not \"auto\", \"public\" or \"private\"", c.Reachability)
	}

	// Address collisions are checked against self and between peers.
	type owner struct{ what, path string }
	v4owner := map[netip.Addr]owner{}
	if self != "" {
		v4owner[AddressesOf(self).IPv4] = owner{"this node (" + self.String() + ")", "privateKey"}
	}
	names := map[string]int{}
	ids := map[peer.ID]int{}
	routes := map[netip.Prefix]string{}
	for j, r := range c.Routes {
		checkRoute(add, routes, fmt.Sprintf("routes[%d].net", j), r)
	}
	for i, p := range c.Peers {
		at := fmt.Sprintf("peers[%d]", i)
		switch {
		case p.Name == "":
			add(at+".name", "missing: every peer needs a name")
		case !peerName.MatchString(p.Name):
			add(at+".name", "%q is not a valid name: use letters, digits and inner dashes, at most 63", p.Name)
		default:
			if j, dup := names[p.Name]; dup {
				add(at+".name", "%q is also the name of peers[%d]", p.Name, j)
			} else {
				names[p.Name] = i
			}
		}
		id, err := peer.Decode(p.ID)
		switch {
		case p.ID == "":
			add(at+".id", "missing: every peer needs its peer ID (printed by 'mynetwork init' on that node)")
		case err != nil:
			add(at+".id", "%q is not a peer ID: %v", p.ID, err)
		case id == self:
			add(at+".id", "%q is this node's own peer ID: a node is not its own peer", p.ID)
		default:
			if j, dup := ids[id]; dup {
				add(at+".id", "%q is also the ID of peers[%d]", p.ID, j)
				break
			}
			ids[id] = i
			a4 := AddressesOf(id).IPv4
			if o, clash := v4owner[a4]; clash {
				add(at+".id", "peer %s derives the address %s, the same as %s at %s: the two cannot be in one mesh",
					p.ID, a4, o.what, o.path)
			} else {
				v4owner[a4] = owner{"peer " + p.ID, at + ".id"}
			}
		}
		for j, r := range p.Routes {
			checkRoute(add, routes, fmt.Sprintf("%s.routes[%d].net", at, j), r)
		}
		for j, a := range p.Addrs {
			if _, err := ma.NewMultiaddr(a); err != nil {
				add(fmt.Sprintf("%s.addrs[%d]", at, j), "%q is not a multiaddr: %v", a, err)
			}
		}
	}
	if u := c.Userspace; u != nil {
		listen := netip.MustParseAddrPort(DefaultSOCKS5)
		if u.SOCKS5 != "" && u.SOCKS5 != "off" {
			var err error
			if listen, err = netip.ParseAddrPort(u.SOCKS5); err != nil {
				add("userspace.socks5", "%q is not an IP:port (or \"off\")", u.SOCKS5)
			}
		}
		if (u.SOCKS5Username == "") != (u.SOCKS5Password == "") {
			add("userspace.socks5Password", "socks5Username and socks5Password must be set together")
		}
		switch u.SOCKS5Auth {
		case "", SOCKS5AuthPassword:
		case SOCKS5AuthNone:
			if u.SOCKS5Username != "" {
				add("userspace.socks5Auth", "\"none\" but socks5Username is set: leave out one or the other")
			}
			if u.SOCKS5 != "off" && listen.IsValid() {
				if err := CheckOpenSOCKS5(listen); err != nil {
					add("userspace.socks5Auth", "\"none\": %v", err)
				}
			}
		default:
			add("userspace.socks5Auth", "%q is not \"password\" or \"none\"", u.SOCKS5Auth)
		}
		for i, f := range u.Forwards {
			at := fmt.Sprintf("userspace.forwards[%d]", i)
			checkProto(add, at, f.Proto)
			if _, err := netip.ParseAddrPort(f.Listen); err != nil {
				add(at+".listen", "%q is not a local IP:port", f.Listen)
			}
			if host, port, err := net.SplitHostPort(f.To); err != nil || !validPort(port) {
				add(at+".to", "%q is not HOST:PORT (a peer name or mesh IP, and a port)", f.To)
			} else if _, known := names[strings.TrimSuffix(host, ".mynetwork")]; !known {
				if _, err := netip.ParseAddr(host); err != nil {
					add(at+".to", "%q names no configured peer", host)
				}
			}
		}
		for i, e := range u.Exposes {
			at := fmt.Sprintf("userspace.exposes[%d]", i)
			checkProto(add, at, e.Proto)
			if e.Port == 0 {
				add(at+".port", "missing: the port on this node's mesh address (1-65535)")
			}
			if _, port, err := net.SplitHostPort(e.To); err != nil || !validPort(port) {
				add(at+".to", "%q is not a local HOST:PORT", e.To)
			}
		}
	}
	if len(probs) == 0 {
		return nil
	}
	return joinProblems(probs)
}

// CheckOpenSOCKS5 refuses a SOCKS5 proxy without authentication on an
// address that is not loopback: whoever reached it would reach the mesh as
// this node.
func CheckOpenSOCKS5(listen netip.AddrPort) error {
	if listen.Addr().IsLoopback() {
		return nil
	}
	return fmt.Errorf("a SOCKS5 proxy on %s, which is not a loopback address, needs a username and password, "+
		"or anyone who reaches it reaches the mesh as this node", listen)
}

func checkProto(add func(string, string, ...any), at, proto string) {
	if proto != "" && proto != "tcp" && proto != "udp" {
		add(at+".proto", "%q is not \"tcp\" or \"udp\"", proto)
	}
}

func validPort(s string) bool {
	n, err := strconv.Atoi(s)
	return err == nil && n > 0 && n < 65536
}

// checkRoute checks a route's network at path: a CIDR, not already in
// routes (the routes seen so far, by path), where it is then added.
func checkRoute(add func(string, string, ...any), routes map[netip.Prefix]string, path string, r Route) {
	pfx, err := ParseRoute(r.Net)
	if err != nil {
		add(path, "%v", err)
		return
	}
	if other, dup := routes[pfx]; dup {
		add(path, "%s is already routed at %s", pfx, other)
		return
	}
	routes[pfx] = path
}

// ParseRoute parses a peer route's network: a CIDR in canonical form (no
// host bits) that does not overlap the mesh's own address ranges.
func ParseRoute(s string) (netip.Prefix, error) {
	pfx, err := netip.ParsePrefix(s)
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("%q is not a CIDR (like 10.1.2.0/24 or fd00:1::/64)", s)
	}
	if m := pfx.Masked(); m != pfx {
		return netip.Prefix{}, fmt.Errorf("%q has host bits set: did you mean %s?", s, m)
	}
	for _, mesh := range []netip.Prefix{MeshPrefix4, MeshPrefix6} {
		if pfx.Overlaps(mesh) {
			return netip.Prefix{}, fmt.Errorf("%q overlaps the mesh's own range %s, whose addresses come from peer IDs", s, mesh)
		}
	}
	return pfx, nil
}

// SuggestName turns a host name into a valid peer name: the first label,
// with anything else than letters, digits and dashes replaced by dashes.
func SuggestName(host string) string {
	host, _, _ = strings.Cut(host, ".")
	b := []byte(host)
	for i, c := range b {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9') {
			b[i] = '-'
		}
	}
	name := strings.Trim(string(b), "-")
	if len(name) > 63 {
		name = strings.TrimRight(name[:63], "-")
	}
	if name == "" {
		return "node"
	}
	return name
}
