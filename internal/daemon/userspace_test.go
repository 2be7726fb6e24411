package daemon

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/net/proxy"

	"github.com/mynetwork/mynetwork/config"
	"github.com/mynetwork/mynetwork/internal/control"
	"github.com/mynetwork/mynetwork/p2p/p2ptest"
)

// freePort returns a loopback port that was free a moment ago.
func freePort(t *testing.T, network string) int {
	t.Helper()
	if network == "udp" {
		c, err := net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		return c.LocalAddr().(*net.UDPAddr).Port
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

type testNode struct {
	cfgPath, sock string
	cfg           *config.Config
	id            string
	client        *control.Client
}

func newTestNode(t *testing.T, name string) *testNode {
	t.Helper()
	c, err := config.Generate()
	if err != nil {
		t.Fatal(err)
	}
	none := []string{}
	off := false
	c.BootstrapPeers, c.MDNS = &none, &off
	c.ListenAddresses = []string{"/ip4/127.0.0.1/tcp/0"}
	id, _ := c.ID()
	dir := t.TempDir()
	os.Chmod(dir, 0o700) // the control socket's folder: 0755 is refused as a user
	n := &testNode{cfgPath: filepath.Join(dir, name+".json"), sock: filepath.Join(dir, name+".sock"), cfg: c, id: id.String()}
	n.client = control.NewClient(name, n.sock)
	return n
}

// reach pings the peer named name from n until it answers: nodes connect
// on demand (idleTimeout), and traffic is what connects them.
func (n *testNode) reach(t *testing.T, name string) {
	t.Helper()
	p2ptest.Eventually(t, "a ping to "+name, func() bool {
		_, err := n.client.Ping(context.Background(), control.PingRequest{Peer: name})
		return err == nil
	})
}

// up saves the config and runs a userspace daemon until the test ends.
func (n *testNode) up(t *testing.T, name string, opts Options) {
	t.Helper()
	if err := n.cfg.Save(n.cfgPath); err != nil {
		t.Fatal(err)
	}
	opts.ConfigPath, opts.Interface, opts.SocketPath, opts.Userspace = n.cfgPath, name, n.sock, true
	opts.Log = slog.New(slog.NewTextHandler(io.Discard, nil))
	d, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("%s: Run: %v", name, err)
		}
	})
	deadline := time.Now().Add(10 * time.Second)
	for {
		if _, err := n.client.Status(context.Background()); err == nil {
			return
		}
		select {
		case err := <-done:
			t.Fatalf("%s exited: %v", name, err)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s did not come up", name)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// serveTCP runs handle for each connection to a loopback listener until
// the test ends, and returns the listener's address.
func serveTCP(t *testing.T, handle func(net.Conn)) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() { defer c.Close(); handle(c) }()
		}
	}()
	return ln.Addr().String()
}

// services on B's loopback: a TCP echo, a UDP echo and a TCP hasher that
// answers with the SHA-256 of everything it read.
func services(t *testing.T) (tcpEcho, udpEcho, hasher string) {
	t.Helper()
	tcpEcho = serveTCP(t, func(c net.Conn) { io.Copy(c, c) })
	hasher = serveTCP(t, func(c net.Conn) {
		h := sha256.New()
		io.Copy(h, c)
		io.WriteString(c, hex.EncodeToString(h.Sum(nil)))
	})
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pc.Close() })
	go func() {
		buf := make([]byte, 65535)
		for {
			n, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			pc.WriteTo(buf[:n], from)
		}
	}()
	return tcpEcho, pc.LocalAddr().String(), hasher
}

func echoOnce(t *testing.T, c net.Conn, msg string) {
	t.Helper()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(c, msg); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, len(msg))
	if _, err := io.ReadFull(c, buf); err != nil || string(buf) != msg {
		t.Fatalf("echo: got %q (%v)", buf, err)
	}
}

