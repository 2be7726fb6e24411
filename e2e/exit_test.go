package e2e

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// The exit test's "internet": an HTTP server on a TEST-NET-3 address that
// answers every request with the address it came from.
const (
	exitServer    = "203.0.113.80"
	exitServerURL = "http://" + exitServer + "/"
	exitDNS       = "203.0.113.53"  // the internet's DNS server, B's resolver
	exitName      = "www.exit.test" // a name only exitDNS knows: exitServer
	exitNameURL   = "http://" + exitName + "/"
	aAddr         = "10.151.0.2" // A on its LAN
	aGateway      = "10.151.0.1" // R on A's LAN
	bUnderlay     = "10.152.0.2" // B on its link to R: where A and U dial it
	bOutside      = "192.0.2.1"  // B on its link to the internet: what the server sees through B
)

// TestExitNode: A sends all its traffic through the exit node B, then not.
//
//	A ── R ── I (the server, 203.0.113.80)
//	     │    │
//	     U    │
//	     └─ B ┘
//
// R is A's (and U's) router and reaches the server; B reaches it on a link
// of its own. A reaches B's underlay through R. Through B the server sees
// B's address on that link; through R it sees A's. I also serves DNS,
// B's resolver; A's resolver is its own mesh DNS server, which sends names
// outside the mesh to B's while B is its exit node.
//
// Steps a to d are not subtests: B's daemon, started again in d, must
// outlive it, and a subtest's cleanups stop the daemons it started.
func TestExitNode(t *testing.T) {
	requireE2E(t, "ping", "curl", "dig", "python3", "iptables", "nft", "sysctl")
	tag := uniq(t)
	nsA := newNetns(t, "mnx"+tag+"-a")
	nsR := newNetns(t, "mnx"+tag+"-r")
	nsB := newNetns(t, "mnx"+tag+"-b")
	nsI := newNetns(t, "mnx"+tag+"-i")
	nsU := newNetns(t, "mnx"+tag+"-u")
	link(t, nsA, "eth0", aAddr+"/24", nsR, "ra", aGateway+"/24")
	link(t, nsR, "rb", "10.152.0.1/24", nsB, "eth0", bUnderlay+"/24")
	link(t, nsR, "ru", "10.153.0.1/24", nsU, "eth0", "10.153.0.2/24")
	link(t, nsR, "ri", "198.51.100.1/24", nsI, "ir", "198.51.100.2/24")
	link(t, nsB, "eth1", bOutside+"/24", nsI, "ib", "192.0.2.2/24")
	sh(t, "ip", "-n", nsA.name, "route", "add", "default", "via", aGateway)
	sh(t, "ip", "-n", nsU.name, "route", "add", "default", "via", "10.153.0.1")
	sh(t, "ip", "-n", nsR.name, "route", "add", "203.0.113.0/24", "via", "198.51.100.2")
	nsR.run(t, "sysctl", "-qw", "net.ipv4.ip_forward=1")
	// B's default route is the internet; A's and U's LANs are behind R.
	sh(t, "ip", "-n", nsB.name, "route", "add", "default", "via", "192.0.2.2")
	sh(t, "ip", "-n", nsB.name, "route", "add", "10.151.0.0/24", "via", "10.152.0.1")
	sh(t, "ip", "-n", nsB.name, "route", "add", "10.153.0.0/24", "via", "10.152.0.1")
	// The internet answers A's and U's LANs through R and knows nothing else.
	sh(t, "ip", "-n", nsI.name, "route", "add", "10.151.0.0/24", "via", "198.51.100.1")
	sh(t, "ip", "-n", nsI.name, "route", "add", "10.153.0.0/24", "via", "198.51.100.1")
	sh(t, "ip", "-n", nsI.name, "addr", "add", exitServer+"/32", "dev", "lo")
	sh(t, "ip", "-n", nsI.name, "addr", "add", exitDNS+"/32", "dev", "lo")
	startWhoAmI(t, nsI)
	dnsLog := startTestDNS(t, nsI)
	// Counts every packet R forwards from A's LAN to the internet: through
	// the exit node, none may.
	nsR.run(t, "iptables", "-w", "-A", "FORWARD", "-i", "ra", "-o", "ri")

	a := initNode(t, nsA, "mxa"+tag)
	b := initNode(t, nsB, "mxb"+tag)
	u := initNode(t, nsU, "mxu"+tag)
	bAddrs := []string{"/ip4/" + bUnderlay + "/udp/8001/quic-v1", "/ip4/" + bUnderlay + "/tcp/8001"}
	a.addPeer(t, "b", b, map[string]any{"addrs": bAddrs})
	u.addPeer(t, "b", b, map[string]any{"addrs": bAddrs})
	b.addPeer(t, "a", a, nil)
	b.addPeer(t, "u", u, nil)
	bTable := "inet mynetwork-" + b.iface
	// No process of the test asks the host's resolvers: B asks the
	// internet's, A its mesh DNS server, U (which should resolve through
	// B) the internet's, so that a name U resolves itself shows in dnsLog.
	setResolver(t, nsB, exitDNS)
	setResolver(t, nsU, exitDNS)
	setResolver(t, nsA, a.v4)

	bBefore := filterState(t, nsB)
	aBeforeUp := routingState(t, nsA)
	b.upArgs(t, "--exit-node-offer")
	a.up(t)
	a.waitConnected(t, 30*time.Second)
	aBaseline := routingState(t, nsA)

	t.Log("a. B offers an exit node; A goes through R.")
	if got := nsB.run(t, "nft", "list", "tables"); !strings.Contains(got, "table "+bTable+"\n") {
		t.Errorf("B offers an exit node but has no table %s:\n%s", bTable, got)
	}
	if got := strings.TrimSpace(nsB.run(t, "sysctl", "-n", "net.ipv4.ip_forward")); got != "1" {
		t.Errorf("B offers an exit node with net.ipv4.ip_forward=%s", got)
	}
	if got := strings.TrimSpace(nsB.run(t, "sysctl", "-n", "net.ipv6.conf.default.accept_ra")); got != "2" {
		t.Errorf("B turned IPv6 forwarding on, and net.ipv6.conf.default.accept_ra is %s, not 2: router advertisements would be ignored", got)
	}
	if s := exitState(t, b); s == nil || !s.Offer || s.Use != "" {
		t.Errorf("B offers an exit node, status says %+v", s)
	}
	if out := cli(t, b, "status"); !strings.Contains(out, "\nExit node offered to: every peer\n") {
		t.Errorf("B's status does not say it offers an exit node to every peer:\n%s", out)
	}
	if out, err := b.cli("exit-node", "a"); err == nil || !strings.Contains(out, "this node offers itself as one") {
		t.Errorf("exit-node a on B, which offers one: %v\n%s", err, out)
	}
	waitServerSees(t, nsA, aAddr, 10*time.Second)
	if s := exitState(t, a); s != nil {
		t.Errorf("A uses no exit node, status says %+v", *s)
	}
	if out := cli(t, a, "exit-node"); out != "Exit node: none\n" {
		t.Errorf("exit-node on A, which uses none: %q", out)
	}
	if out, err := a.cli("exit-node", "nosuch"); err == nil || !strings.Contains(out, `no peer is named "nosuch"`) {
		t.Errorf("exit-node nosuch: %v\n%s", err, out)
	}
	if t.Failed() {
		return
	}

	t.Log("b. 'exit-node b' at run time: A goes through B.")
	cli(t, a, "exit-node", "b")
	begin := time.Now()
	waitServerSees(t, nsA, bOutside, 10*time.Second)
	t.Logf("the server saw B's address %.1f s after 'exit-node b'", time.Since(begin).Seconds())
	// B's underlay address is still reached (through the tunnel), and
	// A's own connection to B, kept out of the tunnel, stays up.
	ping(t, nsA, bUnderlay, 5*time.Second)
	eventually(t, 10*time.Second, exitName+" from A's mesh DNS through B", func() error {
		out, err := nsA.try("dig", "+short", "+time=2", "+tries=1", "@"+a.v4, exitName)
		if got := strings.TrimSpace(out); err != nil || got != exitServer {
			return fmt.Errorf("dig: %v: %q, want %s", err, got, exitServer)
		}
		return nil
	})
	if log := dnsLog(); !strings.Contains(log, exitName+" A from "+bOutside+"\n") {
		t.Errorf("the DNS server did not see B ask for %s:\n%s", exitName, log)
	}
	if out, err := nsA.try("curl", "-s", "-m", "3", exitNameURL); strings.TrimSpace(out) != bOutside {
		t.Errorf("curl %s from A: %v, the server saw %q, want B's %s", exitNameURL, err, out, bOutside)
	}
	waitExitState(t, a, "b", true, 10*time.Second)
	throughB := exitLine(t, a) // A's status line about B while it works
	if !strings.HasPrefix(throughB, "Exit node: b, connected") {
		t.Errorf("status says %q, want it to say b is connected", throughB)
	}
	if got := cli(t, a, "exit-node"); got != throughB+"\n" {
		t.Errorf("exit-node says %q, status %q", got, throughB)
	}
	if now := routingState(t, nsA); now == aBaseline {
		t.Errorf("'exit-node b' changed none of A's rules and routes:\n%s", now)
	}
	if t.Failed() {
		return
	}

	t.Log("c. B stops: A fails closed.")
	leaked := forwarded(t, nsR)
	b.daemon.stop(syscall.SIGTERM)
	waitExitState(t, a, "b", false, 30*time.Second)
	if down := exitLine(t, a); !strings.HasPrefix(down, "Exit node: b, DOWN") {
		t.Errorf("status with B down says %q", down)
	}
	if out, err := nsA.try("curl", "-s", "-m", "3", exitServerURL); err == nil {
		t.Errorf("with the exit node down, A still reached the server: %q", out)
	}
	if _, err := nsA.try("ping", "-c", "2", "-W", "1", exitServer); err == nil {
		t.Error("with the exit node down, A still pings the server")
	}
	if out, _ := nsA.try("dig", "+short", "+time=2", "+tries=1", "@"+a.v4, exitName); strings.Contains(out, exitServer) {
		t.Errorf("with the exit node down, A's mesh DNS still answers %s: %s", exitName, out)
	}
	if _, err := nsA.try("ping", "-c", "2", "-W", "1", aGateway); err == nil {
		t.Error("with the exit node down and no --exit-node-allow-lan, A still pings its LAN")
	}
	if n := forwarded(t, nsR) - leaked; n != 0 {
		t.Errorf("R forwarded %d packets from A to the internet with the exit node down", n)
	}
	if got := nsB.run(t, "nft", "list", "tables"); strings.Contains(got, bTable) {
		t.Errorf("B stopped, its table %s is left:\n%s", bTable, got)
	}
	if now := filterState(t, nsB); now != bBefore {
		t.Errorf("B stopped, its nftables and forwarding are not as before it started:\n%s", lineDiff(bBefore, now))
	}
	if t.Failed() {
		return
	}

	t.Log("d. B is back, then 'exit-node off': A goes through R again, its rules and routes as before.")
	b.upArgs(t, "--exit-node-offer")
	restart := time.Now()
	waitExitState(t, a, "b", true, 30*time.Second)
	waitServerSees(t, nsA, bOutside, 10*time.Second)
	t.Logf("through B again %.1f s after its restart", time.Since(restart).Seconds())

	cli(t, a, "exit-node", "off")
	eventually(t, 5*time.Second, "A's rules and routes as before 'exit-node b'", func() error {
		if now := routingState(t, nsA); now != aBaseline {
			return fmt.Errorf("they differ:\n%s", lineDiff(aBaseline, now))
		}
		return nil
	})
	waitServerSees(t, nsA, aAddr, 10*time.Second)
	if out, _ := nsA.try("dig", "+time=2", "+tries=1", "@"+a.v4, exitName); !strings.Contains(out, "status: NXDOMAIN") {
		t.Errorf("after 'exit-node off' A's mesh DNS answers %s, want NXDOMAIN: no open resolver:\n%s", exitName, out)
	}
	if s := exitState(t, a); s != nil {
		t.Errorf("after 'exit-node off' status says %+v", *s)
	}
	if out := cli(t, a, "exit-node"); out != "Exit node: none\n" {
		t.Errorf("exit-node after off: %q", out)
	}
	if t.Failed() {
		return
	}

	t.Run("e: a userspace node's SOCKS5 and forwards through B", func(t *testing.T) {
		u.upArgs(t, "--userspace", "--exit-node", "b", "--socks5", "127.0.0.1:1080",
			"--forward", "127.0.0.1:8080="+exitServer+":80", "--forward", "127.0.0.1:8081="+exitName+":80")
		u.waitConnected(t, 30*time.Second)
		proxy := socks5URL(t, u)
		var out string
		eventually(t, 20*time.Second, "curl through U's SOCKS5 to "+exitServer, func() (err error) {
			out, err = nsU.try("curl", "-s", "-m", "3", "--proxy", proxy, exitServerURL)
			return err
		})
		if got := strings.TrimSpace(out); got != bOutside {
			t.Errorf("through U's SOCKS5 the server saw %q, want B's %s", got, bOutside)
		}
		for _, c := range [][]string{
			{"--proxy", proxy, exitNameURL}, // socks5h: U resolves the name, through B
			{"http://127.0.0.1:8080/"},
			{"http://127.0.0.1:8081/"},
		} {
			out, err := nsU.try(append([]string{"curl", "-s", "-m", "5"}, c...)...)
			if got := strings.TrimSpace(out); err != nil || got != bOutside {
				t.Errorf("curl %s from U: %v, the server saw %q, want B's %s", c[len(c)-1], err, got, bOutside)
			}
		}
		if log := dnsLog(); strings.Contains(log, " from 10.153.0.2\n") {
			t.Errorf("U asked the DNS server itself, not through B:\n%s", log)
		}
	})

	t.Run("allow-lan: A's LAN stays reachable with B down", func(t *testing.T) {
		b.daemon.stop(syscall.SIGTERM)
		a.daemon.stop(syscall.SIGTERM)
		if now := routingState(t, nsA); now != aBeforeUp {
			t.Errorf("A stopped, its rules and routes are not as before it started:\n%s", lineDiff(aBeforeUp, now))
		}
		a.editConfig(t, func(c map[string]any) {
			c["exitNode"] = map[string]any{"use": "b", "allowLAN": true}
		})
		a.up(t)
		waitExitState(t, a, "b", false, 10*time.Second)
		leaked := forwarded(t, nsR)
		ping(t, nsA, aGateway, 10*time.Second)
		if out, err := nsA.try("curl", "-s", "-m", "3", exitServerURL); err == nil {
			t.Errorf("with the exit node down, A reached the server: %q", out)
		}
		if n := forwarded(t, nsR) - leaked; n != 0 {
			t.Errorf("R forwarded %d packets from A to the internet with the exit node down", n)
		}

		b.upArgs(t, "--exit-node-offer")
		waitExitState(t, a, "b", true, 30*time.Second)
		waitServerSees(t, nsA, bOutside, 10*time.Second)
		ping(t, nsA, aGateway, 5*time.Second)
	})

	// A userspace exit node opens its clients' connections from its host:
	// the server sees U's address on its LAN, and U's host resolves names.
	t.Run("a kernel node through a userspace exit node", func(t *testing.T) {
		a.addPeer(t, "u", u, map[string]any{"addrs": []string{"/ip4/10.153.0.2/udp/8001/quic-v1", "/ip4/10.153.0.2/tcp/8001"}})
		a.editConfig(t, func(c map[string]any) { c["exitNode"] = map[string]any{"use": "u"} })
		u.addPeer(t, "a", a, nil)
		u.upArgs(t, "--userspace", "--exit-node-offer")
		a.up(t)
		waitExitState(t, a, "u", true, 30*time.Second)
		waitServerSees(t, nsA, "10.153.0.2", 10*time.Second)
		eventually(t, 10*time.Second, exitName+" from A's mesh DNS through U", func() error {
			out, err := nsA.try("dig", "+short", "+time=2", "+tries=1", "@"+a.v4, exitName)
			if got := strings.TrimSpace(out); err != nil || got != exitServer {
				return fmt.Errorf("dig: %v: %q, want %s", err, got, exitServer)
			}
			return nil
		})
	})

	// A node that listens nowhere dials from ports of the kernel's
	// choosing: only the socket mark keeps those dials out of the tunnel.
	t.Run("a client that listens nowhere reaches its exit node, again after B restarts", func(t *testing.T) {
		a.editConfig(t, func(c map[string]any) {
			c["listenAddresses"] = []any{}
			c["exitNode"] = map[string]any{"use": "b"}
			c["peers"] = c["peers"].([]any)[:1] // b alone
		})
		b.upArgs(t, "--exit-node-offer")
		a.up(t)
		waitExitState(t, a, "b", true, 30*time.Second)
		waitServerSees(t, nsA, bOutside, 10*time.Second)

		b.daemon.stop(syscall.SIGTERM)
		waitExitState(t, a, "b", false, 30*time.Second)
		b.upArgs(t, "--exit-node-offer")
		waitExitState(t, a, "b", true, 30*time.Second)
		waitServerSees(t, nsA, bOutside, 10*time.Second)
	})
}

