// Package hostnet makes the changes to the host's network that exit nodes
// need: IP forwarding, source NAT and policy routing. Linux only; each
// change comes with a function that undoes exactly that change, so a node
// that stops leaves the host as it found it. Elsewhere every function
// returns an error that says the platform is not supported.
package hostnet

import (
	"errors"
	"fmt"
	"net/netip"
	"sync"
	"syscall"
)

// EnableForwarding turns IPv4 and IPv6 forwarding on
// (net.ipv4.ip_forward and net.ipv6.conf.all.forwarding) and returns
// restore, which puts back the values it found. A value that was on
// already is left alone, and restore leaves it alone too: writing either
// setting also resets the forwarding setting of every interface. When it
// turns IPv6 forwarding on, it sets each accept_ra that is 1 to 2 first
// (with forwarding on, 1 no longer takes router advertisements, and a host
// that learns its IPv6 default route from them would lose it when the
// route expires), and restore sets them back.
func EnableForwarding() (restore func() error, err error) {
	restore, err = enableForwarding()
	if err != nil {
		return nil, err
	}
	return sync.OnceValue(restore), nil
}

// Masquerade installs the nftables table inet "mynetwork-<iface>",
// replacing one that a run which did not stop cleanly left behind. Its nat
// chain (hook postrouting, priority srcnat) masquerades packets whose
// source is in src4 or src6 and that leave through any interface but
// iface: mesh traffic bound for the internet leaves with the host's
// address. Its filter chain (hook forward, priority filter, policy accept)
// accepts packets coming in from iface and, going out to iface, those of
// connections already established. Those accepts do not override a drop
// in another table: a host firewall whose forward policy is drop must let
// the mesh's packets through itself. A zero prefix leaves its family out.
// undo deletes the table, and is no error if the table is gone already;
// calling it again does nothing.
func Masquerade(iface string, src4, src6 netip.Prefix) (undo func() error, err error) {
	if err := errors.Join(checkIfaceName(iface), checkSources(src4, src6)); err != nil {
		return nil, err
	}
	undo, err = masquerade(iface, src4.Masked(), src6.Masked())
	if err != nil {
		return nil, err
	}
	return sync.OnceValue(undo), nil
}

// TableName is the nftables table, of family inet, that Masquerade
// installs for iface.
func TableName(iface string) string { return "mynetwork-" + iface }

// MarkControl returns a Control function for net.ListenConfig and
// net.Dialer that sets the socket mark (SO_MARK) to mark, so that the
// socket's packets match ExitRoutes' mark rule and keep to the main table.
// Setting a mark needs CAP_NET_ADMIN (or, from Linux 5.17, CAP_NET_RAW).
func MarkControl(mark uint32) func(network, address string, c syscall.RawConn) error {
	return markControl(mark)
}

// ReuseMarkControl is MarkControl for a socket that also shares its port
// with a listener (SO_REUSEADDR, SO_REUSEPORT): a dial from the VPN's
// listen port, as libp2p dials, marked all the same.
func ReuseMarkControl(mark uint32) func(network, address string, c syscall.RawConn) error {
	markIt := markControl(mark)
	return func(network, address string, c syscall.RawConn) error {
		if err := reusePort(network, address, c); err != nil {
			return err
		}
		return markIt(network, address, c)
	}
}

// Port is a local port of the VPN's own sockets, for ExitRoutes.
type Port struct {
	Proto string // "tcp" or "udp"
	Port  uint16
}

// ExitRoutes sends all of the host's traffic into Iface, the way wg-quick
// does for a default route: a routing table of its own (Table) holds a
// default route, IPv4 and IPv6, through Iface, and policy rules, IPv4 and
// IPv6, decide which packets look that table up. At priority 32760,
// packets of sockets marked Mark look up main; at 32761, packets whose
// local source port is one of Ports (the VPN's own listen ports, whose
// replies and reuseport dials must keep to the main table) look up main;
// with AllowLAN, at 32762, "lookup main suppress_prefixlength 0" gives the
// main table's routes but its default route, so the LAN stays reachable;
// at 32763 everything else looks up Table. The rules sit before the
// kernel's own "lookup main" at 32766.
type ExitRoutes struct {
	Iface    string
	Table    int
	Mark     uint32
	Ports    []Port
	AllowLAN bool
}

// Install adds the table's routes and the rules, first deleting rules
// identical to its own that a run which did not stop cleanly left behind.
// undo removes exactly what Install added, so that `ip rule` and
// `ip route show table all` read as they did before; what is gone already
// (the routes go with the interface) is no error, and calling it again
// does nothing. A failed Install leaves nothing behind.
func (r ExitRoutes) Install() (undo func() error, err error) {
	if err := r.validate(); err != nil {
		return nil, err
	}
	undo, err = r.install()
	if err != nil {
		return nil, err
	}
	return sync.OnceValue(undo), nil
}

// Rule priorities: just below the kernel's "lookup main" at 32766.
const (
	prioMark  = 32760
	prioPorts = 32761
	prioLAN   = 32762
	prioTable = 32763
)

// The routing tables the kernel reserves: an exit table must be none of them.
const (
	tableDefault = 253
	tableMain    = 254
	tableLocal   = 255
)

func (r ExitRoutes) validate() error {
	var errs []error
	if err := checkIfaceName(r.Iface); err != nil {
		errs = append(errs, err)
	}
	switch {
	case r.Table <= 0 || int64(r.Table) > 1<<32-1:
		errs = append(errs, fmt.Errorf("routing table %d is not valid: use 1 to 4294967295", r.Table))
	case r.Table == tableDefault || r.Table == tableMain || r.Table == tableLocal:
		errs = append(errs, fmt.Errorf("routing table %d is the kernel's own (default, main or local): choose another", r.Table))
	}
	if r.Mark == 0 {
		// A rule for mark 0 would match every packet.
		errs = append(errs, errors.New("socket mark 0 is not valid: the VPN's sockets need a mark of their own"))
	}
	for i, p := range r.Ports {
		if p.Proto != "tcp" && p.Proto != "udp" {
			errs = append(errs, fmt.Errorf("ports[%d]: protocol %q is not tcp or udp", i, p.Proto))
		}
		if p.Port == 0 {
			errs = append(errs, fmt.Errorf("ports[%d]: port 0 is not a listen port", i))
		}
	}
	return errors.Join(errs...)
}

// checkIfaceName refuses a name no Linux interface can have.
func checkIfaceName(name string) error {
	if name == "" || len(name) > 15 {
		return fmt.Errorf("interface name %q is not valid: use 1 to 15 bytes", name)
	}
	return nil
}

// checkSources refuses prefixes of the wrong family; a zero Prefix leaves
// that family out, but not both.
func checkSources(src4, src6 netip.Prefix) error {
	var errs []error
	if src4.IsValid() && !src4.Addr().Is4() {
		errs = append(errs, fmt.Errorf("IPv4 source %s is not an IPv4 prefix", src4))
	}
	if src6.IsValid() && (!src6.Addr().Is6() || src6.Addr().Is4In6()) {
		errs = append(errs, fmt.Errorf("IPv6 source %s is not an IPv6 prefix", src6))
	}
	if !src4.IsValid() && !src6.IsValid() {
		errs = append(errs, errors.New("no source prefix to masquerade: give an IPv4 or an IPv6 one"))
	}
	return errors.Join(errs...)
}
