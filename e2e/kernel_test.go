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

// TestKernelMesh follows the README's tutorial on two hosts in two network
// namespaces joined by a veth pair (no route out), plus a third namespace
// behind host B reached through B's peer route.
func TestKernelMesh(t *testing.T) {
	requireE2E(t, "ping", "iperf3", "ssh", "sshd", "ssh-keygen")
	tag := uniq(t)
	nsA := newNetns(t, "mnk"+tag+"-a")
	nsB := newNetns(t, "mnk"+tag+"-b")
	nsC := newNetns(t, "mnk"+tag+"-c")
	link(t, nsA, "eth0", "10.111.0.1/24", nsB, "eth0", "10.111.0.2/24")
	// C sits on a LAN behind B and knows the mesh only through B.
	link(t, nsB, "lan0", "10.112.0.1/24", nsC, "eth0", "10.112.0.2/24")
	sh(t, "ip", "-n", nsC.name, "route", "add", "100.64.0.0/16", "via", "10.112.0.1")
	nsB.run(t, "sysctl", "-qw", "net.ipv4.ip_forward=1")

	a := initNode(t, nsA, "mka"+tag)
	b := initNode(t, nsB, "mkb"+tag)
	// A knows where B listens; B learns A from A's connection.
	a.addPeer(t, "b", b, map[string]any{
		"addrs":  []string{"/ip4/10.111.0.2/udp/8001/quic-v1", "/ip4/10.111.0.2/tcp/8001"},
		"routes": []map[string]string{{"net": "10.112.0.0/24"}},
	})
	// B serves the LAN behind it; B routes a network through A that A
	// does not serve, though its host has an address in it.
	b.addPeer(t, "a", a, map[string]any{"routes": []map[string]string{{"net": "10.114.0.0/24"}}})
	b.editConfig(t, func(c map[string]any) { c["routes"] = []map[string]string{{"net": "10.112.0.0/24"}} })
	nsA.run(t, "ip", "addr", "add", "10.114.0.1/32", "dev", "lo")
	a.up(t)
	b.up(t)
	a.waitConnected(t, 30*time.Second)
	b.waitConnected(t, 30*time.Second)

	t.Run("status shows 1/1", func(t *testing.T) {
		out, err := a.cli("status")
		if err != nil {
			t.Fatal(err)
		}
		for _, want := range []string{"PeerID: " + a.id, "Connected VPN nodes: 1/1", "    @b (", "Interface: " + a.iface + " (kernel mode)\nMTU: 1420, TCP segmentation offload\n", a.v4} {
			if !strings.Contains(out, want) {
				t.Errorf("status lacks %q:\n%s", want, out)
			}
		}
	})

	t.Run("TUN at MTU 1420 with the virtio-net header", func(t *testing.T) {
		out := nsA.run(t, "ip", "-d", "link", "show", a.iface)
		for _, want := range []string{"mtu 1420", "tun type tun pi off vnet_hdr on"} {
			if !strings.Contains(out, want) {
				t.Errorf("ip -d link show %s lacks %q:\n%s", a.iface, want, out)
			}
		}
	})

	t.Run("ping both ways over IPv4 and IPv6", func(t *testing.T) {
		ping(t, nsA, b.v4, 20*time.Second)
		ping(t, nsB, a.v4, 10*time.Second)
		ping(t, nsA, b.v6, 10*time.Second)
		ping(t, nsB, a.v6, 10*time.Second)
	})

	t.Run("iperf3 both ways", func(t *testing.T) {
		iperf(t, nsA, nsB, b.v4, "-t", "2")
		iperf(t, nsA, nsB, b.v4, "-t", "2", "-R")
	})

	t.Run("ssh to a real sshd on the other host", func(t *testing.T) {
		sshSessionVia(t, nsA, nsB, b.v4, b.v4)
	})

	t.Run("ssh with ProxyCommand mynetwork nc, by peer name", func(t *testing.T) {
		proxy := fmt.Sprintf("ProxyCommand=%s -i %s nc %%h %%p", binary, a.iface)
		sshSessionVia(t, nsA, nsB, b.v4, "b", "-o", proxy)
		out, err := a.cli("nc", "nobody", "22")
		if err == nil || !strings.Contains(out, `"nobody" is neither a configured peer's name nor an IP address`) {
			t.Errorf("nc to an unknown name: %v %s", err, out)
		}
	})

	t.Run("peer route reaches the network behind B", func(t *testing.T) {
		ping(t, nsA, "10.112.0.2", 10*time.Second)
	})

	t.Run("a peer reaches only what a node serves", func(t *testing.T) {
		// Before, A's kernel answered for its host's address.
		if out, err := nsB.try("ping", "-c", "2", "-W", "1", "10.114.0.1"); err == nil {
			t.Fatalf("B reached an address of A's host that A does not serve:\n%s", out)
		}
		if n := a.status(t).Counters.DropDestination; n == 0 {
			t.Errorf("A counted no packet dropped for its destination")
		}
	})

	t.Run("route del and add at run time", func(t *testing.T) {
		out, err := a.cli("route", "del", "10.112.0.0/24")
		if err != nil {
			t.Fatalf("route del: %v %s", err, out)
		}
		if r := sh(t, "ip", "-n", nsA.name, "route"); strings.Contains(r, "10.112.0.0/24") {
			t.Fatalf("OS route still there:\n%s", r)
		}
		if _, err := nsA.try("ping", "-c", "1", "-W", "1", "10.112.0.2"); err == nil {
			t.Fatal("ping through a deleted route succeeded")
		}
		if out, err := a.cli("route", "add", "10.112.0.0/24", "b", "--persist"); err != nil {
			t.Fatalf("route add: %v %s", err, out)
		}
		ping(t, nsA, "10.112.0.2", 10*time.Second)
		out, _ = a.cli("route", "show")
		if !strings.Contains(out, "10.112.0.0/24") || !strings.Contains(out, "@b") {
			t.Errorf("route show:\n%s", out)
		}
		cfg, _ := os.ReadFile(a.config)
		if !strings.Contains(string(cfg), `"net": "10.112.0.0/24"`) {
			t.Errorf("--persist did not keep the route in the config:\n%s", cfg)
		}
		for _, bad := range []struct {
			args []string
			want string
		}{
			{[]string{"route", "add", "10.113.0.0/24", "nobody"}, `no configured peer is named or has the ID "nobody"`},
			{[]string{"route", "add", "10.113.0.0/33", "b"}, `"10.113.0.0/33" is not a CIDR`},
			{[]string{"route", "add", "10.112.0.0/24", "b"}, "10.112.0.0/24 is already routed to b"},
			{[]string{"route", "del", b.v4 + "/32"}, "is the mesh address of peer b and cannot be deleted"},
		} {
			out, err := a.cli(bad.args...)
			if err == nil || !strings.Contains(out, bad.want) {
				t.Errorf("%v: got %v %q, want error %q", bad.args, err, out, bad.want)
			}
		}
	})

	t.Run("a second up on the same interface fails clearly", func(t *testing.T) {
		out, err := a.cli("up")
		if err == nil || !strings.Contains(out, "a mynetwork daemon is already running") {
			t.Fatalf("got %v: %s", err, out)
		}
		a.waitConnected(t, 5*time.Second) // and the first is unharmed
	})

	t.Run("killed and restarted node comes back without touching the other", func(t *testing.T) {
		b.daemon.stop(syscall.SIGKILL)
		if _, err := nsA.try("ping", "-c", "1", "-W", "1", b.v4); err == nil {
			t.Fatal("ping answered by a killed node")
		}
		b.up(t)
		ping(t, nsA, b.v4, 60*time.Second)
		ping(t, nsB, a.v4, 10*time.Second)
	})

	t.Run("SIGINT removes interface, routes and socket", func(t *testing.T) {
		if err := a.daemon.stop(syscall.SIGINT); err != nil {
			t.Fatalf("daemon exit: %v", err)
		}
		if out := sh(t, "ip", "-n", nsA.name, "link"); strings.Contains(out, a.iface) {
			t.Errorf("interface left behind:\n%s", out)
		}
		if out := sh(t, "ip", "-n", nsA.name, "route"); strings.Contains(out, "10.112.0.0") || strings.Contains(out, "100.64.") {
			t.Errorf("routes left behind:\n%s", out)
		}
		if _, err := os.Stat(filepath.Join("/run/mynetwork", a.iface+".sock")); err == nil {
			t.Error("control socket left behind")
		}
		out, err := a.cli("status")
		if err == nil || !strings.Contains(out, "no mynetwork daemon is running on interface "+a.iface) {
			t.Errorf("status without daemon: %v %q", err, out)
		}
	})
}

