//go:build !linux && !darwin && !windows

package kerneltun

import (
	"errors"
	"net/netip"
	"runtime"
)

var errUnsupported = errors.New("kernel mode is not supported on " + runtime.GOOS + ": use 'mynetwork up --userspace'")

func checkFree(string) error              { return errUnsupported }
func configure(string, Config) error      { return errUnsupported }
func addRoute(string, netip.Prefix) error { return errUnsupported }
func delRoute(string, netip.Prefix) error { return errUnsupported }
