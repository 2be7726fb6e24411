package kerneltun

import (
	"fmt"
	"net"
	"net/netip"
	"os/exec"
	"strings"
)

// On Windows the name is the one shown in the Control Panel's network
// connections; setting addresses needs an Administrator.
func checkFree(name string) error {
	if _, err := net.InterfaceByName(name); err == nil {
		return fmt.Errorf("interface %s already exists: is another 'mynetwork up -i %s' running?", name, name)
	}
	return nil
}

func netsh(args ...string) error {
	out, err := exec.Command("netsh", args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("netsh %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}

func configure(name string, cfg Config) error {
	mask := net.IP(net.CIDRMask(cfg.IPv4.Bits(), 32)).String()
	if err := netsh("interface", "ipv4", "set", "address", "name="+name, "static", cfg.IPv4.Addr().String(), mask); err != nil {
		return fmt.Errorf("%w (run as Administrator)", err)
	}
	if cfg.IPv6.IsValid() {
		if err := netsh("interface", "ipv6", "add", "address", name, cfg.IPv6.String()); err != nil {
			return err
		}
	}
	return nil
}

func family(p netip.Prefix) string {
	if p.Addr().Is4() {
		return "ipv4"
	}
	return "ipv6"
}

func addRoute(name string, p netip.Prefix) error {
	return netsh("interface", family(p), "add", "route", p.String(), name)
}

func delRoute(name string, p netip.Prefix) error {
	return netsh("interface", family(p), "delete", "route", p.String(), name)
}
