// Package daemon runs one Mynetwork node: it brings up the network
// interface, joins the peers and answers the CLI until told to stop, then
// takes it all down again.
package daemon

import (
	"context"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"strings"
	"sync"
	"sync/atomic"

	sd "github.com/coreos/go-systemd/v22/daemon"
	dht "github.com/libp2p/go-libp2p-kad-dht"
	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"
	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/sync/errgroup"

	"github.com/mynetwork/mynetwork/config"
	"github.com/mynetwork/mynetwork/internal/control"
	"github.com/mynetwork/mynetwork/internal/engine"
	"github.com/mynetwork/mynetwork/internal/membership"
	"github.com/mynetwork/mynetwork/internal/names"
	"github.com/mynetwork/mynetwork/internal/packet"
	"github.com/mynetwork/mynetwork/p2p"
	"github.com/mynetwork/mynetwork/p2p/tunnel"
)

// Options choose what the daemon runs.
type Options struct {
	ConfigPath string
	Interface  string
	SocketPath string // empty: control.SocketPath(Interface)
	Log        *slog.Logger

	// Userspace runs the gVisor stack instead of a TUN: no root needed.
	Userspace  bool
	SOCKS5     string   // --socks5: replaces the config's address; "off" disables
	SOCKS5Auth string   // --socks5-auth: replaces the config's socks5Auth
	Forwards   []string // --forward rules, added to the config's
	Exposes    []string // --expose rules, added to the config's

	Metrics string // --metrics: replaces the config's address; "off" disables

	ExitNode         string // --exit-node: replaces the config's exitNode.use; "off" for none
	ExitNodeOffer    bool   // --exit-node-offer: offer this node as an exit node to every peer
	ExitNodeAllowLAN bool   // --exit-node-allow-lan

	// forwardDial replaces the host's dialer for what the userspace stack
	// forwards (tests: never out of the machine).
	forwardDial func(ctx context.Context, network, address string) (net.Conn, error)
	// dnsServers replace the host's resolvers for an exit node's clients
	// (tests).
	dnsServers []string
}

// peerInfo is a peer, listed in the config or a member, with everything
// parsed.
type peerInfo struct {
	name   string
	id     peer.ID
	addrs  config.Addresses
	routes []netip.Prefix // the networks routed to it
	dial   []ma.Multiaddr // where to find it: the config's addresses, a member's hints
	member bool           // not listed: its certificate admits it
	keep   bool           // connected even on demand: the exit node in use
}

// Daemon is one node. Create it with New, run it with Run.
type Daemon struct {
	opts  Options
	cfg   *config.Config
	self  peer.ID
	addrs config.Addresses
	peers []peerInfo
	log   *slog.Logger
	// names is every name's table: SOCKS5, forwards, nc and DNS read it at
	// each use, so a new config can store a new one.
	names atomic.Pointer[names.Table]

	// Set while running.
	dev       backend
	node      *p2p.Node
	eng       *engine.Engine
	userspace atomic.Pointer[control.Userspace] // what status shows in userspace mode
	services  *userspaceServices                // userspace mode's proxy, forwards and exposes; nil in kernel mode
	members   *membership.Service               // nil without the config's mesh section
	notMember atomic.Bool                       // this node's certificate was revoked or expired (logged once)
	exit      exitState                         // the exit node used and offered; guarded by routeMu
	upstream  *names.Upstream                   // the host's resolvers, for an exit node's clients
	dns       *meshDNS                          // set while running

	metricsAddr string               // where metrics are served; "" for nowhere
	metrics     *prometheus.Registry // the daemon's own, libp2p's metrics too; nil without metricsAddr

	routeMu sync.Mutex  // serialises route changes (OS, table and file) and reloads
	up      atomic.Bool // every component started: a reload may change them
	// peersMu guards peers and cfg, which a reload replaces (holding
	// routeMu too); readers without routeMu take peerList's copy.
	peersMu sync.RWMutex
}

// New loads and validates the config. It changes nothing on the system.
func New(opts Options) (*Daemon, error) {
	if opts.Log == nil {
		opts.Log = slog.Default()
	}
	if err := control.ValidInterface(opts.Interface); err != nil {
		return nil, err
	}
	if opts.SocketPath == "" {
		opts.SocketPath, _ = control.SocketPath(opts.Interface) // valid: checked above
	}
	cfg, err := config.Load(opts.ConfigPath)
	if err != nil {
		return nil, err
	}
	self, err := cfg.ID()
	if err != nil {
		return nil, err
	}
	d := &Daemon{opts: opts, cfg: cfg, self: self, addrs: config.AddressesOf(self), log: opts.Log}
	if err := d.newMembers(); err != nil {
		return nil, err
	}
	d.exit = exitSettings(cfg, opts)
	d.upstream = names.NewUpstream("")
	d.upstream.Servers = opts.dnsServers
	d.peers = d.peersFor(cfg)
	d.names.Store(d.nameTable())
	if err := d.setMetrics(); err != nil {
		return nil, err
	}
	return d, nil
}

// peersOf are a valid config's peers, parsed.
func peersOf(cfg *config.Config) []peerInfo {
	var peers []peerInfo
	for _, p := range cfg.Peers {
		id, _ := peer.Decode(p.ID) // validated by Load
		pi := peerInfo{name: p.Name, id: id, addrs: config.AddressesOf(id)}
		for _, r := range p.Routes {
			pfx, _ := config.ParseRoute(r.Net) // validated by Load
			pi.routes = append(pi.routes, pfx)
		}
		for _, s := range p.Addrs {
			a, _ := ma.NewMultiaddr(s) // validated by Load
			pi.dial = append(pi.dial, a)
		}
		peers = append(peers, pi)
	}
	return peers
}

