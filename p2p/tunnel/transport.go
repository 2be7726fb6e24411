// Package tunnel carries IP packets between this node and its configured
// peers over libp2p: one long-lived framed stream per peer (datagrams on
// direct QUIC connections for packets that suit them), a flow-queued
// CoDel queue per peer, and a shared inbox for the engine.
package tunnel

import (
	"bufio"
	"cmp"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"runtime/debug"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"

	"github.com/mynetwork/mynetwork/internal/packet"
	"github.com/mynetwork/mynetwork/internal/ratelimit"
	"github.com/mynetwork/mynetwork/p2p/conns"
	"github.com/quic-go/quic-go"
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

// packet is a queued or received packet at buf[Headroom:Headroom+n]. The
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

type peerSender struct {
	id      peer.ID
	queue   *fq
	stats   PeerCounters
	reset   atomic.Bool      // set by ResetPeer, read by sendLoop
	inbound []network.Stream // open incoming packet streams, oldest first (Transport.mu)
}

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
	Log   *slog.Logger
}

// Transport is the engine's Transport over libp2p streams: one long-lived
// outgoing stream per peer, bounded per-peer queues, and a shared inbox fed
// by one reader per incoming stream. Only configured peers may send.
type Transport struct {
	h         host.Host
	conn      func(peer.ID) network.Conn // the connection to carry a peer's packets
	conns     *conns.Registry            // finds the TCP connection under one
	log       *slog.Logger
	start     time.Time // packets' queue times count from here
	maxPacket int
	peers     map[peer.ID]*peerSender // fixed at New: read without locks
	inbox     chan *pbuf
	pool      sync.Pool                // maxPacket-sized buffers
	tiers     [len(bufTiers)]sync.Pool // bufTiers-sized buffers

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
	for _, ps := range t.peers {
		t.wg.Add(1)
		go t.sendLoop(ps)
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
		h: h, conn: o.Conn, conns: o.Conns,
		log: cmp.Or(o.Log, slog.Default()), maxPacket: o.MaxPacket, start: time.Now(),
		peers:   make(map[peer.ID]*peerSender, len(peers)),
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
	for _, p := range peers {
		ps := &peerSender{id: p}
		ps.queue = newFQ(&ps.stats, t.put)
		t.peers[p] = ps
	}
	return t
}

// MaxPacket is the largest packet the transport carries.
func (t *Transport) MaxPacket() int { return t.maxPacket }

// Stats returns the counters of a configured peer, or nil.
func (t *Transport) Stats(p peer.ID) *PeerCounters {
	if ps := t.peers[p]; ps != nil {
		return &ps.stats
	}
	return nil
}

// Send copies pkts into the peer's queue, dropping what does not fit.
func (t *Transport) Send(to peer.ID, pkts [][]byte) error {
	ps := t.peers[to]
	if ps == nil {
		return fmt.Errorf("send to %s: not a configured peer", to)
	}
	for _, p := range pkts {
		if pk := t.admit(ps, len(p)); pk != nil {
			pk.n = copy(pk.buf[Headroom:], p)
			clear(pk.vhdr()) // no offload
			t.enqueue(ps, pk)
		}
	}
	return nil
}

// SendBuffers queues the packets bufs[i][offset:offset+sizes[i]] for peer
// to like Send, but takes a large packet's buffer instead of copying it and
// leaves an empty one of at least the same length in bufs[i].
func (t *Transport) SendBuffers(to peer.ID, bufs [][]byte, sizes []int, offset int) error {
	ps := t.peers[to]
	if ps == nil {
		return fmt.Errorf("send to %s: not a configured peer", to)
	}
	for i, b := range bufs {
		size := sizes[i]
		pk := t.admit(ps, size)
		if pk == nil {
			continue
		}
		if t.swappable(pk.buf, b, offset) {
			bufs[i], pk.buf = pk.buf, b
			pk.n = size
		} else {
			pk.n = copy(pk.buf[Headroom:], b[offset:offset+size])
			if t.virtio {
				copy(pk.vhdr(), b[offset-packet.VirtioHdrLen:offset])
			}
		}
		t.enqueue(ps, pk)
	}
	return nil
}

// swappable says whether a pooled buffer and a caller's buffer, whose
// packet sits at offset, can change places: the same headroom, the pooled
// one no shorter (the caller keeps using it at its own length), and the
// caller's long enough to hold any packet once pooled.
func (t *Transport) swappable(pooled, theirs []byte, offset int) bool {
	return offset == Headroom && len(pooled) >= len(theirs) && len(theirs) >= Headroom+t.maxPacket
}

// admit returns a buffer for an n-byte packet to the peer, or nil when no
// frame can carry it.
func (t *Transport) admit(ps *peerSender, n int) *pbuf {
	if n == 0 || n > t.maxPacket { // no frame for it: see WriteFrame
		ps.stats.DropQueue.Add(1)
		return nil
	}
	return t.get(n)
}

// enqueue adds a packet to the peer's queue, which drops from its largest
// flow when it is full.
func (t *Transport) enqueue(ps *peerSender, pk *pbuf) {
	pk.enq = time.Since(t.start)
	ps.queue.add(pk)
}

// Receive blocks for one packet and takes whatever else is already there.
// A large packet's buffer changes places with bufs[i] when the two fit
// each other (same headroom, no shorter), instead of being copied.
func (t *Transport) Receive(bufs [][]byte, sizes []int, from []peer.ID, offset int) (int, error) {
	var pk *pbuf
	select {
	case pk = <-t.inbox:
	case <-t.closed:
		return 0, net.ErrClosed
	}
	n := 0
	for {
		if pk.n > smallPacket && t.swappable(pk.buf, bufs[n], offset) {
			bufs[n], pk.buf = pk.buf, bufs[n]
			sizes[n] = pk.n
		} else {
			sizes[n] = copy(bufs[n][offset:], pk.data())
			copy(bufs[n][offset-packet.VirtioHdrLen:offset], pk.vhdr())
		}
		from[n] = pk.from
		t.put(pk)
		n++
		if n == len(bufs) {
			return n, nil
		}
		select {
		case pk = <-t.inbox:
		default:
			return n, nil
		}
	}
}

// sendLoop owns the outgoing path to one peer: packets that suit a
// datagram go on the peer's QUIC connection when it has datagrams, the rest
// on one long-lived stream, opened on demand and flushed once per batch.
func (t *Transport) sendLoop(ps *peerSender) {
	defer t.wg.Done()
	sn := &sender{t: t, ps: ps, w: bufio.NewWriterSize(nil, ioBufSize)}
	defer sn.reset()
	for {
		pk := sn.wait()
		if pk == nil {
			return
		}
		sn.refresh()
		sn.batch(pk)
		sn.flush()
		// While the connection holds more than it should, packets wait in
		// the flow queues (coalesce.go).
		if sn.g != nil && !sn.g.WaitRoom() {
			return
		}
	}
}

// sender is the state of one peer's outgoing path, owned by its sendLoop.
type sender struct {
	t        *Transport
	ps       *peerSender
	s        network.Stream // nil: none open
	w        *bufio.Writer  // gathers small frames for s
	sw       stallWriter    // writes to s, with the stall deadline
	g        *conns.Gate    // the TCP connection under s, or nil
	pending  bool           // frames written to w and not flushed
	nextOpen time.Time      // no stream is opened before then
	dg       *quic.Conn     // nil: no datagram path right now
	dgAt     time.Time      // when dg was last chosen
}

// reset drops the stream, if any, with what it had not sent.
func (sn *sender) reset() {
	if sn.s != nil {
		sn.s.Reset()
		sn.s = nil
	}
	sn.pending, sn.g = false, nil
}

// failed counts and logs a failed write and drops the stream; the next
// packet opens another.
func (sn *sender) failed(err error) {
	sn.t.streamFailed(sn.ps, err)
	sn.reset()
}

// flush writes the frames gathered in w, if any.
func (sn *sender) flush() error {
	if !sn.pending {
		return nil
	}
	sn.pending = false
	err := sn.w.Flush()
	if err != nil {
		sn.failed(err)
	}
	return err
}

// wait returns the peer's next packet, waiting for one; nil once the
// transport is closed.
func (sn *sender) wait() *pbuf {
	for {
		select {
		case <-sn.t.closed:
			return nil
		default:
		}
		if pk := sn.t.next(sn.ps); pk != nil {
			return pk
		}
		select {
		case <-sn.t.closed:
			return nil
		case <-sn.ps.queue.ready:
		}
	}
}

// refresh moves to the best connection when ResetPeer asked for it, and
// re-chooses the datagram connection then and every few seconds: support
// is known only once identify has finished.
func (sn *sender) refresh() {
	if sn.ps.reset.Swap(false) {
		sn.reset()
		sn.nextOpen = time.Time{}
		sn.dgAt = time.Time{}
	}
	if time.Since(sn.dgAt) > datagramRecheck {
		sn.dg, sn.dgAt = sn.t.datagramConn(sn.ps.id), time.Now()
	}
}

// batch sends pk and whatever else is queued, until the queue is empty or
// the gate says the connection has enough.
func (sn *sender) batch(pk *pbuf) {
	for pk != nil {
		sn.send(pk)
		sn.t.put(pk)
		if sn.g != nil && sn.g.Full(sn.flush) {
			return
		}
		pk = sn.t.next(sn.ps)
	}
}

// send sends one packet as a datagram or a frame on the stream, or counts
// why it was dropped.
func (sn *sender) send(pk *pbuf) {
	t, stats := sn.t, &sn.ps.stats
	h, herr := t.header(pk)
	gso := h.GSOType != packet.GSONone
	switch {
	case herr != nil:
		stats.DropQueue.Add(1)
		if t.warn.Allow() {
			t.log.Warn("dropped a packet the device handed over", "peer", sn.ps.id, "err", herr)
		}
	case !gso && sn.dg != nil && wantsDatagram(pk.data()) && t.sendDatagram(sn.dg, pk):
		stats.TxDatagrams.Add(1)
	case sn.s == nil && !sn.open():
		stats.DropNoLink.Add(1)
	default:
		sn.write(pk, h, gso)
	}
}

// open opens the stream to the peer, unless an attempt failed less than
// reopenBackoff ago; false: there is none.
func (sn *sender) open() bool {
	if !time.Now().After(sn.nextOpen) {
		return false
	}
	t := sn.t
	s, err := t.open(sn.ps.id)
	if err != nil {
		sn.nextOpen = time.Now().Add(reopenBackoff)
		if t.warn.Allow() {
			t.log.Debug("no packet stream to peer", "peer", sn.ps.id, "err", err)
		}
		return false
	}
	sn.s, sn.sw = s, stallWriter{s, t.stall}
	sn.w.Reset(sn.sw)
	sn.g = conns.NewGate(t.conns.Lookup(s.Conn()), t.closed, sn.ps.reset.Load)
	return true
}

// write frames a packet onto the open stream and counts it.
func (sn *sender) write(pk *pbuf, h packet.VirtioHeader, gso bool) {
	stats := &sn.ps.stats
	whole, err := sn.t.writeFrame(sn.w, sn.sw, pk, h, &sn.pending)
	if err != nil {
		sn.failed(err)
		return
	}
	stats.TxPackets.Add(1)
	if sn.g != nil {
		sn.g.Wrote(pk.n) // a frame is more: never over-counted
	}
	if gso && whole {
		stats.TxSuperPackets.Add(1)
	} else if gso {
		stats.TxSegmented.Add(1)
	}
}

// next takes the peer's next queued packet, if one is there.
func (t *Transport) next(ps *peerSender) *pbuf {
	return ps.queue.take(time.Since(t.start))
}

// header is the virtio-net header the device put in front of a packet,
// checked; without virtio headers, one that asks for nothing.
func (t *Transport) header(pk *pbuf) (packet.VirtioHeader, error) {
	if !t.virtio {
		return packet.VirtioHeader{}, nil
	}
	h := packet.ParseVirtio(pk.vhdr())
	return h, packet.Check(h, pk.data(), 1)
}

// plain makes a packet that is not a super-packet fit to travel without
// its virtio-net header (as a datagram, or on a plain stream): a partial
// checksum is completed, once (the flag is cleared in the buffer).
func (t *Transport) plain(pk *pbuf) {
	if !t.virtio {
		return
	}
	if v := pk.vhdr(); v[0]&packet.NeedsCsum != 0 {
		h := packet.ParseVirtio(v)
		packet.CompleteChecksum(pk.data(), int(h.CsumStart), int(h.CsumOffset))
		v[0] &^= packet.NeedsCsum
	}
}

// sendDatagram sends a packet that is not a super-packet as a datagram.
func (t *Transport) sendDatagram(dg *quic.Conn, pk *pbuf) bool {
	t.plain(pk)
	return sendDatagram(dg, pk.data())
}

// writeFrame frames a packet onto the stream. Small packets gather in w,
// flushed once per batch; a large one is written straight from its buffer,
// its length header in the headroom, after whatever w holds. On a GSO
// stream each frame carries the packet's virtio-net header; a super-packet
// (gso) goes as its segments on a plain stream, and on a GSO stream too
// when its segments are smaller than the peer accepts.
//
// whole says whether the packet went as it was, header included on a GSO
// stream, rather than as segments. h is the packet's header, checked.
func (t *Transport) writeFrame(w *bufio.Writer, s stallWriter, pk *pbuf, h packet.VirtioHeader, pending *bool) (whole bool, err error) {
	gsoStream := s.s.Protocol() == GSOProtocol
	if h.GSOType != packet.GSONone && (!gsoStream || h.GSOSize < minMSS) {
		var segHdr []byte // a segment's frame: no header, or one that asks for nothing
		if gsoStream {
			segHdr = noOffload[:]
		}
		*pending = true
		return false, t.segment(pk, h, func(seg []byte) error {
			return writeSmall(w, segHdr, seg)
		})
	}
	hl := 0
	if gsoStream {
		hl = packet.VirtioHdrLen // the receiving kernel completes checksums
	} else {
		t.plain(pk)
	}
	if pk.n <= smallPacket {
		*pending = true
		return true, writeSmall(w, pk.buf[Headroom-hl:Headroom], pk.data())
	}
	if *pending {
		*pending = false
		if err := w.Flush(); err != nil {
			return true, err
		}
	}
	frame := pk.buf[Headroom-2-hl : Headroom+pk.n]
	binary.BigEndian.PutUint16(frame, uint16(pk.n))
	_, err = s.Write(frame)
	return true, err
}

// stallWriter writes to a packet stream, failing a write that makes no
// progress for d: a peer that stops reading (or a path that went dead)
// costs the stream, not unbounded waiting with the peer's queue full.
type stallWriter struct {
	s network.Stream
	d time.Duration
}

func (w stallWriter) Write(b []byte) (int, error) {
	w.s.SetWriteDeadline(time.Now().Add(w.d))
	return w.s.Write(b)
}

// streamFailed counts and logs a write to a packet stream that failed.
func (t *Transport) streamFailed(ps *peerSender, err error) {
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		ps.stats.Stalled.Add(1)
		if t.warn.Allow() {
			t.log.Info("reset a packet stream that made no progress", "peer", ps.id, "after", t.stall)
		}
		return
	}
	t.log.Debug("packet stream failed; reopening", "peer", ps.id, "err", err)
}

