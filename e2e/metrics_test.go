package e2e

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestMetrics: A serves Prometheus metrics on its loopback address (the
// config's "metrics"); curl there shows B's byte counters, which grow with
// a ping through the tunnel. B cannot reach A's metrics, and a metrics
// address off loopback is refused before anything starts.
func TestMetrics(t *testing.T) {
	requireE2E(t, "ping", "curl")
	tag := uniq(t)
	nsA := newNetns(t, "mnm"+tag+"-a")
	nsB := newNetns(t, "mnm"+tag+"-b")
	link(t, nsA, "eth0", "10.121.0.1/24", nsB, "eth0", "10.121.0.2/24")
	a := initNode(t, nsA, "mma"+tag)
	b := initNode(t, nsB, "mmb"+tag)
	a.addPeer(t, "b", b, map[string]any{"addrs": []string{"/ip4/10.121.0.2/tcp/8001"}})
	b.addPeer(t, "a", a, nil)
	a.editConfig(t, func(c map[string]any) { c["metrics"] = "127.0.0.1:9464" })

	out, err := b.cli("up", "--metrics", "0.0.0.0:9464")
	if want := `--metrics: "0.0.0.0:9464" is not a loopback address`; err == nil || !strings.Contains(out, want) {
		t.Fatalf("up --metrics off loopback: %v\n%s\nwant %s", err, out, want)
	}

	a.up(t)
	b.up(t)
	a.waitConnected(t, 30*time.Second)
	ping(t, nsA, b.v4, 10*time.Second)

	m := scrapeMetrics(t, nsA, "127.0.0.1:9464")
	for _, want := range []string{`mynetwork_peer_connected{peer="b"} 1`, "libp2p_rcmgr_", "go_goroutines "} {
		if !strings.Contains(m, want) {
			t.Errorf("no %q in the metrics:\n%s", want, m)
		}
	}
	sent0, recv0 := peerBytes(t, m, "sent"), peerBytes(t, m, "received")
	nsA.run(t, "ping", "-c", "5", "-i", "0.2", "-s", "1000", b.v4)
	m = scrapeMetrics(t, nsA, "127.0.0.1:9464")
	// Five echo requests and five replies, each 1028 bytes of IP packet.
	if sent := peerBytes(t, m, "sent"); sent-sent0 < 5*1028 {
		t.Errorf("sent bytes to b grew by %d, want at least %d", sent-sent0, 5*1028)
	}
	if recv := peerBytes(t, m, "received"); recv-recv0 < 5*1028 {
		t.Errorf("received bytes from b grew by %d, want at least %d", recv-recv0, 5*1028)
	}

	if out, err := nsB.try("curl", "-sS", "--max-time", "3", "http://10.121.0.1:9464/metrics"); err == nil {
		t.Errorf("B reached A's metrics:\n%s", out)
	}
}

// scrapeMetrics curls the metrics served at addr inside ns.
func scrapeMetrics(t *testing.T, ns *netns, addr string) string {
	t.Helper()
	return ns.run(t, "curl", "-sS", "--fail", "--max-time", "5", "http://"+addr+"/metrics")
}

// peerBytes reads mynetwork_peer_<dir>_bytes_total for peer b.
func peerBytes(t *testing.T, metrics, dir string) uint64 {
	t.Helper()
	re := regexp.MustCompile(fmt.Sprintf(`(?m)^mynetwork_peer_%s_bytes_total\{peer="b"\} (\S+)$`, dir))
	m := re.FindStringSubmatch(metrics)
	if m == nil {
		t.Fatalf("no %s bytes for b in the metrics:\n%s", dir, metrics)
	}
	v, err := strconv.ParseFloat(m[1], 64)
	if err != nil {
		t.Fatal(err)
	}
	return uint64(v)
}
