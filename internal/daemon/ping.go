package daemon

import (
	"context"
	"errors"
	"slices"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/mynetwork/mynetwork/internal/control"
	"github.com/mynetwork/mynetwork/p2p"
)

// maxPingWait caps the wait for a ping's answer: the connector's own
// liveness ping gives up after as long.
const maxPingWait = 5 * time.Second

// Ping pings a configured peer once over the connection its packets use,
// and says which connection that is.
func (d *Daemon) Ping(ctx context.Context, req control.PingRequest) (control.PingReply, error) {
	peers := d.peerList() // a reload may replace them meanwhile
	i, err := d.pingTarget(peers, req.Peer)
	if err != nil {
		return control.PingReply{}, err
	}
	wait := maxPingWait
	if t := time.Duration(req.TimeoutMillis) * time.Millisecond; t > 0 && t < wait {
		wait = t
	}
	ctx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	p := peers[i]
	pong, err := d.node.Ping(ctx, p.id)
	if errors.Is(err, context.DeadlineExceeded) {
		return control.PingReply{}, errors.New("no answer from " + p.name + " within " + wait.String())
	}
	if err != nil {
		return control.PingReply{}, errors.New(p.name + ": " + err.Error())
	}
	r := control.PingReply{
		Name: p.name, ID: p.id.String(), IPv4: p.addrs.IPv4.String(),
		Path: pong.Path, Transport: pong.Transport, Addr: pong.Addr.String(),
		RTTMillis: float64(pong.RTT.Microseconds()) / 1000,
	}
	if pong.Path == p2p.PathRelay {
		r.Relay = relayName(peers, pong)
	}
	return r, nil
}

func relayName(peers []peerInfo, pong p2p.Pong) string {
	if i := indexOf(peers, pong.Relay); i >= 0 {
		return peers[i].name
	}
	return pong.Relay.String()
}

// pingTarget finds the configured peer a ping is for: by peer ID, by a
// name in the name table (as dial takes it: name, name.mynetwork,
// name.mynetwork.internal), or by an address the peer holds or is routed.
func (d *Daemon) pingTarget(peers []peerInfo, s string) (int, error) {
	if s == "" {
		return -1, control.Errorf(control.ErrBadRequest, "ping needs a peer: a name, a peer ID or a mesh IP address")
	}
	for i, p := range peers {
		if p.id.String() == s {
			return i, nil
		}
	}
	a, ok := d.resolve(s)
	if !ok {
		return -1, control.Errorf(control.ErrNotFound, "ping %s: no configured peer is named or has the ID %q", s, s)
	}
	if a == d.addrs.IPv4 || a == d.addrs.IPv6 {
		return -1, control.Errorf(control.ErrBadRequest, "ping %s: that is this node's own address", s)
	}
	if id, ok := d.eng.Table().Lookup(a); ok {
		if i := indexOf(peers, id); i >= 0 {
			return i, nil
		}
	}
	return -1, control.Errorf(control.ErrNotFound, "ping %s: no configured peer has this address or a route to it", a)
}

// indexOf is the index of the peer id in peers, or -1.
func indexOf(peers []peerInfo, id peer.ID) int {
	return slices.IndexFunc(peers, func(p peerInfo) bool { return p.id == id })
}
