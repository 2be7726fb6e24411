// Package socks lets local programs reach the virtual network and lets
// peers reach local services, without the operating system knowing about
// the virtual network:
//
//   - [Server] is a SOCKS5 proxy (CONNECT only) whose connections are made
//     with an injected dial function;
//   - [Forwarder] runs port forwards: a [Forward] listens on a local
//     address and connects each client to a peer, an [Expose] listens on a
//     port of the virtual network and connects each client to a local
//     service. Both carry TCP (with half-close) or UDP (with a session per
//     client that expires after a minute of silence).
//
// The package knows nothing else of the VPN: in production the dial and
// listen functions reach into a userspace TCP/IP stack, in tests they are
// plain loopback sockets.
package socks

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/netip"
	"strings"
	"time"
)

// DialFunc dials a literal IP:port on the virtual network ("tcp" or "udp").
type DialFunc func(ctx context.Context, network, address string) (net.Conn, error)

// Resolver maps a host name to an address on the virtual network; ok=false
// if unknown.
type Resolver func(name string) (netip.Addr, bool)

// ErrServerClosed is returned by [Server.Serve] once [Server.Close] has been
// called.
var ErrServerClosed = errors.New("socks: server closed")

const (
	// defaultMaxConns bounds the connections in flight of a Server and of
	// each forward and expose, and the UDP sessions of each UDP forward or
	// expose, when their config says 0. Per rule, so that one busy or
	// flooded rule (a peer may open connections to an expose as fast as it
	// likes) cannot shut out the others.
	defaultMaxConns = 1024
	// defaultIdleTimeout closes a piped TCP connection (SOCKS5, forward or
	// expose) after this long without a byte either way, so that one whose
	// far end vanished without a word (a peer that lost power: nothing
	// resets its connections inside the userspace stack) frees its slot.
	// It is RFC 5382's lowest idle timeout for a NAT's established TCP
	// connections (REQ-5: 2 h 4 min): a forward stands where a NAT would,
	// so an idle ssh session or database connection that survives a home
	// router survives here too. 30 minutes would cut ssh sessions left
	// idle over lunch (ssh sends no keepalives by default).
	defaultIdleTimeout = 2*time.Hour + 4*time.Minute
	// dialTimeout bounds every dial, into the virtual network or locally.
	dialTimeout = 30 * time.Second
	// udpIdleTimeout ends a UDP session after this long without a datagram
	// in either direction.
	udpIdleTimeout = 60 * time.Second
	// warnInterval rate-limits warnings that a client could trigger.
	warnInterval = 10 * time.Second
)

// resolve turns a literal IP or a name known to r into an address. A
// trailing dot ("ms1.mynetwork.") is ignored.
func resolve(r Resolver, host string) (netip.Addr, bool) {
	if ip, err := netip.ParseAddr(host); err == nil {
		return ip.Unmap(), true
	}
	return r(strings.TrimSuffix(host, "."))
}

func orDefault(l *slog.Logger) *slog.Logger {
	if l == nil {
		return slog.Default()
	}
	return l
}

// temporary reports whether an Accept error is worth retrying (such as
// running out of file descriptors).
func temporary(err error) bool {
	var t interface{ Temporary() bool }
	return errors.As(err, &t) && t.Temporary()
}

// backoff returns the next pause after a temporary Accept error.
func backoff(d time.Duration) time.Duration {
	if d == 0 {
		return 5 * time.Millisecond
	}
	return min(2*d, time.Second)
}

// sleep waits for d or until ctx is done; false if ctx is done.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}
