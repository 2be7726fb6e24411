package p2p

import (
	"context"
	"errors"
	"net"
	"syscall"

	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/p2p/transport/quicreuse"
	"github.com/libp2p/go-libp2p/p2p/transport/tcp"
	ma "github.com/multiformats/go-multiaddr"
	manet "github.com/multiformats/go-multiaddr/net"
	"github.com/quic-go/quic-go"
)

// SocketControl is a net.Dialer or net.ListenConfig Control function.
type SocketControl func(network, address string, c syscall.RawConn) error

// socketOptions make every socket the host opens for itself pass
// opts.Control (a mark that keeps the tunnel's own traffic out of an exit
// node's routing): TCP dials, from the listen port as libp2p dials
// (opts.ReuseControl) or, where that port is taken for the destination,
// from any; and QUIC's UDP sockets, which libp2p would otherwise open
// without it where no listener serves the address family. TCP listeners
// stay libp2p's: what they accept leaves from the listen port.
func (n *Node) socketOptions(opts Options) []libp2p.Option {
	if opts.Control == nil {
		return []libp2p.Option{libp2p.Transport(n.conns.TCPTransport)}
	}
	d := controlledDialer{n: n, control: opts.Control, reuse: opts.ReuseControl}
	dialer := tcp.WithDialerForAddr(func(ma.Multiaddr) (tcp.ContextDialer, error) { return d, nil })
	return []libp2p.Option{
		libp2p.Transport(n.conns.TCPTransport, dialer),
		libp2p.QUICReuse(n.quicConnManager(opts)),
	}
}

// controlledDialer dials TCP from the host's listen port of the address
// family, sharing it, with reuse, else from a port the kernel picks, with
// control.
type controlledDialer struct {
	n              *Node
	control, reuse SocketControl
}

func (d controlledDialer) DialContext(ctx context.Context, network, address string) (net.Conn, error) {
	if port := d.n.listenPort(network); port != 0 && d.reuse != nil {
		local := &net.TCPAddr{IP: net.IPv4zero, Port: port}
		if network == "tcp6" {
			local.IP = net.IPv6unspecified
		}
		nd := net.Dialer{LocalAddr: local, Control: d.reuse}
		c, err := nd.DialContext(ctx, network, address)
		if err == nil || !errors.Is(err, syscall.EADDRINUSE) && !errors.Is(err, syscall.EADDRNOTAVAIL) {
			return c, err
		}
	}
	nd := net.Dialer{Control: d.control}
	return nd.DialContext(ctx, network, address)
}

// listenPort is the port of a TCP listener of the host for network
// ("tcp4" or "tcp6"), or 0.
func (n *Node) listenPort(network string) int {
	for _, a := range n.host.Network().ListenAddresses() {
		nw, addr, err := manet.DialArgs(a)
		if err != nil || nw != network {
			continue
		}
		if ta, err := net.ResolveTCPAddr(nw, addr); err == nil {
			return ta.Port
		}
	}
	return 0
}

// quicConnManager is a constructor for libp2p.QUICReuse: libp2p's QUIC
// socket manager with its default settings (inbound connections counted
// by the resource manager, source addresses verified by it, metrics) and
// UDP sockets that pass opts.Control. The node closes it after the host.
func (n *Node) quicConnManager(opts Options) func(quic.StatelessResetKey, quic.TokenGeneratorKey) (*quicreuse.ConnManager, error) {
	return func(key quic.StatelessResetKey, token quic.TokenGeneratorKey) (*quicreuse.ConnManager, error) {
		qopts := []quicreuse.Option{
			quicreuse.OverrideListenUDP(func(network string, laddr *net.UDPAddr) (net.PacketConn, error) {
				lc := net.ListenConfig{Control: opts.Control}
				return lc.ListenPacket(context.Background(), network, laddr.String())
			}),
			quicreuse.ConnContext(n.quicInbound),
			quicreuse.VerifySourceAddress(n.rcm.VerifySourceAddress),
		}
		if opts.Metrics != nil {
			qopts = append(qopts, quicreuse.EnableMetrics(opts.Metrics))
		}
		cm, err := quicreuse.NewConnManager(key, token, qopts...)
		n.quicCM = cm
		return cm, err
	}
}

// quicInbound opens an inbound QUIC connection's scope in the resource
// manager, which may refuse it, and ends it with the connection.
func (n *Node) quicInbound(ctx context.Context, ci *quic.ClientInfo) (context.Context, error) {
	addr, err := quicreuse.ToQuicMultiaddr(ci.RemoteAddr, quic.Version1)
	if err != nil {
		addr = nil // the resource manager decides without it
	}
	scope, err := n.rcm.OpenConnection(network.DirInbound, false, addr)
	if err != nil {
		return ctx, err
	}
	ctx = network.WithConnManagementScope(ctx, scope)
	context.AfterFunc(ctx, scope.Done)
	return ctx, nil
}
