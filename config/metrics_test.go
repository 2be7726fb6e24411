package config

import "testing"

func TestMetricsAddress(t *testing.T) {
	key, _ := testKey(t, "self")
	tests := []struct {
		name, addr string
		want       string // the error; "" for none
	}{
		{"IPv4 loopback", "127.0.0.1:9464", ""},
		{"IPv6 loopback", "[::1]:9464", ""},
		{"all addresses", "0.0.0.0:9464", `metrics: "0.0.0.0:9464" is not a loopback address: metrics are served only to this machine (e.g. 127.0.0.1:9464)`},
		{"a LAN address", "192.168.1.2:9464", `metrics: "192.168.1.2:9464" is not a loopback address: metrics are served only to this machine (e.g. 127.0.0.1:9464)`},
		{"a name", "localhost:9464", `metrics: "localhost:9464" is not an IP:port (e.g. 127.0.0.1:9464)`},
		{"no port", "127.0.0.1", `metrics: "127.0.0.1" is not an IP:port (e.g. 127.0.0.1:9464)`},
		{"port 0", "127.0.0.1:0", `metrics: "127.0.0.1:0" has no port (e.g. 127.0.0.1:9464)`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, err := Parse([]byte(`{"privateKey":"` + key + `","peers":[],"metrics":"` + tc.addr + `"}`))
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("refused: %v", err)
			case tc.want == "" && c.Metrics != tc.addr:
				t.Errorf("metrics %q, want %q", c.Metrics, tc.addr)
			case tc.want != "" && (err == nil || err.Error() != tc.want):
				t.Errorf("got %v, want %s", err, tc.want)
			}
		})
	}
}
