package config

import (
	"fmt"
	"net/netip"
	"regexp"
	"strings"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"
)

// peerName is what a peer's name may look like: it is used as a host name
// (name.mynetwork) and on the command line.
var peerName = regexp.MustCompile(`^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?$`)

// Validate checks the whole config and returns every problem found, joined,
// each naming its JSON path and the offending value. The order of the
// checks is part of what a user reads: the routes this node serves come
// before the peers', so a repeated route is reported at the peer, and the
// userspace section comes last, as its forwards name peers.
func (c *Config) Validate() error {
	v := newValidator()
	v.identity(c)
	v.multiaddrs("listenAddresses", c.ListenAddresses)
	if c.BootstrapPeers != nil {
		v.peerAddrs("bootstrapPeers", *c.BootstrapPeers)
	}
	v.peerAddrs("relays", c.Relays)
	v.mtu(c.MTU)
	v.reachability(c.Reachability)
	if c.IdleTimeout != "" && c.IdleTimeout != NeverIdle {
		if d, err := time.ParseDuration(c.IdleTimeout); err != nil || d < MinIdleTimeout {
			v.add("idleTimeout", "%q is neither a duration of %s or more (like \"10m\") nor %q (every peer connected all the time)", c.IdleTimeout, MinIdleTimeout, NeverIdle)
		}
	}
	v.routes("routes", c.Routes)
	for i, p := range c.Peers {
		v.peer(i, p)
	}
	if c.Mesh != nil {
		v.members = true
		v.mesh(c.Mesh)
	}
	if c.ExitNode != nil {
		v.exitNode(c.ExitNode)
	}
	if c.Userspace != nil {
		v.userspace(c.Userspace)
	}
	if c.Metrics != "" {
		if err := CheckMetrics(c.Metrics); err != nil {
			v.add("metrics", "%v", err)
		}
	}
	return v.err()
}

// validator collects a config's problems. Some checks span sections: a
// route may be served or reached only once in the whole file, a forward
// names a peer, and no two nodes, this one included, may derive the same
// mesh address; the validator holds what the sections checked so far
// have claimed.
type validator struct {
	probs  []*Problem
	self   peer.ID                 // this node, "" when privateKey is bad
	names  map[string]int          // peer name → index in peers
	ids    map[peer.ID]int         // peer ID → index in peers
	routed map[netip.Prefix]string // network → path of the route to it
	v4     map[netip.Addr]owner    // derived IPv4 address → its node
	// members: the config has a mesh section, so names the peers list
	// lacks may be members'.
	members bool
}

// owner is the node that derives an IPv4 address, as a problem names it.
type owner struct{ what, path string }

func newValidator() *validator {
	return &validator{
		names:  map[string]int{},
		ids:    map[peer.ID]int{},
		routed: map[netip.Prefix]string{},
		v4:     map[netip.Addr]owner{},
	}
}

func (v *validator) add(path, format string, args ...any) {
	v.probs = append(v.probs, &Problem{path, fmt.Sprintf(format, args...)})
}

func (v *validator) err() error {
	if len(v.probs) == 0 {
		return nil
	}
	return joinProblems(v.probs)
}

// identity checks the private key and claims this node's mesh address,
// which no peer may derive as well.
func (v *validator) identity(c *Config) {
	if c.PrivateKey == "" {
		v.add("privateKey", "missing (run 'mynetwork init' to create a key)")
		return
	}
	id, err := c.ID()
	if err != nil {
		v.add("privateKey", "%v", err)
		return
	}
	v.self = id
	v.v4[AddressesOf(id).IPv4] = owner{"this node (" + id.String() + ")", "privateKey"}
}

// multiaddrs checks the list at path (listen or peer addresses).
func (v *validator) multiaddrs(path string, addrs []string) {
	for i, a := range addrs {
		if _, err := ma.NewMultiaddr(a); err != nil {
			v.add(fmt.Sprintf("%s[%d]", path, i), "%q is not a multiaddr: %v", a, err)
		}
	}
}

