package netstack

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/header"
	"gvisor.dev/gvisor/pkg/tcpip/network/ipv4"
	"gvisor.dev/gvisor/pkg/tcpip/network/ipv6"
	"gvisor.dev/gvisor/pkg/tcpip/stack"
	"gvisor.dev/gvisor/pkg/tcpip/transport/tcp"
	"gvisor.dev/gvisor/pkg/tcpip/transport/udp"
)

// Forwarding: a userspace node that routes a subnet or serves as an exit
// node takes peers' TCP connections and UDP datagrams addressed to other
// hosts, ends them in the stack and opens the matching connection from the
// host (Stack.Forward). The TCP half is in forward_tcp.go, UDP in
// forward_udp.go.

// The bounds on forwarding. They are variables so that tests can lower
// them; Forward reads them when it first builds the forwarder.
var (
	// maxForwardTCP bounds the forwarded TCP connections open at once,
	// those whose dial is pending included. Beyond it a SYN is reset.
	maxForwardTCP = 1024
	// maxForwardUDP bounds the UDP flows open at once. Beyond it a new
	// flow's datagrams are dropped. An open flow holds a 64 KiB buffer
	// for the host's next datagram: 64 MiB at the bound.
	maxForwardUDP = 1024
	// forwardDialTimeout is how long a dial to the host may take before
	// the peer's connection is reset (a UDP flow is dropped).
	forwardDialTimeout = 10 * time.Second
	// udpIdleTimeout ends a UDP flow that carried nothing either way for
	// this long: long enough for DNS and most request-reply protocols,
	// short enough that abandoned flows free their slots.
	udpIdleTimeout = 2 * time.Minute
)

// DialFunc opens a connection from the host, like net.Dialer.DialContext.
type DialFunc func(ctx context.Context, network, address string) (net.Conn, error)

// Forward makes the stack take TCP connections and UDP datagrams from peers
// addressed to any address for which match returns true, and carry each to
// the host through dial. The stack's own addresses keep working as before,
// and packets to other addresses stay dropped. A nil dial means a
// net.Dialer's. Loopback, link-local, multicast, broadcast and unspecified
// destinations are never forwarded, whatever match says: they would reach
// the host's own services (or a cloud's metadata server at 169.254.169.254).
//
// A TCP connection is accepted in the stack only once dial(ctx, "tcp",
// "ip:port") to its destination has succeeded; if the dial fails or has
// not answered in 10 s, the peer's SYN gets a RST. Bytes are then copied
// both ways, the end of one side's stream becoming a half-close
// (CloseWrite) of the other side, and both connections are closed once
// both directions are done, or at once when either fails. The
// stack side sends keepalives (like net.Dialer's), so a peer that vanished
// frees its connection in about 2.5 minutes.
//
// UDP is carried per flow (peer address and port → destination address
// and port) over dial(ctx, "udp", "ip:port"); replies go back to the peer
// from the original destination. A flow ends after 2 minutes without a
// datagram either way. Other packets to other addresses are dropped, not
// answered by the stack: ICMP (ping) and other protocols, and IPv6 packets
// with extension headers, fragments included.
//
// At most 1024 TCP connections and 1024 UDP flows are forwarded at once;
// beyond that new ones are refused (TCP reset, UDP dropped) and counted in
// ForwardStats.
//
// Forward may be called at any time; match and dial apply to connections
// and flows from then on. A nil match stops forwarding new ones; those
// open go on until they end or the stack closes. The first call with a
// match builds a second gVisor stack that holds the forwarded connections;
// Forward fails only if that fails or the stack is closed.
func (s *Stack) Forward(match func(netip.Addr) bool, dial DialFunc) error {
	if s.closed.Load() {
		return fmt.Errorf("netstack: forward: %w", net.ErrClosed)
	}
	f := s.fwd.Load()
	if f == nil {
		if match == nil {
			return nil
		}
		var err error
		if f, err = s.startForwarding(); err != nil {
			return err
		}
	}
	f.set(match, dial)
	return nil
}

// startForwarding builds the forwarder once.
func (s *Stack) startForwarding() (*forwarder, error) {
	s.fwdMu.Lock()
	defer s.fwdMu.Unlock()
	// Close sets closed before it takes fwdMu, so it sees any
	// forwarder built here.
	if s.closed.Load() {
		return nil, fmt.Errorf("netstack: forward: %w", net.ErrClosed)
	}
	if f := s.fwd.Load(); f != nil {
		return f, nil
	}
	f, err := newForwarder(s.link, s.v4, s.v6, s.tune)
	if err != nil {
		return nil, err
	}
	s.fwd.Store(f)
	return f, nil
}

// ForwardStats counts what Forward did.
type ForwardStats struct {
	TCP int // forwarded TCP connections open now, those being dialed included
	UDP int // forwarded UDP flows open now
	// Refused counts TCP connections and UDP flows refused at the
	// bounds (1024 each), and SYNs gVisor ignored because 1024 dials
	// were pending (each retransmission again).
	Refused uint64
	// DialFailed counts dials to the host that failed or timed out.
	DialFailed uint64
	// Dropped counts packets to other addresses that were not forwarded:
	// match rejected the address, forwarding was off, or the packet was
	// neither TCP nor UDP (a ping).
	Dropped uint64
}

