// Package kerneltun is the root backend: an OS TUN device from
// golang.zx2c4.com/wireguard/tun with the node's virtual addresses and its
// peers' routes. Everything it adds to the system goes away on Close.
package kerneltun

import (
	"errors"
	"fmt"
	"net/netip"
	"os"
	"slices"
	"sync"

	"golang.zx2c4.com/wireguard/tun"

	"github.com/mynetwork/mynetwork/internal/packet"
)

// Config is what the device is created with.
type Config struct {
	Name string       // interface name; on macOS "utun" or "utunN"
	MTU  int          // 0 means DefaultMTU (per platform)
	IPv4 netip.Prefix // this node's address with the mesh prefix length
	IPv6 netip.Prefix
}

// Device is a configured TUN interface: a packet.Device, and a
// packet.Offloader.
type Device struct {
	tun.Device
	name string

	mu     sync.Mutex
	routes []netip.Prefix
	closed bool
}

// Create makes the TUN interface, assigns the addresses and brings it up.
// On any error nothing is left behind.
func Create(cfg Config) (*Device, error) {
	if cfg.MTU == 0 {
		cfg.MTU = DefaultMTU
	}
	if !cfg.IPv4.IsValid() {
		return nil, errors.New("kernel-tun: an IPv4 address is required")
	}
	if err := checkFree(cfg.Name); err != nil {
		return nil, err
	}
	dev, err := createTUN(cfg.Name, cfg.MTU)
	if err != nil {
		return nil, fmt.Errorf("create TUN interface %q: %w", cfg.Name, err)
	}
	name, err := dev.Name()
	if err != nil {
		dev.Close()
		return nil, fmt.Errorf("TUN interface name: %w", err)
	}
	d := &Device{Device: dev, name: name}
	if err := configure(name, cfg); err != nil {
		dev.Close()
		return nil, fmt.Errorf("configure %s: %w", name, err)
	}
	return d, nil
}

// Name is the interface's name as the OS knows it.
func (d *Device) Name() string { return d.name }

// AddRoute routes prefix to the interface.
func (d *Device) AddRoute(p netip.Prefix) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if slices.Contains(d.routes, p) {
		return nil
	}
	if err := addRoute(d.name, p); err != nil {
		return fmt.Errorf("add route %s dev %s: %w", p, d.name, err)
	}
	d.routes = append(d.routes, p)
	return nil
}

// DelRoute removes a route added by AddRoute.
func (d *Device) DelRoute(p netip.Prefix) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	i := slices.Index(d.routes, p)
	if i < 0 {
		return nil
	}
	if err := delRoute(d.name, p); err != nil {
		return fmt.Errorf("delete route %s dev %s: %w", p, d.name, err)
	}
	d.routes = slices.Delete(d.routes, i, i+1)
	return nil
}

// Close removes the routes and the interface. It is idempotent.
func (d *Device) Close() error {
	d.mu.Lock()
	if d.closed {
		d.mu.Unlock()
		return nil
	}
	d.closed = true
	routes := d.routes
	d.routes = nil
	d.mu.Unlock()
	for _, p := range routes {
		delRoute(d.name, p) // best effort: the interface going away takes them too
	}
	return d.Device.Close()
}

// Read is the TUN's, except that once Close has been called every error
// is os.ErrClosed, which the engine takes for a clean end: without the
// virtio-net header the library's netlink listener, closing, leaves its
// own error ("netlink socket closed") for the next read.
func (d *Device) Read(bufs [][]byte, sizes []int, offset int) (int, error) {
	n, err := d.Device.Read(bufs, sizes, offset)
	if err != nil {
		d.mu.Lock()
		closed := d.closed
		d.mu.Unlock()
		if closed {
			return n, os.ErrClosed
		}
	}
	return n, err
}

// VirtioHeaders says whether packets carry a virtio-net header in the 10
// bytes in front of their offset (a Linux TUN below MTU 16000).
func (d *Device) VirtioHeaders() bool {
	return packet.Offloads(d.Device)
}

// ReadSize is the largest packet a read returns: the MTU, or a TCP
// super-packet's 64 KiB with segmentation offload.
func (d *Device) ReadSize() int {
	if r, ok := d.Device.(interface{ ReadSize() int }); ok {
		return r.ReadSize()
	}
	mtu, _ := d.Device.MTU()
	return mtu
}
