package member

import (
	"bytes"
	"net/netip"
	"strings"
	"testing"
)

func TestParseCertificateMalformed(t *testing.T) {
	good, err := testCert(t, testKey(t, 1), nil).Marshal()
	if err != nil {
		t.Fatal(err)
	}
	idLen := int(good[5+24])
	name := 5 + 24 + 1 + idLen
	routes := name + 1 + int(good[name]) + 20
	with := func(i int, v byte) []byte {
		b := bytes.Clone(good)
		b[i] = v
		return b
	}
	tests := []struct {
		name string
		in   []byte
		msg  string
	}{
		{"empty", nil, "magic: 0 bytes left, 5 needed"},
		{"other magic", with(4, 2), "not a member certificate 1 (starts 6d796e6302)"},
		{"too large", make([]byte, MaxCertificateSize+1), "2049 bytes, at most 2048"},
		{"truncated", good[:len(good)-1], "signature: 63 bytes left, 64 needed"},
		{"trailing", append(bytes.Clone(good), 0), "1 bytes after the end"},
		{"empty peer ID", with(5+24, 0), "peer ID: length 0, want 1..64"},
		{"long peer ID", with(5+24, 65), "peer ID: length 65, want 1..64"},
		{"bad peer ID", with(5+24+2, 0), "peer ID: "},
		{"empty name", with(name, 0), "name: length 0, want 1..255"},
		{"route count", with(routes, MaxRoutes+1), "65 routes, at most 64"},
		{"route family", with(routes+1, 5), "route 0: family 5, want 4 or 6"},
		{"route length", with(routes+1+1+4, 33), "route 0: length 33 is too long for 10.1.0.0"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseCertificate(tt.in)
			if err == nil || !strings.Contains(err.Error(), tt.msg) || !strings.HasPrefix(err.Error(), "decode certificate: malformed") {
				t.Errorf("ParseCertificate = %v, want %q", err, tt.msg)
			}
		})
	}
}

func TestMarshalRefuses(t *testing.T) {
	key := testKey(t, 1)
	unsigned := *testCert(t, key, nil)
	unsigned.Signature = nil
	tests := []struct {
		name string
		c    Certificate
		msg  string
	}{
		{"unsigned", unsigned, "signature of 0 bytes, want 64: is it signed?"},
		{"no IPv6", func() Certificate { c := *testCert(t, key, nil); c.IPv6 = c.IPv4; return c }(),
			"are not an IPv4 and an IPv6 address"},
		{"too many routes", func() Certificate { c := *testCert(t, key, nil); c.Routes = make([]netip.Prefix, 65); return c }(),
			"65 routes, at most 64"},
		{"zero route", func() Certificate { c := *testCert(t, key, nil); c.Routes = make([]netip.Prefix, 1); return c }(),
			"route 0 (invalid Prefix) is not a prefix"},
		{"long name", func() Certificate { c := *testCert(t, key, nil); c.Name = strings.Repeat("a", 256); return c }(),
			"name of 256 bytes, want 1..255"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := tt.c.Marshal(); err == nil || !strings.Contains(err.Error(), tt.msg) {
				t.Errorf("Marshal = %v, want %q", err, tt.msg)
			}
		})
	}
}