// open opens the packet stream on an existing connection; dialing is the
// connector's job, so a packet never waits for a dial.
func (t *Transport) open(p peer.ID) (network.Stream, error) {
	c := t.conn(p)
	if c == nil {
		return nil, errors.New("not connected")
	}
	ctx, cancel := context.WithTimeout(context.Background(), openTimeout)
	defer cancel()
	protos := []protocol.ID{PacketProtocol}
	if t.virtio {
		protos = []protocol.ID{GSOProtocol, PacketProtocol}
	}
	s, err := conns.OpenStream(ctx, c, protos...)
	if err != nil {
		return nil, fmt.Errorf("open packet stream to %s: %w", p, err)
	}
	s.CloseRead() // outgoing streams only carry our packets
	return s, nil
}

// ResetPeer makes the peer's outgoing stream be reopened at its next packet,
// so that it moves to the best connection. Called when connections change.
func (t *Transport) ResetPeer(p peer.ID) {
	if ps := t.peers[p]; ps != nil {
		ps.reset.Store(true)
	}
}

func (t *Transport) handleStream(s network.Stream) {
	from := s.Conn().RemotePeer()
	ps := t.peers[from]
	if ps == nil {
		t.Refused.Add(1)
		if t.warn.Allow() {
			t.log.Warn("refused packet stream from a peer not in the config", "peer", from)
		}
		s.Reset()
		return
	}
	if !t.track(ps, s) {
		s.Reset()
		return
	}
	defer t.untrack(ps, s)
	s.CloseWrite()
	err := t.readStream(ps, s, s.Protocol() == GSOProtocol)
	if errors.Is(err, errMalformed) {
		ps.stats.Malformed.Add(1)
		if t.warn.Allow() {
			t.log.Warn("reset a packet stream that broke the protocol", "peer", from, "err", err)
		}
	}
	s.Reset()
}

