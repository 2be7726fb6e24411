package tunnel

import (
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
	ma "github.com/multiformats/go-multiaddr"
	"github.com/quic-go/quic-go"
)

// DatagramProtocol is advertised (through identify) by nodes that read IP
// packets from QUIC datagrams. Every go-libp2p QUIC connection negotiates
// datagrams at the QUIC level, but a peer that does not read them would
// silently drop them, so support is decided by this protocol ID.
const DatagramProtocol protocol.ID = "/mynetwork/dgram/1.0.0"

// wantsDatagram decides which packets ride QUIC datagrams when a peer's
// connection has them: everything that tolerates loss and reordering by
// itself (UDP, ICMP, and TCP segments that carry only an acknowledgement),
// so that it is never held up behind a lost stream packet. TCP payload,
// SYN, FIN and RST stay on the stream, in order, so the inner TCP sees no
// reordering; a 65000-byte TUN MTU makes them too large for a datagram
// anyway.
func wantsDatagram(pkt []byte) bool {
	var proto byte
	var l4 []byte
	switch pkt[0] >> 4 {
	case 4:
		ihl := int(pkt[0]&0x0f) * 4
		if len(pkt) < 20 || ihl < 20 || len(pkt) < ihl {
			return false
		}
		proto, l4 = pkt[9], pkt[ihl:]
	case 6:
		if len(pkt) < 40 {
			return false
		}
		proto, l4 = pkt[6], pkt[40:]
	default:
		return false
	}
	if proto != 6 { // not TCP
		return true
	}
	if len(l4) < 20 {
		return false
	}
	dataOff := int(l4[12]>>4) * 4
	const ack, other = 0x10, 0x07 | 0x08 | 0x20 // FIN|SYN|RST, PSH, URG
	flags := l4[13]
	return dataOff >= 20 && len(l4) == dataOff && flags&ack != 0 && flags&other == 0
}

// quicOf returns the quic-go connection under a direct QUIC libp2p
// connection whose QUIC handshake enabled datagrams on both sides.
func quicOf(c network.Conn) *quic.Conn {
	qc := directQUIC(c)
	if qc == nil {
		return nil
	}
	st := qc.ConnectionState()
	if !st.SupportsDatagrams.Local || !st.SupportsDatagrams.Remote {
		return nil
	}
	return qc
}

// directQUIC returns the quic-go connection under a direct QUIC libp2p
// connection, or nil.
func directQUIC(c network.Conn) *quic.Conn {
	if c.ConnState().Transport != "quic-v1" || relayed(c) { // WebTransport also answers As: its datagrams belong to HTTP/3
		return nil
	}
	var qc *quic.Conn
	if !c.As(&qc) {
		return nil
	}
	return qc
}

// relayed says whether c runs through a relay.
func relayed(c network.Conn) bool {
	_, err := c.RemoteMultiaddr().ValueForProtocol(ma.P_CIRCUIT)
	return err == nil
}

// datagramConn picks the connection to send p's datagrams on: the best
// connection, if it is direct QUIC and p reads datagrams; else nil.
func (t *Transport) datagramConn(p peer.ID) *quic.Conn {
	if t.noDatagrams {
		return nil
	}
	if ok, _ := t.h.Peerstore().SupportsProtocols(p, DatagramProtocol); len(ok) == 0 {
		return nil
	}
	best := t.conn(p)
	if best == nil {
		return nil
	}
	return quicOf(best)
}

// sendDatagram sends pkt as a datagram; false means use the stream (too
// large right now, or the connection went away).
func sendDatagram(qc *quic.Conn, pkt []byte) bool {
	// SendDatagram copies; it blocks only while quic-go's 32-datagram queue
	// is full, and fails at once with a DatagramTooLargeError for a packet
	// above the path's current limit (1163-1415 bytes).
	return qc.SendDatagram(pkt) == nil
}

// readDatagrams feeds one QUIC connection's datagrams into the inbox until
// the connection or the transport closes. One reader per connection: every
// ReceiveDatagram caller takes from the same queue.
func (t *Transport) readDatagrams(qc *quic.Conn, ps *peerSender) {
	defer t.wg.Done()
	defer ps.wg.Done()
	for {
		b, err := qc.ReceiveDatagram(ps.ctx)
		if err != nil {
			return
		}
		if len(b) == 0 || len(b) > t.maxPacket {
			continue
		}
		pk := t.get(len(b))
		pk.n, pk.from = copy(pk.buf[Headroom:], b), ps.id
		clear(pk.vhdr())
		ps.stats.RxDatagrams.Add(1)
		select {
		case t.inbox <- pk:
		case <-t.closed:
			t.put(pk)
			return
		}
	}
}

// connected starts a datagram reader for a new direct QUIC connection to a
// configured peer.
func (t *Transport) connected(c network.Conn) {
	ps := t.peer(c.RemotePeer())
	if ps == nil || t.noDatagrams {
		return
	}
	qc := quicOf(c)
	if qc == nil {
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.isClosed || ps.removed {
		return
	}
	t.wg.Add(1)
	ps.wg.Add(1)
	go t.readDatagrams(qc, ps)
}
