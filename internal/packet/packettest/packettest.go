// Package packettest builds the packets the offload tests of every layer
// need (TCP super-packets as a Linux TUN hands them over) and verifies
// checksums from scratch, independently of the code under test.
package packettest

import (
	"bytes"
	"encoding/binary"
	"testing"

	"github.com/mynetwork/mynetwork/internal/packet"
)

// SuperPacket builds a TCP super-packet as a Linux TUN with segmentation
// offload hands it over: lengths of the whole, a partial checksum (the
// pseudo-header's sum, for the whole length), and its offload header.
func SuperPacket(t testing.TB, ipv6 bool, payload []byte, mss int, flags byte) ([]byte, packet.VirtioHeader) {
	t.Helper()
	var ip []byte
	h := packet.VirtioHeader{Flags: packet.NeedsCsum, CsumOffset: 16, GSOSize: uint16(mss)}
	if ipv6 {
		ip = make([]byte, 40)
		ip[0] = 0x60
		ip[6], ip[7] = 6, 64
		copy(ip[8:], bytes.Repeat([]byte{0xfd, 1}, 8))
		copy(ip[24:], bytes.Repeat([]byte{0xfd, 2}, 8))
		h.GSOType = packet.GSOTCPv6
	} else {
		ip = make([]byte, 20)
		ip[0] = 0x45
		binary.BigEndian.PutUint16(ip[4:], 0x1234)
		ip[8], ip[9] = 64, 6
		copy(ip[12:], []byte{100, 64, 0, 1, 100, 64, 0, 2})
		h.GSOType = packet.GSOTCPv4
	}
	tcp := make([]byte, 32) // with 12 bytes of options
	binary.BigEndian.PutUint16(tcp[0:], 40000)
	binary.BigEndian.PutUint16(tcp[2:], 5201)
	binary.BigEndian.PutUint32(tcp[4:], 0xfffffff0) // wraps
	binary.BigEndian.PutUint32(tcp[8:], 77)
	tcp[12] = 8 << 4
	tcp[13] = flags
	for i := 20; i < 32; i++ {
		tcp[i] = byte(i)
	}
	pkt := append(append(ip, tcp...), payload...)
	if ipv6 {
		binary.BigEndian.PutUint16(pkt[4:], uint16(len(pkt)-40))
	} else {
		binary.BigEndian.PutUint16(pkt[2:], uint16(len(pkt)))
		binary.BigEndian.PutUint16(pkt[10:], ^Sum(0, pkt[:20]))
	}
	h.CsumStart = uint16(len(ip))
	h.HdrLen = uint16(len(ip) + len(tcp))
	binary.BigEndian.PutUint16(pkt[len(ip)+16:], pseudo(pkt, ipv6, 6, len(pkt)-len(ip)))
	return pkt, h
}

// Sum is the ones'-complement sum of b as big-endian 16-bit words,
// added to the folded sum s, one word at a time (RFC 1071): slow and
// plain, to check the fast code against.
func Sum(s uint16, b []byte) uint16 {
	acc := uint32(s)
	for i := 0; i < len(b); i += 2 {
		w := uint32(b[i]) << 8
		if i+1 < len(b) {
			w |= uint32(b[i+1])
		}
		acc += w
		acc = acc&0xffff + acc>>16
	}
	return uint16(acc)
}

// pseudo is the folded sum of pkt's pseudo-header for an l4len-byte
// transport segment of protocol proto.
func pseudo(pkt []byte, ipv6 bool, proto byte, l4len int) uint16 {
	var addrs []byte
	if ipv6 {
		addrs = pkt[8:40]
	} else {
		addrs = pkt[12:20]
	}
	return Sum(Sum(0, addrs), []byte{0, proto, byte(l4len >> 8), byte(l4len)})
}

// Valid says whether an IP packet's checksums verify, computed from
// scratch: the IPv4 header's, and the TCP or UDP one over the
// pseudo-header.
func Valid(pkt []byte) bool {
	ipv6 := pkt[0]>>4 == 6
	start, proto := 40, pkt[6]
	if !ipv6 {
		start, proto = int(pkt[0]&0x0f)*4, pkt[9]
		if Sum(0, pkt[:start]) != 0xffff {
			return false
		}
	}
	return Sum(pseudo(pkt, ipv6, proto, len(pkt)-start), pkt[start:]) == 0xffff
}

// HeaderBytes is h as it sits in front of a packet.
func HeaderBytes(h packet.VirtioHeader) []byte {
	b := make([]byte, packet.VirtioHdrLen)
	h.Put(b)
	return b
}

// IPv4 builds an IPv4 packet of total length size with protocol proto
// from 100.64.0.1 to 100.64.0.2; for TCP, tcpFlags and a 20-byte header;
// the body is numbered from seq.
func IPv4(proto byte, size int, tcpFlags byte, seq int) []byte {
	p := make([]byte, size)
	p[0] = 0x45
	binary.BigEndian.PutUint16(p[2:], uint16(size))
	p[8], p[9] = 64, proto
	copy(p[12:16], []byte{100, 64, 0, 1})
	copy(p[16:20], []byte{100, 64, 0, 2})
	if proto == 6 && size >= 40 {
		p[32] = 5 << 4 // data offset: 20 bytes
		p[33] = tcpFlags
	}
	for i := 40; i < size; i++ {
		p[i] = byte(seq + i)
	}
	return p
}
