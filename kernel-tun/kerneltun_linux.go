package kerneltun

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// checkFree refuses a name the kernel would not take (its rules, in
// dev_valid_name), saying why: TUNSETIFF says only "invalid argument", and
// the TUN library keeps the /dev/net/tun it opened for it. An empty name
// lets the kernel choose one (tunN). It also refuses a name in use.
func checkFree(name string) error {
	if len(name) >= unix.IFNAMSIZ || name == "." || name == ".." || strings.ContainsAny(name, "/: \t\n\v\f\r\x00") {
		return fmt.Errorf(`interface name %q is not valid on Linux: use at most 15 bytes, no '/', ':' or space, and not "." or ".."`, name)
	}
	if _, err := netlink.LinkByName(name); err == nil {
		return fmt.Errorf("interface %s already exists: is another 'mynetwork up -i %s' running? (choose another name with -i)", name, name)
	}
	return nil
}

func ipNet(p netip.Prefix) *net.IPNet {
	return &net.IPNet{IP: p.Addr().AsSlice(), Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen())}
}

func configure(name string, cfg Config) error {
	link, err := netlink.LinkByName(name)
	if err != nil {
		return err
	}
	if err := netlink.AddrAdd(link, &netlink.Addr{IPNet: ipNet(cfg.IPv4)}); err != nil {
		return fmt.Errorf("add address %s: %w", cfg.IPv4, err)
	}
	if cfg.IPv6.IsValid() {
		// No duplicate address detection: the address is ours by construction,
		// and DAD would hold it back for a second or more.
		addr := &netlink.Addr{IPNet: ipNet(cfg.IPv6), Flags: unix.IFA_F_NODAD}
		if err := netlink.AddrAdd(link, addr); err != nil {
			return fmt.Errorf("add address %s (is IPv6 disabled? sysctl net.ipv6.conf.all.disable_ipv6): %w", cfg.IPv6, err)
		}
	}
	if err := netlink.LinkSetUp(link); err != nil {
		return fmt.Errorf("set up: %w", err)
	}
	return nil
}

func route(name string, p netip.Prefix) (*netlink.Route, error) {
	link, err := netlink.LinkByName(name)
	if err != nil {
		return nil, err
	}
	return &netlink.Route{LinkIndex: link.Attrs().Index, Dst: ipNet(p), Scope: netlink.SCOPE_LINK}, nil
}

func addRoute(name string, p netip.Prefix) error {
	r, err := route(name, p)
	if err != nil {
		return err
	}
	if err := netlink.RouteAdd(r); err != nil {
		if errors.Is(err, unix.EEXIST) {
			return fmt.Errorf("a route to %s already exists on this system: %w", p, err)
		}
		return err
	}
	return nil
}

func delRoute(name string, p netip.Prefix) error {
	r, err := route(name, p)
	if err != nil {
		return err
	}
	return netlink.RouteDel(r)
}
