package e2e

import (
	"fmt"
	"strings"
	"syscall"
	"testing"
	"time"
)

// world is a small internet in namespaces: an "internet" bridge with a
// bootstrap/relay host on 203.0.113.1 (TEST-NET-3), and LANs behind NAT
// routers. Nothing has a route out of the test's namespaces.
type world struct {
	t    *testing.T
	tag  string
	inet *netns
	pub  *netns
}

func newWorld(t *testing.T, prefix string) *world {
	w := &world{t: t, tag: prefix + uniq(t)}
	w.inet = newNetns(t, w.tag+"-inet")
	sh(t, "ip", "-n", w.inet.name, "link", "add", "br0", "type", "bridge")
	sh(t, "ip", "-n", w.inet.name, "link", "set", "br0", "up")
	w.pub = w.attach("pub", "203.0.113.1/24")
	return w
}

// attach adds a host on the internet bridge.
func (w *world) attach(name, addr string) *netns {
	ns := newNetns(w.t, w.tag+"-"+name)
	port := "v" + name
	sh(w.t, "ip", "link", "add", "eth0", "netns", ns.name, "type", "veth", "peer", "name", port, "netns", w.inet.name)
	sh(w.t, "ip", "-n", w.inet.name, "link", "set", port, "master", "br0")
	sh(w.t, "ip", "-n", w.inet.name, "link", "set", port, "up")
	sh(w.t, "ip", "-n", ns.name, "addr", "add", addr, "dev", "eth0")
	sh(w.t, "ip", "-n", ns.name, "link", "set", "eth0", "up")
	return ns
}

// router is a home router: WAN on the internet bridge, a LAN bridge,
// MASQUERADE (symmetric: --random-fully) and inbound dropped on the WAN.
type router struct {
	ns  *netns
	lan string // e.g. 10.0.1
}

func (w *world) router(name, wan, lan string, symmetric bool) *router {
	ns := w.attach(name, wan+"/24")
	r := &router{ns: ns, lan: lan}
	sh(w.t, "ip", "netns", "exec", ns.name, "ip", "link", "add", "brlan", "type", "bridge")
	sh(w.t, "ip", "-n", ns.name, "addr", "add", lan+".1/24", "dev", "brlan")
	sh(w.t, "ip", "-n", ns.name, "link", "set", "brlan", "up")
	ns.run(w.t, "sysctl", "-qw", "net.ipv4.ip_forward=1")
	masq := []string{"iptables", "-t", "nat", "-A", "POSTROUTING", "-o", "eth0", "-j", "MASQUERADE"}
	if symmetric {
		masq = append(masq, "--random-fully")
	}
	ns.run(w.t, masq...)
	for _, chain := range []string{"FORWARD", "INPUT"} {
		ns.run(w.t, "iptables", "-A", chain, "-i", "eth0", "-m", "conntrack", "--ctstate", "ESTABLISHED,RELATED", "-j", "ACCEPT")
		ns.run(w.t, "iptables", "-A", chain, "-i", "eth0", "-j", "DROP")
	}
	return r
}

// host adds a LAN host behind r with the given last octet.
func (w *world) host(r *router, name string, octet int) *netns {
	ns := newNetns(w.t, w.tag+"-"+name)
	port := "v" + name
	sh(w.t, "ip", "link", "add", "eth0", "netns", ns.name, "type", "veth", "peer", "name", port, "netns", r.ns.name)
	sh(w.t, "ip", "-n", r.ns.name, "link", "set", port, "master", "brlan")
	sh(w.t, "ip", "-n", r.ns.name, "link", "set", port, "up")
	sh(w.t, "ip", "-n", ns.name, "addr", "add", fmt.Sprintf("%s.%d/24", r.lan, octet), "dev", "eth0")
	sh(w.t, "ip", "-n", ns.name, "link", "set", "eth0", "up")
	sh(w.t, "ip", "-n", ns.name, "route", "add", "default", "via", r.lan+".1")
	return ns
}

// natNode makes a node of the nattest build in ns.
func natNode(t *testing.T, ns *netns, iface string) *node {
	n := initNode(t, ns, iface)
	n.bin = natBinary
	return n
}

