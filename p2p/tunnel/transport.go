// Package tunnel carries IP packets between this node and its configured
// peers over libp2p: one long-lived framed stream per peer (datagrams on
// direct QUIC connections for packets that suit them), a flow-queued
// CoDel queue per peer, and a shared inbox for the engine.
package tunnel

import (
	"cmp"
	"context"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"

	"github.com/mynetwork/mynetwork/internal/ratelimit"
	"github.com/mynetwork/mynetwork/p2p/conns"
)

// PacketProtocol is the stream protocol that carries IP packets as frames.
const PacketProtocol protocol.ID = "/mynetwork/packets/1.0.0"

const (
	// queueMem bounds the memory a peer's queue holds, in packet buffers
	// (each packet's whole buffer: see bufTiers), so a peer that stops
	// reading pins at most this much: a burst from a
	// thousand new connections (each a SYN, then 64 KB) must mostly fit,
	// or the packets dropped here come back only after TCP's timeouts: at
	// 32 MiB, with buffers up to twice their packets, 1,000 connections
	// through a userspace node lost 28% of their packets and the last took
	// 9.3 s (1.6 s at 64 MiB, 14% lost, as when the bound counted bytes).
	queueMem    = 64 << 20
	queueSlots  = 8192
	smallPacket = 2048     // packets up to this size use small pooled buffers
	inboxBytes  = 4 << 20  // bytes received and waiting for the engine
	ioBufSize   = 64 << 10 // bufio size of each outgoing stream: many frames per write
	// readBufSize is the bufio size of each incoming stream: small frames
	// (ACKs) are read many at a time, while most of a large frame skips the
	// buffer and is read straight into the packet (one copy less).
	readBufSize     = 8 << 10
	openTimeout     = 10 * time.Second
	reopenBackoff   = 500 * time.Millisecond
	datagramRecheck = 2 * time.Second
	// stallTimeout is how long a write to a packet stream may make no
	// progress before the stream is reset (and reopened at the next
	// packet): a peer that stops reading holds no more than its queue.
	stallTimeout = 5 * time.Second
	// maxInbound is how many packet streams a peer may have open towards
	// this node at once; a newer one resets the oldest (a sender reopens
	// its stream when connections change, before the old one is gone).
	maxInbound = 4
)

// PeerCounters count one peer's traffic on the packet transport.
type PeerCounters struct {
	TxPackets, RxPackets     atomic.Uint64 // on the stream
	TxDatagrams, RxDatagrams atomic.Uint64 // as QUIC datagrams
	// Bytes of IP packets, both paths, a super-packet at its whole size:
	// added once per batch (a send loop's turn, a Receive), not per packet.
	TxBytes, RxBytes atomic.Uint64
	// QueueDelay is how long the last packet the send loop took waited in
	// the peer's queue (ns), stored once per batch; 0 while the queue is
	// empty.
	QueueDelay atomic.Int64
	// TCP super-packets sent whole on a GSO stream, and cut into segments
	// for a peer that does not take them (each counted once here and once
	// in TxPackets).
	TxSuperPackets, TxSegmented atomic.Uint64
	DropQueue                   atomic.Uint64 // Send found the peer's queue full
	DropNoLink                  atomic.Uint64 // no connection or stream to the peer
	DropDelay                   atomic.Uint64 // CoDel: packets waited too long (codel.go)
	MarkDelay                   atomic.Uint64 // CoDel marked them CE instead (ECN)
	// Malformed counts frames from the peer that broke the protocol (an
	// empty or oversized frame, an offload header that does not fit its
	// packet): each reset its stream.
	Malformed atomic.Uint64
	// Stalled counts outgoing streams reset because a write made no
	// progress for stallTimeout.
	Stalled atomic.Uint64
}

