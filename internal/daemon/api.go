package daemon

import (
	"context"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"sync/atomic"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/mynetwork/mynetwork/config"
	"github.com/mynetwork/mynetwork/internal/buildinfo"
	"github.com/mynetwork/mynetwork/internal/control"
	"github.com/mynetwork/mynetwork/internal/engine"
	"github.com/mynetwork/mynetwork/p2p/tunnel"
)

var _ control.Backend = (*Daemon)(nil)

// Status reports the node, its peers and its counters.
func (d *Daemon) Status(context.Context) (control.Status, error) {
	mtu, _ := d.dev.MTU()
	st := control.Status{
		PeerID: d.self.String(), Interface: d.dev.Name(), Mode: d.dev.Mode(),
		MTU: mtu, SegmentationOffload: d.virtio(),
		IPv4: d.addrs.IPv4.String(), IPv6: d.addrs.IPv6.String(),
		SwarmPeers:         len(d.node.ConnectedPeers()),
		IdleTimeoutSeconds: int(d.cfg.Idle().Seconds()),
		Counters:           engineCounters(&d.eng.Counters, &d.node.Transport().Refused),
		Userspace:          d.userspace.Load(),
		Version:            buildinfo.Get(),
	}
	for _, a := range d.node.Addrs() {
		st.Addresses = append(st.Addresses, a.String())
	}
	for _, p := range d.peerList() {
		st.Peers = append(st.Peers, d.peerStatus(p))
	}
	for _, b := range d.node.BootstrapPeers() {
		bp := control.BootstrapPeer{ID: b.ID.String(), State: b.State, Error: b.Err}
		if p, ok := d.peerByID(b.ID); ok {
			bp.Name = p.name
		}
		st.BootstrapPeers = append(st.BootstrapPeers, bp)
	}
	st.Mesh = d.meshStatus()
	if ex := d.exitStatus(); ex.Use != "" || ex.Offer {
		st.ExitNode = &ex
	}
	d.peersMu.RLock()
	serves := len(d.cfg.Routes) > 0
	d.peersMu.RUnlock()
	if us, ok := d.dev.(*userspaceBackend); ok && (d.exit.offer || serves) {
		f := us.ForwardStats()
		st.Forwarding = &control.ForwardStatus{TCP: f.TCP, UDP: f.UDP, Refused: f.Refused, DialFailed: f.DialFailed, Dropped: f.Dropped}
	}
	return st, nil
}

// peerStatus reports a configured peer's connection and counters.
func (d *Daemon) peerStatus(p peerInfo) control.PeerStatus {
	ps := d.node.State(p.id)
	s := control.PeerStatus{
		Name: p.name, Member: p.member, ID: p.id.String(), IPv4: p.addrs.IPv4.String(), IPv6: p.addrs.IPv6.String(),
		Connected: ps.Connected, Path: ps.Path, Why: ps.Why, Idle: ps.Idle,
		RTTMillis: float64(ps.RTT.Microseconds()) / 1000,
	}
	if ps.Addr != nil {
		s.Addr = ps.Addr.String()
	}
	if ps.Relay != "" {
		s.Relay = ps.Relay.String()
		if p, ok := d.peerByID(ps.Relay); ok {
			s.Relay = p.name
		}
	}
	if c := d.node.Transport().Stats(p.id); c != nil {
		peerCounters(&s, c)
	}
	return s
}

// engineCounters loads the engine's counters, and the transport's refused
// streams, into the API's.
func engineCounters(c *engine.Counters, refused *atomic.Uint64) control.Counters {
	return control.Counters{
		TxPackets: c.TxPackets.Load(), TxBytes: c.TxBytes.Load(),
		RxPackets: c.RxPackets.Load(), RxBytes: c.RxBytes.Load(),
		DropNoRoute: c.DropNoRoute.Load(), DropSource: c.DropSource.Load(),
		DropInvalid: c.DropInvalid.Load(), DropSend: c.DropSend.Load(), DropDevice: c.DropDevice.Load(),
		DropDestination: c.DropDestination.Load(),
		Refused:         refused.Load(), Panics: c.Panics.Load(),
	}
}

