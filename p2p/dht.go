package p2p

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"time"

	ds "github.com/ipfs/go-datastore"
	dht "github.com/libp2p/go-libp2p-kad-dht"
	"github.com/libp2p/go-libp2p-kad-dht/dual"
	pb "github.com/libp2p/go-libp2p-kad-dht/pb"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
	"github.com/libp2p/go-libp2p/p2p/net/swarm"
)

// Bootstrap peer states, as status shows them.
const (
	BootstrapTrying      = "trying"         // not dialed yet
	BootstrapServer      = "dht-server"     // connected, and serves the DHT
	BootstrapNotServer   = "not-dht-server" // connected, but serves no DHT table
	BootstrapUnreachable = "unreachable"    // the dial failed
)

// lanKad is the LAN table's protocol: dual's LanExtension under kad-dht's
// default prefix. A bootstrap peer that serves either table will do.
const lanKad protocol.ID = "/ipfs/lan/kad/1.0.0"

// bootstrapRecheck is how often a node that has joined the DHT dials its
// bootstrap peers again, so their states (in status) stay true and one
// that comes back is used.
const bootstrapRecheck = time.Minute

// BootstrapState is what the node knows of one bootstrap peer.
type BootstrapState struct {
	ID    peer.ID
	State string // one of the Bootstrap* states
	Err   string // why it cannot be used, when it cannot
}

func (b BootstrapState) usable() bool { return b.State == BootstrapServer }

func bootstrapStates(boot []peer.AddrInfo) []BootstrapState {
	out := make([]BootstrapState, len(boot))
	for i, ai := range boot {
		out[i] = BootstrapState{ID: ai.ID, State: BootstrapTrying}
	}
	return out
}

// newDHT starts the dual (LAN and WAN) DHT that finds peers by ID. The LAN
// table accepts private addresses, so a mesh whose bootstrap node sits on
// a home or lab network works too.
//
// The node needs the DHT for FindPeer only, yet in server mode kad-dht
// keeps every provider and value record anyone sends, for 48 h, in memory
// by default: 100k ADD_PROVIDER records from one stranger grew a node by
// ~80 MiB. This node refuses them (refuseRecords), and its datastore keeps
// nothing it is given, which would bound what got past the refusal to the
// provider store's write buffer (256 records).
//
// kad-dht does not allow its DisableProviders and DisableValues options
// under the default protocol prefix, and a prefix of our own (a
// mesh-private DHT) would cut nodes off the public DHT, the default
// bootstrap, and off nodes of earlier versions.
func newDHT(h host.Host, mode dht.ModeOpt, bootstrap []peer.AddrInfo) (*dual.DHT, error) {
	return dual.New(h, dual.DHTOption(
		dht.Mode(mode),
		dht.BootstrapPeers(bootstrap...),
		dht.Datastore(ds.NewNullDatastore()),
		dht.OnRequestHook(refuseRecords),
	))
}

// refuseRecords empties the records of an incoming ADD_PROVIDER or
// PUT_VALUE request before kad-dht handles it: the handler then answers
// with an error (no valid provider, nil record) and resets the stream, so
// the sender knows that nothing was stored and nothing was: no record,
// and no provider addresses in the peerstore (kept 24 h otherwise).
// Lookups (FIND_NODE, GET_PROVIDERS, GET_VALUE) are answered as before,
// with the closest peers this node knows.
func refuseRecords(_ context.Context, _ network.Stream, req *pb.Message) {
	switch req.GetType() {
	case pb.Message_ADD_PROVIDER:
		req.ProviderPeers = nil
	case pb.Message_PUT_VALUE:
		req.Record = nil
	}
}

// joinDHT dials the bootstrap peers and bootstraps the routing table once
// one of them serves the DHT, retrying with backoff while none does; then
// it checks on them every bootstrapRecheck, and joins again if all are
// lost. kad-dht alone would say only "failed to find any peer in table".
func (n *Node) joinDHT(ctx context.Context) {
	defer n.wg.Done()
	backoff, joined := minBackoff, false
	for {
		usable := n.checkBootstrap(ctx)
		if ctx.Err() != nil {
			return
		}
		wait := bootstrapRecheck
		switch {
		case usable && !joined:
			if err := n.kad.Bootstrap(ctx); err != nil {
				n.log.Warn("DHT bootstrap", "err", err)
			}
			joined, backoff = true, minBackoff
		case !usable:
			if joined || backoff == minBackoff {
				n.log.Warn("cannot join the DHT: no bootstrap peer is a reachable DHT server; retrying", "bootstrap", n.bootstrapSummary())
			}
			joined, wait = false, backoff
			backoff = min(backoff*2, maxBackoff)
		}
		if !sleep(ctx, wait) {
			return
		}
	}
}

