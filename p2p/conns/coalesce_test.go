package conns

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"math/big"
	"net"
	"sync"
	"testing"
	"time"

	ma "github.com/multiformats/go-multiaddr"
	manet "github.com/multiformats/go-multiaddr/net"

	"github.com/mynetwork/mynetwork/p2p/p2ptest"
)

// recordingConn is a manet.Conn that records each Write, can fail them,
// and can hold them until released.
type recordingConn struct {
	manet.Conn
	mu      sync.Mutex
	writes  [][]byte
	fail    error
	blocked chan struct{} // when set, each Write waits for a receive
}

func (r *recordingConn) Write(p []byte) (int, error) {
	r.mu.Lock()
	b := r.blocked
	r.mu.Unlock()
	if b != nil {
		<-b
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.fail != nil {
		return 0, r.fail
	}
	r.writes = append(r.writes, bytes.Clone(p))
	return len(p), nil
}

// Close ends a held write, and fails later ones, as closing a socket
// does: a test that fails with the writer stuck still finishes.
func (r *recordingConn) Close() error {
	r.mu.Lock()
	if r.fail == nil {
		r.fail = net.ErrClosed
	}
	r.mu.Unlock()
	r.unblock()
	return nil
}

func (r *recordingConn) LocalMultiaddr() ma.Multiaddr  { return ma.StringCast("/ip4/127.0.0.1/tcp/1") }
func (r *recordingConn) RemoteMultiaddr() ma.Multiaddr { return ma.StringCast("/ip4/127.0.0.1/tcp/2") }

func (r *recordingConn) got() [][]byte {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.writes
}

// unblock lets the held write and all later ones through.
func (r *recordingConn) unblock() {
	r.mu.Lock()
	release := r.blocked
	r.blocked = nil
	r.mu.Unlock()
	if release != nil {
		close(release)
	}
}

// TestCoalescingConnGathers: what is written while the socket is busy
// goes out in one system call, in order, byte for byte.
func TestCoalescingConnGathers(t *testing.T) {
	rc := &recordingConn{blocked: make(chan struct{})}
	c := newConn(rc, nil)
	defer c.Close()
	c.Write([]byte("first"))
	p2ptest.Eventually(t, "the first write in the socket", func() bool { return c.writing.Load() == 5 })
	var want []byte
	for i := range 10 {
		p := bytes.Repeat([]byte{byte(i)}, 1000)
		if n, err := c.Write(p); n != len(p) || err != nil {
			t.Fatalf("Write: %d, %v", n, err)
		}
		want = append(want, p...)
	}
	if got := c.backlog.Load(); got != int64(5+len(want)) {
		t.Errorf("backlog %d, want %d", got, 5+len(want))
	}
	rc.unblock()
	p2ptest.Eventually(t, "two writes", func() bool { return len(rc.got()) == 2 })
	if w := rc.got(); string(w[0]) != "first" || !bytes.Equal(w[1], want) {
		t.Fatalf("writes of %d and %d bytes; want 5, then the ten gathered as one", len(w[0]), len(w[1]))
	}
	p2ptest.Eventually(t, "no backlog", func() bool { return c.backlog.Load() == 0 })
}

// TestCoalescingConnBacklogged: more waiting than the connection should
// hold makes Backlogged true until the socket has taken it, and each
// piece the socket takes sends a token on room.
func TestCoalescingConnBacklogged(t *testing.T) {
	rc := &recordingConn{blocked: make(chan struct{})}
	c := newConn(rc, nil)
	defer c.Close()
	c.limit.Store(10_000)
	// Bytes in the socket's system call do not count: they have left.
	c.Write(make([]byte, 6000))
	p2ptest.Eventually(t, "the first write in the socket", func() bool { return c.writing.Load() == 6000 })
	c.Write(make([]byte, 6000))
	if c.Backlogged() {
		t.Fatal("backlogged under the limit")
	}
	c.Write(make([]byte, 6000))
	if !c.Backlogged() {
		t.Fatal("not backlogged over the limit")
	}
	rc.unblock()
	select {
	case <-c.room:
	case <-time.After(5 * time.Second):
		t.Fatal("no token on room after the socket took the data")
	}
	p2ptest.Eventually(t, "the backlog gone", func() bool { return !c.Backlogged() })
}

// TestCoalescingConnBoundsItsBuffer: while the socket takes nothing,
// Write waits once maxBuffered bytes are gathered; once idle, the
// connection lets go of the large buffer.
func TestCoalescingConnBoundsItsBuffer(t *testing.T) {
	rc := &recordingConn{blocked: make(chan struct{})}
	c := newConn(rc, nil)
	c.mu.Lock()
	c.releaseAfter = 50 * time.Millisecond
	c.mu.Unlock()
	defer c.Close()
	c.Write([]byte("x")) // held in the socket
	p2ptest.Eventually(t, "the first write in the socket", func() bool { return c.writing.Load() == 1 })
	c.Write(make([]byte, maxBuffered))
	wrote := make(chan struct{})
	go func() {
		c.Write([]byte("y"))
		close(wrote)
	}()
	select {
	case <-wrote:
		t.Fatal("Write took more than maxBuffered while the socket was stuck")
	case <-time.After(100 * time.Millisecond):
	}
	rc.unblock()
	select {
	case <-wrote:
	case <-time.After(5 * time.Second):
		t.Fatal("Write still waiting after the socket took the data")
	}
	// The 4 MiB buffer is let go once the connection is idle.
	p2ptest.Eventually(t, "the large buffer let go", func() bool {
		c.mu.Lock()
		defer c.mu.Unlock()
		return c.backlog.Load() == 0 && cap(c.buf) <= keepBuffer && cap(c.spare) <= keepBuffer
	})
}

// TestCoalescingConnReportsAFailedWrite: once the socket fails, every
// later Write returns its error.
func TestCoalescingConnReportsAFailedWrite(t *testing.T) {
	broken := errors.New("broken pipe")
	rc := &recordingConn{fail: broken}
	c := newConn(rc, nil)
	defer c.Close()
	c.Write([]byte("lost"))
	p2ptest.Eventually(t, "the error reported", func() bool {
		_, err := c.Write([]byte("more"))
		return errors.Is(err, broken)
	})
}

// TestCoalescingConnFlushesOnClose: Close sends what is gathered first.
func TestCoalescingConnFlushesOnClose(t *testing.T) {
	rc := &recordingConn{blocked: make(chan struct{})}
	c := newConn(rc, nil)
	c.Write([]byte("one"))
	p2ptest.Eventually(t, "the first write in the socket", func() bool { return c.writing.Load() == 3 })
	c.Write([]byte("two"))
	go func() {
		time.Sleep(20 * time.Millisecond)
		rc.unblock()
	}()
	c.Close()
	if w := rc.got(); len(w) != 2 || string(w[1]) != "two" {
		t.Fatalf("writes %q; want one, two", w)
	}
	if _, err := c.Write([]byte("late")); err == nil {
		t.Fatal("Write after Close succeeded")
	}
}

// countingConn counts the writes that reach the socket.
type countingConn struct {
	manet.Conn
	mu     sync.Mutex
	writes int
	hold   chan struct{} // when set, a Write waits for it to close
}

func (c *countingConn) Write(p []byte) (int, error) {
	c.mu.Lock()
	c.writes++
	hold := c.hold
	c.mu.Unlock()
	if hold != nil {
		<-hold
	}
	return c.Conn.Write(p)
}

func (c *countingConn) count() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.writes
}

