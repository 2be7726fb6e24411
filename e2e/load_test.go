package e2e

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Load: many connections at once through one tunnel, every byte checked.

const (
	loadConns = 1000
	loadSize  = 64 << 10 // bytes per connection
	loadPort  = "7001"   // the checksum server behind the tunnel
	rawPort   = "7002"   // the same server on the bare underlay, for comparison
	// loadDeadline bounds the whole client run: connections not verified
	// by then count as failed.
	loadDeadline = 60 * time.Second
	// loadLimit is how long the last connection may take, from the moment
	// all are open, to get its checksum back. Over the bare veth it takes
	// about 0.1 s; through the tunnel with a queue that holds the burst
	// (see below) 0.4 s in kernel mode and 2 s through SOCKS5.
	loadLimit = 10 * time.Second
)

// buildConnload compiles testdata/connload, the checksum server and
// concurrent client, into the test's temporary folder.
func buildConnload(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "connload")
	out, err := exec.Command("go", "build", "-o", bin, "./testdata/connload").CombinedOutput()
	if err != nil {
		t.Fatalf("build connload: %v\n%s", err, out)
	}
	return bin
}

// startConnloadServer runs the checksum server on addr in ns and waits
// until it listens.
func startConnloadServer(t *testing.T, ns *netns, bin, addr string) *proc {
	t.Helper()
	srv := ns.start(t, "connload-server-"+strings.ReplaceAll(addr, ":", "-"), bin, "-mode", "server", "-addr", addr, "-size", strconv.Itoa(loadSize))
	eventually(t, 10*time.Second, "connload server listening", func() error {
		out, _ := os.ReadFile(srv.log)
		if strings.Contains(string(out), "listening on") {
			return nil
		}
		if srv.exited() {
			t.Fatalf("connload server exited: %v\n%s", srv.err, out)
		}
		return errors.New("not yet")
	})
	return srv
}

var connloadSummary = regexp.MustCompile(`connections=(\d+) verified=(\d+) failed=(\d+) bytes_verified=(\d+) size=\d+ all_open_after=(\S+) done_p50=(\S+) done_p90=(\S+) done_p99=(\S+) done_max=(\S+) total=(\S+)`)
var connloadPeak = regexp.MustCompile(`served=\d+ peak_open=(\d+)`)

// loadRun is what one client run reported.
type loadRun struct {
	out                       string
	err                       error
	verified                  int
	bytes                     int64
	open, p50, p90, p99, last time.Duration
}

func (r loadRun) String() string {
	return fmt.Sprintf("%d of %d verified, %d bytes (%.1f MB) checked by SHA-256; all open after %s; checksums back: half after %s, 90%% %s, 99%% %s, last %s",
		r.verified, loadConns, r.bytes, float64(r.bytes)/1e6, r.open, r.p50, r.p90, r.p99, r.last)
}

// connload runs the client in ns against target (through the SOCKS5 proxy
// socks, a URL with its username and password, if given) with n
// connections.
func connload(t *testing.T, ns *netns, bin, target, socks string, n int, deadline time.Duration) loadRun {
	t.Helper()
	args := []string{bin, "-mode", "client", "-addr", target, "-size", strconv.Itoa(loadSize),
		"-n", strconv.Itoa(n), "-timeout", deadline.String()}
	if socks != "" {
		args = append(args, "-socks5", socks)
	}
	var r loadRun
	r.out, r.err = ns.try(args...)
	m := connloadSummary.FindStringSubmatch(r.out)
	if m == nil {
		t.Fatalf("connload client to %s printed no summary: %v\n%s", target, r.err, r.out)
	}
	r.verified, _ = strconv.Atoi(m[2])
	r.bytes, _ = strconv.ParseInt(m[4], 10, 64)
	for i, d := range []*time.Duration{&r.open, &r.p50, &r.p90, &r.p99, &r.last} {
		*d, _ = time.ParseDuration(m[5+i])
	}
	return r
}

// tunnelCounters are a node's packet counts toward its only peer.
type tunnelCounters struct{ tx, dropped uint64 }

func peerCounters(n *node) (tunnelCounters, error) {
	out, err := n.cli("status", "--json")
	if err != nil {
		return tunnelCounters{}, fmt.Errorf("status: %v: %s", err, out)
	}
	var s struct {
		Peers []struct {
			TxPackets uint64 `json:"txPackets"`
			Dropped   uint64 `json:"dropped"`
		} `json:"peers"`
	}
	if err := json.Unmarshal([]byte(out), &s); err != nil || len(s.Peers) != 1 {
		return tunnelCounters{}, fmt.Errorf("status --json: %v: %s", err, out)
	}
	return tunnelCounters{s.Peers[0].TxPackets, s.Peers[0].Dropped}, nil
}

// drops describes how many packets each node sent its peer since before and
// how many its packet transport dropped (the peer's queue was full).
func drops(before map[*node]tunnelCounters, nodes ...*node) string {
	var parts []string
	for _, n := range nodes {
		c, err := peerCounters(n)
		if err != nil {
			parts = append(parts, n.iface+": "+err.Error())
			continue
		}
		b := before[n]
		tx, drop := c.tx-b.tx, c.dropped-b.dropped
		parts = append(parts, fmt.Sprintf("%s sent %d packets to its peer and its transport dropped %d (%.0f%% of those offered)",
			n.iface, tx, drop, 100*float64(drop)/float64(max(1, tx+drop))))
	}
	return strings.Join(parts, "; ")
}

