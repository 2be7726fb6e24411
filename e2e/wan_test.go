package e2e

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// wanDelay is the one-way delay of newWAN's link: 40 ms round trips.
const wanDelay = 20 * time.Millisecond

// newWAN makes two hosts, 10.99.0.1 and 10.99.0.2, joined through a third
// namespace whose wandelay bridge holds every frame for wanDelay each way
// (this kernel has no netem). Nothing has a route out.
func newWAN(t *testing.T, prefix string) (a, b *netns) {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "wandelay")
	if out, err := exec.Command("go", "build", "-o", bin, "./testdata/wandelay").CombinedOutput(); err != nil {
		t.Fatalf("build wandelay: %v\n%s", err, out)
	}
	tag := prefix + uniq(t)
	wan := newNetns(t, tag+"-wan")
	a, b = newNetns(t, tag+"-a"), newNetns(t, tag+"-b")
	for _, h := range []struct {
		ns         *netns
		port, addr string
	}{{a, "wa", "10.99.0.1/24"}, {b, "wb", "10.99.0.2/24"}} {
		sh(t, "ip", "link", "add", "eth0", "netns", h.ns.name, "type", "veth", "peer", "name", h.port, "netns", wan.name)
		sh(t, "ip", "-n", h.ns.name, "addr", "add", h.addr, "dev", "eth0")
		sh(t, "ip", "-n", h.ns.name, "link", "set", "eth0", "up")
		sh(t, "ip", "-n", wan.name, "link", "set", h.port, "up")
	}
	bridge := wan.start(t, "wandelay", bin, "-a", "wa", "-b", "wb", "-delay", wanDelay.String())
	eventually(t, 10*time.Second, "wandelay bridging", func() error {
		if bridge.exited() {
			out, _ := os.ReadFile(bridge.log)
			t.Fatalf("wandelay exited: %v\n%s", bridge.err, out)
		}
		_, err := a.try("ping", "-c", "1", "-W", "1", "10.99.0.2")
		return err
	})
	checkRTT(t, a, "10.99.0.2")
	return a, b
}

var rttRe = regexp.MustCompile(`= ([0-9.]+)/([0-9.]+)/([0-9.]+)/`)

// checkRTT fails the test unless the underlay's round trip is the WAN's.
func checkRTT(t *testing.T, from *netns, dst string) {
	t.Helper()
	out := from.run(t, "ping", "-c", "3", "-i", "0.2", dst)
	m := rttRe.FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("no RTT in ping's output:\n%s", out)
	}
	lo, _ := strconv.ParseFloat(m[1], 64)
	if want := 2 * wanDelay.Seconds() * 1000; lo < want*0.95 || lo > want*3 {
		t.Fatalf("underlay RTT min %.1f ms, want about %.0f ms", lo, want)
	}
	t.Logf("underlay RTT min/avg/max %s/%s/%s ms", m[1], m[2], m[3])
}

// TestFirstDialOverWAN: A and B listen on TCP only, each knows the other's
// address, and both start at the same moment, 40 ms apart. If both dial at
// once, the SYNs cross, TCP's simultaneous open makes one connection that
// both take as their own outgoing one, and its TLS handshake fails; the
// connector must not let that repeat.
func TestFirstDialOverWAN(t *testing.T) {
	requireE2E(t, "ping")
	nsA, nsB := newWAN(t, "mnw")
	tag := strings.TrimSuffix(strings.TrimPrefix(nsA.name, "mnw"), "-a")
	a := initNode(t, nsA, "mnw"+tag+"a")
	b := initNode(t, nsB, "mnw"+tag+"b")
	a.setup(t, listenOn("10.99.0.1", "tcp"), "auto", []string{}, []map[string]any{peerEntry("b", b, listenOn("10.99.0.2", "tcp")...)})
	b.setup(t, listenOn("10.99.0.2", "tcp"), "auto", []string{}, []map[string]any{peerEntry("a", a, listenOn("10.99.0.1", "tcp")...)})
	start := time.Now()
	a.launch(t)
	b.launch(t)
	a.awaitUp(t)
	b.awaitUp(t)
	ping(t, nsA, b.v4, 15*time.Second)
	t.Logf("TCP over a 40 ms WAN, both started at once: first ping after %s", time.Since(start).Round(time.Millisecond))
	ping(t, nsB, a.v4, 5*time.Second)
}
