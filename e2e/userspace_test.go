package e2e

import (
	"crypto/rand"
	"crypto/sha256"
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
// curl through B's SOCKS5 proxy to an HTTP server on A, and 30 MB each way
// byte-exact in TCP super-packets.
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
		for _, want := range []string{"(userspace mode)", "SOCKS5: 127.0.0.1:1080, username and password in " + strings.TrimSuffix(b.config, ".json") + ".socks5.json",
			"Expose: tcp 2222 → 127.0.0.1:2222", "Connected VPN nodes: 1/1"} {
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
		proxy := socks5URL(t, b)
		var out string
		eventually(t, 20*time.Second, "curl through SOCKS5", func() (err error) {
			out, err = nsB.try("curl", "-sf", "-m", "3", "--proxy", proxy, "http://a:8080/")
			return err
		})
		if !strings.Contains(out, "served by host A") {
			t.Fatalf("curl got %q", out)
		}
		if out, err := nsB.try("curl", "-s", "-m", "3", "--socks5-hostname", "127.0.0.1:1080", "http://a:8080/"); err == nil {
			t.Fatalf("SOCKS5 served a client without the username and password: %s", out)
		}
		if out, err := nsB.try("curl", "-s", "-m", "3", "--proxy", proxy, "http://10.121.0.1:8080/"); err == nil {
			t.Fatalf("SOCKS5 reached a host off the mesh: %s", out)
		}
	})

	t.Run("30 MB each way, byte-exact, TCP in super-packets", func(t *testing.T) {
		dir := t.TempDir()
		blob := make([]byte, 30<<20)
		rand.Read(blob)
		want := fmt.Sprintf("%x", sha256.Sum256(blob))
		os.WriteFile(filepath.Join(dir, "blob"), blob, 0o644)

		// A (kernel) to B (userspace): curl through B's SOCKS5.
		srv := nsA.start(t, "http-blob", "python3", "-m", "http.server", "--bind", a.v4, "--directory", dir, "8081")
		defer srv.stop(syscall.SIGTERM)
		got := filepath.Join(dir, "got")
		eventually(t, 20*time.Second, "curl of the blob", func() error {
			_, err := nsB.try("curl", "-sf", "-m", "20", "--proxy", socks5URL(t, b), "-o", got, "http://a:8081/blob")
			return err
		})
		if b, _ := os.ReadFile(got); fmt.Sprintf("%x", sha256.Sum256(b)) != want {
			t.Errorf("A→B: %d bytes arrived, not the blob", len(b))
		}

		// B to A: 'mynetwork nc' into a reader on A that prints the hash.
		sink := nsA.start(t, "sink", "python3", "-c", `import hashlib, socket, sys
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind((sys.argv[1], 9000)); s.listen(1)
c, _ = s.accept(); h = hashlib.sha256()
while b := c.recv(1 << 20): h.update(b)
print(h.hexdigest(), flush=True); c.close()`, a.v4)
		defer sink.stop(syscall.SIGTERM)
		nc := fmt.Sprintf("%s -i %s nc a 9000 < %s", binary, b.iface, filepath.Join(dir, "blob"))
		eventually(t, 20*time.Second, "nc of the blob", func() error {
			_, err := nsB.try("timeout", "20", "sh", "-c", nc)
			return err
		})
		eventually(t, 10*time.Second, "the sink's hash", func() error {
			if out, _ := os.ReadFile(sink.log); !strings.Contains(string(out), want) {
				return fmt.Errorf("sink printed %q, want %s", out, want)
			}
			return nil
		})

		// Both kernels' TCP and gVisor's sent super-packets, carried whole.
		for _, n := range []*node{a, b} {
			if p := n.status(t).Peers[0]; p.TxSuperPackets < 100 || p.TxSegmented != 0 {
				t.Errorf("%s sent %d super-packets whole and cut %d, want hundreds and none", n.iface, p.TxSuperPackets, p.TxSegmented)
			}
		}
	})
}

// upArgs starts the daemon with extra flags.
func (n *node) upArgs(t *testing.T, extra ...string) {
	t.Helper()
	n.launch(t, extra...)
	n.awaitUp(t)
}

// launch starts the daemon without waiting for it: see awaitUp.
func (n *node) launch(t *testing.T, extra ...string) {
	t.Helper()
	args := append([]string{n.bin, "up", "-i", n.iface, "-c", n.config, "-v"}, extra...)
	// Registered before the daemon starts, so it runs after the daemon is
	// stopped: a daemon killed by a test leaves its socket file behind.
	t.Cleanup(func() { os.Remove(filepath.Join("/run/mynetwork", n.iface+".sock")) })
	n.daemon = n.ns.start(t, n.iface, args...)
}

// awaitUp waits until the launched daemon answers on its control socket.
func (n *node) awaitUp(t *testing.T) {
	t.Helper()
	eventually(t, 20*time.Second, n.iface+" control socket", func() error {
		if n.daemon.exited() {
			out, _ := os.ReadFile(n.daemon.log)
			t.Fatalf("%s exited early: %v\n%s", n.iface, n.daemon.err, out)
		}
		_, err := n.cli("status")
		return err
	})
}

// socks5URL is the URL of n's SOCKS5 proxy with its username and password,
// as 'mynetwork socks5-url' prints it.
func socks5URL(t *testing.T, n *node) string {
	t.Helper()
	out, err := n.cli("socks5-url")
	if err != nil || !strings.HasPrefix(out, "socks5h://") {
		t.Fatalf("socks5-url: %v\n%s", err, out)
	}
	return strings.TrimSpace(out)
}
