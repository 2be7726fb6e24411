package daemon

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"

	"github.com/mynetwork/mynetwork/config"
	"github.com/mynetwork/mynetwork/internal/control"
	"github.com/mynetwork/mynetwork/netstack"
	"github.com/mynetwork/mynetwork/socks"
)

// userspaceBackend is the in-process gVisor stack. Routes need no system
// change: the stack hands every packet to the engine, whose table decides.
type userspaceBackend struct {
	*netstack.Stack
	name string
}

// newUserspaceBackend makes the stack with the given MTU, or 0 for
// config.MaxMTU, and TCP segmentation offload: packets ride a reliable
// stream, and gVisor's TCP moves up to 64 KiB at a time either way.
func newUserspaceBackend(name string, a config.Addresses, mtu int) (*userspaceBackend, error) {
	if mtu == 0 {
		mtu = config.MaxMTU
	}
	st, err := netstack.New(netstack.Config{IPv4: a.IPv4, IPv6: a.IPv6, MTU: mtu, Offload: true})
	if err != nil {
		return nil, fmt.Errorf("userspace network stack: %w", err)
	}
	return &userspaceBackend{Stack: st, name: name}, nil
}

func (b *userspaceBackend) Name() string                { return b.name }
func (b *userspaceBackend) Mode() string                { return "userspace" }
func (b *userspaceBackend) AddRoute(netip.Prefix) error { return nil }
func (b *userspaceBackend) DelRoute(netip.Prefix) error { return nil }
func (b *userspaceBackend) dial(ctx context.Context, network, address string) (net.Conn, error) {
	return b.DialContext(ctx, network, address)
}

// userspaceSettings are the userspace section merged with the flags.
type userspaceSettings struct {
	socks5             string // "" when off
	username, password string
	forwards           []socks.Forward
	exposes            []socks.Expose
}

// userspaceSettings merges the config's userspace section with the flags:
// --socks5 replaces the address, --forward and --expose add rules.
func (d *Daemon) userspaceSettings() (userspaceSettings, error) {
	var s userspaceSettings
	u := d.cfg.Userspace
	if u == nil {
		u = &config.Userspace{}
	}
	s.socks5 = u.SOCKS5
	if d.opts.SOCKS5 != "" {
		s.socks5 = d.opts.SOCKS5
	}
	switch s.socks5 {
	case "":
		s.socks5 = config.DefaultSOCKS5
	case "off":
		s.socks5 = ""
	default:
		if _, err := netip.ParseAddrPort(s.socks5); err != nil {
			return s, fmt.Errorf("--socks5 %q: want IP:PORT or off", s.socks5)
		}
	}
	s.username, s.password = u.SOCKS5Username, u.SOCKS5Password
	for _, f := range u.Forwards {
		s.forwards = append(s.forwards, socks.Forward{Network: protoOr(f.Proto), Listen: f.Listen, Target: f.To})
	}
	for _, e := range u.Exposes {
		s.exposes = append(s.exposes, socks.Expose{Network: protoOr(e.Proto), Port: e.Port, Target: e.To})
	}
	for _, f := range d.opts.Forwards {
		fw, err := socks.ParseForward(f)
		if err != nil {
			return s, err
		}
		s.forwards = append(s.forwards, fw)
	}
	for _, e := range d.opts.Exposes {
		ex, err := socks.ParseExpose(e)
		if err != nil {
			return s, err
		}
		s.exposes = append(s.exposes, ex)
	}
	return s, nil
}

func protoOr(p string) string {
	if p == "" {
		return "tcp"
	}
	return p
}

// onMesh reports whether an address is this mesh's to reach: a peer's mesh
// address or a network routed to a peer. SOCKS5 refuses everything else.
func (d *Daemon) onMesh(a netip.Addr) bool {
	_, ok := d.eng.Table().Lookup(a.Unmap())
	return ok
}

// startUserspace starts the SOCKS5 proxy, the forwards and the exposes; the
// returned function stops them. Listening errors (an address in use) come
// back here, at start.
func (d *Daemon) startUserspace(st *userspaceBackend, s userspaceSettings) (stop func(), err error) {
	var stops []func()
	stop = func() {
		for i := len(stops) - 1; i >= 0; i-- {
			stops[i]()
		}
	}
	defer func() {
		if err != nil {
			stop()
		}
	}()
	if s.socks5 != "" {
		srv, err := socks.NewServer(socks.ServerConfig{
			Dial: st.DialContext, Resolve: d.resolve, Allowed: d.onMesh,
			Username: s.username, Password: s.password, Log: d.log,
		})
		if err != nil {
			return stop, err
		}
		ln, err := net.Listen("tcp", s.socks5)
		if err != nil {
			return stop, fmt.Errorf("SOCKS5 proxy on %s: %w (choose another with --socks5 ADDR, or --socks5 off)", s.socks5, err)
		}
		done := make(chan struct{})
		go func() {
			defer close(done)
			if err := srv.Serve(ln); err != nil && !errors.Is(err, socks.ErrServerClosed) {
				d.log.Error("SOCKS5 proxy stopped", "err", err)
			}
		}()
		stops = append(stops, func() { srv.Close(); <-done })
	}
	fw, err := socks.NewForwarder(socks.ForwarderConfig{
		Dial: st.DialContext, Resolve: d.resolve,
		ListenTCP: st.ListenTCP, ListenUDP: st.ListenUDP, Log: d.log,
	})
	if err != nil {
		return stop, err
	}
	stops = append(stops, func() { fw.Close() })
	for _, f := range s.forwards {
		if err := fw.StartForward(f); err != nil {
			return stop, err
		}
	}
	for _, e := range s.exposes {
		if err := fw.StartExpose(e); err != nil {
			return stop, err
		}
	}
	return stop, nil
}

// userspaceStatus renders the userspace settings for the status API.
func (s userspaceSettings) status() *control.Userspace {
	u := &control.Userspace{SOCKS5: s.socks5}
	if u.SOCKS5 == "" {
		u.SOCKS5 = "off"
	}
	for _, f := range s.forwards {
		u.Forwards = append(u.Forwards, fmt.Sprintf("%s %s → %s", f.Network, f.Listen, f.Target))
	}
	for _, e := range s.exposes {
		u.Exposes = append(u.Exposes, fmt.Sprintf("%s %s → %s", e.Network, strconv.Itoa(int(e.Port)), e.Target))
	}
	return u
}
