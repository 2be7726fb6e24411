package p2p

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

	manet "github.com/multiformats/go-multiaddr/net"
)

// recordingConn is a manet.Conn that records each Write and can fail them.
type recordingConn struct {
	manet.Conn
	mu     sync.Mutex
	writes [][]byte
	fail   error
}

func (r *recordingConn) Write(p []byte) (int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.fail != nil {
		return 0, r.fail
	}
	r.writes = append(r.writes, bytes.Clone(p))
	return len(p), nil
}

func (r *recordingConn) Close() error { return nil }

func (r *recordingConn) got() [][]byte {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.writes
}

// record builds a TLS 1.3 application-data record with n bytes of payload.
func record(n int, fill byte) []byte {
	p := bytes.Repeat([]byte{fill}, 5+n)
	p[0], p[1], p[2], p[3], p[4] = 23, 3, 3, byte(n>>8), byte(n)
	return p
}

func TestCoalescingConnHoldsFullRecords(t *testing.T) {
	rc := &recordingConn{}
	c := newCoalescingConn(rc)
	c.limit = time.Minute // only the records decide when to write
	full := tlsFullRecord - 5
	var want []byte
	for i := range 3 {
		r := record(full, byte(i))
		want = append(want, r...)
		if n, err := c.Write(r); n != len(r) || err != nil {
			t.Fatalf("write of a full record: %d, %v", n, err)
		}
	}
	if w := rc.got(); len(w) != 0 {
		t.Fatalf("full records were written at once (%d writes); want them held", len(w))
	}
	last := record(100, 9)
	want = append(want, last...)
	if _, err := c.Write(last); err != nil {
		t.Fatal(err)
	}
	if w := rc.got(); len(w) != 1 || !bytes.Equal(w[0], want) {
		t.Fatalf("got %d writes; want the three held records and the short one in one write", len(w))
	}

	// Anything that is not a full application-data record goes at once.
	for _, p := range [][]byte{{22, 3, 3, 0, 1, 0}, record(full-1, 1), []byte("/multistream/1.0.0\n")} {
		before := len(rc.got())
		c.Write(p)
		if len(rc.got()) != before+1 {
			t.Fatalf("% x... was held", p[:5])
		}
	}
}

func TestCoalescingConnFlushesALoneFullRecord(t *testing.T) {
	rc := &recordingConn{}
	c := newCoalescingConn(rc)
	r := record(tlsFullRecord-5, 7)
	c.Write(r)
	eventually(t, "the held record written", func() bool { return len(rc.got()) == 1 })
	if !bytes.Equal(rc.got()[0], r) {
		t.Fatal("the held record changed")
	}
}

func TestCoalescingConnHoldsAtMostHoldBytes(t *testing.T) {
	rc := &recordingConn{}
	c := newCoalescingConn(rc)
	c.limit = time.Minute // only the records decide when to write
	r := record(tlsFullRecord-5, 1)
	total := 0
	for range 20 {
		c.Write(r)
		total += len(r)
	}
	c.Write(record(10, 2))
	sum := 0
	for _, w := range rc.got() {
		if len(w) > holdBytes+tlsFullRecord {
			t.Fatalf("one write of %d bytes; at most %d are held", len(w), holdBytes)
		}
		sum += len(w)
	}
	if sum != total+15 {
		t.Fatalf("%d bytes written; want %d", sum, total+15)
	}
}

func TestCoalescingConnReportsAFailedFlush(t *testing.T) {
	rc := &recordingConn{}
	c := newCoalescingConn(rc)
	c.limit = time.Minute // only the records decide when to write
	c.Write(record(tlsFullRecord-5, 1))
	broken := errors.New("connection reset")
	rc.mu.Lock()
	rc.fail = broken
	rc.mu.Unlock()
	if _, err := c.Write(record(10, 2)); !errors.Is(err, broken) {
		t.Fatalf("write after a failed flush: %v; want %v", err, broken)
	}
	if _, err := c.Write(record(10, 2)); !errors.Is(err, broken) {
		t.Fatalf("the failure is not sticky: %v", err)
	}
}

func TestCoalescingConnFlushesOnClose(t *testing.T) {
	rc := &recordingConn{}
	c := newCoalescingConn(rc)
	c.limit = time.Minute // only the records decide when to write
	c.Write(record(tlsFullRecord-5, 1))
	c.Close()
	if len(rc.got()) != 1 {
		t.Fatal("Close dropped a held record")
	}
}

// countingConn counts the writes that reach the socket.
type countingConn struct {
	manet.Conn
	mu     sync.Mutex
	writes int
}

func (c *countingConn) Write(p []byte) (int, error) {
	c.mu.Lock()
	c.writes++
	c.mu.Unlock()
	return c.Conn.Write(p)
}

func (c *countingConn) count() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.writes
}

// TestCoalescingUnderCryptoTLS pins what the coalescing relies on: Go's
// TLS 1.3 writes a large Write as full records followed by a shorter one,
// and through coalescingConn each Write reaches the socket in one piece,
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
	cc := newCoalescingConn(counted)
	// A loaded machine can stall this goroutine between two records of
	// one Write for longer than the usual hold; that case has its own test.
	cc.limit = 10 * time.Second
	c := tls.Client(cc, &tls.Config{InsecureSkipVerify: true, MinVersion: tls.VersionTLS13})
	defer c.Close()
	if err := c.Handshake(); err != nil {
		t.Fatal(err)
	}
	start := counted.count()
	var sent []byte
	for i, m := range msgs {
		before := counted.count()
		if _, err := c.Write(m); err != nil {
			t.Fatal(err)
		}
		// crypto/tls starts with small records and sends full-size ones
		// once 128 KiB have gone: the first three writes are not counted.
		if i >= 3 && counted.count()-before != 1 {
			t.Errorf("write %d of %d bytes reached the socket in %d writes; want 1", i, size, counted.count()-before)
		}
		sent = append(sent, m...)
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
