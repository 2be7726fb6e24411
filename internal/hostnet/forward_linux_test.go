package hostnet

import (
	"os"
	"strings"
	"testing"
)

func readSysctl(t *testing.T, file string) string {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(b))
}

func setSysctl(t *testing.T, file, value string) {
	t.Helper()
	if err := os.WriteFile(file, []byte(value), 0); err != nil {
		t.Fatal(err)
	}
}

// TestEnableForwarding: from every pair of starting values both settings
// are on, and restore puts back exactly what was there; a second restore
// writes nothing.
func TestEnableForwarding(t *testing.T) {
	needNetns(t)
	v4, v6 := forwardingFiles[0], forwardingFiles[1]
	for _, tc := range []struct{ name, v4, v6 string }{
		{"both off", "0", "0"},
		{"IPv4 on", "1", "0"},
		{"IPv6 on", "0", "1"},
		{"both on", "1", "1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			setSysctl(t, v4, tc.v4)
			setSysctl(t, v6, tc.v6)
			restore, err := EnableForwarding()
			if err != nil {
				t.Fatal(err)
			}
			if a, b := readSysctl(t, v4), readSysctl(t, v6); a != "1" || b != "1" {
				t.Errorf("forwarding is %s (IPv4), %s (IPv6); want both 1", a, b)
			}
			if err := restore(); err != nil {
				t.Fatal(err)
			}
			if a, b := readSysctl(t, v4), readSysctl(t, v6); a != tc.v4 || b != tc.v6 {
				t.Errorf("restored to %s (IPv4), %s (IPv6); want %s, %s", a, b, tc.v4, tc.v6)
			}
			setSysctl(t, v4, "1")
			setSysctl(t, v6, "1")
			if err := restore(); err != nil || readSysctl(t, v4) != "1" || readSysctl(t, v6) != "1" {
				t.Errorf("a second restore changed the settings or failed: %v", err)
			}
		})
	}
}

// TestForwardingKeepsRouterAdvertisements: turning IPv6 forwarding on sets
// each accept_ra that is 1 to 2, so interfaces keep taking router
// advertisements, and leaves 0 alone; restore puts 1 back.
func TestForwardingKeepsRouterAdvertisements(t *testing.T) {
	needNetns(t)
	lo, def := "/proc/sys/net/ipv6/conf/lo/accept_ra", "/proc/sys/net/ipv6/conf/default/accept_ra"
	setSysctl(t, forwardingFiles[1], "0")
	setSysctl(t, lo, "1")
	setSysctl(t, def, "0")
	restore, err := EnableForwarding()
	if err != nil {
		t.Fatal(err)
	}
	if a, b := readSysctl(t, lo), readSysctl(t, def); a != "2" || b != "0" {
		t.Errorf("with forwarding on, accept_ra is %s (lo, was 1) and %s (default, was 0); want 2 and 0", a, b)
	}
	if err := restore(); err != nil {
		t.Fatal(err)
	}
	if a, b := readSysctl(t, lo), readSysctl(t, def); a != "1" || b != "0" {
		t.Errorf("restored accept_ra to %s (lo) and %s (default); want 1 and 0", a, b)
	}

	setSysctl(t, forwardingFiles[1], "1") // on already: the admin's settings stand
	setSysctl(t, lo, "1")
	restore, err = EnableForwarding()
	if err != nil {
		t.Fatal(err)
	}
	if a := readSysctl(t, lo); a != "1" {
		t.Errorf("IPv6 forwarding was on already, yet accept_ra changed to %s", a)
	}
	restore()
}
