package packet_test

import (
	"bytes"
	"testing"

	"github.com/mynetwork/mynetwork/internal/packet"
	"github.com/mynetwork/mynetwork/internal/packet/packettest"
)

// FuzzVirtioHdr feeds arbitrary headers and packets, as a peer could send
// them on a GSO stream, to the check that guards the kernel: it never
// panics, and whatever it accepts as a super-packet segments into packets
// whose checksums verify and whose payloads add up to the original's, and
// finishes whole into one whose checksums verify.
func FuzzVirtioHdr(f *testing.F) {
	for _, ipv6 := range []bool{false, true} {
		p, h := packettest.SuperPacket(&testing.T{}, ipv6, bytes.Repeat([]byte{7}, 3000), 1380, 0x18)
		f.Add(packettest.HeaderBytes(h), p)
		p, h = packettest.SuperPacket(&testing.T{}, ipv6, nil, 1380, 0x10)
		h.GSOType, h.GSOSize = packet.GSONone, 0
		f.Add(packettest.HeaderBytes(h), p)
	}
	f.Add(make([]byte, packet.VirtioHdrLen), []byte{0x45})
	scratch := make([]byte, packet.Headroom+0xffff)
	f.Fuzz(func(t *testing.T, hdr, pkt []byte) {
		if len(hdr) != packet.VirtioHdrLen || len(pkt) == 0 || len(pkt) > 0xffff {
			t.Skip()
		}
		h := packet.ParseVirtio(hdr)
		if packet.Check(h, pkt, 536) != nil {
			return
		}
		whole := bytes.Clone(pkt)
		packet.Finish(h, whole)
		if h.GSOType == packet.GSONone {
			return
		}
		start := int(h.CsumStart)
		if (pkt[0]>>4 == 4 || start == 40) && !packettest.Valid(whole) {
			t.Fatalf("the finished super-packet's checksum does not verify")
		}
		hdrEnd := start + int(pkt[start+12]>>4)*4
		var payload []byte
		err := packet.Segment(pkt, h, scratch, func(seg []byte) error {
			if len(seg) > hdrEnd+int(h.GSOSize) {
				t.Fatalf("a %d-byte segment for segment size %d", len(seg), h.GSOSize)
			}
			if (pkt[0]>>4 == 4 || start == 40) && !packettest.Valid(seg) {
				t.Fatalf("a segment's checksum does not verify")
			}
			payload = append(payload, seg[hdrEnd:]...)
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(payload, pkt[hdrEnd:]) {
			t.Fatal("the segments' payloads do not add up to the super-packet's")
		}
	})
}