// initialTable is the route table of the config the daemon started with.
func (d *Daemon) initialTable() *engine.Table { return d.tableOf(d.cfg, d.peers) }

// listed are the peers of peers that the config lists: they come first.
func listed(peers []peerInfo) []peerInfo {
	n := 0
	for n < len(peers) && !peers[n].member {
		n++
	}
	return peers[:n]
}

// tableOf routes each peer's own addresses and its configured networks,
// and delivers what peers send to this node's own addresses and the
// networks it serves; peers are cfg's.
func (d *Daemon) tableOf(cfg *config.Config, peers []peerInfo) *engine.Table {
	var routes []engine.Route
	for _, p := range peers {
		routes = append(routes, routesOf(p)...)
	}
	local := d.addrs.Prefixes()
	for _, r := range cfg.Routes {
		pfx, _ := config.ParseRoute(r.Net) // validated by Load
		local = append(local, pfx)
	}
	return engine.NewTable(routes, local...)
}

// routesOf are the routes to p: its mesh addresses and its networks.
func routesOf(p peerInfo) []engine.Route {
	var out []engine.Route
	for _, pfx := range append(p.addrs.Prefixes(), p.routes...) {
		out = append(out, engine.Route{Prefix: pfx, Peer: p.id})
	}
	return out
}

// p2pPeers are peers as the node takes them.
func p2pPeers(peers []peerInfo) []p2p.Peer {
	var out []p2p.Peer
	for _, p := range peers {
		out = append(out, p2p.Peer{ID: p.id, Addrs: p.dial, Keep: p.keep})
	}
	return out
}

func (d *Daemon) p2pOptions() (p2p.Options, error) {
	key, err := d.cfg.PrivKey()
	if err != nil {
		return p2p.Options{}, err
	}
	peers := p2pPeers(d.peers)
	var boot []peer.AddrInfo
	if d.cfg.BootstrapPeers == nil {
		boot = dht.GetDefaultBootstrapPeerAddrInfos()
	} else {
		for _, s := range *d.cfg.BootstrapPeers {
			ai, _ := peer.AddrInfoFromString(s) // validated by Load
			boot = append(boot, *ai)
		}
	}
	var relays []peer.AddrInfo
	for _, s := range d.cfg.Relays {
		ai, _ := peer.AddrInfoFromString(s) // validated by Load
		relays = append(relays, *ai)
	}
	ctl, reuse := d.socketControls()
	// MaxPacket: a device with virtio-net headers hands over TCP
	// super-packets of up to 64 KiB, and every node takes them from peers:
	// packets up to the frame limit, more than the largest MTU a peer may
	// have.
	return p2p.Options{
		Key: key, Listen: d.cfg.Listen(), Bootstrap: boot, MDNS: d.cfg.MDNSEnabled(),
		Peers: peers, Relays: relays, Reachability: d.cfg.Reachability,
		AddrBook:  strings.TrimSuffix(d.opts.ConfigPath, ".json") + ".addrs.json",
		MaxPacket: tunnel.MaxFrame, VirtioHeaders: d.virtio(), Log: d.log,
		Metrics: d.libp2pMetrics(), OnConnected: d.connected,
		Control: ctl, ReuseControl: reuse, IdleTimeout: d.cfg.Idle(),
	}, nil
}

// Run starts the daemon's components in order and blocks until ctx ends or
// one of their loops fails; then it closes them in reverse order. On a
// start error, what was started is closed.
func (d *Daemon) Run(ctx context.Context) error {
	loops, stopped := errgroup.WithContext(ctx)
	cs := d.components(loops)
	if err := start(ctx, cs); err != nil {
		loops.Wait() // closing ended the loops that had started
		return err
	}
	d.up.Store(true)
	defer d.up.Store(false)
	if d.members != nil {
		d.membersChanged() // what was heard while the components started
	}
	d.log.Info("mynetwork is up", "interface", d.dev.Name(), "mode", d.dev.Mode(), "peerID", d.self,
		"ipv4", d.addrs.IPv4, "ipv6", d.addrs.IPv6, "peers", len(d.peerList()))
	d.notify(sd.SdNotifyReady)
	<-stopped.Done()
	if ctx.Err() != nil {
		d.log.Info("shutting down", "interface", d.dev.Name())
	}
	d.notify(sd.SdNotifyStopping)
	d.routeMu.Lock()
	d.up.Store(false) // no reload or member change reaches a closing component
	d.routeMu.Unlock()
	closeAll(cs)
	return loops.Wait() // the loop that failed first, or nil
}

// WarnIfExposed warns when the config file, which holds the private key, is
// readable by others.
func WarnIfExposed(path string, log *slog.Logger) {
	if st, err := os.Stat(path); err == nil && st.Mode().Perm()&0o077 != 0 {
		log.Warn("config file holds the private key but others can read it; run chmod 600", "file", path, "mode", st.Mode().Perm())
	}
}

// virtio says whether the device's packets carry a virtio-net header: TCP
// segmentation offload, carried end to end (tunnel.GSOProtocol).
func (d *Daemon) virtio() bool {
	return packet.Offloads(d.dev)
}
