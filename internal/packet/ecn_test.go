package packet_test

import (
	"encoding/binary"
	"testing"

	"github.com/mynetwork/mynetwork/internal/packet"
	"github.com/mynetwork/mynetwork/internal/packet/packettest"
)

// TestMarkCE: ECT packets are marked CE with a valid IPv4 header
// checksum; others are left as they are.
func TestMarkCE(t *testing.T) {
	for _, ecn := range []byte{1, 2, 3} {
		p := ipv4Header()
		p[1] = 0xB8 | ecn // DSCP EF and the ECN field
		binary.BigEndian.PutUint16(p[10:12], ipv4HeaderChecksum(p[:20]))
		if !packet.MarkCE(p) || p[1] != 0xBB {
			t.Fatalf("ECN %d: marked to %#x", ecn, p[1])
		}
		if got, want := binary.BigEndian.Uint16(p[10:12]), ipv4HeaderChecksum(p[:20]); got != want {
			t.Fatalf("ECN %d: checksum %#x, want %#x", ecn, got, want)
		}
	}
	p := ipv4Header()
	p[1] = 0xB8
	if packet.MarkCE(p) || p[1] != 0xB8 {
		t.Fatal("a packet that is not ECN-capable was marked")
	}
	v6 := make([]byte, 60)
	v6[0], v6[1] = 0x6B, 0x90 // traffic class 0xB9: ECT(1)
	if !packet.MarkCE(v6) || v6[0] != 0x6B || v6[1] != 0xB0 {
		t.Fatalf("IPv6 marked to %#x %#x", v6[0], v6[1])
	}
	v6[1] = 0x80
	if packet.MarkCE(v6) {
		t.Fatal("an IPv6 packet that is not ECN-capable was marked")
	}
}

// ipv4HeaderChecksum computes an IPv4 header's checksum from scratch,
// its checksum field counted as zero.
func ipv4HeaderChecksum(h []byte) uint16 {
	c := append([]byte(nil), h...)
	c[10], c[11] = 0, 0
	return ^packettest.Sum(0, c)
}

// ipv4Header is a 20-byte IPv4 header of a TCP packet with 40 bytes more.
func ipv4Header() []byte {
	return []byte{0x45, 0, 0, 60, 0x12, 0x34, 0, 0, 64, 6, 0, 0, 100, 64, 0, 1, 100, 64, 0, 2}
}
