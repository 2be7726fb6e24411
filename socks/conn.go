package socks

import (
	"net"
	"net/netip"
	"sync"

	"github.com/mynetwork/mynetwork/internal/pipe"
)

// ownedConn wraps the connections that go-socks5 copies between. go-socks5
// starts two copy goroutines per CONNECT and, when one fails, returns
// without waiting for the other; ownedConn counts the Read, Write and
// CloseWrite calls in progress so that the server can wait (with wait,
// after Close) until no such goroutine can block any more: from then on
// every call fails at once with net.ErrClosed.
//
// Its reads also count as activity for the connection's idle timer.
//
// It also passes CloseWrite through (go-socks5 half-closes by an interface
// check, which a wrapper would otherwise hide) and always reports a
// *net.TCPAddr as LocalAddr, which go-socks5 asserts when it replies.
type ownedConn struct {
	net.Conn
	calls sync.WaitGroup
	idle  *pipe.IdleTimer // nil: none; set before the first Read

	mu     sync.Mutex
	closed bool
}

func newOwnedConn(c net.Conn, idle *pipe.IdleTimer) *ownedConn {
	return &ownedConn{Conn: c, idle: idle}
}

func (c *ownedConn) enter() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return false
	}
	c.calls.Add(1)
	return true
}

func (c *ownedConn) Read(p []byte) (int, error) {
	if !c.enter() {
		return 0, net.ErrClosed
	}
	defer c.calls.Done()
	n, err := c.Conn.Read(p)
	if n > 0 {
		c.idle.Touch()
	}
	return n, err
}

func (c *ownedConn) Write(p []byte) (int, error) {
	if !c.enter() {
		return 0, net.ErrClosed
	}
	defer c.calls.Done()
	return c.Conn.Write(p)
}

// CloseWrite half-closes the connection (or closes it if it cannot).
func (c *ownedConn) CloseWrite() error {
	if !c.enter() {
		return net.ErrClosed
	}
	defer c.calls.Done()
	return pipe.CloseWrite(c.Conn)
}

func (c *ownedConn) Close() error {
	c.mu.Lock()
	first := !c.closed
	c.closed = true
	c.mu.Unlock()
	if !first {
		return nil
	}
	return c.Conn.Close()
}

// wait returns once the connection is closed and no call is in progress.
func (c *ownedConn) wait() {
	c.Close()
	c.calls.Wait()
}

func (c *ownedConn) LocalAddr() net.Addr {
	a := c.Conn.LocalAddr()
	if t, ok := a.(*net.TCPAddr); ok {
		return t
	}
	if a != nil {
		if ap, err := netip.ParseAddrPort(a.String()); err == nil {
			return net.TCPAddrFromAddrPort(ap)
		}
	}
	return &net.TCPAddr{IP: net.IPv4zero}
}
