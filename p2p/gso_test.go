package p2p

import (
	"bytes"
	"encoding/binary"
	"slices"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/mynetwork/mynetwork/internal/virtio"
)

// superPacket builds a TCP super-packet as a Linux TUN with segmentation
// offload hands it over: lengths of the whole, a partial checksum (the
// pseudo-header's sum, for the whole length), and its virtio-net header.
func superPacket(t *testing.T, ipv6 bool, payload []byte, mss int, flags byte) ([]byte, virtioHdr) {
	t.Helper()
	var ip []byte
	h := virtioHdr{Flags: virtio.NeedsCsum, CsumOffset: 16, GSOSize: uint16(mss)}
	if ipv6 {
		ip = make([]byte, 40)
		ip[0] = 0x60
		ip[6], ip[7] = 6, 64
		copy(ip[8:], bytes.Repeat([]byte{0xfd, 1}, 8))
		copy(ip[24:], bytes.Repeat([]byte{0xfd, 2}, 8))
		h.GSOType = virtio.GSOTCPv6
	} else {
		ip = make([]byte, 20)
		ip[0] = 0x45
		binary.BigEndian.PutUint16(ip[4:], 0x1234)
		ip[8], ip[9] = 64, 6
		copy(ip[12:], []byte{100, 64, 0, 1, 100, 64, 0, 2})
		h.GSOType = virtio.GSOTCPv4
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
		binary.BigEndian.PutUint16(pkt[10:], ^fold(sum16(0, pkt[:20])))
	}
	h.CsumStart = uint16(len(ip))
	h.HdrLen = uint16(len(ip) + len(tcp))
	binary.BigEndian.PutUint16(pkt[len(ip)+16:], fold(pseudoSum(pkt, ipv6, len(pkt)-len(ip))))
	return pkt, h
}

// valid says whether an IP packet's checksums verify, computed from
// scratch: the IPv4 header's, and the TCP or UDP one over the pseudo-header.
func valid(pkt []byte) bool {
	ipv6 := pkt[0]>>4 == 6
	start, proto := 40, pkt[6]
	if !ipv6 {
		start, proto = int(pkt[0]&0x0f)*4, pkt[9]
		if fold(sum16(0, pkt[:start])) != 0xffff {
			return false
		}
	}
	var s uint64
	if ipv6 {
		s = sum16(0, pkt[8:40])
	} else {
		s = sum16(0, pkt[12:20])
	}
	s += uint64(proto) + uint64(len(pkt)-start)
	return fold(sum16(s, pkt[start:])) == 0xffff
}

