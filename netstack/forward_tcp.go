package netstack

import (
	"context"
	"net/netip"
	"sync"
	"time"

	"github.com/mynetwork/mynetwork/internal/pipe"
	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/adapters/gonet"
	"gvisor.dev/gvisor/pkg/tcpip/transport/tcp"
	"gvisor.dev/gvisor/pkg/waiter"
)

// keepaliveIdle is the idle time before the stack side of a forwarded
// connection sends keepalives, and the interval between them: net.Dialer's
// default, which the host side gets too. With gVisor's 9 probes a peer
// that went away is noticed in 2.5 minutes and its slot freed.
const keepaliveIdle = 15 * time.Second

// handleTCP runs, in a goroutine gVisor starts, for each SYN to a forwarded
// address: it dials the destination from the host, completes the handshake
// only if that worked, and then joins the two connections (pipe.Join:
// half-closes passed on, both closed when both directions are done or
// either fails).
func (f *forwarder) handleTCP(r *tcp.ForwarderRequest) {
	if !f.enter() {
		r.Complete(false) // the stack is closing
		return
	}
	defer f.wg.Done()
	rule := f.rule.Load()
	if rule == nil { // Forward(nil) since the SYN came
		f.dropped.Add(1)
		r.Complete(false)
		return
	}
	if !acquire(&f.tcpOpen, f.maxTCP) {
		f.refused.Add(1)
		r.Complete(true)
		return
	}
	release := sync.OnceFunc(func() { f.tcpOpen.Add(-1) })
	defer release()

	id := r.ID()
	dst := netip.AddrPortFrom(addrOf(id.LocalAddress), id.LocalPort)
	ctx, cancel := context.WithTimeout(f.ctx, f.dialTimeout)
	host, err := rule.dial(ctx, "tcp", dst.String())
	cancel()
	if err != nil {
		f.countDialFailure()
		release() // before the reset: whoever sees it sees the slot free
		r.Complete(true)
		return
	}
	var wq waiter.Queue
	ep, terr := r.CreateEndpoint(&wq) // blocks until the handshake ends
	r.Complete(false)
	if terr != nil { // the peer gave up, or the stack closed
		host.Close()
		return
	}
	ep.SocketOptions().SetKeepAlive(true)
	idle, interval := tcpip.KeepaliveIdleOption(keepaliveIdle), tcpip.KeepaliveIntervalOption(keepaliveIdle)
	ep.SetSockOpt(&idle)
	ep.SetSockOpt(&interval)

	peer := gonet.NewTCPConn(&wq, ep)
	if !f.track(peer) {
		host.Close()
		return
	}
	defer f.untrack(peer)
	if !f.track(host) {
		peer.Close()
		return
	}
	defer f.untrack(host)
	pipe.Join(peer, host)
}
