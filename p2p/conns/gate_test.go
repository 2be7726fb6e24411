package conns

import (
	"testing"
	"time"

	"github.com/mynetwork/mynetwork/p2p/p2ptest"
)

// TestSendGate: after the connection's limit has been written to the stream,
// full waits until as many bytes have reached the connection (yamux hands
// them on later), then says whether it is backlogged; waitRoom returns
// once the socket has taken the backlog.
func TestSendGate(t *testing.T) {
	rc := &recordingConn{blocked: make(chan struct{})}
	c := newConn(rc, nil)
	defer c.Close()
	c.Write([]byte("x")) // held in the socket
	p2ptest.Eventually(t, "the first write in the socket", func() bool { return c.writing.Load() == 1 })
	c.limit.Store(1000)
	g := NewGate(c, nil, func() bool { return false })
	g.recheck = time.Minute // no waiting bounded by time, but where said
	noFlush := func() error { return nil }
	g.Wrote(500)
	if g.Full(noFlush) {
		t.Fatal("full before the limit was written")
	}
	g.Wrote(1000)
	go func() {
		time.Sleep(50 * time.Millisecond)
		c.Write(make([]byte, 1500))
	}()
	if !g.Full(noFlush) {
		t.Fatal("not full: it did not wait for the 1500 bytes to reach the connection")
	}
	done := make(chan bool)
	go func() { done <- g.WaitRoom() }()
	select {
	case <-done:
		t.Fatal("waitRoom returned while the socket took nothing")
	case <-time.After(50 * time.Millisecond):
	}
	rc.unblock()
	select {
	case ok := <-done:
		if !ok {
			t.Fatal("waitRoom says cancelled")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("waitRoom still waiting after the socket took the backlog")
	}
	if g.Full(noFlush) {
		t.Fatal("full with nothing written since")
	}
	// Bytes counted that never reach the connection do not stall it.
	g.recheck = 50 * time.Millisecond
	g.Wrote(5000)
	returned := make(chan bool)
	go func() { returned <- g.Full(noFlush) }()
	select {
	case <-returned:
	case <-time.After(5 * time.Second):
		t.Fatal("full waits for bytes that never come")
	}
}
