package socks

import (
	"errors"
	"net"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"
)

// virtualNet stands in for the virtual network's listen functions: it
// listens on an ephemeral loopback port whatever port it is asked for, and
// records where.
type virtualNet struct {
	mu  sync.Mutex
	tcp map[uint16]net.Addr
	udp map[uint16]net.Addr
}

func (v *virtualNet) listenTCP(port uint16) (net.Listener, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.tcp == nil {
		v.tcp = map[uint16]net.Addr{}
	}
	v.tcp[port] = ln.Addr()
	return ln, nil
}

func (v *virtualNet) listenUDP(port uint16) (net.PacketConn, error) {
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.udp == nil {
		v.udp = map[uint16]net.Addr{}
	}
	v.udp[port] = pc.LocalAddr()
	return pc, nil
}

func (v *virtualNet) addr(network string, port uint16) net.Addr {
	v.mu.Lock()
	defer v.mu.Unlock()
	if network == "udp" {
		return v.udp[port]
	}
	return v.tcp[port]
}

// newForwarder returns a forwarder over loopback that is closed when the
// test ends; tweak may change its config first.
func newForwarder(t testing.TB, tweak ...func(*ForwarderConfig)) (*Forwarder, *virtualNet) {
	t.Helper()
	v := &virtualNet{}
	cfg := ForwarderConfig{
		Dial:      testDial(t),
		Resolve:   testResolve,
		ListenTCP: v.listenTCP,
		ListenUDP: v.listenUDP,
		Log:       testLog(t),
	}
	for _, f := range tweak {
		f(&cfg)
	}
	f, err := NewForwarder(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f, v
}

// startForward starts fw, listening on an ephemeral loopback port, and
// returns where it listens.
func startForward(t testing.TB, f *Forwarder, network, target string) net.Addr {
	t.Helper()
	if err := f.StartForward(Forward{Network: network, Listen: "127.0.0.1:0", Target: target}); err != nil {
		t.Fatal(err)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.bound[len(f.bound)-1]
}

func TestForwardTCP(t *testing.T) {
	backend := serveTCP(t, "tcp4", countThenAnswer)
	f, _ := newForwarder(t)
	tests := []struct {
		name   string
		target string
	}{
		{name: "short name", target: "ms1"},
		{name: "full name", target: "ms1.mynetwork"},
		{name: "literal IP", target: "127.0.0.1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			addr := startForward(t, f, "tcp", hostPort(tt.target, backend.Port()))
			c, err := net.Dial("tcp", addr.String())
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			// The backend answers only after the client's half-close.
			if got := roundTrip(t, c, make([]byte, 70000)); string(got) != "got 70000 bytes" {
				t.Errorf("answer = %q", got)
			}
		})
	}
}

func TestForwardTCPTargetDown(t *testing.T) {
	f, _ := newForwarder(t)
	tests := []struct {
		name   string
		target string
	}{
		{name: "refused", target: hostPort("ms1", closedPort(t))},
		{name: "unknown name", target: "nope:22"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			addr := startForward(t, f, "tcp", tt.target)
			c, err := net.Dial("tcp", addr.String())
			if errors.Is(err, syscall.ECONNRESET) {
				return // reset so soon that connect saw it: fine too
			}
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			c.SetDeadline(time.Now().Add(5 * time.Second))
			if n, err := c.Read(make([]byte, 1)); err == nil || isTimeout(err) {
				t.Errorf("read %d bytes, %v; want the connection closed", n, err)
			}
		})
	}
}

func TestForwardListenError(t *testing.T) {
	f, _ := newForwarder(t)
	addr := startForward(t, f, "tcp", "ms1:22")
	err := f.StartForward(Forward{Network: "tcp", Listen: addr.String(), Target: "ms1:22"})
	if err == nil || !strings.Contains(err.Error(), "address already in use") ||
		!strings.HasPrefix(err.Error(), "forward tcp:"+addr.String()+"=ms1:22: ") {
		t.Errorf("second forward on %v: %v, want address already in use", addr, err)
	}
}

func TestExposeTCP(t *testing.T) {
	backend := serveTCP(t, "tcp4", countThenAnswer)
	f, v := newForwarder(t)
	if err := f.StartExpose(Expose{Network: "tcp", Port: 2222, Target: backend.String()}); err != nil {
		t.Fatal(err)
	}
	c, err := net.Dial("tcp", v.addr("tcp", 2222).String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if got := roundTrip(t, c, []byte("hello")); string(got) != "got 5 bytes" {
		t.Errorf("answer = %q", got)
	}
}

// A forward with its limit of connections in flight closes new clients,
// and another forward and an expose still accept: each rule has a limit
// of its own.
func TestForwardLimitPerRule(t *testing.T) {
	backend := serveTCP(t, "tcp4", echo)
	f, v := newForwarder(t, func(c *ForwarderConfig) { c.MaxConns = 2 })
	busy := startForward(t, f, "tcp", hostPort("ms1", backend.Port()))
	other := startForward(t, f, "tcp", hostPort("ms1", backend.Port()))
	if err := f.StartExpose(Expose{Network: "tcp", Port: 80, Target: backend.String()}); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		echoOnce(t, dialTCP(t, busy))
	}
	over := dialTCP(t, busy)
	over.SetDeadline(time.Now().Add(5 * time.Second))
	over.Write([]byte("ping"))
	if n, err := over.Read(make([]byte, 4)); err == nil || isTimeout(err) {
		t.Fatalf("third client of a forward with a limit of 2: read %d bytes, %v; want closed", n, err)
	}
	for _, addr := range []net.Addr{other, v.addr("tcp", 80)} {
		echoOnce(t, dialTCP(t, addr))
	}
}