// TestUserspaceMesh runs two userspace nodes in this process on loopback,
// with no root: A offers SOCKS5 and forwards, B exposes local services.
func TestUserspaceMesh(t *testing.T) {
	tcpEcho, udpEcho, hasher := services(t)
	a, b := newTestNode(t, "usa"), newTestNode(t, "usb")
	b.cfg.Peers = []config.Peer{{Name: "ms0", ID: a.id}}
	// A port of its own: status leaves loopback addresses out.
	b.cfg.ListenAddresses = []string{fmt.Sprintf("/ip4/127.0.0.1/tcp/%d", freePort(t, "tcp"))}
	b.up(t, "usb", Options{SOCKS5: "off", Exposes: []string{"7=" + tcpEcho, "udp:7=" + udpEcho, "9=" + hasher}})
	bst, err := b.client.Status(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	socksAddr := fmt.Sprintf("127.0.0.1:%d", freePort(t, "tcp"))
	fwdTCP := fmt.Sprintf("127.0.0.1:%d", freePort(t, "tcp"))
	fwdUDP := fmt.Sprintf("127.0.0.1:%d", freePort(t, "udp"))
	a.cfg.Peers = []config.Peer{{Name: "ms1", ID: b.id, Addrs: b.cfg.ListenAddresses}}
	a.up(t, "usa", Options{SOCKS5: socksAddr, Forwards: []string{fwdTCP + "=ms1:7", "udp:" + fwdUDP + "=ms1.mynetwork:7"}})

	a.reach(t, "ms1")
	var ast control.Status
	deadline := time.Now().Add(15 * time.Second)
	for {
		st, _ := a.client.Status(context.Background())
		if len(st.Peers) == 1 && st.Peers[0].Connected {
			if st.Mode != "userspace" || st.Userspace == nil || st.Userspace.SOCKS5 != socksAddr || len(st.Userspace.Forwards) != 2 ||
				st.Userspace.SOCKS5Credentials != SOCKS5CredentialsPath(a.cfgPath) {
				t.Fatalf("status %+v %+v", st, st.Userspace)
			}
			ast = st
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("A never connected to B")
		}
		time.Sleep(50 * time.Millisecond)
	}
	// The proxy needs the username and password A made (config sets none).
	proxyURL, err := SOCKS5URL(ast)
	if err != nil {
		t.Fatal(err)
	}
	if !regexp.MustCompile(`^socks5h://mynetwork:[A-Z2-7]{26}@` + regexp.QuoteMeta(socksAddr) + `$`).MatchString(proxyURL) {
		t.Fatalf("SOCKS5URL = %q", proxyURL)
	}
	u, _ := url.Parse(proxyURL)
	socks, err := proxy.FromURL(u, proxy.Direct)
	if err != nil {
		t.Fatal(err)
	}
	bIP := bst.IPv4

	t.Run("SOCKS5 refuses clients without the credentials", func(t *testing.T) {
		tests := []struct {
			name string
			auth *proxy.Auth
			want string
		}{
			{name: "none", want: "no acceptable authentication methods"},
			{name: "wrong password", auth: &proxy.Auth{User: "mynetwork", Password: "guess"}, want: "username/password authentication failed"},
		}
		for _, tt := range tests {
			p, _ := proxy.SOCKS5("tcp", socksAddr, tt.auth, proxy.Direct)
			c, err := p.Dial("tcp", "ms1:7")
			if err == nil {
				c.Close()
				t.Fatalf("%s: connected", tt.name)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("%s: %v, want %q", tt.name, err, tt.want)
			}
		}
	})

	t.Run("SOCKS5 CONNECT by IP and by peer name", func(t *testing.T) {
		for _, host := range []string{bIP, "ms1", "ms1.mynetwork", "[" + bst.IPv6 + "]"} {
			var c net.Conn
			var err error
			for range 50 { // the first dial may race the packet stream's opening
				if c, err = socks.Dial("tcp", host+":7"); err == nil {
					break
				}
				time.Sleep(100 * time.Millisecond)
			}
			if err != nil {
				t.Fatalf("%s: %v", host, err)
			}
			echoOnce(t, c, "hello via "+host)
			c.Close()
		}
	})

	t.Run("SOCKS5 refuses destinations off the mesh", func(t *testing.T) {
		_, err := socks.Dial("tcp", tcpEcho)
		if err == nil || !strings.Contains(err.Error(), "not allowed") {
			t.Fatalf("got %v", err)
		}
	})

	t.Run("a port with no expose rule is closed", func(t *testing.T) {
		_, err := socks.Dial("tcp", "ms1:8")
		if err == nil || !strings.Contains(err.Error(), "refused") {
			t.Fatalf("got %v", err)
		}
	})

	t.Run("TCP forward to an exposed port", func(t *testing.T) {
		c, err := net.Dial("tcp", fwdTCP)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		echoOnce(t, c, "through the forward")
	})

	t.Run("UDP forward to an exposed UDP port", func(t *testing.T) {
		c, err := net.Dial("udp", fwdUDP)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		buf := make([]byte, 100)
		for i := range 50 {
			c.Write([]byte("datagram"))
			c.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
			if n, err := c.Read(buf); err == nil && string(buf[:n]) == "datagram" {
				return
			}
			_ = i
		}
		t.Fatal("no UDP echo through forward and expose")
	})

	t.Run("nc through the daemon", func(t *testing.T) {
		c, err := a.client.Dial(context.Background(), "ms1", 7)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		echoOnce(t, c, "nc says hi")
	})

	t.Run("100 MB through SOCKS5 arrives byte-exact", func(t *testing.T) {
		c, err := socks.Dial("tcp", "ms1:9")
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		h := sha256.New()
		src := rand.NewChaCha8([32]byte{1, 2, 3})
		buf := make([]byte, 1<<20)
		for range 100 {
			src.Read(buf)
			h.Write(buf)
			if _, err := c.Write(buf); err != nil {
				t.Fatal(err)
			}
		}
		c.(interface{ CloseWrite() error }).CloseWrite()
		c.SetReadDeadline(time.Now().Add(30 * time.Second))
		got, err := io.ReadAll(c)
		if want := hex.EncodeToString(h.Sum(nil)); err != nil || string(got) != want {
			t.Fatalf("checksum %q, want %q (%v)", got, want, err)
		}
	})

	t.Run("200 concurrent connections", func(t *testing.T) {
		var wg sync.WaitGroup
		errs := make(chan error, 200)
		for i := range 200 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				c, err := socks.Dial("tcp", "ms1:7")
				if err != nil {
					errs <- err
					return
				}
				defer c.Close()
				msg := bytes.Repeat([]byte{byte(i)}, 10000+i)
				go c.Write(msg)
				c.SetReadDeadline(time.Now().Add(20 * time.Second))
				got := make([]byte, len(msg))
				if _, err := io.ReadFull(c, got); err != nil || !bytes.Equal(got, msg) {
					errs <- fmt.Errorf("conn %d: %v", i, err)
				}
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Error(err)
		}
	})
}
