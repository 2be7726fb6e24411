package kerneltun

import (
	"fmt"
	"net"
	"net/netip"
	"os/exec"
	"strings"
)

// macOS only accepts "utun" (the kernel picks the number) or "utunN".
func checkFree(name string) error {
	if name != "utun" && !strings.HasPrefix(name, "utun") {
		return fmt.Errorf("on macOS the interface must be named utun or utun<N>, not %q", name)
	}
	if name != "utun" {
		if _, err := net.InterfaceByName(name); err == nil {
			return fmt.Errorf("interface %s already exists: is another 'mynetwork up -i %s' running?", name, name)
		}
	}
	return nil
}

func run(args ...string) error {
	out, err := exec.Command(args[0], args[1:]...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}

func configure(name string, cfg Config) error {
	a := cfg.IPv4.Addr().String()
	mask := net.IP(net.CIDRMask(cfg.IPv4.Bits(), 32)).String()
	if err := run("ifconfig", name, "inet", a, a, "netmask", mask, "up"); err != nil {
		return err
	}
	if err := addRoute(name, cfg.IPv4.Masked()); err != nil {
		return err
	}
	if cfg.IPv6.IsValid() {
		if err := run("ifconfig", name, "inet6", cfg.IPv6.Addr().String(), "prefixlen", fmt.Sprint(cfg.IPv6.Bits())); err != nil {
			return err
		}
	}
	return nil
}

func family(p netip.Prefix) string {
	if p.Addr().Is4() {
		return "-inet"
	}
	return "-inet6"
}

func addRoute(name string, p netip.Prefix) error {
	return run("route", "-n", "add", family(p), p.String(), "-interface", name)
}

func delRoute(name string, p netip.Prefix) error {
	return run("route", "-n", "delete", family(p), p.String(), "-interface", name)
}
