package engine

import (
	"cmp"
	"net/netip"
	"slices"

	"github.com/libp2p/go-libp2p/core/peer"
)

// Route sends a network to a peer.
type Route struct {
	Prefix netip.Prefix
	Peer   peer.ID
}

// Table is an immutable longest-prefix → peer table. It answers where an
// outgoing packet goes (Lookup), whether an incoming packet may come from
// the peer that sent it (Allowed), and whether it may go where it is
// addressed (Delivers). Change it by building a new one.
type Table struct {
	hosts  map[netip.Addr]peer.ID // /32 and /128 entries: the common case, one map probe
	nets   []Route                // everything else, longest prefix first
	routes []Route                // as given, for display
	local  []netip.Prefix         // this node's addresses and the networks it serves
}

// NewTable builds a table. Later duplicates of a prefix are ignored. local
// are this node's own addresses and the networks it serves its peers: an
// incoming packet is delivered only when addressed to one of them.
func NewTable(routes []Route, local ...netip.Prefix) *Table {
	t := &Table{hosts: make(map[netip.Addr]peer.ID), local: slices.Clone(local)}
	seen := make(map[netip.Prefix]bool)
	for _, r := range routes {
		p := r.Prefix.Masked()
		if seen[p] {
			continue
		}
		seen[p] = true
		r.Prefix = p
		t.routes = append(t.routes, r)
		if p.IsSingleIP() {
			t.hosts[p.Addr()] = r.Peer
		} else {
			t.nets = append(t.nets, r)
		}
	}
	slices.SortStableFunc(t.nets, func(a, b Route) int { return cmp.Compare(b.Prefix.Bits(), a.Prefix.Bits()) })
	return t
}

// Lookup returns the peer the longest matching prefix sends dst to.
func (t *Table) Lookup(dst netip.Addr) (peer.ID, bool) {
	if p, ok := t.hosts[dst]; ok {
		return p, true
	}
	for _, r := range t.nets {
		if r.Prefix.Contains(dst) {
			return r.Peer, true
		}
	}
	return "", false
}

// Allowed reports whether a packet with source src may arrive from peer
// from: src must be routed to that same peer.
func (t *Table) Allowed(src netip.Addr, from peer.ID) bool {
	p, ok := t.Lookup(src)
	return ok && p == from
}

// Delivers reports whether a packet from a peer addressed to dst is for
// this node: one of its addresses or a network it serves. Any other
// destination (the host's LAN or docker addresses, networks behind it
// that it does not serve) is not a peer's to reach.
func (t *Table) Delivers(dst netip.Addr) bool {
	for _, p := range t.local {
		if p.Contains(dst) {
			return true
		}
	}
	return false
}

// Local returns the addresses and networks the table delivers to.
func (t *Table) Local() []netip.Prefix { return slices.Clone(t.local) }

// Routes returns the table's routes in the order given.
func (t *Table) Routes() []Route { return slices.Clone(t.routes) }

// With returns a new table with r added, replacing an equal prefix.
func (t *Table) With(r Route) *Table {
	rs := t.Without(r.Prefix).routes
	return NewTable(append(slices.Clone(rs), r), t.local...)
}

// Without returns a new table without the prefix p.
func (t *Table) Without(p netip.Prefix) *Table {
	p = p.Masked()
	rs := slices.DeleteFunc(slices.Clone(t.routes), func(r Route) bool { return r.Prefix == p })
	return NewTable(rs, t.local...)
}

// Has reports whether the table holds exactly prefix p.
func (t *Table) Has(p netip.Prefix) (peer.ID, bool) {
	p = p.Masked()
	for _, r := range t.routes {
		if r.Prefix == p {
			return r.Peer, true
		}
	}
	return "", false
}