type peerSender struct {
	id    peer.ID
	queue *fq
	stats PeerCounters
	reset atomic.Bool // set by ResetPeer, read by sendLoop
	// linked is closed, and replaced, by ResetPeer: AwaitConn's waiters
	// wake when the peer's connections change.
	linked  atomic.Pointer[chan struct{}]
	inbound []network.Stream // open incoming packet streams, oldest first (Transport.mu)
	// ctx ends when the peer leaves the config (SetPeers) or the
	// transport closes: its send loop and datagram readers stop.
	ctx     context.Context
	cancel  context.CancelFunc
	removed bool           // by SetPeers (Transport.mu): no new readers
	wg      sync.WaitGroup // the peer's goroutines, for SetPeers to wait on
}

// Config configures a Transport.
type Config struct {
	// MaxPacket is the largest packet carried, at most MaxFrame.
	MaxPacket int
	// VirtioHeaders: the device's packets carry a virtio-net header, and
	// the transport offers GSOProtocol (see gso.go).
	VirtioHeaders bool
	// NoDatagrams turns the QUIC datagram path off, as in a node that
	// predates it; packets then all ride the stream.
	NoDatagrams bool
	// Conn picks the connection that carries a peer's packets (the node's
	// path choice), nil when there is none; required.
	Conn func(peer.ID) network.Conn
	// Conns finds the TCP connection under a libp2p connection, for the
	// send gate; nil: no gate.
	Conns *conns.Registry
	// Demand, if set, is told when a peer's packets wait with no
	// connection to carry them (a node that connects on demand dials then);
	// they wait up to DemandWait for one.
	Demand func(peer.ID)
	Log    *slog.Logger
}

// DemandWait is how long packets for a peer with no connection wait for
// one when the transport has Config.Demand: a dial on a LAN takes a few
// ms, through the DHT and a relay a few seconds.
const DemandWait = 3 * time.Second

// Transport is the engine's Transport over libp2p streams: one long-lived
// outgoing stream per peer, bounded per-peer queues, and a shared inbox fed
// by one reader per incoming stream. Only configured peers may send.
type Transport struct {
	h         host.Host
	conn      func(peer.ID) network.Conn // the connection to carry a peer's packets
	conns     *conns.Registry            // finds the TCP connection under one
	demand    func(peer.ID)              // Config.Demand
	log       *slog.Logger
	start     time.Time // packets' queue times count from here
	maxPacket int
	// peers is replaced whole by SetPeers (under mu) and read without
	// locks on the packet path: one atomic load per batch.
	peers atomic.Pointer[map[peer.ID]*peerSender]
	inbox chan *pbuf
	pool  sync.Pool                // maxPacket-sized buffers
	tiers [len(bufTiers)]sync.Pool // bufTiers-sized buffers

	noDatagrams bool
	// virtio: the engine's packets carry a virtio-net header in the
	// headroom (see gso.go), read from and written to the device.
	virtio  bool
	notifee *network.NotifyBundle
	ctx     context.Context // ends at Close: stops datagram readers
	cancel  context.CancelFunc

	// Refused counts packet streams from peers not in the config.
	Refused atomic.Uint64
	warn    ratelimit.Every
	stall   time.Duration // stallTimeout; tests shorten it

	mu        sync.Mutex
	streams   map[network.Stream]struct{}
	closed    chan struct{}
	isClosed  bool
	wg        sync.WaitGroup
	closeOnce sync.Once
}