// checkBootstrap dials each bootstrap peer, records its state, logs the
// changes, and says whether any serves the DHT.
func (n *Node) checkBootstrap(ctx context.Context) bool {
	usable := false
	for i, ai := range n.bootstrap {
		st := n.tryBootstrap(ctx, ai)
		if ctx.Err() != nil {
			return false
		}
		n.bootMu.Lock()
		old := n.boot[i]
		n.boot[i] = st
		n.bootMu.Unlock()
		usable = usable || st.usable()
		if st.State == old.State {
			continue
		}
		if st.usable() {
			n.log.Info("bootstrap peer is a DHT server", "peer", ai.ID)
		} else {
			n.log.Warn("bootstrap peer cannot be used", "peer", ai.ID, "state", st.State, "err", st.Err)
		}
	}
	return usable
}

// tryBootstrap connects to a bootstrap peer and sees whether it serves the
// DHT. The dial is direct, as a bootstrap peer's should be, which also
// waits for identify on a connection that exists already, so the peer's
// protocols are known; the swarm's dial backoff is cleared first (joinDHT
// paces itself, and the backoff another dial to the peer left, the DHT's
// say, would hide the dial's real error behind "dial backoff").
func (n *Node) tryBootstrap(ctx context.Context, ai peer.AddrInfo) BootstrapState {
	n.clearBackoff(ai.ID)
	dctx, cancel := context.WithTimeout(network.WithForceDirectDial(ctx, "mynetwork bootstrap"), dialTimeout)
	defer cancel()
	if err := n.host.Connect(dctx, ai); err != nil {
		return BootstrapState{ID: ai.ID, State: BootstrapUnreachable, Err: dialProblem(err)}
	}
	if ok, _ := n.host.Peerstore().SupportsProtocols(ai.ID, dht.ProtocolDHT, lanKad); len(ok) > 0 {
		return BootstrapState{ID: ai.ID, State: BootstrapServer}
	}
	return BootstrapState{ID: ai.ID, State: BootstrapNotServer,
		Err: fmt.Sprintf("speaks neither %s nor %s", dht.ProtocolDHT, lanKad)}
}

// BootstrapPeers reports the bootstrap peers' states, in the config's
// order; none when the node has no DHT.
func (n *Node) BootstrapPeers() []BootstrapState {
	n.bootMu.Lock()
	defer n.bootMu.Unlock()
	return append([]BootstrapState(nil), n.boot...)
}

// bootstrapSummary names each bootstrap peer with its state, for one log
// line.
func (n *Node) bootstrapSummary() string {
	var parts []string
	for _, b := range n.BootstrapPeers() {
		s := b.ID.String() + " " + b.State
		if b.Err != "" && b.State != BootstrapNotServer {
			s += " (" + b.Err + ")"
		}
		parts = append(parts, s)
	}
	return strings.Join(parts, "; ")
}

// maxDialProblems is how many addresses' errors dialProblem names.
const maxDialProblems = 3

// dialProblem says in a line why a dial failed. libp2p's error is a
// paragraph: the peer ID, then "failed to dial" and the whole transport
// error for every address; this keeps each address with the heart of its
// error ("connection refused").
func dialProblem(err error) string {
	var de *swarm.DialError
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		return fmt.Sprintf("no answer within %s", dialTimeout)
	case !errors.As(err, &de):
		return err.Error()
	case len(de.DialErrors) == 0 && de.Cause != nil:
		return de.Cause.Error()
	}
	var parts []string
	for _, te := range de.DialErrors[:min(len(de.DialErrors), maxDialProblems)] {
		parts = append(parts, te.Address.String()+": "+causeOf(te.Cause))
	}
	if more := len(de.DialErrors) + de.Skipped - maxDialProblems; more > 0 {
		parts = append(parts, fmt.Sprintf("and %d more", more))
	}
	return strings.Join(parts, "; ")
}

// causeOf is a transport error without its wrapping: "connection refused"
// for "dial tcp 192.0.2.1:4001: connect: connection refused".
func causeOf(err error) string {
	var op *net.OpError
	if !errors.As(err, &op) {
		return err.Error()
	}
	if op.Timeout() {
		return "timed out"
	}
	var sys *os.SyscallError
	if errors.As(op.Err, &sys) {
		return sys.Err.Error()
	}
	return op.Err.Error()
}
