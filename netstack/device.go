package netstack

import (
	"os"

	"github.com/mynetwork/mynetwork/internal/packet"
	"gvisor.dev/gvisor/pkg/buffer"
	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/header"
	"gvisor.dev/gvisor/pkg/tcpip/stack"
)

// batchSize is how many packets one Read or Write call handles at most; it
// matches wireguard-go's conn.IdealBatchSize.
const batchSize = 128

// Read fills bufs[i][offset:] with packets the stack sends out and sizes[i]
// with their lengths. It blocks until at least one packet is queued, then
// takes whatever else is queued without waiting, up to len(bufs). After
// Close it returns os.ErrClosed. With offload each packet's virtio-net
// header goes in the 10 bytes in front of offset.
func (s *Stack) Read(bufs [][]byte, sizes []int, offset int) (int, error) {
	if len(bufs) == 0 {
		return 0, nil
	}
	n := 0
	for n == 0 {
		if s.closed.Load() {
			return 0, os.ErrClosed
		}
		pkt := s.link.next(true)
		if pkt == nil { // closed
			return 0, os.ErrClosed
		}
		for pkt != nil {
			// A packet that does not fit is dropped. It cannot
			// happen with the engine's buffers (engine.BufferSize):
			// the stack never emits more than that.
			if size, ok := copyPacket(bufs[n][offset:], pkt); ok {
				sizes[n] = size
				if s.link.offload {
					putVirtioHdr(bufs[n][offset-packet.VirtioHdrLen:], bufs[n][offset:offset+size], pkt.GSOOptions)
				}
				n++
			}
			pkt.DecRef()
			if n == len(bufs) {
				break
			}
			pkt = s.link.next(false)
		}
	}
	return n, nil
}

// copyPacket copies pkt's headers and payload into dst without allocating.
func copyPacket(dst []byte, pkt *stack.PacketBuffer) (int, bool) {
	if pkt.Size() > len(dst) {
		return 0, false
	}
	views, skip := pkt.AsViewList()
	n := 0
	for v := views.Front(); v != nil; v = v.Next() {
		b := v.AsSlice()
		if skip >= len(b) {
			skip -= len(b)
			continue
		}
		n += copy(dst[n:], b[skip:])
		skip = 0
	}
	return n, true
}

// Write hands the packets at bufs[i][offset:] to the stack as if they had
// arrived on the NIC. Packets that are neither IPv4 nor IPv6 are dropped,
// and so are those to other addresses unless Forward takes them.
// With offload, a packet's virtio-net header is in the 10 bytes in front
// of offset. It returns len(bufs), or os.ErrClosed after Close.
func (s *Stack) Write(bufs [][]byte, offset int) (int, error) {
	if s.closed.Load() {
		return 0, os.ErrClosed
	}
	for _, b := range bufs {
		pkt := b[offset:]
		var proto tcpip.NetworkProtocolNumber
		switch header.IPVersion(pkt) {
		case header.IPv4Version:
			proto = header.IPv4ProtocolNumber
		case header.IPv6Version:
			proto = header.IPv6ProtocolNumber
		default:
			continue
		}
		to := &s.link.attachment
		if f := s.fwd.Load(); f != nil {
			if to = f.inbound(pkt, to); to == nil {
				continue
			}
		}
		if s.link.offload && isSuperPacket(b[offset-packet.VirtioHdrLen:]) {
			setIPLength(pkt)
		}
		// gVisor needs the packet in its own buffer: MakeWithData
		// copies it into a pooled chunk, so the caller may reuse b.
		pb := stack.NewPacketBuffer(stack.PacketBufferOptions{Payload: buffer.MakeWithData(pkt)})
		to.inject(proto, pb)
		pb.DecRef()
	}
	return len(bufs), nil
}

// MTU returns the link MTU: the largest packet Read returns and Write
// should be given.
func (s *Stack) MTU() (int, error) {
	return s.mtu, nil
}

// BatchSize is the number of buffers Read and Write work best with.
func (s *Stack) BatchSize() int {
	return batchSize
}