// TestBadConfigChangesNothing checks that 'up' with a broken config names
// every problem and creates no interface.
func TestBadConfigChangesNothing(t *testing.T) {
	requireE2E(t)
	tag := uniq(t)
	ns := newNetns(t, "mnk"+tag+"-x")
	n := initNode(t, ns, "mkx"+tag)
	n.editConfig(t, func(c map[string]any) {
		c["peers"] = []any{
			map[string]any{"name": "b", "id": "not-a-peer-id", "routes": []any{map[string]any{"net": "10.0.0.0/33"}}},
			map[string]any{"name": "me", "id": n.id},
		}
	})
	out, err := n.cli("up")
	if err == nil {
		t.Fatal("up accepted a broken config")
	}
	for _, want := range []string{
		n.config + `: peers[0].id: "not-a-peer-id" is not a peer ID`,
		n.config + `: peers[0].routes[0].net: "10.0.0.0/33" is not a CIDR`,
		n.config + `: peers[1].id: "` + n.id + `" is this node's own peer ID`,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("error lacks %q:\n%s", want, out)
		}
	}
	if links := sh(t, "ip", "-n", ns.name, "link"); strings.Contains(links, n.iface) {
		t.Errorf("interface created despite the error:\n%s", links)
	}
	n.editConfig(t, func(c map[string]any) { c["peers"] = []any{} })
	out, err = ns.try(binary, "init", "-c", n.config)
	if err == nil || !strings.Contains(out, "already exists") {
		t.Errorf("init overwrote a config: %v %s", err, out)
	}
}

