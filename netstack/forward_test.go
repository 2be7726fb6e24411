package netstack

import (
	"context"
	"errors"
	"io"
	"net"
	"net/netip"
	"os"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"
	"gvisor.dev/gvisor/pkg/tcpip"
)

// The tests below run stack A as a peer and stack B as a subnet router for
// the TEST-NET prefixes 198.51.100.0/24 and 2001:db8::/32. B's dial function
// takes every destination to a server on the loopback interface, so nothing
// ever leaves for a real TEST-NET address.

var (
	fwdNet4 = netip.MustParsePrefix("198.51.100.0/24")
	fwdNet6 = netip.MustParsePrefix("2001:db8::/32")
)

func forwardMatch(a netip.Addr) bool { return fwdNet4.Contains(a) || fwdNet6.Contains(a) }

// hostDialer is B's dial function: it records what B asked for and dials
// the loopback server for that network instead.
type hostDialer struct {
	tcp, udp string // loopback servers' addresses
	mu       sync.Mutex
	asked    []string // "network address" per call
}

func (d *hostDialer) dial(ctx context.Context, network, address string) (net.Conn, error) {
	d.mu.Lock()
	d.asked = append(d.asked, network+" "+address)
	d.mu.Unlock()
	to := d.tcp
	if network == "udp" {
		to = d.udp
	}
	var nd net.Dialer
	return nd.DialContext(ctx, network, to)
}

func (d *hostDialer) calls() []string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]string(nil), d.asked...)
}

// hostTCP starts a loopback TCP server running handle on each connection
// and returns its address; the test waits for it at cleanup.
func hostTCP(t *testing.T, handle func(*net.TCPConn)) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	serve(t, ln, func(c net.Conn) { handle(c.(*net.TCPConn)) })
	return ln.Addr().String()
}

// hostUDP starts a loopback UDP server that answers each datagram with
// "re:" and the datagram, and returns its address.
func hostUDP(t *testing.T) string {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	serveUDP(t, pc)
	return pc.LocalAddr().String()
}

func echo(c *net.TCPConn) { io.Copy(c, c) }

// forwardPair builds A and B with B forwarding to the loopback servers.
func forwardPair(t *testing.T, tcpAddr, udpAddr string) (a, b *Stack, d *hostDialer) {
	t.Helper()
	a, b = pair(t, pairOpts{tune: defaultTuning})
	d = &hostDialer{tcp: tcpAddr, udp: udpAddr}
	if err := b.Forward(forwardMatch, d.dial); err != nil {
		t.Fatal(err)
	}
	return a, b, d
}

// tryDial dials through s with a short timeout.
func tryDial(s *Stack, network, addr string, timeout time.Duration) (net.Conn, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	return s.DialContext(ctx, network, addr)
}

