package daemon

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"slices"

	sd "github.com/coreos/go-systemd/v22/daemon"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/mynetwork/mynetwork/config"
	"github.com/mynetwork/mynetwork/internal/control"
	"github.com/mynetwork/mynetwork/internal/engine"
)

var _ control.Reloader = (*Daemon)(nil)

// Reload re-reads the config file and applies its peers (added, removed,
// renamed), their addresses and every route, while tunnels to the peers
// kept carry on. A config that does not load is refused with Load's
// errors, and nothing changes. Routes added without --persist are dropped:
// the file is the truth. Settings only a restart applies are named in the
// answer and the log.
func (d *Daemon) Reload(context.Context) (control.ReloadResult, error) {
	cfg, err := config.Load(d.opts.ConfigPath)
	if err != nil {
		return control.ReloadResult{}, &control.Error{Kind: control.ErrConflict, Err: err}
	}
	if id, err := cfg.ID(); err != nil || id != d.self {
		return control.ReloadResult{}, control.Errorf(control.ErrConflict, "%s: privateKey changed: a node's identity cannot change while it runs; restart it", d.opts.ConfigPath)
	}
	d.routeMu.Lock()
	defer d.routeMu.Unlock()
	if !d.up.Load() {
		return control.ReloadResult{}, control.Errorf(control.ErrConflict, "reload: the node is not up (starting or stopping)")
	}
	peers := d.peersFor(cfg)
	res := reloadResult(d.peers, peers)
	res.Restart = needsRestart(d.cfg, cfg)
	d.notify(sd.SdNotifyReloading) // systemd shows the unit reloading until READY=1
	defer d.notify(sd.SdNotifyReady)
	if err := d.apply(cfg, peers, d.tableOf(cfg, peers)); err != nil {
		return control.ReloadResult{}, err
	}
	if d.services != nil {
		res.Restart = slices.DeleteFunc(res.Restart, func(s string) bool { return s == "userspace" })
		if _, err := d.services.reload(); err != nil {
			return res, control.Errorf(control.ErrConflict, "reload: peers and routes changed, but the userspace proxy, forwards and exposes stay as they were: %w", err)
		}
	}
	d.log.Info("config reloaded", "added", res.Added, "removed", res.Removed, "renamed", res.Renamed, "peers", len(peers))
	if len(res.Restart) > 0 {
		d.log.Warn("config settings that apply only at the next start changed", "settings", res.Restart)
	}
	return res, nil
}

// apply moves the node to cfg in an order that never routes to a peer the
// transport does not know: the node takes the old and new peers, the
// device gets the new routes, the engine the new table; then the old
// routes and the removed peers go. A device route that cannot be added
// undoes what was done.
func (d *Daemon) apply(cfg *config.Config, peers []peerInfo, table *engine.Table) error {
	oldTable := d.eng.Table()
	newPeers := p2pPeers(peers)
	both := append(p2pPeers(d.peers), newPeers...)
	if err := d.node.SetPeers(both); err != nil {
		d.log.Warn("reload: resource manager", "err", err) // the peers work, with strangers' limits
	}
	added, err := d.addRoutes(netsOf(table), netsOf(oldTable))
	if err != nil {
		for _, pfx := range added {
			d.dev.DelRoute(pfx)
		}
		d.node.SetPeers(p2pPeers(d.peers))
		return fmt.Errorf("reload: %w", err)
	}
	d.eng.SetTable(table)
	for _, pfx := range netsOf(oldTable) {
		if _, ok := table.Has(pfx); !ok {
			if err := d.dev.DelRoute(pfx); err != nil {
				d.log.Warn("reload: delete route", "net", pfx, "err", err)
			}
		}
	}
	if err := d.node.SetPeers(newPeers); err != nil {
		d.log.Warn("reload: resource manager", "err", err)
	}
	d.peersMu.Lock()
	d.cfg, d.peers = cfg, peers
	d.peersMu.Unlock()
	d.names.Store(d.nameTable()) // DNS, SOCKS5, forwards and nc resolve by it
	if d.exit.offer {
		d.eng.SetExitClients(d.exitClients())
	}
	return nil
}