// sshSessionVia starts a real sshd in server on listen:2222, logs in to it
// from client as root@target (with extra ssh options) and runs a command.
func sshSessionVia(t *testing.T, client, server *netns, listen, target string, opts ...string) {
	t.Helper()
	dir := t.TempDir()
	sh(t, "ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", filepath.Join(dir, "host"))
	sh(t, "ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", filepath.Join(dir, "user"))
	pub, _ := os.ReadFile(filepath.Join(dir, "user.pub"))
	os.WriteFile(filepath.Join(dir, "authorized_keys"), pub, 0o600)
	conf := fmt.Sprintf(`ListenAddress %s:2222
HostKey %s/host
AuthorizedKeysFile %s/authorized_keys
PermitRootLogin prohibit-password
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
StrictModes no
PidFile none
`, listen, dir, dir)
	os.WriteFile(filepath.Join(dir, "sshd_config"), []byte(conf), 0o600)
	os.MkdirAll("/run/sshd", 0o755) // privilege separation folder
	sshd, _ := execLook("sshd")
	srv := server.start(t, "sshd", sshd, "-D", "-e", "-f", filepath.Join(dir, "sshd_config"))
	defer srv.stop(syscall.SIGTERM)
	var out string
	eventually(t, 20*time.Second, "ssh login", func() (err error) {
		args := append([]string{"ssh", "-i", filepath.Join(dir, "user"), "-p", "2222",
			"-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null", "-o", "BatchMode=yes",
			"-o", "ConnectTimeout=3"}, opts...)
		out, err = client.try(append(args, "root@"+target, "echo over-the-mesh")...)
		return err
	})
	if !strings.Contains(out, "over-the-mesh") {
		t.Fatalf("ssh output: %s", out)
	}
}