// waitStats polls s's forwarding counters until ok accepts them.
func waitStats(t *testing.T, s *Stack, ok func(ForwardStats) bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !ok(s.ForwardStats()) {
		if time.Now().After(deadline) {
			t.Fatalf("forward stats %+v", s.ForwardStats())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// lower sets *v to low for the rest of the test.
func lower[T any](t *testing.T, v *T, low T) {
	old := *v
	*v = low
	t.Cleanup(func() { *v = old })
}

// exchangeUDP sends msg from pc to to and returns the reply and its
// sender; ok is false if none came within wait.
func exchangeUDP(t *testing.T, pc net.PacketConn, to, msg string, wait time.Duration) (reply string, from netip.AddrPort, ok bool) {
	t.Helper()
	if _, err := pc.WriteTo([]byte(msg), net.UDPAddrFromAddrPort(netip.MustParseAddrPort(to))); err != nil {
		t.Fatal(err)
	}
	pc.SetReadDeadline(time.Now().Add(wait))
	buf := make([]byte, 2048)
	n, addr, err := pc.ReadFrom(buf)
	if err != nil {
		return "", netip.AddrPort{}, false
	}
	return string(buf[:n]), addr.(*net.UDPAddr).AddrPort(), true
}

func listenUDP(t *testing.T, s *Stack) net.PacketConn {
	t.Helper()
	pc, err := s.ListenUDP(0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pc.Close() })
	return pc
}

// TestForwardTCPEcho checks connections to forwarded addresses reach the
// host's server through B's dial, while B's own listener on the same port
// keeps its own address's connections and takes no forwarded ones.
func TestForwardTCPEcho(t *testing.T) {
	a, b, d := forwardPair(t, hostTCP(t, echo), "")
	ln, err := b.ListenTCP(80)
	if err != nil {
		t.Fatal(err)
	}
	serve(t, ln, func(c net.Conn) { io.WriteString(c, "B itself") })
	tests := []struct{ name, addr string }{
		{"ipv4", "198.51.100.7:80"},
		{"ipv6", "[2001:db8::7]:80"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			waitStats(t, b, func(s ForwardStats) bool { return s.TCP == 0 })
			c := dial(t, a, "tcp", tt.addr)
			for _, msg := range []string{"hello", strings.Repeat("subnet ", 100000)} {
				roundTrip(t, c, msg)
			}
			if got := d.calls(); got[len(got)-1] != "tcp "+tt.addr {
				t.Errorf("B dialed %q, want %q", got[len(got)-1], "tcp "+tt.addr)
			}
			if st := b.ForwardStats(); st.TCP != 1 {
				t.Errorf("%d TCP connections forwarded, want 1", st.TCP)
			}
		})
	}
	t.Run("own address", func(t *testing.T) {
		c := dial(t, a, "tcp", "100.64.0.2:80")
		c.SetDeadline(time.Now().Add(5 * time.Second))
		if got, err := io.ReadAll(c); string(got) != "B itself" {
			t.Errorf("B's own listener sent %q, %v", got, err)
		}
	})
	waitStats(t, b, func(s ForwardStats) bool { return s.TCP == 0 })
}

// TestForwardTuning checks forwarded connections get the buffers of the
// stack's own (gVisor's forwarder would give them 1 MiB to receive), and
// keepalives.
func TestForwardTuning(t *testing.T) {
	a, b, _ := forwardPair(t, hostTCP(t, echo), "")
	dial(t, a, "tcp", "198.51.100.7:80")
	// B tracks the connection once the peer's last ACK of the
	// handshake is in, a moment after A's dial returns.
	f := b.fwd.Load()
	waitStats(t, b, func(ForwardStats) bool {
		f.mu.Lock()
		defer f.mu.Unlock()
		return len(f.open) == 2 // the peer's connection and the host's
	})
	eps := f.st.RegisteredEndpoints()
	if len(eps) != 1 {
		t.Fatalf("%d endpoints in the forwarding stack, want 1", len(eps))
	}
	opts := eps[0].(tcpip.Endpoint).SocketOptions()
	if !opts.GetKeepAlive() {
		t.Error("keepalive is off")
	}
	if got, want := opts.GetReceiveBufferSize(), int64(defaultTuning.recvBuf.Default); got != want {
		t.Errorf("receive buffer %d, want %d", got, want)
	}
	if got, want := opts.GetSendBufferSize(), int64(defaultTuning.sendBuf.Default); got != want {
		t.Errorf("send buffer %d, want %d", got, want)
	}
}

// TestForwardOffload checks forwarded connections get the link's
// segmentation offload: TCP sends super-packets, which the pump passes
// whole with their virtio-net headers.
func TestForwardOffload(t *testing.T) {
	a, b := pair(t, pairOpts{tune: defaultTuning, offload: true})
	d := &hostDialer{tcp: hostTCP(t, echo)}
	if err := b.Forward(forwardMatch, d.dial); err != nil {
		t.Fatal(err)
	}
	const size = 4 << 20
	roundTrip(t, dial(t, a, "tcp", "198.51.100.7:80"), strings.Repeat("x", size))
	// Cut at the MSS, 4 MiB would take 3000 segments.
	if sent := b.fwd.Load().st.Stats().TCP.SegmentsSent.Value(); sent > size/DefaultMTU/4 {
		t.Errorf("the forwarding stack sent %d segments for %d bytes", sent, size)
	}
}

// TestForwardHalfClose checks the end of either side's stream reaches the
// other side as a half-close while the opposite direction goes on.
func TestForwardHalfClose(t *testing.T) {
	type closeWriter interface{ CloseWrite() error }
	t.Run("peer first", func(t *testing.T) {
		// The host's server reads the whole request, then answers.
		a, _, _ := forwardPair(t, hostTCP(t, func(c *net.TCPConn) {
			req, _ := io.ReadAll(c)
			io.WriteString(c, "got "+string(req))
		}), "")
		c := dial(t, a, "tcp", "198.51.100.7:80")
		c.SetDeadline(time.Now().Add(5 * time.Second))
		io.WriteString(c, "request")
		c.(closeWriter).CloseWrite()
		if got, err := io.ReadAll(c); string(got) != "got request" || err != nil {
			t.Errorf("reply %q, %v; want %q", got, err, "got request")
		}
	})
	t.Run("host first", func(t *testing.T) {
		// The host's server greets and half-closes, then reads.
		got := make(chan string, 1)
		a, _, _ := forwardPair(t, hostTCP(t, func(c *net.TCPConn) {
			io.WriteString(c, "greeting")
			c.CloseWrite()
			b, _ := io.ReadAll(c)
			got <- string(b)
		}), "")
		c := dial(t, a, "tcp", "198.51.100.7:80")
		c.SetDeadline(time.Now().Add(5 * time.Second))
		if g, err := io.ReadAll(c); string(g) != "greeting" || err != nil {
			t.Fatalf("greeting %q, %v", g, err)
		}
		io.WriteString(c, "after the host's end")
		c.(closeWriter).CloseWrite()
		select {
		case g := <-got:
			if g != "after the host's end" {
				t.Errorf("host read %q", g)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("the host never saw the peer's end")
		}
	})
}

// TestForwardDialFails checks a refused or slow dial resets the peer's SYN
// at once (or after the dial timeout): the peer's dial fails like one to a
// closed port.
func TestForwardDialFails(t *testing.T) {
	lower(t, &forwardDialTimeout, 200*time.Millisecond)
	closed, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed.Close() // nothing listens on its port now
	tests := []struct {
		name string
		dial DialFunc
	}{
		{"refused", func(ctx context.Context, network, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, network, closed.Addr().String())
		}},
		{"no answer", func(ctx context.Context, _, _ string) (net.Conn, error) {
			<-ctx.Done()
			return nil, ctx.Err()
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, b := pair(t, pairOpts{tune: defaultTuning})
			if err := b.Forward(forwardMatch, tt.dial); err != nil {
				t.Fatal(err)
			}
			start := time.Now()
			c, err := tryDial(a, "tcp", "198.51.100.7:80", 5*time.Second)
			if err == nil {
				c.Close()
				t.Fatal("dial succeeded")
			}
			if !errors.Is(err, syscall.ECONNREFUSED) {
				t.Errorf("error %v, want ECONNREFUSED", err)
			}
			if d := time.Since(start); d > 2*time.Second {
				t.Errorf("reset after %v", d)
			}
			if st := b.ForwardStats(); st.DialFailed != 1 || st.TCP != 0 {
				t.Errorf("stats %+v, want 1 failed dial and none open", st)
			}
		})
	}
}

// TestForwardNotMatched checks packets to addresses match rejects, and to
// addresses never forwarded, go nowhere: no dial, no answer.
func TestForwardNotMatched(t *testing.T) {
	a, b := pair(t, pairOpts{tune: defaultTuning})
	d := &hostDialer{tcp: hostTCP(t, echo), udp: hostUDP(t)}
	if err := b.Forward(func(a netip.Addr) bool { return a != netip.MustParseAddr("203.0.113.9") }, d.dial); err != nil {
		t.Fatal(err)
	}
	for _, addr := range []string{
		"203.0.113.9:80",     // match says no
		"169.254.169.254:80", // link-local, whatever match says
	} {
		if c, err := tryDial(a, "tcp", addr, 300*time.Millisecond); !errors.Is(err, context.DeadlineExceeded) {
			if c != nil {
				c.Close()
			}
			t.Errorf("dial %s: %v, want no answer", addr, err)
		}
	}
	if _, _, ok := exchangeUDP(t, listenUDP(t, a), "203.0.113.9:53", "query", 300*time.Millisecond); ok {
		t.Error("a datagram to an address match rejects was answered")
	}
	if got := d.calls(); len(got) != 0 {
		t.Errorf("B dialed %q", got)
	}
	if st := b.ForwardStats(); st.Dropped == 0 || st.TCP+st.UDP != 0 {
		t.Errorf("stats %+v, want drops and nothing open", st)
	}
}

// TestForwardUDP checks a datagram to a forwarded address reaches the
// host's server and its reply comes back from that address.
func TestForwardUDP(t *testing.T) {
	a, b, d := forwardPair(t, "", hostUDP(t))
	tests := []struct{ name, addr string }{
		{"ipv4", "198.51.100.7:53"},
		{"ipv6", "[2001:db8::7]:53"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pc := listenUDP(t, a)
			for _, msg := range []string{"first", "second"} { // one flow
				reply, from, ok := exchangeUDP(t, pc, tt.addr, msg, 5*time.Second)
				if !ok {
					t.Fatalf("no reply to %q", msg)
				}
				if reply != "re:"+msg || from.String() != tt.addr {
					t.Errorf("reply %q from %v, want %q from %s", reply, from, "re:"+msg, tt.addr)
				}
			}
			if got := d.calls(); got[len(got)-1] != "udp "+tt.addr {
				t.Errorf("B dialed %q, want %q", got[len(got)-1], "udp "+tt.addr)
			}
		})
	}
	if st := b.ForwardStats(); st.UDP != 2 || len(d.calls()) != 2 {
		t.Errorf("%d flows open after %d dials, want 2 and 2", st.UDP, len(d.calls()))
	}
}

