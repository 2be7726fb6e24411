package p2p

import (
	"context"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/transport"
	"github.com/libp2p/go-libp2p/p2p/transport/tcp"
	"github.com/libp2p/go-libp2p/p2p/transport/tcpreuse"
	manet "github.com/multiformats/go-multiaddr/net"
)

// Outgoing TCP connections write whole TLS record runs at once.
//
// crypto/tls cuts a Write into records of at most 16 KiB of plaintext and
// writes each with its own system call; a 64 KiB packet costs four or five.
// On these machines the kernel's TCP path moved 10.1-12.8 Gbit/s in 16 KiB
// writes and 20.4-23.7 in 64 KiB writes over the same veth (one Go writer,
// one reader), so the record size, not the cipher, set the tunnel's pace.
// coalescingConn sits under the TLS layer and holds back a full-size
// application-data record, which crypto/tls only writes when more of the
// same Write follows, and sends it with the next, shorter record in one
// system call. Anything else (handshakes, small records, other security
// protocols) is written at once, and a held record never waits more than
// holdLimit: a Write whose size is a multiple of 16 KiB ends in a full one.
const (
	// tlsFullRecord is the size on the wire of a TLS 1.3 application-data
	// record carrying 16 KiB: 5 bytes of header, the plaintext, its 1-byte
	// content type and a 16-byte AEAD tag.
	tlsFullRecord = 5 + 16384 + 1 + 16
	holdBytes     = 128 << 10
	holdLimit     = 500 * time.Microsecond
)

// isFullTLSRecord says whether p is exactly one full-size TLS 1.3
// application-data record.
func isFullTLSRecord(p []byte) bool {
	return len(p) == tlsFullRecord && p[0] == 23 && p[1] == 3 && p[2] == 3 &&
		int(p[3])<<8|int(p[4]) == tlsFullRecord-5
}

type coalescingConn struct {
	manet.Conn

	mu    sync.Mutex
	held  []byte        // full records not yet written
	err   error         // a failed write of held records, reported by the next Write
	timer *time.Timer   // armed while held is not empty
	limit time.Duration // holdLimit; tests lengthen it
}

func newCoalescingConn(c manet.Conn) *coalescingConn {
	cc := &coalescingConn{Conn: c, limit: holdLimit}
	cc.timer = time.AfterFunc(time.Hour, cc.flushHeld)
	cc.timer.Stop()
	return cc
}

func (c *coalescingConn) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.err != nil {
		return 0, c.err
	}
	if isFullTLSRecord(p) && len(c.held)+len(p) <= holdBytes {
		if c.held == nil {
			c.held = make([]byte, 0, holdBytes+tlsFullRecord)
		}
		if len(c.held) == 0 {
			c.timer.Reset(c.limit)
		}
		c.held = append(c.held, p...)
		return len(p), nil
	}
	if len(c.held) == 0 {
		return c.Conn.Write(p)
	}
	if len(c.held)+len(p) <= cap(c.held) {
		c.held = append(c.held, p...)
		if err := c.writeHeld(); err != nil {
			return 0, err
		}
		return len(p), nil
	}
	if err := c.writeHeld(); err != nil {
		return 0, err
	}
	return c.Conn.Write(p)
}

// writeHeld writes the held records; c.mu is held.
func (c *coalescingConn) writeHeld() error {
	_, err := c.Conn.Write(c.held)
	c.held = c.held[:0]
	c.timer.Stop()
	if err != nil {
		c.err = err
	}
	return err
}

// flushHeld runs when a held record has waited holdLimit.
func (c *coalescingConn) flushHeld() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.held) > 0 && c.err == nil {
		c.writeHeld()
	}
}

func (c *coalescingConn) Close() error {
	c.mu.Lock()
	if len(c.held) > 0 && c.err == nil {
		c.writeHeld()
	}
	c.timer.Stop()
	c.mu.Unlock()
	return c.Conn.Close()
}

// coalescingUpgrader hands the libp2p upgrader (security, then yamux)
// coalescing connections in both directions.
type coalescingUpgrader struct{ transport.Upgrader }

func (u coalescingUpgrader) Upgrade(ctx context.Context, t transport.Transport, c manet.Conn, dir network.Direction, p peer.ID, scope network.ConnManagementScope) (transport.CapableConn, error) {
	return u.Upgrader.Upgrade(ctx, t, newCoalescingConn(c), dir, p, scope)
}

func (u coalescingUpgrader) UpgradeGatedMaListener(t transport.Transport, l transport.GatedMaListener) transport.Listener {
	return u.Upgrader.UpgradeGatedMaListener(t, coalescingListener{l})
}

func (u coalescingUpgrader) UpgradeListener(t transport.Transport, l manet.Listener) transport.Listener {
	return u.UpgradeGatedMaListener(t, u.GateMaListener(l))
}

type coalescingListener struct{ transport.GatedMaListener }

func (l coalescingListener) Accept() (manet.Conn, network.ConnManagementScope, error) {
	c, scope, err := l.GatedMaListener.Accept()
	if err != nil {
		return nil, nil, err
	}
	return newCoalescingConn(c), scope, nil
}

// newTCPTransport is go-libp2p's TCP transport on coalescing connections.
func newTCPTransport(up transport.Upgrader, rcmgr network.ResourceManager, shared *tcpreuse.ConnMgr) (*tcp.TcpTransport, error) {
	return tcp.NewTCPTransport(coalescingUpgrader{up}, rcmgr, shared)
}
