package engine

import (
	"bytes"
	"context"
	"encoding/binary"
	"log/slog"
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/mynetwork/mynetwork/internal/engine/enginetest"
	"github.com/mynetwork/mynetwork/internal/packet"
	"golang.zx2c4.com/wireguard/tun/tuntest"
)

// fuzzIPv4Packet returns a 20-byte IPv4 header (version 4, IHL 5) from src to
// dst followed by payload; no checksum, which the engine does not check.
func fuzzIPv4Packet(src, dst netip.Addr, payload ...byte) []byte {
	h := make([]byte, 20, 20+len(payload))
	h[0] = 0x45
	h[2], h[3] = byte((20+len(payload))>>8), byte(20+len(payload))
	h[8], h[9] = 64, 17
	s, d := src.As4(), dst.As4()
	copy(h[12:16], s[:])
	copy(h[16:20], d[:])
	return append(h, payload...)
}

// fuzzIPv6Packet returns a 40-byte IPv6 header from src to dst followed by payload.
func fuzzIPv6Packet(src, dst netip.Addr, payload ...byte) []byte {
	h := make([]byte, 40, 40+len(payload))
	h[0] = 0x60
	h[4], h[5] = byte(len(payload)>>8), byte(len(payload))
	h[6], h[7] = 17, 64
	s, d := src.As16(), dst.As16()
	copy(h[8:24], s[:])
	copy(h[24:40], d[:])
	return append(h, payload...)
}

// fuzzPacketSeeds are the packets both fuzz targets start from: each version
// at and around its minimum length, other versions, and sources inside
// and outside fuzzRoutes.
var fuzzPacketSeeds = []struct {
	name string
	pkt  []byte
}{
	{"empty", nil},
	{"version nibble only", []byte{0x40}},
	{"ipv4 one byte short", fuzzIPv4Packet(ipB, ipA)[:19]},
	{"ipv4 minimal header", fuzzIPv4Packet(ipB, ipA)},
	{"ipv4 ping", tuntest.Ping(ipA, ipB)},
	{"ipv4 from a routed subnet", fuzzIPv4Packet(netip.MustParseAddr("10.9.200.1"), ipA, 1, 2, 3)},
	{"ipv4 from the longer prefix", fuzzIPv4Packet(netip.MustParseAddr("10.9.5.7"), ipA)},
	{"ipv4 from the default route", fuzzIPv4Packet(netip.MustParseAddr("192.0.2.1"), ipA)},
	{"ipv6 one byte short", fuzzIPv6Packet(netip.MustParseAddr("fd00:b::1"), netip.MustParseAddr("fd00::1"))[:39]},
	{"ipv6 minimal header", fuzzIPv6Packet(netip.MustParseAddr("fd00:b::1"), netip.MustParseAddr("fd00::1"))},
	{"ipv6 from the IPv6 subnet of C", fuzzIPv6Packet(netip.MustParseAddr("fd00:c::9"), netip.MustParseAddr("fd00::1"), 0xff)},
	{"ipv6 with an IPv4-mapped source", fuzzIPv6Packet(netip.MustParseAddr("::ffff:100.64.0.2"), netip.MustParseAddr("fd00::1"))},
	{"version 5", append([]byte{0x50}, make([]byte, 40)...)},
	{"version 0", make([]byte, 60)},
	{"ipv4 version, ipv6 length", append([]byte{0x45}, make([]byte, 39)...)},
}

// FuzzPacketAddrs checks addrs against the header layouts: it never
// panics; ok holds exactly for a version-4 packet of at least 20 bytes or
// a version-6 packet of at least 40; then src and dst are the address
// fields (bytes 12–19, or 8–39) and of the packet's family, and addrs
// left the packet alone.
func FuzzPacketAddrs(f *testing.F) {
	for _, s := range fuzzPacketSeeds {
		f.Add(s.pkt)
	}
	f.Fuzz(func(t *testing.T, pkt []byte) {
		orig := bytes.Clone(pkt)
		src, dst, ok := addrs(pkt)
		if !bytes.Equal(pkt, orig) {
			t.Fatal("addrs changed the packet")
		}
		version := -1
		if len(pkt) > 0 {
			version = int(pkt[0] >> 4)
		}
		switch {
		case version == 4 && len(pkt) >= 20:
			if !ok || !src.Is4() || !dst.Is4() ||
				!bytes.Equal(src.AsSlice(), pkt[12:16]) || !bytes.Equal(dst.AsSlice(), pkt[16:20]) {
				t.Fatalf("addrs(% x) = %v %v %v, want the IPv4 header's addresses", pkt, src, dst, ok)
			}
		case version == 6 && len(pkt) >= 40:
			if !ok || !src.Is6() || !dst.Is6() ||
				!bytes.Equal(src.AsSlice(), pkt[8:24]) || !bytes.Equal(dst.AsSlice(), pkt[24:40]) {
				t.Fatalf("addrs(% x) = %v %v %v, want the IPv6 header's addresses", pkt, src, dst, ok)
			}
		default:
			if ok || src.IsValid() || dst.IsValid() {
				t.Fatalf("addrs(% x) = %v %v %v, want nothing", pkt, src, dst, ok)
			}
		}
	})
}

