package socks

import (
	"context"
	"encoding/binary"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"
)

// The fuzzed server's policy: only 127.0.0.1 may be reached. Its resolver
// also knows names for addresses the policy refuses, so that a name is no
// way around it.
func fuzzAllowed(ip netip.Addr) bool { return ip == loopback4 }

func fuzzResolve(name string) (netip.Addr, bool) {
	switch name {
	case "ms1", "ms1.mynetwork":
		return loopback4, true
	case "far", "far.mynetwork":
		return netip.MustParseAddr("10.0.0.1"), true
	case "ms6":
		return loopback6, true
	}
	return netip.Addr{}, false
}

// fuzzRefusedPort is a port the fuzz dialer refuses, to reach the
// server's "connection refused" reply.
const fuzzRefusedPort = 9

// fuzzDialer is the fuzzed server's Dial: it records every target and
// connects it to an in-memory echo (net.Pipe), or refuses fuzzRefusedPort.
// It dials nothing real.
type fuzzDialer struct {
	mu      sync.Mutex
	targets [][2]string // network, address
	echoes  sync.WaitGroup
}

func (d *fuzzDialer) dial(ctx context.Context, network, address string) (net.Conn, error) {
	d.mu.Lock()
	d.targets = append(d.targets, [2]string{network, address})
	d.mu.Unlock()
	if ap, err := netip.ParseAddrPort(address); err == nil && ap.Port() == fuzzRefusedPort {
		return nil, errors.New("connection refused")
	}
	server, client := net.Pipe()
	d.echoes.Add(1)
	go func() {
		defer d.echoes.Done()
		defer client.Close()
		io.Copy(client, client)
	}()
	return server, nil
}

// checkTargets fails t for any dial that the policy refuses: every target
// must be "tcp 127.0.0.1:<port>".
func (d *fuzzDialer) checkTargets(t *testing.T) {
	t.Helper()
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, target := range d.targets {
		ap, err := netip.ParseAddrPort(target[1])
		if target[0] != "tcp" || err != nil || !fuzzAllowed(ap.Addr()) {
			t.Errorf("the server dialed %s %q, which Allowed refuses", target[0], target[1])
		}
	}
}

// fuzzSOCKSExchange runs one client against a fresh Server on a loopback
// listener: the client sends data as its whole handshake and request (and
// whatever follows), half-closes, and reads until the server ends the
// connection. Then it closes the server. The properties:
//   - nothing panics;
//   - the server ends the connection by itself once the client has
//     half-closed (a read timeout fails: the server hung);
//   - Close returns with no goroutine left behind (goleak, against those
//     running before the exchange);
//   - the server dials only destinations that Allowed accepts.
//
// With auth the server requires the username "alice", password "s3cret".
func fuzzSOCKSExchange(t *testing.T, auth bool, data []byte) {
	ignore := goleak.IgnoreCurrent()
	d := &fuzzDialer{}
	cfg := ServerConfig{Dial: d.dial, Resolve: fuzzResolve, Allowed: fuzzAllowed, Log: slog.New(slog.DiscardHandler)}
	if auth {
		cfg.Username, cfg.Password = "alice", "s3cret"
	}
	s, err := NewServer(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close() // on an early failure; Close may be called again
	s.handshakeTimeout = 2 * time.Second
	s.dialTimeout = time.Second
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- s.Serve(ln) }()

	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	c.SetDeadline(time.Now().Add(5 * time.Second))
	wrote := make(chan struct{})
	go func() { // the server may stop reading at any point: ignore errors
		defer close(wrote)
		c.Write(data)
		c.(*net.TCPConn).CloseWrite()
	}()
	_, err = io.Copy(io.Discard, c)
	<-wrote
	c.Close()
	if isTimeout(err) {
		t.Errorf("the server did not end the connection after the client's half-close")
	}

	s.Close()
	if err := <-served; !errors.Is(err, ErrServerClosed) {
		t.Errorf("Serve = %v, want ErrServerClosed", err)
	}
	d.echoes.Wait() // the targets are the test's: Close has closed them
	if err := goleak.Find(ignore); err != nil {
		t.Fatalf("goroutines left after Close: %v", err)
	}
	d.checkTargets(t)
}

