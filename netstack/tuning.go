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
	// Outbound packets wait here until the engine's Read takes them; a
	// packet that finds the queue full is dropped and TCP must recover
	// it. gVisor has no pacing and no TCP small-queues limit, so after a
	// large ACK one connection may emit a whole window at once: up to
	// 16 MiB / 1380 B ≈ 12000 packets. 16384 slots hold that burst; with
	// 1024 slots BenchmarkTuning's 10 ms path ran at 0.16×. The slots are
	// pointers to packets the stack holds anyway: 128 KiB per stack.
	queueLen: 16384,
	// SACK tells the sender exactly which segments are missing, so one
	// loss on the mesh costs one retransmission instead of a window.
	sack: true,
	// Auto-tuning grows a connection's receive window towards the max as
	// the application keeps up: fast paths get a large window, idle
	// connections keep a small one.
	moderate: true,
	// RACK-TLP (gVisor's default) is off. It detects losses by time
	// rather than by duplicate ACKs, but in this gVisor version, after a
	// burst of packets is lost (a full queue anywhere on the path), a
	// RACK connection can get stuck retransmitting a couple of segments
	// per RTO without progress; BenchmarkTuning reproduces it. With
	// SACK-based recovery the same bursts never stalled.
	rack: false,
	// Mesh paths can be long (relays, other continents): at 100 ms RTT
	// gVisor's defaults (1 MiB, growing to 4 MiB) cap a connection at
	// 80-340 Mbit/s. 4 MiB to start, growing to 16 MiB, covers ~1.3
	// Gbit/s at 100 ms. Buffers fill on demand; nothing is preallocated.
	sendBuf: tcpip.TCPSendBufferSizeRangeOption{Min: tcp.MinBufferSize, Default: 4 * mib, Max: 16 * mib},
	recvBuf: tcpip.TCPReceiveBufferSizeRangeOption{Min: tcp.MinBufferSize, Default: 4 * mib, Max: 16 * mib},
	// Reno, not CUBIC: in this gVisor version CUBIC's window can drop to
	// 0 and the connection then stalls for good (seen in BenchmarkTuning;
	// upstream fixed CUBIC window bugs later, e.g. google/gvisor#13958).
	congestion: "reno",
}

// allOffTuning turns every choice above off (gVisor's buffer sizes, a
// 256-packet queue): the "off" side of the measurements in TUNING.md.
var allOffTuning = tuning{
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
