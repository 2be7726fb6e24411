package hostnet

import (
	"net"
	"strings"
	"testing"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

const (
	testTable = 100
	testMark  = 0x1234
)

// exitSetup gives the test's namespace a LAN uplink, up0, whose gateways
// are the main table's default routes, and an exit interface, exit0.
func exitSetup(t *testing.T) {
	t.Helper()
	up := addVeth(t, "up0", "10.9.0.1/24", "fd00:9::1/64")
	for _, gw := range []string{"10.9.0.254", "fd00:9::fe"} {
		if err := netlink.RouteAdd(&netlink.Route{LinkIndex: up.Index, Gw: net.ParseIP(gw)}); err != nil {
			t.Fatalf("default route via %s: %v", gw, err)
		}
	}
	addVeth(t, "exit0", "100.64.0.1/10", "fd5a::1/48")
}

func testRoutes(allowLAN bool) ExitRoutes {
	return ExitRoutes{
		Iface: "exit0", Table: testTable, Mark: testMark, AllowLAN: allowLAN,
		Ports: []Port{{"tcp", 4001}, {"udp", 4002}},
	}
}

// routeDev is the interface `ip route get` says a packet leaves through.
func routeDev(t *testing.T, args string) string {
	t.Helper()
	f := strings.Fields(ip(t, append([]string{"route", "get"}, strings.Fields(args)...)...))
	for i := range len(f) - 1 {
		if f[i] == "dev" {
			return f[i+1]
		}
	}
	t.Fatalf("ip route get %s names no interface: %q", args, f)
	return ""
}

// TestExitRoutes: while installed, the kernel's routing decisions are
// those ExitRoutes documents, for both families; undo gives back the rules
// and routes byte for byte.
func TestExitRoutes(t *testing.T) {
	needNetns(t)
	exitSetup(t)
	for _, allowLAN := range []bool{false, true} {
		lan := "exit0"
		if allowLAN {
			lan = "up0"
		}
		before := routingState(t)
		undo, err := testRoutes(allowLAN).Install()
		if err != nil {
			t.Fatal(err)
		}
		for _, tc := range []struct{ name, args, dev string }{
			{"IPv4", "192.0.2.1", "exit0"},
			{"IPv6", "2001:db8::1", "exit0"},
			{"IPv4 marked", "192.0.2.1 mark 0x1234", "up0"},
			{"IPv6 marked", "2001:db8::1 mark 0x1234", "up0"},
			{"IPv4 other mark", "192.0.2.1 mark 0x1235", "exit0"},
			{"IPv4 tcp listen port", "192.0.2.1 ipproto tcp sport 4001", "up0"},
			{"IPv6 udp listen port", "2001:db8::1 ipproto udp sport 4002", "up0"},
			{"IPv4 udp on the tcp port", "192.0.2.1 ipproto udp sport 4001", "exit0"},
			{"IPv6 tcp on the udp port", "2001:db8::1 ipproto tcp sport 4002", "exit0"},
			{"IPv4 other port", "192.0.2.1 ipproto tcp sport 4003", "exit0"},
			{"IPv4 LAN", "10.9.0.5", lan},
			{"IPv6 LAN", "fd00:9::5", lan},
			{"IPv4 mesh", "100.64.3.4", "exit0"},
		} {
			if dev := routeDev(t, tc.args); dev != tc.dev {
				t.Errorf("AllowLAN %v, %s: ip route get %s leaves through %s; want %s", allowLAN, tc.name, tc.args, dev, tc.dev)
			}
		}
		checkRules(t, allowLAN)
		if err := undo(); err != nil {
			t.Fatal(err)
		}
		if after := routingState(t); after != before {
			t.Errorf("AllowLAN %v: before Install:\n%s\nafter undo:\n%s", allowLAN, before, after)
		}
		if err := undo(); err != nil {
			t.Errorf("second undo: %v", err)
		}
	}
}

// checkRules: the rules read as the documentation has them.
func checkRules(t *testing.T, allowLAN bool) {
	t.Helper()
	want := "0:\tfrom all lookup local\n" +
		"32760:\tfrom all fwmark 0x1234 lookup main\n" +
		"32761:\tfrom all ipproto tcp sport 4001 lookup main\n" +
		"32761:\tfrom all ipproto udp sport 4002 lookup main\n"
	if allowLAN {
		want += "32762:\tfrom all lookup main suppress_prefixlength 0\n"
	}
	want += "32763:\tfrom all lookup 100\n" +
		"32766:\tfrom all lookup main\n"
	for family, last := range map[string]string{"-4": "32767:\tfrom all lookup default\n", "-6": ""} {
		if got := ip(t, family, "rule"); got != want+last {
			t.Errorf("AllowLAN %v: ip %s rule:\n%s\nwant:\n%s", allowLAN, family, got, want+last)
		}
	}
}

// TestExitRoutesFails: an Install that fails, whether before it changes
// anything or halfway, leaves the rules and routes as they were, and says
// why.
func TestExitRoutesFails(t *testing.T) {
	needNetns(t)
	exitSetup(t)
	exit, err := netlink.LinkByName("exit0")
	if err != nil {
		t.Fatal(err)
	}
	// Table 100 holds an IPv6 default route already: the IPv4 one goes in
	// before Install finds out, and must come out again.
	taken := &netlink.Route{LinkIndex: exit.Attrs().Index, Table: testTable, Dst: &net.IPNet{IP: net.IPv6zero, Mask: net.CIDRMask(0, 128)}}
	if err := netlink.RouteAdd(taken); err != nil {
		t.Fatal(err)
	}
	defer netlink.RouteDel(taken)
	before := routingState(t)
	missing := testRoutes(true)
	missing.Iface = "nosuch0"
	for _, tc := range []struct {
		name   string
		routes ExitRoutes
		want   string
	}{
		{"no such interface", missing, "exit routes through nosuch0: Link not found"},
		{"table in use", testRoutes(true), "add route ::/0 dev exit0 table 100: the table has a default route already (is another program using table 100? choose another)"},
	} {
		undo, err := tc.routes.Install()
		if err == nil {
			undo()
			t.Errorf("%s: Install succeeded", tc.name)
		} else if !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: Install: %v; want %q", tc.name, err, tc.want)
		}
		if after := routingState(t); after != before {
			t.Errorf("%s: before Install:\n%s\nafter it failed:\n%s", tc.name, before, after)
		}
	}
}

