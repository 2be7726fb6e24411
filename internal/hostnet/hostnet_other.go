//go:build !linux

package hostnet

import (
	"errors"
	"net/netip"
	"runtime"
	"syscall"
)

var errUnsupported = errors.New("changing the host's network for an exit node is not supported on " + runtime.GOOS + ": only on Linux")

func enableForwarding() (func() error, error) { return nil, errUnsupported }

func masquerade(string, netip.Prefix, netip.Prefix) (func() error, error) {
	return nil, errUnsupported
}

func (ExitRoutes) install() (func() error, error) { return nil, errUnsupported }

func markControl(uint32) func(network, address string, c syscall.RawConn) error {
	return func(string, string, syscall.RawConn) error { return errUnsupported }
}

func reusePort(string, string, syscall.RawConn) error { return errUnsupported }
