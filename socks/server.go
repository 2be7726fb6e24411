package socks

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"time"

	"github.com/armon/go-socks5"

	"github.com/mynetwork/mynetwork/internal/pipe"
	"github.com/mynetwork/mynetwork/internal/ratelimit"
)

// ServerConfig configures the SOCKS5 server.
type ServerConfig struct {
	// Dial connects to a literal IP:port on the virtual network. Required.
	Dial DialFunc
	// Resolve is used for socks5h names (ATYP=domain); e.g. "ms1" and
	// "ms1.mynetwork" → that peer's IP. An unknown name gets the reply
	// "host unreachable" (0x04). Required.
	Resolve Resolver
	// Allowed reports the destinations that may be reached; others get the
	// reply "connection not allowed by ruleset" (0x02), so that the server
	// is not an open proxy. Required.
	Allowed func(netip.Addr) bool
	// Username and Password are optional; when set, username/password
	// authentication (RFC 1929) is required. Set both or neither.
	Username, Password string
	// MaxConns bounds the connections in flight; 0 means 1024. Beyond it,
	// new clients are closed at once.
	MaxConns int
	// Log receives the server's messages; nil means slog.Default().
	Log *slog.Logger
}

// Server is a SOCKS5 proxy into the virtual network, built on
// github.com/armon/go-socks5. It serves CONNECT only; BIND and UDP
// ASSOCIATE get "command not supported" (0x07).
//
// UDP ASSOCIATE is not offered because go-socks5 cannot: once its RuleSet
// allows the command it replies 0x07 (handleAssociate is a TODO), and it
// has no hook for commands. Its dispatch (handleRequest) is unexported and
// runs inside ServeConn, after authentication, on a bufio.Reader of its
// own, so a caller can neither add a command nor take the connection back.
// The one way in would be a hijack: the config is built per connection, so
// a RuleSet could take an ASSOCIATE over inside Allow (the request has been
// read whole, and the client sends nothing more on TCP), write the reply
// itself, relay until the control connection ends and return false —
// leaning on go-socks5's call order, which is why it is not done. Done
// properly (in a SOCKS5 front end of our own, or a fork) it takes, per
// association: a UDP socket next to the listener, announced in the reply;
// datagrams taken only from the client's address; the SOCKS UDP header
// (RSV, FRAG, ATYP, DST.ADDR, DST.PORT) parsed and built on every datagram,
// fragments (FRAG≠0) dropped; Resolve and Allowed applied per destination;
// a dialed UDP conn per destination with idle expiry, as in a UDP
// [Forward]; and the end of the association with its TCP connection. Few
// clients use it (curl and browsers do not); a UDP [Forward] serves the
// common cases.
type Server struct {
	cfg      ServerConfig
	log      *slog.Logger
	auth     []socks5.Authenticator
	resolver nameResolver
	rules    ruleSet
	sem      chan struct{}
	g        *group
	warn     ratelimit.Every

	// handshakeTimeout bounds the SOCKS handshake (greeting, authentication
	// and request), so that silent clients do not hold a slot; dialTimeout
	// bounds the dial; idleTimeout closes a connection that carries nothing
	// either way (defaultIdleTimeout). Tests shorten them.
	handshakeTimeout time.Duration
	dialTimeout      time.Duration
	idleTimeout      time.Duration
}

// NewServer checks cfg (Dial, Resolve and Allowed are required) and
// returns a server; it starts nothing.
func NewServer(cfg ServerConfig) (*Server, error) {
	switch {
	case cfg.Dial == nil:
		return nil, errors.New("socks: ServerConfig.Dial is required")
	case cfg.Resolve == nil:
		return nil, errors.New("socks: ServerConfig.Resolve is required")
	case cfg.Allowed == nil:
		return nil, errors.New("socks: ServerConfig.Allowed is required")
	case cfg.MaxConns < 0:
		return nil, fmt.Errorf("socks: ServerConfig.MaxConns is %d, want 0 or more", cfg.MaxConns)
	case (cfg.Username == "") != (cfg.Password == ""):
		return nil, errors.New("socks: set both the username and the password, or neither")
	case len(cfg.Username) > 255 || len(cfg.Password) > 255:
		return nil, errors.New("socks: the username and the password must be at most 255 bytes each")
	}
	maxConns := cfg.MaxConns
	if maxConns == 0 {
		maxConns = defaultMaxConns
	}
	s := &Server{
		cfg:              cfg,
		log:              orDefault(cfg.Log),
		resolver:         nameResolver(cfg.Resolve),
		rules:            ruleSet(cfg.Allowed),
		sem:              make(chan struct{}, maxConns),
		g:                newGroup(),
		warn:             ratelimit.Every{Interval: warnInterval},
		handshakeTimeout: 30 * time.Second,
		dialTimeout:      dialTimeout,
		idleTimeout:      defaultIdleTimeout,
	}
	if cfg.Username != "" {
		creds := socks5.StaticCredentials{cfg.Username: cfg.Password}
		s.auth = []socks5.Authenticator{socks5.UserPassAuthenticator{Credentials: creds}}
	} else {
		s.auth = []socks5.Authenticator{socks5.NoAuthAuthenticator{}}
	}
	return s, nil
}