// peerAddrs checks the list at path (bootstrap peers or relays), whose
// entries must name the peer to be reached there.
func (v *validator) peerAddrs(path string, addrs []string) {
	for i, a := range addrs {
		if _, err := peer.AddrInfoFromString(a); err != nil {
			v.add(fmt.Sprintf("%s[%d]", path, i), "%q is not a multiaddr ending in /p2p/<peer ID>: %v", a, err)
		}
	}
}

func (v *validator) mtu(mtu int) {
	if mtu != 0 && (mtu < MinMTU || mtu > MaxMTU) {
		v.add("mtu", "%d is outside %d..%d (leave it out for the default)", mtu, MinMTU, MaxMTU)
	}
}

func (v *validator) reachability(r string) {
	switch r {
	case "", "auto", "public", "private":
	default:
		v.add("reachability", "%q is not \"auto\", \"public\" or \"private\"", r)
	}
}

// peer checks peers[i]: its name, its ID, the routes it serves and its
// addresses.
func (v *validator) peer(i int, p Peer) {
	at := fmt.Sprintf("peers[%d]", i)
	v.peerName(at+".name", i, p.Name)
	v.peerID(at+".id", i, p.ID)
	v.routes(at+".routes", p.Routes)
	v.multiaddrs(at+".addrs", p.Addrs)
}

// ValidName reports whether name may be a peer's name, by the rule a
// config's peers follow, so that names from elsewhere (a member
// certificate) resolve the same way.
func ValidName(name string) bool { return peerName.MatchString(name) }

func (v *validator) peerName(path string, i int, name string) {
	switch {
	case name == "":
		v.add(path, "missing: every peer needs a name")
	case !ValidName(name):
		v.add(path, "%q is not a valid name: use letters, digits and inner dashes, at most 63", name)
	default:
		if j, taken := claim(v.names, name, i); taken {
			v.add(path, "%q is also the name of peers[%d]", name, j)
		}
	}
}

func (v *validator) peerID(path string, i int, s string) {
	id, err := peer.Decode(s)
	switch {
	case s == "":
		v.add(path, "missing: every peer needs its peer ID (printed by 'mynetwork init' on that node)")
	case err != nil:
		v.add(path, "%q is not a peer ID: %v", s, err)
	case id == v.self:
		v.add(path, "%q is this node's own peer ID: a node is not its own peer", s)
	default:
		if j, taken := claim(v.ids, id, i); taken {
			v.add(path, "%q is also the ID of peers[%d]", s, j)
			return
		}
		v.claimAddress(path, s, id)
	}
}

// claim gives key to peers[i] in owners, unless an earlier peer has it:
// then it returns that peer's index and true.
func claim[K comparable](owners map[K]int, key K, i int) (int, bool) {
	if j, taken := owners[key]; taken {
		return j, true
	}
	owners[key] = i
	return i, false
}

// claimAddress records the IPv4 address the peer at path derives from its
// ID (s as the config spells it). The address is a hash of the ID cut down
// to 65534 values, so two IDs may share one, and then the mesh could not
// tell where a packet goes.
func (v *validator) claimAddress(path, s string, id peer.ID) {
	a4 := AddressesOf(id).IPv4
	if o, clash := v.v4[a4]; clash {
		v.add(path, "peer %s derives the address %s, the same as %s at %s: the two cannot be in one mesh",
			s, a4, o.what, o.path)
		return
	}
	v.v4[a4] = owner{"peer " + s, path}
}

// routes checks the route list at path: the top-level routes this node
// serves, or the routes a peer serves.
func (v *validator) routes(path string, routes []Route) {
	for j, r := range routes {
		v.route(fmt.Sprintf("%s[%d].net", path, j), r)
	}
}

// route checks a route's network at path: a CIDR that no route checked
// before claimed, since a packet to it could go only one way.
func (v *validator) route(path string, r Route) {
	pfx, err := ParseRoute(r.Net)
	if err != nil {
		v.add(path, "%v", err)
		return
	}
	if other, dup := v.routed[pfx]; dup {
		v.add(path, "%s is already routed at %s", pfx, other)
		return
	}
	v.routed[pfx] = path
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
