package daemon

import (
	"context"
	"net"
	"net/netip"
	"strconv"
	"strings"

	"github.com/mynetwork/mynetwork/internal/control"
)

// resolve maps a host to an address: a node's name in the name table
// (also as name.mynetwork and name.mynetwork.internal) gives its IPv4
// address; an IP literal is taken as is; while an exit node is in use,
// another name is looked up through it.
func (d *Daemon) resolve(host string) (netip.Addr, bool) {
	if e, ok := d.names.Load().Lookup(host); ok {
		return e.Addrs.IPv4, true
	}
	if a, err := netip.ParseAddr(strings.Trim(host, "[]")); err == nil {
		return a.Unmap(), true
	}
	if d.exitInUse() != "" && strings.Contains(host, ".") {
		return d.resolveViaExit(host) // a name on the internet, through the exit node
	}
	return netip.Addr{}, false
}

// Dial opens a TCP connection to host:port through the mesh: in kernel mode
// through the OS (which routes mesh addresses to the TUN), in userspace mode
// through the in-process stack.
func (d *Daemon) Dial(ctx context.Context, host string, port uint16) (net.Conn, error) {
	addr, ok := d.resolve(host)
	if !ok {
		return nil, control.Errorf(control.ErrNotFound, "dial %s:%d: %q is neither a configured peer's name nor an IP address", host, port, host)
	}
	target := net.JoinHostPort(addr.String(), strconv.Itoa(int(port)))
	if _, routed := d.eng.Table().Lookup(addr); !routed && addr != d.addrs.IPv4 && addr != d.addrs.IPv6 {
		return nil, control.Errorf(control.ErrNotFound, "dial %s: %s is not on the mesh (no peer or route covers it)", target, addr)
	}
	return d.dev.dial(ctx, "tcp", target)
}
