package control

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"syscall"
)

// ErrNoDaemon means nothing listens on the interface's control socket.
var ErrNoDaemon = errors.New("no mynetwork daemon is running")

// Client talks to one daemon over its Unix socket.
type Client struct {
	iface, path string
	hc          *http.Client
}

// NewClient returns a client for the daemon of iface at socket path. It
// talks only to a socket that belongs to the same user or to root.
func NewClient(iface, path string) *Client {
	c := &Client{iface: iface, path: path}
	tr := &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		return c.dial(ctx)
	}}
	c.hc = &http.Client{Transport: tr}
	return c
}

// untrusted is why a connected socket was refused (see checkSocket).
type untrusted struct{ err error }

func (u *untrusted) Error() string { return u.err.Error() }
func (u *untrusted) Unwrap() error { return u.err }

// dial connects to the daemon's socket and, before a byte is sent, checks
// that it is one the client may believe.
func (c *Client) dial(ctx context.Context) (net.Conn, error) {
	var d net.Dialer
	conn, err := d.DialContext(ctx, "unix", c.path)
	if err != nil {
		return nil, err
	}
	if err := checkSocket(c.path); err != nil {
		conn.Close()
		return nil, &untrusted{err}
	}
	return conn, nil
}

func (c *Client) do(ctx context.Context, method, path string, body, out any) error {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, "http://mynetwork"+path, rd)
	if err != nil {
		return err
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return c.reachError(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return errorFrom(resp)
	}
	if out == nil {
		return nil
	}
	return json.NewDecoder(resp.Body).Decode(out)
}

func (c *Client) reachError(err error) error {
	var u *untrusted
	if errors.As(err, &u) {
		return u.err
	}
	if errors.Is(err, syscall.ENOENT) || errors.Is(err, syscall.ECONNREFUSED) {
		return fmt.Errorf("%w on interface %s (no socket at %s; start one with 'mynetwork up -i %s')", ErrNoDaemon, c.iface, c.path, c.iface)
	}
	if errors.Is(err, syscall.EACCES) {
		return fmt.Errorf("cannot reach the daemon of %s at %s: permission denied (run as the user who started it, or with sudo)", c.iface, c.path)
	}
	return fmt.Errorf("reach the daemon of %s: %w", c.iface, err)
}

// Status fetches the daemon's status.
func (c *Client) Status(ctx context.Context) (Status, error) {
	var s Status
	return s, c.do(ctx, http.MethodGet, "/v1/status", nil, &s)
}

// Peers fetches the connected libp2p peers.
func (c *Client) Peers(ctx context.Context) ([]SwarmPeer, error) {
	var p []SwarmPeer
	return p, c.do(ctx, http.MethodGet, "/v1/peers", nil, &p)
}

// Routes fetches the route table.
func (c *Client) Routes(ctx context.Context) ([]Route, error) {
	var r []Route
	return r, c.do(ctx, http.MethodGet, "/v1/routes", nil, &r)
}

// AddRoute adds a route at run time.
func (c *Client) AddRoute(ctx context.Context, req RouteRequest) (Route, error) {
	var r Route
	return r, c.do(ctx, http.MethodPost, "/v1/routes", req, &r)
}

// DelRoute deletes a route at run time.
func (c *Client) DelRoute(ctx context.Context, req RouteRequest) error {
	q := url.Values{"net": {req.Net}}
	if req.Persist {
		q.Set("persist", "true")
	}
	return c.do(ctx, http.MethodDelete, "/v1/routes?"+q.Encode(), nil, nil)
}

var _ Backend = (*Client)(nil)
