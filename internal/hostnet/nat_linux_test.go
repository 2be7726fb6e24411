package hostnet

import (
	"net/netip"
	"os/exec"
	"strconv"
	"strings"
	"testing"

	"github.com/google/nftables"
)

var (
	mesh4 = netip.MustParsePrefix("100.64.0.0/10")
	mesh6 = netip.MustParsePrefix("fd5a:7a7a::/48")
)

func installNAT(t *testing.T, iface string, src4, src6 netip.Prefix) func() error {
	t.Helper()
	undo, err := Masquerade(iface, src4, src6)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { undo() })
	return undo
}

func nftConn(t *testing.T) *nftables.Conn {
	t.Helper()
	c, err := nftables.New()
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// inetTables are the names of the nftables tables of family inet.
func inetTables(t *testing.T) []string {
	t.Helper()
	tables, err := nftConn(t).ListTablesOfFamily(nftables.TableFamilyINet)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, tb := range tables {
		names = append(names, tb.Name)
	}
	return names
}

// checkChains: the chains hook in where Masquerade's documentation says,
// with as many rules as it installs, as the kernel reports them.
func checkChains(t *testing.T, table string, natRules int) {
	t.Helper()
	c := nftConn(t)
	chains, err := c.ListChainsOfTableFamily(nftables.TableFamilyINet)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"postrouting": "nat hook 4 priority 100",
		"forward":     "filter hook 2 priority 0",
	}
	wantRules := map[string]int{"postrouting": natRules, "forward": 2}
	for _, ch := range chains {
		if ch.Table.Name != table {
			continue
		}
		got := string(ch.Type)
		if ch.Hooknum != nil && ch.Priority != nil {
			got += " hook " + strconv.Itoa(int(*ch.Hooknum)) + " priority " + strconv.Itoa(int(*ch.Priority))
		}
		if got != want[ch.Name] {
			t.Errorf("chain %s is %q; want %q", ch.Name, got, want[ch.Name])
		}
		if ch.Policy == nil || *ch.Policy != nftables.ChainPolicyAccept {
			t.Errorf("chain %s has policy %v; want accept", ch.Name, ch.Policy)
		}
		rules, err := c.GetRules(ch.Table, ch)
		if err != nil || len(rules) != wantRules[ch.Name] {
			t.Errorf("chain %s has %d rules (%v); want %d", ch.Name, len(rules), err, wantRules[ch.Name])
		}
		delete(want, ch.Name)
	}
	for name := range want {
		t.Errorf("table %s has no chain %s", table, name)
	}
}

// nftList is `nft list table inet TABLE`, each line trimmed; empty where
// nft is not installed (outside CI).
func nftList(t *testing.T, table string) string {
	t.Helper()
	if _, err := exec.LookPath("nft"); err != nil {
		if mustRun {
			t.Fatal("nft is not installed (apt-get install nftables): " + err.Error())
		}
		t.Log("nft is not installed: the table is not checked as nft reads it")
		return ""
	}
	out, err := exec.Command("nft", "list", "table", "inet", table).CombinedOutput()
	if err != nil {
		t.Fatalf("nft list table inet %s: %v: %s", table, err, out)
	}
	var lines []string
	for _, l := range strings.Split(string(out), "\n") {
		if l = strings.TrimSpace(l); l != "" {
			lines = append(lines, l)
		}
	}
	return strings.Join(lines, "\n")
}

// natTable is the table as nft reads it, with these masquerade rules.
func natTable(masq ...string) string {
	return strings.Join(append(append([]string{
		"table inet mynetwork-mesh0 {",
		"chain postrouting {",
		"type nat hook postrouting priority srcnat; policy accept;"},
		masq...),
		"}",
		"chain forward {",
		"type filter hook forward priority filter; policy accept;",
		`iifname "mesh0" accept`,
		`oifname "mesh0" ct state established,related accept`,
		"}",
		"}"), "\n")
}

// TestMasquerade: the table reads as documented, both to nft and to the
// kernel; a second Masquerade replaces it, as it would one a crashed run
// left; undo deletes it.
func TestMasquerade(t *testing.T) {
	needNetns(t)
	installNAT(t, "mesh0", mesh4, mesh6)
	if got, want := nftList(t, "mynetwork-mesh0"), natTable(
		`ip saddr 100.64.0.0/10 oifname != "mesh0" masquerade`,
		`ip6 saddr fd5a:7a7a::/48 oifname != "mesh0" masquerade`); got != "" && got != want {
		t.Errorf("nft reads:\n%s\nwant:\n%s", got, want)
	}
	checkChains(t, "mynetwork-mesh0", 2)

	// Another source, not masked by the caller, and no IPv6.
	undo := installNAT(t, "mesh0", netip.MustParsePrefix("100.64.1.7/24"), netip.Prefix{})
	if got, want := nftList(t, "mynetwork-mesh0"), natTable(
		`ip saddr 100.64.1.0/24 oifname != "mesh0" masquerade`); got != "" && got != want {
		t.Errorf("after a second Masquerade nft reads:\n%s\nwant:\n%s", got, want)
	}
	checkChains(t, "mynetwork-mesh0", 1)
	if got := inetTables(t); len(got) != 1 || got[0] != "mynetwork-mesh0" {
		t.Errorf("tables of family inet: %q; want only mynetwork-mesh0", got)
	}
	if err := undo(); err != nil {
		t.Fatal(err)
	}
	if got := inetTables(t); len(got) != 0 {
		t.Errorf("after undo the tables of family inet are %q", got)
	}
	if err := undo(); err != nil {
		t.Errorf("second undo: %v", err)
	}

	// A table someone else deleted is no error to undo.
	undo = installNAT(t, "mesh0", mesh4, mesh6)
	c := nftConn(t)
	c.DelTable(&nftables.Table{Family: nftables.TableFamilyINet, Name: TableName("mesh0")})
	if err := c.Flush(); err != nil {
		t.Fatal(err)
	}
	if err := undo(); err != nil {
		t.Errorf("undo after the table was deleted: %v", err)
	}
}

// TestMasqueradeInvalid: arguments that cannot work are refused, each
// problem named, and no table is made.
func TestMasqueradeInvalid(t *testing.T) {
	needNetns(t)
	for _, tc := range []struct {
		name       string
		iface      string
		src4, src6 netip.Prefix
		want       string
	}{
		{"no interface", "", mesh4, mesh6, `interface name "" is not valid: use 1 to 15 bytes`},
		{"long name", "mesh-name-too-long", mesh4, mesh6, `interface name "mesh-name-too-long" is not valid`},
		{"IPv6 as IPv4", "mesh0", mesh6, netip.Prefix{}, "IPv4 source fd5a:7a7a::/48 is not an IPv4 prefix"},
		{"IPv4 as IPv6", "mesh0", netip.Prefix{}, mesh4, "IPv6 source 100.64.0.0/10 is not an IPv6 prefix"},
		{"IPv4 in IPv6", "mesh0", netip.Prefix{}, netip.MustParsePrefix("::ffff:100.64.0.0/106"), "is not an IPv6 prefix"},
		{"no source", "mesh0", netip.Prefix{}, netip.Prefix{}, "no source prefix to masquerade: give an IPv4 or an IPv6 one"},
	} {
		undo, err := Masquerade(tc.iface, tc.src4, tc.src6)
		if err == nil {
			undo()
			t.Errorf("%s: Masquerade succeeded", tc.name)
		} else if !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: Masquerade: %v; want %q", tc.name, err, tc.want)
		}
	}
	if got := inetTables(t); len(got) != 0 {
		t.Errorf("tables of family inet: %q", got)
	}
}
