package netstack

import (
	"bytes"
	"context"
	"errors"
	"net"
	"net/netip"
	"sync"
	"syscall"

	"github.com/mynetwork/mynetwork/internal/pipe"
	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/stack"
	"gvisor.dev/gvisor/pkg/tcpip/transport/udp"
	"gvisor.dev/gvisor/pkg/waiter"
)

// maxDatagram is the largest UDP payload: any datagram fits a buffer.
const maxDatagram = 0xFFFF

// datagramBufs holds the buffers flows read datagrams into. The host side
// of a flow holds one while it waits; the stack side takes one only when
// datagrams are queued.
var datagramBufs = sync.Pool{New: func() any { return new([maxDatagram]byte) }}

// handleUDP runs on the packet path for the first datagram of a flow to a
// forwarded address. It makes the flow's endpoint in the stack, connected
// to the peer and bound to the destination: the endpoint takes this
// datagram and the flow's later ones, and replies leave from the
// destination. The dial and the copying run in the flow's goroutine.
func (f *forwarder) handleUDP(r *udp.ForwarderRequest) {
	rule := f.rule.Load()
	if rule == nil { // Forward(nil) since udpPacket looked
		f.dropped.Add(1)
		return
	}
	if !acquire(&f.udpOpen, f.maxUDP) {
		f.refused.Add(1)
		return
	}
	fl := &udpFlow{f: f, id: r.ID(), done: make(chan struct{})}
	ep, terr := r.CreateEndpoint(&fl.wq)
	if terr != nil || !f.enter() {
		if terr == nil {
			ep.Close()
		}
		f.udpOpen.Add(-1)
		return
	}
	fl.ep = ep
	go fl.run(rule)
}

// udpFlow is a forwarded UDP flow: the stack's endpoint for one peer
// address and port and one destination, and the host's connection to that
// destination.
type udpFlow struct {
	f  *forwarder
	id stack.TransportEndpointID
	wq waiter.Queue
	ep tcpip.Endpoint

	mu     sync.Mutex
	host   net.Conn // nil until dialed
	idle   *pipe.IdleTimer
	closed bool
	done   chan struct{} // closed by Close
}

// run dials the destination and copies datagrams both ways until the flow
// is idle for f.udpIdle, the host's side fails, or the stack closes.
func (fl *udpFlow) run(rule *forwardRule) {
	f := fl.f
	defer f.wg.Done()
	defer f.udpOpen.Add(-1)
	if !f.track(fl) {
		return
	}
	defer f.untrack(fl)
	defer fl.Close()

	dst := netip.AddrPortFrom(addrOf(fl.id.LocalAddress), fl.id.LocalPort)
	ctx, cancel := context.WithTimeout(f.ctx, f.dialTimeout)
	host, err := rule.dial(ctx, "udp", dst.String())
	cancel()
	if err != nil {
		f.countDialFailure()
		return
	}
	fl.mu.Lock()
	if fl.closed {
		fl.mu.Unlock()
		host.Close()
		return
	}
	fl.host = host
	// The timer's expiry runs in a goroutine of its own; it only calls
	// Close, which ends both directions below.
	fl.idle = pipe.NewIdleTimer(f.udpIdle, func() { fl.Close() })
	fl.mu.Unlock()

	fromHost := make(chan struct{})
	go func() {
		defer close(fromHost)
		fl.fromHost(host)
	}()
	fl.toHost(host)
	fl.Close() // ends fromHost
	<-fromHost
}

// toHost sends the peer's datagrams to the host until the flow is closed.
func (fl *udpFlow) toHost(host net.Conn) {
	entry, readable := waiter.NewChannelEntry(waiter.ReadableEvents)
	fl.wq.EventRegister(&entry)
	defer fl.wq.EventUnregister(&entry)
	for fl.drain(host) {
		select {
		case <-readable:
		case <-fl.done:
			return
		}
	}
}

// drain sends the datagrams queued in the endpoint to the host; false once
// the endpoint is closed.
func (fl *udpFlow) drain(host net.Conn) bool {
	buf := datagramBufs.Get().(*[maxDatagram]byte)
	defer datagramBufs.Put(buf)
	for {
		w := tcpip.SliceWriter(buf[:])
		res, err := fl.ep.Read(&w, tcpip.ReadOptions{})
		if _, ok := err.(*tcpip.ErrWouldBlock); ok {
			return true
		}
		if err != nil {
			return false
		}
		fl.idle.Touch()
		// A failed send loses the datagram, as on a network; the flow
		// goes on.
		host.Write(buf[:res.Count])
	}
}

// fromHost sends the host's datagrams to the peer until the host
// connection fails or is closed.
func (fl *udpFlow) fromHost(host net.Conn) {
	buf := datagramBufs.Get().(*[maxDatagram]byte)
	defer datagramBufs.Put(buf)
	var r bytes.Reader
	for {
		n, err := host.Read(buf[:])
		if errors.Is(err, syscall.ECONNREFUSED) {
			// The destination's ICMP port unreachable for an
			// earlier datagram, which Linux reports once on a
			// connected socket; the next one may get through.
			continue
		}
		if err != nil {
			fl.Close()
			return
		}
		fl.idle.Touch()
		r.Reset(buf[:n])
		// A full send buffer drops the datagram, as a kernel would.
		fl.ep.Write(&r, tcpip.WriteOptions{})
	}
}

// Close ends the flow: both directions return, and the endpoint and the
// host connection close. It is idempotent and returns nil.
func (fl *udpFlow) Close() error {
	fl.mu.Lock()
	if fl.closed {
		fl.mu.Unlock()
		return nil
	}
	fl.closed = true
	host, idle := fl.host, fl.idle
	fl.mu.Unlock()
	idle.Stop()
	close(fl.done)
	fl.ep.Close()
	if host != nil {
		host.Close()
	}
	return nil
}
