package main

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"testing"
	"time"

	"github.com/mynetwork/mynetwork/internal/control"
)

// refusing is a daemon that refuses every route change and dial as the
// real one refuses these.
type refusing struct{ control.Backend }

func (refusing) AddRoute(_ context.Context, r control.RouteRequest) (control.Route, error) {
	return control.Route{}, control.Errorf(control.ErrConflict, "%s is already routed to b: delete it first with 'mynetwork route del %[1]s'", r.Net)
}

func (refusing) DelRoute(_ context.Context, r control.RouteRequest) error {
	return control.Errorf(control.ErrNotFound, "route %s: no such route", r.Net)
}

func (refusing) Dial(_ context.Context, host string, port uint16) (net.Conn, error) {
	return nil, errors.New("dial tcp 100.64.0.2:22: connection refused") // of no kind: 502
}

func (refusing) Ping(_ context.Context, r control.PingRequest) (control.PingReply, error) {
	return control.PingReply{}, control.Errorf(control.ErrNotFound, "ping %s: no configured peer is named or has the ID %[1]q", r.Peer)
}

// serveDaemon serves b on a control socket at sock until the test ends.
func serveDaemon(t *testing.T, sock string, b control.Backend) {
	t.Helper()
	ln, err := control.Listen(sock)
	if err != nil {
		t.Fatal(err)
	}
	srv := control.NewServer(b)
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Shutdown(context.Background()) })
}

// TestCLIPrintsTheDaemonsMessage: a refused command prints the daemon's
// message after "mynetwork: ", never the status it came with.
func TestCLIPrintsTheDaemonsMessage(t *testing.T) {
	t.Setenv("XDG_RUNTIME_DIR", t.TempDir()) // the socket's folder, unless root (/run/mynetwork); the command inherits it
	iface := fmt.Sprintf("mnt%x", rand.Uint32())
	sock, err := control.SocketPath(iface)
	if err != nil {
		t.Fatal(err)
	}
	serveDaemon(t, sock, refusing{})
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"route del", []string{"route", "del", "10.0.0.0/24"}, "mynetwork: route 10.0.0.0/24: no such route\n"},
		{"route add", []string{"route", "add", "10.0.0.0/24", "c"}, "mynetwork: 10.0.0.0/24 is already routed to b: delete it first with 'mynetwork route del 10.0.0.0/24'\n"},
		{"nc", []string{"nc", "b", "22"}, "mynetwork: dial tcp 100.64.0.2:22: connection refused\n"},
		{"ping", []string{"ping", "ms9"}, "mynetwork: ping ms9: no configured peer is named or has the ID \"ms9\"\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			cmd := exec.CommandContext(ctx, self, append(tc.args, "-i", iface)...)
			cmd.Env = append(os.Environ(), "MYNETWORK_TEST_RUN_CLI=1")
			out, err := cmd.CombinedOutput()
			var exit *exec.ExitError
			if !errors.As(err, &exit) || exit.ExitCode() != 1 || string(out) != tc.want {
				t.Errorf("got %q (%v), want %q and exit status 1", out, err, tc.want)
			}
		})
	}
}