// ForwardStats returns the forwarding counters; all zero before Forward.
func (s *Stack) ForwardStats() ForwardStats {
	f := s.fwd.Load()
	if f == nil {
		return ForwardStats{}
	}
	return ForwardStats{
		TCP: int(f.tcpOpen.Load()),
		UDP: int(f.udpOpen.Load()),
		// gVisor ignores SYNs beyond maxInFlight pending requests
		// before they reach the handler; they count as refused too.
		Refused:    f.refused.Load() + f.st.Stats().TCP.ForwardMaxInFlightDrop.Value(),
		DialFailed: f.dialFailed.Load(),
		Dropped:    f.dropped.Load(),
	}
}

// forwardRule is what Forward set.
type forwardRule struct {
	match func(netip.Addr) bool
	dial  DialFunc
}

// forwarder carries forwarded connections between the stack and the host.
//
// It runs a gVisor stack of its own, beside the one holding the node's
// addresses: Write hands it the TCP and UDP packets to other addresses,
// and its NIC sends into the same outbound queue. Its NIC is promiscuous
// (it takes packets for any address) and spoofs (endpoints send from any
// address, so replies leave from the original destination). Two things
// rule out doing this on the main stack. gVisor drops every packet on a
// promiscuous NIC of a stack with HandleLocal as coming from one of its
// own addresses (it asks whether the source is local, allowing temporary
// addresses). And the stack's own listeners, bound to the unspecified
// address, would take forwarded connections to their port. This stack
// has no listeners and no HandleLocal; it has the main stack's TCP tuning.
type forwarder struct {
	st     *stack.Stack
	link   *fwdLink
	v4, v6 tcpip.Address // the main stack's addresses; v6 may be empty
	tcp    *tcp.Forwarder
	udp    *udp.Forwarder
	rule   atomic.Pointer[forwardRule] // nil: forward nothing new

	// The bounds, read from the variables above when it is built.
	maxTCP, maxUDP       int
	dialTimeout, udpIdle time.Duration

	tcpOpen, udpOpen             atomic.Int64
	refused, dialFailed, dropped atomic.Uint64

	// ctx ends pending dials when the stack closes.
	ctx    context.Context
	cancel context.CancelFunc

	mu     sync.Mutex
	closed bool
	open   map[io.Closer]struct{} // forwarded connections and flows
	wg     sync.WaitGroup         // every goroutine the forwarder runs
}

// fwdLink is the forwarding stack's NIC. Its outbound packets, MTU and
// offload are the main link's (the embedded *link); its attachment, which
// Write injects into, is its own.
type fwdLink struct {
	*link
	attachment
}

// Close implements stack.LinkEndpoint: the queue is the main link's,
// which the main stack closes.
func (*fwdLink) Close() {}

// newForwarder builds the forwarding stack, its NIC sending into main's
// queue, with tune's TCP settings.
func newForwarder(main *link, v4, v6 netip.Addr, tune tuning) (*forwarder, error) {
	st := stack.New(stack.Options{
		NetworkProtocols:   []stack.NetworkProtocolFactory{ipv4.NewProtocol, ipv6.NewProtocol},
		TransportProtocols: []stack.TransportProtocolFactory{tcp.NewProtocol, udp.NewProtocol},
	})
	f := &forwarder{
		st:          st,
		link:        &fwdLink{link: main},
		v4:          tcpip.AddrFrom4(v4.As4()),
		maxTCP:      maxForwardTCP,
		maxUDP:      maxForwardUDP,
		dialTimeout: forwardDialTimeout,
		udpIdle:     udpIdleTimeout,
		open:        make(map[io.Closer]struct{}),
	}
	if v6.IsValid() {
		f.v6 = tcpip.AddrFrom16(v6.As16())
	}
	if err := f.setup(tune); err != nil {
		st.Destroy()
		return nil, err
	}
	f.ctx, f.cancel = context.WithCancel(context.Background())
	return f, nil
}

// setup applies the tuning and creates the NIC, its routes and the
// transport handlers.
func (f *forwarder) setup(tune tuning) error {
	if err := setupNIC(f.st, f.link, tune); err != nil {
		return err
	}
	f.st.SetPromiscuousMode(nicID, true)
	f.st.SetSpoofing(nicID, true)
	// gVisor runs the TCP handler in a goroutine of its own per SYN, and
	// ignores SYNs beyond maxInFlight handlers that have not called
	// Complete yet. A handler holds its slot until the dial answers, so
	// the bound on connections fits. Accepted connections get the
	// receive buffer the main stack's listeners give theirs.
	f.tcp = tcp.NewForwarder(f.st, tune.recvBuf.Default, f.maxTCP, f.handleTCP)
	f.udp = udp.NewForwarder(f.st, f.handleUDP)
	f.st.SetTransportProtocolHandler(tcp.ProtocolNumber, f.tcpPacket)
	f.st.SetTransportProtocolHandler(udp.ProtocolNumber, f.udpPacket)
	return nil
}

