//go:build !linux

package kerneltun

import "golang.zx2c4.com/wireguard/tun"

// DefaultMTU is large on purpose where the TUN has no segmentation
// offload: packets travel on a reliable, encrypted libp2p stream that
// segments them itself, so the TUN need not fit the underlay's 1500 bytes,
// and a whole 64 KB TCP segment costs one read, one frame and one write
// instead of forty-five.
const DefaultMTU = 65000

func createTUN(name string, mtu int) (tun.Device, error) { return tun.CreateTUN(name, mtu) }
