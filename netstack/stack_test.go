package netstack

import (
	"bytes"
	"context"
	"crypto/sha256"
	"io"
	"math/rand/v2"
	"net"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"
)

// serve accepts connections on ln and runs handle on each until ln is
// closed; the test waits for all of them at cleanup.
func serve(t *testing.T, ln net.Listener, handle func(net.Conn)) {
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
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
		wg.Wait()
	})
}

// roundTrip writes msg on c and reads as many bytes back from an echo
// server.
func roundTrip(t *testing.T, c net.Conn, msg string) {
	t.Helper()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.WriteString(c, msg); err != nil {
		t.Fatal(err)
	}
	got := make([]byte, len(msg))
	if _, err := io.ReadFull(c, got); err != nil {
		t.Fatal(err)
	}
	if string(got) != msg {
		t.Fatalf("echo of %d bytes differs", len(msg))
	}
}

// serveUDP answers each datagram on pc with "re:" and the datagram until
// pc is closed; the test closes it and waits at cleanup.
func serveUDP(t *testing.T, pc net.PacketConn) {
	var wg sync.WaitGroup
	wg.Go(func() {
		buf := make([]byte, 2048)
		for {
			n, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			pc.WriteTo(append([]byte("re:"), buf[:n]...), from)
		}
	})
	t.Cleanup(func() { pc.Close(); wg.Wait() })
}

func dial(t *testing.T, s *Stack, network, addr string) net.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := s.DialContext(ctx, network, addr)
	if err != nil {
		t.Fatalf("DialContext(%q, %q): %v", network, addr, err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func TestTCPEcho(t *testing.T) {
	a, b := pair(t, pairOpts{tune: defaultTuning})
	ln, err := b.ListenTCP(7)
	if err != nil {
		t.Fatal(err)
	}
	remotes := make(chan net.Addr, 4)
	serve(t, ln, func(c net.Conn) {
		remotes <- c.RemoteAddr()
		io.Copy(c, c)
	})
	tests := []struct {
		name, network, addr string
		wantLocal           netip.Addr // A's address the connection uses
	}{
		{"ipv4", "tcp", "100.64.0.2:7", cfgA.IPv4},
		{"ipv4 tcp4", "tcp4", "100.64.0.2:7", cfgA.IPv4},
		{"ipv6", "tcp", "[fd6d:796e:6574::2]:7", cfgA.IPv6},
		{"ipv6 tcp6", "tcp6", "[fd6d:796e:6574::2]:7", cfgA.IPv6},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := dial(t, a, tt.network, tt.addr)
			if got := c.LocalAddr().(*net.TCPAddr).AddrPort().Addr(); got != tt.wantLocal {
				t.Errorf("local address %v, want %v", got, tt.wantLocal)
			}
			// The server sees A's address of the same family, not
			// an IPv4-mapped IPv6 address.
			if got := (<-remotes).(*net.TCPAddr).AddrPort().Addr(); got != tt.wantLocal {
				t.Errorf("server sees remote %v, want %v", got, tt.wantLocal)
			}
			for _, msg := range []string{"hello", strings.Repeat("mesh ", 10000)} {
				roundTrip(t, c, msg)
			}
		})
	}
}

// TestTCPBulk sends 20 MB from A to B over IPv4 and checks it arrives
// byte-exact.
func TestTCPBulk(t *testing.T) {
	const size = 20 << 20
	a, b := pair(t, pairOpts{tune: defaultTuning})
	ln, err := b.ListenTCP(9000)
	if err != nil {
		t.Fatal(err)
	}
	type result struct {
		sum [32]byte
		n   int64
		err error
	}
	received := make(chan result, 1)
	serve(t, ln, func(c net.Conn) {
		h := sha256.New()
		n, err := io.Copy(h, c)
		received <- result{[32]byte(h.Sum(nil)), n, err}
	})
	c := dial(t, a, "tcp", "100.64.0.2:9000")
	data := make([]byte, size)
	rand.NewChaCha8([32]byte{1}).Read(data)
	start := time.Now()
	if _, err := c.Write(data); err != nil {
		t.Fatal(err)
	}
	c.(interface{ CloseWrite() error }).CloseWrite()
	select {
	case r := <-received:
		if r.err != nil || r.n != size {
			t.Fatalf("received %d bytes, err %v; want %d", r.n, r.err, size)
		}
		if r.sum != sha256.Sum256(data) {
			t.Fatal("sha256 of the received data differs")
		}
	case <-time.After(60 * time.Second):
		t.Fatal("transfer did not finish")
	}
	t.Logf("20 MB in %v; %s", time.Since(start).Round(time.Millisecond), diagnose(a, b))
}