// startWhoAmI serves, on exitServer port 80, a page holding the client's
// address, and waits until it answers.
func startWhoAmI(t *testing.T, ns *netns) {
	t.Helper()
	ns.start(t, "whoami", "python3", "-c", `import http.server, sys
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = (self.client_address[0] + "\n").encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
http.server.ThreadingHTTPServer((sys.argv[1], 80), H).serve_forever()`, exitServer)
	eventually(t, 10*time.Second, "the HTTP server on "+exitServer, func() error {
		_, err := ns.try("curl", "-sf", "-m", "2", exitServerURL)
		return err
	})
}

// startTestDNS answers, on exitDNS port 53 (UDP), A queries for exitName
// with exitServer, other types of it with no record and other names with
// NXDOMAIN. It logs "NAME TYPE from ADDR" a query; the function returned
// reads that log.
func startTestDNS(t *testing.T, ns *netns) func() string {
	t.Helper()
	p := ns.start(t, "dns", "python3", "-c", `import socket, struct, sys
name_, addr_ = sys.argv[1], socket.inet_aton(sys.argv[2])
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind((sys.argv[3], 53))
while True:
    q, src = s.recvfrom(4096)
    i, labels = 12, []
    while q[i]:
        labels.append(q[i + 1:i + 1 + q[i]].decode().lower())
        i += 1 + q[i]
    qtype = struct.unpack(">H", q[i + 1:i + 3])[0]
    name = ".".join(labels)
    print(name, {1: "A", 28: "AAAA"}.get(qtype, qtype), "from", src[0], flush=True)
    answer, rcode = b"", 0
    if name != name_:
        rcode = 3
    elif qtype == 1:
        answer = b"\xc0\x0c" + struct.pack(">HHIH", 1, 1, 60, 4) + addr_
    flags = 0x8080 | (q[2] & 1) << 8 | rcode
    s.sendto(q[:2] + struct.pack(">HHHHH", flags, 1, 1 if answer else 0, 0, 0) + q[12:i + 5] + answer, src)`,
		exitName, exitServer, exitDNS)
	eventually(t, 10*time.Second, "the DNS server on "+exitDNS, func() error {
		out, err := ns.try("dig", "+short", "+time=1", "+tries=1", "@"+exitDNS, exitName)
		if got := strings.TrimSpace(out); err != nil || got != exitServer {
			return fmt.Errorf("dig: %v: %q", err, got)
		}
		return nil
	})
	return func() string {
		out, _ := os.ReadFile(p.log)
		return string(out)
	}
}

