package hostnet

import (
	"net"
	"net/netip"
	"runtime"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
)

// newNetns makes a network namespace held only by the handle the test
// closes: it goes away with the handle, however the test ends.
func newNetns(t *testing.T) netns.NsHandle {
	t.Helper()
	var ns netns.NsHandle
	inNetns(t, netns.None(), func() {
		var err error
		if ns, err = netns.New(); err != nil {
			t.Error(err)
		}
	})
	if !ns.IsOpen() {
		t.FailNow()
	}
	t.Cleanup(func() { ns.Close() })
	return ns
}

// inNetns runs f on a thread in ns (with netns.None, in the thread's own,
// for f to change); sockets f opens stay in ns. A thread that cannot go
// back stays locked, and so ends with the test.
func inNetns(t *testing.T, ns netns.NsHandle, f func()) {
	t.Helper()
	runtime.LockOSThread()
	orig, err := netns.Get()
	if err != nil {
		runtime.UnlockOSThread()
		t.Fatal(err)
	}
	defer orig.Close()
	if ns.IsOpen() {
		if err := netns.Set(ns); err != nil {
			runtime.UnlockOSThread()
			t.Fatal(err)
		}
	}
	f()
	if err := netns.Set(orig); err != nil {
		t.Fatal(err)
	}
	runtime.UnlockOSThread()
}

// peer links the test's namespace (the router) to a new one through a
// veth pair, routerSide to peer0, and gives each end its addresses.
func peer(t *testing.T, routerSide string, routerAddrs []string, peerAddrs []string) (netns.NsHandle, *netlink.Handle) {
	t.Helper()
	ns := newNetns(t)
	h, err := netlink.NewHandleAt(ns)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(h.Close)
	veth := &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: routerSide}, PeerName: "peer0", PeerNamespace: netlink.NsFd(ns)}
	if err := netlink.LinkAdd(veth); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { netlink.LinkDel(veth) })
	for _, a := range routerAddrs {
		addAddr(t, netlink.AddrAdd, veth, a)
	}
	p, err := h.LinkByName("peer0")
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range peerAddrs {
		addAddr(t, h.AddrAdd, p, a)
	}
	// No duplicate address detection for the IPv6 link-local addresses:
	// neighbour discovery, and the first packet with it, would wait for it.
	setSysctl(t, "/proc/sys/net/ipv6/conf/"+routerSide+"/accept_dad", "0")
	inNetns(t, ns, func() { setSysctl(t, "/proc/sys/net/ipv6/conf/peer0/accept_dad", "0") })
	if err := netlink.LinkSetUp(veth); err != nil {
		t.Fatal(err)
	}
	if err := h.LinkSetUp(p); err != nil {
		t.Fatal(err)
	}
	return ns, h
}

// sourceSeen sends a datagram from a new socket in ns to the server's
// address and returns the source address the server sees.
func sourceSeen(t *testing.T, ns netns.NsHandle, server net.PacketConn) netip.Addr {
	t.Helper()
	var c net.Conn
	var err error
	inNetns(t, ns, func() { c, err = net.Dial("udp", server.LocalAddr().String()) })
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Write([]byte("hello")); err != nil {
		t.Fatal(err)
	}
	server.SetReadDeadline(time.Now().Add(5 * time.Second))
	buf := make([]byte, 64)
	_, from, err := server.ReadFrom(buf)
	if err != nil {
		t.Fatalf("server at %s: %v", server.LocalAddr(), err)
	}
	return from.(*net.UDPAddr).AddrPort().Addr().Unmap()
}

// TestMasqueradePath: a client in the mesh's address range sends through
// this namespace, the router, to a server beyond it. With Masquerade the
// server sees the router's address, IPv4 and IPv6; before and after, the
// client's own.
func TestMasqueradePath(t *testing.T) {
	needNetns(t)
	restore, err := EnableForwarding()
	if err != nil {
		t.Fatal(err)
	}
	defer restore()
	client, ch := peer(t, "mesh0", []string{"100.64.0.1/16", "fd5a:7a7a::1/64"}, []string{"100.64.0.2/16", "fd5a:7a7a::2/64"})
	for _, gw := range []string{"100.64.0.1", "fd5a:7a7a::1"} {
		if err := ch.RouteAdd(&netlink.Route{Gw: net.ParseIP(gw)}); err != nil {
			t.Fatalf("client's default route via %s: %v", gw, err)
		}
	}
	server, _ := peer(t, "wan0", []string{"198.51.100.1/24", "2001:db8:1::1/64"}, []string{"198.51.100.2/24", "2001:db8:1::2/64"})
	for _, tc := range []struct{ server, client, router string }{
		{"198.51.100.2", "100.64.0.2", "198.51.100.1"},
		{"2001:db8:1::2", "fd5a:7a7a::2", "2001:db8:1::1"},
	} {
		var conn net.PacketConn
		inNetns(t, server, func() { conn, err = net.ListenPacket("udp", net.JoinHostPort(tc.server, "5000")) })
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		check := func(when, want string) {
			t.Helper()
			got := sourceSeen(t, client, conn)
			if got.String() != want {
				t.Errorf("%s, the server at %s sees %s; want %s", when, tc.server, got, want)
			}
		}
		check("before Masquerade", tc.client)
		undo := installNAT(t, "mesh0", netip.MustParsePrefix("100.64.0.0/16"), netip.MustParsePrefix("fd5a:7a7a::/64"))
		check("with Masquerade", tc.router)
		if err := undo(); err != nil {
			t.Fatal(err)
		}
		check("after undo", tc.client)
	}
}