func TestUDP(t *testing.T) {
	a, b := pair(t, pairOpts{tune: defaultTuning})
	pc, err := b.ListenUDP(53)
	if err != nil {
		t.Fatal(err)
	}
	serveUDP(t, pc)

	tests := []struct {
		name, network, addr string
	}{
		{"ipv4", "udp", "100.64.0.2:53"},
		{"ipv4 udp4", "udp4", "100.64.0.2:53"},
		{"ipv6", "udp", "[fd6d:796e:6574::2]:53"},
		{"ipv6 udp6", "udp6", "[fd6d:796e:6574::2]:53"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := dial(t, a, tt.network, tt.addr)
			if got, want := c.RemoteAddr().String(), tt.addr; got != want {
				t.Errorf("RemoteAddr %s, want %s", got, want)
			}
			c.SetDeadline(time.Now().Add(5 * time.Second))
			if _, err := c.Write([]byte(tt.name)); err != nil {
				t.Fatal(err)
			}
			buf := make([]byte, 100)
			n, err := c.Read(buf)
			if err != nil {
				t.Fatal(err)
			}
			if got, want := string(buf[:n]), "re:"+tt.name; got != want {
				t.Errorf("reply %q, want %q", got, want)
			}
		})
	}
}

func TestICMPEcho(t *testing.T) {
	// Type, code, checksum, identifier, sequence number, data. (The
	// packets tuntest.Ping builds carry wrong IPv4 and ICMP checksums, so
	// a real stack drops them; these are built here instead.)
	echo4 := []byte{8, 0, 0, 0, 0x12, 0x34, 0, 1, 'p', 'i', 'n', 'g'}
	echo6 := []byte{128, 0, 0, 0, 0x12, 0x34, 0, 1, 'p', 'i', 'n', 'g'}
	tests := []struct {
		name      string
		request   []byte
		replyType byte // ICMP type of the echo reply
		proto     byte
	}{
		{"ipv4", buildIP(cfgA.IPv4, cfgB.IPv4, 1, echo4, 2, false), 0, 1},
		{"ipv6", buildIP(cfgA.IPv6, cfgB.IPv6, 58, echo6, 2, true), 129, 58},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := mustNew(t, cfgB, defaultTuning)
			req, _ := parseIP(tt.request)
			inject(t, b, tt.request)
			pkt := awaitPacket(t, b, func(pkt []byte) bool {
				p, ok := parseIP(pkt)
				return ok && p.proto == tt.proto && len(p.payload) > 0 && p.payload[0] == tt.replyType
			})
			p, _ := parseIP(pkt)
			if p.src != req.dst || p.dst != req.src {
				t.Errorf("reply %v -> %v, want %v -> %v", p.src, p.dst, req.dst, req.src)
			}
			// Identifier, sequence number and data come back.
			if !bytes.Equal(p.payload[4:], req.payload[4:]) {
				t.Errorf("reply body %x, want %x", p.payload[4:], req.payload[4:])
			}
		})
	}
}

// TestUDPClosedPort checks gVisor answers a datagram to a closed port with
// ICMP port unreachable.
func TestUDPClosedPort(t *testing.T) {
	udp := []byte{0x30, 0x39, 0, 99, 0, 12, 0, 0, 'a', 'b', 'c', 'd'} // 12345 -> 99, length 12
	tests := []struct {
		name    string
		request []byte
		proto   byte
		typ     byte // destination unreachable
		code    byte // port unreachable
	}{
		{name: "ipv4", request: buildIP(cfgA.IPv4, cfgB.IPv4, 17, udp, -1, false), proto: 1, typ: 3, code: 3},
		{name: "ipv6", request: buildIP(cfgA.IPv6, cfgB.IPv6, 17, udp, 6, true), proto: 58, typ: 1, code: 4},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := mustNew(t, cfgB, defaultTuning)
			inject(t, b, tt.request)
			pkt := awaitPacket(t, b, func(pkt []byte) bool {
				p, ok := parseIP(pkt)
				return ok && p.proto == tt.proto && len(p.payload) >= 8 && p.payload[0] == tt.typ
			})
			p, _ := parseIP(pkt)
			if p.payload[1] != tt.code {
				t.Errorf("ICMP code %d, want %d (port unreachable)", p.payload[1], tt.code)
			}
			if quoted := p.payload[8:]; !bytes.HasPrefix(tt.request, quoted[:min(len(quoted), 28)]) {
				t.Errorf("quoted packet %x is not the request", quoted)
			}
		})
	}
}
