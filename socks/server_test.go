package socks

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"io"
	"math/big"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestServerConnect(t *testing.T) {
	echo4 := serveTCP(t, "tcp4", echo)
	tests := []struct {
		name string
		host string
		v6   bool
	}{
		{name: "IPv4 literal", host: "127.0.0.1"},
		{name: "IPv6 literal", host: "::1", v6: true},
		{name: "short name", host: "ms1"},
		{name: "full name", host: "ms1.mynetwork"},
		{name: "full name with trailing dot", host: "ms1.mynetwork."},
		{name: "IPv6 peer by name", host: "ms6.mynetwork", v6: true},
	}
	_, proxy := startServer(t, ServerConfig{})
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			port := echo4.Port()
			if tt.v6 {
				need6(t)
				port = serveTCP(t, "tcp6", echo).Port()
			}
			c, rep, err := socksDial(proxy, nil, cmdConnect, tt.host, port)
			if err != nil || rep != repSucceeded {
				t.Fatalf("CONNECT %s: reply %#x, %v", tt.host, rep, err)
			}
			defer c.Close()
			if got := roundTrip(t, c, []byte("hello "+tt.host)); string(got) != "hello "+tt.host {
				t.Errorf("echo = %q", got)
			}
		})
	}
}

func TestServerReplies(t *testing.T) {
	echo4 := serveTCP(t, "tcp4", echo)
	refused := closedPort(t)
	tests := []struct {
		name string
		cmd  byte
		host string
		port uint16
		want byte
	}{
		{name: "allowed", cmd: cmdConnect, host: "127.0.0.1", port: echo4.Port(), want: repSucceeded},
		{name: "IP not allowed", cmd: cmdConnect, host: "127.0.0.2", port: echo4.Port(), want: repNotAllowed},
		{name: "IPv4-mapped IPv6 of an allowed IP", cmd: cmdConnect, host: "::ffff:127.0.0.1", port: echo4.Port(), want: repSucceeded},
		{name: "unknown name", cmd: cmdConnect, host: "nope", port: 22, want: repHostUnreach},
		{name: "unknown full name", cmd: cmdConnect, host: "nope.mynetwork", port: 22, want: repHostUnreach},
		{name: "refused", cmd: cmdConnect, host: "ms1", port: refused, want: repConnRefused},
		{name: "BIND", cmd: cmdBind, host: "127.0.0.1", port: 0, want: repCmdUnsupported},
		{name: "UDP ASSOCIATE", cmd: cmdAssociate, host: "0.0.0.0", port: 0, want: repCmdUnsupported},
	}
	_, proxy := startServer(t, ServerConfig{})
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, rep, err := socksDial(proxy, nil, tt.cmd, tt.host, tt.port)
			if err != nil {
				t.Fatal(err)
			}
			if c != nil {
				c.Close()
			}
			if rep != tt.want {
				t.Errorf("reply = %#x, want %#x", rep, tt.want)
			}
		})
	}
}

func TestServerAuth(t *testing.T) {
	echo4 := serveTCP(t, "tcp4", echo)
	_, proxy := startServer(t, ServerConfig{Username: "alice", Password: "s3cret"})
	tests := []struct {
		name    string
		auth    *socksAuth
		wantErr error
	}{
		{name: "right credentials", auth: &socksAuth{"alice", "s3cret"}},
		{name: "wrong password", auth: &socksAuth{"alice", "guess"}, wantErr: errAuth{0x01}},
		{name: "wrong user", auth: &socksAuth{"bob", "s3cret"}, wantErr: errAuth{0x01}},
		{name: "empty password", auth: &socksAuth{"alice", ""}, wantErr: errAuth{0x01}},
		{name: "no authentication offered", auth: nil, wantErr: errAuth{0xff}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, rep, err := socksDial(proxy, tt.auth, cmdConnect, "ms1", echo4.Port())
			if err != tt.wantErr {
				t.Fatalf("err = %v, want %v", err, tt.wantErr)
			}
			if err != nil {
				return
			}
			defer c.Close()
			if rep != repSucceeded {
				t.Fatalf("reply = %#x", rep)
			}
			if got := roundTrip(t, c, []byte("hi")); string(got) != "hi" {
				t.Errorf("echo = %q", got)
			}
		})
	}
}

