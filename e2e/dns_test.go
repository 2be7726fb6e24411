package e2e

import (
	"strings"
	"testing"
	"time"
)

// TestKernelDNS asks a kernel-mode node's DNS server, on its mesh IPv4
// address, for its peer's names and addresses, from its own host and from
// the peer over the mesh.
func TestKernelDNS(t *testing.T) {
	requireE2E(t, "dig")
	tag := uniq(t)
	nsA := newNetns(t, "mnd"+tag+"-a")
	nsB := newNetns(t, "mnd"+tag+"-b")
	link(t, nsA, "eth0", "10.115.0.1/24", nsB, "eth0", "10.115.0.2/24")
	a := initNode(t, nsA, "mda"+tag)
	b := initNode(t, nsB, "mdb"+tag)
	a.addPeer(t, "ms1", b, map[string]any{"addrs": []string{"/ip4/10.115.0.2/tcp/8001"}})
	b.addPeer(t, "ms0", a, nil)
	a.up(t)
	b.up(t)

	dig := func(t *testing.T, from *netns, args ...string) string {
		t.Helper()
		return strings.TrimSpace(from.run(t, append([]string{"dig", "+time=2", "+tries=2", "@" + a.v4}, args...)...))
	}
	t.Run("A, AAAA and PTR from the node's own host", func(t *testing.T) {
		for _, tc := range []struct{ args, want string }{
			{"ms1.mynetwork.internal +short", b.v4},
			{"MS1.MyNetwork.Internal +short +tcp", b.v4},
			{"ms1.mynetwork AAAA +short", b.v6},
			{"-x " + b.v4 + " +short", "ms1.mynetwork.internal."},
		} {
			if got := dig(t, nsA, strings.Fields(tc.args)...); got != tc.want {
				t.Errorf("dig %s: %q, want %q", tc.args, got, tc.want)
			}
		}
	})
	t.Run("NXDOMAIN for unknown names and names off the mesh", func(t *testing.T) {
		for _, name := range []string{"nobody.mynetwork.internal", "example.com"} {
			if got := dig(t, nsA, name); !strings.Contains(got, "status: NXDOMAIN") {
				t.Errorf("dig %s:\n%s", name, got)
			}
		}
	})
	t.Run("from the peer over the mesh", func(t *testing.T) {
		b.waitConnected(t, 30*time.Second)
		ping(t, nsB, a.v4, 20*time.Second)
		if got := dig(t, nsB, "ms0.mynetwork.internal", "+short"); got != "" {
			t.Errorf("dig ms0 (B's name for A) from B: %q, want nothing: A's server knows A as self and by its host's name", got)
		}
		if got := dig(t, nsB, "self.mynetwork.internal", "+short"); got != a.v4 {
			t.Errorf("dig self from B: %q, want %q", got, a.v4)
		}
	})
}
