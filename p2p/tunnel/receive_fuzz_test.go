package tunnel

import (
	"bytes"
	"errors"
	"testing"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/mynetwork/mynetwork/internal/packet"
	"github.com/mynetwork/mynetwork/internal/packet/packettest"
)

// receiveKinds are the devices a node's receive path readies packets for,
// each with the stream protocols a peer may send on: the transport, then
// what the engine does for a device without offload headers
// (packet.MakeWhole, at the device's MTU).
var receiveKinds = []struct {
	name string
	opts Config
	mtu  int
}{
	// Linux kernel TUN below MTU 16000: takes offload headers.
	{"offload TUN", Config{MaxPacket: MaxFrame, VirtioHeaders: true}, 1420},
	// Linux kernel TUN at MTU 65000, and userspace mode: no headers, super-packets pass whole.
	{"large MTU", Config{MaxPacket: MaxFrame}, 65000},
	// macOS and Windows TUNs: no headers, super-packets cut into segments.
	{"small MTU", Config{MaxPacket: MaxFrame}, 1420},
}

// FuzzReceive feeds an incoming packet stream's bytes, as a configured peer
// could send them, through the whole receive path (frames, the offload
// header's check, delivery, then the engine's checksum completion and
// segmentation) for each kind of device and both stream protocols.
// Nothing may panic, every header delivered is one the kernel accepts,
// and a device without offload headers gets packets made whole.
func FuzzReceive(f *testing.F) {
	for _, ipv6 := range []bool{false, true} {
		p, h := packettest.SuperPacket(f, ipv6, bytes.Repeat([]byte{7}, 3000), 1380, 0x18)
		for kind := range len(receiveKinds) {
			f.Add(gsoFrame(h, p), uint8(kind)|4)
			f.Add(append([]byte{0, 4}, p[:4]...), uint8(kind))
		}
	}
	from := peer.ID("fuzzing peer")
	trs := make([]*Transport, len(receiveKinds))
	for i, k := range receiveKinds {
		trs[i] = newTransport(nil, []peer.ID{from}, k.opts)
		trs[i].inbox = make(chan *pbuf, 1<<14) // more than 16 KiB of input can make
	}
	scratch := make([]byte, Headroom+MaxFrame)
	f.Fuzz(func(t *testing.T, stream []byte, kind uint8) {
		if len(stream) > 16<<10 {
			t.Skip()
		}
		k := int(kind&3) % len(receiveKinds)
		tr := trs[k]
		ps := tr.peer(from)
		err := tr.readStream(ps, bytes.NewReader(stream), kind&4 != 0)
		if errors.Is(err, errPanicked) {
			t.Fatalf("%s: %v", receiveKinds[k].name, err)
		}
		for len(tr.inbox) > 0 {
			pk := <-tr.inbox
			h := packet.ParseVirtio(pk.vhdr())
			switch {
			case pk.n < 1 || pk.n > MaxFrame:
				t.Fatalf("%s: a %d-byte packet delivered", receiveKinds[k].name, pk.n)
			case packet.Check(h, pk.data(), minMSS) != nil:
				t.Fatalf("%s: delivered with a header the kernel refuses: %+v", receiveKinds[k].name, h)
			case !tr.virtio:
				if _, err := packet.MakeWhole(h, pk.data(), receiveKinds[k].mtu, scratch, func(seg []byte) error {
					if len(seg) > len(pk.data()) {
						t.Fatalf("%s: a %d-byte segment of a %d-byte packet", receiveKinds[k].name, len(seg), pk.n)
					}
					return nil
				}); err != nil {
					t.Fatal(err)
				}
			}
			tr.put(pk)
		}
	})
}

// gsoFrame is a GSOProtocol frame of pkt with header h.
func gsoFrame(h packet.VirtioHeader, pkt []byte) []byte {
	return append(append([]byte{byte(len(pkt) >> 8), byte(len(pkt))}, packettest.HeaderBytes(h)...), pkt...)
}
