package socks

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"strconv"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

var (
	loopback4 = netip.MustParseAddr("127.0.0.1")
	loopback6 = netip.IPv6Loopback()
)

// testLog shows the package's messages with go test -v.
func testLog(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(tWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type tWriter struct{ t testing.TB }

func (w tWriter) Write(p []byte) (int, error) {
	w.t.Log(string(bytes.TrimSuffix(p, []byte("\n"))))
	return len(p), nil
}

// testDial is a net.Dialer that refuses anything but loopback: tests never
// reach any other address.
func testDial(t testing.TB) DialFunc {
	return func(ctx context.Context, network, address string) (net.Conn, error) {
		ap, err := netip.ParseAddrPort(address)
		if err != nil || !allowLoopback(ap.Addr()) {
			t.Errorf("dial %s %q: not a loopback IP:port", network, address)
			return nil, fmt.Errorf("test dial: %q is not loopback", address)
		}
		var d net.Dialer
		return d.DialContext(ctx, network, address)
	}
}

func testResolve(name string) (netip.Addr, bool) {
	switch name {
	case "ms1", "ms1.mynetwork":
		return loopback4, true
	case "ms6", "ms6.mynetwork":
		return loopback6, true
	}
	return netip.Addr{}, false
}

func allowLoopback(ip netip.Addr) bool { return ip == loopback4 || ip == loopback6 }

func need6(t *testing.T) {
	ln, err := net.Listen("tcp", "[::1]:0")
	if err != nil {
		t.Skipf("no IPv6 loopback: %v", err)
	}
	ln.Close()
}

// serveTCP runs handle on every connection to a loopback listener until
// the test ends, then closes the listener and the connections and waits
// for the handlers.
func serveTCP(t testing.TB, network string, handle func(net.Conn)) netip.AddrPort {
	host := "127.0.0.1:0"
	if network == "tcp6" {
		host = "[::1]:0"
	}
	ln, err := net.Listen(network, host)
	if err != nil {
		t.Fatal(err)
	}
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		conns = map[net.Conn]bool{}
	)
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns[c] = true
			mu.Unlock()
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.Close()
				handle(c)
			}()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		for c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	return ln.Addr().(*net.TCPAddr).AddrPort()
}

// echo copies back what it reads, then half-closes.
func echo(c net.Conn) {
	io.Copy(c, c)
	c.(*net.TCPConn).CloseWrite()
}

// countThenAnswer reads to the end of the stream and only then answers
// with the byte count: it needs the client's half-close to get through
// and its own answer to get back.
func countThenAnswer(c net.Conn) {
	n, _ := io.Copy(io.Discard, c)
	fmt.Fprintf(c, "got %d bytes", n)
}

// serveUDP answers each datagram on a loopback socket with answer(payload,
// sender) until the test ends.
func serveUDP(t testing.TB, answer func(p []byte, from net.Addr) []byte) netip.AddrPort {
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, maxDatagram)
		for {
			n, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			pc.WriteTo(answer(buf[:n], from), from)
		}
	}()
	t.Cleanup(func() {
		pc.Close()
		<-done
	})
	return pc.LocalAddr().(*net.UDPAddr).AddrPort()
}

func udpEcho(p []byte, _ net.Addr) []byte { return p }

// whoami answers with the sender's address.
func whoami(_ []byte, from net.Addr) []byte { return []byte(from.String()) }

// udpExchange sends p from c to addr and returns the answer.
func udpExchange(t testing.TB, c net.PacketConn, addr net.Addr, p []byte) []byte {
	t.Helper()
	buf := make([]byte, maxDatagram)
	for try := 0; try < 5; try++ { // loopback drops nothing, but be kind
		if _, err := c.WriteTo(p, addr); err != nil {
			t.Fatal(err)
		}
		c.SetReadDeadline(time.Now().Add(2 * time.Second))
		n, _, err := c.ReadFrom(buf)
		if err == nil {
			return buf[:n]
		}
		if !isTimeout(err) {
			t.Fatal(err)
		}
	}
	t.Fatalf("no answer from %v", addr)
	return nil
}