// New registers the packet protocols on h for the given peers, with o's
// MaxPacket (the largest packet carried, at most MaxFrame), NoDatagrams,
// VirtioHeaders, Conn, Conns and Log.
//
// With datagrams, the node advertises DatagramProtocol and reads and sends
// QUIC datagrams on direct QUIC connections; without, it behaves like a peer
// that predates them. With virtio headers, packets carry a virtio-net
// header in their headroom and the node offers GSOProtocol when it sends;
// it takes GSOProtocol either way (see gso.go).
func New(h host.Host, peers []peer.ID, o Config) (*Transport, error) {
	if o.MaxPacket <= 0 || o.MaxPacket > MaxFrame {
		return nil, fmt.Errorf("packet transport: max packet %d outside 1..%d", o.MaxPacket, MaxFrame)
	}
	t := newTransport(h, peers, o)
	for _, ps := range *t.peers.Load() {
		t.startPeer(ps)
	}
	h.SetStreamHandler(PacketProtocol, t.handleStream)
	h.SetStreamHandler(GSOProtocol, t.handleStream)
	if !o.NoDatagrams {
		// The handler only advertises support; nothing is ever sent on it.
		h.SetStreamHandler(DatagramProtocol, func(s network.Stream) { s.Reset() })
		t.notifee = &network.NotifyBundle{ConnectedF: func(_ network.Network, c network.Conn) { t.connected(c) }}
		h.Network().Notify(t.notifee)
		for _, c := range h.Network().Conns() {
			t.connected(c)
		}
	}
	return t, nil
}

// newTransport makes the transport's state for o (checked), starting
// nothing: the receive path works on it without a host (see the fuzz
// target).
func newTransport(h host.Host, peers []peer.ID, o Config) *Transport {
	t := &Transport{
		h: h, conn: o.Conn, conns: o.Conns, demand: o.Demand,
		log: cmp.Or(o.Log, slog.Default()), maxPacket: o.MaxPacket, start: time.Now(),
		inbox:   make(chan *pbuf, max(64, inboxBytes/o.MaxPacket)),
		streams: make(map[network.Stream]struct{}),
		closed:  make(chan struct{}),
		warn:    ratelimit.Every{Interval: 10 * time.Second},
		stall:   stallTimeout,
		virtio:  o.VirtioHeaders, noDatagrams: o.NoDatagrams,
	}
	t.ctx, t.cancel = context.WithCancel(context.Background())
	t.pool.New = func() any { return &pbuf{buf: make([]byte, Headroom+o.MaxPacket)} }
	for i, size := range bufTiers {
		t.tiers[i].New = func() any { return &pbuf{buf: make([]byte, Headroom+size)} }
	}
	m := make(map[peer.ID]*peerSender, len(peers))
	for _, p := range peers {
		m[p] = t.newPeer(p)
	}
	t.peers.Store(&m)
	return t
}

// newPeer makes a peer's state, starting nothing.
func (t *Transport) newPeer(p peer.ID) *peerSender {
	ps := &peerSender{id: p}
	linked := make(chan struct{})
	ps.linked.Store(&linked)
	ps.queue = newFQ(&ps.stats, t.put)
	ps.ctx, ps.cancel = context.WithCancel(t.ctx)
	return ps
}

// startPeer starts a peer's send loop.
func (t *Transport) startPeer(ps *peerSender) {
	t.wg.Add(1)
	ps.wg.Add(1)
	go t.sendLoop(ps)
}

// peer is a configured peer's state, or nil.
func (t *Transport) peer(p peer.ID) *peerSender { return (*t.peers.Load())[p] }

// MaxPacket is the largest packet the transport carries.
func (t *Transport) MaxPacket() int { return t.maxPacket }

// Stats returns the counters of a configured peer, or nil.
func (t *Transport) Stats(p peer.ID) *PeerCounters {
	if ps := t.peer(p); ps != nil {
		return &ps.stats
	}
	return nil
}

// Close stops all loops, resets every packet stream and waits.
func (t *Transport) Close() error {
	t.closeOnce.Do(func() {
		t.h.RemoveStreamHandler(PacketProtocol)
		t.h.RemoveStreamHandler(GSOProtocol)
		if t.notifee != nil {
			t.h.RemoveStreamHandler(DatagramProtocol)
			t.h.Network().StopNotify(t.notifee)
		}
		t.mu.Lock()
		t.isClosed = true
		close(t.closed)
		t.cancel()
		for s := range t.streams {
			s.Reset()
		}
		t.mu.Unlock()
		t.wg.Wait()
	})
	return nil
}
