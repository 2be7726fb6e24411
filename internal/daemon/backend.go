package daemon

import (
	"context"
	"errors"
	"net"
	"net/netip"

	"github.com/mynetwork/mynetwork/config"
	"github.com/mynetwork/mynetwork/internal/packet"
	kerneltun "github.com/mynetwork/mynetwork/kernel-tun"
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

// offerExit: not yet in this slice.
func (kernelBackend) offerExit(*Daemon) (func() error, error) {
	return nil, errors.New("not yet")
}

func (kernelBackend) useExit(*Daemon) (func() error, error) {
	return nil, errors.New("not yet")
}