func listenUDP(t testing.TB) net.PacketConn {
	c, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// startServer serves a SOCKS5 server on a loopback port until the test
// ends, and checks that Serve then returns ErrServerClosed.
func startServer(t testing.TB, cfg ServerConfig, tweak ...func(*Server)) (*Server, string) {
	t.Helper()
	if cfg.Dial == nil {
		cfg.Dial = testDial(t)
	}
	if cfg.Resolve == nil {
		cfg.Resolve = testResolve
	}
	if cfg.Allowed == nil {
		cfg.Allowed = allowLoopback
	}
	if cfg.Log == nil {
		cfg.Log = testLog(t)
	}
	s, err := NewServer(cfg)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range tweak {
		f(s)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- s.Serve(ln) }()
	t.Cleanup(func() {
		s.Close()
		if err := <-served; !errors.Is(err, ErrServerClosed) {
			t.Errorf("Serve returned %v, want ErrServerClosed", err)
		}
	})
	return s, ln.Addr().String()
}

// SOCKS5 commands and reply codes (RFC 1928).
const (
	cmdConnect   = 1
	cmdBind      = 2
	cmdAssociate = 3

	repSucceeded      = 0x00
	repNotAllowed     = 0x02
	repHostUnreach    = 0x04
	repConnRefused    = 0x05
	repCmdUnsupported = 0x07
)

type socksAuth struct{ user, pass string }

// errAuth is a failed method negotiation or authentication.
type errAuth struct{ code byte }

func (e errAuth) Error() string { return fmt.Sprintf("socks auth: status %#x", e.code) }

// socksDial is a minimal SOCKS5 client: it connects to proxy, offers
// username/password if auth is set (else no authentication), sends cmd for
// host:port (host an IP literal or a name) and returns the connection and
// the reply code. The connection is open if the reply says success.
func socksDial(proxy string, auth *socksAuth, cmd byte, host string, port uint16) (net.Conn, byte, error) {
	c, err := net.Dial("tcp", proxy)
	if err != nil {
		return nil, 0, err
	}
	rep, err := socksHandshake(c, auth, cmd, host, port)
	if err != nil || rep != repSucceeded {
		c.Close()
		return nil, rep, err
	}
	return c, rep, nil
}

func socksHandshake(c net.Conn, auth *socksAuth, cmd byte, host string, port uint16) (byte, error) {
	c.SetDeadline(time.Now().Add(10 * time.Second))
	defer c.SetDeadline(time.Time{})
	method := byte(0)
	if auth != nil {
		method = 2
	}
	if _, err := c.Write([]byte{5, 1, method}); err != nil {
		return 0, err
	}
	var b [2]byte
	if _, err := io.ReadFull(c, b[:]); err != nil {
		return 0, fmt.Errorf("method reply: %w", err)
	}
	if b != [2]byte{5, method} {
		return 0, errAuth{b[1]}
	}
	if auth != nil {
		msg := []byte{1, byte(len(auth.user))}
		msg = append(msg, auth.user...)
		msg = append(msg, byte(len(auth.pass)))
		msg = append(msg, auth.pass...)
		if _, err := c.Write(msg); err != nil {
			return 0, err
		}
		if _, err := io.ReadFull(c, b[:]); err != nil {
			return 0, fmt.Errorf("auth reply: %w", err)
		}
		if b[1] != 0 {
			return 0, errAuth{b[1]}
		}
	}
	req := []byte{5, cmd, 0}
	if ip, err := netip.ParseAddr(host); err == nil && ip.Is4() {
		req = append(append(req, 1), ip.AsSlice()...)
	} else if err == nil {
		req = append(append(req, 4), ip.AsSlice()...)
	} else {
		req = append(append(req, 3, byte(len(host))), host...)
	}
	req = binary.BigEndian.AppendUint16(req, port)
	if _, err := c.Write(req); err != nil {
		return 0, err
	}
	var head [4]byte
	if _, err := io.ReadFull(c, head[:]); err != nil {
		return 0, fmt.Errorf("reply: %w", err)
	}
	var skip int
	switch head[3] {
	case 1:
		skip = 4 + 2
	case 4:
		skip = 16 + 2
	case 3:
		var l [1]byte
		if _, err := io.ReadFull(c, l[:]); err != nil {
			return 0, err
		}
		skip = int(l[0]) + 2
	default:
		return 0, fmt.Errorf("reply address type %d", head[3])
	}
	if _, err := io.ReadFull(c, make([]byte, skip)); err != nil {
		return 0, fmt.Errorf("reply address: %w", err)
	}
	return head[1], nil
}

// roundTrip sends p on c, half-closes, and returns everything c then reads.
func roundTrip(t testing.TB, c net.Conn, p []byte) []byte {
	t.Helper()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	errc := make(chan error, 1)
	go func() {
		_, err := c.Write(p)
		if err == nil {
			err = c.(*net.TCPConn).CloseWrite()
		}
		errc <- err
	}()
	got, err := io.ReadAll(c)
	if err != nil {
		t.Fatal(err)
	}
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	return got
}

// closedPort returns a loopback port where nothing listens.
func closedPort(t testing.TB) uint16 {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	return uint16(port)
}

func hostPort(host string, port uint16) string {
	return net.JoinHostPort(host, strconv.Itoa(int(port)))
}

// dialTCP connects to addr; the connection is closed when the test ends.
func dialTCP(t testing.TB, addr net.Addr) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", addr.String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// echoOnce sends "ping" on c, a connection to an echo server, and reads it
// back.
func echoOnce(t testing.TB, c net.Conn) {
	t.Helper()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	defer c.SetDeadline(time.Time{})
	if _, err := c.Write([]byte("ping")); err != nil {
		t.Fatal(err)
	}
	got := make([]byte, 4)
	if _, err := io.ReadFull(c, got); err != nil || string(got) != "ping" {
		t.Fatalf("echo: got %q, %v", got, err)
	}
}

// checkIdleClose checks two piped connections to an echo server, both
// opened after start: silent, on which nothing passes, is closed after
// idle and not before, while active, which echoes a byte every idle/4 for
// four times idle, stays open.
func checkIdleClose(t *testing.T, idle time.Duration, start time.Time, silent, active net.Conn) {
	t.Helper()
	type end struct {
		after time.Duration
		err   error
	}
	closed := make(chan end, 1)
	go func() {
		silent.SetReadDeadline(time.Now().Add(20 * idle))
		_, err := silent.Read(make([]byte, 1))
		closed <- end{time.Since(start), err}
	}()
	for time.Since(start) < 4*idle {
		active.SetDeadline(time.Now().Add(5 * time.Second))
		if _, err := active.Write([]byte("x")); err != nil {
			t.Fatalf("active connection after %v: %v", time.Since(start), err)
		}
		if _, err := io.ReadFull(active, make([]byte, 1)); err != nil {
			t.Fatalf("active connection closed after %v: %v", time.Since(start), err)
		}
		time.Sleep(idle / 4)
	}
	switch e := <-closed; {
	case e.err == nil || isTimeout(e.err):
		t.Fatalf("silent connection still open after %v: %v", e.after, e.err)
	case e.after < idle:
		t.Fatalf("silent connection closed after %v, before the idle time %v", e.after, idle)
	}
}
