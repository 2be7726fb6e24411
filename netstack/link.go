package netstack

import (
	"sync"
	"sync/atomic"

	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/header"
	"gvisor.dev/gvisor/pkg/tcpip/stack"
)

// link is the stack's NIC: a gVisor LinkEndpoint without link-layer header
// whose outbound packets wait in a bounded queue until Stack.Read takes them,
// and whose inbound packets come from Stack.Write. A packet that finds the
// queue full is dropped and counted, as on a NIC whose ring is full; TCP
// retransmits it.
type link struct {
	mtu     atomic.Uint32
	offload bool // TCP segmentation and checksum offload (offload.go)
	out     chan *stack.PacketBuffer
	done    chan struct{} // closed by close
	dropped atomic.Uint64 // outbound packets that found the queue full

	mu     sync.RWMutex // held for reading while sending on out
	closed bool

	attachment
}

// attachment is the dispatcher a NIC hands inbound packets to: the
// link's, or the forwarding stack's NIC's, which shares the link's queue
// (forward.go).
type attachment struct {
	mu         sync.RWMutex
	dispatcher stack.NetworkDispatcher
}

var (
	_ stack.LinkEndpoint = (*link)(nil)
	_ stack.GSOEndpoint  = (*link)(nil)
)

func newLink(queueLen int, mtu uint32, offload bool) *link {
	l := &link{out: make(chan *stack.PacketBuffer, queueLen), done: make(chan struct{}), offload: offload}
	l.mtu.Store(mtu)
	return l
}

// WritePackets queues the stack's outbound packets for Stack.Read.
func (l *link) WritePackets(pkts stack.PacketBufferList) (int, tcpip.Error) {
	l.mu.RLock()
	defer l.mu.RUnlock()
	if l.closed {
		return 0, &tcpip.ErrClosedForSend{}
	}
	n := 0
	for _, pkt := range pkts.AsSlice() {
		// The caller keeps its reference; the queue holds a clone
		// that shares the packet's buffer (a pooled struct, no copy).
		c := pkt.Clone()
		select {
		case l.out <- c:
			n++
		default:
			c.DecRef()
			l.dropped.Add(uint64(pkts.Len() - n))
			if n == 0 {
				return 0, &tcpip.ErrNoBufferSpace{}
			}
			return n, nil
		}
	}
	return n, nil
}

// next returns the next outbound packet, waiting for one if wait is set; nil
// if there is none or the link is closed.
func (l *link) next(wait bool) *stack.PacketBuffer {
	select {
	case pkt := <-l.out:
		return pkt
	default:
	}
	if !wait {
		return nil
	}
	select {
	case pkt := <-l.out:
		return pkt
	case <-l.done:
		return nil
	}
}

// inject hands an inbound packet to the stack.
func (a *attachment) inject(proto tcpip.NetworkProtocolNumber, pkt *stack.PacketBuffer) {
	a.mu.RLock()
	d := a.dispatcher
	a.mu.RUnlock()
	if d != nil {
		d.DeliverNetworkPacket(proto, pkt)
	}
}

// Close stops the link: writes fail, waiting readers return, queued packets
// are released. It is idempotent; the stack calls it when removing the NIC.
func (l *link) Close() {
	l.mu.Lock()
	if !l.closed {
		l.closed = true
		close(l.done)
	}
	l.mu.Unlock()
	for pkt := l.next(false); pkt != nil; pkt = l.next(false) {
		pkt.DecRef()
	}
}

// Attach implements stack.LinkEndpoint.
func (a *attachment) Attach(d stack.NetworkDispatcher) {
	a.mu.Lock()
	a.dispatcher = d
	a.mu.Unlock()
}

// IsAttached implements stack.LinkEndpoint.
func (a *attachment) IsAttached() bool {
	a.mu.RLock()
	defer a.mu.RUnlock()
	return a.dispatcher != nil
}

// MTU implements stack.LinkEndpoint.
func (l *link) MTU() uint32 { return l.mtu.Load() }

// SetMTU implements stack.LinkEndpoint.
func (l *link) SetMTU(mtu uint32) { l.mtu.Store(mtu) }

// MaxHeaderLength implements stack.LinkEndpoint: IP packets, no link header.
func (*link) MaxHeaderLength() uint16 { return 0 }

// LinkAddress implements stack.LinkEndpoint: a point-to-point link has none.
func (*link) LinkAddress() tcpip.LinkAddress { return "" }

// SetLinkAddress implements stack.LinkEndpoint.
func (*link) SetLinkAddress(tcpip.LinkAddress) {}

// Capabilities implements stack.LinkEndpoint. Without offload the stack
// computes and verifies every checksum, as kernel peers expect; with it,
// see offload.go. No link address resolution.
func (l *link) Capabilities() stack.LinkEndpointCapabilities {
	if l.offload {
		return stack.CapabilityRXChecksumOffload
	}
	return stack.CapabilityNone
}

// SupportedGSO implements stack.GSOEndpoint: with offload, TCP hands the
// link super-packets and partial checksums, which the peer's kernel (or
// the transport) completes.
func (l *link) SupportedGSO() stack.SupportedGSO {
	if l.offload {
		return stack.HostGSOSupported
	}
	return stack.GSONotSupported
}

// GSOMaxSize implements stack.GSOEndpoint: a super-packet fits one frame.
func (l *link) GSOMaxSize() uint32 {
	if l.offload {
		return maxSuperPacket
	}
	return 0
}

// Wait implements stack.LinkEndpoint: the link has no goroutines.
func (*link) Wait() {}

// ARPHardwareType implements stack.LinkEndpoint.
func (*link) ARPHardwareType() header.ARPHardwareType { return header.ARPHardwareNone }

// AddHeader implements stack.LinkEndpoint: there is no link header.
func (*link) AddHeader(*stack.PacketBuffer) {}

// ParseHeader implements stack.LinkEndpoint: there is no link header.
func (*link) ParseHeader(*stack.PacketBuffer) bool { return true }

// SetOnCloseAction implements stack.LinkEndpoint.
func (*link) SetOnCloseAction(func()) {}
