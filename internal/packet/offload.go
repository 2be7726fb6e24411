package packet

import (
	"encoding/binary"
	"errors"
)

// A Linux TUN opened with the virtio-net header and TCP segmentation
// offload hands over TCP "super-packets" of up to 64 KiB made of
// MSS-sized segments, each prefixed by a header that says how to cut it
// (gso_type, gso_size) and where its checksum is still to be completed;
// it takes them back the same way. What follows checks such a header
// against its packet and does the header's work for whoever cannot leave
// it to a kernel: completing a checksum, making a super-packet one large
// TCP segment, or cutting it into segments.

// ErrBadHeader is an offload header that does not fit its packet.
var ErrBadHeader = errors.New("virtio-net header does not fit the packet")

// Check says whether h is a header this node sends and accepts for pkt:
// no offload, or TCP segmentation into segments of at least minSeg (≥ 1)
// bytes with a partial TCP checksum. A partial checksum needs a whole IP
// header in front of where it starts, and every offset inside the packet;
// a super-packet's TCP header starts where its IP header chain ends.
func Check(h VirtioHeader, pkt []byte, minSeg int) error {
	if h.Flags&NeedsCsum != 0 {
		ipEnd, _, ok := IPHeaders(pkt)
		if !ok || int(h.CsumStart) < ipEnd || int(h.CsumStart)+int(h.CsumOffset)+2 > len(pkt) {
			return ErrBadHeader
		}
	}
	switch h.GSOType &^ GSOECN {
	case GSONone:
		if h.GSOType != GSONone { // the ECN bit goes only with TCP
			return ErrBadHeader
		}
		return nil
	case GSOTCPv4, GSOTCPv6:
		v := byte(4)
		if h.GSOType&^GSOECN == GSOTCPv6 {
			v = 6
		}
		start := int(h.CsumStart)
		if h.Flags&NeedsCsum == 0 || h.CsumOffset != 16 || int(h.GSOSize) < minSeg || pkt[0]>>4 != v {
			return ErrBadHeader
		}
		ipEnd, proto, _ := IPHeaders(pkt) // ok: NeedsCsum is set
		if proto != 6 || start != ipEnd || len(pkt) < start+20 {
			return ErrBadHeader
		}
		if tcpEnd := start + int(pkt[start+12]>>4)*4; tcpEnd > len(pkt) || tcpEnd < start+20 {
			return ErrBadHeader
		}
		return nil
	}
	return ErrBadHeader
}

// IPHeaders walks an IP packet's headers: where they end (where the
// transport header starts) and the transport protocol. IPv6 extension
// headers that may precede a TCP or UDP header are followed (hop-by-hop,
// routing, destination options, authentication); a fragment header or
// any other ends the walk with ok false, as does a header that runs past
// the packet.
func IPHeaders(pkt []byte) (end int, proto byte, ok bool) {
	if len(pkt) == 0 {
		return 0, 0, false
	}
	switch pkt[0] >> 4 {
	case 4:
		ihl := int(pkt[0]&0x0f) * 4
		if len(pkt) < 20 || ihl < 20 || ihl > len(pkt) {
			return 0, 0, false
		}
		return ihl, pkt[9], true
	case 6:
		if len(pkt) < 40 {
			return 0, 0, false
		}
		end, proto = 40, pkt[6]
		for range 8 { // more than any real packet has
			var n int
			switch proto {
			case 0, 43, 60: // hop-by-hop, routing, destination options
				if end+8 > len(pkt) {
					return 0, 0, false
				}
				n = (int(pkt[end+1]) + 1) * 8
			case 51: // authentication header
				if end+8 > len(pkt) {
					return 0, 0, false
				}
				n = (int(pkt[end+1]) + 2) * 4
			default:
				return end, proto, true
			}
			if end+n > len(pkt) {
				return 0, 0, false
			}
			proto, end = pkt[end], end+n
		}
	}
	return 0, 0, false
}

// sum16 adds b to sum as big-endian 16-bit words (RFC 1071), unfolded.
func sum16(sum uint64, b []byte) uint64 {
	for len(b) >= 8 {
		sum += uint64(binary.BigEndian.Uint32(b)) + uint64(binary.BigEndian.Uint32(b[4:]))
		b = b[8:]
	}
	for len(b) >= 2 {
		sum += uint64(binary.BigEndian.Uint16(b))
		b = b[2:]
	}
	if len(b) == 1 {
		sum += uint64(b[0]) << 8
	}
	return sum
}

func fold(sum uint64) uint16 {
	for sum > 0xffff {
		sum = sum>>16 + sum&0xffff
	}
	return uint16(sum)
}

