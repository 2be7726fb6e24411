package netstack

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"syscall"

	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/adapters/gonet"
	"gvisor.dev/gvisor/pkg/tcpip/network/ipv4"
	"gvisor.dev/gvisor/pkg/tcpip/network/ipv6"
	"gvisor.dev/gvisor/pkg/tcpip/transport/tcp"
	"gvisor.dev/gvisor/pkg/tcpip/transport/udp"
	"gvisor.dev/gvisor/pkg/waiter"
)

// listenBacklog is the TCP accept queue length (Linux's default somaxconn).
const listenBacklog = 4096

// DialContext connects to address, an "IP:port" literal (no name lookups),
// through the stack. network is "tcp", "tcp4", "tcp6", "udp", "udp4" or
// "udp6". ctx bounds the TCP handshake. Errors are *net.OpError values like
// net.Dial's, e.g. "dial tcp 100.64.1.2:22: connection refused", and wrap
// syscall errno values where one fits (errors.Is(err, syscall.ECONNREFUSED)).
func (s *Stack) DialContext(ctx context.Context, network, address string) (net.Conn, error) {
	opErr := func(addr net.Addr, err error) error {
		return &net.OpError{Op: "dial", Net: network, Addr: addr, Err: err}
	}
	var isTCP bool
	switch network {
	case "tcp", "tcp4", "tcp6":
		isTCP = true
	case "udp", "udp4", "udp6":
	default:
		return nil, opErr(nil, net.UnknownNetworkError(network))
	}
	ap, err := netip.ParseAddrPort(address)
	if err != nil {
		return nil, opErr(nil, &net.AddrError{Err: "not an IP:port literal (no name lookups)", Addr: address})
	}
	ip := ap.Addr().Unmap().WithZone("")
	ap = netip.AddrPortFrom(ip, ap.Port())
	var addr net.Addr = net.TCPAddrFromAddrPort(ap)
	if !isTCP {
		addr = net.UDPAddrFromAddrPort(ap)
	}
	if last := network[len(network)-1]; (last == '4' && !ip.Is4()) || (last == '6' && !ip.Is6()) {
		return nil, opErr(addr, &net.AddrError{Err: "address family does not match network", Addr: ip.String()})
	}
	if s.closed.Load() {
		return nil, opErr(addr, net.ErrClosed)
	}
	full, proto := fullAddr(ap)
	var conn net.Conn
	if isTCP {
		conn, err = s.dialTCP(ctx, full, proto)
	} else {
		conn, err = s.dialUDP(full, proto)
	}
	if err != nil {
		return nil, opErr(addr, err)
	}
	return conn, nil
}

func (s *Stack) dialTCP(ctx context.Context, to tcpip.FullAddress, proto tcpip.NetworkProtocolNumber) (net.Conn, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	var wq waiter.Queue
	ep, terr := s.st.NewEndpoint(tcp.ProtocolNumber, proto, &wq)
	if terr != nil {
		return nil, errnoOf(terr)
	}
	// The endpoint becomes writable when the handshake ends, either way.
	entry, ready := waiter.NewChannelEntry(waiter.WritableEvents)
	wq.EventRegister(&entry)
	defer wq.EventUnregister(&entry)
	terr = ep.Connect(to)
	if _, ok := terr.(*tcpip.ErrConnectStarted); ok {
		select {
		case <-ready:
			terr = ep.LastError()
		case <-ctx.Done():
			ep.Close()
			return nil, ctx.Err()
		}
	}
	if terr != nil {
		ep.Close()
		return nil, errnoOf(terr)
	}
	return gonet.NewTCPConn(&wq, ep), nil
}

func (s *Stack) dialUDP(to tcpip.FullAddress, proto tcpip.NetworkProtocolNumber) (net.Conn, error) {
	var wq waiter.Queue
	ep, terr := s.st.NewEndpoint(udp.ProtocolNumber, proto, &wq)
	if terr != nil {
		return nil, errnoOf(terr)
	}
	if terr := ep.Connect(to); terr != nil {
		ep.Close()
		return nil, errnoOf(terr)
	}
	return gonet.NewUDPConn(&wq, ep), nil
}