// socksRequest builds a client's greeting (offering no authentication, or
// username/password with the given credentials), a request for cmd to
// the address (atyp and raw bytes) and port, and extra bytes after it.
func socksRequest(cred *socksAuth, cmd, atyp byte, addr []byte, port uint16, extra string) []byte {
	var b []byte
	if cred == nil {
		b = append(b, 5, 1, 0)
	} else {
		b = append(b, 5, 1, 2, 1, byte(len(cred.user)))
		b = append(b, cred.user...)
		b = append(b, byte(len(cred.pass)))
		b = append(b, cred.pass...)
	}
	b = append(b, 5, cmd, 0, atyp)
	if atyp == 3 {
		b = append(b, byte(len(addr)))
	}
	b = append(b, addr...)
	b = binary.BigEndian.AppendUint16(b, port)
	return append(b, extra...)
}

// FuzzSOCKS5Request feeds arbitrary bytes to the SOCKS5 server as a
// client's handshake and request; see fuzzSOCKSExchange for the
// properties. The seeds cover each command, address type and reply.
func FuzzSOCKS5Request(f *testing.F) {
	ip := func(s string) []byte { return netip.MustParseAddr(s).AsSlice() }
	alice := &socksAuth{"alice", "s3cret"}
	seeds := []struct {
		name string
		auth bool
		data []byte
	}{
		{"connect IPv4 and send", false, socksRequest(nil, cmdConnect, 1, ip("127.0.0.1"), 22, "hello")},
		{"connect by name", false, socksRequest(nil, cmdConnect, 3, []byte("ms1.mynetwork"), 80, "GET / HTTP/1.0\r\n\r\n")},
		{"name of a refused address", false, socksRequest(nil, cmdConnect, 3, []byte("far"), 22, "")},
		{"refused IPv4", false, socksRequest(nil, cmdConnect, 1, ip("10.0.0.1"), 22, "x")},
		{"IPv4-mapped IPv6 of the allowed address", false, socksRequest(nil, cmdConnect, 4, ip("::ffff:127.0.0.1"), 22, "x")},
		{"IPv4-mapped IPv6 of a refused address", false, socksRequest(nil, cmdConnect, 4, ip("::ffff:10.0.0.1"), 22, "")},
		{"refused IPv6", false, socksRequest(nil, cmdConnect, 4, ip("::1"), 22, "")},
		{"IPv6 name", false, socksRequest(nil, cmdConnect, 3, []byte("ms6"), 22, "")},
		{"IPv4 literal as a name", false, socksRequest(nil, cmdConnect, 3, []byte("127.0.0.1"), 22, "")},
		{"mapped literal as a name", false, socksRequest(nil, cmdConnect, 3, []byte("::ffff:10.0.0.1"), 22, "")},
		{"unknown name", false, socksRequest(nil, cmdConnect, 3, []byte("nope"), 22, "")},
		{"empty name", false, socksRequest(nil, cmdConnect, 3, nil, 22, "")},
		{"dial refused", false, socksRequest(nil, cmdConnect, 1, ip("127.0.0.1"), fuzzRefusedPort, "")},
		{"port 0", false, socksRequest(nil, cmdConnect, 1, ip("127.0.0.1"), 0, "")},
		{"bind", false, socksRequest(nil, cmdBind, 1, ip("10.0.0.1"), 0, "")},
		{"associate", false, socksRequest(nil, cmdAssociate, 1, ip("0.0.0.0"), 0, "")},
		{"unknown command", false, socksRequest(nil, 9, 1, ip("127.0.0.1"), 22, "")},
		{"unknown address type", false, socksRequest(nil, cmdConnect, 5, ip("127.0.0.1"), 22, "")},
		{"truncated IPv6", false, socksRequest(nil, cmdConnect, 4, ip("127.0.0.1"), 22, "")},
		{"SOCKS4", false, []byte{4, 1, 0, 22, 127, 0, 0, 1, 0}},
		{"no methods", false, []byte{5, 0}},
		{"greeting only", false, []byte{5, 1, 0}},
		{"empty", false, nil},
		{"right credentials", true, socksRequest(alice, cmdConnect, 1, ip("127.0.0.1"), 22, "hi")},
		{"wrong password", true, socksRequest(&socksAuth{"alice", "guess"}, cmdConnect, 1, ip("127.0.0.1"), 22, "")},
		{"no auth offered to an auth server", true, socksRequest(nil, cmdConnect, 1, ip("127.0.0.1"), 22, "")},
		{"credentials, refused address", true, socksRequest(alice, cmdConnect, 3, []byte("far"), 22, "")},
		{"auth version 2", true, []byte{5, 1, 2, 2, 1, 'a', 1, 'b'}},
	}
	for _, s := range seeds {
		f.Add(s.auth, s.data)
	}
	f.Fuzz(fuzzSOCKSExchange)
}
