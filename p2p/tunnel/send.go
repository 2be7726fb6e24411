package tunnel

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"

	"github.com/mynetwork/mynetwork/internal/packet"
	"github.com/mynetwork/mynetwork/p2p/conns"
	"github.com/quic-go/quic-go"
)

// Send copies pkts into the peer's queue, dropping what does not fit.
func (t *Transport) Send(to peer.ID, pkts [][]byte) error {
	ps := t.peer(to)
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
	ps := t.peer(to)
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

// sendLoop owns the outgoing path to one peer: packets that suit a
// datagram go on the peer's QUIC connection when it has datagrams, the rest
// on one long-lived stream, opened on demand and flushed once per batch.
func (t *Transport) sendLoop(ps *peerSender) {
	defer t.wg.Done()
	defer ps.wg.Done()
	sn := &sender{t: t, ps: ps, w: bufio.NewWriterSize(nil, ioBufSize)}
	defer sn.reset()
	for {
		pk := sn.wait()
		if pk == nil {
			return
		}
		sn.refresh()
		if sn.awaitLink() {
			sn.refresh()
		}
		sn.batch(pk)
		sn.flush()
		sn.count()
		// While the connection holds more than it should, packets wait in
		// the flow queues (conns/coalesce.go, conns/gate.go).
		if sn.g != nil && !sn.g.WaitRoom() {
			return
		}
	}
}

// awaitLink asks for a connection to the peer when there is none and the
// transport has Config.Demand, and waits up to DemandWait for one: the
// first packets to an idle peer go once it is connected, instead of being
// dropped. It reports whether a connection came. A sender with an open
// stream or datagram path has a connection: it looks no further, so a busy
// peer's batches cost no look at the swarm (a lock and a slice each).
func (sn *sender) awaitLink() bool {
	t, p := sn.t, sn.ps.id
	if t.demand == nil || sn.s != nil || sn.dg != nil || t.conn(p) != nil {
		return false
	}
	t.demand(p)
	return t.await(sn.ps.ctx, sn.ps, DemandWait)
}

// AwaitConn waits up to d for a connection to carry p's packets, and
// reports whether one came; false at once for a peer not configured.
func (t *Transport) AwaitConn(ctx context.Context, p peer.ID, d time.Duration) bool {
	ps := t.peer(p)
	if ps == nil {
		return false
	}
	return t.await(ctx, ps, d)
}

// await waits up to d, or until ctx or the peer's own context ends, for
// t.conn to give a connection to the peer. It looks again each time the
// peer's connections change (ResetPeer), and every awaitRecheck in case
// the path choice takes a connection it was told of earlier.
func (t *Transport) await(ctx context.Context, ps *peerSender, d time.Duration) bool {
	deadline := time.NewTimer(d)
	defer deadline.Stop()
	recheck := time.NewTicker(awaitRecheck)
	defer recheck.Stop()
	for {
		linked := *ps.linked.Load() // before the look: a change after it wakes us
		if t.conn(ps.id) != nil {
			return true
		}
		select {
		case <-linked:
		case <-recheck.C:
		case <-deadline.C:
			return false
		case <-ctx.Done():
			return false
		case <-ps.ctx.Done():
			return false
		}
	}
}

// awaitRecheck is how often await looks for a connection between the
// changes it is woken by.
var awaitRecheck = 100 * time.Millisecond // a test lengthens it

// sender is the state of one peer's outgoing path, owned by its sendLoop.
type sender struct {
	t        *Transport
	ps       *peerSender
	s        network.Stream // nil: none open
	w        *bufio.Writer  // gathers small frames for s
	sw       stallWriter    // writes to s, with the stall deadline
	g        *conns.Gate    // the TCP or QUIC connection under s, or nil
	pending  bool           // frames written to w and not flushed
	nextOpen time.Time      // no stream is opened before then
	dg       *quic.Conn     // nil: no datagram path right now
	dgAt     time.Time      // when dg was last chosen
	sent     uint64         // bytes sent since the last count
}

// count adds the bytes sent since it last ran to the peer's counters and
// stores the last packet's wait: once per batch, not per packet.
func (sn *sender) count() {
	st := &sn.ps.stats
	if sn.sent > 0 {
		st.TxBytes.Add(sn.sent)
		sn.sent = 0
	}
	st.QueueDelay.Store(int64(sn.ps.queue.sojourn))
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
// transport is closed or the peer removed.
func (sn *sender) wait() *pbuf {
	for {
		select {
		case <-sn.ps.ctx.Done():
			return nil
		default:
		}
		if pk := sn.t.next(sn.ps); pk != nil {
			return pk
		}
		sn.ps.stats.QueueDelay.Store(0) // nothing waits
		select {
		case <-sn.ps.ctx.Done():
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
		sn.sent += uint64(pk.n)
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
	sn.g = conns.NewGate(t.conns.Lookup(s.Conn()), sn.ps.ctx.Done(), sn.ps.reset.Load)
	if sn.g == nil {
		if sn.g = conns.NewQUICGate(directQUIC(s.Conn()), sn.ps.ctx.Done(), sn.ps.reset.Load); sn.g != nil {
			sn.g.WhileHolding(sn.ps.queue.ready, sn.sendNew)
		}
	}
	return true
}

// sendNew sends what the peer's new flows hold while the QUIC gate holds
// the rest back.
func (sn *sender) sendNew() {
	for pk := sn.ps.queue.takeNew(time.Since(sn.t.start)); pk != nil; pk = sn.ps.queue.takeNew(time.Since(sn.t.start)) {
		sn.send(pk)
		sn.t.put(pk)
	}
	sn.flush()
	sn.count()
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
	sn.sent += uint64(pk.n)
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

// segment cuts a super-packet into segments for emit, in a pooled buffer.
func (t *Transport) segment(pk *pbuf, h packet.VirtioHeader, emit func([]byte) error) error {
	scratch := t.pool.Get().(*pbuf)
	defer t.pool.Put(scratch)
	return packet.Segment(pk.data(), h, scratch.buf, emit)
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
// so that it moves to the best connection, and wakes AwaitConn. Called when
// connections change.
func (t *Transport) ResetPeer(p peer.ID) {
	if ps := t.peer(p); ps != nil {
		ps.reset.Store(true)
		linked := make(chan struct{})
		close(*ps.linked.Swap(&linked))
	}
}