// addRoutes adds the device routes in nets that old lacks, returning
// those it added.
func (d *Daemon) addRoutes(nets, old []netip.Prefix) ([]netip.Prefix, error) {
	var added []netip.Prefix
	for _, pfx := range nets {
		if slices.Contains(old, pfx) {
			continue
		}
		if err := d.dev.AddRoute(pfx); err != nil {
			return added, err
		}
		added = append(added, pfx)
	}
	return added, nil
}

// netsOf are the networks in t that the device routes: all but the
// addresses in the mesh prefixes, which the interface's own routes
// cover, and the default routes to an exit node, which policy routing
// takes there (exitState) so that the tunnel's own traffic stays out.
func netsOf(t *engine.Table) []netip.Prefix {
	var out []netip.Prefix
	for _, r := range t.Routes() {
		p := r.Prefix
		inMesh := config.MeshPrefix4.Contains(p.Addr()) || config.MeshPrefix6.Contains(p.Addr())
		if p.Bits() > 0 && !(inMesh && p.IsSingleIP()) {
			out = append(out, p)
		}
	}
	return out
}

// reloadResult names the peers added, removed and renamed from old to
// peers.
func reloadResult(old, peers []peerInfo) control.ReloadResult {
	res := control.ReloadResult{Peers: len(peers)}
	byID := func(ps []peerInfo, id peer.ID) (peerInfo, bool) {
		i := slices.IndexFunc(ps, func(p peerInfo) bool { return p.id == id })
		if i < 0 {
			return peerInfo{}, false
		}
		return ps[i], true
	}
	for _, p := range peers {
		if o, ok := byID(old, p.id); !ok {
			res.Added = append(res.Added, p.name)
		} else if o.name != p.name {
			res.Renamed = append(res.Renamed, o.name+" -> "+p.name)
		}
	}
	for _, o := range old {
		if _, ok := byID(peers, o.id); !ok {
			res.Removed = append(res.Removed, o.name)
		}
	}
	return res
}

// needsRestart names the settings that differ between old and cfg and
// that only a start applies.
func needsRestart(old, cfg *config.Config) []string {
	fields := []struct {
		name string
		a, b any
	}{
		{"listenAddresses", old.ListenAddresses, cfg.ListenAddresses},
		{"bootstrapPeers", old.BootstrapPeers, cfg.BootstrapPeers},
		{"mdns", old.MDNS, cfg.MDNS},
		{"relays", old.Relays, cfg.Relays},
		{"reachability", old.Reachability, cfg.Reachability},
		{"mtu", old.MTU, cfg.MTU},
		{"userspace", old.Userspace, cfg.Userspace},
		{"mesh", old.Mesh, cfg.Mesh},
		{"exitNode", old.ExitNode, cfg.ExitNode},
		{"idleTimeout", old.IdleTimeout, cfg.IdleTimeout},
	}
	var out []string
	for _, f := range fields {
		a, errA := json.Marshal(f.a)
		b, errB := json.Marshal(f.b)
		if errors.Join(errA, errB) != nil || string(a) != string(b) {
			out = append(out, f.name)
		}
	}
	return out
}

// peerList is the configured peers now, for readers that do not hold
// routeMu: a reload replaces the slice, never changes it.
func (d *Daemon) peerList() []peerInfo {
	d.peersMu.RLock()
	defer d.peersMu.RUnlock()
	return d.peers
}

// peerByID is a configured peer, if id is one.
func (d *Daemon) peerByID(id peer.ID) (peerInfo, bool) {
	peers := d.peerList()
	i := slices.IndexFunc(peers, func(p peerInfo) bool { return p.id == id })
	if i < 0 {
		return peerInfo{}, false
	}
	return peers[i], true
}
