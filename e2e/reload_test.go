package e2e

import (
	"fmt"
	"os"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"
)

var pingSummary = regexp.MustCompile(`(\d+) packets transmitted, (\d+) received`)

// TestReloadKeepsTunnels: A runs with B only, a ping from A to B every
// 0.2 s; C is added to A's config (and A to C's) and A gets SIGHUP. A
// reaches C within 10 s, and the ping to B loses nothing across the
// reload. Then C is removed with 'mynetwork reload'.
func TestReloadKeepsTunnels(t *testing.T) {
	requireE2E(t, "ping")
	tag := uniq(t)
	nsA := newNetns(t, "mnr"+tag+"-a")
	nsB := newNetns(t, "mnr"+tag+"-b")
	nsC := newNetns(t, "mnr"+tag+"-c")
	link(t, nsA, "eth0", "10.121.0.1/24", nsB, "eth0", "10.121.0.2/24")
	link(t, nsA, "eth1", "10.122.0.1/24", nsC, "eth0", "10.122.0.2/24")
	a := initNode(t, nsA, "mra"+tag)
	b := initNode(t, nsB, "mrb"+tag)
	c := initNode(t, nsC, "mrc"+tag)
	a.addPeer(t, "b", b, map[string]any{"addrs": []string{"/ip4/10.121.0.2/tcp/8001", "/ip4/10.121.0.2/udp/8001/quic-v1"}})
	b.addPeer(t, "a", a, nil)
	c.addPeer(t, "a", a, map[string]any{"addrs": []string{"/ip4/10.122.0.1/tcp/8001", "/ip4/10.122.0.1/udp/8001/quic-v1"}})
	a.up(t)
	b.up(t)
	c.up(t)
	a.waitConnected(t, 30*time.Second)
	ping(t, nsA, b.v4, 10*time.Second)

	const count = 75 // 15 s at 0.2 s
	pinger := nsA.start(t, "ping-b", "ping", "-i", "0.2", "-c", fmt.Sprint(count), "-W", "2", b.v4)
	if _, err := nsA.try("ping", "-c", "1", "-W", "1", c.v4); err == nil {
		t.Fatal("A reached C before C was in its config")
	}
	time.Sleep(2 * time.Second)
	a.addPeer(t, "c", c, map[string]any{"addrs": []string{"/ip4/10.122.0.2/tcp/8001", "/ip4/10.122.0.2/udp/8001/quic-v1"}})
	begin := time.Now()
	a.daemon.cmd.Process.Signal(syscall.SIGHUP)
	ping(t, nsA, c.v4, 10*time.Second)
	t.Logf("A reached C %.1f s after SIGHUP", time.Since(begin).Seconds())
	if !a.logged("config reloaded") {
		t.Error("A's log does not say the config was reloaded")
	}

	<-pinger.done
	out, _ := os.ReadFile(pinger.log)
	m := pingSummary.FindStringSubmatch(string(out))
	if m == nil || m[1] != fmt.Sprint(count) || m[2] != m[1] {
		t.Fatalf("the ping to B across the reload lost packets:\n%s", out)
	}
	t.Logf("ping to B across the reload: %s", m[0])

	a.editConfig(t, func(cfg map[string]any) { cfg["peers"] = cfg["peers"].([]any)[:1] })
	out2, err := a.cli("reload")
	if err != nil || !strings.Contains(out2, "Removed: c") {
		t.Fatalf("mynetwork reload: %v\n%s", err, out2)
	}
	if s := a.status(t); len(s.Peers) != 1 || !s.Peers[0].Connected {
		t.Fatalf("after removing C: %+v", s.Peers)
	}
	ping(t, nsA, b.v4, 5*time.Second)
}
