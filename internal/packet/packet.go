// Package packet is the contract every component that touches IP packets
// keeps: where a packet sits in its buffer (Headroom), the offload header in
// front of it, the devices that read and write packets, and the work a
// packet with an offload header needs before a device without one may take
// it (checksum completion, segmentation).
//
// A packet always travels in a buffer with Headroom bytes in front of it;
// the last VirtioHdrLen of those hold its offload header. A device that
// reads and writes offload headers says so (Offloader); for any other
// device the header is zero on the way out, and the engine makes each
// received packet whole before the device sees it (MakeWhole).
package packet

// Headroom is the space reserved in front of every packet: the Linux TUN
// with offload needs VirtioHdrLen bytes for the header, and the packet
// transport puts its frame's length in front of that.
const Headroom = 16

// Device is a source and sink of IP packets: a subset of
// golang.zx2c4.com/wireguard/tun.Device, so the OS TUN and tuntest fakes fit
// as they are. Packets sit at bufs[i][offset:]; Close unblocks readers.
type Device interface {
	Read(bufs [][]byte, sizes []int, offset int) (n int, err error)
	Write(bufs [][]byte, offset int) (int, error)
	MTU() (int, error)
	BatchSize() int
	Close() error
}

// Offloader is a Device that may read and write an offload header in front
// of each packet: TCP super-packets and partial checksums, as a Linux TUN
// with IFF_VNET_HDR does. VirtioHeaders says whether it does now.
type Offloader interface {
	VirtioHeaders() bool
}

// Offloads says whether d reads and writes offload headers.
func Offloads(d any) bool {
	o, ok := d.(Offloader)
	return ok && o.VirtioHeaders()
}

// ReadSizer is a Device whose reads can be larger than its MTU (TCP
// super-packets from a TUN with segmentation offload).
type ReadSizer interface {
	ReadSize() int
}