// TestPacketAddrsDoesNotAllocate pins the "without allocating" promise of
// addrs, which runs for every packet in both directions.
func TestPacketAddrsDoesNotAllocate(t *testing.T) {
	v4, v6 := tuntest.Ping(ipA, ipB), fuzzIPv6Packet(netip.MustParseAddr("fd00::2"), netip.MustParseAddr("fd00::1"))
	if n := testing.AllocsPerRun(100, func() { addrs(v4); addrs(v6); addrs(nil) }); n != 0 {
		t.Errorf("addrs allocates %v times per call", n)
	}
}

// fuzzRoutes is the route table of the engine under FuzzEngineInbound:
// two peers, with host routes, subnets, a longer prefix of C inside a
// subnet of B, and an IPv4 default route to C. idUnrouted has no route.
var fuzzRoutes = []Route{
	{pfx("100.64.0.2/32"), idB},
	{pfx("10.9.0.0/16"), idB},
	{pfx("fd00:b::/64"), idB},
	{pfx("100.64.0.3/32"), idC},
	{pfx("10.9.5.0/24"), idC},
	{pfx("fd00:c::/48"), idC},
	{pfx("0.0.0.0/0"), idC},
}

// fuzzLocal is what A delivers: its own addresses and a network it serves.
var fuzzLocal = []netip.Prefix{pfx("100.64.0.1/32"), pfx("fd00::1/128"), pfx("192.168.7.0/24")}

var idUnrouted = peer.ID("node-unrouted")

// fuzzSenders are the peers a fuzzed packet may come from, by index.
var fuzzSenders = []peer.ID{idB, idC, idUnrouted}

// fuzzRoutedTo is the longest-prefix match over fuzzRoutes, by brute force:
// the peer that src is routed to, or "" if none. It is the oracle for
// Table, written without the Table's data structures.
func fuzzRoutedTo(src netip.Addr) peer.ID {
	best, bits := peer.ID(""), -1
	for _, r := range fuzzRoutes {
		if r.Prefix.Contains(src) && r.Prefix.Bits() > bits {
			best, bits = r.Peer, r.Prefix.Bits()
		}
	}
	return best
}

// inboundRig is one engine that FuzzEngineInbound reuses for every input
// of a process: inputs run one at a time, and each ends with the engine
// idle again (see check), so the next one starts from a known state.
type inboundRig struct {
	tun    *tuntest.ChannelTUN
	tr     *enginetest.MemTransport
	eng    *Engine
	seq    uint32 // numbers the markers, so that no input can pass for one
	maxPkt int    // MemTransport copies at most this much of a packet
}

// rxCounts are the counters an inbound packet can move, as they stood at
// one moment.
type rxCounts struct {
	RxPackets, RxBytes                       uint64
	DropSource, DropInvalid, DropDestination uint64
	DropDevice, DropNoRoute                  uint64
}

func (r *inboundRig) counts() rxCounts {
	c := &r.eng.Counters
	return rxCounts{
		RxPackets: c.RxPackets.Load(), RxBytes: c.RxBytes.Load(),
		DropSource: c.DropSource.Load(), DropInvalid: c.DropInvalid.Load(), DropDestination: c.DropDestination.Load(),
		DropDevice: c.DropDevice.Load(), DropNoRoute: c.DropNoRoute.Load(),
	}
}

// newInboundRig starts an engine for node A over a channel TUN and a
// MemTransport, with fuzzRoutes and a logger that discards (drops are
// logged); tb's cleanup stops it and checks Run.
func newInboundRig(tb testing.TB) *inboundRig {
	ctx, cancel := context.WithCancel(context.Background())
	r := &inboundRig{tun: tuntest.NewChannelTUN(), tr: enginetest.NewMesh().Join(idA)}
	eng, err := New(r.tun.TUN(), r.tr, NewTable(fuzzRoutes, fuzzLocal...), slog.New(slog.DiscardHandler))
	if err != nil {
		tb.Fatal(err)
	}
	r.eng = eng
	r.maxPkt = BufferSize(r.tun.TUN(), r.tr) - packet.Headroom
	done := make(chan error, 1)
	go func() { done <- eng.Run(ctx) }()
	tb.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			tb.Errorf("Run: %v", err)
		}
	})
	return r
}