// TestForwardUDPIdle checks an idle flow ends and the next datagram makes
// a new one.
func TestForwardUDPIdle(t *testing.T) {
	lower(t, &udpIdleTimeout, 200*time.Millisecond)
	a, b, d := forwardPair(t, "", hostUDP(t))
	pc := listenUDP(t, a)
	for i := range 2 {
		if _, _, ok := exchangeUDP(t, pc, "198.51.100.7:53", "ping", 5*time.Second); !ok {
			t.Fatalf("no reply in flow %d", i+1)
		}
		waitStats(t, b, func(s ForwardStats) bool { return s.UDP == 0 })
	}
	if got := len(d.calls()); got != 2 {
		t.Errorf("%d dials, want 2 (one per flow)", got)
	}
}

// TestForwardBounds checks the bounds on TCP connections and UDP flows.
func TestForwardBounds(t *testing.T) {
	lower(t, &maxForwardTCP, 2)
	lower(t, &maxForwardUDP, 1)
	a, b, _ := forwardPair(t, hostTCP(t, echo), hostUDP(t))
	var conns []net.Conn
	for range 2 {
		c := dial(t, a, "tcp", "198.51.100.7:80")
		roundTrip(t, c, "hello")
		conns = append(conns, c)
	}
	if c, err := tryDial(a, "tcp", "198.51.100.7:80", 5*time.Second); !errors.Is(err, syscall.ECONNREFUSED) {
		if c != nil {
			c.Close()
		}
		t.Fatalf("third connection: %v, want ECONNREFUSED", err)
	}
	conns[0].Close()
	waitStats(t, b, func(s ForwardStats) bool { return s.TCP == 1 })
	roundTrip(t, dial(t, a, "tcp", "198.51.100.7:80"), "a slot is free again")

	if _, _, ok := exchangeUDP(t, listenUDP(t, a), "198.51.100.7:53", "one", 5*time.Second); !ok {
		t.Fatal("no reply in the first flow")
	}
	if _, _, ok := exchangeUDP(t, listenUDP(t, a), "198.51.100.7:53", "two", 300*time.Millisecond); ok {
		t.Error("a second flow was forwarded")
	}
	if st := b.ForwardStats(); st.Refused != 2 || st.TCP != 2 || st.UDP != 1 {
		t.Errorf("stats %+v, want 2 refused, 2 connections and 1 flow open", st)
	}
}

