package p2p

import (
	"bytes"
	"errors"
	"testing"

	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/mynetwork/mynetwork/internal/virtio"
)

// receiveKinds are the devices a node's receive path finishes packets for,
// each with the stream protocols a peer may send on.
var receiveKinds = []struct {
	name string
	opts Options
}{
	// Linux kernel TUN below MTU 16000: takes offload headers.
	{"offload TUN", Options{MaxPacket: MaxFrame, MTU: 1420, VirtioHeaders: true}},
	// Linux kernel TUN at MTU 65000, and userspace mode: no headers, super-packets pass whole.
	{"large MTU", Options{MaxPacket: MaxFrame, MTU: 65000}},
	// macOS and Windows TUNs: no headers, super-packets cut into segments.
	{"small MTU", Options{MaxPacket: MaxFrame, MTU: 1420}},
}

// FuzzReceive feeds an incoming packet stream's bytes, as a configured peer
// could send them, through the whole receive path (frames, the offload
// header's check, checksum completion, segmentation, delivery) for each
// kind of device and both stream protocols. Nothing may panic, and what
// reaches the device is what it can take: for a device with offload
// headers, a header the kernel accepts; for one without, none.
func FuzzReceive(f *testing.F) {
	for _, ipv6 := range []bool{false, true} {
		p, h := superPacket(&testing.T{}, ipv6, bytes.Repeat([]byte{7}, 3000), 1380, 0x18)
		for kind := range len(receiveKinds) {
			f.Add(gsoFrame(h, p), uint8(kind)|4)
			f.Add(append([]byte{0, 4}, p[:4]...), uint8(kind))
		}
	}
	from := peer.ID("fuzzing peer")
	trs := make([]*Transport, len(receiveKinds))
	for i, k := range receiveKinds {
		trs[i] = newTransport(nil, []peer.ID{from}, k.opts)
		trs[i].inbox = make(chan *packet, 1<<14) // more than 16 KiB of input can make
	}
	f.Fuzz(func(t *testing.T, stream []byte, kind uint8) {
		if len(stream) > 16<<10 {
			t.Skip()
		}
		k := int(kind&3) % len(receiveKinds)
		tr := trs[k]
		ps := tr.peers[from]
		err := tr.readStream(ps, bytes.NewReader(stream), kind&4 != 0)
		if errors.Is(err, errPanicked) {
			t.Fatalf("%s: %v", receiveKinds[k].name, err)
		}
		for len(tr.inbox) > 0 {
			pk := <-tr.inbox
			h := virtio.Parse(pk.vhdr())
			switch {
			case pk.n < 1 || pk.n > MaxFrame:
				t.Fatalf("%s: a %d-byte packet delivered", receiveKinds[k].name, pk.n)
			case tr.virtio && checkHdr(h, pk.data(), minMSS) != nil:
				t.Fatalf("%s: delivered with a header the kernel refuses: %+v", receiveKinds[k].name, h)
			case !tr.virtio && h != (virtioHdr{}):
				t.Fatalf("%s: delivered with an offload header: %+v", receiveKinds[k].name, h)
			}
			tr.put(pk)
		}
	})
}

// gsoFrame is a GSOProtocol frame of pkt with header h.
func gsoFrame(h virtioHdr, pkt []byte) []byte {
	return append(append([]byte{byte(len(pkt) >> 8), byte(len(pkt))}, hdrBytes(h)...), pkt...)
}
