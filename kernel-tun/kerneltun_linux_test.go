package kerneltun

import (
	"encoding/binary"
	"errors"
	"net"
	"net/netip"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mynetwork/mynetwork/internal/packet"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// offset is the headroom in front of a packet, as engine.Offset leaves:
// the virtio-net header goes in its last 10 bytes.
const offset = 16

var (
	meshV4 = netip.MustParsePrefix("100.64.7.1/24")
	meshV6 = netip.MustParsePrefix("fd5a:7a7a::1/64")
	peerV4 = netip.MustParseAddr("100.64.7.2")
)

// create makes a device the test closes.
func create(t *testing.T, name string, mtu int) *Device {
	t.Helper()
	d, err := Create(Config{Name: name, MTU: mtu, IPv4: meshV4, IPv6: meshV6})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	return d
}

func linkNames(t *testing.T) []string {
	t.Helper()
	links, err := netlink.LinkList()
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, l := range links {
		names = append(names, l.Attrs().Name)
	}
	return names
}

func openFiles(t *testing.T) int {
	t.Helper()
	fds, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	return len(fds)
}

// TestBadNames: a name the kernel cannot take, or one in use, is refused
// with an error that names it and says why, before anything is opened or
// made. Not as root outside the tests' namespace: were the check gone, a
// name could reach the host's kernel.
func TestBadNames(t *testing.T) {
	if os.Geteuid() == 0 {
		needTUN(t)
	}
	links, files := linkNames(t), openFiles(t)
	for _, tc := range []struct{ name, why string }{
		{"ktt-name-too-long", "not valid"}, // 17 bytes; IFNAMSIZ holds 15 and the NUL
		{"ktt/0", "not valid"},
		{"ktt 0", "not valid"},
		{"ktt:0", "not valid"},
		{".", "not valid"},
		{"..", "not valid"},
		{"lo", "already exists"},
	} {
		for _, mtu := range []int{0, 65000} {
			_, err := Create(Config{Name: tc.name, MTU: mtu, IPv4: meshV4})
			if err == nil || !strings.Contains(err.Error(), tc.name) || !strings.Contains(err.Error(), tc.why) {
				t.Errorf("Create(%q) at MTU %d: %v; want an error naming it, %q", tc.name, mtu, err, tc.why)
			}
		}
	}
	if after := linkNames(t); !slices.Equal(links, after) {
		t.Errorf("interfaces were %v, are %v", links, after)
	}
	if after := openFiles(t); after != files {
		t.Errorf("%d files open before, %d after", files, after)
	}
}

func TestIPv4Required(t *testing.T) {
	_, err := Create(Config{Name: "ktt0"})
	if err == nil || !strings.Contains(err.Error(), "IPv4") {
		t.Fatalf("Create without an IPv4 address: %v", err)
	}
}

// TestMTUAndOffload: below MTU 16000 the TUN has the virtio-net header and
// reads hand over TCP super-packets (ReadSize 64 KiB, one packet a read);
// from 16000 it has neither and a read is at most the MTU.
func TestMTUAndOffload(t *testing.T) {
	needTUN(t)
	for _, tc := range []struct {
		mtu, wantMTU, readSize int
		virtio                 bool
	}{
		{0, DefaultMTU, 65535, true},
		{1280, 1280, 65535, true},
		{15999, 15999, 65535, true},
		{16000, 16000, 16000, false},
		{65000, 65000, 65000, false},
	} {
		d := create(t, "ktt0", tc.mtu)
		if mtu, err := d.MTU(); err != nil || mtu != tc.wantMTU {
			t.Errorf("MTU %d: device says %d, %v; want %d", tc.mtu, mtu, err, tc.wantMTU)
		}
		if d.VirtioHeaders() != tc.virtio || d.ReadSize() != tc.readSize || d.BatchSize() != 1 {
			t.Errorf("MTU %d: VirtioHeaders %v, ReadSize %d, BatchSize %d; want %v, %d, 1",
				tc.mtu, d.VirtioHeaders(), d.ReadSize(), d.BatchSize(), tc.virtio, tc.readSize)
		}
		link, err := netlink.LinkByName("ktt0")
		if err != nil {
			t.Fatal(err)
		}
		tt, ok := link.(*netlink.Tuntap)
		if !ok {
			t.Fatalf("ktt0 is a %s", link.Type())
		}
		if tt.Mode != netlink.TUNTAP_MODE_TUN || tt.MTU != tc.wantMTU || tt.Flags&netlink.TUNTAP_NO_PI == 0 ||
			(tt.Flags&netlink.TUNTAP_VNET_HDR != 0) != tc.virtio || tt.Flags&netlink.TUNTAP_MULTI_QUEUE != 0 {
			t.Errorf("MTU %d: the kernel's ktt0 has mode %v, MTU %d, flags %#x", tc.mtu, tt.Mode, tt.MTU, tt.Flags)
		}
		if err := d.Close(); err != nil {
			t.Fatal(err)
		}
	}
}

// TestAddressesAndRoutes: the interface is up with both addresses, and a
// route added and deleted goes in and out of the kernel's table.
func TestAddressesAndRoutes(t *testing.T) {
	needTUN(t)
	d := create(t, "ktt0", 0)
	if d.Name() != "ktt0" {
		t.Errorf("Name() = %q", d.Name())
	}
	link, err := netlink.LinkByName("ktt0")
	if err != nil {
		t.Fatal(err)
	}
	if link.Attrs().Flags&net.FlagUp == 0 {
		t.Error("ktt0 is down")
	}
	addrs, err := netlink.AddrList(link, netlink.FAMILY_ALL)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, a := range addrs {
		got = append(got, a.IPNet.String())
	}
	for _, want := range []string{meshV4.String(), meshV6.String()} {
		if !slices.Contains(got, want) {
			t.Errorf("ktt0 has %v, not %s", got, want)
		}
	}

	lan := netip.MustParsePrefix("10.77.0.0/24")
	hasRoute := func() bool {
		routes, err := netlink.RouteList(link, netlink.FAMILY_V4)
		if err != nil {
			t.Fatal(err)
		}
		return slices.ContainsFunc(routes, func(r netlink.Route) bool { return r.Dst != nil && r.Dst.String() == lan.String() })
	}
	for range 2 { // the second is a no-op
		if err := d.AddRoute(lan); err != nil {
			t.Fatal(err)
		}
	}
	if !hasRoute() {
		t.Fatal("no route after AddRoute")
	}
	for range 2 {
		if err := d.DelRoute(lan); err != nil {
			t.Fatal(err)
		}
	}
	if hasRoute() {
		t.Fatal("route left after DelRoute")
	}
	if err := d.AddRoute(lan); err != nil {
		t.Fatal(err)
	}
	// Close takes it away with the interface.
	d.Close()
	routes, err := netlink.RouteListFiltered(netlink.FAMILY_V4, &netlink.Route{Dst: ipNet(lan)}, netlink.RT_FILTER_DST)
	if err != nil || len(routes) != 0 {
		t.Fatalf("after Close: routes to %s: %v, %v", lan, routes, err)
	}
}

// TestCloseAndCreateAgain: Close removes the interface, so the name is
// free for the next Create, as when the daemon restarts; a second device
// by the same name is refused while the first lives.
func TestCloseAndCreateAgain(t *testing.T) {
	needTUN(t)
	for _, mtu := range []int{0, 65000} {
		d := create(t, "ktt0", mtu)
		if _, err := Create(Config{Name: "ktt0", MTU: mtu, IPv4: meshV4}); err == nil || !strings.Contains(err.Error(), "ktt0 already exists") {
			t.Fatalf("MTU %d: second Create of ktt0: %v", mtu, err)
		}
		if err := d.Close(); err != nil {
			t.Fatal(err)
		}
		if err := d.Close(); err != nil {
			t.Fatalf("second Close: %v", err)
		}
		if _, err := netlink.LinkByName("ktt0"); err == nil {
			t.Fatalf("MTU %d: ktt0 is still there after Close", mtu)
		}
		create(t, "ktt0", mtu).Close()
	}
}

// TestCloseUnblocksRead: the engine's reader sits in Read; Close must
// return it with an error the engine takes for a closed device
// (os.ErrClosed), and so must any Read after.
func TestCloseUnblocksRead(t *testing.T) {
	needTUN(t)
	for _, mtu := range []int{0, 65000} {
		d := create(t, "ktt0", mtu)
		bufs, sizes := [][]byte{make([]byte, offset+65535)}, []int{0}
		done := make(chan error, 1)
		go func() {
			for { // past what the kernel sends as the link comes up
				if _, err := d.Read(bufs, sizes, offset); err != nil {
					done <- err
					return
				}
			}
		}()
		time.Sleep(50 * time.Millisecond) // most likely blocked by now; either way Read must end
		d.Close()
		select {
		case err := <-done:
			if !errors.Is(err, os.ErrClosed) {
				t.Errorf("MTU %d: Read during Close: %v, want os.ErrClosed", mtu, err)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("MTU %d: Read still blocked 5 s after Close", mtu)
		}
		if _, err := d.Read(bufs, sizes, offset); !errors.Is(err, os.ErrClosed) {
			t.Errorf("MTU %d: Read after Close: %v, want os.ErrClosed", mtu, err)
		}
	}
}

// reader reads packets from d into a channel until d is closed, which the
// test's cleanup does.
func reader(t *testing.T, d *Device) <-chan []byte {
	t.Helper()
	ch := make(chan []byte, 64)
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer close(ch)
		bufs, sizes := [][]byte{make([]byte, offset+d.ReadSize())}, []int{0}
		for {
			if _, err := d.Read(bufs, sizes, offset); err != nil {
				return
			}
			// With the header: it and the packet; without, the packet.
			start := offset
			if d.VirtioHeaders() {
				start -= packet.VirtioHdrLen
			}
			ch <- slices.Clone(bufs[0][start : offset+sizes[0]])
		}
	}()
	t.Cleanup(func() { d.Close(); <-done })
	return ch
}

// next returns the next IPv4 packet of proto from ch (other packets, such
// as IPv6 router solicitations, are passed over), with its virtio-net
// header split off where hdr is true.
func next(t *testing.T, ch <-chan []byte, hdr bool, proto byte) (packet.VirtioHeader, []byte) {
	t.Helper()
	timeout := time.After(5 * time.Second)
	for {
		select {
		case b, ok := <-ch:
			if !ok {
				t.Fatal("device closed")
			}
			var h packet.VirtioHeader
			if hdr {
				h, b = packet.ParseVirtio(b), b[packet.VirtioHdrLen:]
			}
			if len(b) >= 20 && b[0]>>4 == 4 && b[9] == proto {
				return h, b
			}
		case <-timeout:
			t.Fatal("no packet in 5 s")
		}
	}
}

func checksum(b []byte) uint16 {
	var s uint32
	for i := 0; i+1 < len(b); i += 2 {
		s += uint32(binary.BigEndian.Uint16(b[i:]))
	}
	if len(b)%2 == 1 {
		s += uint32(b[len(b)-1]) << 8
	}
	for s > 0xffff {
		s = s>>16 + s&0xffff
	}
	return ^uint16(s)
}

// echoRequest is an ICMP echo request from peerV4 to this node.
func echoRequest(id uint16) []byte {
	p := make([]byte, 20+8+4)
	p[0], p[8], p[9] = 0x45, 64, unix.IPPROTO_ICMP
	binary.BigEndian.PutUint16(p[2:], uint16(len(p)))
	src, dst := peerV4.As4(), meshV4.Addr().As4()
	copy(p[12:], src[:])
	copy(p[16:], dst[:])
	binary.BigEndian.PutUint16(p[10:], checksum(p[:20]))
	icmp := p[20:]
	icmp[0] = 8
	binary.BigEndian.PutUint16(icmp[4:], id)
	copy(icmp[8:], "ktt!")
	binary.BigEndian.PutUint16(icmp[2:], checksum(icmp))
	return p
}

// TestPacketsBothWays: a packet written goes to the kernel, whose answer
// comes back out of a read, with the header (no offload for ICMP) or
// without, at both MTUs.
func TestPacketsBothWays(t *testing.T) {
	needTUN(t)
	for _, mtu := range []int{0, 65000} {
		d := create(t, "ktt0", mtu)
		ch := reader(t, d)
		buf := make([]byte, offset+64)
		n := copy(buf[offset:], echoRequest(uint16(mtu)))
		// The header in front, where VirtioHeaders says so, is all zero:
		// a whole packet with its checksums.
		if _, err := d.Write([][]byte{buf[:offset+n]}, offset); err != nil {
			t.Fatalf("MTU %d: Write: %v", mtu, err)
		}
		h, p := next(t, ch, d.VirtioHeaders(), unix.IPPROTO_ICMP)
		if h != (packet.VirtioHeader{}) {
			t.Errorf("MTU %d: the reply's header is %+v, want none of its fields set", mtu, h)
		}
		if p[20] != 0 || binary.BigEndian.Uint16(p[24:]) != uint16(mtu) || netip.AddrFrom4([4]byte(p[16:20])) != peerV4 {
			t.Errorf("MTU %d: not the echo reply to the peer: % x", mtu, p)
		}
		d.Close()
	}
}

// TestOffloadsNegotiated: the TUN takes partial checksums and TCP
// segmentation offload but not UDP's (tcpOffloadOnly): a UDP socket's
// GSO send of four segments reaches a read as four packets with partial
// checksums, not one super-packet.
func TestOffloadsNegotiated(t *testing.T) {
	needTUN(t)
	d := create(t, "ktt0", 0)
	ch := reader(t, d)
	c, err := net.DialUDP("udp4", nil, net.UDPAddrFromAddrPort(netip.AddrPortFrom(peerV4, 7777)))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	const seg = 1000
	sc, err := c.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var serr error
	sc.Control(func(fd uintptr) { serr = unix.SetsockoptInt(int(fd), unix.IPPROTO_UDP, unix.UDP_SEGMENT, seg) })
	if serr != nil {
		t.Fatalf("UDP_SEGMENT: %v", serr)
	}
	if _, err := c.Write(make([]byte, 4*seg)); err != nil {
		t.Fatal(err)
	}
	for i := range 4 {
		h, p := next(t, ch, true, unix.IPPROTO_UDP)
		if h.GSOType != packet.GSONone || len(p) != 20+8+seg {
			t.Fatalf("packet %d: %d bytes with header %+v, want a %d-byte segment without GSO", i, len(p), h, 20+8+seg)
		}
		if h.Flags&packet.NeedsCsum == 0 || h.CsumStart != 20 || h.CsumOffset != 6 {
			t.Errorf("packet %d: header %+v, want the UDP checksum left partial", i, h)
		}
	}
}
