package socks

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"time"

	"github.com/mynetwork/mynetwork/internal/pipe"
	"github.com/mynetwork/mynetwork/internal/ratelimit"
)

// Forward listens locally and connects each client through the dial
// function (TCP), or relays datagrams (UDP).
type Forward struct {
	Network string // "tcp" or "udp"
	Listen  string // local address, e.g. "127.0.0.1:2222"
	Target  string // "host:port" where host is a name (resolved with Resolve) or a literal IP
}

// Expose accepts on a listener of the virtual network and connects each
// connection to a local service.
type Expose struct {
	Network string // "tcp" or "udp"
	Port    uint16 // port on the virtual network
	Target  string // local address, e.g. "127.0.0.1:22"
}

// ForwarderConfig configures a Forwarder.
type ForwarderConfig struct {
	// Dial connects to a literal IP:port on the virtual network. Required.
	Dial DialFunc
	// Resolve maps the host of a Forward's target to an address; it is
	// asked again for each connection or UDP session, so a peer that
	// appears later is found. Required.
	Resolve Resolver
	// ListenTCP and ListenUDP listen on a port of the virtual network, for
	// exposes; an expose of a network whose function is nil fails.
	ListenTCP func(port uint16) (net.Listener, error)
	ListenUDP func(port uint16) (net.PacketConn, error)
	// LocalDial connects to an expose's local target; nil means a
	// net.Dialer.
	LocalDial DialFunc
	// MaxConns bounds, for each forward and expose on its own, the TCP
	// connections in flight (beyond it new clients are closed at once) or
	// the UDP sessions (beyond it datagrams from new clients are dropped);
	// 0 means 1024.
	MaxConns int
	// Log receives the forwarder's messages; nil means slog.Default().
	Log *slog.Logger
}

// Forwarder runs forwards and exposes until Close. Each rule has its own
// limit of connections or sessions (ForwarderConfig.MaxConns), and a TCP
// connection that carries nothing either way for 2 h 4 min is closed.
type Forwarder struct {
	cfg  ForwarderConfig
	log  *slog.Logger
	g    *group
	warn ratelimit.Every

	// Tests shorten these.
	dialTimeout time.Duration
	udpIdle     time.Duration
	tcpIdle     time.Duration

	mu     sync.Mutex
	bound  []net.Addr  // local addresses of the started forwards, in order
	relays []*udpRelay // the UDP forwards and exposes, in order
}

var errForwarderClosed = fmt.Errorf("socks: forwarder closed: %w", net.ErrClosed)

// NewForwarder checks cfg (Dial and Resolve are required) and returns a
// forwarder that runs nothing yet.
func NewForwarder(cfg ForwarderConfig) (*Forwarder, error) {
	switch {
	case cfg.Dial == nil:
		return nil, errors.New("socks: ForwarderConfig.Dial is required")
	case cfg.Resolve == nil:
		return nil, errors.New("socks: ForwarderConfig.Resolve is required")
	case cfg.MaxConns < 0:
		return nil, fmt.Errorf("socks: ForwarderConfig.MaxConns is %d, want 0 or more", cfg.MaxConns)
	}
	if cfg.LocalDial == nil {
		cfg.LocalDial = (&net.Dialer{}).DialContext
	}
	if cfg.MaxConns == 0 {
		cfg.MaxConns = defaultMaxConns
	}
	return &Forwarder{
		cfg:         cfg,
		log:         orDefault(cfg.Log),
		g:           newGroup(),
		warn:        ratelimit.Every{Interval: warnInterval},
		dialTimeout: dialTimeout,
		udpIdle:     udpIdleTimeout,
		tcpIdle:     defaultIdleTimeout,
	}, nil
}