// A piped TCP connection of a forward or an expose that carries nothing
// for the idle time is closed; one that carries a byte now and then is not.
func TestForwardIdleTimeout(t *testing.T) {
	backend := serveTCP(t, "tcp4", echo)
	f, v := newForwarder(t)
	f.tcpIdle = 300 * time.Millisecond
	fwd := startForward(t, f, "tcp", hostPort("ms1", backend.Port()))
	if err := f.StartExpose(Expose{Network: "tcp", Port: 80, Target: backend.String()}); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		addr net.Addr
	}{
		{name: "forward", addr: fwd},
		{name: "expose", addr: v.addr("tcp", 80)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			start := time.Now()
			silent := dialTCP(t, tt.addr)
			active := dialTCP(t, tt.addr)
			checkIdleClose(t, f.tcpIdle, start, silent, active)
		})
	}
}

func TestForwardUDP(t *testing.T) {
	backend := serveUDP(t, whoami)
	f, _ := newForwarder(t)
	addr := startForward(t, f, "udp", hostPort("ms1", backend.Port()))
	// Each client has its own session, hence its own source address at the
	// backend, which stays the same from one datagram to the next.
	a, b := listenUDP(t), listenUDP(t)
	a1 := string(udpExchange(t, a, addr, []byte("1")))
	b1 := string(udpExchange(t, b, addr, []byte("1")))
	a2 := string(udpExchange(t, a, addr, []byte("2")))
	if a1 == b1 {
		t.Errorf("two clients share the source address %s", a1)
	}
	if a1 != a2 {
		t.Errorf("one client's source address changed from %s to %s", a1, a2)
	}
	if got := sessions(f, 0); got != 2 {
		t.Errorf("%d sessions, want 2", got)
	}
}

func TestExposeUDP(t *testing.T) {
	backend := serveUDP(t, udpEcho)
	f, v := newForwarder(t)
	if err := f.StartExpose(Expose{Network: "udp", Port: 53, Target: backend.String()}); err != nil {
		t.Fatal(err)
	}
	addr := v.addr("udp", 53)
	a, b := listenUDP(t), listenUDP(t)
	for i := range 3 {
		for _, c := range []net.PacketConn{a, b} {
			want := c.LocalAddr().String() + " #" + strconv.Itoa(i)
			if got := string(udpExchange(t, c, addr, []byte(want))); got != want {
				t.Errorf("answer = %q, want %q", got, want)
			}
		}
	}
	if got := sessions(f, 0); got != 2 {
		t.Errorf("%d sessions, want 2", got)
	}
}

func TestUDPIdleExpiry(t *testing.T) {
	backend := serveUDP(t, whoami)
	f, _ := newForwarder(t)
	f.udpIdle = 200 * time.Millisecond
	addr := startForward(t, f, "udp", hostPort("ms1", backend.Port()))
	c := listenUDP(t)
	first := string(udpExchange(t, c, addr, []byte("x")))
	// Traffic keeps the session: five datagrams over twice the idle time.
	for range 5 {
		time.Sleep(f.udpIdle / 2)
		if got := string(udpExchange(t, c, addr, []byte("x"))); got != first {
			t.Fatalf("session replaced while in use: %s, then %s", first, got)
		}
	}
	deadline := time.Now().Add(5 * time.Second)
	for sessions(f, 0) != 0 {
		if time.Now().After(deadline) {
			t.Fatal("idle session did not expire")
		}
		time.Sleep(20 * time.Millisecond)
	}
	// The client is welcome back, with a new session.
	udpExchange(t, c, addr, []byte("x"))
	if got := sessions(f, 0); got != 1 {
		t.Errorf("%d sessions, want 1", got)
	}
}

// sessions counts the sessions of the i-th UDP forward or expose.
func sessions(f *Forwarder, i int) int {
	f.mu.Lock()
	r := f.relays[i]
	f.mu.Unlock()
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.sessions)
}

