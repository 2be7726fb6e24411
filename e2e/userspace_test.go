package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestKernelAndUserspace joins a kernel-mode node (host A) and a userspace
// node (host B, no TUN) in two namespaces: ping A→B, ssh from A to a real
// sshd exposed by B, ssh from B to A's sshd through 'mynetwork nc', and
// curl through B's SOCKS5 proxy to an HTTP server on A.
func TestKernelAndUserspace(t *testing.T) {
	requireE2E(t, "ping", "ssh", "sshd", "ssh-keygen", "curl", "python3")
	tag := uniq(t)
	nsA := newNetns(t, "mnu"+tag+"-a")
	nsB := newNetns(t, "mnu"+tag+"-b")
	link(t, nsA, "eth0", "10.121.0.1/24", nsB, "eth0", "10.121.0.2/24")

	a := initNode(t, nsA, "mua"+tag)
	b := initNode(t, nsB, "mub"+tag)
	a.addPeer(t, "b", b, map[string]any{"addrs": []string{"/ip4/10.121.0.2/udp/8001/quic-v1"}})
	b.addPeer(t, "a", a, nil)
	a.up(t)
	b.upArgs(t, "--userspace", "--socks5", "127.0.0.1:1080", "--expose", "2222=127.0.0.1:2222")
	a.waitConnected(t, 30*time.Second)
	b.waitConnected(t, 30*time.Second)

	t.Run("status says userspace", func(t *testing.T) {
		out, _ := b.cli("status")
		for _, want := range []string{"(userspace mode)", "SOCKS5: 127.0.0.1:1080", "Expose: tcp 2222 → 127.0.0.1:2222", "Connected VPN nodes: 1/1"} {
			if !strings.Contains(out, want) {
				t.Errorf("status lacks %q:\n%s", want, out)
			}
		}
		if links := sh(t, "ip", "-n", nsB.name, "link"); strings.Contains(links, b.iface) {
			t.Errorf("userspace mode created an interface:\n%s", links)
		}
	})

	t.Run("kernel node pings the userspace node", func(t *testing.T) {
		ping(t, nsA, b.v4, 20*time.Second)
		ping(t, nsA, b.v6, 10*time.Second)
	})

	t.Run("ssh from the kernel host to sshd exposed by the userspace node", func(t *testing.T) {
		// sshd on B's loopback; the expose rule makes it b.v4:2222 on the mesh.
		sshSessionVia(t, nsA, nsB, "127.0.0.1", b.v4)
	})

	t.Run("ssh from the userspace side via mynetwork nc to the kernel side", func(t *testing.T) {
		proxy := fmt.Sprintf("ProxyCommand=%s -i %s nc %%h %%p", binary, b.iface)
		sshSessionVia(t, nsB, nsA, a.v4, "a", "-o", proxy)
	})

	t.Run("curl through SOCKS5 to an HTTP server on the kernel host", func(t *testing.T) {
		dir := t.TempDir()
		os.WriteFile(filepath.Join(dir, "index.html"), []byte("served by host A\n"), 0o644)
		srv := nsA.start(t, "http", "python3", "-m", "http.server", "--bind", a.v4, "--directory", dir, "8080")
		defer srv.stop(syscall.SIGTERM)
		var out string
		eventually(t, 20*time.Second, "curl through SOCKS5", func() (err error) {
			out, err = nsB.try("curl", "-sf", "-m", "3", "--socks5-hostname", "127.0.0.1:1080", "http://a:8080/")
			return err
		})
		if !strings.Contains(out, "served by host A") {
			t.Fatalf("curl got %q", out)
		}
		out, err := nsB.try("curl", "-s", "-m", "3", "--socks5", "127.0.0.1:1080", "http://10.121.0.1:8080/")
		if err == nil {
			t.Fatalf("SOCKS5 reached a host off the mesh: %s", out)
		}
	})
}

// upArgs starts the daemon with extra flags.
func (n *node) upArgs(t *testing.T, extra ...string) {
	t.Helper()
	args := append([]string{n.bin, "up", "-i", n.iface, "-c", n.config, "-v"}, extra...)
	// Registered before the daemon starts, so it runs after the daemon is
	// stopped: a daemon killed by a test leaves its socket file behind.
	t.Cleanup(func() { os.Remove(filepath.Join("/run/mynetwork", n.iface+".sock")) })
	n.daemon = n.ns.start(t, n.iface, args...)
	eventually(t, 20*time.Second, n.iface+" control socket", func() error {
		if n.daemon.exited() {
			out, _ := os.ReadFile(n.daemon.log)
			t.Fatalf("%s exited early: %v\n%s", n.iface, n.daemon.err, out)
		}
		_, err := n.cli("status")
		return err
	})
}
