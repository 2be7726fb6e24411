package control

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"testing"
)

// failing is a backend whose every call fails with err.
type failing struct{ err error }

func (f failing) Status(context.Context) (Status, error)                { return Status{}, f.err }
func (f failing) Peers(context.Context) ([]SwarmPeer, error)            { return nil, f.err }
func (f failing) Routes(context.Context) ([]Route, error)               { return nil, f.err }
func (f failing) AddRoute(context.Context, RouteRequest) (Route, error) { return Route{}, f.err }
func (f failing) DelRoute(context.Context, RouteRequest) error          { return f.err }
func (f failing) Dial(context.Context, string, uint16) (net.Conn, error) {
	return nil, f.err
}
func (f failing) Ping(context.Context, PingRequest) (PingReply, error) { return PingReply{}, f.err }

// serveFailing serves failing{err} on a new socket and returns its path.
func serveFailing(t *testing.T, err error) string {
	t.Helper()
	path := socketIn(t, "ms0.sock")
	ln, lerr := Listen(path)
	if lerr != nil {
		t.Fatal(lerr)
	}
	srv := NewServer(failing{err})
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Shutdown(context.Background()) })
	return path
}

// rawAnswer sends a request on the socket at path with plain net/http and
// returns the status code and the body's error message.
func rawAnswer(t *testing.T, path, method, target, body string) (int, string) {
	t.Helper()
	hc := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "unix", path)
	}}}
	defer hc.CloseIdleConnections()
	req, err := http.NewRequest(method, "http://mynetwork"+target, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var e apiError
	if err := json.NewDecoder(resp.Body).Decode(&e); err != nil {
		t.Fatalf("%s %s: body not {\"error\": ...}: %v", method, target, err)
	}
	return resp.StatusCode, e.Error
}

// Calls of the Client, one per endpoint, for TestErrorStatusCodes.
var (
	callStatus = func(c *Client) error { _, err := c.Status(context.Background()); return err }
	callAdd    = func(c *Client) error {
		_, err := c.AddRoute(context.Background(), RouteRequest{Net: "10.0.0.0/24", Peer: "b"})
		return err
	}
	callDel  = func(c *Client) error { return c.DelRoute(context.Background(), RouteRequest{Net: "10.0.0.0/24"}) }
	callDial = func(c *Client) error {
		conn, err := c.Dial(context.Background(), "ms9", 22)
		if conn != nil {
			conn.Close()
		}
		return err
	}
	callPing = func(c *Client) error { _, err := c.Ping(context.Background(), PingRequest{Peer: "ms9"}); return err }
)

// TestErrorStatusCodes: each kind of error reaches its status code through
// the server on a Unix socket, with its message in the JSON body, and the
// Client gives back the message alone, of the same kind.
func TestErrorStatusCodes(t *testing.T) {
	notFound := Errorf(ErrNotFound, "route %s: no such route", "10.0.0.0/24")
	for _, tc := range []struct {
		name           string
		err            error // the backend's
		method, target string
		body           string
		code           int
		msg            string
		call           func(*Client) error // the same through the Client; nil: it cannot send the request
		kind           error               // the Client's error is of it; nil: of none
	}{
		{"bad request", Errorf(ErrBadRequest, `"x" is not a CIDR`), "DELETE", "/v1/routes?net=x", "", 400, `"x" is not a CIDR`, callDel, ErrBadRequest},
		{"bad body", nil, "POST", "/v1/routes", `{"net":`, 400, "bad request body: unexpected EOF", nil, nil},
		{"not found", notFound, "DELETE", "/v1/routes?net=10.0.0.0%2F24", "", 404, "route 10.0.0.0/24: no such route", callDel, ErrNotFound},
		{"kind wrapped again", fmt.Errorf("persist: %w", notFound), "POST", "/v1/routes", `{"net":"10.0.0.0/24","peer":"b"}`, 404, "persist: route 10.0.0.0/24: no such route", callAdd, ErrNotFound},
		{"conflict", Errorf(ErrConflict, "10.0.0.0/24 is already routed to b"), "POST", "/v1/routes", `{"net":"10.0.0.0/24","peer":"c"}`, 409, "10.0.0.0/24 is already routed to b", callAdd, ErrConflict},
		{"no kind", errors.New("persist: permission denied"), "GET", "/v1/status", "", 500, "persist: permission denied", callStatus, ErrInternal},
		{"dial arguments", nil, "GET", "/v1/dial?host=b", "", 400, "dial needs a host and a port (1-65535)", nil, nil},
		{"dial to no peer", Errorf(ErrNotFound, "dial ms9:22: no such peer"), "GET", "/v1/dial?host=ms9&port=22", "", 404, "dial ms9:22: no such peer", callDial, ErrNotFound},
		{"dial failed on the mesh", errors.New("dial tcp 100.64.0.2:22: connection refused"), "GET", "/v1/dial?host=b&port=22", "", 502, "dial tcp 100.64.0.2:22: connection refused", callDial, ErrMesh},
		{"ping of no peer", Errorf(ErrNotFound, `no configured peer is named or has the ID "ms9"`), "POST", "/v1/ping", `{"peer":"ms9"}`, 404, `no configured peer is named or has the ID "ms9"`, callPing, ErrNotFound},
		{"ping unanswered", errors.New("ping over /ip4/10.0.0.2/tcp/8001: i/o timeout"), "POST", "/v1/ping", `{"peer":"b"}`, 502, "ping over /ip4/10.0.0.2/tcp/8001: i/o timeout", callPing, ErrMesh},
		{"ping bad body", nil, "POST", "/v1/ping", `[]`, 400, "bad request body: json: cannot unmarshal array into Go value of type control.PingRequest", nil, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := serveFailing(t, tc.err)
			if code, msg := rawAnswer(t, path, tc.method, tc.target, tc.body); code != tc.code || msg != tc.msg {
				t.Fatalf("answer %d %q, want %d %q", code, msg, tc.code, tc.msg)
			}
			if tc.call == nil {
				return
			}
			err := tc.call(NewClient("ms0", path))
			if err == nil || err.Error() != tc.msg {
				t.Fatalf("client: got %v, want %s", err, tc.msg)
			}
			for _, kind := range []error{ErrBadRequest, ErrNotFound, ErrConflict, ErrInternal, ErrMesh} {
				if is := errors.Is(err, kind); is != (kind == tc.kind) {
					t.Errorf("client: errors.Is(err, %v) = %v", kind, is)
				}
			}
		})
	}
}
