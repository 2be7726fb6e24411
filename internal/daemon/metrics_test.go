package daemon

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/mynetwork/mynetwork/internal/engine"
	"github.com/mynetwork/mynetwork/p2p"
	"github.com/mynetwork/mynetwork/p2p/tunnel"
)

// scrape GETs /metrics from h and returns the text.
func scrape(t *testing.T, h http.Handler) string {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	if rec.Code != http.StatusOK {
		t.Fatalf("GET /metrics: %d %s", rec.Code, rec.Body)
	}
	return rec.Body.String()
}

// TestMetricsScrape: every counter reaches its metric, with its labels,
// at scrape time; a peer without a connection has no path and no RTT.
func TestMetricsScrape(t *testing.T) {
	var e engine.Counters
	e.TxBytes.Store(2000)
	e.DropNoRoute.Store(5)
	e.DropDestination.Store(6)
	var refused atomic.Uint64
	refused.Store(7)
	var c tunnel.PeerCounters
	c.TxBytes.Store(1000)
	c.RxBytes.Store(900)
	c.TxPackets.Store(10)
	c.TxDatagrams.Store(3)
	c.RxDatagrams.Store(4)
	c.DropNoLink.Store(8)
	c.DropDelay.Store(9)
	c.MarkDelay.Store(11)
	c.QueueDelay.Store(int64(3 * time.Millisecond))
	peers := []peerSample{
		{name: "ms1", c: &c, st: p2p.PeerState{Connected: true, Path: p2p.PathDirect, RTT: 12500 * time.Microsecond}},
		{name: "ms2", c: &tunnel.PeerCounters{}},
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(&meshCollector{eng: &e, refused: &refused, peers: func() []peerSample { return peers }})
	out := scrape(t, metricsHandler(reg))
	for _, want := range []string{
		"# TYPE mynetwork_sent_bytes_total counter",
		"mynetwork_sent_bytes_total 2000\n",
		`mynetwork_dropped_packets_total{reason="no_route"} 5` + "\n",
		`mynetwork_dropped_packets_total{reason="destination"} 6` + "\n",
		"mynetwork_refused_streams_total 7\n",
		"# TYPE mynetwork_peer_sent_bytes_total counter",
		`mynetwork_peer_sent_bytes_total{peer="ms1"} 1000` + "\n",
		`mynetwork_peer_received_bytes_total{peer="ms1"} 900` + "\n",
		`mynetwork_peer_sent_packets_total{peer="ms1",via="stream"} 10` + "\n",
		`mynetwork_peer_sent_packets_total{peer="ms1",via="datagram"} 3` + "\n",
		`mynetwork_peer_received_packets_total{peer="ms1",via="datagram"} 4` + "\n",
		`mynetwork_peer_dropped_packets_total{peer="ms1",reason="no_link"} 8` + "\n",
		`mynetwork_peer_dropped_packets_total{peer="ms1",reason="delay"} 9` + "\n",
		`mynetwork_peer_dropped_packets_total{peer="ms1",reason="queue"} 0` + "\n",
		`mynetwork_peer_ecn_marked_packets_total{peer="ms1"} 11` + "\n",
		`mynetwork_peer_connected{peer="ms1"} 1` + "\n",
		`mynetwork_peer_path{path="direct",peer="ms1"} 1` + "\n",
		`mynetwork_peer_path{path="relay",peer="ms1"} 0` + "\n",
		`mynetwork_peer_rtt_seconds{peer="ms1"} 0.0125` + "\n",
		`mynetwork_peer_queue_delay_seconds{peer="ms1"} 0.003` + "\n",
		`mynetwork_peer_connected{peer="ms2"} 0` + "\n",
		`mynetwork_peer_path{path="direct",peer="ms2"} 0` + "\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("no %q in\n%s", want, out)
		}
	}
	if strings.Contains(out, `mynetwork_peer_rtt_seconds{peer="ms2"}`) {
		t.Errorf("an RTT for a peer without a connection:\n%s", out)
	}
	// Read at scrape time: a counter that moves shows at the next scrape.
	c.TxBytes.Add(24)
	if out := scrape(t, metricsHandler(reg)); !strings.Contains(out, `mynetwork_peer_sent_bytes_total{peer="ms1"} 1024`+"\n") {
		t.Errorf("the second scrape missed the new bytes:\n%s", out)
	}
}

// TestMetricsAddress: --metrics replaces the config's address and is
// checked alike; "off" turns the config's off.
func TestMetricsAddress(t *testing.T) {
	n := newTestNode(t, "usa")
	n.cfg.Metrics = "127.0.0.1:9464"
	if err := n.cfg.Save(n.cfgPath); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, flag, want, err string
	}{
		{"the config's", "", "127.0.0.1:9464", ""},
		{"the flag's", "[::1]:9000", "[::1]:9000", ""},
		{"off", "off", "", ""},
		{"not loopback", "0.0.0.0:9464", "", `--metrics: "0.0.0.0:9464" is not a loopback address: metrics are served only to this machine (e.g. 127.0.0.1:9464)`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			d, err := New(Options{ConfigPath: n.cfgPath, Interface: "usa", SocketPath: n.sock, Metrics: tc.flag})
			if tc.err != "" {
				if err == nil || err.Error() != tc.err {
					t.Fatalf("got %v, want %s", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if d.metricsAddr != tc.want || (d.metrics != nil) != (tc.want != "") {
				t.Errorf("metrics at %q (registry %v), want %q", d.metricsAddr, d.metrics != nil, tc.want)
			}
		})
	}
}

// TestMetricsServed: a running daemon serves its own metrics, libp2p's
// resource manager's and the Go runtime's on its loopback address, and
// libp2p's metrics go to the daemon's registry, not the process-wide
// default one.
func TestMetricsServed(t *testing.T) {
	n := newTestNode(t, "usa")
	addr := fmt.Sprintf("127.0.0.1:%d", freePort(t, "tcp"))
	n.up(t, "usa", Options{SOCKS5: "off", Metrics: addr})
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /metrics: %d %v", resp.StatusCode, err)
	}
	for _, want := range []string{"mynetwork_sent_bytes_total ", "libp2p_rcmgr_limit{", "go_goroutines ", "process_resident_memory_bytes "} {
		if !strings.Contains(string(body), want) {
			t.Errorf("no %q in\n%s", want, body)
		}
	}
	families, err := prometheus.DefaultGatherer.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		// go-libp2p v0.51 gives AutoNAT v2's dialer host (a blank host)
		// an event bus that registers its counters on the default
		// registry, with no option to change that; nothing serves it.
		if name := f.GetName(); strings.HasPrefix(name, "libp2p_") && !strings.HasPrefix(name, "libp2p_eventbus_") {
			t.Errorf("%s is in the default registry", name)
		}
	}
}
