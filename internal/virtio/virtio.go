// Package virtio is the layout of struct virtio_net_hdr (linux/virtio_net.h),
// the header a TUN opened with IFF_VNET_HDR puts in front of each packet
// and takes in front of each write. The kernel TUN, the userspace stack's
// link and the packet transport (which carries it in GSO frames) share
// this one definition.
package virtio

import "encoding/binary"

// HdrLen is the header's size; its 16-bit fields are little-endian.
const HdrLen = 10

const (
	NeedsCsum = 1 // Flags: the checksum at CsumStart+CsumOffset is partial

	GSONone  = 0
	GSOTCPv4 = 1
	GSOTCPv6 = 4
	GSOECN   = 0x80 // with a TCP type: the segments carry CWR as sent
)

// Header is a virtio-net header's fields.
type Header struct {
	Flags, GSOType                         uint8
	HdrLen, GSOSize, CsumStart, CsumOffset uint16
}

// Parse reads a header from b, which holds at least HdrLen bytes.
func Parse(b []byte) Header {
	return Header{
		Flags: b[0], GSOType: b[1],
		HdrLen:     binary.LittleEndian.Uint16(b[2:]),
		GSOSize:    binary.LittleEndian.Uint16(b[4:]),
		CsumStart:  binary.LittleEndian.Uint16(b[6:]),
		CsumOffset: binary.LittleEndian.Uint16(b[8:]),
	}
}

// Put writes h into b, which holds at least HdrLen bytes.
func (h Header) Put(b []byte) {
	b[0], b[1] = h.Flags, h.GSOType
	binary.LittleEndian.PutUint16(b[2:], h.HdrLen)
	binary.LittleEndian.PutUint16(b[4:], h.GSOSize)
	binary.LittleEndian.PutUint16(b[6:], h.CsumStart)
	binary.LittleEndian.PutUint16(b[8:], h.CsumOffset)
}
