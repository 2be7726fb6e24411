// Package names maps the mesh's names to its nodes' addresses, one table
// for every place that takes a name (SOCKS5, forwards, nc, DNS), and serves
// it over DNS: NAME.mynetwork.internal and NAME.mynetwork forward, the mesh
// ranges in reverse, NXDOMAIN for the rest. It never forwards a query.
package names

import (
	"net/netip"
	"strings"

	"github.com/mynetwork/mynetwork/config"
)

// The mesh's DNS domains (see config.HostLabel).
const (
	Domain      = config.MeshDomain
	ShortDomain = config.ShortMeshDomain
)

// Self names this node in its own table, besides its host name.
const Self = "self"

// Entry is one node: its name and its mesh addresses.
type Entry struct {
	Name  string
	Addrs config.Addresses
}

// Table maps names, in any case, to nodes and mesh addresses back to names.
// It does not change once made: a new config makes a new table.
type Table struct {
	byName map[string]Entry      // lower-case name → node
	byAddr map[netip.Addr]string // mesh address → the node's name
}

// NewTable makes the table of this node (self, named after its host; the
// name may be empty) and its configured peers. A peer's name wins over the
// host's name and over Self: those are the node's own guesses, the peer's
// name is what a person wrote in the config.
func NewTable(self Entry, peers []Entry) *Table {
	t := &Table{byName: map[string]Entry{}, byAddr: map[netip.Addr]string{}}
	for _, p := range peers {
		t.add(p.Name, p)
	}
	t.add(self.Name, self)
	t.add(Self, self)
	return t
}

// add enters e under name unless the name is empty or taken; e's addresses
// keep the first name they were entered under.
func (t *Table) add(name string, e Entry) {
	key := strings.ToLower(name)
	if _, taken := t.byName[key]; taken || key == "" {
		return
	}
	t.byName[key] = e
	for _, a := range []netip.Addr{e.Addrs.IPv4, e.Addrs.IPv6} {
		if _, named := t.byAddr[a]; !named && a.IsValid() {
			t.byAddr[a] = name
		}
	}
}

// Lookup finds a node by NAME, NAME.mynetwork or NAME.mynetwork.internal,
// in any case, with or without the final dot.
func (t *Table) Lookup(host string) (Entry, bool) {
	label, ok := config.HostLabel(host)
	if !ok {
		return Entry{}, false
	}
	e, ok := t.byName[label]
	return e, ok
}

// Name is the name of the node that holds the mesh address a.
func (t *Table) Name(a netip.Addr) (string, bool) {
	name, ok := t.byAddr[a.Unmap()]
	return name, ok
}