// errMalformed marks what a peer sent that no node of ours sends: the
// stream it came on is reset and the peer's Malformed counter counts it.
var errMalformed = errors.New("malformed frame")

// errPanicked marks a malformed frame that made its handling panic: a bug
// of ours the fuzz targets look for, contained to the stream.
var errPanicked = errors.New("panic")

// readStream delivers the frames of one incoming packet stream until it
// ends or breaks the protocol (errMalformed). It is the node's outermost
// defence against its peers' bytes: a panic while handling a frame ends
// only this stream, as a malformed frame.
func (t *Transport) readStream(ps *peerSender, s io.Reader, gso bool) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("%w: %w: %v\n%s", errMalformed, errPanicked, r, debug.Stack())
		}
	}()
	r := bufio.NewReaderSize(s, readBufSize)
	for {
		pk := t.pool.Get().(*pbuf)
		var n int
		if gso {
			n, err = readGSOFrame(r, pk.buf[Headroom-packet.VirtioHdrLen:Headroom+t.maxPacket])
		} else {
			n, err = ReadFrame(r, pk.buf[Headroom:Headroom+t.maxPacket])
		}
		if err != nil {
			t.pool.Put(pk)
			if errors.Is(err, ErrEmptyFrame) || errors.Is(err, ErrFrameTooLarge) {
				err = fmt.Errorf("%w: %w", errMalformed, err)
			}
			return err
		}
		pk.n, pk.from = n, ps.id
		if !gso {
			clear(pk.vhdr())
			err = t.deliver(ps, pk)
		} else {
			err = t.deliverGSO(ps, pk)
		}
		if err != nil {
			return err
		}
	}
}