func TestServerHalfClose(t *testing.T) {
	backend := serveTCP(t, "tcp4", countThenAnswer)
	_, proxy := startServer(t, ServerConfig{})
	c, rep, err := socksDial(proxy, nil, cmdConnect, "ms1", backend.Port())
	if err != nil || rep != repSucceeded {
		t.Fatalf("reply %#x, %v", rep, err)
	}
	defer c.Close()
	if got := roundTrip(t, c, make([]byte, 100000)); string(got) != "got 100000 bytes" {
		t.Errorf("answer = %q", got)
	}
}

// TestServerMany sends different data through 200 connections at once and
// checks that each comes back whole.
func TestServerMany(t *testing.T) {
	backend := serveTCP(t, "tcp4", echo)
	_, proxy := startServer(t, ServerConfig{})
	const n = 200
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			size, _ := rand.Int(rand.Reader, big.NewInt(256<<10))
			data := make([]byte, size.Int64()+1)
			rand.Read(data)
			host := []string{"127.0.0.1", "ms1", "ms1.mynetwork"}[i%3]
			c, rep, err := socksDial(proxy, nil, cmdConnect, host, backend.Port())
			if err != nil || rep != repSucceeded {
				errs <- errors.Join(err, errors.New("CONNECT failed"))
				return
			}
			defer c.Close()
			c.SetDeadline(time.Now().Add(30 * time.Second))
			writeErr := make(chan error, 1)
			go func() {
				_, err := c.Write(data)
				if err == nil {
					err = c.(*net.TCPConn).CloseWrite()
				}
				writeErr <- err
			}()
			h := sha256.New()
			_, err = io.Copy(h, c)
			if err := errors.Join(err, <-writeErr); err != nil {
				errs <- err
				return
			}
			if want := sha256.Sum256(data); !bytes.Equal(h.Sum(nil), want[:]) {
				errs <- errors.New("data changed on the way")
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

func TestServerMaxConns(t *testing.T) {
	backend := serveTCP(t, "tcp4", echo)
	_, proxy := startServer(t, ServerConfig{MaxConns: 1})
	first, rep, err := socksDial(proxy, nil, cmdConnect, "ms1", backend.Port())
	if err != nil || rep != repSucceeded {
		t.Fatalf("reply %#x, %v", rep, err)
	}
	second, err := net.Dial("tcp", proxy)
	if err != nil {
		t.Fatal(err)
	}
	defer second.Close()
	second.SetDeadline(time.Now().Add(5 * time.Second))
	second.Write([]byte{5, 1, 0})
	if n, err := second.Read(make([]byte, 2)); err == nil || isTimeout(err) {
		t.Fatalf("second client over the limit: read %d bytes, %v; want closed", n, err)
	}
	first.Close()
	// The slot frees once the server has seen the first client go.
	deadline := time.Now().Add(5 * time.Second)
	for {
		c, rep, err := socksDial(proxy, nil, cmdConnect, "ms1", backend.Port())
		if err == nil && rep == repSucceeded {
			c.Close()
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("no slot after the first client left: %#x, %v", rep, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestServerHandshakeTimeout(t *testing.T) {
	_, proxy := startServer(t, ServerConfig{}, func(s *Server) { s.handshakeTimeout = 100 * time.Millisecond })
	c, err := net.Dial("tcp", proxy)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.Read(make([]byte, 1)); err == nil || isTimeout(err) {
		t.Fatalf("silent client: %v, want closed by the server", err)
	}
}

// TestServerClose closes a server with a connection piping, one stuck on
// a target that neither reads nor writes, and one dialing, and checks
// that all end and nothing is left running.
func TestServerClose(t *testing.T) {
	backend := serveTCP(t, "tcp4", echo)
	stop := make(chan struct{})
	stalled := serveTCP(t, "tcp4", func(net.Conn) { <-stop })
	unstall := sync.OnceFunc(func() { close(stop) })
	t.Cleanup(unstall) // runs before serveTCP's cleanup
	ignore := goleak.IgnoreCurrent()

	dialing := make(chan struct{})
	dial := testDial(t)
	s, err := NewServer(ServerConfig{
		Dial: func(ctx context.Context, network, address string) (net.Conn, error) {
			if strings.HasSuffix(address, ":9") { // never answers, until Close
				close(dialing)
				<-ctx.Done()
				return nil, ctx.Err()
			}
			return dial(ctx, network, address)
		},
		Resolve: testResolve,
		Allowed: allowLoopback,
		Log:     testLog(t),
	})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- s.Serve(ln) }()

	piping, rep, err := socksDial(ln.Addr().String(), nil, cmdConnect, "ms1", backend.Port())
	if err != nil || rep != repSucceeded {
		t.Fatalf("reply %#x, %v", rep, err)
	}
	defer piping.Close()
	piping.Write([]byte("ping"))
	if _, err := io.ReadFull(piping, make([]byte, 4)); err != nil {
		t.Fatal(err)
	}
	blocked, rep, err := socksDial(ln.Addr().String(), nil, cmdConnect, "ms1", stalled.Port())
	if err != nil || rep != repSucceeded {
		t.Fatalf("reply %#x, %v", rep, err)
	}
	defer blocked.Close()
	writing := make(chan error, 1)
	var written atomic.Int64
	go func() { // until the buffers on the way are full, then until Close
		for {
			n, err := blocked.Write(make([]byte, 64<<10))
			written.Add(int64(n))
			if err != nil {
				writing <- err
				return
			}
		}
	}()
	for last := int64(-1); written.Load() != last; { // wait until full
		last = written.Load()
		time.Sleep(200 * time.Millisecond)
	}
	stuck := make(chan byte, 1)
	go func() {
		_, rep, _ := socksDial(ln.Addr().String(), nil, cmdConnect, "ms1", 9)
		stuck <- rep
	}()
	<-dialing

	start := time.Now()
	s.Close()
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("Close took %v", d)
	}
	if err := <-served; !errors.Is(err, ErrServerClosed) {
		t.Errorf("Serve = %v, want ErrServerClosed", err)
	}
	<-stuck
	if err := <-writing; err == nil {
		t.Error("writing to a stalled target went through")
	}
	piping.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := piping.Read(make([]byte, 1)); err == nil || isTimeout(err) {
		t.Errorf("connection in flight after Close: %v, want closed", err)
	}
	if err := s.Close(); err != nil {
		t.Errorf("second Close = %v", err)
	}
	ln2, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Serve(ln2); !errors.Is(err, ErrServerClosed) {
		t.Errorf("Serve after Close = %v, want ErrServerClosed", err)
	}
	if _, err := ln2.Accept(); err == nil {
		t.Error("Serve after Close left its listener open")
	}
	unstall() // the stalled target's handler is the test's, not the server's
	goleak.VerifyNone(t, ignore)
}

func TestNewServerErrors(t *testing.T) {
	ok := ServerConfig{Dial: testDial(t), Resolve: testResolve, Allowed: allowLoopback}
	tests := []struct {
		name   string
		change func(*ServerConfig)
		want   string
	}{
		{name: "no dial", change: func(c *ServerConfig) { c.Dial = nil }, want: "socks: ServerConfig.Dial is required"},
		{name: "no resolver", change: func(c *ServerConfig) { c.Resolve = nil }, want: "socks: ServerConfig.Resolve is required"},
		{name: "no policy", change: func(c *ServerConfig) { c.Allowed = nil }, want: "socks: ServerConfig.Allowed is required"},
		{name: "negative limit", change: func(c *ServerConfig) { c.MaxConns = -1 }, want: "socks: ServerConfig.MaxConns is -1, want 0 or more"},
		{name: "user without password", change: func(c *ServerConfig) { c.Username = "alice" }, want: "socks: set both the username and the password, or neither"},
		{name: "password without user", change: func(c *ServerConfig) { c.Password = "x" }, want: "socks: set both the username and the password, or neither"},
		{name: "long password", change: func(c *ServerConfig) { c.Username, c.Password = "alice", strings.Repeat("x", 256) }, want: "socks: the username and the password must be at most 255 bytes each"},
		{name: "valid", change: func(*ServerConfig) {}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := ok
			tt.change(&cfg)
			s, err := NewServer(cfg)
			if tt.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				s.Close()
				return
			}
			if err == nil || err.Error() != tt.want {
				t.Errorf("err = %v, want %q", err, tt.want)
			}
		})
	}
}

// A CONNECT that carries nothing for the idle time is closed; one that
// carries a byte now and then is not.
func TestServerIdleTimeout(t *testing.T) {
	backend := serveTCP(t, "tcp4", echo)
	const idle = 300 * time.Millisecond
	_, proxy := startServer(t, ServerConfig{}, func(s *Server) { s.idleTimeout = idle })
	start := time.Now()
	var conns [2]net.Conn
	for i := range conns {
		c, rep, err := socksDial(proxy, nil, cmdConnect, "ms1", backend.Port())
		if err != nil || rep != repSucceeded {
			t.Fatalf("reply %#x, %v", rep, err)
		}
		defer c.Close()
		conns[i] = c
	}
	checkIdleClose(t, idle, start, conns[0], conns[1])
}