// TestExitRoutesPortsDropped: where a rule at the listen ports' priority
// has no ipproto and sport, as a kernel before 4.17 would leave them,
// Install says so and takes back what it added.
func TestExitRoutesPortsDropped(t *testing.T) {
	needNetns(t)
	exitSetup(t)
	bare := newRule(unix.AF_INET6, prioPorts, tableMain)
	if err := netlink.RuleAdd(bare); err != nil {
		t.Fatal(err)
	}
	defer netlink.RuleDel(bare)
	before := routingState(t)
	undo, err := testRoutes(false).Install()
	want := "the kernel dropped the ipproto and sport of the rules at priority 32761: listen ports need Linux 4.17 or newer"
	if err == nil {
		undo()
		t.Errorf("Install succeeded")
	} else if !strings.Contains(err.Error(), want) {
		t.Errorf("Install: %v; want %q", err, want)
	}
	if after := routingState(t); after != before {
		t.Errorf("before Install:\n%s\nafter it failed:\n%s", before, after)
	}
}

// TestExitRoutesLeftovers: rules left by a run that did not stop cleanly
// (its interface, and so its routes, went with it) do not stop the next
// Install, whose undo then leaves none; and undo after the interface is
// gone still deletes the rules.
func TestExitRoutesLeftovers(t *testing.T) {
	needNetns(t)
	exitSetup(t)
	before := routingState(t)
	if _, err := testRoutes(false).Install(); err != nil {
		t.Fatal(err)
	}
	recreate := func() {
		if err := netlink.LinkDel(&netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: "exit0"}}); err != nil {
			t.Fatal(err)
		}
		addVeth(t, "exit0", "100.64.0.1/10", "fd5a::1/48")
	}
	recreate()
	undo, err := testRoutes(false).Install()
	if err != nil {
		t.Fatalf("Install over a crashed run's rules: %v", err)
	}
	if dev := routeDev(t, "192.0.2.1"); dev != "exit0" {
		t.Errorf("ip route get 192.0.2.1 leaves through %s; want exit0", dev)
	}
	recreate()
	if err := undo(); err != nil {
		t.Fatalf("undo after the interface went: %v", err)
	}
	if after := routingState(t); after != before {
		t.Errorf("before the first Install:\n%s\nafter undo:\n%s", before, after)
	}
}

// TestExitRoutesInvalid: a configuration that cannot work is refused with
// every problem named, before anything changes.
func TestExitRoutesInvalid(t *testing.T) {
	needNetns(t)
	before := routingState(t)
	for _, tc := range []struct {
		name   string
		routes ExitRoutes
		want   []string
	}{
		{"empty", ExitRoutes{}, []string{`interface name "" is not valid`, "routing table 0 is not valid", "socket mark 0 is not valid"}},
		{"long name", ExitRoutes{Iface: "exit-name-too-long", Table: 100, Mark: 1}, []string{`interface name "exit-name-too-long" is not valid: use 1 to 15 bytes`}},
		{"main table", ExitRoutes{Iface: "exit0", Table: 254, Mark: 1}, []string{"routing table 254 is the kernel's own"}},
		{"local table", ExitRoutes{Iface: "exit0", Table: 255, Mark: 1}, []string{"routing table 255 is the kernel's own"}},
		{"negative table", ExitRoutes{Iface: "exit0", Table: -1, Mark: 1}, []string{"routing table -1 is not valid: use 1 to 4294967295"}},
		{"ports", ExitRoutes{Iface: "exit0", Table: 100, Mark: 1, Ports: []Port{{"sctp", 1}, {"tcp", 0}}},
			[]string{`ports[0]: protocol "sctp" is not tcp or udp`, "ports[1]: port 0 is not a listen port"}},
	} {
		_, err := tc.routes.Install()
		for _, w := range tc.want {
			if err == nil || !strings.Contains(err.Error(), w) {
				t.Errorf("%s: Install: %v; want %q", tc.name, err, w)
			}
		}
	}
	if after := routingState(t); after != before {
		t.Errorf("before:\n%s\nafter:\n%s", before, after)
	}
}
