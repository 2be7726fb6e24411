package engine

import (
	"bytes"
	"testing"

	"github.com/mynetwork/mynetwork/internal/packet"
	"github.com/mynetwork/mynetwork/internal/packet/packettest"
)

// recordingDevice is a packet.Device that keeps what is written to it, one
// slice per Write call.
type recordingDevice struct {
	mtu     int
	offload bool
	writes  [][][]byte
}

func (d *recordingDevice) Read([][]byte, []int, int) (int, error) { select {} }
func (d *recordingDevice) MTU() (int, error)                      { return d.mtu, nil }
func (d *recordingDevice) BatchSize() int                         { return 8 }
func (d *recordingDevice) Close() error                           { return nil }
func (d *recordingDevice) VirtioHeaders() bool                    { return d.offload }

func (d *recordingDevice) Write(bufs [][]byte, offset int) (int, error) {
	var batch [][]byte
	for _, b := range bufs {
		batch = append(batch, bytes.Clone(b[offset-packet.VirtioHdrLen:]))
	}
	d.writes = append(d.writes, batch)
	return len(bufs), nil
}

// withHeader is a buffer holding pkt at packet.Headroom behind header h.
func withHeader(h packet.VirtioHeader, pkt []byte) []byte {
	b := make([]byte, packet.Headroom+len(pkt))
	h.Put(packet.HeaderOf(b))
	copy(b[packet.Headroom:], pkt)
	return b
}

// TestDeviceWriterMakesPacketsWhole: received packets reach a device with
// offload headers as they came; a device without gets each made whole, a
// super-packet over its MTU cut into segments written in order between
// the packets around it, every checksum valid.
func TestDeviceWriterMakesPacketsWhole(t *testing.T) {
	payload := bytes.Repeat([]byte("segment "), 5000) // 40,000 bytes
	super, sh := packettest.SuperPacket(t, false, payload, 1380, 0x18)
	small, smh := packettest.SuperPacket(t, true, []byte("ack"), 1380, 0x10)
	smh.GSOType, smh.GSOSize = packet.GSONone, 0 // one segment, checksum partial
	batch := func() [][]byte {
		return [][]byte{withHeader(smh, small), withHeader(sh, super), withHeader(smh, small)}
	}
	for _, c := range []struct {
		name    string
		dev     *recordingDevice
		batches int // Write calls
		pkts    int // packets written
	}{
		{"offload", &recordingDevice{mtu: 1420, offload: true}, 1, 3},
		{"large MTU", &recordingDevice{mtu: 65000}, 1, 3},
		// 29 segments of 1,380 bytes at 8 a batch: the ACK, 4 batches of
		// segments, then the ACK.
		{"small MTU", &recordingDevice{mtu: 1420}, 6, 1 + 29 + 1},
	} {
		w := newDeviceWriter(c.dev, 8, packet.Headroom+0xffff)
		sent, err := w.write(batch())
		if err != nil || sent != c.pkts {
			t.Fatalf("%s: wrote %d packets (%v), want %d", c.name, sent, err, c.pkts)
		}
		if len(c.dev.writes) != c.batches {
			t.Fatalf("%s: %d writes, want %d", c.name, len(c.dev.writes), c.batches)
		}
		var got [][]byte
		for _, b := range c.dev.writes {
			got = append(got, b...)
		}
		if c.dev.offload {
			if !bytes.Equal(got[1], withHeader(sh, super)[packet.Headroom-packet.VirtioHdrLen:]) {
				t.Fatalf("%s: the super-packet changed on its way to the device", c.name)
			}
			continue
		}
		var data []byte
		for i, b := range got {
			pkt := b[packet.VirtioHdrLen:]
			if !packettest.Valid(pkt) {
				t.Fatalf("%s: packet %d of %d bytes, checksum valid %v", c.name, i, len(pkt), packettest.Valid(pkt))
			}
			if len(pkt) > 52+1380 && len(got) != 3 {
				t.Fatalf("%s: a %d-byte packet among segments", c.name, len(pkt))
			}
			if i > 0 && i < len(got)-1 {
				data = append(data, pkt[52:]...)
			} else if len(pkt) != len(small) {
				t.Fatalf("%s: packet %d is not the ACK", c.name, i)
			}
		}
		if !bytes.Equal(data, payload) {
			t.Fatalf("%s: the segments do not add up to the payload", c.name)
		}
	}
}