// CompleteChecksum finishes a partial checksum: the field at start+offset
// holds the pseudo-header's sum, and the checksum covers pkt[start:].
// The checksum field of UDP (and UDP-Lite) sits at offset 6, TCP's at 16.
func CompleteChecksum(pkt []byte, start, offset int) {
	c := ^fold(sum16(0, pkt[start:]))
	if c == 0 && offset == 6 { // UDP sends 0 as all ones: 0 means none
		c = 0xffff
	}
	binary.BigEndian.PutUint16(pkt[start+offset:], c)
}

// pseudoSum is the sum of the TCP pseudo-header of pkt for an l4len-byte
// segment.
func pseudoSum(pkt []byte, ipv6 bool, l4len int) uint64 {
	var s uint64
	if ipv6 {
		s = sum16(0, pkt[8:40])
	} else {
		s = sum16(0, pkt[12:20])
	}
	return s + 6 + uint64(l4len)
}

// Finish makes a packet whole in place for a device without offload
// headers: a partial checksum is completed, and a super-packet becomes one
// TCP segment with its own lengths and checksums. h must have passed
// Check.
func Finish(h VirtioHeader, pkt []byte) {
	switch {
	case h.Flags&NeedsCsum == 0:
	case h.GSOType == GSONone:
		CompleteChecksum(pkt, int(h.CsumStart), int(h.CsumOffset))
	default:
		finishTCP(pkt, int(h.CsumStart), h.GSOType&^GSOECN == GSOTCPv6)
	}
}

// finishTCP sets a TCP packet's IP length, IPv4 header checksum and TCP
// checksum for its size; the TCP header starts at start.
func finishTCP(pkt []byte, start int, ipv6 bool) {
	if ipv6 {
		binary.BigEndian.PutUint16(pkt[4:], uint16(len(pkt)-40))
	} else {
		binary.BigEndian.PutUint16(pkt[2:], uint16(len(pkt)))
		pkt[10], pkt[11] = 0, 0
		binary.BigEndian.PutUint16(pkt[10:], ^fold(sum16(0, pkt[:start])))
	}
	tcp := pkt[start:]
	tcp[16], tcp[17] = 0, 0
	binary.BigEndian.PutUint16(tcp[16:], ^fold(sum16(pseudoSum(pkt, ipv6, len(tcp)), tcp)))
}

// Segment cuts a TCP super-packet into MSS-sized segments, each a whole
// packet with its own lengths, sequence number, IPv4 ID and checksums,
// and calls emit with each in turn (in scratch, reused: emit copies).
// The last segment keeps FIN and PSH, the first CWR, as the kernel does.
// h must have passed Check.
func Segment(pkt []byte, h VirtioHeader, scratch []byte, emit func([]byte) error) error {
	ipv6 := h.GSOType&^GSOECN == GSOTCPv6
	start := int(h.CsumStart)
	hdrEnd := start + int(pkt[start+12]>>4)*4
	payload := pkt[hdrEnd:]
	mss := int(h.GSOSize)
	seq := binary.BigEndian.Uint32(pkt[start+4:])
	var id uint16
	if !ipv6 {
		id = binary.BigEndian.Uint16(pkt[4:])
	}
	for i := 0; len(payload) > 0 || i == 0; i++ {
		n := min(mss, len(payload))
		seg := scratch[:hdrEnd+n]
		copy(seg, pkt[:hdrEnd])
		copy(seg[hdrEnd:], payload[:n])
		payload = payload[n:]
		if !ipv6 {
			binary.BigEndian.PutUint16(seg[4:], id+uint16(i))
		}
		tcp := seg[start:]
		binary.BigEndian.PutUint32(tcp[4:], seq+uint32(i*mss))
		if len(payload) > 0 {
			tcp[13] &^= 0x01 | 0x08 // FIN, PSH: only on the last
		}
		if i > 0 {
			tcp[13] &^= 0x80 // CWR: only on the first
		}
		finishTCP(seg, start, ipv6)
		if err := emit(seg); err != nil {
			return err
		}
	}
	return nil
}

// MakeWhole readies a received packet with offload header h (which passed
// Check) for a device that takes no such header: the packet is finished in
// place (Finish), unless it is a super-packet larger than mtu, which is cut
// into segments instead and handed to emit one by one (in scratch, reused:
// emit copies). cut says which happened.
func MakeWhole(h VirtioHeader, pkt []byte, mtu int, scratch []byte, emit func([]byte) error) (cut bool, err error) {
	if h.Super() && len(pkt) > mtu {
		return true, Segment(pkt, h, scratch, emit)
	}
	Finish(h, pkt)
	return false, nil
}
