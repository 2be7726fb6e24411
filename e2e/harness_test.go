// Package e2e runs Mynetwork end to end on real network namespaces, kernel
// TUN devices and real tools (ping, iperf3, ssh). It needs root; with
// MYNETWORK_E2E=1 (as CI sets) a test that cannot run fails instead of
// skipping.
package e2e

import (
	"bufio"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"
)

var (
	binary    string // the mynetwork binary, built once by TestMain
	natBinary string // the same built with -tags nattest: TEST-NET ranges count as public
)

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "mynetwork-e2e-bin")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binary = filepath.Join(dir, "mynetwork")
	natBinary = filepath.Join(dir, "mynetwork-nattest")
	for _, b := range [][]string{{"-o", binary}, {"-tags", "nattest", "-o", natBinary}} {
		build := exec.Command("go", append(append([]string{"build"}, b...), "../cmd/mynetwork")...)
		build.Stdout, build.Stderr = os.Stderr, os.Stderr
		if err := build.Run(); err != nil {
			fmt.Fprintln(os.Stderr, "build mynetwork:", err)
			os.Exit(1)
		}
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// mustRun is true under CI: a test that cannot run is a failure there.
var mustRun = os.Getenv("MYNETWORK_E2E") == "1"

// requireE2E skips (or, under MYNETWORK_E2E=1, fails) unless the test can
// run: root and the given tools.
func requireE2E(t *testing.T, tools ...string) {
	t.Helper()
	var missing []string
	if os.Geteuid() != 0 {
		missing = append(missing, "root")
	}
	for _, tool := range append([]string{"ip"}, tools...) {
		if _, err := exec.LookPath(tool); err != nil {
			missing = append(missing, tool)
		}
	}
	if len(missing) == 0 {
		return
	}
	msg := "e2e test needs " + strings.Join(missing, ", ")
	if mustRun {
		t.Fatal(msg + " (MYNETWORK_E2E=1 turns this skip into a failure)")
	}
	t.Skip(msg)
}

// uniq returns a short random tag for namespace and interface names, so
// tests never collide with each other or with other namespaces.
func uniq(t *testing.T) string {
	b := make([]byte, 3)
	rand.Read(b)
	return hex.EncodeToString(b)
}

func sh(t *testing.T, args ...string) string {
	t.Helper()
	out, err := exec.Command(args[0], args[1:]...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// netns is a network namespace the test created and removes.
type netns struct{ name string }

func newNetns(t *testing.T, name string) *netns {
	t.Helper()
	sh(t, "ip", "netns", "add", name)
	t.Cleanup(func() { exec.Command("ip", "netns", "del", name).Run() })
	sh(t, "ip", "-n", name, "link", "set", "lo", "up")
	return &netns{name}
}

// run runs a command inside the namespace and fails the test on error.
func (n *netns) run(t *testing.T, args ...string) string {
	t.Helper()
	return sh(t, append([]string{"ip", "netns", "exec", n.name}, args...)...)
}

// try runs a command inside the namespace and returns its output and error.
func (n *netns) try(args ...string) (string, error) {
	out, err := exec.Command("ip", append([]string{"netns", "exec", n.name}, args...)...).CombinedOutput()
	return string(out), err
}

// link joins two namespaces with a veth pair and addresses.
func link(t *testing.T, a *netns, aIf, aAddr string, b *netns, bIf, bAddr string) {
	t.Helper()
	sh(t, "ip", "link", "add", aIf, "netns", a.name, "type", "veth", "peer", "name", bIf, "netns", b.name)
	sh(t, "ip", "-n", a.name, "addr", "add", aAddr, "dev", aIf)
	sh(t, "ip", "-n", b.name, "addr", "add", bAddr, "dev", bIf)
	sh(t, "ip", "-n", a.name, "link", "set", aIf, "up")
	sh(t, "ip", "-n", b.name, "link", "set", bIf, "up")
}

// proc is a background process the test started; it is stopped by PID.
type proc struct {
	cmd  *exec.Cmd
	log  string
	done chan struct{}
	err  error
}

func (n *netns) start(t *testing.T, logName string, args ...string) *proc {
	t.Helper()
	logPath := filepath.Join(t.TempDir(), logName+".log")
	f, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("ip", append([]string{"netns", "exec", n.name}, args...)...)
	cmd.Stdout, cmd.Stderr = f, f
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &proc{cmd: cmd, log: logPath, done: make(chan struct{})}
	go func() { p.err = cmd.Wait(); f.Close(); close(p.done) }()
	t.Cleanup(func() {
		p.stop(syscall.SIGTERM) // a clean shutdown; stop kills after 15 s
		if t.Failed() || os.Getenv("MYNETWORK_E2E_LOGS") != "" {
			out, _ := os.ReadFile(logPath)
			t.Logf("--- %s log ---\n%s", logName, out)
		}
	})
	return p
}

// stop signals the process (by its PID) and waits for it to exit.
func (p *proc) stop(sig syscall.Signal) error {
	select {
	case <-p.done:
		return p.err
	default:
	}
	p.cmd.Process.Signal(sig)
	select {
	case <-p.done:
	case <-time.After(15 * time.Second):
		p.cmd.Process.Kill()
		<-p.done
	}
	return p.err
}

func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

func eventually(t *testing.T, timeout time.Duration, what string, f func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		err := f()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s: %v", timeout, what, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// node is one Mynetwork node in a namespace.
type node struct {
	bin    string // binary, or natBinary
	ns     *netns
	iface  string
	config string
	id     string
	v4, v6 string
	daemon *proc
}

var idRe = regexp.MustCompile(`"id": "(12D3Koo[1-9A-HJ-NP-Za-km-z]+)"`)
var addrRe = regexp.MustCompile(`mesh addresses: (\S+) and (\S+)`)

// initNode runs 'mynetwork init' and reads the peer ID and addresses it prints.
func initNode(t *testing.T, ns *netns, iface string) *node {
	t.Helper()
	n := &node{bin: binary, ns: ns, iface: iface, config: filepath.Join(t.TempDir(), iface+".json")}
	out := ns.run(t, binary, "init", "-i", iface, "-c", n.config)
	m := idRe.FindStringSubmatch(out)
	a := addrRe.FindStringSubmatch(out)
	if m == nil || a == nil {
		t.Fatalf("init printed no peer ID or addresses:\n%s", out)
	}
	n.id, n.v4, n.v6 = m[1], a[1], a[2]
	return n
}

// editConfig applies f to the node's config as generic JSON, like a person
// editing the file.
func (n *node) editConfig(t *testing.T, f func(c map[string]any)) {
	t.Helper()
	data, err := os.ReadFile(n.config)
	if err != nil {
		t.Fatal(err)
	}
	var c map[string]any
	if err := json.Unmarshal(data, &c); err != nil {
		t.Fatal(err)
	}
	f(c)
	out, _ := json.MarshalIndent(c, "", "  ")
	if err := os.WriteFile(n.config, out, 0o600); err != nil {
		t.Fatal(err)
	}
}

// addPeer adds other to n's peers, as the README's tutorial says.
func (n *node) addPeer(t *testing.T, name string, other *node, extra map[string]any) {
	n.editConfig(t, func(c map[string]any) {
		p := map[string]any{"name": name, "id": other.id}
		for k, v := range extra {
			p[k] = v
		}
		peers, _ := c["peers"].([]any)
		c["peers"] = append(peers, p)
		c["bootstrapPeers"] = []any{} // never the public DHT in tests
		c["mdns"] = false
	})
}

func (n *node) cli(args ...string) (string, error) {
	return n.ns.try(append([]string{n.bin, "-i", n.iface, "-c", n.config}, args...)...)
}

func (n *node) up(t *testing.T) { t.Helper(); n.upArgs(t) }

type peerStatus struct {
	Name      string `json:"name"`
	Connected bool   `json:"connected"`
	Addr      string `json:"addr"`
	Path      string `json:"path"`
	Relay     string `json:"relay"`
	Why       string `json:"why"`
	Idle      bool   `json:"idle"` // on demand: not connected, nothing needed it
	// Packets per path.
	TxPackets   uint64 `json:"txPackets"`
	RxPackets   uint64 `json:"rxPackets"`
	TxDatagrams uint64 `json:"txDatagrams"`
	// Super-packets sent whole, and cut into segments.
	TxSuperPackets uint64 `json:"txSuperPackets"`
	TxSegmented    uint64 `json:"txSegmented"`
	RxDatagrams    uint64 `json:"rxDatagrams"`
	// Dropped by CoDel: packets waited too long in the peer's queue.
	DroppedForDelay uint64 `json:"droppedForDelay"`
	MarkedForDelay  uint64 `json:"markedForDelay"`
}

type status struct {
	PeerID             string       `json:"peerID"`
	IdleTimeoutSeconds int          `json:"idleTimeoutSeconds"`
	Peers              []peerStatus `json:"peers"`
	Counters           struct {
		DropDestination uint64 `json:"dropDestination"`
	} `json:"counters"`
}

func (n *node) status(t *testing.T) status {
	t.Helper()
	out, err := n.cli("status", "--json")
	if err != nil {
		t.Fatalf("status: %v\n%s", err, out)
	}
	var s status
	if err := json.Unmarshal([]byte(out), &s); err != nil {
		t.Fatalf("status --json: %v\n%s", err, out)
	}
	return s
}

// waitConnected waits until the node is connected to all its peers. Nodes
// connect on demand (idleTimeout), so it pings each idle one, as a user
// would reach it: a peer whose connection is wanted also has it redialed
// when it is lost, for the idle timeout (10 min: the whole test).
func (n *node) waitConnected(t *testing.T, timeout time.Duration) {
	t.Helper()
	eventually(t, timeout, n.iface+" connected to all peers", func() error {
		s := n.status(t)
		for _, p := range s.Peers {
			if !p.Connected {
				n.wake(p)
				return fmt.Errorf("@%s not connected", p.Name)
			}
		}
		return nil
	})
}

// wake pings p if it is idle: on demand, traffic is what connects a peer.
func (n *node) wake(p peerStatus) {
	if !p.Connected && p.Idle {
		n.cli("ping", "-n", "1", p.Name)
	}
}

// ping pings dst from the namespace until one reply arrives or timeout.
func ping(t *testing.T, from *netns, dst string, timeout time.Duration) {
	t.Helper()
	eventually(t, timeout, "ping "+dst+" from "+from.name, func() error {
		out, err := from.try("ping", "-c", "1", "-W", "1", dst)
		if err != nil {
			return fmt.Errorf("%v: %s", err, lastLine(out))
		}
		return nil
	})
}

func lastLine(s string) string {
	var last string
	sc := bufio.NewScanner(strings.NewReader(s))
	for sc.Scan() {
		if l := strings.TrimSpace(sc.Text()); l != "" {
			last = l
		}
	}
	return last
}

func execLook(name string) (string, error) {
	for _, dir := range []string{"/usr/sbin", "/usr/bin", "/sbin"} {
		p := filepath.Join(dir, name)
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
	}
	return exec.LookPath(name)
}

// logged reports whether the node's daemon log contains s.
func (n *node) logged(s string) bool {
	out, _ := os.ReadFile(n.daemon.log)
	return strings.Contains(string(out), s)
}
