package control

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strconv"

	"github.com/mynetwork/mynetwork/internal/pipe"
)

// dialUpgrade names the protocol a /v1/dial request switches to: the
// connection then carries the raw bytes of a TCP connection on the mesh.
const dialUpgrade = "mynetwork-tcp"

// handleDial dials the target first, then switches the API connection to a
// raw byte pipe to it, so that the client learns of a failed dial as an
// ordinary error.
func (s *Server) handleDial(w http.ResponseWriter, r *http.Request) {
	host := r.URL.Query().Get("host")
	port, err := strconv.ParseUint(r.URL.Query().Get("port"), 10, 16)
	if host == "" || err != nil || port == 0 {
		fail(w, Errorf(ErrBadRequest, "dial needs a host and a port (1-65535)"))
		return
	}
	target, err := s.backend.Dial(r.Context(), host, uint16(port))
	if err != nil {
		// A dial error of no kind is the mesh's failure, not the daemon's.
		writeJSON(w, statusOf(err, http.StatusBadGateway), apiError{err.Error()})
		return
	}
	hj, ok := w.(http.Hijacker)
	if !ok {
		target.Close()
		fail(w, Errorf(ErrInternal, "connection cannot be switched"))
		return
	}
	conn, buf, err := hj.Hijack()
	if err != nil {
		target.Close()
		return
	}
	if !s.track(conn, target) {
		return
	}
	defer s.untrack(conn, target)
	fmt.Fprintf(buf, "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: %s\r\n\r\n", dialUpgrade)
	if err := buf.Flush(); err != nil {
		return
	}
	pipe.Join(&bufConn{Conn: conn, r: buf.Reader}, target)
}

// track registers a switched connection so Shutdown can close it; false if
// the server is already shutting down (and both are closed).
func (s *Server) track(cs ...net.Conn) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closing {
		for _, c := range cs {
			c.Close()
		}
		return false
	}
	for _, c := range cs {
		s.tunnels[c] = struct{}{}
	}
	s.wg.Add(1)
	return true
}

func (s *Server) untrack(cs ...net.Conn) {
	s.mu.Lock()
	for _, c := range cs {
		c.Close()
		delete(s.tunnels, c)
	}
	s.mu.Unlock()
	s.wg.Done()
}

// bufConn is a conn whose first bytes may already sit in a bufio.Reader.
type bufConn struct {
	net.Conn
	r *bufio.Reader
}

func (c *bufConn) Read(p []byte) (int, error) { return c.r.Read(p) }

func (c *bufConn) CloseWrite() error { return pipe.CloseWrite(c.Conn) }

// Dial asks the daemon to open a TCP connection to host:port on the mesh
// (host: a peer name, name.mynetwork, or an IP) and returns it.
func (c *Client) Dial(ctx context.Context, host string, port uint16) (net.Conn, error) {
	conn, err := c.dial(ctx)
	if err != nil {
		return nil, c.reachError(err)
	}
	q := url.Values{"host": {host}, "port": {strconv.Itoa(int(port))}}
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://mynetwork/v1/dial?"+q.Encode(), nil)
	req.Header.Set("Connection", "Upgrade")
	req.Header.Set("Upgrade", dialUpgrade)
	if err := req.Write(conn); err != nil {
		conn.Close()
		return nil, fmt.Errorf("dial %s:%d: %w", host, port, err)
	}
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, req)
	if err != nil {
		conn.Close()
		return nil, fmt.Errorf("dial %s:%d: %w", host, port, err)
	}
	if resp.StatusCode != http.StatusSwitchingProtocols {
		defer conn.Close()
		return nil, errorFrom(resp)
	}
	return &bufConn{Conn: conn, r: br}, nil
}
