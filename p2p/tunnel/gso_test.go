package tunnel

import (
	"bytes"
	"cmp"
	"encoding/binary"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/mynetwork/mynetwork/internal/packet"
	"github.com/mynetwork/mynetwork/internal/packet/packettest"
	"github.com/mynetwork/mynetwork/p2p/p2ptest"
)

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
				ka, ida := p2ptest.NewKey(t)
				kb, idb := p2ptest.NewKey(t)
				b := newNode(t, nodeOptions{Key: kb, Listen: []string{listen}, Peers: []testPeer{{ID: ida}}, MaxPacket: MaxFrame, VirtioHeaders: virtioB})
				if rc.old {
					b.Host().RemoveStreamHandler(GSOProtocol)
				}
				a := newNode(t, nodeOptions{Key: ka, Listen: []string{listen}, Peers: []testPeer{{ID: idb, Addrs: b.Host().Addrs()}}, MaxPacket: MaxFrame, VirtioHeaders: true})
				start(t, a, b)
				type rx struct{ hdr, pkt []byte }
				got := make(chan rx, 100)
				go func() {
					bufs := [][]byte{make([]byte, Headroom+MaxFrame)}
					scratch := make([]byte, Headroom+MaxFrame)
					sizes, from := make([]int, 1), make([]peer.ID, 1)
					for {
						if _, err := b.Transport().Receive(bufs, sizes, from, Headroom); err != nil {
							close(got)
							return
						}
						hdr, pkt := bufs[0][Headroom-packet.VirtioHdrLen:Headroom], bufs[0][Headroom:Headroom+sizes[0]]
						if !virtioB { // as the engine readies it for the device
							noHdr := make([]byte, packet.VirtioHdrLen)
							cut, _ := packet.MakeWhole(packet.ParseVirtio(hdr), pkt, cmp.Or(rc.mtu, MaxFrame), scratch, func(seg []byte) error {
								got <- rx{noHdr, bytes.Clone(seg)}
								return nil
							})
							if !cut {
								got <- rx{noHdr, bytes.Clone(pkt)}
							}
							continue
						}
						got <- rx{bytes.Clone(hdr), bytes.Clone(pkt)}
					}
				}()
				probe := packettest.IPv4(17, 60, 0, 0)
				openStream(t, a, idb, probe, got)

				payload := make([]byte, 40000)
				for i := range payload {
					payload[i] = byte(i)
				}
				super, h := packettest.SuperPacket(t, false, payload, 1380, 0x18)
				ack, ah := packettest.SuperPacket(t, false, nil, 1380, 0x10)
				// Segments under minMSS: cut by the sender even for a node
				// that takes super-packets.
				tinyPayload := bytes.Repeat([]byte{0xab}, 300)
				tiny, th := packettest.SuperPacket(t, false, tinyPayload, 100, 0x18)
				ah.GSOType, ah.GSOSize = packet.GSONone, 0
				put := func(buf []byte, pkt []byte, h packet.VirtioHeader) int {
					v := buf[Headroom-packet.VirtioHdrLen : Headroom]
					v[0], v[1] = h.Flags, h.GSOType
					binary.LittleEndian.PutUint16(v[2:], h.HdrLen)
					binary.LittleEndian.PutUint16(v[4:], h.GSOSize)
					binary.LittleEndian.PutUint16(v[6:], h.CsumStart)
					binary.LittleEndian.PutUint16(v[8:], h.CsumOffset)
					return copy(buf[Headroom:], pkt)
				}
				tx := [][]byte{make([]byte, Headroom+MaxFrame), make([]byte, Headroom+MaxFrame), make([]byte, Headroom+MaxFrame)}
				sizes := []int{put(tx[0], super, h), put(tx[1], ack, ah), put(tx[2], tiny, th)}
				wantHdr := bytes.Clone(tx[0][Headroom-packet.VirtioHdrLen : Headroom])
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
						if !packettest.Valid(r.pkt) || !bytes.Equal(r.hdr, make([]byte, packet.VirtioHdrLen)) {
							t.Fatalf("a small segment with checksum valid %v, header %x", packettest.Valid(r.pkt), r.hdr)
						}
						tinyData = append(tinyData, r.pkt[52:]...)
						continue
					}
					if len(r.pkt) == len(ack) { // the ACK, maybe by datagram, maybe first
						gotACK = true
						// To a node like it, on the stream, the checksum may
						// stay partial for the receiving kernel to complete.
						if ah := packet.ParseVirtio(r.hdr); virtioB && ah.Flags == packet.NeedsCsum {
							packet.CompleteChecksum(r.pkt, int(ah.CsumStart), int(ah.CsumOffset))
						} else if ah.Flags != 0 {
							t.Errorf("the ACK arrived with a header %x", r.hdr)
						}
						if !packettest.Valid(r.pkt) {
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
						if len(r.pkt) != len(super) || !packettest.Valid(r.pkt) || !bytes.Equal(r.hdr, make([]byte, packet.VirtioHdrLen)) {
							t.Fatalf("the super-packet arrived as %d bytes (want %d), checksum valid %v, header %x", len(r.pkt), len(super), packettest.Valid(r.pkt), r.hdr)
						}
						data = append(data, r.pkt[52:]...)
						continue
					}
					if len(r.pkt) > 20+32+1380 || !packettest.Valid(r.pkt) || !bytes.Equal(r.hdr, make([]byte, packet.VirtioHdrLen)) {
						t.Fatalf("a segment of %d bytes, checksum valid %v, header %x", len(r.pkt), packettest.Valid(r.pkt), r.hdr)
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