// TestForwardStop checks Forward(nil, nil) stops new forwarding while open
// connections go on, and Forward turns it back on.
func TestForwardStop(t *testing.T) {
	a, b, _ := forwardPair(t, hostTCP(t, echo), hostUDP(t))
	open := dial(t, a, "tcp", "198.51.100.7:80")
	roundTrip(t, open, "before")
	if err := b.Forward(nil, nil); err != nil {
		t.Fatal(err)
	}
	if c, err := tryDial(a, "tcp", "198.51.100.7:80", 300*time.Millisecond); !errors.Is(err, context.DeadlineExceeded) {
		if c != nil {
			c.Close()
		}
		t.Errorf("new connection: %v, want no answer", err)
	}
	if _, _, ok := exchangeUDP(t, listenUDP(t, a), "198.51.100.7:53", "query", 300*time.Millisecond); ok {
		t.Error("a new flow was forwarded")
	}
	roundTrip(t, open, "still open")

	d := &hostDialer{tcp: hostTCP(t, echo)}
	if err := b.Forward(forwardMatch, d.dial); err != nil {
		t.Fatal(err)
	}
	roundTrip(t, dial(t, a, "tcp", "198.51.100.7:80"), "again")
}

// TestForwardOtherProtocols checks a ping to a forwarded address is dropped,
// not answered by the stack, while pings to B's own address are.
func TestForwardOtherProtocols(t *testing.T) {
	b := mustNew(t, cfgB, defaultTuning)
	// A nil dial is net.Dialer's; no ping makes it dial.
	if err := b.Forward(forwardMatch, nil); err != nil {
		t.Fatal(err)
	}
	if b.fwd.Load().rule.Load().dial == nil {
		t.Fatal("Forward kept a nil dial")
	}
	echo := func(dst netip.Addr, id byte) []byte {
		return buildIP(cfgA.IPv4, dst, 1, []byte{8, 0, 0, 0, 0, id, 0, 1, 'p', 'i', 'n', 'g'}, 2, false)
	}
	inject(t, b, echo(netip.MustParseAddr("198.51.100.7"), 1))
	if got := b.ForwardStats().Dropped; got != 1 {
		t.Errorf("%d packets dropped, want 1", got)
	}
	inject(t, b, echo(cfgB.IPv4, 2))
	// Replies come out in order: the first ICMP packet must answer the
	// second ping.
	pkt := awaitPacket(t, b, func(pkt []byte) bool {
		p, ok := parseIP(pkt)
		return ok && p.proto == 1
	})
	if p, _ := parseIP(pkt); p.src != cfgB.IPv4 || p.payload[0] != 0 {
		t.Errorf("ICMP type %d from %v, want an echo reply from %v", p.payload[0], p.src, cfgB.IPv4)
	}
}

