package socks

import (
	"context"
	"errors"
	"net"
	"sync"
	"time"
)

// maxDatagram holds any UDP payload.
const maxDatagram = 64 << 10

// udpRelay relays datagrams between the clients of one packet conn (the
// local socket of a UDP forward, or the virtual-network socket of a UDP
// expose) and their targets. Each client address gets a session: a conn
// made with dial, whose replies go back to that client with WriteTo. A
// session ends after idle without a datagram either way.
//
// The run goroutine reads from pc and owns the session goroutines: it
// waits for them before it returns.
type udpRelay struct {
	f    *Forwarder
	name string
	pc   net.PacketConn
	dial func(context.Context) (net.Conn, error)
	idle time.Duration
	max  int
	wg   sync.WaitGroup

	mu       sync.Mutex
	sessions map[string]*udpSession // by client address; nil once shut down
}

type udpSession struct {
	client  net.Addr
	conn    net.Conn
	untrack func()
	last    time.Time // last datagram either way; guarded by udpRelay.mu
}

func (r *udpRelay) run() {
	defer r.shutdown()
	buf := make([]byte, maxDatagram)
	var pause time.Duration
	for {
		n, client, err := r.pc.ReadFrom(buf)
		if err != nil {
			if r.f.g.closing() || errors.Is(err, net.ErrClosed) {
				return
			}
			pause = backoff(pause)
			if r.f.warn.Allow() {
				r.f.log.Warn("forward: udp read", "forward", r.name, "err", err)
			}
			if !sleep(r.f.g.ctx, pause) {
				return
			}
			continue
		}
		pause = 0
		if s := r.session(client); s != nil {
			s.conn.Write(buf[:n]) // a datagram that cannot be sent is lost, as UDP may
		}
	}
}

// session returns the client's session, made on its first datagram; nil
// if the target cannot be reached or there are too many sessions.
func (r *udpRelay) session(client net.Addr) *udpSession {
	key := client.String()
	r.mu.Lock()
	s := r.sessions[key]
	if s != nil {
		s.last = time.Now()
	}
	full := len(r.sessions) >= r.max
	r.mu.Unlock()
	if s != nil {
		return s
	}
	if full {
		if r.f.warn.Allow() {
			r.f.log.Warn("forward: too many udp sessions, dropping datagrams of new clients", "forward", r.name, "max", r.max)
		}
		return nil
	}
	// Only this goroutine makes sessions, so none can appear meanwhile.
	ctx, cancel := context.WithTimeout(r.f.g.ctx, r.f.dialTimeout)
	conn, err := r.dial(ctx)
	cancel()
	if err != nil {
		if r.f.warn.Allow() {
			r.f.log.Warn("forward: cannot reach target", "forward", r.name, "client", key, "err", err)
		}
		return nil
	}
	// Tracked, so that Close also ends a Write blocked on it.
	untrack, ok := r.f.g.track(conn)
	if !ok {
		return nil
	}
	s = &udpSession{client: client, conn: conn, untrack: untrack, last: time.Now()}
	r.mu.Lock()
	r.sessions[key] = s
	r.mu.Unlock()
	r.wg.Add(1)
	go r.reply(key, s)
	r.f.log.Debug("forward: udp session", "forward", r.name, "client", key)
	return s
}

// reply sends the target's datagrams back to the client until the session
// is idle or its conn fails.
func (r *udpRelay) reply(key string, s *udpSession) {
	defer r.wg.Done()
	defer r.end(key, s)
	buf := make([]byte, maxDatagram)
	for {
		r.mu.Lock()
		deadline := s.last.Add(r.idle)
		r.mu.Unlock()
		s.conn.SetReadDeadline(deadline)
		n, err := s.conn.Read(buf)
		if err != nil {
			if isTimeout(err) && !r.expired(key, s) {
				continue // the client spoke meanwhile
			}
			return
		}
		r.mu.Lock()
		s.last = time.Now()
		r.mu.Unlock()
		r.pc.WriteTo(buf[:n], s.client)
	}
}

// expired removes the session if it has been idle long enough. Deciding
// under the lock that session also takes means a client's datagram either
// refreshes the session in time or finds it gone and makes a new one.
func (r *udpRelay) expired(key string, s *udpSession) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if time.Since(s.last) < r.idle {
		return false
	}
	if r.sessions[key] == s {
		delete(r.sessions, key)
	}
	return true
}

func (r *udpRelay) end(key string, s *udpSession) {
	r.mu.Lock()
	if r.sessions[key] == s {
		delete(r.sessions, key)
	}
	r.mu.Unlock()
	s.untrack()
	s.conn.Close()
	r.f.log.Debug("forward: udp session ended", "forward", r.name, "client", key)
}

// shutdown closes pc and every session and waits for their goroutines.
func (r *udpRelay) shutdown() {
	r.pc.Close()
	r.mu.Lock()
	sessions := r.sessions
	r.sessions = nil
	r.mu.Unlock()
	for _, s := range sessions {
		s.conn.Close()
	}
	r.wg.Wait()
}
