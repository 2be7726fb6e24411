// Package engine is Mynetwork's packet core: it moves IP packets between a
// packet.Device (a kernel TUN or a userspace TCP/IP stack) and a Transport
// (the encrypted links to peers), choosing the peer by longest-prefix route,
// dropping packets whose source the sending peer may not use, and making
// received packets whole for a device that takes no offload header.
package engine

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/mynetwork/mynetwork/internal/packet"
	"github.com/mynetwork/mynetwork/internal/ratelimit"
	"golang.zx2c4.com/wireguard/tun"
)

// Transport carries IP packets between this node and its peers.
type Transport interface {
	// Send queues copies of pkts for peer to; it never waits on the network.
	Send(to peer.ID, pkts [][]byte) error
	// Receive fills bufs[i][offset:] with packets, the VirtioHdrLen
	// bytes in front of each with its offload header (zero for a whole
	// packet; any other passed packet.Check), and from[i] with their
	// senders, blocking until at least one is there. offset is
	// packet.Headroom.
	Receive(bufs [][]byte, sizes []int, from []peer.ID, offset int) (n int, err error)
	Close() error
}

// BufferTaker is a Transport that can take packet buffers instead of copying
// packets: SendBuffers queues bufs[i][offset:offset+sizes[i]] for peer to,
// and may keep any bufs[i], putting in its place an unused buffer of at
// least the same length that then belongs to the caller.
type BufferTaker interface {
	SendBuffers(to peer.ID, bufs [][]byte, sizes []int, offset int) error
}

// MaxPacketer is a Transport that says how large a packet it may deliver:
// a peer's MTU can be larger than this node's, and the engine sizes its
// inbound buffers for the larger of the two.
type MaxPacketer interface {
	MaxPacket() int
}

// Counters are the engine's packet counts; safe for concurrent reads.
type Counters struct {
	TxPackets, TxBytes atomic.Uint64 // device → transport
	RxPackets, RxBytes atomic.Uint64 // transport → device
	DropNoRoute        atomic.Uint64 // no route covers the destination
	DropSource         atomic.Uint64 // source not routed to the sending peer
	DropDestination    atomic.Uint64 // from a peer, addressed neither to this node nor a network it serves
	DropInvalid        atomic.Uint64 // not an IPv4/IPv6 packet
	DropSend           atomic.Uint64 // the transport refused the batch
	DropDevice         atomic.Uint64 // the device refused or could not read
	// Panics counts batches whose handling panicked: a bug, contained to
	// the batch (its packets are lost, the loop starts again).
	Panics atomic.Uint64
}

// Engine pumps packets both ways between one Device and one Transport.
type Engine struct {
	dev   packet.Device
	tr    Transport
	taker BufferTaker // tr, if it takes buffers; else nil
	table atomic.Pointer[Table]
	exits atomic.Pointer[map[peer.ID]struct{}] // SetExitClients'; nil: none
	log   *slog.Logger
	warn  ratelimit.Every

	// Counters are updated on the packet path with atomics only.
	Counters Counters

	closeOnce sync.Once
}

// New returns an engine over dev and tr with the initial route table. It
// starts nothing; Run takes ownership of dev and tr and closes them.
func New(dev packet.Device, tr Transport, table *Table, log *slog.Logger) (*Engine, error) {
	if dev == nil || tr == nil || table == nil {
		return nil, errors.New("engine: device, transport and table are required")
	}
	if log == nil {
		log = slog.Default()
	}
	e := &Engine{dev: dev, tr: tr, log: log, warn: ratelimit.Every{Interval: 10 * time.Second}}
	e.taker, _ = tr.(BufferTaker)
	e.table.Store(table)
	return e, nil
}

// Table returns the route table in use.
func (e *Engine) Table() *Table { return e.table.Load() }

// SetTable swaps the route table atomically; packets in flight use either.
func (e *Engine) SetTable(t *Table) { e.table.Store(t) }

// SetExitClients makes ids the peers this node is an exit node for: their
// packets may go to any address the table routes to no peer (the
// internet, the host's LAN), besides those it delivers to everyone.
func (e *Engine) SetExitClients(ids []peer.ID) {
	set := make(map[peer.ID]struct{}, len(ids))
	for _, p := range ids {
		set[p] = struct{}{}
	}
	e.exits.Store(&set)
}

