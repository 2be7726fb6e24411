// Package pipe joins two connections both ways, passing on half-closes:
// SOCKS5, the port forwards and the control socket's dial all use it.
package pipe

import (
	"io"
	"net"
	"sync"
	"time"
)

// closeWriter is a connection that can half-close: *net.TCPConn, gVisor's
// gonet.TCPConn, and wrappers that pass CloseWrite on.
type closeWriter interface {
	CloseWrite() error
}

// CloseWrite half-closes c, telling its peer that nothing more comes. A
// connection that cannot half-close is closed: its peer then sees the end
// of the stream too, though it can no longer answer.
func CloseWrite(c net.Conn) error {
	if cw, ok := c.(closeWriter); ok {
		return cw.CloseWrite()
	}
	return c.Close()
}

// Join copies a to b and b to a until both directions have ended, then
// closes both. The end of one direction is passed on as a half-close, so
// the other direction keeps flowing (a client that sends a request and
// half-closes still gets its answer). An error in either direction closes
// both connections at once. Join returns after its second goroutine.
func Join(a, b net.Conn) { JoinIdle(a, b, 0) }

// JoinIdle is Join that also closes both connections once no byte has
// passed either way for idle, so that a connection whose far end vanished
// without a word does not hold its slot forever; idle <= 0 means never.
func JoinIdle(a, b net.Conn, idle time.Duration) {
	var once sync.Once
	abort := func() {
		once.Do(func() {
			a.Close()
			b.Close()
		})
	}
	timer := NewIdleTimer(idle, abort)
	defer timer.Stop()
	half := func(dst, src net.Conn) {
		var r io.Reader = src // as it is, so that io.Copy can splice
		if timer != nil {
			r = touchReader{src, timer}
		}
		if _, err := io.Copy(dst, r); err != nil || CloseWrite(dst) != nil {
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

// touchReader reports every read that returns bytes to an IdleTimer.
type touchReader struct {
	r io.Reader
	t *IdleTimer
}

func (r touchReader) Read(p []byte) (int, error) {
	n, err := r.r.Read(p)
	if n > 0 {
		r.t.Touch()
	}
	return n, err
}
