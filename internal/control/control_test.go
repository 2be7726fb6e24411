package control

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"testing"
)

type fakeBackend struct {
	routes   []Route
	echoAddr string
}

func (f *fakeBackend) Dial(ctx context.Context, host string, port uint16) (net.Conn, error) {
	if host != "echo" {
		return nil, fmt.Errorf("dial %s:%d: no such peer", host, port)
	}
	var d net.Dialer
	return d.DialContext(ctx, "tcp", f.echoAddr)
}

func (f *fakeBackend) Status(context.Context) (Status, error) {
	return Status{PeerID: "12D3Koo", Interface: "ms0", Mode: "kernel", Peers: []PeerStatus{{Name: "b", Connected: true}}}, nil
}
func (f *fakeBackend) Peers(context.Context) ([]SwarmPeer, error) {
	return []SwarmPeer{{ID: "x", VPN: true}}, nil
}
func (f *fakeBackend) Routes(context.Context) ([]Route, error) { return f.routes, nil }
func (f *fakeBackend) AddRoute(_ context.Context, r RouteRequest) (Route, error) {
	if r.Peer == "nobody" {
		return Route{}, errors.New(`no configured peer is named or has the ID "nobody"`)
	}
	rt := Route{Net: r.Net, PeerName: r.Peer}
	f.routes = append(f.routes, rt)
	return rt, nil
}
func (f *fakeBackend) DelRoute(_ context.Context, r RouteRequest) error {
	if !r.Persist {
		return errors.New("want persist")
	}
	f.routes = nil
	return nil
}

func (f *fakeBackend) Ping(_ context.Context, r PingRequest) (PingReply, error) {
	if r.Peer != "b" {
		return PingReply{}, Errorf(ErrNotFound, "no configured peer is named or has the ID %q", r.Peer)
	}
	return PingReply{Name: "b", Path: "relay", Relay: "r", Transport: "quic", RTTMillis: 12.5}, nil
}

func serve(t *testing.T, path string, b ...*fakeBackend) {
	t.Helper()
	ln, err := Listen(path)
	if err != nil {
		t.Fatal(err)
	}
	fb := &fakeBackend{}
	if len(b) > 0 {
		fb = b[0]
	}
	srv := NewServer(fb)
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Shutdown(context.Background()) })
}

func TestAPIRoundTrip(t *testing.T) {
	path := socketIn(t, "ms0.sock")
	serve(t, path)
	st, err := os.Stat(path)
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("socket mode %v %v", st.Mode(), err)
	}
	ctx := context.Background()
	c := NewClient("ms0", path)
	s, err := c.Status(ctx)
	if err != nil || s.PeerID != "12D3Koo" || len(s.Peers) != 1 || !s.Peers[0].Connected {
		t.Fatalf("status %+v %v", s, err)
	}
	if p, err := c.Peers(ctx); err != nil || len(p) != 1 || !p[0].VPN {
		t.Fatalf("peers %+v %v", p, err)
	}
	if _, err := c.AddRoute(ctx, RouteRequest{Net: "10.0.0.0/24", Peer: "b"}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.AddRoute(ctx, RouteRequest{Net: "10.0.0.0/24", Peer: "nobody"}); err == nil || !strings.Contains(err.Error(), `named or has the ID "nobody"`) {
		t.Fatalf("error not passed through: %v", err)
	}
	if r, err := c.Routes(ctx); err != nil || len(r) != 1 || r[0].Net != "10.0.0.0/24" {
		t.Fatalf("routes %+v %v", r, err)
	}
	if err := c.DelRoute(ctx, RouteRequest{Net: "10.0.0.0/24", Persist: true}); err != nil {
		t.Fatal(err)
	}
	want := PingReply{Name: "b", Path: "relay", Relay: "r", Transport: "quic", RTTMillis: 12.5}
	if p, err := c.Ping(ctx, PingRequest{Peer: "b", TimeoutMillis: 1000}); err != nil || p != want {
		t.Fatalf("ping %+v %v", p, err)
	}
}

func TestSecondDaemonRefused(t *testing.T) {
	path := socketIn(t, "ms0.sock")
	serve(t, path)
	if _, err := Listen(path); !errors.Is(err, ErrRunning) || !strings.Contains(err.Error(), "a mynetwork daemon is already running on "+path) {
		t.Fatalf("got %v", err)
	}
}

func TestStaleSocketReplaced(t *testing.T) {
	path := socketIn(t, "ms0.sock")
	ln, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	ln.(*net.UnixListener).SetUnlinkOnClose(false)
	ln.Close() // leaves the file, like a crashed daemon
	if _, err := os.Stat(path); err != nil {
		t.Fatal("setup: socket file gone")
	}
	serve(t, path)
	if _, err := NewClient("ms0", path).Status(context.Background()); err != nil {
		t.Fatal(err)
	}
}

func TestNoDaemon(t *testing.T) {
	path := socketIn(t, "ms9.sock")
	_, err := NewClient("ms9", path).Status(context.Background())
	if !errors.Is(err, ErrNoDaemon) || !strings.Contains(err.Error(), "no mynetwork daemon is running on interface ms9") {
		t.Fatalf("got %v", err)
	}
}

func TestDialPipesBytesWithHalfClose(t *testing.T) {
	echo, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer echo.Close()
	go func() {
		for {
			c, err := echo.Accept()
			if err != nil {
				return
			}
			go func() { io.Copy(c, c); c.Close() }()
		}
	}()
	path := socketIn(t, "ms0.sock")
	serve(t, path, &fakeBackend{echoAddr: echo.Addr().String()})
	c := NewClient("ms0", path)
	conn, err := c.Dial(context.Background(), "echo", 7)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	msg := strings.Repeat("over the mesh ", 10000)
	go func() {
		io.WriteString(conn, msg)
		conn.(interface{ CloseWrite() error }).CloseWrite()
	}()
	got, err := io.ReadAll(conn)
	if err != nil || string(got) != msg {
		t.Fatalf("echo returned %d bytes, want %d (%v)", len(got), len(msg), err)
	}
	if _, err := c.Dial(context.Background(), "ms9", 22); err == nil || err.Error() != "dial ms9:22: no such peer" {
		t.Fatalf("failed dial: %v", err)
	}
}
