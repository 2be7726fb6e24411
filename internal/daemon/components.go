package daemon

import (
	"context"
	"errors"
	"fmt"
	"net"

	"golang.org/x/sync/errgroup"

	"github.com/mynetwork/mynetwork/internal/control"
	"github.com/mynetwork/mynetwork/internal/engine"
	"github.com/mynetwork/mynetwork/p2p"
)

// component is one part of a running daemon. Start brings it up and returns;
// a part with a loop runs it under the daemon's errgroup. A Start that fails
// undoes its own half, so Close is only for parts whose Start succeeded.
type component interface {
	Start(ctx context.Context) error
	Close() error
}

// components lists the daemon's parts in start order; each may use those
// before it, so they close in reverse.
func (d *Daemon) components(loops *errgroup.Group) []component {
	table := d.initialTable() // the device routes its networks, the engine delivers by it
	sock := &controlSocket{path: d.opts.SocketPath, iface: d.opts.Interface}
	dev := &device{d: d, table: table}
	cs := []component{sock, dev, &libp2pNode{d: d}, &packetEngine{d: d, table: table, loops: loops}}
	if d.members != nil {
		cs = append(cs, &membersService{d: d})
	}
	// Always: an exit node set at run time is undone at the stop.
	cs = append(cs, &exitNode{d: d})
	if d.opts.Userspace {
		d.services = &userspaceServices{d: d, dev: dev}
		cs = append(cs, d.services)
	}
	// After the services: in userspace mode an expose of port 53 wins.
	d.dns = &meshDNS{d: d, dev: dev}
	cs = append(cs, d.dns)
	if d.metrics != nil {
		cs = append(cs, &metricsServer{d: d, loops: loops})
	}
	return append(cs, &controlAPI{d: d, sock: sock, loops: loops})
}

// start starts cs in order. If one fails, those already started are closed,
// so a failed start leaves nothing behind: no route, interface or socket.
func start(ctx context.Context, cs []component) error {
	for i, c := range cs {
		if err := c.Start(ctx); err != nil {
			closeAll(cs[:i])
			return err
		}
	}
	return nil
}

// closeAll closes cs in reverse order. Their errors go unreported: a part
// that fails to close cannot be helped, and the rest must close all the same.
func closeAll(cs []component) {
	for i := len(cs) - 1; i >= 0; i-- {
		cs[i].Close()
	}
}

// controlSocket is the control API's Unix socket, which doubles as the
// per-interface lock: a second daemon on the interface stops here.
type controlSocket struct {
	path, iface string
	ln          net.Listener
}

func (c *controlSocket) Start(context.Context) error {
	ln, err := control.Listen(c.path)
	if errors.Is(err, control.ErrRunning) {
		return fmt.Errorf("interface %s: %w", c.iface, err)
	}
	if err != nil {
		return err
	}
	c.ln = ln
	return nil
}

func (c *controlSocket) Close() error { return c.ln.Close() }

// device is the backend device with this node's addresses and a route for
// each network routed to a peer.
type device struct {
	d     *Daemon
	table *engine.Table
	us    *userspaceBackend // userspace mode: the stack its services run on
	uset  userspaceSettings // userspace mode
}

func (c *device) Start(context.Context) error {
	dev, err := c.open()
	if err != nil {
		return err
	}
	for _, pfx := range netsOf(c.table) {
		if err := dev.AddRoute(pfx); err != nil {
			dev.Close() // the routes added go with the interface
			return err
		}
	}
	c.d.dev = dev
	return nil
}

// open makes the mode's backend. Userspace mode settles its settings first,
// so that a bad flag fails before anything is made.
func (c *device) open() (backend, error) {
	d := c.d
	if !d.opts.Userspace {
		return newKernelBackend(d.opts.Interface, d.addrs, d.cfg.MTU)
	}
	var err error
	if c.uset, err = d.userspaceSettings(); err != nil {
		return nil, err
	}
	if c.us, err = newUserspaceBackend(d.opts.Interface, d.addrs, d.cfg.MTU); err != nil {
		return nil, err
	}
	return c.us, nil
}

