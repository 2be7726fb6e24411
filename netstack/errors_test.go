package netstack

import (
	"context"
	"errors"
	"io"
	"net"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestTCPRefused checks a SYN to a port without listener is reset, so the
// dial fails at once with a net.Dial-like error.
func TestTCPRefused(t *testing.T) {
	a, _ := pair(t, pairOpts{tune: defaultTuning})
	tests := []struct {
		name, network, addr string
	}{
		{"ipv4", "tcp", "100.64.0.2:22"},
		{"ipv6", "tcp6", "[fd6d:796e:6574::2]:22"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			start := time.Now()
			c, err := a.DialContext(ctx, tt.network, tt.addr)
			if err == nil {
				c.Close()
				t.Fatal("dial succeeded")
			}
			if want := "dial " + tt.network + " " + tt.addr + ": connection refused"; err.Error() != want {
				t.Errorf("error %q, want %q", err, want)
			}
			if !errors.Is(err, syscall.ECONNREFUSED) {
				t.Errorf("error %v is not ECONNREFUSED", err)
			}
			if d := time.Since(start); d > time.Second {
				t.Errorf("refusal took %v", d)
			}
		})
	}
}

func TestDialErrors(t *testing.T) {
	s := mustNew(t, cfgA, defaultTuning)
	tests := []struct {
		name, network, addr, want string
	}{
		{"unknown network", "ip", "100.64.0.2:1", "dial ip: unknown network ip"},
		{"host name", "tcp", "example.com:80", "no name lookups"},
		{"no port", "tcp", "100.64.0.2", "not an IP:port literal"},
		{"tcp4 with ipv6", "tcp4", "[fd6d:796e:6574::2]:1", "address family does not match"},
		{"udp6 with ipv4", "udp6", "100.64.0.2:1", "address family does not match"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := s.DialContext(context.Background(), tt.network, tt.addr)
			if err == nil {
				c.Close()
				t.Fatal("dial succeeded")
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q does not contain %q", err, tt.want)
			}
		})
	}
	t.Run("cancelled context", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		if _, err := s.DialContext(ctx, "tcp", "100.64.0.2:1"); !errors.Is(err, context.Canceled) {
			t.Errorf("error %v, want context.Canceled", err)
		}
	})
}

func TestListenPortInUse(t *testing.T) {
	s := mustNew(t, cfgA, defaultTuning)
	tests := []struct {
		name   string
		listen func(port uint16) (io.Closer, net.Addr, error)
	}{
		{"tcp", func(p uint16) (io.Closer, net.Addr, error) {
			l, err := s.ListenTCP(p)
			if err != nil {
				return nil, nil, err
			}
			return l, l.Addr(), nil
		}},
		{"udp", func(p uint16) (io.Closer, net.Addr, error) {
			c, err := s.ListenUDP(p)
			if err != nil {
				return nil, nil, err
			}
			return c, c.LocalAddr(), nil
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			first, addr, err := tt.listen(0) // any free port
			if err != nil {
				t.Fatal(err)
			}
			defer first.Close()
			_, port, _ := net.SplitHostPort(addr.String())
			p, _ := strconv.Atoi(port)
			if p == 0 {
				t.Fatalf("port 0 was not replaced by a free port: %v", addr)
			}
			if c, _, err := tt.listen(uint16(p)); !errors.Is(err, syscall.EADDRINUSE) {
				if c != nil {
					c.Close()
				}
				t.Errorf("second listen on %d: %v, want EADDRINUSE", p, err)
			}
		})
	}
}

func TestNewErrors(t *testing.T) {
	v4, v6 := cfgA.IPv4, cfgA.IPv6
	tests := []struct {
		name string
		cfg  Config
	}{
		{"no IPv4", Config{IPv6: v6}},
		{"IPv6 as IPv4", Config{IPv4: v6}},
		{"IPv4 as IPv6", Config{IPv4: v4, IPv6: v4}},
		{"MTU too small", Config{IPv4: v4, MTU: 1000}},
		{"MTU too large", Config{IPv4: v4, MTU: 70000}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if s, err := New(tt.cfg); err == nil {
				s.Close()
				t.Fatal("New succeeded")
			}
		})
	}
}

func TestConfig(t *testing.T) {
	s, err := New(Config{IPv4: cfgA.IPv4})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if mtu, _ := s.MTU(); mtu != DefaultMTU {
		t.Errorf("MTU %d, want %d", mtu, DefaultMTU)
	}
	if v4, v6 := s.Addrs(); v4 != cfgA.IPv4 || v6.IsValid() {
		t.Errorf("Addrs() = %v, %v; want %v and none", v4, v6, cfgA.IPv4)
	}
	if s.BatchSize() < 1 {
		t.Errorf("BatchSize %d", s.BatchSize())
	}
}

func TestClose(t *testing.T) {
	s, err := New(cfgA)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := s.ListenTCP(80)
	if err != nil {
		t.Fatal(err)
	}
	readErr := make(chan error, 1)
	go func() {
		bufs := [][]byte{make([]byte, offset+DefaultMTU+64)}
		_, err := s.Read(bufs, []int{0}, offset)
		readErr <- err
	}()
	time.Sleep(50 * time.Millisecond) // let Read block
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	select {
	case err := <-readErr:
		if !errors.Is(err, os.ErrClosed) {
			t.Errorf("Read after Close: %v, want os.ErrClosed", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Close did not unblock Read")
	}
	if err := s.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if _, err := s.Read([][]byte{make([]byte, 2000)}, []int{0}, offset); !errors.Is(err, os.ErrClosed) {
		t.Errorf("Read: %v, want os.ErrClosed", err)
	}
	if _, err := s.Write([][]byte{buildIP(cfgB.IPv4, cfgA.IPv4, 17, make([]byte, 8), -1, false)}, 0); !errors.Is(err, os.ErrClosed) {
		t.Errorf("Write: %v, want os.ErrClosed", err)
	}
	if _, err := ln.Accept(); err == nil {
		t.Error("Accept succeeded after Close")
	}
	if _, err := s.DialContext(context.Background(), "tcp", "100.64.0.2:1"); !errors.Is(err, net.ErrClosed) {
		t.Errorf("DialContext: %v, want net.ErrClosed", err)
	}
	if _, err := s.ListenUDP(1); !errors.Is(err, net.ErrClosed) {
		t.Errorf("ListenUDP: %v, want net.ErrClosed", err)
	}
	err = s.Forward(func(netip.Addr) bool { return true }, nil)
	if want := "netstack: forward: use of closed network connection"; err == nil || err.Error() != want {
		t.Errorf("Forward: %v, want %q", err, want)
	}
}