func TestExposeErrors(t *testing.T) {
	f, err := NewForwarder(ForwarderConfig{Dial: testDial(t), Resolve: testResolve, Log: testLog(t)})
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	tests := []struct {
		name string
		e    Expose
		want string
	}{
		{name: "no TCP listener", e: Expose{Network: "tcp", Port: 22, Target: "127.0.0.1:22"}, want: "expose tcp:22=127.0.0.1:22: cannot listen on tcp ports of the virtual network"},
		{name: "no UDP listener", e: Expose{Network: "udp", Port: 53, Target: "127.0.0.1:53"}, want: "expose udp:53=127.0.0.1:53: cannot listen on udp ports of the virtual network"},
		{name: "bad network", e: Expose{Network: "sctp", Port: 22, Target: "127.0.0.1:22"}, want: `expose sctp:22=127.0.0.1:22: network "sctp", want tcp or udp`},
		{name: "port 0", e: Expose{Network: "tcp", Port: 0, Target: "127.0.0.1:22"}, want: "expose tcp:0=127.0.0.1:22: port 0, want 1 to 65535"},
		{name: "bad target", e: Expose{Network: "tcp", Port: 22, Target: "127.0.0.1"}, want: `expose tcp:22=127.0.0.1: target "127.0.0.1": want HOST:PORT`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := f.StartExpose(tt.e); err == nil || err.Error() != tt.want {
				t.Errorf("err = %v, want %q", err, tt.want)
			}
		})
	}
}

func TestStartForwardErrors(t *testing.T) {
	f, _ := newForwarder(t)
	tests := []struct {
		name string
		fw   Forward
		want string
	}{
		{name: "bad network", fw: Forward{Network: "", Listen: "127.0.0.1:0", Target: "ms1:22"}, want: `forward :127.0.0.1:0=ms1:22: network "", want tcp or udp`},
		{name: "bad listen", fw: Forward{Network: "tcp", Listen: "127.0.0.1", Target: "ms1:22"}, want: `forward tcp:127.0.0.1=ms1:22: listen address "127.0.0.1": want HOST:PORT`},
		{name: "bad target port", fw: Forward{Network: "udp", Listen: "127.0.0.1:0", Target: "ms1:x"}, want: `forward udp:127.0.0.1:0=ms1:x: target port "x": want a number from 1 to 65535`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := f.StartForward(tt.fw); err == nil || err.Error() != tt.want {
				t.Errorf("err = %v, want %q", err, tt.want)
			}
		})
	}
}

func TestNewForwarderErrors(t *testing.T) {
	tests := []struct {
		name string
		cfg  ForwarderConfig
		want string
	}{
		{name: "no dial", cfg: ForwarderConfig{Resolve: testResolve}, want: "socks: ForwarderConfig.Dial is required"},
		{name: "no resolver", cfg: ForwarderConfig{Dial: testDial(t)}, want: "socks: ForwarderConfig.Resolve is required"},
		{name: "negative limit", cfg: ForwarderConfig{Dial: testDial(t), Resolve: testResolve, MaxConns: -1}, want: "socks: ForwarderConfig.MaxConns is -1, want 0 or more"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := NewForwarder(tt.cfg); err == nil || err.Error() != tt.want {
				t.Errorf("err = %v, want %q", err, tt.want)
			}
		})
	}
}

// TestForwarderClose closes a forwarder with TCP connections piping and UDP
// sessions open, and checks that all end and nothing is left running.
func TestForwarderClose(t *testing.T) {
	tcpBackend := serveTCP(t, "tcp4", echo)
	udpBackend := serveUDP(t, udpEcho)
	udpClient := listenUDP(t)
	ignore := goleak.IgnoreCurrent()

	v := &virtualNet{}
	f, err := NewForwarder(ForwarderConfig{
		Dial:      testDial(t),
		Resolve:   testResolve,
		ListenTCP: v.listenTCP,
		ListenUDP: v.listenUDP,
		Log:       testLog(t),
	})
	if err != nil {
		t.Fatal(err)
	}
	fwd := startForward(t, f, "tcp", hostPort("ms1", tcpBackend.Port()))
	udpFwd := startForward(t, f, "udp", hostPort("ms1", udpBackend.Port()))
	for _, e := range []Expose{
		{Network: "tcp", Port: 80, Target: tcpBackend.String()},
		{Network: "udp", Port: 53, Target: udpBackend.String()},
	} {
		if err := f.StartExpose(e); err != nil {
			t.Fatal(err)
		}
	}
	var open []net.Conn
	for _, addr := range []net.Addr{fwd, v.addr("tcp", 80)} {
		c := dialTCP(t, addr)
		echoOnce(t, c)
		open = append(open, c)
	}
	udpExchange(t, udpClient, udpFwd, []byte("ping"))
	udpExchange(t, udpClient, v.addr("udp", 53), []byte("ping"))

	f.Close()
	for _, c := range open {
		c.SetDeadline(time.Now().Add(5 * time.Second))
		if _, err := c.Read(make([]byte, 1)); err == nil || isTimeout(err) {
			t.Errorf("connection in flight after Close: %v, want closed", err)
		}
	}
	if err := f.Close(); err != nil {
		t.Errorf("second Close = %v", err)
	}
	err = f.StartForward(Forward{Network: "tcp", Listen: "127.0.0.1:0", Target: "ms1:22"})
	if !errors.Is(err, net.ErrClosed) {
		t.Errorf("StartForward after Close = %v, want net.ErrClosed", err)
	}
	goleak.VerifyNone(t, ignore)
}
