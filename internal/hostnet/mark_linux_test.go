package hostnet

import (
	"context"
	"net"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vishvananda/netlink"

	"golang.org/x/sys/unix"
)

// socketMark reads a socket's SO_MARK back.
func socketMark(t *testing.T, c syscall.Conn) int {
	t.Helper()
	raw, err := c.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var mark int
	if cerr := raw.Control(func(fd uintptr) { mark, err = unix.GetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_MARK) }); cerr != nil {
		t.Fatal(cerr)
	}
	if err != nil {
		t.Fatal(err)
	}
	return mark
}

// loUp sets the loopback interface up: a new namespace's is down.
func loUp(t *testing.T) {
	t.Helper()
	if err := netlink.LinkSetUp(&netlink.Device{LinkAttrs: netlink.LinkAttrs{Name: "lo"}}); err != nil {
		t.Fatal(err)
	}
}

// TestMarkControl: listeners and dialers given MarkControl have the mark.
func TestMarkControl(t *testing.T) {
	needNetns(t)
	loUp(t)
	lc := net.ListenConfig{Control: MarkControl(testMark)}
	ln, err := lc.Listen(context.Background(), "tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	pc, err := lc.ListenPacket(context.Background(), "udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	d := net.Dialer{Control: MarkControl(testMark), Timeout: 5 * time.Second}
	c, err := d.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for name, sc := range map[string]syscall.Conn{
		"tcp listener": ln.(*net.TCPListener), "udp listener": pc.(*net.UDPConn), "tcp dial": c.(*net.TCPConn),
	} {
		if got := socketMark(t, sc); got != testMark {
			t.Errorf("%s: SO_MARK is %#x; want %#x", name, got, testMark)
		}
	}
}

// TestMarkControlRoutes: with ExitRoutes installed, a socket with the mark
// takes the main table's route, so the LAN's source address; one without
// takes the exit interface's.
func TestMarkControlRoutes(t *testing.T) {
	needNetns(t)
	exitSetup(t)
	undo, err := testRoutes(false).Install()
	if err != nil {
		t.Fatal(err)
	}
	defer undo()
	for _, tc := range []struct {
		name, dst, src string
		control        func(network, address string, c syscall.RawConn) error
	}{
		{"IPv4 marked", "192.0.2.1:9", "10.9.0.1", MarkControl(testMark)},
		{"IPv4 unmarked", "192.0.2.1:9", "100.64.0.1", nil},
		{"IPv6 marked", "[2001:db8::1]:9", "fd00:9::1", MarkControl(testMark)},
		{"IPv6 unmarked", "[2001:db8::1]:9", "fd5a::1", nil},
	} {
		d := net.Dialer{Control: tc.control}
		c, err := d.Dial("udp", tc.dst) // connect: the kernel picks the route and the source
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if got := c.LocalAddr().(*net.UDPAddr).IP.String(); got != tc.src {
			t.Errorf("%s: the socket to %s has source %s; want %s", tc.name, tc.dst, got, tc.src)
		}
		c.Close()
	}
}

// TestMarkControlNeedsCapNetAdmin: without CAP_NET_ADMIN (and
// CAP_NET_RAW, which newer kernels take too) the error says what it takes.
// Capabilities are a thread's: this one drops them from its effective set,
// and takes them back from its permitted set.
func TestMarkControlNeedsCapNetAdmin(t *testing.T) {
	needNetns(t)
	loUp(t)
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	raw, err := pc.(*net.UDPConn).SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	runtime.LockOSThread()
	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	var caps [2]unix.CapUserData
	if err := unix.Capget(&hdr, &caps[0]); err != nil {
		runtime.UnlockOSThread()
		t.Fatal(err)
	}
	held := caps[0].Effective
	caps[0].Effective &^= 1<<unix.CAP_NET_ADMIN | 1<<unix.CAP_NET_RAW
	if err := unix.Capset(&hdr, &caps[0]); err != nil {
		runtime.UnlockOSThread()
		t.Fatal(err)
	}
	err = MarkControl(testMark)("udp", "127.0.0.1:0", raw)
	caps[0].Effective = held
	if cerr := unix.Capset(&hdr, &caps[0]); cerr != nil {
		t.Fatal(cerr) // the thread stays locked, and ends with the test
	}
	runtime.UnlockOSThread()
	want := "set socket mark 0x1234 on udp 127.0.0.1:0: needs CAP_NET_ADMIN or CAP_NET_RAW (run as root)"
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("MarkControl without CAP_NET_ADMIN: %v; want %q", err, want)
	}
}