// StartForward binds the local listener now, so that errors such as
// "address already in use" come back here, then serves in the background
// until Close.
func (f *Forwarder) StartForward(fw Forward) error {
	name := fmt.Sprintf("%s:%s=%s", fw.Network, fw.Listen, fw.Target)
	host, port, err := checkForward(fw)
	if err == nil && f.g.closing() {
		err = errForwarderClosed
	}
	if err != nil {
		return fmt.Errorf("forward %s: %w", name, err)
	}
	if _, ok := resolve(f.cfg.Resolve, host); !ok {
		f.log.Warn("forward: target host not known yet", "forward", name, "host", host)
	}
	dial := func(ctx context.Context) (net.Conn, error) {
		ip, ok := resolve(f.cfg.Resolve, host)
		if !ok {
			return nil, fmt.Errorf("unknown host %q", host)
		}
		return f.cfg.Dial(ctx, fw.Network, netip.AddrPortFrom(ip, port).String())
	}
	var addr net.Addr
	if fw.Network == "tcp" {
		var ln net.Listener
		if ln, err = net.Listen("tcp", fw.Listen); err == nil {
			addr = ln.Addr()
			err = f.startTCP(ln, name, dial)
		}
	} else {
		var pc net.PacketConn
		if pc, err = net.ListenPacket("udp", fw.Listen); err == nil {
			addr = pc.LocalAddr()
			err = f.startUDP(pc, name, dial)
		}
	}
	if err != nil {
		return fmt.Errorf("forward %s: %w", name, err)
	}
	f.mu.Lock()
	f.bound = append(f.bound, addr)
	f.mu.Unlock()
	f.log.Info("forwarding", "network", fw.Network, "listen", addr.String(), "target", fw.Target)
	return nil
}

// StartExpose listens on the port of the virtual network now, then serves
// in the background until Close.
func (f *Forwarder) StartExpose(e Expose) error {
	name := fmt.Sprintf("%s:%d=%s", e.Network, e.Port, e.Target)
	err := checkExpose(e)
	if err == nil && f.g.closing() {
		err = errForwarderClosed
	}
	if err != nil {
		return fmt.Errorf("expose %s: %w", name, err)
	}
	dial := func(ctx context.Context) (net.Conn, error) {
		return f.cfg.LocalDial(ctx, e.Network, e.Target)
	}
	switch {
	case e.Network == "tcp" && f.cfg.ListenTCP != nil:
		var ln net.Listener
		if ln, err = f.cfg.ListenTCP(e.Port); err == nil {
			err = f.startTCP(ln, name, dial)
		}
	case e.Network == "udp" && f.cfg.ListenUDP != nil:
		var pc net.PacketConn
		if pc, err = f.cfg.ListenUDP(e.Port); err == nil {
			err = f.startUDP(pc, name, dial)
		}
	default:
		err = fmt.Errorf("cannot listen on %s ports of the virtual network", e.Network)
	}
	if err != nil {
		return fmt.Errorf("expose %s: %w", name, err)
	}
	f.log.Info("exposing", "network", e.Network, "port", e.Port, "target", e.Target)
	return nil
}

// Close stops every forward and expose, closes their connections and
// waits for their goroutines. It may be called more than once.
func (f *Forwarder) Close() error {
	f.g.close()
	return nil
}

func checkForward(fw Forward) (host string, port uint16, err error) {
	if fw.Network != "tcp" && fw.Network != "udp" {
		return "", 0, fmt.Errorf("network %q, want tcp or udp", fw.Network)
	}
	if _, _, err := net.SplitHostPort(fw.Listen); err != nil {
		return "", 0, fmt.Errorf("listen address %q: want HOST:PORT", fw.Listen)
	}
	if msg := checkTarget(fw.Target); msg != "" {
		return "", 0, errors.New(msg)
	}
	host, p, _ := net.SplitHostPort(fw.Target)
	port, _ = parsePort(p)
	return host, port, nil
}

func checkExpose(e Expose) error {
	if e.Network != "tcp" && e.Network != "udp" {
		return fmt.Errorf("network %q, want tcp or udp", e.Network)
	}
	if e.Port == 0 {
		return errors.New("port 0, want 1 to 65535")
	}
	if msg := checkTarget(e.Target); msg != "" {
		return errors.New(msg)
	}
	return nil
}

