package hostnet

import (
	"fmt"
	"os/exec"
	"strings"
	"testing"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// ip runs the ip command, as a user would to check on the library.
func ip(t *testing.T, args ...string) string {
	t.Helper()
	out, err := exec.Command("ip", args...).CombinedOutput()
	if err != nil {
		t.Fatalf("ip %s: %v: %s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// routingState is what ExitRoutes may change, as `ip` shows it.
func routingState(t *testing.T) string {
	t.Helper()
	var b strings.Builder
	for _, args := range []string{"-4 rule", "-6 rule", "-4 route show table all", "-6 route show table all"} {
		fmt.Fprintf(&b, "$ ip %s\n%s", args, ip(t, strings.Fields(args)...))
	}
	return b.String()
}

// addVeth adds a veth pair the test deletes, name and name+"p", gives the
// first the addresses and sets both up. (This kernel has no dummy
// interfaces; a veth pair has a carrier once both ends are up.) Neither
// gets an IPv6 link-local address, whose duplicate address detection
// would change the routes while a test compares them.
func addVeth(t *testing.T, name string, addrs ...string) *netlink.Veth {
	t.Helper()
	l := &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: name}, PeerName: name + "p"}
	if err := netlink.LinkAdd(l); err != nil {
		t.Fatalf("add %s: %v", name, err)
	}
	t.Cleanup(func() { netlink.LinkDel(l) })
	for _, a := range addrs {
		addAddr(t, netlink.AddrAdd, l, a)
	}
	for _, n := range []string{name, l.PeerName} {
		setSysctl(t, "/proc/sys/net/ipv6/conf/"+n+"/addr_gen_mode", "1")
		if err := netlink.LinkSetUp(&netlink.Device{LinkAttrs: netlink.LinkAttrs{Name: n}}); err != nil {
			t.Fatalf("set %s up: %v", n, err)
		}
	}
	return l
}

// addAddr adds an address, IPv6 ones without duplicate address detection,
// which would hold them back for a second or more.
func addAddr(t *testing.T, add func(netlink.Link, *netlink.Addr) error, l netlink.Link, a string) {
	t.Helper()
	addr, err := netlink.ParseAddr(a)
	if err != nil {
		t.Fatal(err)
	}
	if addr.IP.To4() == nil {
		addr.Flags = unix.IFA_F_NODAD
	}
	if err := add(l, addr); err != nil {
		t.Fatalf("add %s to %s: %v", a, l.Attrs().Name, err)
	}
}