// check injects pkt as sent by from, then a marker from B (an IPv4 packet
// with B's own address as source, always delivered), and reads
// the device until the marker comes out. The engine handles a peer's
// packets in order, one batch of one at a time (the channel TUN's batch
// size is 1), so by then pkt has been delivered (before the marker) or
// dropped, and its counters are final. It checks that pkt reached the
// device, unchanged, exactly when it is IPv4 or IPv6 with a source routed
// to from, that the matching counter moved by one, and that
// RxPackets + DropSource + DropInvalid grew by the two packets injected.
func (r *inboundRig) check(t *testing.T, from peer.ID, pkt []byte) {
	t.Helper()
	before := r.counts()
	got := pkt[:min(len(pkt), r.maxPkt)] // what the MemTransport hands over
	src, dst, valid := fuzzHeaderAddrs(got)
	allowed := valid && fuzzRoutedTo(src) == from
	deliver := allowed && slices.ContainsFunc(fuzzLocal, func(p netip.Prefix) bool { return p.Contains(dst) })

	r.seq++
	marker := binary.BigEndian.AppendUint32(fuzzIPv4Packet(ipB, ipA, 'm', 'a', 'r', 'k'), r.seq)
	r.tr.Inject(from, pkt)
	r.tr.Inject(idB, marker)
	timeout := time.NewTimer(5 * time.Second)
	defer timeout.Stop()
	var out [][]byte
	for {
		select {
		case p := <-r.tun.Inbound:
			out = append(out, p)
		case <-timeout.C:
			t.Fatalf("the marker did not come out; got %d packets", len(out))
		}
		if len(out) == 1 && deliver && !bytes.Equal(out[0], marker) {
			continue // pkt came out; the marker follows
		}
		break
	}
	switch {
	case deliver && (len(out) != 2 || !bytes.Equal(out[0], got)):
		t.Fatalf("packet from %s (src %v) not delivered whole: device got % x", from, src, out)
	case !deliver && len(out) != 1:
		t.Fatalf("packet from %s (src %v, valid %v) delivered, routed to %q", from, src, valid, fuzzRoutedTo(src))
	case !bytes.Equal(out[len(out)-1], marker):
		t.Fatalf("device got % x, want the marker last", out)
	}

	// The device write returns once the marker is read, and only then are
	// RxPackets and RxBytes added, one after the other: wait for both, so
	// that the next input starts from settled counters.
	var outBytes int
	for _, p := range out {
		outBytes += len(p)
	}
	wantPkts, wantBytes := before.RxPackets+uint64(len(out)), before.RxBytes+uint64(outBytes)
	for deadline := time.Now().Add(5 * time.Second); r.eng.Counters.RxPackets.Load() < wantPkts || r.eng.Counters.RxBytes.Load() < wantBytes; {
		if time.Now().After(deadline) {
			t.Fatalf("RxPackets %d, RxBytes %d; want %d, %d", r.eng.Counters.RxPackets.Load(), r.eng.Counters.RxBytes.Load(), wantPkts, wantBytes)
		}
		time.Sleep(10 * time.Microsecond)
	}
	after := r.counts()
	rx, drops, invalid := after.RxPackets-before.RxPackets, after.DropSource-before.DropSource, after.DropInvalid-before.DropInvalid
	dest := after.DropDestination - before.DropDestination
	if rx+drops+invalid+dest != 2 {
		t.Fatalf("counters moved by rx %d + source %d + invalid %d + destination %d, want 2 packets in all", rx, drops, invalid, dest)
	}
	switch {
	case !valid && invalid != 1:
		t.Fatalf("invalid packet counted as rx %d, source %d, invalid %d, destination %d", rx, drops, invalid, dest)
	case valid && !allowed && drops != 1:
		t.Fatalf("spoofed packet counted as rx %d, source %d, invalid %d, destination %d", rx, drops, invalid, dest)
	case allowed && !deliver && dest != 1:
		t.Fatalf("packet to %v counted as rx %d, source %d, invalid %d, destination %d", dst, rx, drops, invalid, dest)
	}
	if n := after.RxBytes - before.RxBytes; n != uint64(outBytes) {
		t.Fatalf("RxBytes moved by %d for %d packets of %d bytes", n, len(out), outBytes)
	}
	if after.DropDevice != before.DropDevice || after.DropNoRoute != before.DropNoRoute {
		t.Fatalf("unexpected drops: %+v", after)
	}
}

// fuzzHeaderAddrs reads the source and destination addresses the way
// RFC 791 and RFC 8200 place them, independently of addrs.
func fuzzHeaderAddrs(pkt []byte) (src, dst netip.Addr, ok bool) {
	switch {
	case len(pkt) >= 20 && pkt[0]&0xf0 == 0x40:
		return netip.AddrFrom4([4]byte(pkt[12:16])), netip.AddrFrom4([4]byte(pkt[16:20])), true
	case len(pkt) >= 40 && pkt[0]&0xf0 == 0x60:
		return netip.AddrFrom16([16]byte(pkt[8:24])), netip.AddrFrom16([16]byte(pkt[24:40])), true
	}
	return netip.Addr{}, netip.Addr{}, false
}

// FuzzEngineInbound runs the engine's inbound path on fuzzed packets from
// one of B, C (configured peers) and idUnrouted, through the public API:
// MemTransport.Inject in, the channel TUN out. See inboundRig.check for
// the properties.
func FuzzEngineInbound(f *testing.F) {
	for i, s := range fuzzPacketSeeds {
		f.Add(byte(i), s.pkt)
	}
	rig := newInboundRig(f)
	f.Fuzz(func(t *testing.T, sender byte, pkt []byte) {
		rig.check(t, fuzzSenders[int(sender)%len(fuzzSenders)], pkt)
	})
}
