package daemon

import (
	"context"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// listenNotify is systemd's end of NOTIFY_SOCKET: a datagram socket the
// test reads the daemon's messages from.
func listenNotify(t *testing.T) *net.UnixConn {
	t.Helper()
	path := filepath.Join(t.TempDir(), "notify")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	t.Setenv("NOTIFY_SOCKET", path)
	return conn
}

func readNotify(t *testing.T, conn *net.UnixConn) string {
	t.Helper()
	conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	buf := make([]byte, 4096)
	n, err := conn.Read(buf)
	if err != nil {
		t.Fatalf("no message from the daemon on NOTIFY_SOCKET: %v", err)
	}
	return string(buf[:n])
}

// waitUp waits for a daemon started by testNode.run to say it is up.
func waitUp(t *testing.T, out *syncBuffer) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(out.String(), "mynetwork is up") {
		if time.Now().After(deadline) {
			t.Fatalf("never up: %s", out.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// upAndDown runs a userspace daemon for n until it is up, stops it, and
// returns its log.
func upAndDown(t *testing.T, n *testNode) string {
	t.Helper()
	var out syncBuffer
	ctx, cancel := context.WithCancel(context.Background())
	done := n.run(t, ctx, "usa", Options{SOCKS5: "off"}, &out)
	waitUp(t, &out)
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run: %v", err)
	}
	return out.String()
}

// TestRunNotifiesSystemd: under systemd (Type=notify) the daemon says
// READY=1 once it is up and its control API answers, and STOPPING=1 when it
// begins to shut down; a reload says RELOADING=1, then READY=1 again.
func TestRunNotifiesSystemd(t *testing.T) {
	conn := listenNotify(t)
	n := newTestNode(t, "usa")
	var out syncBuffer
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := n.run(t, ctx, "usa", Options{SOCKS5: "off"}, &out)
	if got := readNotify(t, conn); got != "READY=1" {
		t.Fatalf("first message %q, want READY=1", got)
	}
	if !strings.Contains(out.String(), "mynetwork is up") {
		t.Errorf("READY=1 came before the daemon said it was up:\n%s", out.String())
	}
	if _, err := n.client.Status(ctx); err != nil {
		t.Errorf("ready, but the control API does not answer: %v", err)
	}
	if _, err := n.client.Reload(ctx); err != nil {
		t.Fatalf("reload: %v", err)
	}
	for _, want := range []string{"RELOADING=1", "READY=1"} {
		if got := readNotify(t, conn); got != want {
			t.Errorf("message at a reload %q, want %s", got, want)
		}
	}
	cancel()
	if got := readNotify(t, conn); got != "STOPPING=1" {
		t.Errorf("message at shutdown %q, want STOPPING=1", got)
	}
	if err := <-done; err != nil {
		t.Fatalf("Run: %v", err)
	}
}

// TestRunWithoutSystemd: a NOTIFY_SOCKET that no one listens on costs a
// warning, not the daemon.
func TestRunWithoutSystemd(t *testing.T) {
	t.Setenv("NOTIFY_SOCKET", filepath.Join(t.TempDir(), "gone"))
	out := upAndDown(t, newTestNode(t, "usa"))
	for _, want := range []string{
		`level=WARN msg="cannot tell systemd the daemon's state" state="READY=1" err=`,
		`level=WARN msg="cannot tell systemd the daemon's state" state="STOPPING=1" err=`,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("no %q in the log:\n%s", want, out)
		}
	}
}
