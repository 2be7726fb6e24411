// Package conns is what the node and the packet transport share about
// libp2p connections: the TCP transport whose connections coalesce writes
// and bound their unsent bytes, the send gate over such a connection, the
// registry that finds the one under a libp2p connection, yamux's settings,
// and opening a stream on one chosen connection.
package conns

import (
	"context"
	"net"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/transport"
	"github.com/libp2p/go-libp2p/p2p/transport/tcp"
	"github.com/libp2p/go-libp2p/p2p/transport/tcpreuse"
	manet "github.com/multiformats/go-multiaddr/net"
)

// Outgoing TCP connections: one writer per connection, a bounded buffer in
// front of it, and a bounded socket behind it.
//
// crypto/tls cuts a Write into records of at most 16 KiB of plaintext and
// writes each with its own system call; a 64 KiB packet costs four or five.
// On these machines the kernel's TCP path moved 10.1-12.8 Gbit/s in 16 KiB
// writes and 20.4-23.7 in 64 KiB writes over the same veth (one Go writer,
// one reader). So Conn, under the TLS layer, only gathers what
// is written into a buffer, and its own goroutine sends whatever has
// gathered in one system call: the records of one packet, and while a
// system call lasts, all that arrives meanwhile.
//
// It also keeps the queue where the transport can manage it. A socket's
// send buffer grows to what the fastest moment of a connection needed (4
// MiB after a burst over a fast LAN), and whatever sits in it waits in
// arrival order behind a bulk transfer: with one CUBIC stream over a 100
// Mbit/s link, a ping waited 140-240 ms behind the megabytes there. Linux
// lets a socket hold only so much not yet sent (TCP_NOTSENT_LOWAT): the
// writer sets that to the connection's delivery rate times unsentTime
// (from TCP_INFO, re-read every tuneEvery while it is busy), the rest
// waits in the buffer, and the packet transport stops taking packets from
// its flow queues while the buffer holds more than that too (Backlogged),
// so the standing queue forms in the flow queues, where CoDel sees it and
// a ping or a keystroke is served first.
const (
	maxBuffered = 4 << 20 // Write blocks beyond this
	// Buffers larger than keepBuffer are let go once the connection has
	// written nothing for releaseAfter: a burst's megabytes are not held
	// for the connection's life, and a busy one does not grow new ones.
	keepBuffer   = 1 << 20
	releaseAfter = time.Second
	// unsentTime is how long the socket's unsent bytes, and the buffer's,
	// last at the connection's delivery rate: long enough to cover a
	// wake-up, short against a link's delay.
	unsentTime = 2 * time.Millisecond
	minUnsent  = 32 << 10
	maxUnsent  = 4 << 20 // the most a Linux socket buffer grows to by default
	tuneEvery  = 10 * time.Millisecond
)

// Conn is a TCP connection under libp2p's security and yamux layers that
// gathers writes for its own writer goroutine and bounds what waits in
// its socket (see above).
type Conn struct {
	manet.Conn
	reg  *Registry
	sock *tuning // nil: the socket cannot be tuned (not Linux TCP)

	mu           sync.Mutex
	wake         sync.Cond    // the writer waits for data, writers for room
	buf          []byte       // gathered, not yet handed to the socket
	spare        []byte       // the writer's last buffer, for reuse
	writing      atomic.Int64 // bytes in the writer's current system call
	idle         bool         // the writer waits for data
	closing      bool
	err          error         // the failed write, reported to every later Write
	done         chan struct{} // closed when the writer has stopped
	room         chan struct{} // a token after each piece the socket takes (Backlogged waiters)
	received     atomic.Int64  // bytes written to it, ever
	progress     chan struct{} // a token after a Write while waiting is set
	waiting      atomic.Bool
	backlog      atomic.Int64  // bytes not yet in the socket: buf's and the writer's
	limit        atomic.Int64  // the backlog above which Backlogged says so
	release      *time.Timer   // lets go of large buffers after releaseAfter idle
	releaseAfter time.Duration // tests shorten it
	lastTune     time.Time     // the writer's
	rates        [8]uint64     // the writer's last delivery rates, a ring
	nrate        int
}

// newConn wraps c and starts its writer; reg, if not nil, finds it by its
// addresses until it closes.
func newConn(c manet.Conn, reg *Registry) *Conn {
	cc := &Conn{Conn: c, reg: reg, sock: newTuning(c), done: make(chan struct{}), room: make(chan struct{}, 1), progress: make(chan struct{}, 1)}
	cc.wake.L = &cc.mu
	cc.releaseAfter = releaseAfter
	cc.release = time.AfterFunc(time.Hour, cc.releaseIdle)
	cc.release.Stop()
	cc.limit.Store(maxUnsent)
	reg.add(cc)
	go cc.run()
	return cc
}

// Write gathers p for the writer; it waits only while maxBuffered bytes
// are waiting already.
func (c *Conn) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for c.err == nil && !c.closing && len(c.buf) > 0 && len(c.buf)+len(p) > maxBuffered {
		c.wake.Wait()
	}
	if c.err != nil {
		return 0, c.err
	}
	if c.closing {
		return 0, net.ErrClosed
	}
	c.buf = append(c.buf, p...)
	c.backlog.Add(int64(len(p)))
	c.received.Add(int64(len(p)))
	if c.idle {
		c.wake.Broadcast()
	}
	if c.waiting.Load() {
		poke(c.progress)
	}
	return len(p), nil
}