// setup writes a node's config: listen addresses, reachability,
// bootstrap peers and its VPN peers (name → node, with optional addrs).
func (n *node) setup(t *testing.T, listen []string, reach string, boot []string, peers []map[string]any) {
	n.editConfig(t, func(c map[string]any) {
		c["listenAddresses"] = listen
		c["reachability"] = reach
		c["bootstrapPeers"] = boot
		c["mdns"] = false
		c["peers"] = peers
	})
}

func peerEntry(name string, n *node, addrs ...string) map[string]any {
	e := map[string]any{"name": name, "id": n.id}
	if len(addrs) > 0 {
		e["addrs"] = addrs
	}
	return e
}

func listenOn(ip string, transports string) []string {
	var out []string
	if strings.Contains(transports, "quic") {
		out = append(out, "/ip4/"+ip+"/udp/4001/quic-v1")
	}
	if strings.Contains(transports, "tcp") {
		out = append(out, "/ip4/"+ip+"/tcp/4001")
	}
	return out
}

// waitPath waits until n reaches peer name on the given path.
func (n *node) waitPath(t *testing.T, name, path string, timeout time.Duration) peerStatus {
	t.Helper()
	var last peerStatus
	eventually(t, timeout, fmt.Sprintf("%s reaching @%s on path %s", n.iface, name, path), func() error {
		for _, p := range n.status(t).Peers {
			if p.Name == name {
				last = p
				if p.Connected && p.Path == path {
					return nil
				}
				n.wake(p)
				return fmt.Errorf("@%s: connected=%v path=%q addr=%s why=%q", name, p.Connected, p.Path, p.Addr, p.Why)
			}
		}
		return fmt.Errorf("no peer @%s", name)
	})
	return last
}

// natScenario runs the bootstrap/relay R on the internet and A, B in
// their namespaces, and returns the three nodes and when A and B started.
func natScenario(t *testing.T, w *world, nsA, nsB *netns, ipA, ipB, transports string) (r, a, b *node, started time.Time) {
	return natScenarioOn(t, w, nsA, nsB, transports, "private")
}

// natScenarioOn is natScenario with A and B on the given reachability.
func natScenarioOn(t *testing.T, w *world, nsA, nsB *netns, transports, reach string) (r, a, b *node, started time.Time) {
	r = natNode(t, w.pub, w.tag+"r")
	a = natNode(t, nsA, w.tag+"a")
	b = natNode(t, nsB, w.tag+"b")
	rAddrs := listenOn("203.0.113.1", transports)
	boot := []string{rAddrs[0] + "/p2p/" + r.id}
	r.setup(t, rAddrs, "public", []string{}, []map[string]any{peerEntry("a", a), peerEntry("b", b)})
	a.setup(t, listenOn("0.0.0.0", transports), reach, boot, []map[string]any{peerEntry("b", b), peerEntry("r", r, rAddrs...)})
	b.setup(t, listenOn("0.0.0.0", transports), reach, boot, []map[string]any{peerEntry("a", a), peerEntry("r", r, rAddrs...)})
	r.up(t)
	started = time.Now()
	a.up(t)
	b.up(t)
	return r, a, b, started
}

// TestDHTOnly: A and B know only each other's peer ID and the bootstrap
// node's address, on one flat segment.
func TestDHTOnly(t *testing.T) {
	requireE2E(t, "ping")
	w := newWorld(t, "mnd")
	nsA := w.attach("a", "203.0.113.2/24")
	nsB := w.attach("b", "203.0.113.3/24")
	r, a, b, start := natScenario(t, w, nsA, nsB, "203.0.113.2", "203.0.113.3", "quic,tcp")
	_ = r
	if s := a.status(t); s.IdleTimeoutSeconds != 600 {
		t.Errorf("a node with a DHT and no idleTimeout: idleTimeoutSeconds %d, want 600 (on demand by default)", s.IdleTimeoutSeconds)
	}
	ping(t, nsA, b.v4, 60*time.Second)
	t.Logf("DHT only: first ping after %s", time.Since(start).Round(time.Millisecond))
	ping(t, nsB, a.v4, 10*time.Second)
	a.waitPath(t, "b", "direct", 30*time.Second)

	t.Run("restart reconnects from remembered addresses with the bootstrap node stopped", func(t *testing.T) {
		// Both restart, so neither can learn the other's address from a
		// connection: only the address books know.
		r.daemon.stop(syscall.SIGTERM)
		a.daemon.stop(syscall.SIGTERM)
		b.daemon.stop(syscall.SIGTERM)
		restart := time.Now()
		b.up(t)
		a.up(t)
		ping(t, nsA, b.v4, 60*time.Second)
		t.Logf("restart without bootstrap: first ping after %s", time.Since(restart).Round(time.Millisecond))
	})
}