func TestSegmentTCP(t *testing.T) {
	for _, ipv6 := range []bool{false, true} {
		payload := make([]byte, 3*1380+700)
		for i := range payload {
			payload[i] = byte(i * 7)
		}
		const fin, psh, ack, cwr = 0x01, 0x08, 0x10, 0x80
		pkt, h := superPacket(t, ipv6, payload, 1380, fin|psh|ack|cwr)
		if err := checkHdr(h, pkt, minMSS); err != nil {
			t.Fatalf("ipv6=%v: check: %v", ipv6, err)
		}
		var segs [][]byte
		scratch := make([]byte, 65535)
		if err := segment(pkt, h, scratch, func(s []byte) error {
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
			if !valid(s) {
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
		pkt, h := superPacket(t, ipv6, bytes.Repeat([]byte{1, 2, 3}, 9000), 1380, 0x01|0x08|0x10|0x80)
		before := bytes.Clone(pkt)
		finishHdr(h, pkt)
		if !valid(pkt) {
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
	pkt, h := superPacket(t, false, []byte("hello, tunnel"), 1380, 0x18)
	if valid(pkt) {
		t.Fatal("a partial checksum verified")
	}
	completeChecksum(pkt, int(h.CsumStart), int(h.CsumOffset))
	if !valid(pkt) {
		t.Fatal("completed TCP checksum does not verify")
	}
	// UDP over IPv6, odd length.
	udp := make([]byte, 40+8+11)
	udp[0], udp[6] = 0x60, 17
	binary.BigEndian.PutUint16(udp[4:], 19)
	copy(udp[8:], bytes.Repeat([]byte{0xfd, 3}, 16))
	binary.BigEndian.PutUint16(udp[44:], 19)
	copy(udp[48:], "odd length!")
	binary.BigEndian.PutUint16(udp[46:], fold(sum16(0, udp[8:40])+17+19))
	completeChecksum(udp, 40, 6)
	if !valid(udp) {
		t.Fatal("completed UDP checksum does not verify")
	}
}

func TestVirtioHdrCheck(t *testing.T) {
	pkt, h := superPacket(t, false, make([]byte, 3000), 1380, 0x10)
	bad := []struct {
		name string
		mod  func(*virtioHdr)
	}{
		{"UDP segmentation", func(h *virtioHdr) { h.GSOType = 5 }},
		{"no segment size", func(h *virtioHdr) { h.GSOSize = 0 }},
		{"a tiny segment size", func(h *virtioHdr) { h.GSOSize = 8 }},
		{"checksum beyond the packet", func(h *virtioHdr) { h.CsumStart = 6000 }},
		{"TCP header not where the IPv4 header ends", func(h *virtioHdr) { h.CsumStart = 24 }},
		{"IPv6 type on an IPv4 packet", func(h *virtioHdr) { h.GSOType = virtio.GSOTCPv6 }},
		{"not the TCP checksum", func(h *virtioHdr) { h.CsumOffset = 6 }},
		{"checksum inside the IP header", func(h *virtioHdr) { h.GSOType, h.CsumStart, h.CsumOffset = 0, 10, 0 }},
	}
	for _, b := range bad {
		g := h
		b.mod(&g)
		if checkHdr(g, pkt, minMSS) == nil {
			t.Errorf("%s: accepted", b.name)
		}
	}
	if err := checkHdr(virtioHdr{}, pkt[:1], minMSS); err != nil {
		t.Errorf("no offload: %v", err)
	}
}

// TestVirtioHdrIPv6ExtensionHeaders: a super-packet's TCP header must
// start where the IPv6 header chain ends, extension headers walked; a
// header that runs past the packet, or a fragment header, is refused.
func TestVirtioHdrIPv6ExtensionHeaders(t *testing.T) {
	pkt, h := superPacket(t, true, make([]byte, 3000), 1380, 0x10)
	// A 16-byte destination options header between IPv6 and TCP.
	ext := append([]byte{6, 1}, make([]byte, 14)...)
	withExt := slices.Concat(pkt[:40], ext, pkt[40:])
	withExt[6] = 60
	g := h
	g.CsumStart += 16
	if err := checkHdr(g, withExt, minMSS); err != nil {
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
		if checkHdr(g, b.mod(bytes.Clone(withExt)), minMSS) == nil {
			t.Errorf("%s: accepted", b.name)
		}
	}
}

// TestSuperPackets sends, from a node whose device has virtio-net headers,
// a TCP super-packet and a small packet with a partial checksum, over TCP
// and QUIC, to four receivers: a node like it gets the super-packet whole
// with its header (GSOProtocol); a node without headers gets it whole as
// one TCP segment when it fits its MTU, and cut into segments when it does
// not; a node that predates GSOProtocol gets segments cut by the sender.
// All get checksums that verify where the kernel would not complete them.
func TestSuperPackets(t *testing.T) {
	receivers := []struct {
		name   string
		virtio bool
		mtu    int
		old    bool // without GSOProtocol
	}{{"virtio", true, 0, false}, {"whole", false, 0, false}, {"small-mtu", false, 1420, false}, {"old", false, 0, true}}
	for _, listen := range []string{"/ip4/127.0.0.1/tcp/0", "/ip4/127.0.0.1/udp/0/quic-v1"} {
		for _, rc := range receivers {
			virtioB := rc.virtio
			t.Run(listen+"/"+rc.name, func(t *testing.T) {
				ka, ida := newKey(t)
				kb, idb := newKey(t)
				b := newNode(t, Options{Key: kb, Listen: []string{listen}, Peers: []Peer{{ID: ida}}, MaxPacket: MaxFrame, MTU: rc.mtu, VirtioHeaders: virtioB})
				if rc.old {
					b.Host().RemoveStreamHandler(GSOProtocol)
				}
				a := newNode(t, Options{Key: ka, Listen: []string{listen}, Peers: []Peer{{ID: idb, Addrs: b.Host().Addrs()}}, MaxPacket: MaxFrame, VirtioHeaders: true})
				start(t, a, b)
				type rx struct{ hdr, pkt []byte }
				got := make(chan rx, 100)
				go func() {
					bufs := [][]byte{make([]byte, Headroom+MaxFrame)}
					sizes, from := make([]int, 1), make([]peer.ID, 1)
					for {
						if _, err := b.Transport().Receive(bufs, sizes, from, Headroom); err != nil {
							close(got)
							return
						}
						got <- rx{bytes.Clone(bufs[0][Headroom-virtio.HdrLen : Headroom]), bytes.Clone(bufs[0][Headroom : Headroom+sizes[0]])}
					}
				}()
				probe := ipv4(17, 60, 0, 0)
				openStream(t, a, idb, probe, got)

				payload := make([]byte, 40000)
				for i := range payload {
					payload[i] = byte(i)
				}
				super, h := superPacket(t, false, payload, 1380, 0x18)
				ack, ah := superPacket(t, false, nil, 1380, 0x10)
				// Segments under minMSS: cut by the sender even for a node
				// that takes super-packets.
				tinyPayload := bytes.Repeat([]byte{0xab}, 300)
				tiny, th := superPacket(t, false, tinyPayload, 100, 0x18)
				ah.GSOType, ah.GSOSize = virtio.GSONone, 0
				put := func(buf []byte, pkt []byte, h virtioHdr) int {
					v := buf[Headroom-virtio.HdrLen : Headroom]
					v[0], v[1] = h.Flags, h.GSOType
					binary.LittleEndian.PutUint16(v[2:], h.HdrLen)
					binary.LittleEndian.PutUint16(v[4:], h.GSOSize)
					binary.LittleEndian.PutUint16(v[6:], h.CsumStart)
					binary.LittleEndian.PutUint16(v[8:], h.CsumOffset)
					return copy(buf[Headroom:], pkt)
				}
				tx := [][]byte{make([]byte, Headroom+MaxFrame), make([]byte, Headroom+MaxFrame), make([]byte, Headroom+MaxFrame)}
				sizes := []int{put(tx[0], super, h), put(tx[1], ack, ah), put(tx[2], tiny, th)}
				wantHdr := bytes.Clone(tx[0][Headroom-virtio.HdrLen : Headroom])
				if err := a.Transport().SendBuffers(idb, tx, sizes, Headroom); err != nil {
					t.Fatal(err)
				}

				recv := func() rx {
					select {
					case r := <-got:
						return r
					case <-time.After(10 * time.Second):
						t.Fatalf("nothing received; %+v", a.Transport().Stats(idb))
						return rx{}
					}
				}
				var data, tinyData []byte
				var gotACK bool
				for len(data) < len(payload) || !gotACK || len(tinyData) < len(tinyPayload) {
					r := recv()
					if bytes.Equal(r.pkt, probe) {
						continue
					}
					if len(r.pkt) > len(ack) && len(r.pkt) <= 52+100 {
						if !valid(r.pkt) || !bytes.Equal(r.hdr, make([]byte, virtio.HdrLen)) {
							t.Fatalf("a small segment with checksum valid %v, header %x", valid(r.pkt), r.hdr)
						}
						tinyData = append(tinyData, r.pkt[52:]...)
						continue
					}
					if len(r.pkt) == len(ack) { // the ACK, maybe by datagram, maybe first
						gotACK = true
						// To a node like it, on the stream, the checksum may
						// stay partial for the receiving kernel to complete.
						if ah := virtio.Parse(r.hdr); virtioB && ah.Flags == virtio.NeedsCsum {
							completeChecksum(r.pkt, int(ah.CsumStart), int(ah.CsumOffset))
						} else if ah.Flags != 0 {
							t.Errorf("the ACK arrived with a header %x", r.hdr)
						}
						if !valid(r.pkt) {
							t.Errorf("the ACK arrived with a bad checksum")
						}
						continue
					}
					if virtioB {
						if !bytes.Equal(r.pkt, super) || !bytes.Equal(r.hdr, wantHdr) {
							t.Fatalf("the super-packet arrived as %d bytes, header %x (want %d, %x)", len(r.pkt), r.hdr, len(super), wantHdr)
						}
						data = append(data, payload...)
						continue
					}
					if rc.name == "whole" {
						if len(r.pkt) != len(super) || !valid(r.pkt) || !bytes.Equal(r.hdr, make([]byte, virtio.HdrLen)) {
							t.Fatalf("the super-packet arrived as %d bytes (want %d), checksum valid %v, header %x", len(r.pkt), len(super), valid(r.pkt), r.hdr)
						}
						data = append(data, r.pkt[52:]...)
						continue
					}
					if len(r.pkt) > 20+32+1380 || !valid(r.pkt) || !bytes.Equal(r.hdr, make([]byte, virtio.HdrLen)) {
						t.Fatalf("a segment of %d bytes, checksum valid %v, header %x", len(r.pkt), valid(r.pkt), r.hdr)
					}
					data = append(data, r.pkt[52:]...)
				}
				if !bytes.Equal(data, payload) || !bytes.Equal(tinyData, tinyPayload) {
					t.Fatal("the payload differs")
				}
				st := a.Transport().Stats(idb)
				wantWhole, wantCut := uint64(1), uint64(1) // the tiny one is always cut
				if rc.old {
					wantWhole, wantCut = 0, 2
				}
				if st.TxSuperPackets.Load() != wantWhole || st.TxSegmented.Load() != wantCut {
					t.Errorf("counted %d super-packets sent whole and %d cut, want %d and %d",
						st.TxSuperPackets.Load(), st.TxSegmented.Load(), wantWhole, wantCut)
				}
			})
		}
	}
}