// startTCP serves ln in the background: each client is connected with
// dial and piped to it, at most MaxConns at once.
func (f *Forwarder) startTCP(ln net.Listener, name string, dial func(context.Context) (net.Conn, error)) error {
	untrack, ok := f.g.track(ln)
	if !ok {
		return errForwarderClosed
	}
	sem := make(chan struct{}, f.cfg.MaxConns)
	if !f.g.spawn(func() {
		defer untrack()
		f.acceptTCP(ln, name, dial, sem)
	}) {
		untrack()
		ln.Close()
		return errForwarderClosed
	}
	return nil
}

func (f *Forwarder) acceptTCP(ln net.Listener, name string, dial func(context.Context) (net.Conn, error), sem chan struct{}) {
	defer ln.Close()
	var pause time.Duration
	for {
		c, err := ln.Accept()
		if err != nil {
			if f.g.closing() {
				return
			}
			if temporary(err) {
				pause = backoff(pause)
				f.log.Warn("forward: accept", "forward", name, "err", err, "retry_in", pause)
				if !sleep(f.g.ctx, pause) {
					return
				}
				continue
			}
			f.log.Error("forward stopped", "forward", name, "err", err)
			return
		}
		pause = 0
		select {
		case sem <- struct{}{}:
		default:
			c.Close()
			if f.warn.Allow() {
				f.log.Warn("forward: too many connections, closing new clients", "forward", name, "max", cap(sem))
			}
			continue
		}
		if !f.g.spawn(func() {
			defer func() { <-sem }()
			f.serveTCP(c, name, dial)
		}) {
			<-sem
			c.Close()
			return
		}
	}
}

// serveTCP connects client c to the target and pipes between them. If the
// target cannot be reached the client is reset, so that it sees a failure
// rather than an empty answer.
func (f *Forwarder) serveTCP(c net.Conn, name string, dial func(context.Context) (net.Conn, error)) {
	untrackC, ok := f.g.track(c)
	if !ok {
		return
	}
	defer untrackC()
	ctx, cancel := context.WithTimeout(f.g.ctx, f.dialTimeout)
	b, err := dial(ctx)
	cancel()
	if err != nil {
		if f.warn.Allow() {
			f.log.Warn("forward: cannot reach target", "forward", name, "client", c.RemoteAddr().String(), "err", err)
		}
		reset(c)
		return
	}
	untrackB, ok := f.g.track(b)
	if !ok {
		c.Close()
		return
	}
	defer untrackB()
	f.log.Debug("forward: connected", "forward", name, "client", c.RemoteAddr().String())
	pipe.JoinIdle(c, b, f.tcpIdle)
}

// reset closes c with a TCP RST where it can.
func reset(c net.Conn) {
	if l, ok := c.(interface{ SetLinger(int) error }); ok {
		l.SetLinger(0)
	}
	c.Close()
}

// startUDP relays datagrams between clients on pc and a conn per client
// made with dial, in the background.
func (f *Forwarder) startUDP(pc net.PacketConn, name string, dial func(context.Context) (net.Conn, error)) error {
	r := &udpRelay{
		f:        f,
		name:     name,
		pc:       pc,
		dial:     dial,
		idle:     f.udpIdle,
		max:      f.cfg.MaxConns,
		sessions: make(map[string]*udpSession),
	}
	untrack, ok := f.g.track(pc)
	if !ok {
		return errForwarderClosed
	}
	if !f.g.spawn(func() {
		defer untrack()
		r.run()
	}) {
		untrack()
		pc.Close()
		return errForwarderClosed
	}
	f.mu.Lock()
	f.relays = append(f.relays, r)
	f.mu.Unlock()
	return nil
}

// isTimeout reports a deadline that passed.
func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}
