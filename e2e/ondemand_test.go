package e2e

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

// TestOnDemand: two kernel nodes with "idleTimeout" stay unconnected until
// one has packets for the other (status says idle); the first ping to an
// idle peer is answered; after the idle timeout without packets the
// connection closes, and the next ping opens it again.
func TestOnDemand(t *testing.T) {
	requireE2E(t, "ping")
	tag := uniq(t)
	nsA := newNetns(t, "mno"+tag+"-a")
	nsB := newNetns(t, "mno"+tag+"-b")
	link(t, nsA, "eth0", "10.154.0.1/24", nsB, "eth0", "10.154.0.2/24")
	a := initNode(t, nsA, "moa"+tag)
	b := initNode(t, nsB, "mob"+tag)
	a.addPeer(t, "b", b, map[string]any{"addrs": []string{"/ip4/10.154.0.2/tcp/8001", "/ip4/10.154.0.2/udp/8001/quic-v1"}})
	b.addPeer(t, "a", a, map[string]any{"addrs": []string{"/ip4/10.154.0.1/tcp/8001", "/ip4/10.154.0.1/udp/8001/quic-v1"}})
	for _, n := range []*node{a, b} {
		n.editConfig(t, func(c map[string]any) { c["idleTimeout"] = "6s" })
	}
	a.up(t)
	b.up(t)
	idle := func(n *node) error {
		s := n.status(t)
		if len(s.Peers) != 1 || s.Peers[0].Connected || !strings.HasPrefix(s.Peers[0].Why, "idle") {
			return fmt.Errorf("%s: %+v", n.iface, s.Peers)
		}
		return nil
	}
	time.Sleep(2 * time.Second)
	for _, n := range []*node{a, b} {
		if err := idle(n); err != nil {
			t.Fatalf("connected with nothing to send: %v", err)
		}
	}

	for round := 1; round <= 2; round++ {
		start := time.Now()
		out, err := nsA.try("ping", "-c", "1", "-W", "3", b.v4)
		if err != nil {
			t.Fatalf("round %d: the first ping to an idle peer: %v\n%s", round, err, out)
		}
		t.Logf("round %d: first ping to the idle peer answered in %s (%s)", round, time.Since(start).Round(time.Millisecond), lastLine(out))
		if s := a.status(t); len(s.Peers) != 1 || !s.Peers[0].Connected {
			t.Fatalf("round %d: not connected after the ping: %+v", round, s.Peers)
		}
		eventually(t, 20*time.Second, "the idle connection closed on both sides", func() error {
			if err := idle(a); err != nil {
				return err
			}
			return idle(b)
		})
		t.Logf("round %d: closed %.1f s after the ping", round, time.Since(start).Seconds())
	}
}
