package config

import (
	"fmt"
	"net/netip"
)

// CheckMetrics checks where Prometheus metrics are to be served: an IP and
// port on a loopback address. Like every local endpoint of the node, the
// metrics serve only the machine's own users: they name the peers, their
// paths and traffic, which are nobody else's business.
func CheckMetrics(addr string) error {
	ap, err := netip.ParseAddrPort(addr)
	if err != nil {
		return fmt.Errorf("%q is not an IP:port (e.g. 127.0.0.1:9464)", addr)
	}
	if !ap.Addr().IsLoopback() {
		return fmt.Errorf("%q is not a loopback address: metrics are served only to this machine (e.g. 127.0.0.1:%d)", addr, ap.Port())
	}
	if ap.Port() == 0 {
		return fmt.Errorf("%q has no port (e.g. 127.0.0.1:9464)", addr)
	}
	return nil
}