// exitFor says whether dst is where a packet from an exit client may go:
// routed to no peer, so that a client cannot reach the other peers
// through this node.
func (e *Engine) exitFor(t *Table, dst netip.Addr, from peer.ID) bool {
	m := e.exits.Load()
	if m == nil {
		return false
	}
	if _, ok := (*m)[from]; !ok {
		return false
	}
	_, routed := t.Lookup(dst)
	return !routed
}

// Run pumps packets until ctx ends or a side fails, then closes the device
// and the transport and waits for both loops.
func (e *Engine) Run(ctx context.Context) error {
	errc := make(chan error, 2)
	go func() { errc <- e.guarded(e.outbound) }()
	go func() { errc <- e.guarded(e.inbound) }()
	var first error
	got := 0
	select {
	case <-ctx.Done():
	case first = <-errc:
		got++
	}
	e.Close()
	for ; got < 2; got++ {
		if err := <-errc; first == nil {
			first = err
		}
	}
	return first
}

// guarded runs a packet loop, starting it again after a panic: no packet,
// however it was made, may end the process.
func (e *Engine) guarded(loop func() error) error {
	for {
		if err, panicked := e.contain(loop); !panicked {
			return err
		}
	}
}

func (e *Engine) contain(loop func() error) (err error, panicked bool) {
	defer func() {
		if r := recover(); r != nil {
			panicked = true
			e.Counters.Panics.Add(1)
			if e.warn.Allow() {
				e.log.Error("packet loop panicked; its batch is lost", "panic", r, "stack", string(debug.Stack()))
			}
		}
	}()
	return loop(), false
}

// Close closes the device and the transport, which stops Run's loops.
func (e *Engine) Close() {
	e.closeOnce.Do(func() {
		e.dev.Close()
		e.tr.Close()
	})
}

func isClosed(err error) bool {
	return errors.Is(err, os.ErrClosed) || errors.Is(err, net.ErrClosed)
}

func batchOf(d packet.Device) int {
	if b := d.BatchSize(); b > 0 {
		return b
	}
	return 1
}

// BufferSize is the length of each of the engine's packet buffers for a
// device and a transport: headroom plus the device's largest packet (its
// MTU with room for the largest IPv6 header variants, or a read's
// super-packet), and whatever the transport may deliver. Buffers that are
// large anyway are made the transport's size, so that a BufferTaker can
// trade them for its own instead of copying the packet.
func BufferSize(d packet.Device, tr Transport) int {
	mtu, err := d.MTU()
	if err != nil || mtu <= 0 {
		mtu = 1500
	}
	size := mtu + 64
	if r, ok := d.(packet.ReadSizer); ok {
		size = max(size, r.ReadSize())
	}
	if m, ok := tr.(MaxPacketer); ok && size > m.MaxPacket()/2 {
		size = max(size, m.MaxPacket())
	}
	return packet.Headroom + size
}

func makeBufs(n, size int) [][]byte {
	bufs := make([][]byte, n)
	for i := range bufs {
		bufs[i] = make([]byte, size)
	}
	return bufs
}

// outbound reads batches from the device and sends each run of packets
// bound for one peer as one Send.
func (e *Engine) outbound() error {
	n := batchOf(e.dev)
	bufs := makeBufs(n, BufferSize(e.dev, e.tr))
	sizes := make([]int, n)
	run := newRun(n)
	for {
		cnt, err := e.dev.Read(bufs, sizes, packet.Headroom)
		if err != nil && cnt == 0 {
			if isClosed(err) {
				return nil
			}
			if errors.Is(err, tun.ErrTooManySegments) {
				e.Counters.DropDevice.Add(1)
				continue
			}
			return fmt.Errorf("read device: %w", err)
		}
		table := e.table.Load()
		var cur peer.ID
		run.reset()
		for i := range cnt {
			pkt := bufs[i][packet.Headroom : packet.Headroom+sizes[i]]
			_, dst, ok := addrs(pkt)
			if !ok {
				e.Counters.DropInvalid.Add(1)
				continue
			}
			to, ok := table.Lookup(dst)
			if !ok {
				e.Counters.DropNoRoute.Add(1)
				continue
			}
			if to != cur && len(run.idx) > 0 {
				e.send(cur, run, bufs, sizes)
				run.reset()
			}
			cur = to
			run.add(i, pkt)
		}
		if len(run.idx) > 0 {
			e.send(cur, run, bufs, sizes)
		}
	}
}

// run is the packets of one read batch bound for one peer: the indices of
// their buffers, and the packets themselves.
type run struct {
	idx   []int
	pkts  [][]byte
	bufs  [][]byte
	sizes []int
}

