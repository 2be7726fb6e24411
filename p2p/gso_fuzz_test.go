package p2p

import (
	"bytes"
	"testing"

	"github.com/mynetwork/mynetwork/internal/virtio"
)

// FuzzVirtioHdr feeds arbitrary headers and packets, as a peer could send
// them on a GSO stream, to the check that guards the kernel: it never
// panics, and whatever it accepts as a super-packet segments into packets
// whose checksums verify and whose payloads add up to the original's, and
// finishes whole into one whose checksums verify.
func FuzzVirtioHdr(f *testing.F) {
	for _, ipv6 := range []bool{false, true} {
		p, h := superPacket(&testing.T{}, ipv6, bytes.Repeat([]byte{7}, 3000), 1380, 0x18)
		f.Add(hdrBytes(h), p)
		p, h = superPacket(&testing.T{}, ipv6, nil, 1380, 0x10)
		h.GSOType, h.GSOSize = virtio.GSONone, 0
		f.Add(hdrBytes(h), p)
	}
	f.Add(make([]byte, virtio.HdrLen), []byte{0x45})
	scratch := make([]byte, Headroom+MaxFrame)
	f.Fuzz(func(t *testing.T, hdr, pkt []byte) {
		if len(hdr) != virtio.HdrLen || len(pkt) == 0 || len(pkt) > MaxFrame {
			t.Skip()
		}
		h := virtio.Parse(hdr)
		if checkHdr(h, pkt, minMSS) != nil {
			return
		}
		whole := bytes.Clone(pkt)
		finishHdr(h, whole)
		if h.GSOType == virtio.GSONone {
			return
		}
		start := int(h.CsumStart)
		if (pkt[0]>>4 == 4 || start == 40) && !valid(whole) {
			t.Fatalf("the finished super-packet's checksum does not verify")
		}
		hdrEnd := start + int(pkt[start+12]>>4)*4
		var payload []byte
		err := segment(pkt, h, scratch, func(seg []byte) error {
			if len(seg) > hdrEnd+int(h.GSOSize) {
				t.Fatalf("a %d-byte segment for segment size %d", len(seg), h.GSOSize)
			}
			if (pkt[0]>>4 == 4 || start == 40) && !valid(seg) {
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

func hdrBytes(h virtioHdr) []byte {
	b := []byte{h.Flags, h.GSOType, 0, 0, 0, 0, 0, 0, 0, 0}
	for i, v := range []uint16{h.HdrLen, h.GSOSize, h.CsumStart, h.CsumOffset} {
		b[2+2*i], b[3+2*i] = byte(v), byte(v>>8)
	}
	return b
}
