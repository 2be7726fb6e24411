// Package netstack is Mynetwork's userspace backend: a gVisor TCP/IP stack
// inside the process that owns this node's mesh addresses. It needs no root
// and no TUN interface.
//
// A Stack is a packet.Device: the packet engine reads the IP packets the
// stack emits (Read) and sends them to peers, and hands packets from peers to
// the stack (Write). Programs in the process reach the mesh through
// DialContext, ListenTCP and ListenUDP, which return ordinary net.Conn,
// net.Listener and net.PacketConn values.
//
// The stack routes every destination (0.0.0.0/0 and ::/0) to its one NIC, so
// it emits packets for any address; the engine decides which peer, if any,
// gets them. It answers ICMP echo requests itself, resets TCP connections to
// closed ports and reports closed UDP ports with ICMP port unreachable.
//
// A node that routes a subnet or serves as an exit node calls Forward: the
// stack then also takes peers' TCP connections and UDP flows to other
// addresses and opens the matching connections from the host.
package netstack

import (
	"fmt"
	"net/netip"
	"sync"
	"sync/atomic"

	"github.com/mynetwork/mynetwork/internal/packet"
	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/header"
	"gvisor.dev/gvisor/pkg/tcpip/network/ipv4"
	"gvisor.dev/gvisor/pkg/tcpip/network/ipv6"
	"gvisor.dev/gvisor/pkg/tcpip/stack"
	"gvisor.dev/gvisor/pkg/tcpip/transport/icmp"
	"gvisor.dev/gvisor/pkg/tcpip/transport/tcp"
	"gvisor.dev/gvisor/pkg/tcpip/transport/udp"
)

// DefaultMTU is the MTU used when Config.MTU is 0. It matches the kernel
// backend: room under a 1500-byte underlay for the transport's overhead.
const DefaultMTU = 1420

// nicID is the stack's only NIC.
const nicID tcpip.NICID = 1

// Config holds the node's mesh addresses and the link MTU.
type Config struct {
	IPv4 netip.Addr // this node's IPv4 address, e.g. 100.64.12.34; required
	IPv6 netip.Addr // this node's IPv6 ULA, e.g. fd6d:796e:6574::…; optional (zero: none)
	MTU  int        // 0 means DefaultMTU; otherwise 1280..65535
	// Offload gives the device TCP segmentation and checksum offload, as
	// a Linux TUN with the virtio-net header has (see offload.go).
	Offload bool
}

// Stack is a userspace TCP/IP stack holding this node's mesh addresses. It is
// a packet.Device, and DialContext, ListenTCP and ListenUDP open connections
// through it. It is safe for concurrent use.
type Stack struct {
	st     *stack.Stack
	link   *link
	v4, v6 netip.Addr
	mtu    int
	tune   tuning

	fwdMu sync.Mutex                // serializes building the forwarder with Close
	fwd   atomic.Pointer[forwarder] // nil until Forward is first called with a match

	closed    atomic.Bool
	closeOnce sync.Once
}

var (
	_ packet.Device    = (*Stack)(nil)
	_ packet.Offloader = (*Stack)(nil)
)

// New builds a stack with IPv4, IPv6, TCP, UDP and ICMP, one NIC holding the
// configured addresses, and default routes for both families through it.
func New(cfg Config) (*Stack, error) {
	return newStack(cfg, defaultTuning)
}

func newStack(cfg Config, tune tuning) (*Stack, error) {
	if cfg.MTU == 0 {
		cfg.MTU = DefaultMTU
	}
	if cfg.MTU < header.IPv6MinimumMTU || cfg.MTU > 65535 {
		return nil, fmt.Errorf("netstack: MTU %d out of range 1280..65535", cfg.MTU)
	}
	v4, v6 := cfg.IPv4.Unmap(), cfg.IPv6
	if !v4.Is4() {
		return nil, fmt.Errorf("netstack: IPv4 address %q is not an IPv4 address", cfg.IPv4)
	}
	if v6.IsValid() && (!v6.Is6() || v6.Is4In6()) {
		return nil, fmt.Errorf("netstack: IPv6 address %q is not an IPv6 address", cfg.IPv6)
	}

	st := stack.New(stack.Options{
		NetworkProtocols:   []stack.NetworkProtocolFactory{ipv4.NewProtocol, ipv6.NewProtocol},
		TransportProtocols: []stack.TransportProtocolFactory{tcp.NewProtocol, udp.NewProtocol, icmp.NewProtocol4, icmp.NewProtocol6},
		// Connections from this node to its own mesh address stay inside
		// the stack instead of going out to the engine, which has no
		// route to itself.
		HandleLocal: true,
	})
	s := &Stack{st: st, link: newLink(tune.queueLen, uint32(cfg.MTU), cfg.Offload), v4: v4, mtu: cfg.MTU, tune: tune}
	if v6.IsValid() {
		s.v6 = v6.WithZone("")
	}
	if err := s.setup(tune); err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}

// setup applies the tuning, creates the NIC with the addresses and routes.
func (s *Stack) setup(tune tuning) error {
	if err := setupNIC(s.st, s.link, tune); err != nil {
		return err
	}
	addrs := []tcpip.ProtocolAddress{{
		Protocol:          ipv4.ProtocolNumber,
		AddressWithPrefix: tcpip.AddrFrom4(s.v4.As4()).WithPrefix(),
	}}
	if s.v6.IsValid() {
		addrs = append(addrs, tcpip.ProtocolAddress{
			Protocol:          ipv6.ProtocolNumber,
			AddressWithPrefix: tcpip.AddrFrom16(s.v6.As16()).WithPrefix(),
		})
	}
	for _, a := range addrs {
		if err := s.st.AddProtocolAddress(nicID, a, stack.AddressProperties{}); err != nil {
			return fmt.Errorf("netstack: add address %s: %s", a.AddressWithPrefix, err)
		}
	}
	return nil
}

// setupNIC applies tune to st and gives it its one NIC, ep, with the routes.
func setupNIC(st *stack.Stack, ep stack.LinkEndpoint, tune tuning) error {
	if err := tune.apply(st); err != nil {
		return err
	}
	if err := st.CreateNIC(nicID, ep); err != nil {
		return fmt.Errorf("netstack: create NIC: %s", err)
	}
	// Everything goes to the NIC: the engine picks the peer by its own
	// routing table (peers' addresses and subnets routed behind them).
	st.SetRouteTable([]tcpip.Route{
		{Destination: header.IPv4EmptySubnet, NIC: nicID},
		{Destination: header.IPv6EmptySubnet, NIC: nicID},
	})
	return nil
}

// Addrs returns the node's IPv4 and IPv6 addresses; v6 is the zero Addr if
// none was configured.
func (s *Stack) Addrs() (v4, v6 netip.Addr) {
	return s.v4, s.v6
}

// Close aborts every connection, forwarded ones included, stops the stack's
// goroutines and unblocks a pending Read, which then returns os.ErrClosed.
// It is idempotent and always returns nil.
func (s *Stack) Close() error {
	s.closeOnce.Do(func() {
		s.closed.Store(true)
		s.link.Close() // unblocks Read at once
		s.fwdMu.Lock()
		f := s.fwd.Load()
		s.fwdMu.Unlock()
		if f != nil {
			f.close()
		}
		// Destroy aborts all endpoints, stops TCP's processor
		// goroutines and removes the NIC.
		s.st.Destroy()
	})
	return nil
}
