package daemon

import (
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/mynetwork/mynetwork/internal/engine"
	"github.com/mynetwork/mynetwork/p2p"
	"github.com/mynetwork/mynetwork/p2p/tunnel"
)

// meshCollector turns the node's counters into Prometheus metrics when
// they are scraped: it loads the atomics the packet path keeps anyway, so
// metrics add nothing per packet.
type meshCollector struct {
	eng     *engine.Counters
	refused *atomic.Uint64
	peers   func() []peerSample // the configured peers, read at scrape time
}

// peerSample is what a scrape reports of one configured peer.
type peerSample struct {
	name string
	c    *tunnel.PeerCounters // nil: the transport does not know the peer
	st   p2p.PeerState
}

func metricDesc(name, help string, labels ...string) *prometheus.Desc {
	return prometheus.NewDesc("mynetwork_"+name, help, labels, nil)
}

var (
	mTxPackets = metricDesc("sent_packets_total", "Packets read from the device and handed to the transport.")
	mTxBytes   = metricDesc("sent_bytes_total", "Bytes of the packets read from the device and handed to the transport.")
	mRxPackets = metricDesc("received_packets_total", "Packets from peers written to the device.")
	mRxBytes   = metricDesc("received_bytes_total", "Bytes of the packets from peers written to the device.")
	mDropped   = metricDesc("dropped_packets_total", "Packets the engine dropped, by reason.", "reason")
	mRefused   = metricDesc("refused_streams_total", "Packet streams refused because their peer is not in the config.")
	mPanics    = metricDesc("panics_total", "Panics contained in the engine's loops (each lost a batch).")

	mPeerTxBytes   = metricDesc("peer_sent_bytes_total", "Bytes of IP packets sent to the peer.", "peer")
	mPeerRxBytes   = metricDesc("peer_received_bytes_total", "Bytes of IP packets received from the peer.", "peer")
	mPeerTxPackets = metricDesc("peer_sent_packets_total", "Packets sent to the peer, on the packet stream or as QUIC datagrams.", "peer", "via")
	mPeerRxPackets = metricDesc("peer_received_packets_total", "Packets received from the peer, on a packet stream or as QUIC datagrams.", "peer", "via")
	mPeerDropped   = metricDesc("peer_dropped_packets_total", "Packets for the peer dropped, by reason.", "peer", "reason")
	mPeerMarked    = metricDesc("peer_ecn_marked_packets_total", "Packets for the peer that CoDel marked Congestion Experienced instead of dropping them.", "peer")
	mPeerMalformed = metricDesc("peer_malformed_frames_total", "Frames from the peer that broke the protocol (each reset its stream).", "peer")
	mPeerStalled   = metricDesc("peer_stalled_streams_total", "Streams to the peer reset because a write made no progress for 5 s.", "peer")
	mPeerConnected = metricDesc("peer_connected", "1 while the node has a connection to the peer.", "peer")
	mPeerPath      = metricDesc("peer_path", "1 for the path the peer's packets take (lan, direct or relay), 0 for the others.", "peer", "path")
	mPeerRTT       = metricDesc("peer_rtt_seconds", "Round-trip time to the peer (libp2p ping, moving average); absent while unknown.", "peer")
	mPeerQueue     = metricDesc("peer_queue_delay_seconds", "How long the last packet sent to the peer waited in its queue; 0 while the queue is empty.", "peer")
)

var peerPaths = []string{p2p.PathLAN, p2p.PathDirect, p2p.PathRelay}

// Describe sends every metric's description.
func (m *meshCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{mTxPackets, mTxBytes, mRxPackets, mRxBytes, mDropped, mRefused, mPanics,
		mPeerTxBytes, mPeerRxBytes, mPeerTxPackets, mPeerRxPackets, mPeerDropped, mPeerMarked, mPeerMalformed,
		mPeerStalled, mPeerConnected, mPeerPath, mPeerRTT, mPeerQueue} {
		ch <- d
	}
}

// Collect loads the counters.
func (m *meshCollector) Collect(ch chan<- prometheus.Metric) {
	m.collectEngine(ch)
	for _, p := range m.peers() {
		collectPeer(ch, p)
	}
}

func counter(ch chan<- prometheus.Metric, d *prometheus.Desc, v uint64, labels ...string) {
	ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), labels...)
}

func gauge(ch chan<- prometheus.Metric, d *prometheus.Desc, v float64, labels ...string) {
	ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
}

func (m *meshCollector) collectEngine(ch chan<- prometheus.Metric) {
	c := m.eng
	counter(ch, mTxPackets, c.TxPackets.Load())
	counter(ch, mTxBytes, c.TxBytes.Load())
	counter(ch, mRxPackets, c.RxPackets.Load())
	counter(ch, mRxBytes, c.RxBytes.Load())
	for _, d := range []struct {
		reason string
		n      *atomic.Uint64
	}{
		{"no_route", &c.DropNoRoute}, {"source", &c.DropSource}, {"destination", &c.DropDestination},
		{"invalid", &c.DropInvalid}, {"send", &c.DropSend}, {"device", &c.DropDevice},
	} {
		counter(ch, mDropped, d.n.Load(), d.reason)
	}
	counter(ch, mRefused, m.refused.Load())
	counter(ch, mPanics, c.Panics.Load())
}

func collectPeer(ch chan<- prometheus.Metric, p peerSample) {
	gauge(ch, mPeerConnected, b2f(p.st.Connected), p.name)
	for _, path := range peerPaths {
		gauge(ch, mPeerPath, b2f(p.st.Connected && p.st.Path == path), p.name, path)
	}
	if p.st.Connected && p.st.RTT > 0 {
		gauge(ch, mPeerRTT, p.st.RTT.Seconds(), p.name)
	}
	c := p.c
	if c == nil {
		return
	}
	counter(ch, mPeerTxBytes, c.TxBytes.Load(), p.name)
	counter(ch, mPeerRxBytes, c.RxBytes.Load(), p.name)
	counter(ch, mPeerTxPackets, c.TxPackets.Load(), p.name, "stream")
	counter(ch, mPeerTxPackets, c.TxDatagrams.Load(), p.name, "datagram")
	counter(ch, mPeerRxPackets, c.RxPackets.Load(), p.name, "stream")
	counter(ch, mPeerRxPackets, c.RxDatagrams.Load(), p.name, "datagram")
	counter(ch, mPeerDropped, c.DropQueue.Load(), p.name, "queue")
	counter(ch, mPeerDropped, c.DropNoLink.Load(), p.name, "no_link")
	counter(ch, mPeerDropped, c.DropDelay.Load(), p.name, "delay")
	counter(ch, mPeerMarked, c.MarkDelay.Load(), p.name)
	counter(ch, mPeerMalformed, c.Malformed.Load(), p.name)
	counter(ch, mPeerStalled, c.Stalled.Load(), p.name)
	gauge(ch, mPeerQueue, float64(c.QueueDelay.Load())/1e9, p.name)
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// peerSamples reads each configured peer's counters and state.
func (d *Daemon) peerSamples() []peerSample {
	tr := d.node.Transport()
	peers := d.peerList() // a reload may replace them meanwhile
	out := make([]peerSample, 0, len(peers))
	for _, p := range peers {
		out = append(out, peerSample{name: p.name, c: tr.Stats(p.id), st: d.node.State(p.id)})
	}
	return out
}
