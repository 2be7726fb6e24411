package daemon

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"os"
	"time"

	"github.com/mynetwork/mynetwork/config"
	"github.com/mynetwork/mynetwork/internal/names"
)

// nameTable makes the table of this node's names, named after its host as
// 'mynetwork init' suggests the others name it, and its peers'.
func (d *Daemon) nameTable() *names.Table {
	host, _ := os.Hostname()
	self := names.Entry{Addrs: d.addrs}
	if host != "" {
		self.Name = config.SuggestName(host)
	}
	if d.cfg.Mesh != nil {
		self.Name = d.cfg.Mesh.Name // as the members know it
	}
	var peers []names.Entry
	for _, p := range d.peers {
		peers = append(peers, names.Entry{Name: p.name, Addrs: p.addrs})
	}
	return names.NewTable(self, peers)
}

// meshDNS answers the mesh's names on this node's mesh IPv4 address, port
// 53: in kernel mode on the host, where systemd-resolved is told to ask it;
// in userspace mode inside the stack, for the peers. A port that cannot be
// had is worth a warning, not the tunnel: the node runs on without names.
type meshDNS struct {
	d        *Daemon
	dev      *device
	srv      *names.Server
	resolved *names.Resolved // registered with systemd-resolved
}

func (c *meshDNS) Start(ctx context.Context) error {
	addr := netip.AddrPortFrom(c.d.addrs.IPv4, 53)
	pc, ln, err := c.listen(addr)
	if err != nil {
		c.d.log.Warn("mesh DNS not served: names resolve only in SOCKS5, forwards and nc", "addr", addr, "err", err)
		return nil
	}
	h := names.NewHandler(c.d.names.Load)
	h.Forward = c.d.dnsForward
	if c.srv, err = names.Serve(h, pc, ln); err != nil {
		c.d.log.Warn("mesh DNS not served: names resolve only in SOCKS5, forwards and nc", "addr", addr, "err", err)
		return nil
	}
	c.d.log.Info("mesh DNS: answering NAME."+names.Domain, "addr", addr)
	if !c.d.opts.Userspace {
		c.register(ctx, addr.Addr())
	}
	return nil
}

// listen opens UDP and TCP port 53 on the mesh address: the host's sockets
// in kernel mode (the TUN holds the address by now), the stack's in
// userspace mode (which listen on its addresses, and only there).
func (c *meshDNS) listen(addr netip.AddrPort) (net.PacketConn, net.Listener, error) {
	if c.d.opts.Userspace {
		pc, err := c.dev.us.ListenUDP(addr.Port())
		if err != nil {
			return nil, nil, err
		}
		ln, err := c.dev.us.ListenTCP(addr.Port())
		if err != nil {
			pc.Close()
			return nil, nil, err
		}
		return pc, ln, nil
	}
	pc, err := net.ListenPacket("udp4", addr.String())
	if err != nil {
		return nil, nil, err
	}
	ln, err := net.Listen("tcp4", addr.String())
	if err != nil {
		pc.Close()
		return nil, nil, err
	}
	return pc, ln, nil
}

// register hands the server and the domains to systemd-resolved for the
// interface, so that the host's own lookups ('ssh pi') reach it.
func (c *meshDNS) register(ctx context.Context, server netip.Addr) {
	if !names.ResolvedRunning() {
		c.d.log.Info("systemd-resolved is not running: ask the mesh DNS directly, or see the README's Names section for resolv.conf",
			"server", server)
		return
	}
	r := &names.Resolved{Iface: c.d.dev.Name(), Server: server, All: c.d.exitInUse() != ""}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := r.Register(ctx); err != nil {
		c.d.log.Warn("systemd-resolved: could not register the mesh DNS; ask it directly", "server", server, "err", err)
		return
	}
	c.resolved = r
	c.d.log.Info(fmt.Sprintf("systemd-resolved: NAME and NAME.%s resolve on this host", names.Domain), "interface", r.Iface)
}

// routeAll re-registers the server with systemd-resolved for every name
// (while an exit node is in use) or for the mesh's alone; the caller
// holds routeMu.
func (c *meshDNS) routeAll(all bool) {
	if c.resolved == nil || c.resolved.All == all {
		return
	}
	c.resolved.All = all
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := c.resolved.Register(ctx); err != nil {
		c.d.log.Warn("systemd-resolved: could not change where names go", "all", all, "err", err)
	}
}

// Close takes the registration back (the interface's removal would too,
// but only after the server is gone) and stops the server.
func (c *meshDNS) Close() error {
	if c.resolved != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := c.resolved.Revert(ctx); err != nil {
			c.d.log.Warn("systemd-resolved: could not take back the mesh DNS", "err", err)
		}
	}
	if c.srv == nil {
		return nil
	}
	return c.srv.Close()
}