// TestDHTOnPrivateNetwork: the same with only private addresses and the
// release build, where libp2p filters private addresses out of the public
// DHT: the dual DHT's LAN table must carry them.
func TestDHTOnPrivateNetwork(t *testing.T) {
	requireE2E(t, "ping")
	w := newWorld(t, "mnp")
	nsR := w.attach("r", "10.77.0.1/24")
	nsA := w.attach("a", "10.77.0.2/24")
	nsB := w.attach("b", "10.77.0.3/24")
	r := initNode(t, nsR, w.tag+"r")
	a := initNode(t, nsA, w.tag+"a")
	b := initNode(t, nsB, w.tag+"b")
	rAddrs := listenOn("10.77.0.1", "quic")
	boot := []string{rAddrs[0] + "/p2p/" + r.id}
	r.setup(t, rAddrs, "public", []string{}, []map[string]any{peerEntry("a", a), peerEntry("b", b)})
	a.setup(t, listenOn("0.0.0.0", "quic"), "auto", boot, []map[string]any{peerEntry("b", b)})
	b.setup(t, listenOn("0.0.0.0", "quic"), "auto", boot, []map[string]any{peerEntry("a", a)})
	r.up(t)
	start := time.Now()
	a.up(t)
	b.up(t)
	ping(t, nsA, b.v4, 60*time.Second)
	t.Logf("DHT on a private network: first ping after %s", time.Since(start).Round(time.Millisecond))
	a.waitPath(t, "b", "lan", 10*time.Second)
}

// TestNATHolePunch: A and B behind two MASQUERADE routers connect through
// the relay, then directly; over QUIC and over TCP.
func TestNATHolePunch(t *testing.T) {
	requireE2E(t, "ping", "iptables", "iperf3")
	for _, transports := range []string{"quic", "tcp"} {
		t.Run(transports, func(t *testing.T) {
			w := newWorld(t, "mnh")
			ra := w.router("ra", "203.0.113.10", "10.0.1", false)
			rb := w.router("rb", "203.0.113.20", "10.0.2", false)
			nsA := w.host(ra, "a", 2)
			nsB := w.host(rb, "b", 2)
			_, a, b, start := natScenario(t, w, nsA, nsB, "10.0.1.2", "10.0.2.2", transports)
			ping(t, nsA, b.v4, 60*time.Second)
			t.Logf("%s, two NATs: first ping after %s", transports, time.Since(start).Round(time.Millisecond))
			st := a.waitPath(t, "b", "direct", 120*time.Second)
			t.Logf("%s, two NATs: direct after %s via %s", transports, time.Since(start).Round(time.Millisecond), st.Addr)
			out, _ := a.cli("status")
			if !strings.Contains(out, "[direct]") {
				t.Errorf("status does not say direct:\n%s", out)
			}
			if !a.logged("path=relay") && !b.logged("path=relay") {
				t.Errorf("A and B never had a relayed connection first")
			}
			ping(t, nsB, a.v4, 10*time.Second)
			iperf(t, nsA, nsB, b.v4, "-t", "2")
			// Pings ride QUIC datagrams on a direct QUIC connection, never on TCP.
			time.Sleep(3 * time.Second) // the datagram path is re-chosen every 2 s
			ping(t, nsA, b.v4, 10*time.Second)
			st = a.waitPath(t, "b", "direct", time.Second)
			if quic := transports == "quic"; quic != (st.TxDatagrams > 0) {
				t.Errorf("%s: %d packets sent as datagrams", transports, st.TxDatagrams)
			}
		})
	}
}