// track registers an incoming packet stream, resetting the peer's oldest
// when it has more than maxInbound; false once the transport is closed.
func (t *Transport) track(ps *peerSender, s network.Stream) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.isClosed {
		return false
	}
	t.streams[s] = struct{}{}
	ps.inbound = append(ps.inbound, s)
	if len(ps.inbound) > maxInbound {
		ps.inbound[0].Reset() // its reader ends and untracks it
		ps.inbound = ps.inbound[1:]
	}
	t.wg.Add(1)
	return true
}

func (t *Transport) untrack(ps *peerSender, s network.Stream) {
	t.mu.Lock()
	delete(t.streams, s)
	ps.inbound = slices.DeleteFunc(ps.inbound, func(o network.Stream) bool { return o == s })
	t.mu.Unlock()
	t.wg.Done()
}

// deliverGSO delivers a packet from a GSO stream with its peer's offload
// header in front of it, for the engine to hand to a device that takes
// such headers or to make whole for one that does not. A header the kernel
// would refuse is malformed.
func (t *Transport) deliverGSO(ps *peerSender, pk *pbuf) error {
	if err := packet.Check(packet.ParseVirtio(pk.vhdr()), pk.data(), minMSS); err != nil {
		t.pool.Put(pk)
		return fmt.Errorf("%w: %w", errMalformed, err)
	}
	return t.deliver(ps, pk)
}

// segment cuts a super-packet into segments for emit, in a pooled buffer.
func (t *Transport) segment(pk *pbuf, h packet.VirtioHeader, emit func([]byte) error) error {
	scratch := t.pool.Get().(*pbuf)
	defer t.pool.Put(scratch)
	return packet.Segment(pk.data(), h, scratch.buf, emit)
}

// deliver hands a received packet to the inbox, blocking while it is full
// (which pushes back on the sender's stream); an error means the
// transport is closed, and the packet went back to its pool.
func (t *Transport) deliver(ps *peerSender, pk *pbuf) error {
	ps.stats.RxPackets.Add(1)
	select {
	case t.inbox <- pk:
		return nil
	case <-t.closed:
		t.put(pk)
		return net.ErrClosed
	}
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