// Close closes the device unless the engine took it over, in which case the
// engine has closed it already.
func (c *device) Close() error {
	if c.d.eng != nil {
		return nil
	}
	return c.d.dev.Close()
}

// libp2pNode is the libp2p host with its transport, peer discovery and the
// connections it keeps to the peers.
type libp2pNode struct{ d *Daemon }

func (c *libp2pNode) Start(ctx context.Context) error {
	popts, err := c.d.p2pOptions() // after the device: it says whether packets carry offload headers
	if err != nil {
		return err
	}
	node, err := p2p.New(popts)
	if err != nil {
		return err
	}
	if err := node.Start(ctx); err != nil {
		node.Close()
		return err
	}
	c.d.node = node
	return nil
}

func (c *libp2pNode) Close() error { return c.d.node.Close() }

// packetEngine moves packets between the device and the transport. From its
// start it owns both and closes them when its loop ends.
type packetEngine struct {
	d     *Daemon
	table *engine.Table
	loops *errgroup.Group
	stop  context.CancelFunc
	done  chan error // the loop's end, with the engine's error
}

func (c *packetEngine) Start(ctx context.Context) error {
	eng, err := engine.New(c.d.dev, c.d.node.Transport(), c.table, c.d.log)
	if err != nil {
		return err
	}
	c.d.eng = eng
	ctx, c.stop = context.WithCancel(ctx)
	c.done = make(chan error, 1)
	c.loops.Go(func() error {
		err := eng.Run(ctx)
		c.done <- err
		if ctx.Err() != nil {
			return nil // stopped, not failed: Close reports the error
		}
		return fmt.Errorf("packet engine stopped: %w", err)
	})
	return nil
}

// Close stops the loop and waits for it, so that the device and the
// transport are closed before the node is.
func (c *packetEngine) Close() error {
	c.stop()
	if err := <-c.done; err != nil {
		c.d.log.Error("packet engine", "err", err)
	}
	return nil
}

// userspaceServices are userspace mode's SOCKS5 proxy, forwards and exposes,
// on the device's stack.
type userspaceServices struct {
	d    *Daemon
	dev  *device
	stop func()
}

func (c *userspaceServices) Start(context.Context) error {
	stop, err := c.d.startUserspace(c.dev.us, c.dev.uset)
	if err != nil {
		return err
	}
	c.stop = stop
	c.d.userspace.Store(c.dev.uset.status())
	return nil
}

// reload moves the proxy, forwards and exposes to the settings of the
// config a reload installed. When they changed, the old services stop and
// the new start (the same addresses may be wanted again); if the new ones
// cannot start (an address in use), the old ones start again and the
// error says why. Connections through a forward or the proxy that stops
// end with it.
func (c *userspaceServices) reload() (changed bool, err error) {
	uset, err := c.d.userspaceSettings()
	if err != nil {
		return false, err
	}
	if uset.same(c.dev.uset) {
		return false, nil
	}
	c.stop()
	stop, err := c.d.startUserspace(c.dev.us, uset)
	if err != nil {
		c.stop = func() {}
		if back, err2 := c.d.startUserspace(c.dev.us, c.dev.uset); err2 == nil {
			c.stop = back
		}
		return false, err
	}
	c.stop, c.dev.uset = stop, uset
	c.d.userspace.Store(uset.status())
	return true, nil
}

func (c *userspaceServices) Close() error {
	c.stop()
	return nil
}

// controlAPI serves the CLI's requests on the control socket.
type controlAPI struct {
	d     *Daemon
	sock  *controlSocket
	loops *errgroup.Group
	http  httpLoop
}

func (c *controlAPI) Start(context.Context) error {
	c.http.srv = control.NewServer(c.d)
	c.http.serve(c.loops, c.sock.ln, "control API")
	return nil
}

// Close gives requests in flight 2 s to finish (httpLoop.shutdown).
func (c *controlAPI) Close() error { return c.http.shutdown() }
