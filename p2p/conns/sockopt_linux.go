//go:build linux

package conns

import (
	"syscall"

	"golang.org/x/sys/unix"
)

// tuning reads a TCP socket's delivery rate and sets its unsent limit
// (coalesce.go).
type tuning struct {
	raw    syscall.RawConn
	unsent int64 // the limit last set; 0: none yet
}

// newTuning returns the tuning of c's socket, or nil when it is not a TCP
// socket.
func newTuning(c any) *tuning {
	sc, ok := c.(syscall.Conn)
	if !ok {
		return nil
	}
	raw, err := sc.SyscallConn()
	if err != nil {
		return nil
	}
	t := &tuning{raw: raw}
	if _, ok := t.deliveryRate(); !ok {
		return nil
	}
	return t
}

// deliveryRate is the connection's most recent delivery rate in bytes per
// second, as the kernel measured it from acknowledgements.
func (t *tuning) deliveryRate() (uint64, bool) {
	var info *unix.TCPInfo
	var err error
	if cerr := t.raw.Control(func(fd uintptr) {
		info, err = unix.GetsockoptTCPInfo(int(fd), unix.IPPROTO_TCP, unix.TCP_INFO)
	}); cerr != nil || err != nil {
		return 0, false
	}
	return info.Delivery_rate, true
}

// setUnsent limits the bytes the socket holds that it has not sent yet
// (TCP_NOTSENT_LOWAT: it reports room for a write only below that).
func (t *tuning) setUnsent(n int64) {
	if n == t.unsent {
		return
	}
	t.unsent = n
	t.raw.Control(func(fd uintptr) {
		unix.SetsockoptInt(int(fd), unix.IPPROTO_TCP, unix.TCP_NOTSENT_LOWAT, int(n))
	})
}
