package packet

import "encoding/binary"

// The offload header is struct virtio_net_hdr (linux/virtio_net.h): what a
// TUN opened with IFF_VNET_HDR puts in front of each packet it reads and
// takes in front of each write.

// VirtioHdrLen is the header's size; its 16-bit fields are little-endian.
const VirtioHdrLen = 10

const (
	NeedsCsum = 1 // Flags: the checksum at CsumStart+CsumOffset is partial

	GSONone  = 0
	GSOTCPv4 = 1
	GSOTCPv6 = 4
	GSOECN   = 0x80 // with a TCP type: the segments carry CWR as sent
)

// VirtioHeader is an offload header's fields. The zero value asks for
// nothing: a whole packet with its checksums done.
type VirtioHeader struct {
	Flags, GSOType                         uint8
	HdrLen, GSOSize, CsumStart, CsumOffset uint16
}

// ParseVirtio reads a header from b, which holds at least VirtioHdrLen bytes.
func ParseVirtio(b []byte) VirtioHeader {
	return VirtioHeader{
		Flags: b[0], GSOType: b[1],
		HdrLen:     binary.LittleEndian.Uint16(b[2:]),
		GSOSize:    binary.LittleEndian.Uint16(b[4:]),
		CsumStart:  binary.LittleEndian.Uint16(b[6:]),
		CsumOffset: binary.LittleEndian.Uint16(b[8:]),
	}
}

// Put writes h into b, which holds at least VirtioHdrLen bytes.
func (h VirtioHeader) Put(b []byte) {
	b[0], b[1] = h.Flags, h.GSOType
	binary.LittleEndian.PutUint16(b[2:], h.HdrLen)
	binary.LittleEndian.PutUint16(b[4:], h.GSOSize)
	binary.LittleEndian.PutUint16(b[6:], h.CsumStart)
	binary.LittleEndian.PutUint16(b[8:], h.CsumOffset)
}

// Super says whether h makes its packet a TCP super-packet.
func (h VirtioHeader) Super() bool { return h.GSOType != GSONone }

// Plain says whether the header in b asks for nothing (no partial
// checksum, no segmentation): the common case, told without parsing.
func Plain(b []byte) bool { return b[0]&NeedsCsum == 0 && b[1] == GSONone }

// HeaderOf is the offload header in front of the packet at buf[Headroom:].
func HeaderOf(buf []byte) []byte { return buf[Headroom-VirtioHdrLen : Headroom] }
