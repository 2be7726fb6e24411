package daemon

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"time"

	"github.com/miekg/dns"

	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/mynetwork/mynetwork/config"
	"github.com/mynetwork/mynetwork/internal/control"
	"github.com/mynetwork/mynetwork/internal/names"
)

// defaultRoutes are what an exit node is routed: everything.
var defaultRoutes = []netip.Prefix{netip.MustParsePrefix("0.0.0.0/0"), netip.MustParsePrefix("::/0")}

// exitState is the exit node this node uses and whether it offers itself
// as one; the daemon changes it under routeMu, and use under peersMu
// too, which status reads it under.
type exitState struct {
	use      string   // the peer all traffic goes through, by name; "" for none
	allowLAN bool     // keep the local networks out of the tunnel
	offer    bool     // forward the clients' traffic to the internet
	clients  []string // who may use this node; nil: every peer

	undoUse func() error // the OS routing that sends all traffic into the tunnel; nil while none
}

// exitSettings are the config's exit-node settings with the flags over them.
func exitSettings(cfg *config.Config, opts Options) exitState {
	var st exitState
	if e := cfg.ExitNode; e != nil {
		st = exitState{use: e.Use, allowLAN: e.AllowLAN, offer: e.Offer, clients: e.Clients}
	}
	switch opts.ExitNode {
	case "":
	case "off":
		st.use = ""
	default:
		st.use = opts.ExitNode
	}
	st.offer = st.offer || opts.ExitNodeOffer
	st.allowLAN = st.allowLAN || opts.ExitNodeAllowLAN
	return st
}

// check refuses settings that cannot work together.
func (st exitState) check() error {
	if st.offer && st.use != "" {
		return fmt.Errorf("exit node: offering one and using %q together: an exit node sends its clients' traffic out itself", st.use)
	}
	return nil
}

// peersFor are cfg's peers and the members (withMembers), the exit node
// among them routed everything besides its own and kept connected.
func (d *Daemon) peersFor(cfg *config.Config) []peerInfo {
	peers := d.withMembers(cfg)
	if d.exit.use == "" {
		return peers
	}
	for i, p := range peers {
		if p.name == d.exit.use {
			peers[i].routes = append(slices.Clone(p.routes), defaultRoutes...)
			peers[i].keep = true
		}
	}
	return peers
}

// exitClients are the peers that may use this node as their exit node.
func (d *Daemon) exitClients() []peer.ID {
	if !d.exit.offer {
		return nil
	}
	var out []peer.ID
	for _, p := range d.peerList() {
		if d.exit.clients == nil || slices.Contains(d.exit.clients, p.name) {
			out = append(out, p.id)
		}
	}
	return out
}

// exitHost is what a backend does for exit nodes: offer (forwarding and
// source NAT in kernel mode, the stack's forwarder in userspace mode) and
// use (policy routing in kernel mode; the engine's table alone in
// userspace mode).
type exitHost interface {
	offerExit(d *Daemon) (undo func() error, err error)
	useExit(d *Daemon) (undo func() error, err error)
}

// exitNode is the component that offers this node as an exit node and
// sends all traffic through the exit node in use.
type exitNode struct {
	d         *Daemon
	undoOffer func() error
}

func (c *exitNode) Start(context.Context) error {
	d := c.d
	if err := d.exit.check(); err != nil {
		return err
	}
	// In userspace mode the stack forwards to the networks this node
	// serves as it does for an exit node's clients.
	if d.exit.offer || d.opts.Userspace && len(d.cfg.Routes) > 0 {
		undo, err := d.dev.offerExit(d)
		if err != nil {
			return fmt.Errorf("forwarding (exit node, served routes): %w", err)
		}
		c.undoOffer = undo
	}
	if d.exit.offer {
		d.eng.SetExitClients(d.exitClients())
	}
	if d.exit.use != "" {
		if err := d.startUsingExit(); err != nil {
			c.Close()
			return err
		}
	}
	return nil
}

// Close undoes what Start did, the routing first: no packet leaves the
// tunnel's way while the rest goes.
func (c *exitNode) Close() error {
	d := c.d
	var err error
	if d.exit.undoUse != nil {
		err = d.exit.undoUse()
		d.exit.undoUse = nil
	}
	if c.undoOffer != nil {
		d.eng.SetExitClients(nil)
		err = errors.Join(err, c.undoOffer())
	}
	return err
}

// startUsingExit sends all traffic through the exit node: the engine's
// table routes it everything (peersFor), then the OS sends it all there.
func (d *Daemon) startUsingExit() error {
	if _, ok := d.peerNamed(d.exit.use); !ok {
		d.log.Warn("exit node is not a peer (yet): traffic to the internet is dropped until it is", "exitNode", d.exit.use)
	}
	undo, err := d.dev.useExit(d)
	if err != nil {
		return fmt.Errorf("use exit node %s: %w", d.exit.use, err)
	}
	d.exit.undoUse = undo
	d.log.Info("all traffic goes through the exit node", "exitNode", d.exit.use, "allowLAN", d.exit.allowLAN)
	return nil
}

// peerNamed is the peer called name now.
func (d *Daemon) peerNamed(name string) (peerInfo, bool) {
	peers := d.peerList()
	i := slices.IndexFunc(peers, func(p peerInfo) bool { return p.name == name })
	if i < 0 {
		return peerInfo{}, false
	}
	return peers[i], true
}

// listenPorts are the TCP and UDP ports the config listens on: the
// tunnel's own traffic comes from them and must never enter it.
func listenPorts(cfg *config.Config) (tcp, udp []uint16) {
	for _, s := range cfg.Listen() {
		a, err := ma.NewMultiaddr(s)
		if err != nil {
			continue
		}
		if p, err := a.ValueForProtocol(ma.P_TCP); err == nil {
			tcp = appendPort(tcp, p)
		}
		if p, err := a.ValueForProtocol(ma.P_UDP); err == nil {
			udp = appendPort(udp, p)
		}
	}
	return tcp, udp
}