// TestCoalescingUnderCryptoTLS: through Conn, the records Go's
// TLS 1.3 cuts Writes into reach the socket together while it is busy,
// byte for byte.
func TestCoalescingUnderCryptoTLS(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	cert := selfSigned(t)
	const size = 65000
	msgs := make([][]byte, 8)
	for i := range msgs {
		msgs[i] = make([]byte, size)
		rand.Read(msgs[i])
	}
	done := make(chan []byte, 1)
	go func() {
		raw, err := ln.Accept()
		if err != nil {
			done <- nil
			return
		}
		defer raw.Close()
		s := tls.Server(raw, &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS13})
		all, _ := io.ReadAll(io.LimitReader(s, int64(len(msgs)*size)))
		done <- all
	}()

	raw, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	mc, err := manet.WrapNetConn(raw)
	if err != nil {
		t.Fatal(err)
	}
	counted := &countingConn{Conn: mc}
	cc := newConn(counted, nil)
	c := tls.Client(cc, &tls.Config{InsecureSkipVerify: true, MinVersion: tls.VersionTLS13})
	defer c.Close()
	if err := c.Handshake(); err != nil {
		t.Fatal(err)
	}
	p2ptest.Eventually(t, "the handshake sent", func() bool { return cc.backlog.Load() == 0 })
	start := counted.count()
	// The socket takes nothing for a while: the records of all the
	// Writes meanwhile (five per Write) gather, and go out together after
	// the one system call that was waiting.
	hold := make(chan struct{})
	counted.mu.Lock()
	counted.hold = hold
	counted.mu.Unlock()
	var sent []byte
	for _, m := range msgs {
		if _, err := c.Write(m); err != nil {
			t.Fatal(err)
		}
		sent = append(sent, m...)
	}
	counted.mu.Lock()
	counted.hold = nil
	counted.mu.Unlock()
	close(hold)
	p2ptest.Eventually(t, "all sent", func() bool { return cc.backlog.Load() == 0 })
	if n := counted.count() - start; n > 2 {
		t.Errorf("%d writes of %d bytes reached the socket in %d system calls; want 2", len(msgs), size, n)
	}
	select {
	case got := <-done:
		if !bytes.Equal(got, sent) {
			t.Fatalf("received %d bytes, not the %d sent", len(got), len(sent))
		}
	case <-time.After(10 * time.Second):
		t.Fatal("server read nothing")
	}
	t.Logf("%d writes for %d bytes", counted.count()-start, len(sent))
}

func selfSigned(t *testing.T) tls.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}