// set implements Stack.Forward for a forwarder that exists.
func (f *forwarder) set(match func(netip.Addr) bool, dial DialFunc) {
	if match == nil {
		f.rule.Store(nil)
		return
	}
	if dial == nil {
		dial = new(net.Dialer).DialContext
	}
	f.rule.Store(&forwardRule{match: match, dial: dial})
}

// inbound says which stack Write hands pkt, an IPv4 or IPv6 packet, to:
// main for the node's own addresses, the forwarding stack for TCP and UDP
// to other addresses, nil (drop) for the rest. The forwarding stack would
// answer pings (and report unknown protocols) for any address. Packets
// too short to tell go to main, which drops them.
func (f *forwarder) inbound(pkt []byte, main *attachment) *attachment {
	var dst tcpip.Address
	var proto uint8
	switch {
	case header.IPVersion(pkt) == header.IPv4Version && len(pkt) >= header.IPv4MinimumSize:
		h := header.IPv4(pkt)
		dst, proto = h.DestinationAddress(), h.Protocol()
	case header.IPVersion(pkt) == header.IPv6Version && len(pkt) >= header.IPv6MinimumSize:
		h := header.IPv6(pkt)
		dst, proto = h.DestinationAddress(), h.NextHeader()
	default:
		return main
	}
	switch {
	case dst == f.v4 || (f.v6.Len() > 0 && dst == f.v6):
		return main
	case proto == uint8(tcp.ProtocolNumber) || proto == uint8(udp.ProtocolNumber):
		return &f.link.attachment
	}
	f.dropped.Add(1)
	return nil
}

// tcpPacket is the forwarding stack's handler for TCP segments no
// connection took.
func (f *forwarder) tcpPacket(id stack.TransportEndpointID, pkt *stack.PacketBuffer) bool {
	if !f.wants(id.LocalAddress) {
		f.dropped.Add(1)
		return true
	}
	// Not a SYN (false): gVisor resets it from the forwarded address, as
	// that host would a segment for a connection it does not know.
	return f.tcp.HandlePacket(id, pkt)
}

// udpPacket is the forwarding stack's handler for UDP datagrams no flow
// took.
func (f *forwarder) udpPacket(id stack.TransportEndpointID, pkt *stack.PacketBuffer) bool {
	if !f.wants(id.LocalAddress) {
		f.dropped.Add(1)
		return true
	}
	return f.udp.HandlePacket(id, pkt)
}

// wants says whether new connections to a are forwarded now.
func (f *forwarder) wants(a tcpip.Address) bool {
	r := f.rule.Load()
	if r == nil {
		return false
	}
	ip := addrOf(a)
	return !neverForwarded(ip) && r.match(ip)
}

// neverForwarded says whether ip is a destination Forward refuses whatever
// match says: one on the host itself or its link, or not one host. An
// IPv4-mapped IPv6 destination would reach its IPv4 address past a match
// written for IPv4 prefixes.
func neverForwarded(ip netip.Addr) bool {
	return ip.IsUnspecified() || ip.IsLoopback() || ip.IsMulticast() || ip.IsLinkLocalUnicast() ||
		ip.Is4In6() || ip == netip.AddrFrom4([4]byte{255, 255, 255, 255})
}

// addrOf converts a gVisor address to a netip.Addr.
func addrOf(a tcpip.Address) netip.Addr {
	if a.Len() == 4 {
		return netip.AddrFrom4(a.As4())
	}
	return netip.AddrFrom16(a.As16())
}

// enter registers a goroutine of the forwarder, which must call f.wg.Done
// when it ends; false once the forwarder is closed.
func (f *forwarder) enter() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		return false
	}
	f.wg.Add(1)
	return true
}

// track registers c, a forwarded connection or flow, so that close closes
// it; false (and c is closed) once the forwarder is closed.
func (f *forwarder) track(c io.Closer) bool {
	f.mu.Lock()
	closed := f.closed
	if !closed {
		f.open[c] = struct{}{}
	}
	f.mu.Unlock()
	if closed {
		c.Close()
	}
	return !closed
}

// untrack forgets c, which has ended.
func (f *forwarder) untrack(c io.Closer) {
	f.mu.Lock()
	delete(f.open, c)
	f.mu.Unlock()
}

// countDialFailure counts a failed dial, unless closing the stack ended it.
func (f *forwarder) countDialFailure() {
	if f.ctx.Err() == nil {
		f.dialFailed.Add(1)
	}
}

// acquire takes one of max slots counted by n.
func acquire(n *atomic.Int64, max int) bool {
	if n.Add(1) > int64(max) {
		n.Add(-1)
		return false
	}
	return true
}

// close ends forwarding: it refuses new work, ends pending dials, closes
// every forwarded connection and flow, destroys the forwarding stack (which
// ends handshakes in progress) and waits for the forwarder's goroutines.
func (f *forwarder) close() {
	f.mu.Lock()
	f.closed = true
	open := f.open
	f.open = nil
	f.mu.Unlock()
	f.rule.Store(nil)
	f.cancel()
	for c := range open {
		c.Close()
	}
	f.st.Destroy()
	f.wg.Wait()
}