func newRun(n int) *run {
	return &run{idx: make([]int, 0, n), pkts: make([][]byte, 0, n), bufs: make([][]byte, 0, n), sizes: make([]int, 0, n)}
}

func (r *run) reset() { r.idx, r.pkts = r.idx[:0], r.pkts[:0] }

func (r *run) add(i int, pkt []byte) {
	r.idx = append(r.idx, i)
	r.pkts = append(r.pkts, pkt)
}

// send hands a run to the transport: by buffer when it can take them (the
// buffers it leaves in their place go back into bufs), else as copies.
func (e *Engine) send(to peer.ID, r *run, bufs [][]byte, sizes []int) {
	var err error
	if e.taker != nil {
		r.bufs, r.sizes = r.bufs[:0], r.sizes[:0]
		for _, i := range r.idx {
			r.bufs = append(r.bufs, bufs[i])
			r.sizes = append(r.sizes, sizes[i])
		}
		err = e.taker.SendBuffers(to, r.bufs, r.sizes, packet.Headroom)
		for j, i := range r.idx {
			bufs[i] = r.bufs[j]
		}
	} else {
		err = e.tr.Send(to, r.pkts)
	}
	if err != nil {
		e.Counters.DropSend.Add(uint64(len(r.idx)))
		if e.warn.Allow() {
			e.log.Warn("send failed", "peer", to, "err", err)
		}
		return
	}
	var bytes int
	for _, p := range r.pkts {
		bytes += len(p)
	}
	e.Counters.TxPackets.Add(uint64(len(r.idx)))
	e.Counters.TxBytes.Add(uint64(bytes))
}

// inbound receives batches from the transport, drops packets whose source
// the sender may not use or whose destination is not this node's to
// deliver, and writes the rest to the device as one batch.
func (e *Engine) inbound() error {
	n := batchOf(e.dev)
	size := BufferSize(e.dev, e.tr)
	if m, ok := e.tr.(MaxPacketer); ok { // a peer's MTU can be larger than ours
		size = max(size, packet.Headroom+m.MaxPacket())
	}
	bufs := makeBufs(n, size)
	sizes := make([]int, n)
	from := make([]peer.ID, n)
	out := make([][]byte, 0, n)
	w := newDeviceWriter(e.dev, n, size)
	for {
		cnt, err := e.tr.Receive(bufs, sizes, from, packet.Headroom)
		if err != nil && cnt == 0 {
			if isClosed(err) {
				return nil
			}
			return fmt.Errorf("receive: %w", err)
		}
		table := e.table.Load()
		out = out[:0]
		for i := range cnt {
			if e.admit(table, bufs[i][:packet.Headroom+sizes[i]], from[i]) {
				out = append(out, bufs[i][:packet.Headroom+sizes[i]])
			}
		}
		if len(out) == 0 {
			continue
		}
		var bytes int
		for _, b := range out { // before the writer cuts any into segments
			bytes += len(b) - packet.Headroom
		}
		sent, err := w.write(out)
		if err != nil {
			if isClosed(err) {
				return nil
			}
			e.Counters.DropDevice.Add(uint64(len(out)))
			if e.warn.Allow() {
				e.log.Warn("device write failed", "err", err)
			}
			continue
		}
		e.Counters.RxPackets.Add(uint64(sent))
		e.Counters.RxBytes.Add(uint64(bytes))
	}
}

// admit says whether a received packet (at b[packet.Headroom:], its
// offload header in front) may reach the device: an IP packet with a
// header that fits it, from a source the sending peer may use, to an
// address this node delivers (or, from an exit client, one no peer is
// routed); each refusal is counted.
func (e *Engine) admit(table *Table, b []byte, from peer.ID) bool {
	pkt := b[packet.Headroom:]
	src, dst, ok := addrs(pkt)
	if hdr := packet.HeaderOf(b); !ok || !packet.Plain(hdr) && packet.Check(packet.ParseVirtio(hdr), pkt, 1) != nil {
		e.Counters.DropInvalid.Add(1)
		return false
	}
	if !table.Allowed(src, from) {
		e.Counters.DropSource.Add(1)
		if e.warn.Allow() {
			e.log.Warn("dropped packet with a source the peer may not use", "peer", from, "src", src)
		}
		return false
	}
	if !table.Delivers(dst) && !e.exitFor(table, dst, from) {
		e.Counters.DropDestination.Add(1)
		if e.warn.Allow() {
			e.log.Warn("dropped packet from a peer to an address this node does not serve", "peer", from, "dst", dst)
		}
		return false
	}
	return true
}
