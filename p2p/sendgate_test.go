package p2p

import (
	"testing"
	"time"
)

// TestSendGate: after the connection's limit has been written to the stream,
// full waits until as many bytes have reached the connection (yamux hands
// them on later), then says whether it is backlogged; waitRoom returns
// once the socket has taken the backlog.
func TestSendGate(t *testing.T) {
	rc := &recordingConn{blocked: make(chan struct{})}
	c := newCoalescingConn(rc)
	defer c.Close()
	c.Write([]byte("x")) // held in the socket
	eventually(t, "the first write in the socket", func() bool { return c.writing.Load() == 1 })
	c.limit.Store(1000)
	g := newSendGate(c, nil, func() bool { return false })
	g.recheck = time.Minute // no waiting bounded by time, but where said
	noFlush := func() error { return nil }
	g.wrote(500)
	if g.full(noFlush) {
		t.Fatal("full before the limit was written")
	}
	g.wrote(1000)
	go func() {
		time.Sleep(50 * time.Millisecond)
		c.Write(make([]byte, 1500))
	}()
	if !g.full(noFlush) {
		t.Fatal("not full: it did not wait for the 1500 bytes to reach the connection")
	}
	done := make(chan bool)
	go func() { done <- g.waitRoom() }()
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
	if g.full(noFlush) {
		t.Fatal("full with nothing written since")
	}
	// Bytes counted that never reach the connection do not stall it.
	g.recheck = 50 * time.Millisecond
	g.wrote(5000)
	returned := make(chan bool)
	go func() { returned <- g.full(noFlush) }()
	select {
	case <-returned:
	case <-time.After(5 * time.Second):
		t.Fatal("full waits for bytes that never come")
	}
}