// TestSymmetricNATStaysOnRelay: B behind a symmetric NAT cannot be punched;
// the pair stays connected through the configured relay and moves 100 MB.
func TestSymmetricNATStaysOnRelay(t *testing.T) {
	requireE2E(t, "ping", "iptables", "iperf3")
	w := newWorld(t, "mns")
	ra := w.router("ra", "203.0.113.10", "10.0.1", false)
	rb := w.router("rb", "203.0.113.20", "10.0.2", true)
	nsA := w.host(ra, "a", 2)
	nsB := w.host(rb, "b", 2)
	_, a, b, start := natScenario(t, w, nsA, nsB, "10.0.1.2", "10.0.2.2", "quic")
	ping(t, nsA, b.v4, 60*time.Second)
	t.Logf("symmetric NAT: first ping after %s", time.Since(start).Round(time.Millisecond))
	st := a.waitPath(t, "b", "relay", 10*time.Second)
	if st.Relay != "r" {
		t.Errorf("relay is %q, want r", st.Relay)
	}
	out, _ := a.cli("status")
	if !strings.Contains(out, "[relay via r]") {
		t.Errorf("status does not say relay via r:\n%s", out)
	}
	iperf(t, nsA, nsB, b.v4, "-n", "100M")
	if st := a.waitPath(t, "b", "relay", time.Second); st.TxDatagrams != 0 || st.RxDatagrams != 0 {
		t.Errorf("datagrams on a relayed connection: %+v", st)
	}
}

// TestAutoNATBehindNAT: the mesh's own public bootstrap node is the only
// node outside a NAT, and A and B are on "auto": the mesh's own AutoNAT
// must tell them they are private, so that they reserve a slot on the
// bootstrap node and reach each other through it (then directly, behind
// cone NATs).
func TestAutoNATBehindNAT(t *testing.T) {
	requireE2E(t, "ping", "iptables")
	for _, tc := range []struct {
		name      string
		symmetric bool
		path      string // the path A ends on
		status    string // what `status` says about B
	}{
		{"cone", false, "direct", "[direct]"},
		{"symmetric", true, "relay", "[relay via r]"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := newWorld(t, "mna")
			ra := w.router("ra", "203.0.113.10", "10.0.1", tc.symmetric)
			rb := w.router("rb", "203.0.113.20", "10.0.2", tc.symmetric)
			nsA := w.host(ra, "a", 2)
			nsB := w.host(rb, "b", 2)
			_, a, b, start := natScenarioOn(t, w, nsA, nsB, "quic", "auto")
			ping(t, nsA, b.v4, 90*time.Second)
			t.Logf("%s NATs on auto: first ping after %s", tc.name, time.Since(start).Round(time.Millisecond))
			st := a.waitPath(t, "b", tc.path, 60*time.Second)
			t.Logf("%s NATs on auto: %s after %s via %s", tc.name, tc.path, time.Since(start).Round(time.Millisecond), st.Addr)
			if out, _ := a.cli("status"); !strings.Contains(out, tc.status) {
				t.Errorf("status does not say %s:\n%s", tc.status, out)
			}
			ping(t, nsB, a.v4, 10*time.Second)
		})
	}
}

// TestSameNATFindsLANPath: A and B behind one NAT, mDNS off: they learn
// each other's LAN addresses over the mesh and end on the LAN path.
func TestSameNATFindsLANPath(t *testing.T) {
	requireE2E(t, "ping", "iptables")
	w := newWorld(t, "mnl")
	ra := w.router("ra", "203.0.113.10", "10.0.1", false)
	nsA := w.host(ra, "a", 2)
	nsB := w.host(ra, "b", 3)
	_, a, b, start := natScenario(t, w, nsA, nsB, "10.0.1.2", "10.0.1.3", "quic")
	ping(t, nsA, b.v4, 60*time.Second)
	t.Logf("same NAT: first ping after %s", time.Since(start).Round(time.Millisecond))
	st := a.waitPath(t, "b", "lan", 90*time.Second)
	t.Logf("same NAT: LAN path after %s via %s", time.Since(start).Round(time.Millisecond), st.Addr)
	if !strings.Contains(st.Addr, "/ip4/10.0.1.3/") {
		t.Errorf("LAN path uses %s", st.Addr)
	}
	ping(t, nsB, a.v4, 10*time.Second)
}

// iperf runs iperf3 from client to a server on addr in server's namespace
// and checks that data moved.
func iperf(t *testing.T, client, server *netns, addr string, args ...string) {
	t.Helper()
	st := iperfMeasure(t, client, server, addr, 5201, args...)
	if st.Bytes < 1<<20 {
		t.Errorf("iperf3 %v: only %.0f bytes arrived", args, st.Bytes)
	}
	t.Logf("iperf3 %v: %.0f MB", args, st.Bytes/1e6)
}