func poke(ch chan struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}

// run is the writer: it sends what has gathered, one system call at a time.
func (c *Conn) run() {
	defer close(c.done)
	c.mu.Lock()
	defer c.mu.Unlock()
	for {
		for len(c.buf) == 0 && !c.closing {
			if cap(c.buf) > keepBuffer || cap(c.spare) > keepBuffer {
				c.release.Reset(c.releaseAfter)
			}
			c.idle = true
			c.wake.Wait()
			c.idle = false
		}
		if len(c.buf) == 0 { // closing, and all is written
			return
		}
		data := c.buf
		c.buf, c.spare = c.spare[:0], nil
		c.mu.Unlock()
		err := c.send(data)
		c.mu.Lock()
		c.spare = data[:0]
		c.wake.Broadcast()
		if err != nil {
			poke(c.room)
			poke(c.progress)
			c.err = err
			c.backlog.Add(-int64(len(c.buf)))
			c.buf = nil
			return
		}
	}
}

// releaseIdle lets go of the buffers if the writer is still idle.
func (c *Conn) releaseIdle() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.idle && len(c.buf) == 0 {
		c.buf, c.spare = nil, nil
	}
}

// send writes data to the socket in pieces no larger than twice what the
// connection should hold (at least 64 KiB), so that the backlog shrinks,
// and the gate hears of it, as the socket takes them: a slow socket takes a
// large write over many round trips.
func (c *Conn) send(data []byte) error {
	for len(data) > 0 {
		c.tune()
		n := min(len(data), max(2*int(c.limit.Load()), 64<<10))
		c.writing.Store(int64(n))
		_, err := c.Conn.Write(data[:n])
		c.writing.Store(0)
		if err != nil {
			c.backlog.Add(-int64(len(data)))
			return err
		}
		c.backlog.Add(-int64(n))
		data = data[n:]
		poke(c.room)
	}
	return nil
}

// tune sets the socket's unsent limit, and the buffer's, from its delivery
// rate, at most every tuneEvery; only the writer calls it.
func (c *Conn) tune() {
	if c.sock == nil || time.Since(c.lastTune) < tuneEvery {
		return
	}
	c.lastTune = time.Now()
	r, ok := c.sock.deliveryRate()
	if !ok {
		return
	}
	// The largest of the last few: one sample is low whenever the
	// connection was briefly short of data to send.
	c.rates[c.nrate%len(c.rates)] = r
	c.nrate++
	rate := slices.Max(c.rates[:])
	unsent := min(max(int64(float64(rate)*unsentTime.Seconds()), minUnsent), maxUnsent)
	c.limit.Store(unsent)
	c.sock.setUnsent(unsent)
}

// Backlogged says whether more is waiting to reach the socket than the
// connection should hold: the packet transport then leaves packets in its
// flow queues. Once the connection has failed, it is not.
func (c *Conn) Backlogged() bool {
	return c.backlog.Load()-c.writing.Load() > c.limit.Load()
}

// Close sends what is gathered, if the socket takes it soon, and closes
// the connection.
func (c *Conn) Close() error {
	c.mu.Lock()
	c.closing = true
	c.wake.Broadcast()
	c.mu.Unlock()
	c.release.Stop()
	poke(c.progress)
	c.reg.remove(c)
	// What is gathered (a TLS close_notify, yamux's go-away) goes out if
	// the socket takes it soon; closing the socket ends a stuck write.
	select {
	case <-c.done:
	case <-time.After(250 * time.Millisecond):
	}
	err := c.Conn.Close()
	<-c.done
	return err
}

// failed says whether the connection is closing or has failed.
func (c *Conn) failed() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.closing || c.err != nil
}

// coalescingUpgrader hands the libp2p upgrader (security, then yamux)
// coalescing connections in both directions, registered in reg.
type coalescingUpgrader struct {
	transport.Upgrader
	reg *Registry
}

func (u coalescingUpgrader) Upgrade(ctx context.Context, t transport.Transport, c manet.Conn, dir network.Direction, p peer.ID, scope network.ConnManagementScope) (transport.CapableConn, error) {
	return u.Upgrader.Upgrade(ctx, t, newConn(c, u.reg), dir, p, scope)
}

func (u coalescingUpgrader) UpgradeGatedMaListener(t transport.Transport, l transport.GatedMaListener) transport.Listener {
	return u.Upgrader.UpgradeGatedMaListener(t, coalescingListener{l, u.reg})
}

func (u coalescingUpgrader) UpgradeListener(t transport.Transport, l manet.Listener) transport.Listener {
	return u.UpgradeGatedMaListener(t, u.GateMaListener(l))
}

type coalescingListener struct {
	transport.GatedMaListener
	reg *Registry
}

func (l coalescingListener) Accept() (manet.Conn, network.ConnManagementScope, error) {
	c, scope, err := l.GatedMaListener.Accept()
	if err != nil {
		return nil, nil, err
	}
	return newConn(c, l.reg), scope, nil
}

// TCPTransport is go-libp2p's TCP transport on coalescing connections
// that r finds: a constructor for libp2p.Transport, which passes opts.
func (r *Registry) TCPTransport(up transport.Upgrader, rcmgr network.ResourceManager, shared *tcpreuse.ConnMgr, opts ...tcp.Option) (*tcp.TcpTransport, error) {
	return tcp.NewTCPTransport(coalescingUpgrader{up, r}, rcmgr, shared, opts...)
}
