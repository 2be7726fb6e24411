package hostnet

import (
	"errors"
	"fmt"
	"syscall"

	"golang.org/x/sys/unix"
)

func markControl(mark uint32) func(network, address string, c syscall.RawConn) error {
	return func(network, address string, c syscall.RawConn) error {
		var err error
		if cerr := c.Control(func(fd uintptr) {
			err = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_MARK, int(mark))
		}); cerr != nil {
			return fmt.Errorf("set socket mark on %s %s: %w", network, address, cerr)
		}
		if errors.Is(err, unix.EPERM) {
			// Kernels before 5.17 take only CAP_NET_ADMIN.
			return fmt.Errorf("set socket mark %#x on %s %s: needs CAP_NET_ADMIN or CAP_NET_RAW (run as root): %w", mark, network, address, err)
		}
		if err != nil {
			return fmt.Errorf("set socket mark %#x on %s %s: %w", mark, network, address, err)
		}
		return nil
	}
}

// reusePort lets a dialing socket share the port of a listener that has
// SO_REUSEPORT too, as libp2p's own listeners and dials do.
func reusePort(network, address string, c syscall.RawConn) error {
	var err error
	if cerr := c.Control(func(fd uintptr) {
		err = errors.Join(unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_REUSEADDR, 1),
			unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_REUSEPORT, 1))
	}); cerr != nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("reuse port on %s %s: %w", network, address, err)
	}
	return nil
}
