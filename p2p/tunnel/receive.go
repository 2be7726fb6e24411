package tunnel

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"runtime/debug"
	"slices"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/mynetwork/mynetwork/internal/packet"
)

// rxRun sums the bytes of a Receive's consecutive packets from one peer,
// so that a peer's RxBytes takes one atomic add per batch, not per packet.
type rxRun struct {
	from  peer.ID
	bytes uint64
}

func (r *rxRun) add(t *Transport, pk *pbuf) {
	if pk.from != r.from {
		r.count(t)
		r.from = pk.from
	}
	r.bytes += uint64(pk.n)
}

func (r *rxRun) count(t *Transport) {
	if r.bytes == 0 {
		return
	}
	if ps := t.peer(r.from); ps != nil {
		ps.stats.RxBytes.Add(r.bytes)
	}
	r.bytes = 0
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
	var run rxRun
	defer run.count(t)
	for {
		run.add(t, pk)
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

func (t *Transport) handleStream(s network.Stream) {
	from := s.Conn().RemotePeer()
	ps := t.peer(from)
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
// when it has more than maxInbound; false once the transport is closed or
// the peer removed.
func (t *Transport) track(ps *peerSender, s network.Stream) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.isClosed || ps.removed {
		return false
	}
	t.streams[s] = struct{}{}
	ps.inbound = append(ps.inbound, s)
	if len(ps.inbound) > maxInbound {
		ps.inbound[0].Reset() // its reader ends and untracks it
		ps.inbound = ps.inbound[1:]
	}
	t.wg.Add(1)
	ps.wg.Add(1)
	return true
}

func (t *Transport) untrack(ps *peerSender, s network.Stream) {
	t.mu.Lock()
	delete(t.streams, s)
	ps.inbound = slices.DeleteFunc(ps.inbound, func(o network.Stream) bool { return o == s })
	t.mu.Unlock()
	ps.wg.Done()
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