// loadThrough runs loadConns concurrent connections from client to target
// (through socks, if given) and checks every byte; raw, on the bare
// underlay, is run first for comparison. nodes are the two tunnel ends.
func loadThrough(t *testing.T, client *netns, bin, target, socks, raw string, srv *proc, nodes ...*node) {
	t.Helper()
	// The path is up once a single connection gets its checksum.
	eventually(t, 30*time.Second, "one connection to "+target, func() error {
		if r := connload(t, client, bin, target, socks, 1, 5*time.Second); r.err != nil {
			return errors.New(lastLine(r.out))
		}
		return nil
	})
	base := connload(t, client, bin, raw, "", loadConns, loadDeadline)
	if base.err != nil || base.verified != loadConns {
		t.Fatalf("%d connections over the bare underlay to %s failed: %v\n%s", loadConns, raw, base.err, base.out)
	}
	t.Logf("bare underlay, %d connections to %s: %s", loadConns, raw, base)

	before := map[*node]tunnelCounters{}
	for _, n := range nodes {
		before[n], _ = peerCounters(n)
	}
	r := connload(t, client, bin, target, socks, loadConns, loadDeadline)
	dropped := drops(before, nodes...)
	peak := "?"
	if log, _ := os.ReadFile(srv.log); log != nil {
		if all := connloadPeak.FindAllStringSubmatch(string(log), -1); len(all) > 0 {
			peak = all[len(all)-1][1]
		}
	}
	t.Logf("tunnel, %d connections to %s: %s; server peak %s open at once", loadConns, target, r, peak)
	t.Logf("tunnel counters: %s", dropped)

	// Exact delivery: every connection's bytes, checksummed on arrival.
	if r.verified != loadConns || r.bytes != int64(loadConns)*loadSize {
		t.Errorf("PRODUCT BUG: only %d of %d connections through the tunnel got their checksum back within %s "+
			"(%d of %d bytes); the same over the bare underlay took %s. %s. "+
			"See TestThousandConnections' comment: the per-peer packet queue drops most of the burst.\n%s",
			r.verified, loadConns, loadDeadline, r.bytes, int64(loadConns)*loadSize, base.last, dropped, r.out)
		return
	}
	if r.last > loadLimit {
		t.Errorf("PRODUCT BUG: %d concurrent connections of %d KiB each through the tunnel delivered every byte, "+
			"but the last needed %s (limit %s; half were done after %s, and over the bare underlay all after %s). %s. "+
			"See TestThousandConnections' comment: the per-peer packet queue drops most of the burst.",
			loadConns, loadSize>>10, r.last, loadLimit, r.p50, base.last, dropped)
	}
}

// TestThousandConnections: 1,000 concurrent TCP connections through one
// kernel-mode tunnel, then through SOCKS5 between two userspace nodes,
// each delivering its 64 KiB exactly (SHA-256 per connection), and in
// reasonable time.
//
// Why the time limit: this test found a product bug. The packet transport's
// per-peer queue was sized in packets of the largest size, 4 MiB / (60000+64)
// = 69 packets, whatever their real size. A burst from many connections at
// once (1,000 × 64 KiB, one or two ~60 KB segments each) overflowed it:
// Send dropped 40-50% of what the engine offered. Connections that lost
// their only segments recovered only by RTO, in synchronized waves that
// overflowed the queue again, so the last connection finished on the RTO
// backoff ladder (25.6 s, 51.2 s or 102.4 s) against ~0.1 s over the bare
// veth. The queue is now bounded in real bytes (32 MiB, 8192 slots): the
// last connection is done after about 0.5 s (kernel) and 0.9 s (SOCKS5).
func TestThousandConnections(t *testing.T) {
	requireE2E(t, "ping", "go")
	bin := buildConnload(t)

	t.Run("kernel", func(t *testing.T) {
		p := newFaultPair(t, "mlk", "10.141.0")
		p.upKernel(t)
		t.Logf("tunnel path: %s", peerAddr(t, p.a))
		srv := startConnloadServer(t, p.nsB, bin, p.b.v4+":"+loadPort)
		defer srv.stop(syscall.SIGKILL)
		raw := startConnloadServer(t, p.nsB, bin, p.subnet+".2:"+rawPort)
		defer raw.stop(syscall.SIGKILL)
		loadThrough(t, p.nsA, bin, p.b.v4+":"+loadPort, "", p.subnet+".2:"+rawPort, srv, p.a, p.b)
		p.a.waitConnected(t, 5*time.Second)
	})

	t.Run("userspace SOCKS5", func(t *testing.T) {
		p := newFaultPair(t, "mlu", "10.142.0")
		// The server listens on B's loopback; B's expose rule makes it
		// b:PORT on the mesh. A's programs reach the mesh through SOCKS5.
		p.a.upArgs(t, "--userspace", "--socks5", "127.0.0.1:1080")
		p.b.upArgs(t, "--userspace", "--expose", loadPort+"="+"127.0.0.1:"+loadPort)
		p.a.waitConnected(t, 30*time.Second)
		p.b.waitConnected(t, 30*time.Second)
		t.Logf("tunnel path: %s", peerAddr(t, p.a))
		srv := startConnloadServer(t, p.nsB, bin, "127.0.0.1:"+loadPort)
		defer srv.stop(syscall.SIGKILL)
		raw := startConnloadServer(t, p.nsB, bin, p.subnet+".2:"+rawPort)
		defer raw.stop(syscall.SIGKILL)
		loadThrough(t, p.nsA, bin, "b:"+loadPort, socks5URL(t, p.a), p.subnet+".2:"+rawPort, srv, p.a, p.b)
		for _, n := range []*node{p.a, p.b} {
			if n.daemon.exited() {
				t.Errorf("%s exited under load: %v", n.iface, n.daemon.err)
			}
		}
		p.a.waitConnected(t, 5*time.Second)
	})
}
