package socks

import (
	"io"
	"net"
	"sync"
)

// closeWriter is a connection that can half-close: *net.TCPConn, gVisor's
// gonet.TCPConn, and ownedConn.
type closeWriter interface {
	CloseWrite() error
}

// closeWrite half-closes c, telling its peer that nothing more comes. A
// connection that cannot half-close is closed: its peer then sees the end
// of the stream too, though it can no longer answer.
func closeWrite(c net.Conn) error {
	if cw, ok := c.(closeWriter); ok {
		return cw.CloseWrite()
	}
	return c.Close()
}

// pipe copies a to b and b to a until both directions have ended, then
// closes both. The end of one direction is passed on as a half-close, so
// the other direction keeps flowing (a client that sends a request and
// half-closes still gets its answer). An error in either direction closes
// both connections at once. pipe returns after its second goroutine.
func pipe(a, b net.Conn) {
	var once sync.Once
	abort := func() {
		once.Do(func() {
			a.Close()
			b.Close()
		})
	}
	half := func(dst, src net.Conn) {
		if _, err := io.Copy(dst, src); err != nil || closeWrite(dst) != nil {
			abort()
		}
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		half(b, a)
	}()
	half(a, b)
	<-done
	abort()
}
