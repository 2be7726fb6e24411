package e2e

import (
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestMixedMTU: a node at the default MTU (1420) and one with "mtu": 65000
// (as a node before 1420 became the default) work together. Each kernel
// sends packets up to its own MTU, so the small node must take in whole
// packets larger than its MTU; TCP agrees on the smaller segment size.
func TestMixedMTU(t *testing.T) {
	requireE2E(t, "ping", "iperf3")
	nsA, nsB, a, b := vethPair(t, "mm", "10.118.0")

	t.Run("an MTU out of range is refused and creates nothing", func(t *testing.T) {
		b.editConfig(t, func(c map[string]any) { c["mtu"] = 100 })
		out, err := b.cli("up")
		if err == nil || !strings.Contains(out, "mtu: 100 is outside 1280..65000") {
			t.Fatalf("up with mtu 100: %v\n%s", err, out)
		}
		if _, err := nsB.try("ip", "link", "show", b.iface); err == nil {
			t.Fatalf("interface %s exists after a refused up", b.iface)
		}
	})

	b.editConfig(t, func(c map[string]any) { c["mtu"] = 65000 })
	upPair(t, a, b)

	t.Run("each interface has its MTU", func(t *testing.T) {
		if out := nsA.run(t, "ip", "link", "show", a.iface); !strings.Contains(out, "mtu 1420") {
			t.Errorf("A:\n%s", out)
		}
		if out := nsB.run(t, "ip", "link", "show", b.iface); !strings.Contains(out, "mtu 65000") {
			t.Errorf("B:\n%s", out)
		}
	})

	t.Run("9000-byte pings both ways, IPv4 and IPv6", func(t *testing.T) {
		// B sends its request (or reply) whole, A in 1420-byte fragments.
		bigPings(t, "9000", "3", nsA, nsB, a, b)
	})

	t.Run("iperf3 both ways", func(t *testing.T) {
		iperf(t, nsA, nsB, b.v4, "-t", "2")
		iperf(t, nsA, nsB, b.v4, "-t", "2", "-R")
		// A's kernel hands over super-packets and A sends them whole; B,
		// without offload, takes each as one large TCP segment (had it cut
		// them, it would count more packets from A than A sent).
		rx := b.status(t).Peers[0].RxPackets
		if p := a.status(t).Peers[0]; p.TxSuperPackets < 1000 || p.TxSegmented != 0 || rx > p.TxPackets {
			t.Errorf("A sent %d super-packets whole and cut %d, want thousands and none; B took %d packets of A's %d",
				p.TxSuperPackets, p.TxSegmented, rx, p.TxPackets)
		}
	})
}

// TestSegmentationOffload: two nodes at the default MTU, 1420, open their
// TUNs with the virtio-net header and TCP segmentation offload, and carry
// each other's 64 KiB TCP super-packets whole (tunnel.GSOProtocol): real TCP
// both ways, large pings, and IPv6.
func TestSegmentationOffload(t *testing.T) {
	requireE2E(t, "ping", "iperf3")
	nsA, nsB, a, b := vethPair(t, "mg", "10.119.0")
	upPair(t, a, b)

	if out := nsA.run(t, "ip", "-d", "link", "show", a.iface); !strings.Contains(out, "mtu 1420") || !strings.Contains(out, "vnet_hdr on") {
		t.Errorf("ip -d link show %s:\n%s", a.iface, out)
	}
	if out, _ := a.cli("status"); !strings.Contains(out, "MTU: 1420, TCP segmentation offload") {
		t.Errorf("status does not show the MTU and offload:\n%s", out)
	}
	bigPings(t, "5000", "2", nsA, nsB, a, b)
	iperf(t, nsA, nsB, b.v4, "-t", "2")
	iperf(t, nsA, nsB, b.v4, "-t", "2", "-R")
	iperf(t, nsA, nsB, b.v6, "-t", "2")
	for _, n := range []*node{a, b} {
		p := n.status(t).Peers[0]
		if p.TxSuperPackets < 1000 || p.TxSegmented != 0 {
			t.Errorf("%s sent %d super-packets whole and cut %d, want thousands and none", n.iface, p.TxSuperPackets, p.TxSegmented)
		}
	}
}

// TestQueueDelayDrops: one CUBIC stream (loss-based, the usual Linux
// default) through the tunnel over a 100 Mbit/s link builds a queue at the
// sender, after the connection has run fast; the queue forms in the
// peer's flow queues, not in the socket, and CoDel drops from it (status:
// droppedForDelay), which is what keeps a ping beside it from waiting
// behind the whole queue, and the transfer goes on.
func TestQueueDelayDrops(t *testing.T) {
	requireE2E(t, "iperf3", "tc")
	nsA, nsB, a, b := vethPair(t, "mq", "10.126.0")
	upPair(t, a, b)
	ping(t, nsA, b.v4, 20*time.Second)
	// First a fast period on the same connection: its socket's send
	// buffer grows to what that needed (megabytes).
	iperf(t, nsA, nsB, b.v4, "-t", "2")
	nsA.run(t, "tc", "qdisc", "add", "dev", "eth0", "root", "tbf", "rate", "100mbit", "burst", "32kb", "latency", "20ms")
	// While the slow link is full, what the socket holds unsent stays
	// small (the socket's unsent limit, p2p/conns/coalesce.go): the queue is in
	// the peer's flow queues, where CoDel sees it.
	unsent := make(chan int)
	go func() {
		most := 0
		time.Sleep(time.Second)
		for range 10 {
			out, _ := nsA.try("ss", "-tinH", "( sport = :8001 or dport = :8001 )")
			for _, f := range strings.Fields(out) {
				if v, ok := strings.CutPrefix(f, "notsent:"); ok {
					n, _ := strconv.Atoi(v)
					most = max(most, n)
				}
			}
			time.Sleep(150 * time.Millisecond)
		}
		unsent <- most
	}()
	iperf(t, nsA, nsB, b.v4, "-t", "3", "-C", "cubic")
	most := <-unsent
	if most > 512<<10 {
		t.Errorf("the connection's socket held %d bytes unsent behind a slow link; the queue belongs in the flow queues", most)
	}
	t.Logf("at most %d bytes unsent in the socket", most)
	if p := a.status(t).Peers[0]; p.DroppedForDelay == 0 {
		t.Errorf("no packet dropped for delay behind a CUBIC stream over a 100 Mbit/s link: %+v", p)
	}
}

// TestQueueDelayMarksECN: when the inner TCP negotiates ECN (here both
// namespaces ask for it), CoDel marks its packets Congestion Experienced
// instead of dropping them (status: markedForDelay), and the sender slows
// down as for a drop.
func TestQueueDelayMarksECN(t *testing.T) {
	requireE2E(t, "iperf3", "tc")
	nsA, nsB, a, b := vethPair(t, "me", "10.127.0")
	for _, ns := range []*netns{nsA, nsB} {
		ns.run(t, "sysctl", "-q", "-w", "net.ipv4.tcp_ecn=1")
	}
	upPair(t, a, b)
	ping(t, nsA, b.v4, 20*time.Second)
	nsA.run(t, "tc", "qdisc", "add", "dev", "eth0", "root", "tbf", "rate", "100mbit", "burst", "32kb", "latency", "20ms")
	iperf(t, nsA, nsB, b.v4, "-t", "3", "-C", "cubic")
	p := a.status(t).Peers[0]
	if p.MarkedForDelay == 0 {
		t.Errorf("no packet marked behind an ECN-capable CUBIC stream over a 100 Mbit/s link: %+v", p)
	}
	t.Logf("marked %d, dropped %d for delay", p.MarkedForDelay, p.DroppedForDelay)
}

// vethPair makes two namespaces joined by a veth pair on net.0/24 and a
// node in each, peered (A knows B's TCP address), not yet up.
func vethPair(t *testing.T, prefix, net string) (nsA, nsB *netns, a, b *node) {
	t.Helper()
	tag := uniq(t)
	nsA = newNetns(t, "mn"+prefix+tag+"-a")
	nsB = newNetns(t, "mn"+prefix+tag+"-b")
	link(t, nsA, "eth0", net+".1/24", nsB, "eth0", net+".2/24")
	a = initNode(t, nsA, prefix+"a"+tag)
	b = initNode(t, nsB, prefix+"b"+tag)
	a.addPeer(t, "b", b, map[string]any{"addrs": []string{"/ip4/" + net + ".2/tcp/8001"}})
	b.addPeer(t, "a", a, nil)
	return nsA, nsB, a, b
}

// upPair brings A and B up and waits until each has the other.
func upPair(t *testing.T, a, b *node) {
	t.Helper()
	a.up(t)
	b.up(t)
	a.waitConnected(t, 30*time.Second)
	b.waitConnected(t, 30*time.Second)
}

// bigPings waits for A to reach B, then pings count times with size-byte
// payloads both ways over IPv4 and IPv6.
func bigPings(t *testing.T, size, count string, nsA, nsB *netns, a, b *node) {
	t.Helper()
	ping(t, nsA, b.v4, 20*time.Second)
	for _, c := range []struct {
		from *netns
		dst  string
	}{{nsA, b.v4}, {nsB, a.v4}, {nsA, b.v6}, {nsB, a.v6}} {
		if out, err := c.from.try("ping", "-c", count, "-i", "0.2", "-W", "2", "-s", size, c.dst); err != nil {
			t.Errorf("ping -s %s %s from %s: %v\n%s", size, c.dst, c.from.name, err, out)
		}
	}
}
