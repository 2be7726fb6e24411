package packet_test

import (
	"bytes"
	"encoding/binary"
	"slices"
	"testing"

	"github.com/mynetwork/mynetwork/internal/packet"
	"github.com/mynetwork/mynetwork/internal/packet/packettest"
)

// minSeg is the smallest segment size the packet transport accepts in a
// super-packet from a peer.
const minSeg = 536

func TestSegmentTCP(t *testing.T) {
	for _, ipv6 := range []bool{false, true} {
		payload := make([]byte, 3*1380+700)
		for i := range payload {
			payload[i] = byte(i * 7)
		}
		const fin, psh, ack, cwr = 0x01, 0x08, 0x10, 0x80
		pkt, h := packettest.SuperPacket(t, ipv6, payload, 1380, fin|psh|ack|cwr)
		if err := packet.Check(h, pkt, minSeg); err != nil {
			t.Fatalf("ipv6=%v: check: %v", ipv6, err)
		}
		var segs [][]byte
		scratch := make([]byte, 65535)
		if err := packet.Segment(pkt, h, scratch, func(s []byte) error {
			segs = append(segs, append([]byte(nil), s...))
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		if len(segs) != 4 {
			t.Fatalf("ipv6=%v: %d segments, want 4", ipv6, len(segs))
		}
		var got []byte
		for i, s := range segs {
			start := int(h.CsumStart)
			if !packettest.Valid(s) {
				t.Errorf("ipv6=%v: segment %d: bad checksum", ipv6, i)
			}
			if ipv6 && int(binary.BigEndian.Uint16(s[4:])) != len(s)-40 ||
				!ipv6 && int(binary.BigEndian.Uint16(s[2:])) != len(s) {
				t.Errorf("ipv6=%v: segment %d: IP length does not match its %d bytes", ipv6, i, len(s))
			}
			if !ipv6 && binary.BigEndian.Uint16(s[4:]) != 0x1234+uint16(i) {
				t.Errorf("segment %d: IPv4 ID %#x", i, binary.BigEndian.Uint16(s[4:]))
			}
			if seq := binary.BigEndian.Uint32(s[start+4:]); seq != 0xfffffff0+uint32(i*1380) {
				t.Errorf("ipv6=%v: segment %d: seq %#x", ipv6, i, seq)
			}
			f := s[start+13]
			last := i == len(segs)-1
			if (f&fin != 0) != last || (f&psh != 0) != last || (f&cwr != 0) != (i == 0) || f&ack == 0 {
				t.Errorf("ipv6=%v: segment %d: flags %#x", ipv6, i, f)
			}
			if !bytes.Equal(s[start+20:start+32], pkt[start+20:start+32]) {
				t.Errorf("segment %d: TCP options not copied", i)
			}
			got = append(got, s[start+32:]...)
		}
		if !bytes.Equal(got, payload) {
			t.Errorf("ipv6=%v: segments do not add up to the payload", ipv6)
		}
	}
}

// TestFinishWhole: a super-packet handed whole to a device without
// virtio-net headers is one TCP segment with valid lengths and checksums,
// its flags and data untouched.
func TestFinishWhole(t *testing.T) {
	for _, ipv6 := range []bool{false, true} {
		pkt, h := packettest.SuperPacket(t, ipv6, bytes.Repeat([]byte{1, 2, 3}, 9000), 1380, 0x01|0x08|0x10|0x80)
		before := bytes.Clone(pkt)
		packet.Finish(h, pkt)
		if !packettest.Valid(pkt) {
			t.Errorf("ipv6=%v: bad checksum", ipv6)
		}
		if ipv6 && int(binary.BigEndian.Uint16(pkt[4:])) != len(pkt)-40 ||
			!ipv6 && int(binary.BigEndian.Uint16(pkt[2:])) != len(pkt) {
			t.Errorf("ipv6=%v: IP length does not match its %d bytes", ipv6, len(pkt))
		}
		start := int(h.CsumStart)
		for _, c := range [][2]int{{10, 12}, {start + 16, start + 18}} { // the checksums
			copy(before[c[0]:c[1]], pkt[c[0]:c[1]])
		}
		if !bytes.Equal(pkt, before) {
			t.Errorf("ipv6=%v: more than the checksums changed", ipv6)
		}
	}
}

func TestCompleteChecksum(t *testing.T) {
	// A single TCP segment with a partial checksum, as the TUN hands over
	// a packet that needs no segmentation.
	pkt, h := packettest.SuperPacket(t, false, []byte("hello, tunnel"), 1380, 0x18)
	if packettest.Valid(pkt) {
		t.Fatal("a partial checksum verified")
	}
	packet.CompleteChecksum(pkt, int(h.CsumStart), int(h.CsumOffset))
	if !packettest.Valid(pkt) {
		t.Fatal("completed TCP checksum does not verify")
	}
	// UDP over IPv6, odd length.
	udp := make([]byte, 40+8+11)
	udp[0], udp[6] = 0x60, 17
	binary.BigEndian.PutUint16(udp[4:], 19)
	copy(udp[8:], bytes.Repeat([]byte{0xfd, 3}, 16))
	binary.BigEndian.PutUint16(udp[44:], 19)
	copy(udp[48:], "odd length!")
	binary.BigEndian.PutUint16(udp[46:], packettest.Sum(packettest.Sum(0, udp[8:40]), []byte{0, 17, 0, 19}))
	packet.CompleteChecksum(udp, 40, 6)
	if !packettest.Valid(udp) {
		t.Fatal("completed UDP checksum does not verify")
	}
}

func TestVirtioHdrCheck(t *testing.T) {
	pkt, h := packettest.SuperPacket(t, false, make([]byte, 3000), 1380, 0x10)
	bad := []struct {
		name string
		mod  func(*packet.VirtioHeader)
	}{
		{"UDP segmentation", func(h *packet.VirtioHeader) { h.GSOType = 5 }},
		{"no segment size", func(h *packet.VirtioHeader) { h.GSOSize = 0 }},
		{"a tiny segment size", func(h *packet.VirtioHeader) { h.GSOSize = 8 }},
		{"checksum beyond the packet", func(h *packet.VirtioHeader) { h.CsumStart = 6000 }},
		{"TCP header not where the IPv4 header ends", func(h *packet.VirtioHeader) { h.CsumStart = 24 }},
		{"IPv6 type on an IPv4 packet", func(h *packet.VirtioHeader) { h.GSOType = packet.GSOTCPv6 }},
		{"not the TCP checksum", func(h *packet.VirtioHeader) { h.CsumOffset = 6 }},
		{"checksum inside the IP header", func(h *packet.VirtioHeader) { h.GSOType, h.CsumStart, h.CsumOffset = 0, 10, 0 }},
	}
	for _, b := range bad {
		g := h
		b.mod(&g)
		if packet.Check(g, pkt, minSeg) == nil {
			t.Errorf("%s: accepted", b.name)
		}
	}
	if err := packet.Check(packet.VirtioHeader{}, pkt[:1], minSeg); err != nil {
		t.Errorf("no offload: %v", err)
	}
}

// TestVirtioHdrIPv6ExtensionHeaders: a super-packet's TCP header must
// start where the IPv6 header chain ends, extension headers walked; a
// header that runs past the packet, or a fragment header, is refused.
func TestVirtioHdrIPv6ExtensionHeaders(t *testing.T) {
	pkt, h := packettest.SuperPacket(t, true, make([]byte, 3000), 1380, 0x10)
	// A 16-byte destination options header between IPv6 and TCP.
	ext := append([]byte{6, 1}, make([]byte, 14)...)
	withExt := slices.Concat(pkt[:40], ext, pkt[40:])
	withExt[6] = 60
	g := h
	g.CsumStart += 16
	if err := packet.Check(g, withExt, minSeg); err != nil {
		t.Fatalf("TCP after a destination options header: %v", err)
	}
	bad := []struct {
		name  string
		start int
		mod   func(p []byte) []byte
	}{
		{"TCP offset inside the extension header", 48, func(p []byte) []byte { return p }},
		{"TCP offset past the real one", 60, func(p []byte) []byte { return p }},
		{"extension header not followed by TCP", 56, func(p []byte) []byte { p[40] = 17; return p }},
		{"extension header longer than the packet", 56, func(p []byte) []byte { p[41] = 255; return p[:200] }},
		{"fragment header", 56, func(p []byte) []byte { p[6] = 44; return p }},
	}
	for _, b := range bad {
		g := h
		g.CsumStart = uint16(b.start)
		if packet.Check(g, b.mod(bytes.Clone(withExt)), minSeg) == nil {
			t.Errorf("%s: accepted", b.name)
		}
	}
}