// ListenTCP accepts TCP connections to this node's mesh addresses, IPv4 and
// IPv6, on port (0 picks a free port). Connections over IPv4 report plain
// IPv4 remote addresses, not IPv4-mapped IPv6 ones.
func (s *Stack) ListenTCP(port uint16) (net.Listener, error) {
	var wq waiter.Queue
	ep, err := s.listen(tcp.ProtocolNumber, port, &wq)
	if err != nil {
		return nil, &net.OpError{Op: "listen", Net: "tcp", Addr: &net.TCPAddr{IP: net.IPv6unspecified, Port: int(port)}, Err: err}
	}
	if terr := ep.Listen(listenBacklog); terr != nil {
		ep.Close()
		return nil, &net.OpError{Op: "listen", Net: "tcp", Addr: &net.TCPAddr{IP: net.IPv6unspecified, Port: int(port)}, Err: errnoOf(terr)}
	}
	return gonet.NewTCPListener(s.st, &wq, ep), nil
}

// ListenUDP receives UDP datagrams sent to this node's mesh addresses, IPv4
// and IPv6, on port (0 picks a free port). One PacketConn serves both
// families: ReadFrom reports IPv4 senders as plain IPv4 addresses, and
// WriteTo takes a *net.UDPAddr of either family (gonet panics on other
// net.Addr types).
func (s *Stack) ListenUDP(port uint16) (net.PacketConn, error) {
	var wq waiter.Queue
	ep, err := s.listen(udp.ProtocolNumber, port, &wq)
	if err != nil {
		return nil, &net.OpError{Op: "listen", Net: "udp", Addr: &net.UDPAddr{IP: net.IPv6unspecified, Port: int(port)}, Err: err}
	}
	return gonet.NewUDPConn(&wq, ep), nil
}

// listen makes a dual-stack endpoint bound to the unspecified address and
// port: an IPv6 endpoint without IPV6_V6ONLY also takes IPv4 traffic. The
// NIC accepts only packets for its own addresses, so in effect it listens
// on the node's mesh addresses.
func (s *Stack) listen(trans tcpip.TransportProtocolNumber, port uint16, wq *waiter.Queue) (tcpip.Endpoint, error) {
	if s.closed.Load() {
		return nil, net.ErrClosed
	}
	ep, terr := s.st.NewEndpoint(trans, ipv6.ProtocolNumber, wq)
	if terr != nil {
		return nil, errnoOf(terr)
	}
	ep.SocketOptions().SetV6Only(false)
	if terr := ep.Bind(tcpip.FullAddress{Port: port}); terr != nil {
		ep.Close()
		return nil, errnoOf(terr)
	}
	return ep, nil
}

// fullAddr converts ap (unmapped, no zone) to gVisor's form.
func fullAddr(ap netip.AddrPort) (tcpip.FullAddress, tcpip.NetworkProtocolNumber) {
	if ap.Addr().Is4() {
		return tcpip.FullAddress{Addr: tcpip.AddrFrom4(ap.Addr().As4()), Port: ap.Port()}, ipv4.ProtocolNumber
	}
	return tcpip.FullAddress{Addr: tcpip.AddrFrom16(ap.Addr().As16()), Port: ap.Port()}, ipv6.ProtocolNumber
}

// errnoOf turns a gVisor error into the errno a kernel socket would give,
// so messages and errors.Is match net.Dial's; others keep gVisor's text.
func errnoOf(err tcpip.Error) error {
	switch err.(type) {
	case *tcpip.ErrConnectionRefused:
		return syscall.ECONNREFUSED
	case *tcpip.ErrConnectionReset:
		return syscall.ECONNRESET
	case *tcpip.ErrConnectionAborted, *tcpip.ErrAborted:
		return syscall.ECONNABORTED
	case *tcpip.ErrTimeout:
		return syscall.ETIMEDOUT
	case *tcpip.ErrHostUnreachable, *tcpip.ErrHostDown:
		return syscall.EHOSTUNREACH
	case *tcpip.ErrNetworkUnreachable:
		return syscall.ENETUNREACH
	case *tcpip.ErrPortInUse:
		return syscall.EADDRINUSE
	case *tcpip.ErrBadLocalAddress:
		return syscall.EADDRNOTAVAIL
	}
	return errors.New(err.String())
}