// TestForwardClose checks closing the stack ends forwarded connections
// and flows, and a dial in progress, promptly and without leaving a
// goroutine behind.
func TestForwardClose(t *testing.T) {
	ignore := goleak.IgnoreCurrent()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	upc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer upc.Close()
	dialing := make(chan struct{})
	hd := &hostDialer{tcp: ln.Addr().String(), udp: upc.LocalAddr().String()}
	a, err := New(cfgA)
	if err != nil {
		t.Fatal(err)
	}
	b, err := New(cfgB)
	if err != nil {
		a.Close()
		t.Fatal(err)
	}
	var pumps sync.WaitGroup
	pumps.Go(func() { pump(a, b, 0, b) })
	pumps.Go(func() { pump(b, a, 0, a) })
	defer func() { // when the test fails early
		a.Close()
		b.Close()
		pumps.Wait()
	}()
	err = b.Forward(forwardMatch, func(ctx context.Context, network, address string) (net.Conn, error) {
		if address == "198.51.100.8:80" { // never answers
			close(dialing)
			<-ctx.Done()
			return nil, ctx.Err()
		}
		return hd.dial(ctx, network, address)
	})
	if err != nil {
		t.Fatal(err)
	}

	c, err := tryDial(a, "tcp", "198.51.100.7:80", 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	host, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer host.Close()
	pc, err := a.ListenUDP(0)
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	pc.WriteTo([]byte("flow"), net.UDPAddrFromAddrPort(netip.MustParseAddrPort("198.51.100.7:53")))
	upc.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, _, err := upc.ReadFrom(make([]byte, 100)); err != nil {
		t.Fatalf("the flow's datagram did not arrive: %v", err)
	}
	pending := make(chan error, 1)
	go func() {
		_, err := tryDial(a, "tcp", "198.51.100.8:80", 5*time.Second)
		pending <- err
	}()
	<-dialing

	if st := b.ForwardStats(); st.TCP != 2 || st.UDP != 1 {
		t.Fatalf("stats %+v, want 2 connections and 1 flow", st)
	}
	start := time.Now()
	b.Close()
	if d := time.Since(start); d > time.Second {
		t.Errorf("Close took %v", d)
	}
	if st := b.ForwardStats(); st.TCP != 0 || st.UDP != 0 {
		t.Errorf("stats %+v after Close, want nothing open", st)
	}
	host.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := host.Read(make([]byte, 10)); err == nil || errors.Is(err, os.ErrDeadlineExceeded) {
		t.Errorf("the host's connection: %v, want it closed", err)
	}
	a.Close()
	if err := <-pending; err == nil {
		t.Error("the pending connection was established")
	}
	pumps.Wait()
	goleak.VerifyNone(t, ignore)
}

func TestNeverForwarded(t *testing.T) {
	for _, tt := range []struct {
		addr string
		want bool
	}{
		{"198.51.100.7", false},
		{"2001:db8::7", false},
		{"0.0.0.0", true},
		{"::", true},
		{"127.0.0.1", true},
		{"::1", true},
		{"169.254.169.254", true}, // a cloud's metadata server
		{"fe80::1", true},
		{"224.0.0.251", true},
		{"ff02::1", true},
		{"255.255.255.255", true},
		{"::ffff:127.0.0.1", true},
		{"::ffff:198.51.100.7", true},
	} {
		if got := neverForwarded(netip.MustParseAddr(tt.addr)); got != tt.want {
			t.Errorf("neverForwarded(%s) = %v, want %v", tt.addr, got, tt.want)
		}
	}
}
