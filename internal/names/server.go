package names

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"time"

	"github.com/miekg/dns"
	"golang.org/x/net/netutil"
)

// What a client can make the server hold. Over UDP only the answer: the
// server keeps nothing per client, and an answer is at most three records,
// so it amplifies little. Over TCP, a connection.
const (
	// MaxTCPConns is how many TCP connections are served at once; more
	// wait in the listen backlog. Resolvers use TCP only after a
	// truncated answer, which the mesh's short answers never are.
	MaxTCPConns = 16
	// TCPReadTimeout is how long a TCP client has to send each query, and
	// TCPWriteTimeout how long to take its answer.
	TCPReadTimeout  = 2 * time.Second
	TCPWriteTimeout = 2 * time.Second
	// TCPIdleTimeout closes a TCP connection that has answered and then
	// sends nothing more.
	TCPIdleTimeout = 8 * time.Second
	// MaxTCPQueries is how many queries one TCP connection may ask.
	MaxTCPQueries = 128
)

// Server serves a Handler on one UDP socket and one TCP listener.
type Server struct {
	servers []*dns.Server
	wg      sync.WaitGroup
	once    sync.Once
}

// Serve answers with h on pc (UDP) and ln (TCP) and returns once both are
// being served. The server owns pc and ln from here on, also on error.
func Serve(h dns.Handler, pc net.PacketConn, ln net.Listener) (*Server, error) {
	s := &Server{}
	udp := &dns.Server{PacketConn: pc, Handler: h}
	tcp := &dns.Server{
		Listener: netutil.LimitListener(ln, MaxTCPConns), Handler: h,
		ReadTimeout: TCPReadTimeout, WriteTimeout: TCPWriteTimeout, MaxTCPQueries: MaxTCPQueries,
		IdleTimeout: func() time.Duration { return TCPIdleTimeout },
	}
	for _, srv := range []*dns.Server{udp, tcp} {
		if err := s.start(srv); err != nil {
			s.Close()
			pc.Close()
			ln.Close()
			return nil, err
		}
	}
	return s, nil
}

// start serves srv and waits until it is serving, or has failed.
func (s *Server) start(srv *dns.Server) error {
	started, failed := make(chan struct{}), make(chan error, 1)
	srv.NotifyStartedFunc = func() { close(started) }
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		failed <- srv.ActivateAndServe()
	}()
	select {
	case <-started:
		s.servers = append(s.servers, srv)
		return nil
	case err := <-failed:
		return fmt.Errorf("serve DNS: %w", err)
	}
}

// Close stops serving, gives answers in flight a second to go out, and
// waits for the serving goroutines. It may be called more than once.
func (s *Server) Close() error {
	var errs []error
	s.once.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		for _, srv := range s.servers {
			errs = append(errs, srv.ShutdownContext(ctx))
		}
		s.wg.Wait()
	})
	return errors.Join(errs...)
}
