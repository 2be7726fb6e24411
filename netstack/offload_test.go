package netstack

import (
	"encoding/binary"
	"testing"

	"github.com/mynetwork/mynetwork/internal/packet"
	"gvisor.dev/gvisor/pkg/tcpip/header"
	"gvisor.dev/gvisor/pkg/tcpip/stack"
)

func TestPutVirtioHdr(t *testing.T) {
	tcpPacket := func(ipLen, payload int) []byte {
		p := make([]byte, ipLen+32+payload)
		p[ipLen+12] = 8 << 4 // a 32-byte TCP header
		return p
	}
	gso4 := stack.GSO{Type: stack.GSOTCPv4, NeedsCsum: true, CsumOffset: header.TCPChecksumOffset, MSS: 1380, L3HdrLen: 20}
	gso6 := gso4
	gso6.Type, gso6.L3HdrLen = stack.GSOTCPv6, 40
	for _, c := range []struct {
		name string
		pkt  []byte
		gso  stack.GSO
		want [5]uint16 // flags|type<<8, hdrLen, gsoSize, csumStart, csumOffset
	}{
		{"UDP, checksum complete", make([]byte, 100), stack.GSO{}, [5]uint16{}},
		{"an ACK", tcpPacket(20, 0), gso4, [5]uint16{1, 0, 0, 20, 16}},
		{"one MSS", tcpPacket(20, 1380), gso4, [5]uint16{1, 0, 0, 20, 16}},
		{"IPv4 super-packet", tcpPacket(20, 1381), gso4, [5]uint16{1 | 1<<8, 52, 1380, 20, 16}},
		{"IPv6 super-packet", tcpPacket(40, 60000), gso6, [5]uint16{1 | 4<<8, 72, 1380, 40, 16}},
	} {
		h := make([]byte, packet.VirtioHdrLen)
		for i := range h {
			h[i] = 0xff // whatever was there before
		}
		putVirtioHdr(h, c.pkt, c.gso)
		var got [5]uint16
		for i := range got {
			got[i] = binary.LittleEndian.Uint16(h[2*i:])
		}
		if got != c.want {
			t.Errorf("%s: header %v, want %v", c.name, got, c.want)
		}
	}
}
