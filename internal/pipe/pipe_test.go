package pipe

import (
	"io"
	"net"
	"testing"
	"time"
)

// tcpPair returns the two ends of a loopback TCP connection.
func tcpPair(t *testing.T) (net.Conn, net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, _ := ln.Accept()
		accepted <- c
	}()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	s := <-accepted
	if s == nil {
		t.Fatal("accept failed")
	}
	t.Cleanup(func() { c.Close(); s.Close() })
	return c, s
}

// A client that sends a request and half-closes still gets its answer, and
// Join returns, with both connections closed, once both directions end.
func TestJoinPassesHalfCloseAndAnswer(t *testing.T) {
	client, a := tcpPair(t)
	b, server := tcpPair(t)
	done := make(chan struct{})
	go func() { Join(a, b); close(done) }()

	if _, err := client.Write([]byte("request")); err != nil {
		t.Fatal(err)
	}
	client.(*net.TCPConn).CloseWrite()
	got, err := io.ReadAll(server) // ends at the passed-on half-close
	if err != nil || string(got) != "request" {
		t.Fatalf("server read %q, %v", got, err)
	}
	server.Write([]byte("answer"))
	server.Close()
	got, err = io.ReadAll(client)
	if err != nil || string(got) != "answer" {
		t.Fatalf("client read %q, %v", got, err)
	}
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Join did not return after both directions ended")
	}
	if _, err := a.Write([]byte("x")); err == nil {
		t.Error("Join left a open")
	}
}

// An error in one direction closes both connections, so that the other
// direction cannot hang.
func TestJoinAbortsBothOnError(t *testing.T) {
	client, a := tcpPair(t)
	b, server := tcpPair(t)
	done := make(chan struct{})
	go func() { Join(a, b); close(done) }()
	client.(*net.TCPConn).SetLinger(0)
	client.Close() // a reset: reading a fails
	server.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.ReadAll(server); err != nil {
		t.Fatalf("server side not closed: %v", err)
	}
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Join did not return after an error")
	}
}

// JoinIdle leaves alone a connection that carries a byte now and then, in
// either direction, for several times the idle time, and closes it once
// nothing has passed for the idle time.
func TestJoinIdle(t *testing.T) {
	const idle = 200 * time.Millisecond
	tests := []struct {
		name    string
		talk    time.Duration // how long a byte passes every idle/4
		fromFar bool          // the far end sends instead of the client
	}{
		{name: "silent"},
		{name: "client talks", talk: 5 * idle},
		{name: "server talks", talk: 5 * idle, fromFar: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			client, a := tcpPair(t)
			b, server := tcpPair(t)
			done := make(chan struct{})
			start := time.Now()
			go func() { JoinIdle(a, b, idle); close(done) }()
			talker, listener := client, server
			if tt.fromFar {
				talker, listener = server, client
			}
			go io.Copy(io.Discard, listener)
			last := start
			for time.Since(start) < tt.talk {
				select {
				case <-done:
					t.Fatalf("closed after %v although a byte passed every %v", time.Since(start), idle/4)
				default:
				}
				if _, err := talker.Write([]byte("x")); err != nil {
					t.Fatal(err)
				}
				last = time.Now()
				time.Sleep(idle / 4)
			}
			select {
			case <-done:
				if quiet := time.Since(last); quiet < idle {
					t.Fatalf("closed after %v of silence, before the idle time %v", quiet, idle)
				}
			case <-time.After(10 * idle):
				t.Fatalf("still open after %v of silence", 10*idle)
			}
		})
	}
}

// A nil IdleTimer (no idle time) never expires and its methods are safe.
func TestIdleTimerOff(t *testing.T) {
	tm := NewIdleTimer(0, func() { t.Error("expired") })
	if tm != nil {
		t.Fatal("NewIdleTimer(0) is not nil")
	}
	tm.Touch()
	tm.Stop()
}
