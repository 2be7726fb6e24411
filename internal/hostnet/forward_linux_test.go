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
