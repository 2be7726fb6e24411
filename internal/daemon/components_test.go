package daemon

import (
	"bytes"
	"context"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"
)

// syncBuffer is a log sink the daemon's goroutines may write to while the
// test reads it.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// run starts a userspace daemon for n with its log in out and returns Run's
// result once ctx ends or Run gives up on its own.
func (n *testNode) run(t *testing.T, ctx context.Context, name string, opts Options, out *syncBuffer) <-chan error {
	t.Helper()
	if err := n.cfg.Save(n.cfgPath); err != nil {
		t.Fatal(err)
	}
	opts.ConfigPath, opts.Interface, opts.SocketPath, opts.Userspace = n.cfgPath, name, n.sock, true
	opts.Log = slog.New(slog.NewTextHandler(out, nil))
	d, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx) }()
	return done
}

// TestRunRefusesASecondDaemon: the control socket is the interface's lock,
// and the first daemon keeps running.
func TestRunRefusesASecondDaemon(t *testing.T) {
	n := newTestNode(t, "usa")
	n.up(t, "usa", Options{SOCKS5: "off"})
	var out syncBuffer
	err := <-n.run(t, context.Background(), "usa", Options{SOCKS5: "off"}, &out)
	want := "interface usa: a mynetwork daemon is already running on " + n.sock
	if err == nil || err.Error() != want {
		t.Fatalf("got %v, want %s", err, want)
	}
	if strings.Contains(out.String(), "mynetwork is up") {
		t.Fatalf("the second daemon said it was up: %s", out.String())
	}
	if _, err := n.client.Status(context.Background()); err != nil {
		t.Fatalf("the first daemon stopped answering: %v", err)
	}
}

// TestRunUndoesAFailedStart: the SOCKS5 proxy, started after the node and
// the engine, cannot listen; Run closes what it started (goleak checks the
// goroutines at the end), so the socket is free for the next daemon.
func TestRunUndoesAFailedStart(t *testing.T) {
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	n := newTestNode(t, "usa")
	var out syncBuffer
	err = <-n.run(t, context.Background(), "usa", Options{SOCKS5: busy.Addr().String(), SOCKS5Auth: "none"}, &out)
	want := "SOCKS5 proxy on " + busy.Addr().String() + ": "
	if err == nil || !strings.HasPrefix(err.Error(), want) || !strings.HasSuffix(err.Error(), "(choose another with --socks5 ADDR, or --socks5 off)") {
		t.Fatalf("got %v, want %s...", err, want)
	}
	if strings.Contains(out.String(), "mynetwork is up") {
		t.Fatalf("said it was up: %s", out.String())
	}
	n.up(t, "usa", Options{SOCKS5: "off"})
}

// TestRunLogsUpAndShutdown: the two lines that tell an operator the daemon
// came up and went down, and a clean stop returns nil.
func TestRunLogsUpAndShutdown(t *testing.T) {
	n := newTestNode(t, "usa")
	out := upAndDown(t, n)
	up := `msg="mynetwork is up" interface=usa mode=userspace peerID=` + n.id
	for _, want := range []string{up, `msg="shutting down" interface=usa`} {
		if !strings.Contains(out, want) {
			t.Errorf("no %q in the log:\n%s", want, out)
		}
	}
	if strings.Contains(out, "level=ERROR") {
		t.Errorf("errors in a clean run:\n%s", out)
	}
}
