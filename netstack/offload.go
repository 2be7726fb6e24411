package netstack

import (
	"encoding/binary"

	"github.com/mynetwork/mynetwork/internal/packet"
	"gvisor.dev/gvisor/pkg/tcpip/header"
	"gvisor.dev/gvisor/pkg/tcpip/stack"
)

// TCP segmentation and checksum offload, as a Linux TUN with the
// virtio-net header (IFF_VNET_HDR) has it.
//
// With Config.Offload, gVisor's TCP hands the link super-packets of up to
// maxSuperPacket bytes cut at the MSS, with the TCP checksum left partial
// (the pseudo-header's sum), and Read puts a virtio-net header in the 10
// bytes in front of each packet saying so. The packet transport carries
// header and super-packet whole to a peer, whose kernel cuts it or takes
// it as one packet; for a peer without offload the transport completes the
// checksum (see p2p/gso.go). The inner TCP thus works in MTU-sized segments
// (little queues behind a slow link) while the stack, the engine and the
// transport move up to 64 KiB at a time.
//
// Write takes a peer's packets with their header the same way: a
// super-packet becomes one large TCP segment, and the stack trusts
// checksums (CapabilityRXChecksumOffload) instead of verifying them: every
// packet arrived over an authenticated, integrity-protected connection, and
// a partial checksum is one the sending kernel has not computed yet.

// maxSuperPacket is the largest packet the link hands out with offload:
// what a frame carries.
const maxSuperPacket = 0xFFFF

// putVirtioHdr writes into h the virtio-net header of an outbound packet
// from gVisor's GSO options: none for a packet whose checksums are
// complete; a partial TCP checksum; and for more than one MSS of payload,
// TCP segmentation at the MSS.
func putVirtioHdr(h, pkt []byte, gso stack.GSO) {
	var v packet.VirtioHeader
	if (gso.Type == stack.GSOTCPv4 || gso.Type == stack.GSOTCPv6) && gso.NeedsCsum {
		start := int(gso.L3HdrLen)
		v = packet.VirtioHeader{Flags: packet.NeedsCsum, CsumStart: uint16(start), CsumOffset: gso.CsumOffset}
		hdrEnd := start + int(pkt[start+12]>>4)*4
		// More than one MSS of payload: segmentation too; otherwise only
		// the checksum is left to do.
		if gso.MSS != 0 && len(pkt)-hdrEnd > int(gso.MSS) {
			v.GSOType, v.HdrLen, v.GSOSize = packet.GSOTCPv4, uint16(hdrEnd), gso.MSS
			if gso.Type == stack.GSOTCPv6 {
				v.GSOType = packet.GSOTCPv6
			}
		}
	}
	v.Put(h)
}

// isSuperPacket says whether the virtio-net header h asks for
// segmentation (its gso_type is set).
func isSuperPacket(h []byte) bool { return packet.ParseVirtio(h).GSOType != packet.GSONone }

// setIPLength makes a peer's super-packet's IP length field match its size,
// so that the stack takes it as one large TCP segment.
func setIPLength(pkt []byte) {
	switch header.IPVersion(pkt) {
	case header.IPv4Version:
		if len(pkt) >= header.IPv4MinimumSize {
			binary.BigEndian.PutUint16(pkt[2:], uint16(len(pkt)))
		}
	case header.IPv6Version:
		if len(pkt) >= header.IPv6MinimumSize {
			binary.BigEndian.PutUint16(pkt[4:], uint16(len(pkt)-header.IPv6MinimumSize))
		}
	}
}

// VirtioHeaders says whether packets carry a virtio-net header in the 10
// bytes in front of them, in Read and Write (Config.Offload).
func (s *Stack) VirtioHeaders() bool { return s.link.offload }

// ReadSize is the largest packet Read returns: the MTU, or a TCP
// super-packet with offload.
func (s *Stack) ReadSize() int {
	if s.link.offload {
		return maxSuperPacket
	}
	return s.mtu
}
