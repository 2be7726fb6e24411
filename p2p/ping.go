package p2p

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/p2p/protocol/ping"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/mynetwork/mynetwork/p2p/conns"
)

// Pong is one answered ping and the connection it went over.
type Pong struct {
	RTT       time.Duration
	Addr      ma.Multiaddr // remote address of the connection
	Path      string       // PathLAN, PathDirect or PathRelay
	Relay     peer.ID      // the relay, on PathRelay
	Transport string       // "tcp" or "quic": to the peer, or to the relay
}

// ErrNotConnected is Ping's error for a peer the node has no connection to.
var ErrNotConnected = errors.New("not connected")

// Ping sends one libp2p ping to p on the connection packets to p use now
// (see bestConn) and records its round trip, as the connector's liveness
// ping does.
func (n *Node) Ping(ctx context.Context, p peer.ID) (Pong, error) {
	conn := n.bestConn(p)
	if conn == nil && n.onDemand() && n.configured(p) {
		conn = n.connectNow(ctx, p) // an idle peer is pinged as it is sent packets
	}
	if conn == nil {
		if why := n.State(p).Why; why != "" {
			return Pong{}, fmt.Errorf("%w: %s", ErrNotConnected, why)
		}
		return Pong{}, ErrNotConnected
	}
	pong := Pong{Addr: conn.RemoteMultiaddr(), Path: pathOf(conn), Transport: transportOf(conn)}
	if pong.Path == PathRelay {
		pong.Relay = relayOf(conn)
	}
	rtt, err := n.pingConn(ctx, conn)
	if err != nil {
		return Pong{}, fmt.Errorf("ping over %s: %w", pong.Addr, err)
	}
	pong.RTT = rtt
	return pong, nil
}

// pingConn pings the peer on conn (not the swarm's pick), records the round
// trip and returns it; it gives up after pingTimeout.
func (n *Node) pingConn(ctx context.Context, conn network.Conn) (time.Duration, error) {
	ctx, cancel := context.WithTimeout(ctx, pingTimeout)
	defer cancel()
	s, err := conns.OpenStream(ctx, conn, ping.ID)
	if err != nil {
		return 0, err
	}
	deadline, _ := ctx.Deadline()
	s.SetDeadline(deadline)
	var out, in [ping.PingSize]byte
	rand.Read(out[:])
	start := time.Now()
	if _, err := s.Write(out[:]); err != nil {
		s.Reset() // a reset waits for nothing; a close may, on a dead connection
		return 0, err
	}
	if _, err := io.ReadFull(s, in[:]); err != nil {
		s.Reset()
		return 0, err
	}
	if in != out {
		s.Reset()
		return 0, errors.New("the answer is not the ping sent")
	}
	rtt := time.Since(start)
	n.host.Peerstore().RecordLatency(conn.RemotePeer(), rtt)
	s.Close()
	return rtt, nil
}

// answerPing is the node's handler of libp2p's ping protocol (libp2p's own
// is off): it echoes each PingSize bytes it reads, as libp2p's does, until
// the stream ends or stays silent for pingStreamIdle, and notes when a
// configured peer pinged on the connection this node's packets to it use,
// so that its connector need not ping back (see connector.heardFrom). The
// stream joins the ping service's resource scope, which bounds how many a
// peer may hold.
func (n *Node) answerPing(s network.Stream) {
	if err := s.Scope().SetService(ping.ServiceName); err != nil {
		s.Reset()
		return
	}
	p := s.Conn().RemotePeer()
	var buf [ping.PingSize]byte
	for {
		s.SetDeadline(time.Now().Add(pingStreamIdle))
		if _, err := io.ReadFull(s, buf[:]); err != nil {
			if errors.Is(err, io.EOF) {
				s.Close()
			} else {
				s.Reset()
			}
			return
		}
		if c := n.connector(p); c != nil && s.Conn() == n.bestConn(p) {
			c.heard.Store(time.Now().UnixNano())
		}
		if _, err := s.Write(buf[:]); err != nil {
			s.Reset()
			return
		}
	}
}

// pingStreamIdle is how long answerPing waits for the next ping on a
// stream, as libp2p's handler does.
const pingStreamIdle = 10 * time.Second

// transportOf names the transport under a connection: a relayed one's is
// the transport to the relay.
func transportOf(c network.Conn) string {
	if isQUIC(c) {
		return "quic"
	}
	return "tcp"
}
