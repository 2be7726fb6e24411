package kerneltun

import (
	"fmt"
	"os"

	"github.com/mynetwork/mynetwork/internal/packet"
	"golang.org/x/sys/unix"
	"golang.zx2c4.com/wireguard/tun"
)

// DefaultMTU on Linux is the common VPN MTU, 1420, with the TUN's TCP
// segmentation offload (below): TCP still crosses the tunnel in super-packets
// of up to 64 KiB, while the inner TCP works in 1380-byte segments and
// sizes its bursts to the link's rate. At 65000 every TCP segment is 64 KB
// whatever the link, and a few of them in flight fill a slow link's queue:
// ping beside one iperf3 stream over a 100 Mbit/s link took 49 ms at 65000
// and 3-8 ms at 1420 (raw 4-5, wireguard-go 5). On an unshaped 20 Gbit/s
// veth, where both are CPU-bound, 1420 gave one stream 0.73-1.18 of
// 65000's rate in eight same-run comparisons (mean 0.95) and four streams
// 0.74-1.20 in five (mean 0.93): a few percent at most, within the
// machine's noise, for a tenfold shorter queue on the links people have.
const DefaultMTU = 1420

// createTUN opens a Linux TUN. At MTU 16000 and up it has no virtio-net
// header (IFF_VNET_HDR), which tun.CreateTUN always asks for: every TCP
// segment is already one packet of up to 65000 bytes, so segmentation
// offload has nothing to do, and with the header the library would read
// each packet into its own buffer, copy it out and compute its TCP
// checksum in Go (together 10% of the sending daemon's CPU under iperf3).
// Without it the kernel reads straight into the engine's buffer and fills
// in checksums itself.
//
// Below 16000 the TUN has the header and TCP segmentation offload, and the
// device hands the header over with each packet (gsoTUN): the inner TCP
// works in small segments, which queue little behind a slow link, while
// the tunnel still moves up to 64 KiB per read, frame and write.
func createTUN(name string, mtu int) (tun.Device, error) {
	if mtu < 16000 {
		dev, err := tun.CreateTUN(name, mtu)
		if err != nil {
			return nil, err
		}
		g := gsoTUN{dev}
		if err := g.tcpOffloadOnly(); err != nil {
			dev.Close()
			return nil, err
		}
		return g, nil
	}
	fd, err := unix.Open("/dev/net/tun", unix.O_RDWR|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("open /dev/net/tun: %w", err)
	}
	ifr, err := unix.NewIfreq(name)
	if err != nil {
		unix.Close(fd)
		return nil, err
	}
	ifr.SetUint16(unix.IFF_TUN | unix.IFF_NO_PI)
	if err := unix.IoctlIfreq(fd, unix.TUNSETIFF, ifr); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("TUNSETIFF: %w", err)
	}
	// Non-blocking before the file is handed to Go's poller.
	if err := unix.SetNonblock(fd, true); err != nil {
		unix.Close(fd)
		return nil, err
	}
	return tun.CreateTUNFromFile(os.NewFile(uintptr(fd), "/dev/net/tun"), mtu)
}

// gsoTUN reads and writes one packet at a time with its virtio-net header,
// which sits in the 10 bytes in front of offset (the engine's headroom): a
// TCP super-packet of up to 64 KiB stays whole from the sending kernel to
// the receiving one when both ends are such devices (tunnel.GSOProtocol);
// the transport segments it for any other peer.
type gsoTUN struct{ tun.Device }

// VirtioHeaders says that packets carry the header (packet.Offloader).
func (gsoTUN) VirtioHeaders() bool { return true }

// ReadSize is the largest packet a read returns: a super-packet.
func (gsoTUN) ReadSize() int { return 65535 }

func (gsoTUN) BatchSize() int { return 1 }

func (d gsoTUN) Read(bufs [][]byte, sizes []int, offset int) (int, error) {
	n, err := d.File().Read(bufs[0][offset-packet.VirtioHdrLen:])
	if err != nil {
		return 0, err
	}
	if n < packet.VirtioHdrLen {
		return 0, fmt.Errorf("TUN read of %d bytes is shorter than its header", n)
	}
	sizes[0] = n - packet.VirtioHdrLen
	return 1, nil
}

func (d gsoTUN) Write(bufs [][]byte, offset int) (int, error) {
	for i, b := range bufs {
		if _, err := d.File().Write(b[offset-packet.VirtioHdrLen:]); err != nil {
			return i, err
		}
	}
	return len(bufs), nil
}

// tcpOffloadOnly turns UDP segmentation offload off again (the library
// turns it on where the kernel has it): only TCP super-packets are carried
// whole or segmented on the way.
func (d gsoTUN) tcpOffloadOnly() error {
	sc, err := d.File().SyscallConn()
	if err != nil {
		return err
	}
	var serr error
	if err := sc.Control(func(fd uintptr) {
		serr = unix.IoctlSetInt(int(fd), unix.TUNSETOFFLOAD, unix.TUN_F_CSUM|unix.TUN_F_TSO4|unix.TUN_F_TSO6)
	}); err != nil {
		return err
	}
	if serr != nil {
		return fmt.Errorf("TUNSETOFFLOAD: %w", serr)
	}
	return nil
}