// setResolver gives the namespace a resolv.conf of its own naming server
// ('ip netns exec' mounts /etc/netns/NAME/resolv.conf over the host's).
func setResolver(t *testing.T, ns *netns, server string) {
	t.Helper()
	if _, err := os.Stat("/etc/netns"); os.IsNotExist(err) {
		// Made here, so taken away again once empty (not while another
		// test's namespace has a folder in it).
		t.Cleanup(func() { os.Remove("/etc/netns") })
	}
	dir := filepath.Join("/etc/netns", ns.name)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.WriteFile(filepath.Join(dir, "resolv.conf"), []byte("nameserver "+server+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
}

// waitServerSees waits until a curl from ns reaches the server and the
// server saw the request come from want.
func waitServerSees(t *testing.T, ns *netns, want string, timeout time.Duration) {
	t.Helper()
	eventually(t, timeout, "the server seeing "+want+" from "+ns.name, func() error {
		out, err := ns.try("curl", "-s", "-m", "2", exitServerURL)
		if got := strings.TrimSpace(out); err != nil || got != want {
			return fmt.Errorf("curl: %v, the server saw %q", err, got)
		}
		return nil
	})
}

// cli runs a mynetwork command against n's daemon and fails on error.
func cli(t *testing.T, n *node, args ...string) string {
	t.Helper()
	out, err := n.cli(args...)
	if err != nil {
		t.Fatalf("mynetwork %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return out
}

// exitNodeState is status --json's "exitNode".
type exitNodeState struct {
	Use       string `json:"use"`
	Connected bool   `json:"connected"`
	Offer     bool   `json:"offer"`
}

func exitState(t *testing.T, n *node) *exitNodeState {
	t.Helper()
	out, err := n.cli("status", "--json")
	if err != nil {
		t.Fatalf("status: %v\n%s", err, out)
	}
	var s struct {
		ExitNode *exitNodeState `json:"exitNode"`
	}
	if err := json.Unmarshal([]byte(out), &s); err != nil {
		t.Fatalf("status --json: %v\n%s", err, out)
	}
	return s.ExitNode
}

func waitExitState(t *testing.T, n *node, use string, connected bool, timeout time.Duration) {
	t.Helper()
	eventually(t, timeout, fmt.Sprintf("%s's status: exit node %s, connected %v", n.iface, use, connected), func() error {
		s := exitState(t, n)
		if s == nil || s.Use != use || s.Connected != connected {
			return fmt.Errorf("exitNode is %+v", s)
		}
		return nil
	})
}

// exitLine is the line of n's text status about its exit node.
func exitLine(t *testing.T, n *node) string {
	t.Helper()
	out := cli(t, n, "status")
	for _, l := range strings.Split(out, "\n") {
		if strings.HasPrefix(l, "Exit node:") {
			return l
		}
	}
	t.Fatalf("status has no line starting \"Exit node:\":\n%s", out)
	return ""
}

// routingState is what 'exit-node' may change on a host, as ip prints it,
// once the host's IPv6 addresses are past duplicate address detection:
// until then their local routes come and go by themselves.
func routingState(t *testing.T, ns *netns) string {
	t.Helper()
	eventually(t, 10*time.Second, "IPv6 addresses past DAD in "+ns.name, func() error {
		if out := ns.run(t, "ip", "-6", "addr", "show", "tentative"); out != "" {
			return fmt.Errorf("tentative: %s", out)
		}
		return nil
	})
	return commandsOutput(t, ns,
		[]string{"ip", "-4", "rule"},
		[]string{"ip", "-6", "rule"},
		[]string{"ip", "-4", "route", "show", "table", "all"},
		[]string{"ip", "-6", "route", "show", "table", "all"})
}

// filterState is what offering an exit node may change on a host: its
// nftables ruleset, its forwarding switches and whether its interfaces
// take router advertisements.
func filterState(t *testing.T, ns *netns) string {
	t.Helper()
	return commandsOutput(t, ns,
		[]string{"nft", "list", "ruleset"},
		[]string{"sysctl", "-a", "-r", `forwarding$|\.ip_forward$|\.accept_ra$`})
}

func commandsOutput(t *testing.T, ns *netns, cmds ...[]string) string {
	t.Helper()
	var b strings.Builder
	for _, args := range cmds {
		fmt.Fprintf(&b, "$ %s\n%s", strings.Join(args, " "), ns.run(t, args...))
	}
	return b.String()
}

// forwarded counts the packets R's counting rule saw (A's LAN to the
// internet).
func forwarded(t *testing.T, r *netns) uint64 {
	t.Helper()
	out := r.run(t, "iptables", "-w", "-nvxL", "FORWARD")
	for _, l := range strings.Split(out, "\n") {
		// pkts bytes [target] prot opt in out source destination: the
		// rule has no target, so find it by its interfaces.
		f := strings.Fields(l)
		for i := 1; i+1 < len(f); i++ {
			if f[i] == "ra" && f[i+1] == "ri" {
				n, err := strconv.ParseUint(f[0], 10, 64)
				if err != nil {
					t.Fatalf("iptables counter %q: %v", l, err)
				}
				return n
			}
		}
	}
	t.Fatalf("no counting rule in R's FORWARD chain:\n%s", out)
	return 0
}

// lineDiff lists the lines only in want (-) and only in got (+).
func lineDiff(want, got string) string {
	count := map[string]int{}
	for _, l := range strings.Split(want, "\n") {
		count[l]++
	}
	for _, l := range strings.Split(got, "\n") {
		count[l]--
	}
	var b strings.Builder
	for _, l := range strings.Split(want, "\n") {
		if count[l] > 0 {
			fmt.Fprintf(&b, "- %s\n", l)
			count[l]--
		}
	}
	for _, l := range strings.Split(got, "\n") {
		if count[l] < 0 {
			fmt.Fprintf(&b, "+ %s\n", l)
			count[l]++
		}
	}
	if b.Len() == 0 {
		return "(the same lines, in another order)\n" + got
	}
	return b.String()
}
