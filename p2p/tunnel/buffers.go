package tunnel

import (
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/mynetwork/mynetwork/internal/packet"
)

// pbuf is a queued or received packet at buf[Headroom:Headroom+n]. The
// headroom in front matches the engine's, so a large packet's buffer can
// change hands with the engine's instead of being copied, and it has room
// for the frame header, so a large frame is written from where it lies.
type pbuf struct {
	buf  []byte
	n    int
	from peer.ID
	enq  time.Duration // when it entered a peer's queue, since the transport's start
	next *pbuf         // in a flow's queue (fq.go)
}

// Headroom is the space in front of every packet: packet.Headroom.
const Headroom = packet.Headroom

func (pk *pbuf) data() []byte { return pk.buf[Headroom : Headroom+pk.n] }

// vhdr is the virtio-net header in front of the packet (virtio transports).
func (pk *pbuf) vhdr() []byte { return pk.buf[Headroom-packet.VirtioHdrLen : Headroom] }

// bufTiers are the sizes of the pooled buffers smaller than maxPacket. A
// packet takes the smallest that holds it, so that a queue's memory, which
// its bound counts (queueMem), follows its bytes: small packets (ACKs,
// SYNs, pings) take 2 KiB, and no packet holds more than four times its
// size (a 3000-byte packet held 64 KiB, and 1,000 connections starting at
// once through a userspace node lost 43% of their packets to the bound).
var bufTiers = [...]int{smallPacket, 8 << 10, 32 << 10}

// get returns a pooled buffer for an n-byte packet.
func (t *Transport) get(n int) *pbuf {
	for i, size := range bufTiers {
		if size >= t.maxPacket {
			break
		}
		if n <= size {
			return t.tiers[i].Get().(*pbuf)
		}
	}
	return t.pool.Get().(*pbuf)
}

// put returns a packet's buffer to the pool of its size.
func (t *Transport) put(pk *pbuf) {
	n := len(pk.buf) - Headroom
	if n >= t.maxPacket {
		t.pool.Put(pk)
		return
	}
	for i, size := range bufTiers {
		if n == size {
			t.tiers[i].Put(pk)
			return
		}
	}
}

// swappable says whether a pooled buffer and a caller's buffer, whose
// packet sits at offset, can change places: the same headroom, the pooled
// one no shorter (the caller keeps using it at its own length), and the
// caller's long enough to hold any packet once pooled.
func (t *Transport) swappable(pooled, theirs []byte, offset int) bool {
	return offset == Headroom && len(pooled) >= len(theirs) && len(theirs) >= Headroom+t.maxPacket
}