// peerCounters loads a peer's transport counters into its status. Dropped
// is every drop, those for delay included.
func peerCounters(s *control.PeerStatus, c *tunnel.PeerCounters) {
	s.TxPackets, s.RxPackets = c.TxPackets.Load(), c.RxPackets.Load()
	s.TxDatagrams, s.RxDatagrams = c.TxDatagrams.Load(), c.RxDatagrams.Load()
	s.TxSuperPackets, s.TxSegmented = c.TxSuperPackets.Load(), c.TxSegmented.Load()
	s.DroppedForDelay, s.MarkedForDelay = c.DropDelay.Load(), c.MarkDelay.Load()
	s.Dropped = c.DropQueue.Load() + c.DropNoLink.Load() + s.DroppedForDelay
	s.MalformedFrames, s.StalledStreams = c.Malformed.Load(), c.Stalled.Load()
}

// Peers lists connected libp2p peers, VPN peers first, in config order.
func (d *Daemon) Peers(context.Context) ([]control.SwarmPeer, error) {
	var vpn, others []control.SwarmPeer
	connected := d.node.ConnectedPeers()
	peers := d.peerList()
	for _, p := range peers {
		if slices.Contains(connected, p.id) {
			vpn = append(vpn, control.SwarmPeer{ID: p.id.String(), Name: p.name, VPN: true, Addrs: connAddrs(d, p.id)})
		}
	}
	for _, id := range connected {
		if !slices.ContainsFunc(peers, func(p peerInfo) bool { return p.id == id }) {
			others = append(others, control.SwarmPeer{ID: id.String(), Addrs: connAddrs(d, id)})
		}
	}
	slices.SortFunc(others, func(a, b control.SwarmPeer) int { return strings.Compare(a.ID, b.ID) })
	return append(vpn, others...), nil
}

func connAddrs(d *Daemon, id peer.ID) []string {
	var out []string
	for _, a := range d.node.ConnAddrs(id) {
		out = append(out, a.String())
	}
	return out
}

// peerIndex is the index of a configured peer in d.peers, or -1; the
// caller holds routeMu, so that d.peers stays as it is.
func (d *Daemon) peerIndex(id peer.ID) int { return indexOf(d.peers, id) }

// findPeer resolves a peer name or peer ID among the configured peers;
// the caller holds routeMu.
func (d *Daemon) findPeer(s string) (int, error) {
	for i, p := range d.peers {
		if p.name == s || p.id.String() == s {
			return i, nil
		}
	}
	return -1, control.Errorf(control.ErrNotFound, "no configured peer is named or has the ID %q", s)
}

// Routes lists the route table.
func (d *Daemon) Routes(context.Context) ([]control.Route, error) {
	var out []control.Route
	for _, r := range d.eng.Table().Routes() {
		out = append(out, d.routeView(r))
	}
	return out, nil
}

func (d *Daemon) routeView(r engine.Route) control.Route {
	p, _ := d.peerByID(r.Peer) // the table routes only to configured peers
	return control.Route{
		Net: r.Prefix.String(), PeerName: p.name, PeerID: p.id.String(),
		Connected: d.node.State(p.id).Connected,
		Own:       slices.Contains(p.addrs.Prefixes(), r.Prefix),
	}
}