func appendPort(ports []uint16, s string) []uint16 {
	var p uint16
	if _, err := fmt.Sscan(s, &p); err == nil && p != 0 && !slices.Contains(ports, p) {
		ports = append(ports, p)
	}
	return ports
}

var _ control.ExitNoder = (*Daemon)(nil)

// SetExitNode starts using the peer named name as the exit node, or
// stops using one ("" or "off"), at run time.
func (d *Daemon) SetExitNode(_ context.Context, req control.ExitNodeRequest) (control.ExitNodeStatus, error) {
	name := req.Peer
	if name == "off" {
		name = ""
	}
	d.routeMu.Lock()
	defer d.routeMu.Unlock()
	if !d.up.Load() {
		return control.ExitNodeStatus{}, control.Errorf(control.ErrConflict, "exit node: the node is not up (starting or stopping)")
	}
	if name != "" {
		if _, ok := d.peerNamed(name); !ok {
			return control.ExitNodeStatus{}, control.Errorf(control.ErrNotFound, "exit node: no peer is named %q", name)
		}
		if d.exit.offer {
			return control.ExitNodeStatus{}, control.Errorf(control.ErrConflict, "exit node: this node offers itself as one, and an exit node sends its clients' traffic out itself")
		}
	}
	if name == d.exit.use {
		return d.exitStatus(), nil
	}
	if d.exit.undoUse != nil { // the OS routing goes first, then the table's
		if err := d.exit.undoUse(); err != nil {
			return control.ExitNodeStatus{}, fmt.Errorf("exit node: undo routing: %w", err)
		}
		d.exit.undoUse = nil
	}
	d.peersMu.Lock() // status reads it
	d.exit.use = name
	d.peersMu.Unlock()
	peers := d.peersFor(d.cfg)
	if err := d.apply(d.cfg, peers, memberTable(d.eng.Table(), d.peers, peers)); err != nil {
		return control.ExitNodeStatus{}, err
	}
	if name != "" {
		if err := d.startUsingExit(); err != nil {
			return control.ExitNodeStatus{}, err
		}
	} else {
		d.log.Info("exit node off: traffic to the internet leaves as before")
	}
	if d.dns != nil {
		d.dns.routeAll(name != "")
	}
	return d.exitStatus(), nil
}

// exitStatus is the exit-node part of status.
func (d *Daemon) exitStatus() control.ExitNodeStatus {
	d.peersMu.RLock()
	st := control.ExitNodeStatus{Use: d.exit.use, AllowLAN: d.exit.allowLAN, Offer: d.exit.offer, Clients: d.exit.clients}
	d.peersMu.RUnlock()
	if p, ok := d.peerNamed(d.exit.use); ok && d.node != nil {
		st.ID = p.id.String()
		st.Connected = d.node.State(p.id).Connected
	}
	return st
}

// exitInUse is the name of the exit node in use, or "".
func (d *Daemon) exitInUse() string {
	d.peersMu.RLock()
	defer d.peersMu.RUnlock()
	return d.exit.use
}

// dnsForward answers a query outside the mesh's names (names.Handler's
// Forward): an exit node asks the host's resolvers for its clients; a
// node using an exit node asks that node's DNS server, through the
// tunnel, for itself. Anyone else gets NXDOMAIN: no open resolver.
func (d *Daemon) dnsForward(r *dns.Msg, from netip.Addr) *dns.Msg {
	if d.exit.offer && d.isExitClientAddr(from) {
		return d.upstream.Exchange(r)
	}
	if from.IsLoopback() || from == d.addrs.IPv4 || from == d.addrs.IPv6 {
		if m := d.viaExit(r); m != nil {
			return m
		}
		if d.exitInUse() != "" { // down: say so, not "no such name"
			return names.ServFail(r)
		}
	}
	return nil
}

// isExitClientAddr says whether a is the mesh address of a peer that may
// use this node as its exit node (the engine checked that the peer sent
// from it).
func (d *Daemon) isExitClientAddr(a netip.Addr) bool {
	for _, id := range d.exitClients() {
		if p, ok := d.peerByID(id); ok && (p.addrs.IPv4 == a || p.addrs.IPv6 == a) {
			return true
		}
	}
	return false
}

// viaExit asks the exit node's DNS server r through the tunnel; nil
// without an exit node.
func (d *Daemon) viaExit(r *dns.Msg) *dns.Msg {
	p, ok := d.peerNamed(d.exitInUse())
	if !ok || d.dev == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	conn, err := d.dev.dial(ctx, "udp", names.ServerAddr(p.addrs.IPv4.String()))
	if err != nil {
		return nil
	}
	return names.ExchangeWith(conn, r)
}

// resolveViaExit looks host up through the exit node's DNS server: how
// SOCKS5 and forwards find names outside the mesh while one is in use.
func (d *Daemon) resolveViaExit(host string) (netip.Addr, bool) {
	for _, t := range []uint16{dns.TypeA, dns.TypeAAAA} {
		r := new(dns.Msg)
		r.SetQuestion(dns.Fqdn(host), t)
		m := d.viaExit(r)
		if m == nil {
			return netip.Addr{}, false
		}
		for _, rr := range m.Answer {
			switch v := rr.(type) {
			case *dns.A:
				if a, ok := netip.AddrFromSlice(v.A); ok {
					return a.Unmap(), true
				}
			case *dns.AAAA:
				if a, ok := netip.AddrFromSlice(v.AAAA); ok {
					return a, true
				}
			}
		}
	}
	return netip.Addr{}, false
}
