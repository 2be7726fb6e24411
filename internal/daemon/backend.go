package daemon

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"runtime"

	"github.com/mynetwork/mynetwork/config"
	"github.com/mynetwork/mynetwork/internal/hostnet"
	"github.com/mynetwork/mynetwork/internal/packet"
	kerneltun "github.com/mynetwork/mynetwork/kernel-tun"
	"github.com/mynetwork/mynetwork/p2p"
)

// backend is the device side of a mode: the kernel TUN or the userspace
// stack. The engine sees only its packet.Device half.
type backend interface {
	packet.Device
	Name() string
	Mode() string
	AddRoute(netip.Prefix) error
	DelRoute(netip.Prefix) error
	dial(ctx context.Context, network, address string) (net.Conn, error)
	exitHost
}

// kernelBackend is the TUN interface; the OS routes dials into it.
type kernelBackend struct {
	*kerneltun.Device
}

func newKernelBackend(iface string, a config.Addresses, mtu int) (*kernelBackend, error) {
	dev, err := kerneltun.Create(kerneltun.Config{
		Name: iface,
		MTU:  mtu,
		IPv4: netip.PrefixFrom(a.IPv4, config.MeshPrefix4.Bits()),
		IPv6: netip.PrefixFrom(a.IPv6, config.MeshPrefix6.Bits()),
	})
	if err != nil {
		return nil, err
	}
	return &kernelBackend{dev}, nil
}

func (kernelBackend) Mode() string { return "kernel" }

func (kernelBackend) dial(ctx context.Context, network, address string) (net.Conn, error) {
	var d net.Dialer
	return d.DialContext(ctx, network, address)
}

// offerExit turns IP forwarding on and masquerades the mesh's addresses
// leaving through any other interface; undo puts both back.
func (k *kernelBackend) offerExit(*Daemon) (func() error, error) {
	restore, err := hostnet.EnableForwarding()
	if err != nil {
		return nil, err
	}
	undoNAT, err := hostnet.Masquerade(k.Name(), config.MeshPrefix4, config.MeshPrefix6)
	if err != nil {
		restore()
		return nil, err
	}
	return func() error { return errors.Join(undoNAT(), restore()) }, nil
}

// useExit sends all of the host's traffic into the interface by policy
// routing, but the tunnel's own: its listen ports (libp2p dials from them
// too, with SO_REUSEPORT) and sockets marked with the table's number.
func (k *kernelBackend) useExit(d *Daemon) (func() error, error) {
	ifi, err := net.InterfaceByName(k.Name())
	if err != nil {
		return nil, err
	}
	var ports []hostnet.Port
	tcp, udp := listenPorts(d.cfg)
	for _, p := range tcp {
		ports = append(ports, hostnet.Port{Proto: "tcp", Port: p})
	}
	for _, p := range udp {
		ports = append(ports, hostnet.Port{Proto: "udp", Port: p})
	}
	id := exitTableBase + uint32(ifi.Index)
	return hostnet.ExitRoutes{Iface: k.Name(), Table: int(id), Mark: id, Ports: ports, AllowLAN: d.exit.allowLAN}.Install()
}

// exitTableBase plus the interface's index numbers the routing table of
// an exit node's default routes, and the mark that keeps a socket out of
// it: "mn" in the high half, one per interface.
const exitTableBase = 0x6d6e0000

// socketControls mark every socket of the node's own in kernel mode on
// Linux (the interface's number, which the exit node's policy routing
// keeps on the main table), so that no connection of the tunnel's enters
// the tunnel, whatever port it leaves from; nil elsewhere, where nothing
// routes the host's traffic into the interface.
func (d *Daemon) socketControls() (ctl, reuse p2p.SocketControl) {
	if d.opts.Userspace || runtime.GOOS != "linux" {
		return nil, nil
	}
	ifi, err := net.InterfaceByName(d.dev.Name())
	if err != nil {
		return nil, nil
	}
	mark := exitTableBase + uint32(ifi.Index)
	return hostnet.MarkControl(mark), hostnet.ReuseMarkControl(mark)
}