// AddRoute routes a network to a configured peer: the OS route, then the
// engine's table, then (with Persist) the config file.
func (d *Daemon) AddRoute(_ context.Context, req control.RouteRequest) (control.Route, error) {
	pfx, err := config.ParseRoute(req.Net)
	if err != nil {
		return control.Route{}, &control.Error{Kind: control.ErrBadRequest, Err: err}
	}
	d.routeMu.Lock()
	defer d.routeMu.Unlock()
	i, err := d.findPeer(req.Peer)
	if err != nil {
		return control.Route{}, err
	}
	if req.Persist && d.peers[i].member {
		return control.Route{}, control.Errorf(control.ErrConflict, "%s is a member, not a peer the config lists: --persist has no entry to write the route to", d.peers[i].name)
	}
	table := d.eng.Table()
	if owner, ok := table.Has(pfx); ok {
		return control.Route{}, control.Errorf(control.ErrConflict, "%s is already routed to %s: delete it first with 'mynetwork route del %s'", pfx, d.peers[d.peerIndex(owner)].name, pfx)
	}
	if err := d.dev.AddRoute(pfx); err != nil {
		return control.Route{}, err
	}
	if req.Persist {
		err := d.editConfig(func(c *config.Config) {
			c.Peers[i].Routes = slices.DeleteFunc(c.Peers[i].Routes, func(r config.Route) bool { return sameNet(r.Net, pfx) })
			c.Peers[i].Routes = append(c.Peers[i].Routes, config.Route{Net: pfx.String()})
		})
		if err != nil {
			d.dev.DelRoute(pfx) // all or nothing
			return control.Route{}, err
		}
	}
	r := engine.Route{Prefix: pfx, Peer: d.peers[i].id}
	d.eng.SetTable(table.With(r))
	d.log.Info("route added", "net", pfx, "peer", d.peers[i].name, "persist", req.Persist)
	return d.routeView(r), nil
}

// DelRoute removes a network route added by config or AddRoute.
func (d *Daemon) DelRoute(_ context.Context, req control.RouteRequest) error {
	pfx, err := netip.ParsePrefix(req.Net)
	if err != nil {
		return control.Errorf(control.ErrBadRequest, "%q is not a CIDR", req.Net)
	}
	d.routeMu.Lock()
	defer d.routeMu.Unlock()
	table := d.eng.Table()
	owner, ok := table.Has(pfx)
	if !ok {
		return control.Errorf(control.ErrNotFound, "route %s: no such route", pfx)
	}
	i := d.peerIndex(owner)
	if slices.Contains(d.peers[i].addrs.Prefixes(), pfx.Masked()) {
		return control.Errorf(control.ErrConflict, "%s is the mesh address of peer %s and cannot be deleted", pfx, d.peers[i].name)
	}
	if req.Persist && d.peers[i].member {
		return control.Errorf(control.ErrConflict, "%s is routed to member %s, not to a peer the config lists: --persist has no entry to delete it from", pfx, d.peers[i].name)
	}
	if err := d.dev.DelRoute(pfx.Masked()); err != nil {
		return err
	}
	if req.Persist {
		err := d.editConfig(func(c *config.Config) {
			c.Peers[i].Routes = slices.DeleteFunc(c.Peers[i].Routes, func(r config.Route) bool { return sameNet(r.Net, pfx) })
		})
		if err != nil {
			d.dev.AddRoute(pfx.Masked()) // all or nothing
			return err
		}
	}
	d.eng.SetTable(table.Without(pfx))
	d.log.Info("route deleted", "net", pfx, "peer", d.peers[i].name, "persist", req.Persist)
	return nil
}

// editConfig re-reads the config file, applies f, validates and saves it
// atomically, so edits made to the file since start are kept. The file
// must still list the same peers in the same order. A file it cannot read
// or write is the daemon's failure (500), not the request's.
func (d *Daemon) editConfig(f func(*config.Config)) error {
	c, err := config.Load(d.opts.ConfigPath)
	if err != nil {
		return fmt.Errorf("persist: %w", err)
	}
	same := func(cp config.Peer, p peerInfo) bool { return cp.ID == p.id.String() }
	if !slices.EqualFunc(c.Peers, listed(d.peers), same) {
		return control.Errorf(control.ErrConflict, "persist: %s changed its peers since 'up'; restart to use them", d.opts.ConfigPath)
	}
	f(c)
	// The edit conflicts with what the file holds now (say, the same net
	// routed to another peer there).
	if err := c.Validate(); err != nil {
		return control.Errorf(control.ErrConflict, "persist: %w", err)
	}
	return c.Save(d.opts.ConfigPath)
}

// sameNet reports whether a config route's net is prefix p.
func sameNet(net string, p netip.Prefix) bool {
	q, err := netip.ParsePrefix(net)
	return err == nil && q.Masked() == p.Masked()
}
