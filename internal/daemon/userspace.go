package daemon

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
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
	username, password string // "" when the proxy is open
	credentials        string // the file that holds them: the config or the one the node made
	madeCredentials    bool   // the node made them on this start
	forwards           []socks.Forward
	exposes            []socks.Expose
}

// same says whether s and o run the same services.
func (s userspaceSettings) same(o userspaceSettings) bool {
	return s.socks5 == o.socks5 && s.username == o.username && s.password == o.password &&
		slices.Equal(s.forwards, o.forwards) && slices.Equal(s.exposes, o.exposes)
}

// userspaceSettings merges the config's userspace section with the flags:
// --socks5 replaces the address, --socks5-auth the authentication,
// --forward and --expose add rules.
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
	if s.socks5 != "" {
		if err := d.socks5Auth(&s, u); err != nil {
			return s, err
		}
	}
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

// socks5Auth settles how SOCKS5 clients log in: with the config's
// username and password, with ones the node made (the default), or not at
// all, which only a loopback address may be.
func (d *Daemon) socks5Auth(s *userspaceSettings, u *config.Userspace) error {
	auth, from := u.SOCKS5Auth, d.opts.ConfigPath+`: userspace.socks5Auth: "none"`
	if d.opts.SOCKS5Auth != "" {
		auth, from = d.opts.SOCKS5Auth, "--socks5-auth none"
	}
	switch {
	case auth == config.SOCKS5AuthNone:
		// Parsed by userspaceSettings.
		if err := config.CheckOpenSOCKS5(netip.MustParseAddrPort(s.socks5)); err != nil {
			return fmt.Errorf("%s: %w", from, err)
		}
		return nil
	case auth != "" && auth != config.SOCKS5AuthPassword:
		return fmt.Errorf("--socks5-auth %q: want password or none", auth)
	case u.SOCKS5Username != "":
		s.username, s.password, s.credentials = u.SOCKS5Username, u.SOCKS5Password, absPath(d.opts.ConfigPath)
		return nil
	}
	path := SOCKS5CredentialsPath(d.opts.ConfigPath)
	c, made, err := loadOrMakeSOCKS5Creds(path, d.log)
	if err != nil {
		return err
	}
	s.username, s.password, s.credentials, s.madeCredentials = c.Username, c.Password, absPath(path), made
	return nil
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
		d.logSOCKS5(s)
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

// logSOCKS5 tells how clients log in to the proxy. The password itself is
// not logged: logs reach more readers (journald, terminals, bug reports)
// than the 0600 file that holds it; 'mynetwork socks5-url' reads the file
// with the rights of whoever runs it.
func (d *Daemon) logSOCKS5(s userspaceSettings) {
	if s.username == "" {
		d.log.Warn("SOCKS5 proxy without authentication: every local user can reach the mesh as this node through it",
			"addr", s.socks5)
		return
	}
	msg := "SOCKS5 proxy: clients log in with the username and password in the credentials file; the command prints the proxy's URL with them"
	if s.madeCredentials {
		msg = "SOCKS5 proxy: made a username and password for its clients, kept in the credentials file; the command prints the proxy's URL with them"
	}
	d.log.Info(msg, "addr", s.socks5, "username", s.username, "credentials", s.credentials,
		"command", "mynetwork -i "+d.opts.Interface+" socks5-url")
}

// userspaceStatus renders the userspace settings for the status API.
func (s userspaceSettings) status() *control.Userspace {
	u := &control.Userspace{SOCKS5: s.socks5, SOCKS5Credentials: s.credentials}
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

// useExit: in userspace mode the engine's table alone sends the stack's
// traffic to the exit node (peersFor); the host's routing is not this
// node's.
func (*userspaceBackend) useExit(*Daemon) (func() error, error) {
	return func() error { return nil }, nil
}

// offerExit has the stack take peers' connections to addresses that
// are not its own and open them from the host: an exit node's clients'
// (the engine let through only theirs) and those to the networks this
// node serves (a subnet router). Undo stops taking new ones.
func (b *userspaceBackend) offerExit(d *Daemon) (func() error, error) {
	if err := b.Forward(d.forwardMatch, d.opts.forwardDial); err != nil {
		return nil, err
	}
	return func() error { return b.Forward(nil, nil) }, nil
}

// forwardMatch says whether the stack carries a connection to a on to
// the host: a network this node serves, or, on an exit node, anything
// outside the mesh. The engine has checked who sent it.
func (d *Daemon) forwardMatch(a netip.Addr) bool {
	for _, p := range d.eng.Table().Local() {
		if p.Contains(a) {
			return true
		}
	}
	return d.exit.offer && !config.MeshPrefix4.Contains(a) && !config.MeshPrefix6.Contains(a)
}
