package packet

import (
	"bytes"
	"testing"
)

// The field offsets are the kernel's: a TCPv4 super-packet's header as a
// TUN hands it over (flags, gso_type, hdr_len, gso_size, csum_start,
// csum_offset), read and written back unchanged.
func TestLayout(t *testing.T) {
	raw := []byte{NeedsCsum, GSOTCPv4 | GSOECN, 52, 0, 0x5c, 0x05, 20, 0, 16, 0}
	h := ParseVirtio(raw)
	want := VirtioHeader{Flags: NeedsCsum, GSOType: GSOTCPv4 | GSOECN, HdrLen: 52, GSOSize: 1372, CsumStart: 20, CsumOffset: 16}
	if h != want {
		t.Fatalf("ParseVirtio = %+v, want %+v", h, want)
	}
	out := make([]byte, VirtioHdrLen)
	h.Put(out)
	if !bytes.Equal(out, raw) {
		t.Fatalf("Put = %v, want %v", out, raw)
	}
}
