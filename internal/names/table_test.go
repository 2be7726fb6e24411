package names

import (
	"net/netip"
	"testing"

	"go.uber.org/goleak"

	"github.com/mynetwork/mynetwork/config"
)

// The server's goroutines must all be gone once Close has returned.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

func addrs(n byte) config.Addresses {
	return config.Addresses{
		IPv4: netip.AddrFrom4([4]byte{100, 64, 0, n}),
		IPv6: netip.AddrFrom16([16]byte{0xfd, 0x6d, 0x79, 0x6e, 0x65, 0x74, 15: n}),
	}
}

// testTable is this node "laptop" (1) with peers "pi" (2), "NAS" (3) and a
// peer that took the host's name, "Laptop" (4).
func testTable() *Table {
	return NewTable(Entry{Name: "laptop", Addrs: addrs(1)}, []Entry{
		{Name: "pi", Addrs: addrs(2)}, {Name: "NAS", Addrs: addrs(3)}, {Name: "Laptop", Addrs: addrs(4)},
	})
}

func TestTableLookup(t *testing.T) {
	tab := testTable()
	for _, tc := range []struct {
		name, host string
		want       byte // 0: not found
	}{
		{"bare name", "pi", 2},
		{"short domain", "pi.mynetwork", 2},
		{"domain", "pi.mynetwork.internal", 2},
		{"final dot", "pi.mynetwork.internal.", 2},
		{"case of the query", "PI.MyNetwork.Internal.", 2},
		{"case of the config", "nas.mynetwork.internal", 3},
		{"a peer's name wins over the host's", "laptop", 4},
		{"self", "self.mynetwork.internal", 1},
		{"unknown", "printer.mynetwork.internal", 0},
		{"two labels", "a.pi.mynetwork.internal", 0},
		{"another domain", "pi.example.com", 0},
		{"the domain itself", "mynetwork.internal", 0},
		{"empty", "", 0},
		{"a lone dot", ".", 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e, ok := tab.Lookup(tc.host)
			switch {
			case tc.want == 0 && ok:
				t.Errorf("Lookup(%q) = %v, want not found", tc.host, e)
			case tc.want != 0 && (!ok || e.Addrs != addrs(tc.want)):
				t.Errorf("Lookup(%q) = %v %v, want %v", tc.host, e, ok, addrs(tc.want))
			}
		})
	}
}

func TestTableName(t *testing.T) {
	tab := testTable()
	for _, tc := range []struct {
		name string
		addr netip.Addr
		want string // "": not found
	}{
		{"peer's IPv4", addrs(3).IPv4, "NAS"},
		{"peer's IPv6", addrs(2).IPv6, "pi"},
		{"IPv4-mapped", netip.AddrFrom16(addrs(2).IPv4.As16()), "pi"},
		{"self, its host's name taken by a peer", addrs(1).IPv4, "self"},
		{"a peer with the host's name", addrs(4).IPv4, "Laptop"},
		{"no node's", addrs(9).IPv4, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := tab.Name(tc.addr)
			if got != tc.want || ok != (tc.want != "") {
				t.Errorf("Name(%s) = %q %v, want %q", tc.addr, got, ok, tc.want)
			}
		})
	}
}

func TestSelfName(t *testing.T) {
	for _, host := range []string{"", "laptop"} {
		want := host
		if host == "" {
			want = Self
		}
		tab := NewTable(Entry{Name: host, Addrs: addrs(1)}, nil)
		if got, ok := tab.Name(addrs(1).IPv6); got != want || !ok {
			t.Errorf("host name %q: Name = %q %v, want %q", host, got, ok, want)
		}
	}
}

func TestReverse(t *testing.T) {
	if want := []string{"64.100.in-addr.arpa", "0.0.0.0.4.7.5.6.e.6.9.7.d.6.d.f.ip6.arpa"}; ReverseZones[0] != want[0] || ReverseZones[1] != want[1] {
		t.Errorf("ReverseZones = %q, want %q", ReverseZones, want)
	}
	for _, tc := range []struct {
		name, in string
		want     string // "": not an address
	}{
		{"IPv4", "7.1.64.100.in-addr.arpa.", "100.64.1.7"},
		{"IPv4, any case, no dot", "7.1.64.100.IN-ADDR.ARPA", "100.64.1.7"},
		{"IPv6", "1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.4.7.5.6.e.6.9.7.d.6.d.f.ip6.arpa.", "fd6d:796e:6574::1"},
		{"IPv6 upper case", "F.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.4.7.5.6.E.6.9.7.D.6.D.F.ip6.arpa", "fd6d:796e:6574::f"},
		{"octet too big", "256.1.64.100.in-addr.arpa.", ""},
		{"too few labels", "1.64.100.in-addr.arpa.", ""},
		{"leading zeros", "0007.1.64.100.in-addr.arpa.", ""},
		{"two-digit nibble", "10.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.4.7.5.6.e.6.9.7.d.6.d.f.ip6.arpa.", ""},
		{"not hex", "g.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.4.7.5.6.e.6.9.7.d.6.d.f.ip6.arpa.", ""},
		{"empty label", "..1.64.100.in-addr.arpa.", ""},
		{"not reverse", "pi.mynetwork.internal.", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a, ok := ParseReverse(tc.in)
			if tc.want == "" && ok || tc.want != "" && (!ok || a != netip.MustParseAddr(tc.want)) {
				t.Errorf("ParseReverse(%q) = %v %v, want %q", tc.in, a, ok, tc.want)
			}
		})
	}
}