// Serve accepts clients on ln until Close and closes ln when it returns.
// It returns ErrServerClosed after Close, or the error that stopped
// accepting. Serve may run on several listeners at once.
func (s *Server) Serve(ln net.Listener) error {
	if !s.g.add() {
		ln.Close()
		return ErrServerClosed
	}
	defer s.g.done()
	untrack, ok := s.g.track(ln)
	if !ok {
		return ErrServerClosed
	}
	defer untrack()
	defer ln.Close()
	s.log.Info("socks: serving", "addr", ln.Addr().String(), "auth", s.cfg.Username != "")

	var pause time.Duration
	for {
		c, err := ln.Accept()
		if err != nil {
			if s.g.closing() {
				return ErrServerClosed
			}
			if temporary(err) {
				pause = backoff(pause)
				s.log.Warn("socks: accept", "err", err, "retry_in", pause)
				if !sleep(s.g.ctx, pause) {
					return ErrServerClosed
				}
				continue
			}
			return fmt.Errorf("socks: accept: %w", err)
		}
		pause = 0
		select {
		case s.sem <- struct{}{}:
		default:
			c.Close()
			if s.warn.Allow() {
				s.log.Warn("socks: too many connections, closing new clients", "max", cap(s.sem))
			}
			continue
		}
		if !s.g.spawn(func() {
			defer func() { <-s.sem }()
			s.serveConn(c)
		}) {
			<-s.sem
			c.Close()
			return ErrServerClosed
		}
	}
}

// Close closes the listeners and the connections in flight and waits for
// every goroutine of the server, including Serve. It may be called more
// than once.
func (s *Server) Close() error {
	s.g.close()
	return nil
}

// discard is go-socks5's log target: serveConn logs the error ServeConn
// returns, which says the same.
var discard = log.New(io.Discard, "", 0)

// serveConn runs go-socks5 on one client. It builds a go-socks5 server per
// connection (cheap: a config and a map) so that the dial function knows
// its client: it lifts the handshake deadline and records the target
// connection, which serveConn closes and waits for.
func (s *Server) serveConn(c net.Conn) {
	client := newOwnedConn(c, nil)
	untrack, ok := s.g.track(client)
	if !ok {
		return
	}
	defer untrack()
	client.SetDeadline(time.Now().Add(s.handshakeTimeout))

	// Set by dial, which runs inside ServeConn below. The target is tracked
	// too: closing the client alone does not stop go-socks5 while both of
	// its goroutines wait on a target that neither reads nor writes.
	var (
		target        *ownedConn
		untrackTarget func()
		targetMu      sync.Mutex // target, for the idle timer's goroutine
	)
	// Both conns report their reads; when neither has read for
	// idleTimeout, both are closed, which ends go-socks5's copying.
	idle := pipe.NewIdleTimer(s.idleTimeout, func() {
		client.Close()
		targetMu.Lock()
		defer targetMu.Unlock()
		if target != nil {
			target.Close()
		}
	})
	defer idle.Stop()
	client.idle = idle // before any read
	conf := &socks5.Config{
		AuthMethods: s.auth,
		Resolver:    s.resolver,
		Rules:       s.rules,
		Logger:      discard,
		Dial: func(ctx context.Context, network, addr string) (net.Conn, error) {
			t, err := s.dial(ctx, network, addr)
			client.SetDeadline(time.Time{})
			if err != nil {
				return nil, err
			}
			o := newOwnedConn(t, idle)
			untrack, ok := s.g.track(o)
			if !ok {
				return nil, ErrServerClosed
			}
			targetMu.Lock()
			target, untrackTarget = o, untrack
			targetMu.Unlock()
			return o, nil
		},
	}
	srv, err := socks5.New(conf)
	if err == nil {
		err = srv.ServeConn(client)
	}
	client.Close()
	if target != nil {
		untrackTarget()
		target.Close()
		target.wait()
	}
	client.wait()
	if err != nil {
		s.log.Debug("socks: connection ended", "client", c.RemoteAddr().String(), "err", err)
	}
}

// dial dials through cfg.Dial within dialTimeout; Close cancels it.
// go-socks5 passes a context derived from context.Background.
func (s *Server) dial(ctx context.Context, network, addr string) (net.Conn, error) {
	ctx, cancel := context.WithTimeout(ctx, s.dialTimeout)
	defer cancel()
	stop := context.AfterFunc(s.g.ctx, cancel)
	defer stop()
	return s.cfg.Dial(ctx, network, addr)
}

// nameResolver is a go-socks5 NameResolver over a Resolver. An error makes
// go-socks5 reply "host unreachable" (0x04).
type nameResolver Resolver

func (r nameResolver) Resolve(ctx context.Context, name string) (context.Context, net.IP, error) {
	ip, ok := resolve(Resolver(r), name)
	if !ok {
		return ctx, nil, fmt.Errorf("unknown name %q", name)
	}
	return ctx, ip.AsSlice(), nil
}

// ruleSet is a go-socks5 RuleSet over ServerConfig.Allowed: a CONNECT to a
// destination that is not allowed gets "connection not allowed by ruleset"
// (0x02). BIND and ASSOCIATE pass, so that go-socks5 answers them with
// "command not supported" (0x07), which is the truth.
type ruleSet func(netip.Addr) bool

func (allowed ruleSet) Allow(ctx context.Context, req *socks5.Request) (context.Context, bool) {
	if req.Command != socks5.ConnectCommand {
		return ctx, true
	}
	ip, ok := netip.AddrFromSlice(req.DestAddr.IP)
	return ctx, ok && allowed(ip.Unmap())
}
