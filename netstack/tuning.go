package netstack

import (
	"fmt"

	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/stack"
	"gvisor.dev/gvisor/pkg/tcpip/transport/tcp"
)

// tuning is the set of throughput-related stack settings. New always uses
// defaultTuning; tests and benchmarks build stacks with other values to
// measure what each setting is worth (see TUNING.md).
type tuning struct {
	queueLen   int                                   // outbound packets the link endpoint holds
	sack       bool                                  // TCP selective acknowledgements
	moderate   bool                                  // receive buffer auto-tuning
	rack       bool                                  // RACK-TLP loss detection
	sendBuf    tcpip.TCPSendBufferSizeRangeOption    // min/default/max send buffer
	recvBuf    tcpip.TCPReceiveBufferSizeRangeOption // min/default/max receive buffer
	congestion tcpip.CongestionControlOption         // "reno" or "cubic"
}

const mib = 1 << 20

var defaultTuning = tuning{
	// Outbound packets wait here until the engine's Read takes them. A
	// full queue drops the packet and TCP must retransmit it, so the
	// queue holds a whole send window of full-size packets (4 MiB / 1420 B
	// ≈ 3000) plus room for ACKs: 4096 packets. The queue holds pointers
	// to packets the stack already owns, so its size costs only when full.
	queueLen: 4096,
	// SACK tells the sender exactly which segments are missing, so one
	// loss on the mesh (a peer's relay or a congested uplink) costs one
	// retransmission instead of a window.
	sack: true,
	// Auto-tuning grows a connection's receive window towards the max as
	// the application keeps up, so fast paths get a large window and
	// idle connections keep a small one.
	moderate: true,
	// RACK detects losses by time rather than by three duplicate ACKs,
	// which recovers faster from tail losses and reordering (several
	// paths between two peers can reorder packets).
	rack: true,
	// Mesh paths can be long (relays, other continents): at 100 ms RTT a
	// 1 MiB window (gVisor's default) caps a connection at ~80 Mbit/s.
	// 4 MiB by default with room to grow to 16 MiB covers ~1.3 Gbit/s at
	// 100 ms. Buffers are filled on demand, not preallocated.
	sendBuf: tcpip.TCPSendBufferSizeRangeOption{Min: tcp.MinBufferSize, Default: 4 * mib, Max: 16 * mib},
	recvBuf: tcpip.TCPReceiveBufferSizeRangeOption{Min: tcp.MinBufferSize, Default: 4 * mib, Max: 16 * mib},
	// CUBIC grows the window faster than Reno on high bandwidth-delay
	// paths and is what Linux peers use.
	congestion: "cubic",
}

// baselineTuning is gVisor's stock TCP configuration with a modest queue:
// the "off" side of the measurements in TUNING.md.
var baselineTuning = tuning{
	queueLen:   256,
	sack:       false,
	moderate:   false,
	rack:       false,
	sendBuf:    tcpip.TCPSendBufferSizeRangeOption{Min: tcp.MinBufferSize, Default: tcp.DefaultSendBufferSize, Max: tcp.MaxBufferSize},
	recvBuf:    tcpip.TCPReceiveBufferSizeRangeOption{Min: tcp.MinBufferSize, Default: tcp.DefaultReceiveBufferSize, Max: tcp.MaxBufferSize},
	congestion: "reno",
}

// apply sets the TCP options on st.
func (t tuning) apply(st *stack.Stack) error {
	sack := tcpip.TCPSACKEnabled(t.sack)
	moderate := tcpip.TCPModerateReceiveBufferOption(t.moderate)
	var recovery tcpip.TCPRecovery
	if t.rack {
		recovery = tcpip.TCPRACKLossDetection
	}
	opts := []struct {
		name string
		opt  tcpip.SettableTransportProtocolOption
	}{
		{"SACK", &sack},
		{"receive buffer moderation", &moderate},
		{"loss recovery", &recovery},
		{"send buffer size", &t.sendBuf},
		{"receive buffer size", &t.recvBuf},
		{"congestion control", &t.congestion},
	}
	for _, o := range opts {
		if err := st.SetTransportProtocolOption(tcp.ProtocolNumber, o.opt); err != nil {
			return fmt.Errorf("netstack: set TCP %s: %s", o.name, err)
		}
	}
	return nil
}
